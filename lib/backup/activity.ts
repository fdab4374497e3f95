// Writes backup operations into the portal's activity_log, the admins' audit trail.
import { errorMessage } from "../errors";
import { quoteText } from "../sql";

/**
 * Every action this library writes. A list (not only a type) because the dashboard's activity
 * feed (lib/monitor/dashboard.ts recentBackupActivity) selects exactly these: an action added here shows up there.
 */
export const BACKUP_ACTIONS = [
  "database_backup_created",
  "database_backup_failed",
  "scheduled_backup_completed",
  "scheduled_backup_failed",
  // The off-site copy (lib/offsite) of a backup was written and read back / could not be; the R2
  // backup is good either way, and the next run copies what is missing.
  "offsite_copy_completed",
  "offsite_copy_failed",
  "backup_cleanup_completed",
  "backup_cleanup_failed",
  "restoration_test_completed",
  "restoration_test_failed",
  // A failure or staleness alert to ALERT_WEBHOOK_URL was delivered / could not be (lib/monitor/nightly.ts).
  "backup_alert_sent",
  "backup_alert_failed",
  // Written by npm run restore into the target when it is the portal's database (lib/restore): a
  // full restore, a put-back applied, and separately each --force replacement and each backup
  // restored without a verified signature (--allow-unsigned), so those are never buried in details.
  "restore_completed",
  "restore_failed",
  "restore_forced",
  "restore_unsigned_allowed",
  "restore_put_back_completed",
  "restore_put_back_failed",
  // The nightly restore drill into RESTORE_DRILL_DB (lib/drill): proven, differed/refused, or not run and why.
  "restore_drill_completed",
  "restore_drill_failed",
  "restore_drill_skipped",
] as const;

export type BackupAction = (typeof BACKUP_ACTIONS)[number];

export interface ActivityEntry {
  action: BackupAction;
  /** Clerk user id of the admin, or null for the system (cron, CLI). */
  userId?: string | null;
  entityId?: string | null;
  details?: Record<string, unknown>;
}

export async function logActivity(db: D1Database, entry: ActivityEntry): Promise<void> {
  await db
    .prepare(
      "INSERT INTO activity_log (user_id, action, entity_type, entity_id, details) VALUES (?, ?, 'backup', ?, ?)",
    )
    .bind(entry.userId ?? null, entry.action, entry.entityId ?? null, JSON.stringify(entry.details ?? {}))
    .run();
}

/**
 * The same INSERT as logActivity, as SQL text, for tools that reach a database only through
 * wrangler or sqlite3 (the restore CLI writing into a local or remote D1).
 */
export function activityInsertSql(entry: ActivityEntry): string {
  const text = (v: string | null | undefined) => (v === null || v === undefined ? "NULL" : quoteText(v));
  return (
    "INSERT INTO activity_log (user_id, action, entity_type, entity_id, details) VALUES " +
    `(${text(entry.userId)}, ${quoteText(entry.action)}, 'backup', ${text(entry.entityId)}, ${quoteText(JSON.stringify(entry.details ?? {}))});`
  );
}

/**
 * Logs without letting a logging failure hide the outcome being logged; returns a warning to
 * surface to the caller instead of swallowing it.
 */
export async function tryLogActivity(db: D1Database, entry: ActivityEntry): Promise<string | null> {
  try {
    await logActivity(db, entry);
    return null;
  } catch (e) {
    const warning = `could not write ${entry.action} to activity_log: ${errorMessage(e)}`;
    console.error(warning);
    return warning;
  }
}

/** Reads back what logActivity wrote: details is JSON text; anything unparsable is handed on as the raw string. */
export function parseDetails(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
