// Restore and verification of d1-backup backups (Node only: it drives wrangler and sqlite3).
// scripts/restore.ts and scripts/restoration-test.ts are thin CLIs over these.
export { runRestore, type RestoreOptions, type RestoreResult, type RestorePlan, type BackupInfo, type TargetInfo } from "./restore";
export { fetchBackup, type BackupSource, type FetchedBackup } from "./fetch";
export { verifyBackup, checkManifest, type VerifiedBackup, type VerificationCheck } from "./verify";
export { openTarget, dropAllSql, type Target, type TargetSpec, type TargetState } from "./target";
export { runChecks, countRows, type CheckReport, type CheckResult, type TableCount } from "./checks";
export { writePutBack, comparePutBack, checkWhere, DEFAULT_PUT_BACK_STATEMENT_BYTES, type PutBackResult } from "./put-back";
export { createReporter, silentReporter, formatMs, type Reporter, type StepTiming } from "./progress";
export { formatResult } from "./format";
export {
  runRestorationTest,
  nextTestDate,
  reminderText,
  postReminder,
  quarterOf,
  renderTemplate,
  reportPath,
  QUARTERLY_TEST_DAYS,
  RTO_OBJECTIVE_SECONDS,
  type NextTest,
  type RestorationTestOptions,
  type RestorationTestResult,
} from "./quarterly";
