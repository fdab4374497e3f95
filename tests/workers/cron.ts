// Runs the cron Worker's scheduled() the way Cloudflare does, with a scheduled controller.
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import worker, { type Env } from "../../functions/cron-worker";

export const CRON = "0 2 * * *";

export async function runCron(e: Env): Promise<void> {
  // Backup names have one-second resolution; a second run within the same second is BACKUP_EXISTS.
  await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 5));
  const ctx = createExecutionContext();
  try {
    await worker.scheduled(createScheduledController({ scheduledTime: Date.now(), cron: CRON }), e, ctx);
  } finally {
    await waitOnExecutionContext(ctx);
  }
}
