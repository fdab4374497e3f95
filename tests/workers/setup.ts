/// <reference types="@cloudflare/vitest-pool-workers/types" />
// The portal schema and the backup_lock table, exactly as `wrangler d1 migrations apply` creates
// them (applyD1Migrations records them in d1_migrations too, and skips ones already applied).
import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";

await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
