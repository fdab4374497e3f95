// Restore and verification of d1-backup backups (Node only: it drives wrangler and sqlite3).
// scripts/restore.ts is a thin CLI over these; lib/restoration-test builds on them.
export { runRestore, type RestoreOptions, type RestoreResult, type RestorePlan, type BackupInfo, type TargetInfo } from "./restore";
export { fetchBackup, type BackupSource, type FetchedBackup } from "./fetch";
export { verifyBackup, checkManifest, type VerifiedBackup, type VerificationCheck } from "./verify";
export { openTarget, dropAllSql, type Target, type TargetSpec, type TargetState } from "./target";
export { runChecks, countRows, type CheckReport, type CheckResult, type TableCount } from "./checks";
export { writePutBack, comparePutBack, checkWhere, DEFAULT_PUT_BACK_STATEMENT_BYTES, type PutBackResult } from "./put-back";
export { createReporter, silentReporter, formatMs, type Reporter, type StepTiming } from "./progress";
export { formatResult } from "./format";
// Also what lib/restoration-test needs to run tools and describe them in its report.
export { cleanToolOutput, wrangler } from "./exec";
export { sqliteVersion } from "./sqlite";
