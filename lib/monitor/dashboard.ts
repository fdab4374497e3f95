// What the admin dashboard (app/admin/backups) and GET /api/admin/backup/status show: health,
// the run holding the lock, the backups, recent activity and the size series, gathered in one
// call from one R2 listing (health, table and chart all describe the same listing).
import {
  BACKUP_ACTIONS,
  BackupError,
  hasVerifiedOffsite,
  listBackups,
  parseDetails,
  readBackupLock,
  wrapBindingError,
  type BackupAction,
  type BackupListing,
  type IncompleteEntry,
  type RunningLock,
} from "../backup";
import { DAY_MS, DRILL_ACTIONS, drillOf, getBackupHealth, healthOf, sqliteUtc, toTime, type BackupHealth, type LastDrill } from "./health";

interface ActivityRow {
  id: number;
  user_id: string | null;
  user_name: string | null;
  action: string;
  entity_type: string | null;
  entity_id: string | null;
  details: string | null;
  created_at: string;
}

export interface ActivityEntryView {
  id: number;
  action: BackupAction;
  /** Clerk user id of the admin, or null for the system (cron, CLI). */
  userId: string | null;
  /** The portal's name for that user (users.full_name), when the portal knows the id. */
  userName: string | null;
  entityType: string | null;
  entityId: string | null;
  /** details parsed as JSON; the raw text when it is not valid JSON; null when absent. */
  details: unknown;
  createdAt: string;
}

export interface ActivityPage {
  entries: ActivityEntryView[];
  /** All backup activity rows, for the pager. */
  total: number;
  limit: number;
  offset: number;
}

export const MAX_ACTIVITY_LIMIT = 100;

function pageParam(value: unknown, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined || value === null) return fallback;
  const n = typeof value === "string" && /^\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new BackupError("INVALID_INPUT", `${name} must be an integer from ${min} to ${max}`);
  }
  return n;
}

/**
 * Backup activity (every action in BACKUP_ACTIONS: runs, cleanups, restoration tests, alerts),
 * newest first, one page at a time. `limit` 1..100 (default 20) and `offset` >= 0 (default 0)
 * may be numbers or the digit strings of a query string; anything else is INVALID_INPUT (400).
 * The page and the count are read in one batch (one transaction), so they agree.
 */
export async function recentBackupActivity(
  db: D1Database,
  opts: { limit?: number | string; offset?: number | string } = {},
): Promise<ActivityPage> {
  const limit = pageParam(opts.limit, "limit", 20, 1, MAX_ACTIVITY_LIMIT);
  const offset = pageParam(opts.offset, "offset", 0, 0, Number.MAX_SAFE_INTEGER);
  const where = `action IN (${BACKUP_ACTIONS.map(() => "?").join(", ")})`;
  let page: D1Result<ActivityRow>;
  let count: D1Result<{ n: number }>;
  try {
    [page, count] = (await db.batch([
      db
        .prepare(
          // users.id is the Clerk user id (migrations/0001), so the feed can say who by name.
          `SELECT a.id, a.user_id, u.full_name AS user_name, a.action, a.entity_type, a.entity_id, a.details, a.created_at
           FROM activity_log a LEFT JOIN users u ON u.id = a.user_id WHERE a.${where} ORDER BY a.id DESC LIMIT ? OFFSET ?`,
        )
        .bind(...BACKUP_ACTIONS, limit, offset),
      db.prepare(`SELECT COUNT(*) AS n FROM activity_log WHERE ${where}`).bind(...BACKUP_ACTIONS),
    ])) as [D1Result<ActivityRow>, D1Result<{ n: number }>];
  } catch (e) {
    throw wrapBindingError("DATABASE_ERROR", "reading activity_log failed", e);
  }
  return {
    entries: page.results.map((r) => ({
      id: r.id,
      action: r.action as BackupAction,
      userId: r.user_id,
      userName: r.user_name,
      entityType: r.entity_type,
      entityId: r.entity_id,
      details: parseDetails(r.details),
      createdAt: r.created_at,
    })),
    total: count.results[0]?.n ?? 0,
    limit,
    offset,
  };
}

export interface SizePoint {
  /** UTC day of the backup, YYYY-MM-DD. */
  date: string;
  /** Bytes of the gzip'd backup object. */
  size: number;
  key: string;
}

/**
 * One point per complete backup taken in the `days` days up to `now` (createdAt in
 * [now - days, now]), oldest first, for a size-over-time chart. Several backups on one day give
 * several points with the same date; the key tells them apart.
 */
export function backupSizeSeries(listing: BackupListing, now: Date, days = 30): SizePoint[] {
  if (!Number.isSafeInteger(days) || days < 1) throw new BackupError("INVALID_INPUT", "days must be a positive integer");
  const nowMs = toTime(now, "now");
  const from = nowMs - days * DAY_MS;
  return listing.backups
    .map((b) => ({ b, t: Date.parse(b.manifest.createdAt) }))
    .filter(({ t }) => t >= from && t <= nowMs)
    .sort((x, y) => x.t - y.t)
    .map(({ b, t }) => ({ date: new Date(t).toISOString().slice(0, 10), size: b.size, key: b.key }));
}

export interface BackupStatus {
  health: BackupHealth;
  /** The backup or cleanup holding a live lease now; null when none is running. */
  running: RunningLock | null;
  /**
   * A run whose lease expired without being released: it died mid-way. The next run logs it as
   * failed and removes what it left (`name`, `uploads`); null when there is none.
   */
  interrupted: RunningLock | null;
}

export interface StatusOptions {
  db: D1Database;
  bucket: R2Bucket;
  now?: Date;
  listing?: BackupListing;
  /** OFFSITE_S3_* are set (health: attention when the newest backup has no verified off-site copy). */
  offsiteConfigured?: boolean;
}

export async function getBackupStatus(opts: StatusOptions): Promise<BackupStatus> {
  const now = opts.now ?? new Date();
  const [health, lease] = await Promise.all([
    getBackupHealth({ db: opts.db, bucket: opts.bucket, now, listing: opts.listing, offsiteConfigured: opts.offsiteConfigured }),
    readBackupLock(opts.db, now),
  ]);
  return { health, running: lease?.state === "running" ? lease : null, interrupted: lease?.state === "interrupted" ? lease : null };
}

/** One complete backup as the dashboard's table shows it. */
export interface DashboardBackup {
  name: string;
  key: string;
  createdAt: string;
  size: number;
  tables: { name: string; rows: number }[];
  rows: number;
  sha256: string;
  /**
   * The listing only calls a backup complete when the object's size and stored sha256 equal its
   * manifest's (list.ts); anything else is among the incomplete ones with the reason.
   */
  checksum: "matches manifest";
  latestMigration: string | null;
  snapshot: "atomic" | "paged";
  trigger: string;
  durationMs: number;
  /**
   * The key that signed the manifest, as the manifest says (null: unsigned). The dashboard has no
   * public key to check it with; the restore verifies it (BACKUP_VERIFY_KEY) before using it.
   */
  signedBy: string | null;
  /** The object is an age file (`.sql.gz.age`): restoring it needs the age identity. */
  encrypted: boolean;
  /**
   * The off-site copy as the manifest records it: verified (read back, sha256 equal), missing, or
   * not-configured (OFFSITE_S3_* unset). R2 is always there: the listing holds only complete R2 backups.
   */
  offsite: "verified" | "missing" | "not-configured";
  /** Where the verified copy is (endpoint host / bucket / key), when there is one. */
  offsiteAt: string | null;
  /** The newest restore drill of this backup (✓ proven / ✗ what differed / skipped), null: never drilled (–). */
  drill?: LastDrill | null;
}

/** One completed restore drill: how long the replay took (the RTO it measured). */
export interface RtoPoint {
  /** UTC day of the drill, YYYY-MM-DD. */
  date: string;
  at: string;
  replayMs: number;
  key: string | null;
}

/** Restore drills, newest first (activity_log; at most `limit`). Empty when none were logged. */
export async function restoreDrills(db: D1Database, limit = 400): Promise<LastDrill[]> {
  try {
    const r = await db
      .prepare(`SELECT action, entity_id, details, created_at FROM activity_log WHERE action IN (${DRILL_ACTIONS.map(() => "?").join(", ")}) ORDER BY id DESC LIMIT ?`)
      .bind(...DRILL_ACTIONS, limit)
      .all<{ action: string; entity_id: string | null; details: string | null; created_at: string }>();
    return r.results.map(drillOf);
  } catch (e) {
    throw wrapBindingError("DATABASE_ERROR", "reading activity_log failed", e);
  }
}

/** The replay time of every completed drill in the `days` days up to `now`, oldest first, for the RTO chart. */
export function rtoSeries(drills: LastDrill[], now: Date, days = 30): RtoPoint[] {
  const nowMs = toTime(now, "now");
  return drills
    .filter((d) => d.outcome === "completed" && typeof d.replayMs === "number")
    .map((d) => ({ d, t: Date.parse(sqliteUtc(d.at)) }))
    .filter(({ t }) => t >= nowMs - days * DAY_MS && t <= nowMs)
    .sort((x, y) => x.t - y.t)
    .map(({ d, t }) => ({ date: new Date(t).toISOString().slice(0, 10), at: d.at, replayMs: d.replayMs!, key: d.key }));
}

/** Whether D1 answered; when it did not, everything D1 holds (activity, lock, last run) is absent. */
export type DatabaseState = { available: true } | { available: false; code: string; reason: string };

export interface Dashboard extends BackupStatus {
  /**
   * D1 lost, emptied or with its tables dropped is exactly when an admin comes here to restore:
   * the R2 side (backups, downloads, health from R2 alone) is still shown then.
   */
  database: DatabaseState;
  backups: DashboardBackup[];
  incomplete: IncompleteEntry[];
  activity: ActivityPage;
  /** Sizes of the backups of the last 30 days, oldest first. */
  sizes: SizePoint[];
  offsiteConfigured: boolean;
  /** Replay times of the completed restore drills of the last 30 days, oldest first. */
  rto?: RtoPoint[];
  /** The newest backup whose newest restore drill passed: the one to prefer when restoring. */
  provenRestorable?: { key: string; name: string; createdAt: string; drilledAt: string } | null;
}

export interface DashboardOptions {
  db: D1Database;
  bucket: R2Bucket;
  now?: Date;
  /** Activity page: limit 1..100 (default 20), offset >= 0; digit strings accepted (query strings). */
  activity?: { limit?: number | string; offset?: number | string };
  offsiteConfigured?: boolean;
}

const EMPTY_ACTIVITY = (opts: DashboardOptions["activity"]): ActivityPage => ({
  entries: [],
  total: 0,
  limit: Number(opts?.limit ?? 20),
  offset: Number(opts?.offset ?? 0),
});

export async function getDashboard(opts: DashboardOptions): Promise<Dashboard> {
  const now = opts.now ?? new Date();
  // R2 first and on its own: a failing D1 must not cost the backup list.
  const listing = await listBackups(opts.bucket);
  let status: BackupStatus;
  let activity: ActivityPage;
  let database: DatabaseState = { available: true };
  let drills: LastDrill[] = [];
  try {
    [status, activity, drills] = await Promise.all([
      getBackupStatus({ db: opts.db, bucket: opts.bucket, now, listing, offsiteConfigured: opts.offsiteConfigured }),
      recentBackupActivity(opts.db, opts.activity),
      restoreDrills(opts.db),
    ]);
  } catch (e) {
    // Only D1's own failures are "unavailable"; a bad activity page is still the caller's error.
    if (!(e instanceof BackupError) || e.code !== "DATABASE_ERROR") throw e;
    status = { health: healthOf(listing, null, now, opts.offsiteConfigured), running: null, interrupted: null };
    activity = EMPTY_ACTIVITY(opts.activity);
    database = { available: false, code: e.code, reason: e.message };
  }
  // Newest first, so the first drill seen for a key is that backup's latest.
  const drillByKey = new Map<string, LastDrill>();
  for (const d of drills) if (d.key && !drillByKey.has(d.key)) drillByKey.set(d.key, d);
  const proven = listing.backups.find((b) => drillByKey.get(b.key)?.outcome === "completed");
  return {
    ...status,
    database,
    rto: rtoSeries(drills, now),
    provenRestorable: proven ? { key: proven.key, name: proven.name, createdAt: proven.manifest.createdAt, drilledAt: drillByKey.get(proven.key)!.at } : null,
    backups: listing.backups.map((b) => ({
      name: b.name,
      key: b.key,
      createdAt: b.manifest.createdAt,
      size: b.size,
      tables: b.manifest.tables,
      rows: b.manifest.totalRows,
      sha256: b.manifest.object.sha256,
      checksum: "matches manifest",
      latestMigration: b.manifest.schema.latestMigration,
      snapshot: b.manifest.snapshot.mode,
      trigger: b.manifest.trigger,
      durationMs: b.manifest.durationMs,
      signedBy: b.manifest.signature?.keyId ?? null,
      encrypted: b.manifest.object.contentEncoding === "age+gzip",
      offsite: !opts.offsiteConfigured ? "not-configured" : hasVerifiedOffsite(b.manifest) ? "verified" : "missing",
      offsiteAt: hasVerifiedOffsite(b.manifest) ? `${b.manifest.offsite!.endpointHost}/${b.manifest.offsite!.bucket}/${b.manifest.offsite!.key}` : null,
      drill: drillByKey.get(b.key) ?? null,
    })),
    offsiteConfigured: opts.offsiteConfigured ?? false,
    incomplete: listing.incomplete,
    activity,
    sizes: backupSizeSeries(listing, now),
  };
}
