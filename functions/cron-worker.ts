// The nightly backup Worker (functions/wrangler.toml, cron 0 2 * * *): backup + retention under
// the backup lock. It only translates: check bindings, make one library call, and let a failure
// propagate so Cloudflare marks the cron run failed (a swallowed error would look like success).
// With ALERT_WEBHOOK_URL set, a failed run, or one that finds backups had been missing, also
// posts a Slack-compatible message (lib/monitor/nightly.ts says when and why).
//
// It lives in functions/, which is also Pages Functions' routing directory. Pages ignores it:
// next-on-pages emits .vercel/output/static/_worker.js, and with a _worker.js Pages (deploy and
// `wrangler pages dev`) never compiles functions/; without one, only files exporting onRequest*
// become routes, and this file exports none. Do not add onRequest* exports here.
import { BackupError, parseAgeRecipients, parseLeaseTtl, parseRetentionSetting, parseSigningKey, tryLogActivity, type RunSettings } from "../lib/backup";
import { parseDrillBudget } from "../lib/drill";
import { alertNightlyFailure, parseAlertWebhook, runNightly, type AlertWebhook } from "../lib/monitor";
import { BUCKET_NAME, DATABASE_NAME } from "../lib/names";
import { offsiteStep, parseOffsiteConfig } from "../lib/offsite";

export interface Env {
  DB?: D1Database;
  DOCUMENTS?: R2Bucket;
  /** Optional secret: a Slack-compatible incoming webhook URL for failed or stale backups. */
  ALERT_WEBHOOK_URL?: string;
  /** Secret: base64 PKCS#8 Ed25519 key that signs each manifest (npm run keys). Unset: unsigned backups. */
  BACKUP_SIGNING_KEY?: string;
  /** Optional: seconds a dead run's lease blocks the next run (5 to 3600; 120 by default). */
  BACKUP_LEASE_TTL_SECONDS?: string;
  /** Variable: age1… public keys every backup object is encrypted to (BACKUP_SETUP.md). Unset: plain gzip. */
  BACKUP_AGE_RECIPIENTS?: string;
  /** The off-site copy (vars, and the secret key as a secret); none set: no off-site copy. */
  OFFSITE_S3_ENDPOINT?: string;
  OFFSITE_S3_BUCKET?: string;
  OFFSITE_S3_REGION?: string;
  OFFSITE_S3_ACCESS_KEY_ID?: string;
  OFFSITE_S3_SECRET_ACCESS_KEY?: string;
  OFFSITE_S3_PREFIX?: string;
  OFFSITE_S3_PATH_STYLE?: string;
  /** The restore drill's scratch database (functions/wrangler.toml). Unset: the drill is logged as skipped. */
  RESTORE_DRILL_DB?: D1Database;
  /** Optional var: D1 queries the whole invocation may spend, the drill's budget (default 1000, Workers Paid). */
  RESTORE_DRILL_MAX_QUERIES?: string;
  /** Var: tiered retention, e.g. daily=30,weekly=12,monthly=24 (the default when unset). */
  BACKUP_RETENTION?: string;
}

const isD1 = (v: unknown): v is D1Database =>
  typeof v === "object" && v !== null && typeof (v as D1Database).prepare === "function" && typeof (v as D1Database).batch === "function";

const BINDINGS = {
  DB: { what: `D1 database ${DATABASE_NAME}`, kind: "a D1 database", methods: ["prepare", "batch"] },
  DOCUMENTS: {
    what: `R2 bucket ${BUCKET_NAME}`,
    kind: "an R2 bucket",
    methods: ["head", "get", "put", "list", "delete", "createMultipartUpload"],
  },
} as const;

/**
 * Names every missing or wrong binding at once, so one deploy fixes them all; a bad
 * ALERT_WEBHOOK_URL is named with them. On its own it does not stop the backup (a typo in an
 * alerting secret must not cost a night's backup): runNightly reports it after.
 */
function checkBindings(env: Env, alertWebhook: AlertWebhook, signingProblem: string | null, ageProblem: string | null = null): { db: D1Database; bucket: R2Bucket } {
  const problems: string[] = [];
  for (const [name, spec] of Object.entries(BINDINGS)) {
    const value = (env as Record<string, unknown>)[name];
    if (value === undefined || value === null) {
      problems.push(`missing binding ${name} (${spec.what})`);
    } else if (spec.methods.some((m) => typeof (value as Record<string, unknown>)[m] !== "function")) {
      problems.push(`binding ${name} is not ${spec.kind} binding (${spec.what})`);
    }
  }
  // A signing key that is set but unusable is a deploy mistake: fail (and alert) rather than
  // quietly make unsigned backups someone meant to be signed. Unset is allowed (BACKUP_SETUP.md).
  if (signingProblem) problems.push(signingProblem);
  // Likewise recipients that are set but unusable: never back up in plaintext instead.
  if (ageProblem) problems.push(ageProblem);
  if (problems.length) {
    if (alertWebhook.problem) problems.push(alertWebhook.problem);
    throw new BackupError("CONFIG_ERROR", `${problems.join("; ")}: check functions/wrangler.toml and the Worker's secrets`, {
      details: { problems },
    });
  }
  return { db: env.DB as D1Database, bucket: env.DOCUMENTS as R2Bucket };
}

export default {
  async scheduled(controller: ScheduledController, env: Env, _ctx: ExecutionContext): Promise<void> {
    // Parsed once here and handed down: the config check, the failure alert and the run agree.
    const alertWebhook = parseAlertWebhook(env.ALERT_WEBHOOK_URL);
    const signing = await parseSigningKey(env.BACKUP_SIGNING_KEY);
    const age = parseAgeRecipients(env.BACKUP_AGE_RECIPIENTS);
    // A partial OFFSITE_S3_* set does not stop the backup: the run reports it as offsite_copy_failed and alerts.
    const offsite = offsiteStep(parseOffsiteConfig((name) => (env as Record<string, unknown>)[name] as string | undefined));
    const drillBudget = parseDrillBudget(env.RESTORE_DRILL_MAX_QUERIES);
    if (drillBudget.problem) console.warn(`restore drill: ${drillBudget.problem}`);
    if (env.RESTORE_DRILL_DB !== undefined && !isD1(env.RESTORE_DRILL_DB)) console.warn("restore drill: RESTORE_DRILL_DB is not a D1 binding; the drill is skipped");
    // A bad value fails the run at its cleanup stage, after tonight's backup (runScheduledBackup).
    const retention = parseRetentionSetting(env.BACKUP_RETENTION);
    let bindings: { db: D1Database; bucket: R2Bucket };
    let settings: RunSettings;
    try {
      bindings = checkBindings(env, alertWebhook, signing.problem, age.problem);
      settings = { signingKey: signing.key, leaseTtlMs: parseLeaseTtl(env.BACKUP_LEASE_TTL_SECONDS), encryption: age.encryption, offsite };
    } catch (e) {
      // The audit trail is the admins' view of the nightly run; record the failure there when D1 is usable.
      if (env.DB && typeof env.DB.prepare === "function") {
        await tryLogActivity(env.DB, {
          action: "scheduled_backup_failed",
          details: { stage: "config", code: "CONFIG_ERROR", reason: (e as Error).message },
        });
      }
      console.error(`scheduled backup (${controller.cron}): ${(e as Error).message}`);
      const usableDb = env.DB && typeof env.DB.prepare === "function" ? env.DB : null;
      await alertNightlyFailure({ db: usableDb, bucket: null, alertWebhook, error: e, stage: "config" });
      throw e;
    }
    try {
      // Named by the real clock, not controller.scheduledTime: the name says when the data was read,
      // which for a delayed or re-run trigger is not the scheduled time.
      const { backup, cleanup, drill } = await runNightly({
        ...bindings,
        alertWebhook,
        ...settings,
        retention,
        drill: { scratch: isD1(env.RESTORE_DRILL_DB) ? env.RESTORE_DRILL_DB : null, budget: drillBudget.budget },
      });
      console.log(
        `scheduled backup (${controller.cron}): ${backup.summary.key}, ${backup.summary.size} bytes, ` +
          `${backup.summary.totalRows} rows; cleanup deleted ${cleanup.deleted.length} backups, ${cleanup.incompleteDeleted.length} leftover keys; ` +
          `restore drill ${drill?.outcome ?? "not run"}`,
      );
    } catch (e) {
      console.error(`scheduled backup (${controller.cron}) failed: ${(e as Error).message}`);
      throw e;
    }
  },

  // Nothing is served: a backup is never started over HTTP here (the admin API does that).
  async fetch(): Promise<Response> {
    return new Response("tech-support-backup-cron: nightly D1 backups run on the cron trigger only\n", {
      status: 404,
      headers: { "content-type": "text/plain; charset=utf-8" },
    });
  },
} satisfies ExportedHandler<Env>;
