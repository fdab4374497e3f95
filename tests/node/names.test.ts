// lib/names.ts names the database and bucket; both wrangler configs must declare exactly those.
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../lib/local/platform";
import { BUCKET_BINDING, BUCKET_NAME, DATABASE_NAME, DB_BINDING } from "../../lib/names";

describe.each(["wrangler.toml", "functions/wrangler.toml"])("%s", (file) => {
  const toml = fs.readFileSync(path.join(PROJECT_ROOT, file), "utf8");
  it("binds the database and bucket lib/names.ts names", () => {
    expect(toml).toMatch(new RegExp(`\\[\\[d1_databases\\]\\]\\s*binding = "${DB_BINDING}"\\s*database_name = "${DATABASE_NAME}"`));
    expect(toml).toMatch(new RegExp(`\\[\\[r2_buckets\\]\\]\\s*binding = "${BUCKET_BINDING}"\\s*bucket_name = "${BUCKET_NAME}"`));
  });
});
