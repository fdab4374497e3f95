// `npm run preflight` on temp copies of the checkout's configs: a good one passes, a broken one
// names every problem and exits 1.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../lib/local/platform";
import { tempDir } from "../helpers/local";

const TSX = path.join(PROJECT_ROOT, "node_modules", ".bin", "tsx");
const REAL_ID = "3f2a9c1e-7b4d-4e8f-9a6b-0c1d2e3f4a5b";
const PEM = "-----BEGIN PUBLIC KEY-----\\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo\\n-----END PUBLIC KEY-----";

function checkout(edit: (pages: string, cron: string) => [string, string], devVars: string): string {
  const root = tempDir("preflight");
  fs.mkdirSync(path.join(root, "functions"));
  const [pages, cron] = edit(
    fs.readFileSync(path.join(PROJECT_ROOT, "wrangler.toml"), "utf8"),
    fs.readFileSync(path.join(PROJECT_ROOT, "functions", "wrangler.toml"), "utf8"),
  );
  fs.writeFileSync(path.join(root, "wrangler.toml"), pages);
  fs.writeFileSync(path.join(root, "functions", "wrangler.toml"), cron);
  fs.writeFileSync(path.join(root, ".dev.vars"), devVars);
  return root;
}

function preflight(root: string) {
  const env = { ...process.env };
  for (const k of ["CLERK_JWT_KEY", "CRON_SECRET", "CLERK_AUTHORIZED_PARTIES", "CLOUDFLARE_API_TOKEN"]) delete env[k];
  const r = spawnSync(TSX, [path.join(PROJECT_ROOT, "scripts", "preflight.ts"), "--root", root, "--offline"], { env, encoding: "utf8", timeout: 60_000 });
  return { code: r.status, out: r.stdout + r.stderr };
}

// DB gets REAL_ID in both configs; the cron Worker's RESTORE_DRILL_DB (the second one) its own.
const DRILL_ID = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b";
const withId = (s: string) => {
  let n = 0;
  return s.replace(/database_id = "[^"]*"/g, () => `database_id = "${n++ === 0 ? REAL_ID : DRILL_ID}"`);
};

describe("npm run preflight", () => {
  it("a complete config: nothing missing, exit 0; what it could not check is a note", () => {
    const root = checkout((p, c) => [withId(p), withId(c)], `CLERK_JWT_KEY="${PEM}"\nCRON_SECRET=${"a".repeat(64)}\nCLERK_AUTHORIZED_PARTIES=https://portal.example.com\n`);
    const r = preflight(root);
    expect(r.out).toContain("preflight: nothing missing");
    expect(r.out).toMatch(/note: secrets in the account not checked \(--offline\)/);
    expect(r.code).toBe(0);
  });

  it("the checkout as committed: both placeholder ids are named, exit 1", () => {
    const r = preflight(checkout((p, c) => [p, c], ""));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/wrangler\.toml: database_id of DB is the placeholder/);
    expect(r.out).toMatch(/functions\/wrangler\.toml: database_id of DB is the placeholder/);
  });

  it("a broken config: different bindings, bad PEM, short CRON_SECRET, bad origins are all listed, exit 1", () => {
    const root = checkout(
      (p, c) => [withId(p), withId(c).replace('bucket_name = "tech-support-documents"', 'bucket_name = "other-bucket"').replace(/compatibility_date = .*/, 'compatibility_date = "2024-01-01"')],
      `CLERK_JWT_KEY=not-a-pem\nCRON_SECRET=short\nCLERK_AUTHORIZED_PARTIES=portal.example.com/\n`,
    );
    const r = preflight(root);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/preflight: 5 problem\(s\)/);
    expect(r.out).toMatch(/bind differently/);
    expect(r.out).toMatch(/compatibility_date differs/);
    expect(r.out).toMatch(/CLERK_JWT_KEY is not a PEM public key/);
    expect(r.out).toMatch(/CRON_SECRET is shorter than 32/);
    expect(r.out).toMatch(/CLERK_AUTHORIZED_PARTIES must be/);
  });

  it("RESTORE_DRILL_DB with DB's database_id is named (the drill would refuse it), exit 1", () => {
    const root = checkout((p, c) => [withId(p), withId(c).replace(DRILL_ID, REAL_ID)], `CLERK_JWT_KEY="${PEM}"\nCRON_SECRET=${"a".repeat(64)}\n`);
    const r = preflight(root);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/RESTORE_DRILL_DB has DB's database_id/);
    expect(r.out).not.toMatch(/bind differently/);
  });

  it("a bad flag is a usage error (exit 2)", () => {
    const r = spawnSync(TSX, [path.join(PROJECT_ROOT, "scripts", "preflight.ts"), "--nope"], { encoding: "utf8" });
    expect(r.status).toBe(2);
  });
});
