// The operations routes, the cron Worker and the CLIs call: each one a library call under the
// backup lease, so a manual backup, the nightly run and a cleanup never overlap, and each first
// cleans up after a run that died holding the lease (interrupted.ts).
import { tryLogActivity } from "./activity";
import { backupDatabase, type BackupResult, type BackupTrigger } from "./backup";
import type { AgeEncryption } from "./encryption";
import type { SigningKey } from "./signature";
import { BackupError, errorMessage, isBackupError } from "../errors";
import { leasedBucket, leasedDb, recoverInterruptedRun, type InterruptedRunReport } from "./interrupted";
import { backupNameFor } from "./keys";
import { withBackupLock, type Lease, type LeaseOperation } from "./lock";
import type { OffsiteCopyReport } from "../offsite";
import { cleanupOldBackups, type CleanupResult } from "./retention";
import { parseRetentionPolicy, type ParsedRetention, type RetentionPlanOptions, type RetentionPolicy } from "./retention-plan";

interface Bindings {
  db: D1Database;
  bucket: R2Bucket;
  /** Lease TTL (lock.ts DEFAULT_LOCK_TTL_MS unless a test or the CLI's test flag shortens it). */
  leaseTtlMs?: number;
  /** The process clock the lease and the clock check use; the real one unless a test needs another. */
  clock?: () => Date;
}

/**
 * What a backup run is configured with, parsed once by its entry point (a route through lib/env,
 * the cron Worker, the local runner) and handed down whole.
 */
export interface RunSettings {
  /** BACKUP_SIGNING_KEY (null: backups are made unsigned). */
  signingKey?: SigningKey | null;
  /** BACKUP_AGE_RECIPIENTS (null: objects are plain gzip). */
  encryption?: AgeEncryption | null;
  /** BACKUP_LEASE_TTL_SECONDS in ms (undefined: the default). */
  leaseTtlMs?: number;
  /** The off-site copy step bound to OFFSITE_S3_* (null: no copy). */
  offsite?: OffsiteStep | null;
}

/**
 * The off-site copy (lib/offsite offsiteStep), bound by the entry point to its parsed OFFSITE_S3_*.
 * It runs right after the backup is sealed, under the same lease, and never throws: a failed copy
 * is logged and reported, the R2 backup stays good.
 */
export type OffsiteStep = (ctx: {
  bucket: R2Bucket;
  db: D1Database;
  signingKey: SigningKey | null;
  newest: string;
  actor: string | null;
  now: Date;
  heartbeat: () => Promise<void>;
  /** The nightly run's retention policy: applied to the off-site bucket too, by its own listing. */
  retention?: RetentionPolicy | null;
}) => Promise<OffsiteCopyReport>;

async function copyOffsite(
  step: OffsiteStep | null | undefined,
  ctx: { bucket: R2Bucket; db: D1Database; lease: Lease; signingKey?: SigningKey | null; actor?: string | null; now: Date; retention?: RetentionPolicy | null },
  backup: BackupResult,
): Promise<OffsiteCopyReport | null> {
  if (!step) return null;
  const { lease } = ctx;
  const report = await step({
    bucket: ctx.bucket,
    db: ctx.db,
    signingKey: ctx.signingKey ?? null,
    newest: backup.summary.name,
    actor: ctx.actor ?? null,
    now: ctx.now,
    retention: ctx.retention ?? null,
    heartbeat: async () => {
      lease.assertHeld();
      await lease.renewIfDue();
    },
  });
  if (!report.configured) return report;
  backup.summary.warnings.push(...report.warnings);
  const mine = report.copied.find((c) => c.name === backup.summary.name);
  if (mine) backup.manifest = mine.manifest;
  backup.summary.offsite = mine
    ? { verified: true, key: mine.offsite.key, endpointHost: mine.offsite.endpointHost, bucket: mine.offsite.bucket }
    : { verified: false, key: null, endpointHost: null, bucket: null };
  return report;
}

function lockOwner(trigger: BackupTrigger, actor?: string | null): string {
  return actor ? `${trigger}:${actor}` : trigger;
}

/**
 * Takes the lease (refused with CLOCK_SKEW when this clock is far off D1's), cleans up after a dead
 * predecessor, then runs `fn` with bindings that keep the lease alive. The recovery report comes
 * back as warning lines.
 */
async function underLease<T>(
  opts: Bindings & { owner: string; op: LeaseOperation; name?: string },
  fn: (bucket: R2Bucket, db: D1Database, warnings: string[], lease: Lease) => Promise<T>,
): Promise<T> {
  return withBackupLock(
    { db: opts.db, owner: opts.owner, op: opts.op, name: opts.name, ttlMs: opts.leaseTtlMs, now: opts.clock },
    async (lease) => {
      const warnings: string[] = [];
      if (lease.tookOver) warnings.push(describeRecovery(await recoverInterruptedRun(opts.db, opts.bucket, lease.tookOver)));
      return fn(leasedBucket(opts.bucket, lease), leasedDb(opts.db, lease), warnings, lease);
    },
  );
}

function describeRecovery(r: InterruptedRunReport): string {
  const what = r.name ? `writing ${r.name}` : "";
  const cleaned = [...r.deleted, ...r.aborted.map((u) => `upload ${u.uploadId} of ${u.key}`)];
  return (
    `the previous run (${r.owner}, started ${r.startedAt}${what ? `, ${what}` : ""}) was interrupted` +
    (r.completed ? " after its backup was complete" : " and is logged as failed") +
    (cleaned.length ? `; removed ${cleaned.join(", ")}` : "") +
    (r.warnings.length ? `; could not clean: ${r.warnings.join("; ")}` : "")
  );
}

export async function runBackup(
  opts: Bindings & RunSettings & { now?: Date; actor?: string | null; trigger: BackupTrigger },
): Promise<BackupResult & { offsite: OffsiteCopyReport | null }> {
  const now = opts.now ?? new Date();
  return underLease({ ...opts, owner: lockOwner(opts.trigger, opts.actor), op: "backup", name: backupNameFor(now) }, async (bucket, db, warnings, lease) => {
    const result = await backupDatabase({ db, bucket, now, actor: opts.actor, trigger: opts.trigger, ownWrites: lease, signingKey: opts.signingKey, encryption: opts.encryption });
    result.summary.warnings.unshift(...warnings);
    const offsite = await copyOffsite(opts.offsite, { bucket, db, lease, signingKey: opts.signingKey, actor: opts.actor, now }, result);
    return { ...result, offsite };
  });
}

export interface ScheduledRunResult {
  backup: BackupResult;
  cleanup: CleanupResult;
  /** The off-site copy's report (null: no step given, or OFFSITE_S3_* not set). */
  offsite: OffsiteCopyReport | null;
}

/** Nightly: backup, then retention. Throws on any failure, so the cron run is marked failed. */
export async function runScheduledBackup(
  opts: Bindings &
    RunSettings &
    RetentionPlanOptions & {
      now?: Date;
      /** BACKUP_RETENTION as the entry point parsed it; unset: the default policy. */
      retention?: ParsedRetention;
    },
): Promise<ScheduledRunResult> {
  const now = opts.now ?? new Date();
  let backup: BackupResult | undefined;
  try {
    return await underLease({ ...opts, owner: "scheduled", op: "backup", name: backupNameFor(now) }, async (bucket, db, warnings, lease) => {
      backup = await backupDatabase({ db, bucket, now, trigger: "scheduled", actor: null, ownWrites: lease, signingKey: opts.signingKey, encryption: opts.encryption });
      backup.summary.warnings.unshift(...warnings);
      // Before retention: the copy is what the newest backups are kept for.
      const retention = opts.retention?.problem ? null : parseRetentionPolicy(opts.retention?.policy ?? undefined);
      const offsite = await copyOffsite(opts.offsite, { bucket, db, lease, signingKey: opts.signingKey, actor: null, now, retention }, backup);
      // A bad BACKUP_RETENTION must not cost tonight's backup: it fails the run at the cleanup stage.
      if (opts.retention?.problem) throw new BackupError("CONFIG_ERROR", opts.retention.problem);
      const cleanup = await cleanupOldBackups({
        db,
        bucket,
        now,
        trigger: "scheduled",
        actor: null,
        policy: opts.retention?.policy ?? undefined,
        offsiteVerified: opts.offsiteVerified,
      });
      const { summary } = backup;
      const warning = await tryLogActivity(db, {
        action: "scheduled_backup_completed",
        entityId: summary.key,
        details: {
          key: summary.key,
          size: summary.size,
          rows: summary.totalRows,
          deleted: cleanup.deleted,
          incompleteDeleted: cleanup.incompleteDeleted,
          ...(offsite?.configured ? { offsite: backup.summary.offsite?.verified ? "verified" : "failed" } : {}),
        },
      });
      if (warning) backup.summary.warnings.push(warning);
      return { backup, cleanup, offsite: offsite?.configured ? offsite : null };
    });
  } catch (e) {
    const { db } = opts;
    const error = isBackupError(e) ? e : new BackupError("INTERNAL", `scheduled backup failed: ${errorMessage(e)}`, { cause: e });
    // A duplicate trigger in the same second: the first made tonight's backup (see backup.ts).
    if (error.code === "BACKUP_EXISTS") throw error;
    await tryLogActivity(db, {
      action: "scheduled_backup_failed",
      entityId: backup?.summary.key ?? null,
      details: {
        // A backup that succeeded before cleanup failed is still a good backup: say which.
        stage: backup ? "cleanup" : "backup",
        key: backup?.summary.key ?? null,
        code: error.code,
        reason: error.message,
      },
    });
    throw error;
  }
}

export async function runCleanup(
  opts: Bindings &
    RetentionPlanOptions & {
    now?: Date;
    actor?: string | null;
    dryRun?: boolean;
    policy?: Partial<RetentionPolicy>;
    trigger?: BackupTrigger;
  },
): Promise<CleanupResult> {
  const trigger = opts.trigger ?? "manual";
  // A bad policy is refused before the lock is taken: a 400 should not hold up a backup.
  const policy = parseRetentionPolicy(opts.policy);
  const cleanup = (bucket: R2Bucket, dryRun: boolean) =>
    cleanupOldBackups({ db: opts.db, bucket, now: opts.now, actor: opts.actor, dryRun, policy, trigger, offsiteVerified: opts.offsiteVerified });
  // A preview writes nothing, so it takes no lock (taking one is a write) and is not refused while
  // a backup runs. The running backup's parts are too young to be listed for deletion; once it
  // completes, a real run may delete one more old backup than the preview showed.
  if (opts.dryRun) return cleanup(opts.bucket, true);
  return underLease({ ...opts, owner: lockOwner(trigger, opts.actor), op: "cleanup" }, async (bucket, _db, warnings) => {
    const result = await cleanup(bucket, false);
    result.warnings.unshift(...warnings);
    return result;
  });
}
