// Response shapes shared by the API routes and the CLIs, so both print the same JSON.
import type { BackupSummary } from "./backup";
import { BackupError, isBackupError } from "../errors";
import type { BackupListing } from "./list";
import type { CleanupResult } from "./retention";
import { parseBackupKey } from "./keys";
import { hasVerifiedOffsite } from "./manifest";
import { NEWEST_KEPT } from "./retention-plan";
import { formatBytes } from "./units";

export function backupResponse(s: BackupSummary) {
  return {
    success: true as const,
    backup: {
      key: s.key,
      timestamp: s.timestamp,
      size: s.size,
      size_kb: s.size_kb,
      tables: s.tables,
      rows: s.totalRows,
      sha256: s.sha256,
      manifest: s.manifestKey,
      snapshot: s.snapshot,
      signature: s.signature,
      // Public keys only: who can decrypt the object (null: plain gzip).
      encryption: s.encryption ? { scheme: s.encryption.scheme, recipients: s.encryption.recipients } : null,
      ...(s.offsite ? { offsite: s.offsite } : {}),
      ...(s.warnings.length ? { warnings: s.warnings } : {}),
    },
  };
}

export function listResponse(listing: BackupListing) {
  return {
    backups: listing.backups.map((b) => ({
      key: b.key,
      uploaded: b.uploaded,
      size: b.size,
      size_kb: (b.size / 1024).toFixed(2),
      size_mb: (b.size / (1024 * 1024)).toFixed(2),
      metadata: b.metadata,
      manifest: {
        key: b.manifestKey,
        created_at: b.manifest.createdAt,
        tables: b.manifest.tables.length,
        rows: b.manifest.totalRows,
        sha256: b.manifest.object.sha256,
        latest_migration: b.manifest.schema.latestMigration,
        snapshot: b.manifest.snapshot.mode,
        duration_ms: b.manifest.durationMs,
        // Who signed it, as the manifest says; the restore is what verifies it (BACKUP_VERIFY_KEY).
        signature: b.manifest.signature ? { alg: b.manifest.signature.alg, key_id: b.manifest.signature.keyId } : null,
        content_encoding: b.manifest.object.contentEncoding,
        encryption: b.manifest.encryption ?? null,
        // Where the verified off-site copy is (lib/offsite); null: none recorded.
        offsite: hasVerifiedOffsite(b.manifest)
          ? { endpoint_host: b.manifest.offsite!.endpointHost, bucket: b.manifest.offsite!.bucket, key: b.manifest.offsite!.key, verified_at: b.manifest.offsite!.verifiedAt }
          : null,
      },
    })),
    total: listing.backups.length,
    incomplete: listing.incomplete,
  };
}

/** The cleanup part of DELETE /api/admin/backup and of the cron route. */
export function cleanupResponse(r: CleanupResult) {
  return {
    deleted_count: r.deleted.length,
    deleted: r.deleted,
    kept: r.kept,
    // Why each complete backup stays (or that it goes), newest first: the preview's explanation.
    decisions: r.decisions.map((d) => ({ name: d.name, key: d.key, action: d.keep ? ("keep" as const) : ("delete" as const), reasons: d.reasons })),
    policy: { daily: r.policy.daily, weekly: r.policy.weekly, monthly: r.policy.monthly, newest: NEWEST_KEPT },
    reference: r.reference,
    incomplete_deleted: r.incompleteDeleted,
    // Backups with an object and a manifest that do not check out: never deleted automatically.
    needs_attention: r.needsAttention,
    dry_run: r.dryRun,
    ...(r.warnings.length ? { warnings: r.warnings } : {}),
  };
}

export interface ErrorBody {
  success: false;
  error: { code: string; message: string; details?: Record<string, unknown> };
}

/**
 * `{"success":false,"error":{code,message[,details]}}`. Unknown errors become a generic INTERNAL
 * error: their messages may carry internals, so callers log them and never send them. Details
 * are only ever set by this library (e.g. the running backup's startedAt on a 409).
 */
export function errorResponse(e: unknown): { status: number; body: ErrorBody } {
  const err = isBackupError(e) ? e : new BackupError("INTERNAL", "internal error");
  const error: ErrorBody["error"] = { code: err.code, message: err.message };
  if (err.details && err.code !== "INTERNAL") error.details = err.details;
  return { status: err.status, body: { success: false, error } };
}

/** One line for people about an activity_log entry of the backup system (the dashboard's feed). */
export function activitySummary(entry: { action: string; details: unknown }): string {
  const d = entry.details && typeof entry.details === "object" && !Array.isArray(entry.details) ? (entry.details as Record<string, unknown>) : null;
  if (!d) return typeof entry.details === "string" ? entry.details : "";
  const s = (k: string) => (typeof d[k] === "string" ? (d[k] as string) : typeof d[k] === "number" ? String(d[k]) : "");
  const n = (k: string) => (Array.isArray(d[k]) ? (d[k] as unknown[]).length : 0);
  const failure = () => [s("code"), s("reason")].filter(Boolean).join(": ");
  const name = (key: string) => parseBackupKey(key)?.name ?? key;
  const rto = (ms: unknown) => (typeof ms === "number" ? `${(ms / 1000).toFixed(1)} s` : "?");
  switch (entry.action) {
    case "database_backup_created":
      return `${name(s("key"))}: ${typeof d.size === "number" ? formatBytes(d.size) : "?"}, ${s("tables")} tables, ${s("rows")} rows (${s("trigger")})`;
    case "scheduled_backup_completed":
      return `${name(s("key"))}: ${typeof d.size === "number" ? formatBytes(d.size) : "?"}, ${s("rows")} rows; cleanup deleted ${n("deleted")}`;
    case "scheduled_backup_failed":
      return `${s("stage") ? `${s("stage")} failed: ` : ""}${failure()}`;
    case "database_backup_failed":
    case "backup_cleanup_failed":
      return failure();
    case "backup_cleanup_completed":
      return `deleted ${n("deleted")}, kept ${n("kept")}${n("incompleteDeleted") ? `, ${n("incompleteDeleted")} leftover keys removed` : ""}`;
    case "restoration_test_completed":
      return `passed: RTO ${s("rto_seconds")} s, ${s("rows")} rows`;
    case "restoration_test_failed":
      return `failed${n("failed") ? ` (${(d.failed as unknown[]).join(", ")})` : ""}${s("reason") ? `: ${s("reason")}` : ""}`;
    case "backup_alert_sent":
      return `${s("kind")} alert sent to ${s("host")}`;
    case "backup_alert_failed":
      return `${s("kind") || "alert"} not delivered: ${s("error")}`;
    // Restores (lib/restore), written into the restored database by npm run restore.
    case "restore_completed":
      return `${s("backup") || name(s("key"))} restored${d.force ? " over the existing data (--force)" : ""}: ${s("rows")} rows, RTO ${rto(d.rto_ms)}; signature ${s("signature")}`;
    case "restore_failed":
      return `restore of ${s("backup") || name(s("key"))} failed its checks: ${s("reason")}`;
    case "restore_forced":
      return `--force: ${s("replaced")} objects replaced by ${s("backup") || name(s("key"))}${s("bookmark") ? `; undo: Time Travel bookmark ${s("bookmark")}` : ""}`;
    case "restore_unsigned_allowed":
      return `--allow-unsigned: ${s("backup") || name(s("key"))} used although its signature is ${s("signature")} (${s("mode")})`;
    case "restore_put_back_completed":
    case "restore_put_back_failed":
      return `put back ${s("rows")} rows of ${Array.isArray(d.tables) ? (d.tables as string[]).join(", ") : "?"}${s("where") ? ` where ${s("where")}` : ""} from ${s("backup") || name(s("key"))}${entry.action.endsWith("failed") ? ": some selected rows are missing afterwards" : ""}`;
    // The nightly restore drill (lib/drill), into RESTORE_DRILL_DB.
    case "restore_drill_completed":
      return `${s("name") || name(s("key"))} proven restorable: ${s("rows")} rows replayed in ${rto(d.replay_ms)}, every check passed`;
    case "restore_drill_failed":
      return `${s("name") || name(s("key"))}: ${d.refused ? "refused: " : ""}${s("reason")}`;
    case "restore_drill_skipped":
      return `${s("name") || name(s("key"))} not drilled (${s("reason")})${typeof d.estimated_queries === "number" ? `: needs ~${s("estimated_queries")} queries, ${s("available_queries")} available` : ""}`;
    default:
      return JSON.stringify(d).slice(0, 200);
  }
}
