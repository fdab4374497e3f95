// Scheduled backup over HTTP for external schedulers (Vercel-style cron: GET with
// `Authorization: Bearer <CRON_SECRET>`). Not behind Clerk: the shared secret is the credential.
// Fails closed: without a usable CRON_SECRET every call is refused with 500 CONFIG_ERROR (a
// server misconfiguration, not a client error, and not "try again later" like a 503 would say).
import { backupResponse, cleanupResponse } from "@/lib/backup/present";
import { BackupError } from "@/lib/backup/errors";
import { runNightly } from "@/lib/monitor";
import { getAlertWebhook, getBindings, getCronConfig } from "@/lib/env";
import { errorJson, json } from "@/lib/http";

export const runtime = "edge";
export const dynamic = "force-dynamic";

async function sha256(s: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s)));
}

/**
 * Constant-time comparison of the presented and the configured secret: both are hashed first, so
 * the comparison always runs over 32 bytes whatever their lengths, and it never exits early.
 */
async function secretMatches(presented: string, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([sha256(presented), sha256(expected)]);
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

export async function GET(request: Request): Promise<Response> {
  try {
    const { cronSecret } = getCronConfig();
    const header = request.headers.get("authorization") ?? "";
    const m = /^Bearer (.+)$/.exec(header);
    // A missing or malformed header is still compared (against ""), so every refusal takes the same path.
    const ok = await secretMatches(m ? m[1] : "", cronSecret);
    if (!m || !ok) throw new BackupError("UNAUTHORIZED", "missing or wrong cron secret");

    const { db, bucket } = getBindings();
    // The same run as the cron Worker, alerts included (ALERT_WEBHOOK_URL, when set).
    const { backup, cleanup } = await runNightly({ db, bucket, alertWebhook: getAlertWebhook() });
    return json({ success: true, backup: backupResponse(backup.summary).backup, cleanup: cleanupResponse(cleanup) });
  } catch (e) {
    return errorJson(e, "GET /api/cron/backup");
  }
}
