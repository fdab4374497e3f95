// Retention: removes old backups and abandoned leftovers from the bucket that also holds the
// portal's client documents. Only keys that parse as backup keys (keys.ts) are ever deleted, and
// every key is checked again right before its delete, whatever produced the list.
import { z } from "zod";
import { tryLogActivity } from "./activity";
import type { BackupTrigger } from "./backup";
import { BackupError, errorMessage, isBackupError, wrapBindingError } from "../errors";
import { allObjectKeysFor, keysFor, parseBackupKey, timestampOf } from "./keys";
import { isFutureDated, listBackups, type BackupListing } from "./list";

export interface RetentionPolicy {
  /** Complete backups older than this many days are deleted (see cutoff in planCleanup). */
  maxAgeDays: number;
  /** The newest this many complete backups are kept whatever their age. */
  keepLatest: number;
  /** Leftovers of interrupted runs older than this many hours are deleted. */
  incompleteMaxAgeHours: number;
}

export const DEFAULT_RETENTION: Readonly<RetentionPolicy> = Object.freeze({
  maxAgeDays: 30,
  keepLatest: 7,
  incompleteMaxAgeHours: 24,
});

// Upper bounds only keep the date arithmetic finite; they are far beyond any sensible policy.
const policySchema = z
  .object({
    maxAgeDays: z.number().int().min(1).max(36_500),
    keepLatest: z.number().int().min(1).max(100_000),
    incompleteMaxAgeHours: z.number().int().min(1).max(876_000),
  })
  .strict(); // a misspelt field must not silently fall back to the default

/** Defaults overlaid with the given fields; anything invalid is INVALID_INPUT (HTTP 400). */
export function parseRetentionPolicy(input: unknown): RetentionPolicy {
  if (input !== undefined && input !== null && (typeof input !== "object" || Array.isArray(input))) {
    throw new BackupError("INVALID_INPUT", "retention policy must be an object");
  }
  const given = Object.fromEntries(Object.entries((input ?? {}) as object).filter(([, v]) => v !== undefined));
  const parsed = policySchema.safeParse({ ...DEFAULT_RETENTION, ...given });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue.path.join(".");
    throw new BackupError("INVALID_INPUT", `invalid retention policy${where ? ` (${where})` : ""}: ${issue.message}`, {
      details: { issues: parsed.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })) },
    });
  }
  return parsed.data;
}

export interface CleanupOptions {
  db: D1Database;
  bucket: R2Bucket;
  now?: Date;
  policy?: Partial<RetentionPolicy>;
  /** Report what would be deleted; deletes nothing and writes nothing (not even activity_log). */
  dryRun?: boolean;
  /** Clerk user id of the admin who asked, for the audit trail. */
  actor?: string | null;
  trigger?: BackupTrigger;
}

export interface NeedsAttention {
  name: string;
  keys: string[];
  reason: string;
}

export interface CleanupResult {
  /** Object keys of the complete backups deleted (or that would be, in a dry run), oldest first. */
  deleted: string[];
  /** Object keys of the complete backups kept, newest first. */
  kept: string[];
  /** Every key removed from incomplete leftovers. */
  incompleteDeleted: string[];
  /**
   * Backups that have both an object and a manifest yet do not check out (manifest unreadable, of
   * a newer format, or not matching the object). Never deleted automatically: that could be a
   * good backup whose manifest read failed for a moment, or one written by a newer d1-backup.
   */
  needsAttention: NeedsAttention[];
  dryRun: boolean;
  policy: RetentionPolicy;
  /** Complete backups taken before this time are past maxAgeDays; null when there are none. */
  cutoff: string | null;
  warnings: string[];
}

export interface CleanupPlan {
  policy: RetentionPolicy;
  cutoff: Date | null;
  /** Complete backups to delete, oldest first. */
  deleteComplete: { name: string; key: string }[];
  keep: string[];
  deleteIncomplete: { name: string; keys: string[] }[];
  needsAttention: NeedsAttention[];
}

const DAY_MS = 24 * 60 * 60 * 1000;
const HOUR_MS = 60 * 60 * 1000;

/** Decides what a cleanup removes, from a listing; deletes nothing. */
export function planCleanup(listing: BackupListing, policy: RetentionPolicy, now: Date): CleanupPlan {
  // A backup named for the future (a clock fault when it was taken) is kept and flagged, and
  // otherwise ignored: counted as newest it would take a keepLatest place and end the search for
  // the cutoff's reference point, and 2099 is no time to measure real backups' age from.
  const future = listing.backups.filter((b) => isFutureDated(b.name, now));
  const complete = listing.backups.filter((b) => !isFutureDated(b.name, now)); // newest first
  // Age counts from the newest complete backup when the clock is later: if backups have been
  // failing for a month, the clock alone would age out every backup we still have, including the
  // last good ones. Measured from the newest backup, older ones expire only as new ones arrive.
  const newest = complete.length ? nameTime(complete[0].name) : null;
  const cutoff = newest ? new Date(Math.min(now.getTime(), newest.getTime()) - policy.maxAgeDays * DAY_MS) : null;

  const deleteComplete: CleanupPlan["deleteComplete"] = [];
  const keep: string[] = future.map((b) => b.key);
  const needsAttention: NeedsAttention[] = future.map((b) => ({
    name: b.name,
    keys: [b.key, b.manifestKey],
    reason: `dated ${b.manifest.createdAt}, in the future (a clock fault?): kept, and not counted as the newest backup`,
  }));
  complete.forEach((b, i) => {
    if (i >= policy.keepLatest && cutoff && nameTime(b.name).getTime() < cutoff.getTime()) {
      deleteComplete.push({ name: b.name, key: b.key });
    } else {
      keep.push(b.key);
    }
  });
  deleteComplete.reverse();

  const deleteIncomplete: CleanupPlan["deleteIncomplete"] = [];
  const incompleteBefore = now.getTime() - policy.incompleteMaxAgeHours * HOUR_MS;
  for (const entry of listing.incomplete) {
    const kinds = new Set(entry.keys.map((k) => parseBackupKey(k)?.kind));
    if (kinds.has("object") && kinds.has("manifest")) {
      needsAttention.push({ name: entry.name, keys: entry.keys, reason: entry.reason });
      continue;
    }
    // Old by both its name and its last write: a run still writing its parts (an unlocked caller,
    // or a clock that named it in the past) is never taken for an abandoned one.
    // A future name says nothing about its age (it would never come due): its upload time alone counts.
    const byName = isFutureDated(entry.name, now) ? 0 : nameTime(entry.name).getTime();
    const lastTouched = Math.max(Date.parse(entry.uploaded), byName);
    if (lastTouched < incompleteBefore) deleteIncomplete.push({ name: entry.name, keys: entry.keys });
  }

  return { policy, cutoff, deleteComplete, keep, deleteIncomplete, needsAttention };
}

function nameTime(name: string): Date {
  const t = timestampOf(name);
  if (!t) throw new BackupError("INTERNAL", `listing returned a backup with an invalid name: ${name}`);
  return t;
}

/** The last line of defence for client documents: refuses any key that is not this backup's. */
async function deleteBackupKey(bucket: R2Bucket, name: string, key: string): Promise<void> {
  const parsed = parseBackupKey(key);
  if (!parsed || parsed.name !== name) {
    throw new BackupError("INTERNAL", `refusing to delete ${key}: not a key of backup ${name}`);
  }
  try {
    await bucket.delete(key);
  } catch (e) {
    throw wrapBindingError("STORAGE_ERROR", `deleting ${key} failed`, e);
  }
}

const KIND_ORDER = { manifest: 0, object: 1, staging: 2 } as const;

export async function cleanupOldBackups(opts: CleanupOptions): Promise<CleanupResult> {
  const policy = parseRetentionPolicy(opts.policy);
  const now = opts.now ?? new Date();
  if (Number.isNaN(now.getTime())) throw new BackupError("INVALID_INPUT", "cleanup: invalid date for now");
  const dryRun = opts.dryRun ?? false;
  const trigger = opts.trigger ?? "manual";
  const { db, bucket } = opts;

  const deleted: string[] = [];
  const incompleteDeleted: string[] = [];
  try {
    const plan = planCleanup(await listBackups(bucket), policy, now);
    const result: CleanupResult = {
      deleted,
      kept: plan.keep,
      incompleteDeleted,
      needsAttention: plan.needsAttention,
      dryRun,
      policy,
      cutoff: plan.cutoff?.toISOString() ?? null,
      warnings: [],
    };
    if (dryRun) {
      deleted.push(...plan.deleteComplete.map((b) => b.key));
      for (const entry of plan.deleteIncomplete) incompleteDeleted.push(...entry.keys);
      // A preview changes nothing, so it leaves no trace in the audit trail either: there an entry
      // reads as something that happened, and a dry run's list of "deleted" keys would mislead.
      return result;
    }

    for (const b of plan.deleteComplete) {
      const keys = keysFor(b.name);
      const forms = allObjectKeysFor(b.name);
      // Manifest first: its presence is what makes a backup complete (backup.ts writes it last),
      // so removing it first undoes the backup in reverse order of creation. Interrupted here,
      // the object is left without a manifest: listed as an incomplete leftover (never offered for
      // restore) and removed by a later cleanup. Object first would leave, for the same
      // interruption, a manifest describing an object that no longer exists.
      await deleteBackupKey(bucket, b.name, keys.manifest);
      await deleteBackupKey(bucket, b.name, b.key);
      // A staged copy a successful run failed to remove (backup.ts warns about it) goes too, in
      // either form (plain or age); deleting a missing key is a no-op in R2.
      for (const staging of forms.staging) await deleteBackupKey(bucket, b.name, staging);
      deleted.push(b.key);
    }
    for (const entry of plan.deleteIncomplete) {
      const ordered = [...entry.keys].sort((a, b) => KIND_ORDER[parseBackupKey(a)?.kind ?? "staging"] - KIND_ORDER[parseBackupKey(b)?.kind ?? "staging"]);
      for (const key of ordered) {
        await deleteBackupKey(bucket, entry.name, key);
        incompleteDeleted.push(key);
      }
    }

    const warning = await tryLogActivity(db, {
      action: "backup_cleanup_completed",
      userId: opts.actor,
      details: {
        trigger,
        deleted,
        kept: plan.keep,
        incompleteDeleted,
        needsAttention: plan.needsAttention.map((n) => n.name),
        policy,
        cutoff: result.cutoff,
        dryRun,
      },
    });
    if (warning) result.warnings.push(warning);
    return result;
  } catch (e) {
    const error = isBackupError(e) ? e : new BackupError("INTERNAL", `cleanup failed: ${errorMessage(e)}`, { cause: e });
    if (!dryRun) {
      // What was already removed is gone whatever happens next; the audit trail must say so.
      await tryLogActivity(db, {
        action: "backup_cleanup_failed",
        userId: opts.actor,
        details: { trigger, code: error.code, reason: error.message, deleted, incompleteDeleted, policy, dryRun },
      });
    }
    throw error;
  }
}
