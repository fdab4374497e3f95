import path from "node:path";
import { fileURLToPath } from "node:url";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

const root = path.dirname(fileURLToPath(import.meta.url));

// Tests that run inside workerd (the production runtime) against the cron Worker itself: its
// wrangler config, its D1/R2 bindings (miniflare, local) and the real migrations.
export default defineConfig(async () => ({
  resolve: { alias: { "@": root } },
  plugins: [
    cloudflareTest(async ({ inject }) => ({
      main: path.join(root, "functions", "cron-worker.ts"),
      wrangler: { configPath: path.join(root, "functions", "wrangler.toml") },
      miniflare: {
        // DB's database id under a second name: the restore drill must refuse it (restore-drill.test.ts).
        d1Databases: { PORTAL_AGAIN: "00000000-0000-0000-0000-000000000000" },
        bindings: {
          // Read here in Node, applied inside the Worker by tests/workers/setup.ts.
          TEST_MIGRATIONS: await readD1Migrations(path.join(root, "migrations")),
          // The node:http alert receiver started by tests/workers/global-setup.ts. Not bound as
          // ALERT_WEBHOOK_URL: each test opts in with its own path, so other tests send nothing.
          ALERT_RECEIVER_URL: inject("alertReceiverUrl"),
        },
      },
    })),
  ],
  test: {
    include: ["tests/workers/**/*.test.ts"],
    globalSetup: ["tests/workers/global-setup.ts"],
    setupFiles: ["tests/workers/setup.ts"],
    testTimeout: 60_000,
  },
}));
