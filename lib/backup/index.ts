// The backup library: everything routes, the cron Worker, the CLIs and lib/monitor call.
export { backupDatabase, type BackupOptions, type BackupResult, type BackupSummary, type BackupTrigger } from "./backup";
export { findNewestBackup, listBackups, readManifest, type BackupEntry, type BackupListing, type IncompleteEntry } from "./list";
export { BackupError, ERROR_STATUS, errorMessage, isBackupError, wrapBindingError, type BackupErrorCode } from "../errors";
export { BACKUP_PREFIX, backupNameFor, keysFor, parseBackupKey, parseBackupName } from "./keys";
export { parseManifest, type Manifest } from "./manifest";
export { BACKUP_ACTIONS, logActivity, parseDetails, tryLogActivity, type ActivityEntry, type BackupAction } from "./activity";
export { DEFAULT_DUMP_OPTIONS, DUMP_END_MARKER, DUMP_FORMAT_VERSION, dumpDatabase, type DumpOptions, type DumpStats } from "./dump";
export { readSchema, type SchemaInfo } from "./schema";
export { formatBytes } from "./units";
export { backupResponse, cleanupResponse, errorResponse, listResponse } from "./present";
export { runBackup, runCleanup, runScheduledBackup, type ScheduledRunResult } from "./run";
export { cleanupOldBackups, DEFAULT_RETENTION, type CleanupResult, type RetentionPolicy } from "./retention";
export { readBackupLock, withBackupLock, type RunningLock } from "./lock";
