// Watching the backups: health (the staleness rule, the schedule, the public view), the admin
// dashboard's data, the alert message and its one webhook sender, and the nightly run with alerts.
// Built on lib/backup's public face only (../backup), so lib/backup never depends on it.
export {
  assessHealth,
  getBackupHealth,
  getPublicHealth,
  nextScheduledRun,
  publicHealth,
  SCHEDULE_CRON,
  STALE_AFTER_HOURS,
  type BackupHealth,
  type HealthAssessment,
  type HealthInput,
  type HealthOptions,
  type HealthStatus,
  type LastRun,
  type LastSuccess,
  type PublicHealth,
} from "./health";
export {
  backupSizeSeries,
  getBackupStatus,
  getDashboard,
  recentBackupActivity,
  type ActivityEntryView,
  type ActivityPage,
  type BackupStatus,
  type Dashboard,
  type DashboardBackup,
  type DashboardOptions,
  type SizePoint,
  type StatusOptions,
} from "./dashboard";
export {
  buildAlertPayload,
  checkWebhookUrl,
  parseAlertWebhook,
  parseWebhookSetting,
  sendAlert,
  type AlertDelivery,
  type AlertInput,
  type AlertKind,
  type AlertPayload,
  type AlertWebhook,
  type SendAlertOptions,
  type SlackBlock,
  type WebhookCheck,
  type WebhookSetting,
} from "./alerts";
export {
  alertNightlyFailure,
  runNightly,
  staleAtCronTime,
  type AlertOutcome,
  type FailureAlertOptions,
  type NightlyOptions,
  type NightlyResult,
} from "./nightly";
