// One backup or cleanup run at a time. Pages routes, the cron Worker and the CLIs share nothing but
// D1, so the lock is a row in D1 (migrations/0002_backup_lock.sql) taken with one atomic upsert.
// It carries an expiry instead of relying on release: a run killed mid-way (Worker evicted, CPU
// limit, deploy) never reaches its `finally`, and its lock must not block every later run.
//
// The dump keeps backup_lock's schema but never its rows (SCHEMA_ONLY_TABLES in dump.ts): the
// row is the running backup's own lock, and a restored database must start unlocked.
import { BackupError, errorMessage, wrapBindingError } from "../errors";

export const BACKUP_LOCK_NAME = "backup";
/**
 * Longer than any run can last: the cron Worker's wall-clock limit is 15 minutes. A lock that
 * expired while its run was still going would let a second run in beside it.
 */
export const DEFAULT_LOCK_TTL_MS = 30 * 60 * 1000;

export interface BackupLockOptions {
  db: D1Database;
  /** Clock for start and expiry; the real clock unless a test needs another. */
  now?: () => Date;
  ttlMs?: number;
  /** Who holds the lock (e.g. "scheduled", "manual:<user id>"), for the error another caller sees. */
  owner?: string;
}

export interface HeldLock {
  /** The label plus a random suffix, so only this run can release this lock. */
  owner: string;
  startedAt: string;
  expiresAt: string;
}

// Inserts the row, or replaces it only when the current holder's lock has expired. RETURNING
// yields a row exactly when this caller now holds the lock; the decision is one statement, so
// two callers can never both win.
const ACQUIRE_SQL = `INSERT INTO backup_lock (name, owner, started_at, expires_at) VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, started_at = excluded.started_at, expires_at = excluded.expires_at
WHERE backup_lock.expires_at <= excluded.started_at
RETURNING owner`;

function lockDbError(what: string, e: unknown): BackupError {
  if (/no such table:?\s*backup_lock/i.test(errorMessage(e))) {
    return new BackupError(
      "CONFIG_ERROR",
      "the backup_lock table is missing: apply the D1 migrations (migrations/0002_backup_lock.sql)",
      { cause: e },
    );
  }
  return wrapBindingError("DATABASE_ERROR", what, e);
}

/** The holder's label without the random suffix that makes it unique to one run. */
const ownerLabel = (owner: string) => owner.replace(/:[^:]*$/, "");

export async function acquireBackupLock(opts: BackupLockOptions): Promise<HeldLock> {
  const ttlMs = opts.ttlMs ?? DEFAULT_LOCK_TTL_MS;
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
    throw new BackupError("INVALID_INPUT", `lock ttlMs must be a positive integer, got ${ttlMs}`);
  }
  const clock = opts.now ?? (() => new Date());
  const owner = `${opts.owner ?? "backup"}:${crypto.randomUUID()}`;

  // A holder can release between our failed upsert and our read of its row; then try again.
  for (let attempt = 0; attempt < 3; attempt++) {
    const now = clock();
    if (Number.isNaN(now.getTime())) throw new BackupError("INVALID_INPUT", "lock clock returned an invalid date");
    const startedAt = now.toISOString();
    const expiresAt = new Date(now.getTime() + ttlMs).toISOString();
    let won: { owner: string } | null;
    try {
      won = await opts.db.prepare(ACQUIRE_SQL).bind(BACKUP_LOCK_NAME, owner, startedAt, expiresAt).first<{ owner: string }>();
    } catch (e) {
      throw lockDbError("taking the backup lock failed", e);
    }
    if (won?.owner === owner) return { owner, startedAt, expiresAt };

    // Gone, or expired since our upsert (null either way): try again rather than refuse.
    const holder = await readBackupLock(opts.db, clock());
    if (holder) {
      throw new BackupError(
        "BACKUP_IN_PROGRESS",
        `another backup or cleanup has been running since ${holder.startedAt}; try again later (its lock expires at ${holder.expiresAt})`,
        { details: { ...holder } },
      );
    }
  }
  throw new BackupError("BACKUP_IN_PROGRESS", "the backup lock is changing hands too fast to take; try again later", {
    details: { startedAt: null, expiresAt: null },
  });
}

/** Releases the lock if this owner still holds it; false when it had expired and was taken over. */
export async function releaseBackupLock(db: D1Database, lock: HeldLock): Promise<boolean> {
  try {
    const res = await db
      .prepare("DELETE FROM backup_lock WHERE name = ? AND owner = ?")
      .bind(BACKUP_LOCK_NAME, lock.owner)
      .run();
    return (res.meta.changes ?? 0) > 0;
  } catch (e) {
    throw lockDbError("releasing the backup lock failed", e);
  }
}

export async function withBackupLock<T>(opts: BackupLockOptions, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireBackupLock(opts);
  try {
    return await fn();
  } finally {
    // A failed release must not replace the run's own result or error: the lock then simply
    // expires at its TTL. Say so loudly, since runs are refused until then.
    try {
      if (!(await releaseBackupLock(opts.db, lock))) {
        console.warn(`backup lock ${lock.owner} had expired and was taken over before this run finished (TTL too short?)`);
      }
    } catch (e) {
      console.error(`${errorMessage(e)}; runs are refused until the lock expires at ${lock.expiresAt}`);
    }
  }
}

export interface RunningLock {
  /** Who holds it, without the random suffix: "manual:<user id>", "scheduled", "cli", … */
  owner: string;
  startedAt: string;
  expiresAt: string;
}

/**
 * The run holding the lock right now, or null (no row, or only an expired one: a crashed run
 * stops counting at its expiry, exactly as acquireBackupLock decides). For the dashboard, which
 * shows "Back up now" disabled while a run is going; taking the lock stays the only real check.
 */
export async function readBackupLock(db: D1Database, now: Date = new Date()): Promise<RunningLock | null> {
  let row: { owner: string; started_at: string; expires_at: string } | null;
  try {
    row = await db.prepare("SELECT owner, started_at, expires_at FROM backup_lock WHERE name = ?").bind(BACKUP_LOCK_NAME).first();
  } catch (e) {
    throw lockDbError("reading the backup lock failed", e);
  }
  if (!row || row.expires_at <= now.toISOString()) return null;
  return { owner: ownerLabel(row.owner), startedAt: row.started_at, expiresAt: row.expires_at };
}
