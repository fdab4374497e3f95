// Retention: removes old backups and abandoned leftovers from the bucket that also holds the
// portal's client documents. Which complete backups stay is retention-plan.ts's pure rule; this
// file plans leftovers too and applies the plan to a store (R2 here; the off-site bucket by its
// own listing). Only keys that parse as backup keys (keys.ts) are ever deleted, and every key is
// checked again right before its delete, whatever produced the list.
import { tryLogActivity } from "./activity";
import type { BackupTrigger } from "./backup";
import { BackupError, errorMessage, isBackupError, wrapBindingError } from "../errors";
import { allObjectKeysFor, parseBackupKey, timestampOf } from "./keys";
import { hasVerifiedOffsite, type Manifest } from "./manifest";
import { isFutureDated, listBackups } from "./list";
import {
  parseRetentionPolicy,
  planRetention,
  retentionReference,
  type RetentionDecision,
  type RetentionPlanOptions,
  type RetentionPolicy,
} from "./retention-plan";

/** What retention needs of a listing; BackupListing (list.ts) is one. */
export interface RetentionListing {
  /** Complete backups (object + matching manifest). */
  backups: { name: string; key: string; manifestKey: string; manifest?: Manifest }[];
  /** Leftovers and damaged backups, as list.ts classifies them. */
  incomplete: { name: string; keys: string[]; uploaded: string; reason: string }[];
}

/**
 * A bucket retention can run on: its own listing, and a delete of one key (missing = no-op).
 * applyRetention only ever calls delete with keys that parse as keys of the backup being removed.
 */
export interface BackupStore {
  list(): Promise<RetentionListing>;
  delete(key: string): Promise<void>;
}

/** The R2 bucket (DOCUMENTS) as a BackupStore. */
export function r2Store(bucket: R2Bucket): BackupStore {
  return {
    list: () => listBackups(bucket),
    async delete(key) {
      try {
        await bucket.delete(key);
      } catch (e) {
        throw wrapBindingError("STORAGE_ERROR", `deleting ${key} failed`, e);
      }
    },
  };
}

export interface CleanupOptions extends RetentionPlanOptions {
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
  /** Every complete backup, newest first: kept with its reasons, or deleted. */
  decisions: RetentionDecision[];
  /** Every key removed from incomplete leftovers. */
  incompleteDeleted: string[];
  /**
   * Backups that have both an object and a manifest yet do not check out (manifest unreadable, of
   * a newer format, or not matching the object), and future-dated ones. Never deleted
   * automatically: that could be a good backup whose manifest read failed for a moment, or one
   * written by a newer d1-backup.
   */
  needsAttention: NeedsAttention[];
  dryRun: boolean;
  policy: RetentionPolicy;
  /** The time the days, weeks and months count back from (retention-plan.ts); null without backups. */
  reference: string | null;
  warnings: string[];
}

export interface CleanupPlan {
  policy: RetentionPolicy;
  reference: Date | null;
  decisions: RetentionDecision[];
  /** Complete backups to delete, oldest first. */
  deleteComplete: { name: string; key: string; manifestKey: string }[];
  keep: string[];
  deleteIncomplete: { name: string; keys: string[] }[];
  needsAttention: NeedsAttention[];
}

const HOUR_MS = 60 * 60 * 1000;

/** Decides what a cleanup removes, from a listing; deletes nothing. */
export function planCleanup(listing: RetentionListing, policy: RetentionPolicy, now: Date, opts: RetentionPlanOptions = {}): CleanupPlan {
  const decisions = planRetention(listing.backups, now, policy, opts);
  const byName = new Map(listing.backups.map((b) => [b.name, b]));
  const needsAttention: NeedsAttention[] = listing.backups
    .filter((b) => isFutureDated(b.name, now))
    .map((b) => ({
      name: b.name,
      keys: [b.key, b.manifestKey],
      reason: `dated ${nameTime(b.name).toISOString()}, in the future (a clock fault?): kept, and not counted as the newest backup`,
    }));
  const deleteComplete = decisions
    .filter((d) => !d.keep)
    .map((d) => ({ name: d.name, key: d.key, manifestKey: byName.get(d.name)!.manifestKey }))
    .reverse();
  const keep = decisions.filter((d) => d.keep).map((d) => d.key);

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

  return { policy, reference: retentionReference(listing.backups, now), decisions, deleteComplete, keep, deleteIncomplete, needsAttention };
}

function nameTime(name: string): Date {
  const t = timestampOf(name);
  if (!t) throw new BackupError("INTERNAL", `listing returned a backup with an invalid name: ${name}`);
  return t;
}

/** The last line of defence for client documents: refuses any key that is not this backup's. */
async function deleteBackupKey(store: BackupStore, name: string, key: string): Promise<void> {
  const parsed = parseBackupKey(key);
  if (!parsed || parsed.name !== name) {
    throw new BackupError("INTERNAL", `refusing to delete ${key}: not a key of backup ${name}`);
  }
  await store.delete(key);
}

const KIND_ORDER = { manifest: 0, object: 1, staging: 2 } as const;

export interface ApplyRetentionOptions extends RetentionPlanOptions {
  store: BackupStore;
  now: Date;
  /** Parsed already (parseRetentionPolicy / parseRetentionSetting at the entry point). */
  policy: RetentionPolicy;
  dryRun?: boolean;
  /** Filled as keys go, so a caller can report what was removed before a failure. */
  progress?: { deleted: string[]; incompleteDeleted: string[] };
}

export interface AppliedRetention {
  plan: CleanupPlan;
  /** Object keys of the complete backups deleted (in a dry run: that would be), oldest first. */
  deleted: string[];
  incompleteDeleted: string[];
}

/**
 * Lists the store, plans, and (unless dryRun) deletes: the whole of retention for one store, with
 * no audit trail of its own (cleanupOldBackups writes R2's). Throws on the first failed delete.
 */
export async function applyRetention(opts: ApplyRetentionOptions): Promise<AppliedRetention> {
  const { store, policy, now } = opts;
  const deleted = opts.progress?.deleted ?? [];
  const incompleteDeleted = opts.progress?.incompleteDeleted ?? [];
  const listing = await store.list();
  // Without a given set, the manifests say which backups have a verified off-site copy (R2's do).
  const offsiteVerified =
    opts.offsiteVerified ?? new Set(listing.backups.filter((b) => b.manifest && hasVerifiedOffsite(b.manifest)).map((b) => b.name));
  const plan = planCleanup(listing, policy, now, { ...opts, offsiteVerified });
  if (opts.dryRun) {
    deleted.push(...plan.deleteComplete.map((b) => b.key));
    for (const entry of plan.deleteIncomplete) incompleteDeleted.push(...entry.keys);
    return { plan, deleted, incompleteDeleted };
  }
  for (const b of plan.deleteComplete) {
    // Manifest first: its presence is what makes a backup complete (backup.ts writes it last),
    // so removing it first undoes the backup in reverse order of creation. Interrupted here,
    // the object is left without a manifest: listed as an incomplete leftover (never offered for
    // restore) and removed by a later cleanup. Object first would leave, for the same
    // interruption, a manifest describing an object that no longer exists.
    await deleteBackupKey(store, b.name, b.manifestKey);
    await deleteBackupKey(store, b.name, b.key);
    // A staged copy a successful run failed to remove (backup.ts warns about it) goes too, in
    // either form (plain or age); deleting a missing key is a no-op.
    for (const staging of allObjectKeysFor(b.name).staging) await deleteBackupKey(store, b.name, staging);
    deleted.push(b.key);
  }
  for (const entry of plan.deleteIncomplete) {
    const ordered = [...entry.keys].sort((a, b) => KIND_ORDER[parseBackupKey(a)?.kind ?? "staging"] - KIND_ORDER[parseBackupKey(b)?.kind ?? "staging"]);
    for (const key of ordered) {
      await deleteBackupKey(store, entry.name, key);
      incompleteDeleted.push(key);
    }
  }
  return { plan, deleted, incompleteDeleted };
}

export async function cleanupOldBackups(opts: CleanupOptions): Promise<CleanupResult> {
  const policy = parseRetentionPolicy(opts.policy);
  const now = opts.now ?? new Date();
  if (Number.isNaN(now.getTime())) throw new BackupError("INVALID_INPUT", "cleanup: invalid date for now");
  const dryRun = opts.dryRun ?? false;
  const trigger = opts.trigger ?? "manual";
  const { db, bucket } = opts;

  const progress = { deleted: [] as string[], incompleteDeleted: [] as string[] };
  const { deleted, incompleteDeleted } = progress;
  try {
    const { plan } = await applyRetention({ store: r2Store(bucket), now, policy, dryRun, progress, offsiteVerified: opts.offsiteVerified });
    const result: CleanupResult = {
      deleted,
      kept: plan.keep,
      decisions: plan.decisions,
      incompleteDeleted,
      needsAttention: plan.needsAttention,
      dryRun,
      policy,
      reference: plan.reference?.toISOString() ?? null,
      warnings: [],
    };
    // A preview changes nothing, so it leaves no trace in the audit trail either: there an entry
    // reads as something that happened, and a dry run's list of "deleted" keys would mislead.
    if (dryRun) return result;

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
        reference: result.reference,
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
