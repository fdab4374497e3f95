// Alerts for the nightly backup: a Slack-compatible webhook message (`{ text, blocks }`: Slack
// incoming webhooks, and the Slack-compatible endpoints of Mattermost, Rocket.Chat, Discord's
// `/slack` and most chat tools) saying what went wrong, what is still safe, and what to do.
// Also the one webhook sender and the parse of webhook settings, shared with the restoration-test
// reminder. Building the message is pure; sending it never throws, because an alert is sent while some
// other failure is being reported and must never replace it.
import { formatBytes } from "../backup";
import { DATABASE_NAME } from "../names";
import type { BackupHealth } from "./health";

// offsite_copy_failed: the backup was made and is good in R2, its off-site copy failed (lib/offsite).
export type AlertKind = "backup_failed" | "backup_stale" | "offsite_copy_failed" | "restore_drill_failed" | "restore_drill_skipped";

export interface AlertInput {
  kind: AlertKind;
  /** What went wrong, for people (an error message, or why the backups were stale). */
  reason?: string;
  /** BackupError code of a failure, when known. */
  code?: string;
  /** Where a scheduled run failed: config, backup or cleanup. */
  stage?: string;
  /**
   * Health at the time of the alert: after the failure for backup_failed; at cron time, before
   * the run, for backup_stale. Null when it could not be read (then healthError says why).
   */
  health: BackupHealth | null;
  healthError?: string;
  at: Date;
  /** backup_stale only: the backup the run that noticed the gap has just made. */
  newBackup?: { key: string; size?: number } | null;
  /** restore_drill_* only: the backup the drill restored (its object key). */
  drilledBackup?: string;
}

export interface SlackText {
  type: "plain_text" | "mrkdwn";
  text: string;
  emoji?: boolean;
}

export type SlackBlock =
  | { type: "header"; text: SlackText }
  | { type: "section"; text?: SlackText; fields?: SlackText[] }
  | { type: "context"; elements: SlackText[] }
  | { type: "divider" };

export interface AlertPayload {
  /** The whole message on its own: shown in notifications and by receivers that ignore blocks. */
  text: string;
  blocks?: SlackBlock[];
}

const SOURCE = "tech-support-backup-cron";
// Slack limits: header text 150 characters, section text 3000, field text 2000.
const MAX_REASON = 1500;

/** Slack reads `&`, `<` and `>` as markup (links, mentions) in text and mrkdwn: escape them. */
export function slackEscape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

function utc(d: Date | string): string {
  return `${new Date(d).toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

/** The restore drill's message: the backup itself was made; proving it restorable did not work. Pure. */
function buildDrillAlert(alert: AlertInput): AlertPayload {
  const failed = alert.kind === "restore_drill_failed";
  const title = failed ? "Restore drill FAILED" : "Restore drill SKIPPED";
  const backup = alert.drilledBackup ? slackEscape(alert.drilledBackup) : "tonight's backup";
  const headline = failed
    ? `:rotating_light: *${title}*: ${backup} did not restore into RESTORE_DRILL_DB as its manifest says (${utc(alert.at)}).`
    : `:warning: *${title}*: ${backup} was not restored by the nightly drill (${utc(alert.at)}), so it is not proven restorable.`;
  const lines = [headline];
  if (alert.reason) lines.push(`*${failed ? "What differed" : "Why"}:* ${slackEscape(clip(alert.reason.trim(), MAX_REASON))}`);
  if (alert.stage) lines.push(`*Where:* stage ${slackEscape(alert.stage)}`);
  lines.push(
    "*The backup itself was made and is listed.* Prefer the newest backup the dashboard shows as ✓ proven when restoring (BACKUP_RESTORATION.md).",
    "*What to do:*",
    failed
      ? "Restore the backup into a scratch database by hand (`npm run restore`, BACKUP_RESTORATION.md) and compare; a refusal means RESTORE_DRILL_DB names the portal's database: fix functions/wrangler.toml."
      : "Raise RESTORE_DRILL_MAX_QUERIES if the plan allows it, or run the quarterly restoration test on this backup (BACKUP_TESTING_SCHEDULE.md).",
  );
  const text = lines.join("\n");
  return {
    text,
    blocks: [
      { type: "header", text: { type: "plain_text", text: title, emoji: true } },
      { type: "section", text: { type: "mrkdwn", text: clip(text, 3000) } },
      { type: "context", elements: [{ type: "mrkdwn", text: `Sent by ${SOURCE} at ${alert.at.toISOString()}` }] },
    ],
  };
}

/** A Slack-compatible message for a failed or stale nightly backup, or a failed/skipped restore drill. Pure. */
export function buildAlertPayload(alert: AlertInput): AlertPayload {
  if (alert.kind === "restore_drill_failed" || alert.kind === "restore_drill_skipped") return buildDrillAlert(alert);
  const { health } = alert;
  const failed = alert.kind === "backup_failed";
  const offsite = alert.kind === "offsite_copy_failed";
  const reason = alert.reason ? slackEscape(clip(alert.reason.trim(), MAX_REASON)) : null;
  const last = health?.lastSuccess ?? null;

  const title = failed ? "D1 backup FAILED" : offsite ? "D1 backup: off-site copy FAILED" : "D1 backups were STALE";
  const headline = offsite
    ? `:warning: *${title}*: the ${utc(alert.at)} backup of ${DATABASE_NAME} is good in R2, but copying it to the off-site bucket failed; the next run tries again.`
    : failed
    ? `:rotating_light: *${title}*: the nightly backup of ${DATABASE_NAME} failed at ${utc(alert.at)}` +
      (alert.stage === "cleanup" ? " (the backup itself was made; retention cleanup failed after it)." : ".")
    : `:warning: *${title}*: at the ${utc(alert.at)} run, the newest complete backup was older than ` +
      `${health?.staleAfterHours ?? 26} h: at least one nightly backup is missing.`;

  const what: string[] = [];
  if (reason) what.push(`*${failed || offsite ? "Reason" : "Why"}:* ${reason}`);
  const tags = [alert.stage ? `stage ${slackEscape(alert.stage)}` : null, alert.code ? `code ${slackEscape(alert.code)}` : null].filter(Boolean);
  if (tags.length) what.push(`*Where:* ${tags.join(", ")}`);
  if (!failed && alert.newBackup) {
    what.push(
      `*This run succeeded:* ${slackEscape(alert.newBackup.key)}` +
        (alert.newBackup.size !== undefined ? ` (${formatBytes(alert.newBackup.size)})` : "") +
        ", so a fresh backup exists now; the gap before it has no backup.",
    );
  }

  const lastLabel = failed || offsite ? "Last good backup" : "Newest backup before this run";
  let lastLine: string;
  if (last) {
    lastLine =
      `*${lastLabel}:* ${slackEscape(last.key)}, taken ${utc(last.createdAt)} ` +
      `(${last.ageHours.toFixed(1)} h before this alert; ${formatBytes(last.size)}, ${last.tables} tables, ${last.rows} rows)`;
  } else if (health) {
    lastLine = `*${lastLabel}:* none: there is NO complete backup to restore from.`;
  } else {
    lastLine = `*${lastLabel}:* unknown: backup health could not be read${alert.healthError ? ` (${slackEscape(clip(alert.healthError, 300))})` : ""}.`;
  }
  const statusLine = health
    ? `*Status:* ${health.status} (${slackEscape(health.summary)}); next scheduled run ${utc(health.nextScheduledRun)}.`
    : null;

  const todo = offsite
    ? [
        "1. Check the off-site settings and key: OFFSITE_S3_* of the cron Worker and the Pages project (BACKUP_SETUP.md, off-site copy), and that the bucket exists and the key may write and read it.",
        "2. Nothing is lost: the backup is in R2. The next run copies every backup still missing off-site (a few per run, newest first); the dashboard shows off-site ✗ until then.",
        "3. To test the fix now: `npm run preflight`, then a manual backup (`POST /api/admin/backup`) and check the off-site column.",
      ]
    : failed
    ? [
        "1. Find the cause: `npx wrangler tail --config functions/wrangler.toml` during a run, the Worker's logs in the Cloudflare dashboard, or the backup activity in the admin dashboard (activity_log).",
        "2. Once fixed, take a manual backup now rather than waiting for 02:00 UTC: `POST /api/admin/backup` as an admin (BACKUP_SETUP.md §6), and check it is listed with a manifest.",
        "3. If data has to be recovered meanwhile, follow BACKUP_RESTORATION.md (restore into a NEW database; D1 Time Travel covers changes since the last backup).",
      ]
    : [
        "1. Find out why earlier nightly runs did not happen or failed: Cloudflare dashboard → Workers & Pages → tech-support-backup-cron (Triggers must show `0 2 * * *`; see its logs), or `npx wrangler tail --config functions/wrangler.toml`.",
        "2. Changes made during the gap are in no backup: if they matter, D1 Time Travel (last 30 days) is the only copy; see BACKUP_RESTORATION.md §6.",
        "3. To be safe now, take a manual backup: `POST /api/admin/backup` as an admin (BACKUP_SETUP.md §6).",
      ];

  const lines = [headline, ...what, lastLine, ...(statusLine ? [statusLine] : []), "*What to do:*", ...todo];
  const text = lines.join("\n");

  const blocks: SlackBlock[] = [
    { type: "header", text: { type: "plain_text", text: title, emoji: true } },
    { type: "section", text: { type: "mrkdwn", text: clip([headline, ...what].join("\n"), 3000) } },
    { type: "section", text: { type: "mrkdwn", text: clip([lastLine, ...(statusLine ? [statusLine] : [])].join("\n"), 3000) } },
    { type: "section", text: { type: "mrkdwn", text: clip(["*What to do:*", ...todo].join("\n"), 3000) } },
    { type: "context", elements: [{ type: "mrkdwn", text: `Sent by ${SOURCE} at ${alert.at.toISOString()}` }] },
  ];
  return { text, blocks };
}

export interface AlertDelivery {
  ok: boolean;
  /** The receiver's HTTP status, when it answered. */
  status?: number;
  /** Why the alert was not delivered. Never contains the webhook URL's path or query. */
  error?: string;
}

export interface SendAlertOptions {
  /** The fetch to use; the runtime's by default. */
  fetch?: typeof fetch;
  /** Give up after this long (default 10 s): a hung receiver must not hold up the cron run. */
  timeoutMs?: number;
}

export const DEFAULT_ALERT_TIMEOUT_MS = 10_000;

export type WebhookCheck = { ok: true; url: URL } | { ok: false; error: string };

/**
 * Accepts an absolute http: or https: URL without credentials. Messages never echo the value:
 * a webhook URL is a secret (a Slack one carries its token in the path).
 */
export function checkWebhookUrl(value: unknown): WebhookCheck {
  if (typeof value !== "string" || value.trim() === "") return { ok: false, error: "webhook URL is empty" };
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    return { ok: false, error: "webhook URL is not an absolute URL (expected https://…)" };
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    return { ok: false, error: `webhook URL must use https: or http:, not ${url.protocol}` };
  }
  if (url.username || url.password) {
    // fetch refuses URLs with credentials; say so plainly instead of a TypeError at 02:00.
    return { ok: false, error: "webhook URL must not contain a user name or password" };
  }
  return { ok: true, url };
}

/** A webhook setting parsed once at an entry point and handed down; never throws. */
export interface WebhookSetting {
  /** A usable webhook URL, or null when the setting is off or its value is invalid. */
  url: string | null;
  /** Why the configured value cannot be used (names the setting, never echoes it). */
  problem: string | null;
}

/** Alerts are on when a URL is set, valid or not: an invalid one must still be reported. */
export type AlertWebhook = WebhookSetting;

/**
 * Unset or empty turns the setting off; anything else must pass checkWebhookUrl. An invalid
 * value is not thrown: a typo in an alerting secret must not cost a backup (nightly.ts).
 */
export function parseWebhookSetting(name: string, value: unknown): WebhookSetting {
  if (value === undefined || value === null || (typeof value === "string" && value.trim() === "")) {
    return { url: null, problem: null };
  }
  const checked = checkWebhookUrl(value);
  return checked.ok ? { url: checked.url.toString(), problem: null } : { url: null, problem: `${name} is invalid: ${checked.error}` };
}

/** env.ALERT_WEBHOOK_URL, for the cron Worker and the app's cron route alike. */
export function parseAlertWebhook(value: unknown): AlertWebhook {
  return parseWebhookSetting("ALERT_WEBHOOK_URL", value);
}

/** Reads at most `max` bytes of a body as text, then lets the rest go. */
const SNIPPET_CHARS = 300;

async function snippet(res: Response, max = SNIPPET_CHARS): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  try {
    while (n < max) {
      const { value, done } = await reader.read();
      if (done) break;
      chunks.push(value);
      n += value.length;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  const bytes = new Uint8Array(n);
  let off = 0;
  for (const c of chunks) {
    bytes.set(c, off);
    off += c.length;
  }
  return new TextDecoder().decode(bytes.subarray(0, max)).replace(/\s+/g, " ").trim();
}

function describeError(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  // Node's fetch says only "fetch failed"; the cause says why (ECONNREFUSED, DNS, TLS).
  const cause = (e as { cause?: unknown }).cause;
  const why = cause instanceof Error ? cause.message : cause !== undefined ? String(cause) : "";
  return why && !e.message.includes(why) ? `${e.message} (${why})` : e.message;
}

// Shorter pieces are words like "api" or "v1", not secrets; redacting them would garble messages.
const MIN_SECRET_PART = 4;

/**
 * Every piece of the URL that may be secret, in the spellings a runtime or a receiver's echo may
 * use: the whole URL, path, query, each path segment and query name/value, raw and decoded, and
 * with JSON's escaped slash. Longest first, so a whole URL goes before its pieces.
 */
function secretParts(url: URL): string[] {
  const parts = new Set<string>([url.href, url.pathname, url.search, url.hash, url.username, url.password]);
  for (const seg of url.pathname.split("/")) parts.add(seg);
  for (const [k, v] of url.searchParams) {
    parts.add(k);
    parts.add(v);
  }
  for (const p of [...parts]) {
    parts.add(p.replace(/\//g, "\\/"));
    try {
      parts.add(decodeURIComponent(p));
    } catch {
      // not percent-encoded text
    }
    parts.add(encodeURIComponent(p));
  }
  return [...parts].filter((p) => p.length >= MIN_SECRET_PART && p !== url.origin && p !== url.host).sort((a, b) => b.length - a.length);
}

/**
 * Runtime error messages and receivers' answers may quote the URL or pieces of it (a receiver that
 * echoes its token); everything but the origin is the secret part, so every such piece goes.
 */
function redactWebhook(message: string, url: URL): string {
  // The host is not secret and must stay readable even when a path segment also occurs in it
  // ("/hook" in hooks.example): it is held aside while the pieces go.
  const HOLD = "\u0000";
  let out = message.split(url.href).join(`${url.origin}/…`).split(url.host).join(HOLD);
  for (const p of secretParts(url)) out = out.split(p).join("…");
  return out.split(HOLD).join(url.host);
}

/**
 * POSTs the payload as JSON. Any 2xx is delivered; anything else — another status (redirects
 * included: a redirected POST would arrive as a GET without the message), no connection, no
 * answer within the timeout, an invalid URL — is reported in the result. Never throws.
 * The one webhook sender: the nightly alerts and the restoration-test reminder both post here.
 */
export async function sendAlert(webhookUrl: string, payload: AlertPayload, opts: SendAlertOptions = {}): Promise<AlertDelivery> {
  const checked = checkWebhookUrl(webhookUrl);
  if (!checked.ok) return { ok: false, error: checked.error };
  const timeoutMs = opts.timeoutMs ?? DEFAULT_ALERT_TIMEOUT_MS;
  const doFetch = opts.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => fetch(input, init));
  const where = checked.url.host;
  try {
    const res = await doFetch(checked.url.toString(), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(payload),
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (res.status >= 200 && res.status < 300) {
      await res.body?.cancel().catch(() => {});
      return { ok: true, status: res.status };
    }
    // Read past the snippet's length, redact, then cut: an echoed secret cut in half at the
    // boundary would not match any piece and half of it would be kept.
    const raw = await snippet(res, SNIPPET_CHARS + checked.url.href.length * 3).catch(() => "");
    const body = redactWebhook(raw, checked.url).slice(0, SNIPPET_CHARS);
    return { ok: false, status: res.status, error: redactWebhook(`${where} answered HTTP ${res.status}${body ? `: ${body}` : ""}`, checked.url) };
  } catch (e) {
    const name = (e as { name?: string } | null)?.name;
    if (name === "TimeoutError" || name === "AbortError") {
      return { ok: false, error: `${where} did not answer within ${timeoutMs} ms` };
    }
    return { ok: false, error: redactWebhook(`could not reach ${where}: ${describeError(e)}`, checked.url) };
  }
}
