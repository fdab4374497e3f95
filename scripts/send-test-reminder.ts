// Prints the next quarterly restoration test date (Jan 15, Apr 15, Jul 15, Oct 15; "today" on the
// day itself) and POSTs the reminder as {"text": …} to REMINDER_WEBHOOK_URL when it is set. Run it
// through scripts/send-test-reminder.sh (e.g. from a weekly cron).
import { parseArgs } from "node:util";
import { errorMessage } from "../lib/errors";
import { parseWebhookSetting, sendAlert } from "../lib/monitor";
import { isoDay, nextTestDate, reminderText } from "../lib/restoration-test";

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      date: { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(
      "usage: bash scripts/send-test-reminder.sh [--date YYYY-MM-DD] [--json]\n" +
        "  --date   compute from this day instead of today (UTC)\n" +
        "  REMINDER_WEBHOOK_URL  when set, the reminder is POSTed there as {\"text\": …} (Slack-compatible)",
    );
    return 0;
  }
  const next = nextTestDate(values.date ?? isoDay(new Date()));
  const text = reminderText(next);
  // Parsed once, sent through the same webhook sender as the backup alerts; an invalid value is
  // a failed delivery (exit 1) naming the setting, never echoing it.
  const webhook = parseWebhookSetting("REMINDER_WEBHOOK_URL", process.env.REMINDER_WEBHOOK_URL);
  const delivery = webhook.url ? await sendAlert(webhook.url, { text }) : webhook.problem ? { ok: false, error: webhook.problem } : null;
  if (values.json) console.log(JSON.stringify({ ...next, text, delivery }, null, 2));
  else {
    console.log(text);
    if (delivery) console.log(delivery.ok ? `reminder sent (HTTP ${delivery.status})` : `reminder NOT sent: ${delivery.error}`);
  }
  if (delivery && !delivery.ok) {
    console.error(`send-test-reminder: ${delivery.error}`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`send-test-reminder: ${errorMessage(e)}`);
    process.exit(e && typeof e === "object" && (e as { code?: string }).code === "INVALID_INPUT" ? 2 : 1);
  },
);
