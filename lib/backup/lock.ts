// One backup or cleanup run at a time. Pages routes, the cron Worker and the CLIs share nothing but
// D1, so the lock is a row in D1 (migrations/0002_backup_lock.sql, 0003_backup_lease.sql) taken
// with one atomic upsert. It is a lease: a short expiry that the running run keeps pushing forward
// (between queries and upload parts, interrupted.ts, plus a timer), so a run killed mid-way (Worker evicted, CPU
// limit, SIGKILL, deploy) stops holding it within one TTL and never blocks the next run for long.
// The row also records what the run has in flight (`state`: its backup name and open multipart
// uploads), so the run that takes over an expired lease can log and clean up after the dead one
// (interrupted.ts).
//
// The dump keeps backup_lock's schema but never its rows (SCHEMA_ONLY_TABLES in dump.ts): the
// row is the running backup's own lock, and a restored database must start unlocked.
import { BackupError, errorMessage, wrapBindingError } from "../errors";
import type { OwnWrites } from "./dump";

export const BACKUP_LOCK_NAME = "backup";
/**
 * Two minutes: a dead run blocks the next one for at most this long, while a live run renews every
 * TTL/4 (30 s), so it would need three renewals in a row to fail (D1 unreachable for 90 s) before
 * another run could start beside it, and then the live run stops itself (LEASE_LOST).
 */
export const DEFAULT_LOCK_TTL_MS = 2 * 60 * 1000;

/**
 * BACKUP_LEASE_TTL_SECONDS: whole seconds from 5 to 3600 (undefined when unset: the default). A
 * shorter lease frees a dead run's lock sooner; the live run renews every quarter of it.
 */
export function parseLeaseTtl(raw: string | undefined): number | undefined {
  const value = raw?.trim();
  if (value === undefined || value === "") return undefined;
  if (!/^\d{1,4}$/.test(value) || Number(value) < 5 || Number(value) > 3600) {
    throw new BackupError("CONFIG_ERROR", "BACKUP_LEASE_TTL_SECONDS must be a whole number of seconds from 5 to 3600");
  }
  return Number(value) * 1000;
}
/** Beyond this, the caller's clock and D1's disagree too much for lease times (or backup names) to mean anything. */
export const MAX_CLOCK_SKEW_MS = 5 * 60 * 1000;

export type LeaseOperation = "backup" | "cleanup";

/** What a run has in flight, stored as JSON in backup_lock.state. */
export interface LeaseState {
  op: LeaseOperation;
  /** The backup being written (backups only). */
  name?: string;
  /** Multipart uploads started and not yet completed or aborted. */
  uploads: { key: string; uploadId: string }[];
}

export interface BackupLockOptions {
  db: D1Database;
  /** Clock for start, renewals and expiry; the real clock unless a test needs another. */
  now?: () => Date;
  ttlMs?: number;
  /** Who holds the lock (e.g. "scheduled", "manual:<user id>"), for the error another caller sees. */
  owner?: string;
  op?: LeaseOperation;
  /** The backup this run will write, recorded so a run taking over after a crash knows what to clean. */
  name?: string;
}

/** A lease row that had expired when this run took it over: its run died without releasing it. */
export interface ExpiredLease {
  owner: string;
  startedAt: string;
  expiresAt: string;
  /** null for a row written before the lease kept state (0002 only), or unreadable. */
  state: LeaseState | null;
}

export interface HeldLock {
  /** The label plus a random suffix, so only this run can release this lock. */
  owner: string;
  startedAt: string;
  expiresAt: string;
  /** The dead run's row this acquisition replaced, if any. */
  tookOver: ExpiredLease | null;
}

// Inserts the row, or replaces it only when the current holder's lease has expired. RETURNING
// yields a row exactly when this caller now holds the lock; the decision is one statement, so two
// callers can never both win. Nothing is written when the caller's clock (?3) is more than ?6 ms
// off D1's. The SELECTs before it run in the same batch (one transaction): the first reads D1's
// clock, the second exactly the row the upsert replaced. One round trip, as the plain lock had:
// a request that reached the lock a step later lost races it used to win (API concurrent POSTs).
const ACQUIRE_SQL = `INSERT INTO backup_lock (name, owner, started_at, expires_at, state)
SELECT ?1, ?2, ?3, ?4, ?5 WHERE abs(julianday('now') - julianday(?3)) * 86400000.0 <= ?6
ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, started_at = excluded.started_at, expires_at = excluded.expires_at, state = excluded.state
WHERE backup_lock.expires_at <= excluded.started_at
RETURNING owner`;
const SELECT_SQL = "SELECT owner, started_at, expires_at, state FROM backup_lock WHERE name = ?1";
const DB_CLOCK_SQL = "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now') AS t";

interface LockRow {
  owner: string;
  started_at: string;
  expires_at: string;
  state: string | null;
}

function lockDbError(what: string, e: unknown): BackupError {
  if (/no such table:?\s*backup_lock/i.test(errorMessage(e))) {
    return new BackupError(
      "CONFIG_ERROR",
      "the backup_lock table is missing: apply the D1 migrations (migrations/0002_backup_lock.sql)",
      { cause: e },
    );
  }
  if (/no such column:?\s*state|has no column named state/i.test(errorMessage(e))) {
    return new BackupError(
      "CONFIG_ERROR",
      "backup_lock has no state column: apply the D1 migrations (migrations/0003_backup_lease.sql)",
      { cause: e },
    );
  }
  return wrapBindingError("DATABASE_ERROR", what, e);
}

/** The holder's label without the random suffix that makes it unique to one run. */
export const ownerLabel = (owner: string) => owner.replace(/:[^:]*$/, "");

function parseState(text: string | null): LeaseState | null {
  if (!text) return null;
  try {
    const s = JSON.parse(text) as LeaseState;
    if ((s.op === "backup" || s.op === "cleanup") && Array.isArray(s.uploads)) return s;
  } catch {
    // fall through: an unreadable state is reported as unknown, never guessed at
  }
  return null;
}

/**
 * Refuses to run when this process's clock and D1's differ by more than MAX_CLOCK_SKEW_MS: lease
 * times from a wrong clock would let runs overlap or block, and the backup would be named for the
 * wrong time (a future name outranks every real backup).
 */
function assertClock(dbTimeText: string | undefined, ours: Date): void {
  const dbTime = Date.parse(dbTimeText ?? "");
  if (Number.isNaN(dbTime)) throw new BackupError("DATABASE_ERROR", `unreadable database clock: ${dbTimeText}`);
  if (Math.abs(ours.getTime() - dbTime) > MAX_CLOCK_SKEW_MS) {
    const ourIso = ours.toISOString();
    const dbIso = new Date(dbTime).toISOString();
    throw new BackupError(
      "CLOCK_SKEW",
      `refusing to run: this clock says ${ourIso} but the database says ${dbIso} (${Math.round((ours.getTime() - dbTime) / 1000)} s apart, limit ${MAX_CLOCK_SKEW_MS / 1000} s); fix the clock`,
      { details: { clock: ourIso, databaseClock: dbIso } },
    );
  }
}

export async function acquireBackupLock(opts: BackupLockOptions): Promise<HeldLock> {
  const ttlMs = opts.ttlMs ?? DEFAULT_LOCK_TTL_MS;
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
    throw new BackupError("INVALID_INPUT", `lock ttlMs must be a positive integer, got ${ttlMs}`);
  }
  const clock = opts.now ?? (() => new Date());
  const owner = `${opts.owner ?? "backup"}:${crypto.randomUUID()}`;
  const state: LeaseState = { op: opts.op ?? "backup", ...(opts.name ? { name: opts.name } : {}), uploads: [] };

  // A holder can release between our failed upsert and our read of its row; then try again.
  for (let attempt = 0; attempt < 3; attempt++) {
    const now = clock();
    if (Number.isNaN(now.getTime())) throw new BackupError("INVALID_INPUT", "lock clock returned an invalid date");
    const startedAt = now.toISOString();
    const expiresAt = new Date(now.getTime() + ttlMs).toISOString();
    let before: LockRow | undefined;
    let won: { owner: string } | undefined;
    let dbTime: string | undefined;
    try {
      const [clockRow, prior, upsert] = await opts.db.batch([
        opts.db.prepare(DB_CLOCK_SQL),
        opts.db.prepare(SELECT_SQL).bind(BACKUP_LOCK_NAME),
        opts.db.prepare(ACQUIRE_SQL).bind(BACKUP_LOCK_NAME, owner, startedAt, expiresAt, JSON.stringify(state), MAX_CLOCK_SKEW_MS),
      ]);
      dbTime = (clockRow as D1Result<{ t: string }>).results[0]?.t;
      before = (prior as D1Result<LockRow>).results[0];
      won = (upsert as D1Result<{ owner: string }>).results[0];
    } catch (e) {
      throw lockDbError("taking the backup lock failed", e);
    }
    if (won?.owner !== owner) assertClock(dbTime, now); // the SQL refused a skewed clock: say so
    if (won?.owner === owner) {
      const tookOver = before
        ? { owner: before.owner, startedAt: before.started_at, expiresAt: before.expires_at, state: parseState(before.state) }
        : null;
      return { owner, startedAt, expiresAt, tookOver };
    }

    // Gone, or expired since our upsert (null either way): try again rather than refuse.
    const holder = await readBackupLock(opts.db, clock());
    if (holder?.state === "running") {
      throw new BackupError(
        "BACKUP_IN_PROGRESS",
        `another backup or cleanup has been running since ${holder.startedAt}; try again later (its lease expires at ${holder.expiresAt} unless renewed)`,
        { details: { owner: holder.owner, startedAt: holder.startedAt, expiresAt: holder.expiresAt } },
      );
    }
  }
  throw new BackupError("BACKUP_IN_PROGRESS", "the backup lock is changing hands too fast to take; try again later", {
    details: { startedAt: null, expiresAt: null },
  });
}

/** Releases the lock if this owner still holds it; false when it had expired and was taken over. */
export async function releaseBackupLock(db: D1Database, lock: Pick<HeldLock, "owner">): Promise<boolean> {
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

/**
 * A held lease, kept alive while the run works. `renewIfDue` is cheap to call often (it writes at
 * most every TTL/4); `assertHeld` throws LEASE_LOST once renewals have failed past the expiry, so a
 * run that may have been taken over stops writing instead of racing the run that took over.
 */
export class Lease implements OwnWrites {
  readonly owner: string;
  readonly startedAt: string;
  readonly tookOver: ExpiredLease | null;
  private expiresMs: number;
  private renewedMs: number;
  private lost: BackupError | null = null;
  private inFlight: Promise<void> | null = null;
  private readonly state: LeaseState;
  /** Open dump read windows: writes then wait for takeWrite instead of running on their own. */
  private windows = 0;
  private pending = false;

  constructor(
    private readonly db: D1Database,
    held: HeldLock,
    state: LeaseState,
    private readonly ttlMs: number,
    private readonly clock: () => Date,
  ) {
    this.owner = held.owner;
    this.startedAt = held.startedAt;
    this.tookOver = held.tookOver;
    this.expiresMs = Date.parse(held.expiresAt);
    this.renewedMs = Date.parse(held.startedAt);
    this.state = state;
  }

  get expiresAt(): string {
    return new Date(this.expiresMs).toISOString();
  }

  assertHeld(): void {
    if (!this.lost && this.clock().getTime() >= this.expiresMs) {
      this.lost = new BackupError("LEASE_LOST", `this run's lease expired at ${this.expiresAt} without a renewal; stopping so it cannot overlap another run`);
    }
    if (this.lost) throw this.lost;
  }

  renewIfDue(): Promise<void> {
    if (this.lost || !this.due()) return Promise.resolve();
    return this.writeOrWait();
  }

  /** Records an open multipart upload, so a run taking over after a crash can abort it. */
  noteUpload(key: string, uploadId: string): Promise<void> {
    this.state.uploads.push({ key, uploadId });
    return this.writeOrWait();
  }

  forgetUpload(uploadId: string): Promise<void> {
    this.state.uploads = this.state.uploads.filter((u) => u.uploadId !== uploadId);
    return this.writeOrWait();
  }

  openWindow(): void {
    this.windows++;
  }

  async closeWindow(): Promise<void> {
    this.windows = Math.max(0, this.windows - 1);
    if (this.windows === 0 && this.pending && !this.lost) await this.write();
  }

  takeWrite(): { statement: D1PreparedStatement; settle(changes: number | null): void } | null {
    if (this.lost || this.inFlight || !(this.pending || this.due())) return null;
    this.pending = false;
    const now = this.clock().getTime();
    const expiresMs = now + this.ttlMs;
    return {
      statement: this.statement(expiresMs),
      settle: (changes) => {
        if (changes === null) this.pending = true; // the batch failed: try again with the next
        else this.settled(changes, now, expiresMs);
      },
    };
  }

  private due(): boolean {
    return this.clock().getTime() - this.renewedMs >= this.ttlMs / 4;
  }

  /** Inside a dump's read window the write waits for the dump's next watched batch (takeWrite). */
  private writeOrWait(): Promise<void> {
    if (this.windows > 0) {
      this.pending = true;
      return Promise.resolve();
    }
    return this.write();
  }

  private statement(expiresMs: number): D1PreparedStatement {
    return this.db
      .prepare("UPDATE backup_lock SET expires_at = ?3, state = ?4 WHERE name = ?1 AND owner = ?2")
      .bind(BACKUP_LOCK_NAME, this.owner, new Date(expiresMs).toISOString(), JSON.stringify(this.state));
  }

  private settled(changes: number, now: number, expiresMs: number): void {
    if (changes === 0) {
      this.lost = new BackupError("LEASE_LOST", "this run's lease was taken over by another run (it expired without a renewal); stopping");
      return;
    }
    this.expiresMs = expiresMs;
    this.renewedMs = now;
  }

  /** Pushes the expiry forward and stores the state; one write at a time, later callers wait for it. */
  private async write(): Promise<void> {
    while (this.inFlight) await this.inFlight;
    const p = (async () => {
      const now = this.clock().getTime();
      const expiresMs = now + this.ttlMs;
      this.pending = false;
      let changes: number;
      try {
        changes = (await this.statement(expiresMs).run()).meta.changes ?? 0;
      } catch (e) {
        // Not fatal yet: the lease is still ours until expiresMs, and the next renewal may work.
        console.error(`renewing the backup lease failed (held until ${this.expiresAt}): ${errorMessage(e)}`);
        return;
      }
      this.settled(changes, now, expiresMs);
    })();
    this.inFlight = p;
    try {
      await p;
    } finally {
      this.inFlight = null;
    }
  }
}

/**
 * Runs `fn` under the lease: takes it (refusing with BACKUP_IN_PROGRESS while another run's lease
 * is live), renews it on a timer until `fn` settles, and releases it. The timer covers waits that
 * touch neither binding; a busy run is renewed by its own queries and parts (leasedDb/leasedBucket).
 */
export async function withBackupLock<T>(opts: BackupLockOptions, fn: (lease: Lease) => Promise<T>): Promise<T> {
  const ttlMs = opts.ttlMs ?? DEFAULT_LOCK_TTL_MS;
  const clock = opts.now ?? (() => new Date());
  const held = await acquireBackupLock(opts);
  const lease = new Lease(opts.db, held, { op: opts.op ?? "backup", ...(opts.name ? { name: opts.name } : {}), uploads: [] }, ttlMs, clock);
  const timer = setInterval(() => void lease.renewIfDue(), Math.max(50, Math.floor(ttlMs / 4)));
  try {
    return await fn(lease);
  } finally {
    clearInterval(timer);
    // A failed release must not replace the run's own result or error: the lease then simply
    // expires at its TTL, and the next run takes it over. Say so loudly.
    try {
      if (!(await releaseBackupLock(opts.db, held))) {
        console.warn(`backup lease ${held.owner} had expired and was taken over before this run finished`);
      }
    } catch (e) {
      console.error(`${errorMessage(e)}; runs are refused until the lease expires at ${lease.expiresAt}`);
    }
  }
}

export interface RunningLock {
  /** Who holds it, without the random suffix: "manual:<user id>", "scheduled", "cli", … */
  owner: string;
  startedAt: string;
  expiresAt: string;
  /**
   * running: the lease is live. interrupted: it expired without being released — its run died;
   * the next run logs it as failed and cleans up what it left (`leftovers`).
   */
  state: "running" | "interrupted";
  op: LeaseOperation | null;
  /** The backup the run was writing, and the multipart uploads it had open. */
  name: string | null;
  uploads: { key: string; uploadId: string }[];
}

/**
 * The lease row, or null when there is none. For the dashboard, which shows "Back up now" disabled
 * while a run is going and says "interrupted" for a dead run's expired lease; taking the lock stays
 * the only real check.
 */
export async function readBackupLock(db: D1Database, now: Date = new Date()): Promise<RunningLock | null> {
  let row: LockRow | null;
  try {
    row = await db.prepare(SELECT_SQL).bind(BACKUP_LOCK_NAME).first<LockRow>();
  } catch (e) {
    throw lockDbError("reading the backup lock failed", e);
  }
  if (!row) return null;
  const state = parseState(row.state);
  return {
    owner: ownerLabel(row.owner),
    startedAt: row.started_at,
    expiresAt: row.expires_at,
    state: row.expires_at <= now.toISOString() ? "interrupted" : "running",
    op: state?.op ?? null,
    name: state?.name ?? null,
    uploads: state?.uploads ?? [],
  };
}
