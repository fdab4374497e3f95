// What the admin dashboard (app/admin/backups) and GET /api/admin/backup/status show: health,
// the run holding the lock, the backups, recent activity and the size series, gathered in one
// call from one R2 listing (health, table and chart all describe the same listing).
import { backupSizeSeries, getBackupHealth, recentBackupActivity, type ActivityPage, type BackupHealth, type SizePoint } from "./health";
import { listBackups, type BackupListing, type IncompleteEntry } from "./list";
import { readBackupLock, type RunningLock } from "./lock";

export interface BackupStatus {
  health: BackupHealth;
  /** The backup or cleanup holding the lock now; null when none is running. */
  running: RunningLock | null;
}

export interface StatusOptions {
  db: D1Database;
  bucket: R2Bucket;
  now?: Date;
  listing?: BackupListing;
}

export async function getBackupStatus(opts: StatusOptions): Promise<BackupStatus> {
  const now = opts.now ?? new Date();
  const [health, running] = await Promise.all([
    getBackupHealth({ db: opts.db, bucket: opts.bucket, now, listing: opts.listing }),
    readBackupLock(opts.db, now),
  ]);
  return { health, running };
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
}

export interface Dashboard extends BackupStatus {
  backups: DashboardBackup[];
  incomplete: IncompleteEntry[];
  activity: ActivityPage;
  /** Sizes of the backups of the last 30 days, oldest first. */
  sizes: SizePoint[];
}

export interface DashboardOptions {
  db: D1Database;
  bucket: R2Bucket;
  now?: Date;
  /** Activity page: limit 1..100 (default 20), offset >= 0; digit strings accepted (query strings). */
  activity?: { limit?: number | string; offset?: number | string };
}

export async function getDashboard(opts: DashboardOptions): Promise<Dashboard> {
  const now = opts.now ?? new Date();
  const listing = await listBackups(opts.bucket);
  const [status, activity] = await Promise.all([
    getBackupStatus({ db: opts.db, bucket: opts.bucket, now, listing }),
    recentBackupActivity(opts.db, opts.activity),
  ]);
  return {
    ...status,
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
    })),
    incomplete: listing.incomplete,
    activity,
    sizes: backupSizeSeries(listing, now),
  };
}
