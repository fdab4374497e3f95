// A BackupHealth as getBackupHealth returns it, for the pure tests of the health, alert and
// nightly rules: a healthy system checked at NOW, overridable field by field.
import type { BackupHealth } from "../../lib/monitor";

export const HOUR = 60 * 60 * 1000;
export const NOW = new Date("2026-06-10T12:00:00.000Z");
export const hoursAgo = (h: number, from = NOW) => new Date(from.getTime() - h * HOUR);

export function health(overrides: Partial<BackupHealth> = {}): BackupHealth {
  return {
    status: "ok",
    summary: "the newest complete backup is 10.0 h old",
    issues: [],
    checkedAt: NOW.toISOString(),
    lastSuccess: {
      key: "backups/database-2026-06-10-02-00-00.sql.gz",
      name: "database-2026-06-10-02-00-00",
      createdAt: "2026-06-10T02:00:00.000Z",
      ageHours: 10,
      size: 1_572_864,
      tables: 14,
      rows: 12_345,
    },
    lastRun: { action: "scheduled_backup_completed", at: "2026-06-10T02:00:05.000Z", ok: true },
    nextScheduledRun: "2026-06-11T02:00:00.000Z",
    staleAfterHours: 26,
    incompleteCount: 0,
    backupsCount: 7,
    totalSize: 9_000_000,
    incompleteSize: 0,
    ...overrides,
  };
}
