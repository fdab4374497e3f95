// Tables come from the live schema, not a list: a table added by a new migration is in the very
// next backup, with no code change, and the manifest records the new schema version.
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { backupDatabase } from "../../lib/backup";
import { openLocalPlatform, PROJECT_ROOT, type LocalPlatform } from "../../lib/local/platform";
import { tempDir, wrangler } from "../helpers/local";

let dir: string;
let config: string;
let persistTo: string;
let platform: LocalPlatform | undefined;

beforeAll(() => {
  dir = tempDir("evolve");
  persistTo = path.join(dir, "state");
  const migrations = path.join(dir, "migrations");
  fs.cpSync(path.join(PROJECT_ROOT, "migrations"), migrations, { recursive: true });
  // Same project config, pointed at a copy of the migrations we can add to.
  config = path.join(dir, "wrangler.toml");
  fs.writeFileSync(
    config,
    fs
      .readFileSync(path.join(PROJECT_ROOT, "wrangler.toml"), "utf8")
      .replace(/migrations_dir = ".*"/, `migrations_dir = "${migrations}"`)
      .replace(/pages_build_output_dir = ".*"\n/, ""),
  );
  wrangler(["d1", "migrations", "apply", "tech-support-db", "--local", "--persist-to", persistTo, "--config", config]);
});

afterAll(async () => {
  await platform?.dispose();
});

it("a table added by a migration appears in the next backup", async () => {
  platform = await openLocalPlatform({ persistTo, configPath: config });
  const first = await backupDatabase({
    db: platform.env.DB,
    bucket: platform.env.DOCUMENTS,
    now: new Date("2026-11-01T02:00:00Z"),
  });
  expect(first.summary.tables).not.toContain("service_contracts");
  await platform.dispose();
  platform = undefined;

  const newest = fs.readdirSync(path.join(dir, "migrations")).sort().at(-1)!;
  const next = `${String(Number(newest.slice(0, 4)) + 1).padStart(4, "0")}_service_contracts.sql`;
  fs.writeFileSync(
    path.join(dir, "migrations", next),
    `CREATE TABLE service_contracts (id INTEGER PRIMARY KEY, client_id TEXT, tier TEXT NOT NULL);
INSERT INTO service_contracts (tier) VALUES ('gold'), ('silver');
`,
  );
  wrangler(["d1", "migrations", "apply", "tech-support-db", "--local", "--persist-to", persistTo, "--config", config]);

  platform = await openLocalPlatform({ persistTo, configPath: config });
  const second = await backupDatabase({
    db: platform.env.DB,
    bucket: platform.env.DOCUMENTS,
    now: new Date("2026-11-02T02:00:00Z"),
  });
  expect(second.summary.tables).toContain("service_contracts");
  expect(second.manifest.tables.find((t) => t.name === "service_contracts")?.rows).toBe(2);
  expect(second.manifest.schema.latestMigration).toBe(next);
  expect(second.manifest.schema.migrationsApplied).toBe(first.manifest.schema.migrationsApplied + 1);
  expect(second.manifest.tables.length).toBe(first.manifest.tables.length + 1);
});
