// The backup library: everything routes, the cron Worker, the CLIs and lib/monitor call.
export { backupDatabase } from "./backup";
export {
  findNewestBackup,
  isFutureDated,
  listBackups,
  readManifest,
  scanListing,
  type BackupEntry,
  type BackupListing,
  type BackupScan,
  type IncompleteEntry,
} from "./list";
export { BackupError, errorMessage, isBackupError, wrapBindingError } from "../errors";
export { allObjectKeysFor, keysFor, objectFileName, parseBackupKey, parseBackupName } from "./keys";
export {
  AGE_MAGIC,
  decryptStream,
  encryptStream,
  generateAgeKey,
  parseAgeIdentities,
  parseAgeRecipients,
  type AgeEncryption,
} from "./encryption";
export { hasVerifiedOffsite, parseManifest, type Manifest } from "./manifest";
export { createSha256 } from "./hash";
export { partsOf } from "./upload";
export { gzipKind, gzipStream } from "./gzip";
export { activityInsertSql, BACKUP_ACTIONS, parseDetails, tryLogActivity, type BackupAction } from "./activity";
export { DEFAULT_DUMP_OPTIONS, DUMP_END_MARKER, DUMP_FORMAT_VERSION, dumpDatabase, type DumpStats } from "./dump";
export { readSchema } from "./schema";
export {
  generateKeyPair,
  parseSigningKey,
  parseVerifyKeys,
  signManifest,
  verifyManifestSignature,
  type SignatureState,
  type SigningKey,
  type VerifyKey,
} from "./signature";
export { formatBytes } from "./units";
export { activitySummary, backupResponse, cleanupResponse, errorResponse, listResponse } from "./present";
export { runBackup, runCleanup, runScheduledBackup, type OffsiteStep, type RunSettings, type ScheduledRunResult } from "./run";
// Retention for any store: the off-site bucket gets the same rule by its own listing.
export { applyRetention, r2Store, type BackupStore, type CleanupResult, type RetentionListing } from "./retention";
export {
  parseRetentionSetting,
  planRetention,
  type ParsedRetention,
  type RetentionDecision,
  type RetentionPlanOptions,
  type RetentionPolicy,
} from "./retention-plan";
export { parseLeaseTtl, readBackupLock, type RunningLock } from "./lock";
