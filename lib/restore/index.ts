// Restore and verification of d1-backup backups (Node only: it drives wrangler and sqlite3).
// scripts/restore.ts is a thin CLI over these; lib/restoration-test builds on them.
export { runRestore, type RestoreOptions, type RestoreResult, type RestorePlan, type BackupInfo, type TargetInfo } from "./restore";
export type { BackupSource, FetchedBackup } from "./fetch";
export type { VerifiedBackup, VerificationCheck } from "./verify";
export { openTarget, type Target, type TargetSpec, type TargetState } from "./target";
export { runChecks, type CheckReport, type CheckResult, type TableCount } from "./checks";
export type { PutBackResult } from "./put-back";
export { createReporter, silentReporter, formatMs, type Reporter, type StepTiming } from "./progress";
export { formatResult } from "./format";
// Also what lib/restoration-test needs to run tools and describe them in its report.
export { cleanToolOutput, wrangler } from "./exec";
export { sqliteVersion } from "./sqlite";
// The CLIs remove the private temp directory on SIGINT/SIGTERM (cleanup.ts says why only they do).
export { installSignalCleanup } from "./cleanup";
export { loadAgeIdentities, type AgeIdentities } from "./identity";
