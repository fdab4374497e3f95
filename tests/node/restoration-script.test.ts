// The quarterly restoration test end to end on local state, as an admin runs it
// (`bash scripts/test-restoration.sh`), and the reminder of the next test date with its webhook.
// The schedule and the report template alone are tests/node/restoration-test.test.ts.
import { execFile, execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { backupDatabase, tryLogActivity, type Manifest } from "../../lib/backup";
import { keysFor } from "../../lib/backup/keys";
import { openLocalPlatform, PROJECT_ROOT } from "../../lib/local/platform";
import { nextTestDate, quarterOf, reminderText } from "../../lib/restoration-test";
import { seedDemoData } from "../../lib/seed/seed";
import { CLI_ENV, d1File, freshPlatform, sqliteJson, tempDir } from "../helpers/local";
import { testKeys, type TestKeys } from "../helpers/signing";

const SCRIPT = path.join(PROJECT_ROOT, "scripts", "test-restoration.sh");
const REMINDER = path.join(PROJECT_ROOT, "scripts", "send-test-reminder.sh");

// Backups are signed (as production's are); the script verifies with the public key.
let keys: TestKeys;

function runScript(args: string[], env: NodeJS.ProcessEnv = { ...CLI_ENV, BACKUP_VERIFY_KEY: keys.text.verifyKey }): { code: number; stdout: string; stderr: string } {
  try {
    const stdout = execFileSync("bash", [SCRIPT, ...args], { cwd: PROJECT_ROOT, env, encoding: "utf8", stdio: "pipe" });
    return { code: 0, stdout, stderr: "" };
  } catch (e) {
    const err = e as { status: number; stdout: string; stderr: string };
    return { code: err.status, stdout: err.stdout, stderr: err.stderr };
  }
}

const activity = (persistTo: string) =>
  sqliteJson<{ action: string; entity_id: string; details: string }>(
    d1File(persistTo),
    "SELECT action, entity_id, details FROM activity_log WHERE action LIKE 'restoration_test_%' ORDER BY id",
  );

describe("scripts/test-restoration.sh on local state", () => {
  let persistTo: string;
  let manifest: Manifest;

  beforeAll(async () => {
    keys = await testKeys();
    const platform = await freshPlatform();
    persistTo = platform.persistTo;
    try {
      await seedDemoData(platform.env.DB, { rows: 300 });
      // An older backup first: the script must pick the newest complete one.
      await backupDatabase({ db: platform.env.DB, bucket: platform.env.DOCUMENTS, now: new Date(Date.now() - 3_600_000), trigger: "cli", signingKey: keys.signingKey });
      manifest = (await backupDatabase({ db: platform.env.DB, bucket: platform.env.DOCUMENTS, trigger: "cli", signingKey: keys.signingKey })).manifest;
      // Two nightly drills the report must list beside its own run.
      await tryLogActivity(platform.env.DB, { action: "restore_drill_completed", entityId: manifest.object.key, details: { replay_ms: 1234, rows: manifest.totalRows } });
      await tryLogActivity(platform.env.DB, { action: "restore_drill_failed", entityId: manifest.object.key, details: { reason: 'table "tickets": checksum differs' } });
    } finally {
      await platform.dispose();
    }
  });

  it("restores the newest backup into a throw-away D1 and writes a report whose figures match the manifest", () => {
    const reports = tempDir("reports");
    const tmpBefore = fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith("d1-restoration-test."));
    const r = runScript(["--persist-to", persistTo, "--report-dir", reports]);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/^restoration test PASSED: backups\/database-\S+\.sql\.gz$/m);
    expect(r.stdout).toMatch(/^RTO \d+(\.\d)? s \(objective 1800 s: met\)$/m);

    const expectedFile = path.join(reports, `${quarterOf(new Date()).label}-backup-test.md`);
    expect(fs.readdirSync(reports)).toEqual([path.basename(expectedFile)]);
    const report = fs.readFileSync(expectedFile, "utf8");
    expect(report).toMatch(new RegExp(`^# Backup restoration test — ${quarterOf(new Date()).label}$`, "m"));
    expect(report).toContain(`| Backup key | \`${manifest.object.key}\` |`);
    expect(report).toContain(`| Backup size | ${manifest.object.size} bytes (`);
    expect(report).toContain(`gzip, ${manifest.sql.size} bytes of SQL |`);
    expect(report).toContain(`| Object sha256 | \`${manifest.object.sha256}\` |`);
    expect(report).toContain(`| Backup taken at | ${manifest.createdAt} |`);
    expect(report).toContain(`| Schema version (latest migration) | ${manifest.schema.latestMigration} |`);
    expect(report).toContain("| **Result** | **✅ PASSED** |");
    for (const t of manifest.tables) expect(report).toContain(`| ${t.name} | ${t.rows} | ${t.rows} | ✅ |`);
    expect(report).toContain(`| **Total** | **${manifest.totalRows}** | **${manifest.totalRows}** | |`);
    for (const check of ["object-sha256", "gzip", "sql-sha256", "end-marker", "row-counts", "foreign-key-check", "quick-check", "latest-migration"]) {
      expect(report).toMatch(new RegExp(`^- ✅ (verify )?${check}: `, "m"));
    }
    const total = Number(/\| \*\*Total \(RTO\)\*\* \| \*\*([\d.]+)\*\* \|/.exec(report)?.[1]);
    const steps = ["Pick the backup", "Download", "Verify \\(checksums, full gzip, SQL checksum, end marker\\)", "Restore into a throw-away local D1", "Checks"].map((s) =>
      Number(new RegExp(`^\\| ${s} \\| ([\\d.]+) \\|$`, "m").exec(report)?.[1]),
    );
    for (const s of steps) expect(Number.isFinite(s)).toBe(true);
    expect(total).toBeGreaterThan(0);
    expect(steps.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(total + 0.3);
    expect(report).toMatch(/Measured: within the objective/);
    expect(report).toMatch(/^\| Machine \| .+: Linux .+ × .+ GB RAM \|$/m);
    expect(report).toContain("2 drills: 1 passed, 1 failed, 0 skipped; replay time 1.2–1.2 s.");
    expect(report).toMatch(/^\| [^|]+ \| backups\/database-\S+\.sql\.gz \| ❌ failed \| — \| table "tickets": checksum differs \|$/m);
    expect(report).not.toMatch(/\{\{[A-Z_]+\}\}/);
    expect(report).not.toContain("<!--");

    const logged = activity(persistTo);
    expect(logged.map((l) => [l.action, l.entity_id])).toEqual([["restoration_test_completed", manifest.object.key]]);
    expect(JSON.parse(logged[0].details)).toMatchObject({ checks: "passed", within_objective: true, rows: manifest.totalRows, failed: [] });
    // The temp directory (download, throw-away database) is gone.
    expect(fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith("d1-restoration-test."))).toEqual(tmpBefore);
  });

  it("a corrupted newest backup fails the test: exit 1, a FAILED report naming the check, restoration_test_failed logged", async () => {
    const platform = await openLocalPlatform({ persistTo });
    let name: string;
    try {
      name = (await backupDatabase({ db: platform.env.DB, bucket: platform.env.DOCUMENTS, now: new Date(Date.now() + 60_000), trigger: "cli", signingKey: keys.signingKey })).manifest.name;
      const key = keysFor(name).object;
      const obj = (await platform.env.DOCUMENTS.get(key))!;
      const bytes = new Uint8Array(await obj.arrayBuffer());
      bytes[20] ^= 0xff;
      await platform.env.DOCUMENTS.put(key, bytes, { customMetadata: obj.customMetadata, httpMetadata: obj.httpMetadata });
    } finally {
      await platform.dispose();
    }
    const reports = tempDir("reports-failed");
    const r = runScript(["--persist-to", persistTo, "--report-dir", reports]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^restoration test FAILED: /m);
    expect(r.stdout).toMatch(/^error: INTEGRITY_ERROR: corrupted backup object: /m);
    const report = fs.readFileSync(path.join(reports, fs.readdirSync(reports)[0]), "utf8");
    expect(report).toContain("| **Result** | **❌ FAILED** |");
    expect(report).toContain(`| Backup key | \`backups/${name}.sql.gz\` |`);
    expect(report).toMatch(/^- ❌ object-sha256: corrupted backup object: /m);
    const logged = activity(persistTo);
    expect(logged.at(-1)?.action).toBe("restoration_test_failed");
    expect(JSON.parse(logged.at(-1)!.details)).toMatchObject({ checks: "failed", failed: ["object-sha256"] });

    // A named (good) backup still passes; --no-log-to-db leaves activity_log alone.
    const again = runScript([manifest.name, "--persist-to", persistTo, "--report-dir", reports, "--no-log-to-db"]);
    expect(again.code, again.stderr).toBe(0);
    expect(fs.readdirSync(reports).sort()).toEqual([`${quarterOf(new Date()).label}-backup-test-2.md`, `${quarterOf(new Date()).label}-backup-test.md`]);
    expect(activity(persistTo)).toHaveLength(logged.length);
  });

  it("a usage error (--remote needs a backup name) exits 2 and writes no report", () => {
    const reports = path.join(tempDir("reports-usage"), "reports");
    const r = runScript(["--remote", "--report-dir", reports]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/name the backup to test with --remote/);
    expect(fs.existsSync(reports)).toBe(false);
  });
});

describe("scripts/send-test-reminder.sh", () => {
  it("prints the reminder (today on the day itself) and rejects impossible dates", () => {
    const out = (date: string) => execFileSync("bash", [REMINDER, "--date", date], { env: CLI_ENV, encoding: "utf8" });
    expect(out("2026-12-31")).toMatch(/^Quarterly backup restoration test \(2027-Q1\) is due on Friday 2027-01-15, in 15 days\./);
    expect(out("2027-01-15")).toMatch(/is due today \(Friday 2027-01-15\)/);
    expect(out("2027-01-16")).toMatch(/\(2027-Q2\) is due on Thursday 2027-04-15, in 89 days/);
    let code = 0;
    try {
      execFileSync("bash", [REMINDER, "--date", "2027-02-30"], { env: CLI_ENV, encoding: "utf8", stdio: "pipe" });
    } catch (e) {
      code = (e as { status: number }).status;
    }
    expect(code).toBe(2);
  });

  it("POSTs {text} to REMINDER_WEBHOOK_URL (a real receiver on 127.0.0.1) and fails when it is refused", async () => {
    const received: { method: string; path: string; type: string; body: string }[] = [];
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        received.push({ method: req.method ?? "", path: req.url ?? "", type: String(req.headers["content-type"]), body: Buffer.concat(chunks).toString("utf8") });
        res.writeHead(req.url?.startsWith("/fail") ? 500 : 200);
        res.end("ok");
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const run = promisify(execFile);
    try {
      const ok = await run("bash", [REMINDER, "--date", "2027-01-16"], { env: { ...CLI_ENV, REMINDER_WEBHOOK_URL: `${base}/hooks/T000/B000/secret` } });
      expect(ok.stdout).toMatch(/reminder sent \(HTTP 200\)/);
      expect(received).toHaveLength(1);
      expect(received[0]).toMatchObject({ method: "POST", path: "/hooks/T000/B000/secret", type: "application/json" });
      const body = JSON.parse(received[0].body) as { text: string };
      expect(Object.keys(body)).toEqual(["text"]);
      expect(body.text).toBe(reminderText(nextTestDate("2027-01-16")));

      const failed = await run("bash", [REMINDER, "--date", "2027-01-16"], { env: { ...CLI_ENV, REMINDER_WEBHOOK_URL: `${base}/fail/secret` } }).then(
        () => ({ code: 0, stderr: "" }),
        (e: { code: number; stderr: string }) => e,
      );
      expect(failed.code).toBe(1);
      expect(failed.stderr).toMatch(/answered HTTP 500/);
      expect(failed.stderr).not.toContain("secret"); // the URL is a secret: never echoed
      expect(received).toHaveLength(2);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
