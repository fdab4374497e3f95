// The bindings the cron Worker's tests see (functions/wrangler.toml plus the migrations binding
// from vitest.workers.config.ts).
import type { D1Migration } from "@cloudflare/vitest-pool-workers";

declare global {
  namespace Cloudflare {
    interface Env {
      DB: D1Database;
      DOCUMENTS: R2Bucket;
      TEST_MIGRATIONS: D1Migration[];
    }
  }
}
