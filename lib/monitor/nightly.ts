// The nightly run with alerts (runNightly), for the cron Worker (functions/cron-worker.ts) and the
// app's /api/cron/backup: lib/backup's runScheduledBackup plus a webhook message when it fails,
// or when it finds that backups had been missing.
//
// "Stale at cron time": the health is taken when the cron fires, BEFORE this run writes anything.
// Assessed after a successful run, the newest backup is always seconds old, so a gap would never
// be reported; assessed before, it answers the question an admin cares about — had backups been
// missing? — even though this run has just closed the gap. The rule (staleAtCronTime):
//   - the newest complete backup at cron time is more than 26 h old (STALE_AFTER_HOURS: one night
//     missed, beyond the 2 h slack) -> backup_stale alert, naming the gap and tonight's new backup;
//   - no complete backup at cron time, but activity_log shows backups were made before (the
//     backups were deleted, or their manifests no longer check out) -> backup_stale alert;
//   - no complete backup and none ever logged: the first run after setup -> no alert;
//   - "failing" with a fresh backup (e.g. yesterday's retention failed after its backup) -> no
//     stale alert: that failure was alerted when it happened, and tonight's success ends it.
// A failed run sends backup_failed only (its health shows the age anyway): one message per night.
//
// Alerts never change the outcome: a failure is rethrown as it was, whatever the delivery did, and
// every delivery is recorded in activity_log (backup_alert_sent / backup_alert_failed) with the
// webhook's host only: the URL is a secret.
import {
  BackupError,
  errorMessage,
  isBackupError,
  runScheduledBackup,
  tryLogActivity,
  type ParsedRetention,
  type RunSettings,
  type ScheduledRunResult,
} from "../backup";
import { runRestoreDrill, type DrillBudget, type DrillResult } from "../drill";
import { buildAlertPayload, sendAlert, type AlertDelivery, type AlertInput, type AlertKind, type AlertWebhook } from "./alerts";
import { getBackupHealth, STALE_AFTER_HOURS, type BackupHealth } from "./health";

const HOUR_MS = 60 * 60 * 1000;

/** Off only when nothing is configured: an invalid value still has to be reported. */
const alertsOn = (webhook: AlertWebhook) => webhook.url !== null || webhook.problem !== null;

/** Why the system was stale when the cron fired (see the rule at the top), or null. Pure. */
export function staleAtCronTime(
  before: Pick<BackupHealth, "lastSuccess" | "checkedAt">,
  backupsWereMadeBefore: boolean,
): string | null {
  const last = before.lastSuccess;
  if (!last) {
    return backupsWereMadeBefore
      ? "no complete backup existed when the nightly run started, although backups had been made before (deleted, or their manifests no longer check out)"
      : null;
  }
  const ageMs = Date.parse(before.checkedAt) - Date.parse(last.createdAt);
  if (!(ageMs > STALE_AFTER_HOURS * HOUR_MS)) return null;
  return (
    `when the nightly run started, the newest complete backup (${last.key}) was ${(ageMs / HOUR_MS).toFixed(1)} h old ` +
    `(limit ${STALE_AFTER_HOURS} h): at least one nightly backup is missing`
  );
}

async function backupsWereMadeBefore(db: D1Database): Promise<boolean> {
  const row = await db
    .prepare("SELECT 1 AS found FROM activity_log WHERE action IN ('database_backup_created', 'scheduled_backup_completed') LIMIT 1")
    .first<{ found: number }>();
  return row !== null;
}

export interface AlertOutcome {
  kind: AlertKind;
  delivery: AlertDelivery;
  /** Set when the delivery could not be written to activity_log. */
  logWarning?: string;
}

interface DeliveryOptions {
  fetch?: typeof fetch;
  /** Timeout of the webhook request (default 10 s, alerts.ts). */
  alertTimeoutMs?: number;
}

/** Sends (or, for an unusable URL, fails to send) one alert and records it. Never throws. */
async function deliver(db: D1Database | null, webhook: AlertWebhook, input: AlertInput, opts: DeliveryOptions): Promise<AlertOutcome> {
  let delivery: AlertDelivery;
  try {
    delivery = webhook.url
      ? await sendAlert(webhook.url, buildAlertPayload(input), { fetch: opts.fetch, timeoutMs: opts.alertTimeoutMs })
      : { ok: false, error: webhook.problem ?? "no webhook configured" };
  } catch (e) {
    // sendAlert does not throw; building the message should not either. Belt and braces.
    delivery = { ok: false, error: `alert could not be built or sent: ${errorMessage(e)}` };
  }
  const outcome: AlertOutcome = { kind: input.kind, delivery };
  const host = webhook.url ? new URL(webhook.url).host : null;
  if (delivery.ok) console.log(`backup alert ${input.kind} sent to ${host} (HTTP ${delivery.status})`);
  else console.error(`backup alert ${input.kind} NOT delivered: ${delivery.error}`);
  if (db) {
    const warning = await tryLogActivity(db, {
      action: delivery.ok ? "backup_alert_sent" : "backup_alert_failed",
      entityId: input.health?.lastSuccess?.key ?? null,
      details: {
        kind: input.kind,
        host,
        status: delivery.status ?? null,
        ...(delivery.ok ? {} : { error: delivery.error }),
        reason: input.reason ?? null,
      },
    });
    if (warning) outcome.logWarning = warning;
  }
  return outcome;
}

async function healthOrError(db: D1Database, bucket: R2Bucket, now: Date, offsiteConfigured = false): Promise<{ health: BackupHealth | null; error?: string }> {
  try {
    return { health: await getBackupHealth({ db, bucket, now, offsiteConfigured }) };
  } catch (e) {
    return { health: null, error: errorMessage(e) };
  }
}

export interface FailureAlertOptions extends DeliveryOptions {
  /** Null when the failure is that D1 is missing: the alert goes out, nothing is logged. */
  db: D1Database | null;
  /** Null when R2 is missing: the alert goes out without the last good backup. */
  bucket: R2Bucket | null;
  /** ALERT_WEBHOOK_URL as parsed by the entry point (parseAlertWebhook). */
  alertWebhook: AlertWebhook;
  error: unknown;
  /** Where it failed, when the caller knows better than activity_log (the Worker's config check). */
  stage?: string;
  now?: Date;
}

/**
 * The backup_failed alert for a failed nightly run, with the health after the failure. Returns
 * null when alerts are off. Never throws: the caller rethrows the original error.
 */
export async function alertNightlyFailure(opts: FailureAlertOptions): Promise<AlertOutcome | null> {
  const webhook = opts.alertWebhook;
  if (!alertsOn(webhook)) return null;
  const now = opts.now ?? new Date();
  const { health, error: healthError } =
    opts.db && opts.bucket ? await healthOrError(opts.db, opts.bucket, now) : { health: null, error: "the D1 or R2 binding is missing" };
  const e = opts.error;
  // runScheduledBackup logged where it failed (backup or cleanup); the health read it back.
  const stage = opts.stage ?? (health?.lastRun && !health.lastRun.ok ? health.lastRun.stage : undefined);
  return deliver(
    opts.db,
    webhook,
    {
      kind: "backup_failed",
      reason: errorMessage(e),
      code: isBackupError(e) ? e.code : undefined,
      stage,
      health,
      healthError,
      at: now,
    },
    opts,
  );
}

export interface NightlyOptions extends DeliveryOptions, RunSettings {
  db: D1Database;
  bucket: R2Bucket;
  /** ALERT_WEBHOOK_URL as parsed by the entry point (parseAlertWebhook): no URL = no alerts. */
  alertWebhook: AlertWebhook;
  /** Names the backup and is the "cron time" health is assessed at; the real clock by default. */
  now?: Date;
  /**
   * The restore drill after the backup (cron Worker only): RESTORE_DRILL_DB (null: not configured,
   * logged as skipped) and RESTORE_DRILL_MAX_QUERIES as parsed. Absent: no drill is attempted.
   */
  drill?: { scratch: D1Database | null; budget: DrillBudget };
  /** BACKUP_RETENTION as parsed by the entry point (parseRetentionSetting); unset: the default. */
  retention?: ParsedRetention;
  /** Backups with a verified off-site copy (the newest is kept); none by default. */
  offsiteVerified?: ReadonlySet<string>;
}

export interface NightlyResult extends ScheduledRunResult {
  /** The offsite_copy_failed alert, when the off-site copy failed (the backup itself succeeded). */
  offsiteAlert: AlertOutcome | null;
  /** The restore drill of tonight's backup, when one was configured to run. */
  drill: DrillResult | null;
  drillAlert: AlertOutcome | null;
  /** Why backups had been missing when the run started (staleAtCronTime), or null. */
  staleBeforeRun: string | null;
  /** The backup_stale alert sent for it, or null (not stale, or alerts off). */
  alert: AlertOutcome | null;
}

/**
 * runScheduledBackup (lib/backup) with alerts. A failure sends backup_failed and is rethrown unchanged. A
 * success after a gap sends backup_stale. An invalid ALERT_WEBHOOK_URL never costs a backup: the
 * run happens, the problem is logged as backup_alert_failed, and then this throws CONFIG_ERROR so
 * Cloudflare marks the invocation failed (an alerting system that cannot alert must be noticed);
 * after a failed run, the run's own error is what is thrown.
 */
export async function runNightly(opts: NightlyOptions): Promise<NightlyResult> {
  const { db, bucket } = opts;
  const now = opts.now ?? new Date();
  const webhook = opts.alertWebhook;

  // Health at cron time, before this run writes anything. Not being able to read it (R2 or D1
  // down) must not stop the backup; the backup will report its own failure if they really are.
  let staleBeforeRun: string | null = null;
  let before: BackupHealth | null = null;
  try {
    before = await getBackupHealth({ db, bucket, now });
    staleBeforeRun = staleAtCronTime(before, before.lastSuccess ? true : await backupsWereMadeBefore(db));
  } catch (e) {
    console.warn(`scheduled backup: health before the run could not be read: ${errorMessage(e)}`);
  }
  if (staleBeforeRun) console.warn(`scheduled backup: ${staleBeforeRun}`);

  let result: ScheduledRunResult;
  try {
    result = await runScheduledBackup({
      db,
      bucket,
      now,
      signingKey: opts.signingKey,
      leaseTtlMs: opts.leaseTtlMs,
      encryption: opts.encryption,
      offsite: opts.offsite,
      retention: opts.retention,
      offsiteVerified: opts.offsiteVerified,
    });
  } catch (e) {
    await alertNightlyFailure({ ...opts, db, bucket, alertWebhook: webhook, error: e, now });
    throw e;
  }

  // After the backup and its retention, outside the lease: the drill writes only RESTORE_DRILL_DB
  // and activity_log, and whatever it finds, tonight's backup stays a good backup (health and an
  // alert report the drill on their own). It never throws.
  let drill: DrillResult | null = null;
  let drillAlert: AlertOutcome | null = null;
  if (opts.drill) {
    drill = await runRestoreDrill({ db, scratch: opts.drill.scratch, bucket, name: result.backup.summary.name, budget: opts.drill.budget });
    const alertable = drill.outcome === "failed" || (drill.outcome === "skipped" && drill.details.reason !== "not_configured");
    if (alertable && alertsOn(webhook)) {
      drillAlert = await deliver(
        db,
        webhook,
        {
          kind: drill.outcome === "failed" ? "restore_drill_failed" : "restore_drill_skipped",
          reason: drill.summary,
          stage: typeof drill.details.stage === "string" ? drill.details.stage : undefined,
          health: null,
          at: now,
          drilledBackup: drill.key,
        },
        opts,
      );
    }
  }

  let alert: AlertOutcome | null = null;
  if (staleBeforeRun && before && alertsOn(webhook)) {
    const { summary } = result.backup;
    alert = await deliver(
      db,
      webhook,
      { kind: "backup_stale", reason: staleBeforeRun, health: before, at: now, newBackup: { key: summary.key, size: summary.size } },
      opts,
    );
  }
  let offsiteAlert: AlertOutcome | null = null;
  const failedCopy = result.offsite?.failed;
  if (failedCopy && alertsOn(webhook)) {
    const { health, error: healthError } = await healthOrError(db, bucket, now, true);
    offsiteAlert = await deliver(
      db,
      webhook,
      { kind: "offsite_copy_failed", reason: failedCopy.reason, code: failedCopy.code, stage: "offsite", health, healthError, at: now },
      opts,
    );
  }
  if (webhook.problem) {
    if (!alert && !offsiteAlert) {
      await tryLogActivity(db, {
        action: "backup_alert_failed",
        entityId: result.backup.summary.key,
        details: { kind: null, host: null, status: null, error: webhook.problem, reason: "checking the alert configuration" },
      });
    }
    throw new BackupError(
      "CONFIG_ERROR",
      `${webhook.problem}. The backup succeeded (${result.backup.summary.key}), but no alert can be sent until it is fixed: ` +
        "npx wrangler secret put ALERT_WEBHOOK_URL --config functions/wrangler.toml (or delete the secret to turn alerts off)",
      { details: { problems: [webhook.problem], backup: result.backup.summary.key } },
    );
  }
  return { ...result, staleBeforeRun, alert, offsiteAlert, drill, drillAlert };
}
