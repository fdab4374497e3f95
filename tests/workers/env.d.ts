// The bindings the cron Worker's tests see (functions/wrangler.toml plus the migrations and
// alert receiver bindings from vitest.workers.config.mts).
import type { D1Migration } from "@cloudflare/vitest-pool-workers";

declare global {
  namespace Cloudflare {
    interface Env {
      DB: D1Database;
      DOCUMENTS: R2Bucket;
      TEST_MIGRATIONS: D1Migration[];
      /** http://127.0.0.1:<port> of the alert receiver (tests/workers/global-setup.ts). */
      ALERT_RECEIVER_URL: string;
      ALERT_WEBHOOK_URL?: string;
      BACKUP_SIGNING_KEY?: string;
      /** functions/wrangler.toml's scratch database for the restore drill. */
      RESTORE_DRILL_DB?: D1Database;
      RESTORE_DRILL_MAX_QUERIES?: string;
    }
  }
}
