// The operations routes, the cron Worker and the CLIs call: each one a library call under the
// backup lock, so a manual backup, the nightly run and a cleanup never overlap.
import { tryLogActivity } from "./activity";
import { backupDatabase, type BackupResult, type BackupTrigger } from "./backup";
import type { SigningKey } from "./signature";
import { BackupError, errorMessage, isBackupError } from "../errors";
import { withBackupLock } from "./lock";
import { cleanupOldBackups, parseRetentionPolicy, type CleanupResult, type RetentionPolicy } from "./retention";

interface Bindings {
  db: D1Database;
  bucket: R2Bucket;
}

/** BACKUP_SIGNING_KEY as the entry point parsed it (null: backups are made unsigned). */
type Signing = { signingKey?: SigningKey | null };

function lockOwner(trigger: BackupTrigger, actor?: string | null): string {
  return actor ? `${trigger}:${actor}` : trigger;
}

export async function runBackup(
  opts: Bindings & Signing & { now?: Date; actor?: string | null; trigger: BackupTrigger },
): Promise<BackupResult> {
  return withBackupLock({ db: opts.db, owner: lockOwner(opts.trigger, opts.actor) }, () =>
    backupDatabase({ db: opts.db, bucket: opts.bucket, now: opts.now, actor: opts.actor, trigger: opts.trigger, signingKey: opts.signingKey }),
  );
}

export interface ScheduledRunResult {
  backup: BackupResult;
  cleanup: CleanupResult;
}

/** Nightly: backup, then retention. Throws on any failure, so the cron run is marked failed. */
export async function runScheduledBackup(opts: Bindings & Signing & { now?: Date }): Promise<ScheduledRunResult> {
  const { db, bucket } = opts;
  const now = opts.now ?? new Date();
  let backup: BackupResult | undefined;
  try {
    return await withBackupLock({ db, owner: "scheduled" }, async () => {
      backup = await backupDatabase({ db, bucket, now, trigger: "scheduled", actor: null, signingKey: opts.signingKey });
      const cleanup = await cleanupOldBackups({ db, bucket, now, trigger: "scheduled", actor: null });
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
        },
      });
      if (warning) backup.summary.warnings.push(warning);
      return { backup, cleanup };
    });
  } catch (e) {
    const error = isBackupError(e) ? e : new BackupError("INTERNAL", `scheduled backup failed: ${errorMessage(e)}`, { cause: e });
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
  opts: Bindings & {
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
  const cleanup = () =>
    cleanupOldBackups({ db: opts.db, bucket: opts.bucket, now: opts.now, actor: opts.actor, dryRun: opts.dryRun, policy, trigger });
  // A preview writes nothing, so it takes no lock (taking one is a write) and is not refused while
  // a backup runs. The running backup's parts are too young to be listed for deletion; once it
  // completes, a real run may delete one more old backup than the preview showed.
  if (opts.dryRun) return cleanup();
  return withBackupLock({ db: opts.db, owner: lockOwner(trigger, opts.actor) }, cleanup);
}
