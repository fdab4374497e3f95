// Scheduled backup over HTTP for external schedulers (Vercel-style cron: GET with
// `Authorization: Bearer <CRON_SECRET>`). Not behind Clerk: the shared secret is the credential.
// Fails closed: without a usable CRON_SECRET every call is refused with the same 401 as a wrong
// secret (an anonymous caller learns nothing about the configuration); the log says what is wrong.
import { backupResponse, cleanupResponse } from "../../../../lib/backup";
import { getAlertWebhook, getRetentionSetting, getRunSettings } from "../../../../lib/env";
import { cronRoute } from "../../../../lib/http";
import { runNightly } from "../../../../lib/monitor";

export const runtime = "edge";
export const dynamic = "force-dynamic";

export const GET = cronRoute("GET /api/cron/backup", {}, async ({ bindings }) => {
  // The same run as the cron Worker, alerts included (ALERT_WEBHOOK_URL, when set).
  const { backup, cleanup } = await runNightly({
    ...bindings,
    alertWebhook: getAlertWebhook(),
    ...(await getRunSettings()),
    retention: getRetentionSetting(),
  });
  return { success: true, backup: backupResponse(backup.summary).backup, cleanup: cleanupResponse(cleanup) };
});
