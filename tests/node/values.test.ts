// Every value comes back as the same bytes: 1,990,000-byte values of every awkward kind, invalid
// UTF-8, -0.0, transaction keywords, JSON under CHECK(json_valid()), backed up inside workerd and
// restored by `wrangler d1 execute --local --file` and by sqlite3, cell for cell (typeof + hex).
// Then the large rows are put back into the live database, where CHECK is active: it sees each row
// once, whole (triggers are suspended by the put-back), and a live row with the same key is left alone.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Manifest } from "../../lib/backup";
import { startLocalWorker, type LocalWorker } from "../../lib/local/runner";
import { runRestore, silentReporter } from "../../lib/restore";
import { BIG, createValuesFixture, HUGE_ROWS } from "../fixtures/values";
import { canonicalDump, d1File, executeFileLocal, freshPlatform, sqliteJson, tempDir, wrangler } from "../helpers/local";
import { testKeys, type TestKeys } from "../helpers/signing";
import { splitStatements } from "../helpers/sql-split";
import { timed as timedIn } from "../helpers/timing";

let persistTo: string;
let work: string;
let worker: LocalWorker | undefined;
let before: string;
let manifest: Manifest;
let dumpFile: string;
let sql: string;
const timings: Record<string, number> = {};

/** The canonical dump without backup_lock: the run's own lock row is in its dump (not this test's subject). */
const data = (dump: string) => dump.replace(/^table backup_lock \d+\n(?:rowid:[^\n]*\n)*/m, "");

const timed = <T>(label: string, f: () => T | Promise<T>) => timedIn(timings, label, f);

let keys: TestKeys;

beforeAll(async () => {
  const platform = await freshPlatform();
  persistTo = platform.persistTo;
  work = tempDir("values");
  try {
    await createValuesFixture(platform.env.DB);
  } finally {
    await platform.dispose();
  }
  before = data(canonicalDump(d1File(persistTo)));
  keys = await testKeys();
  worker = await startLocalWorker({ persistTo, secrets: { BACKUP_SIGNING_KEY: keys.text.signingKey } });
  const res = await timed("backup", () =>
    worker!.call<{ manifest: Manifest; backup: { key: string } }>("/backup", { method: "POST", body: { now: new Date(Date.UTC(2026, 5, 1, 2)).toISOString() } }),
  );
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  manifest = res.body.manifest;
  await worker.dispose();
  worker = undefined;
  const gz = path.join(work, "dump.sql.gz");
  wrangler(["r2", "object", "get", `tech-support-documents/${res.body.backup.key}`, "--local", "--persist-to", persistTo, "--file", gz]);
  dumpFile = path.join(work, "dump.sql");
  fs.writeFileSync(dumpFile, gunzipSync(fs.readFileSync(gz)));
  sql = fs.readFileSync(dumpFile, "utf8");
});

afterAll(async () => {
  await worker?.dispose();
  console.log(`values.test timings (ms): ${JSON.stringify(timings)}`);
});

describe("values at D1's limits", () => {
  it("the source really holds them (sizes, types, -0.0)", () => {
    const rows = sqliteJson<{ id: number; t: string; n: number; bytes: number; neg: number }>(
      d1File(persistTo),
      "SELECT id, typeof(v) AS t, length(CAST(v AS BLOB)) AS n, bytes, (typeof(v)='real' AND v=0 AND atan2(v,-1)<0) AS neg FROM huge ORDER BY id;",
    );
    for (const r of rows.filter((r) => r.id <= 7)) expect(r.n, HUGE_ROWS[r.id - 1].kind).toBe(BIG);
    expect(rows.map((r) => r.t)).toEqual(["blob", "blob", "text", "text", "text", "text", "text", "text", "real", "text"]);
    expect(rows.find((r) => r.id === 9)?.neg).toBe(1);
    const docs = sqliteJson<{ n: number }>(d1File(persistTo), "SELECT length(doc) AS n FROM jdoc ORDER BY id;").map((r) => r.n);
    expect(docs[0]).toBeGreaterThanOrEqual(116_000);
    expect(docs[2]).toBeGreaterThan(1_500_000);
  });

  it("writes statements within wrangler's fast path, nothing a trimmer can cut, no UPDATE of a user table", () => {
    const statements = splitStatements(sql);
    const largest = Math.max(...statements.map((s) => Buffer.byteLength(s)));
    timings.largestStatementBytes = largest;
    timings.statements = statements.length;
    timings.dumpBytes = Buffer.byteLength(sql);
    expect(largest).toBeLessThanOrEqual(16_384);
    expect(sql).not.toMatch(/BEGIN TRANSACTION|COMMIT;/i);
    expect(sql).not.toMatch(/^UPDATE "(?!d1b_stage_)/m);
    const st = [...new Set([...sql.matchAll(/^CREATE TABLE ("d1b_stage_[0-9a-f]{16}")/gm)].map((m) => m[1]))];
    expect(st).toHaveLength(1); // one name per dump, created and dropped per table
    expect(sql.split(`CREATE TABLE ${st[0]} `).length).toBe(sql.split(`DROP TABLE ${st[0]};`).length);
    expect(manifest.tables.map((t) => t.name)).not.toContain(st[0].slice(1, -1));
  });

  it("restores with sqlite3 to the same bytes, cell for cell", async () => {
    const db = path.join(work, "sqlite.db");
    await timed("restoreSqlite3", () => execFileSync("sh", ["-c", 'sqlite3 -bail "$1" < "$2"', "sh", db, dumpFile], { stdio: "pipe" }));
    expect(data(canonicalDump(db))).toBe(before);
    expect(sqliteJson(db, "SELECT name FROM sqlite_master WHERE name LIKE 'd1b_stage_%';")).toEqual([]);
  });

  it("restores with wrangler d1 execute --local --file to the same bytes, cell for cell", async () => {
    const target = tempDir("values-restore");
    await timed("restoreWrangler", () => executeFileLocal(target, dumpFile));
    expect(data(canonicalDump(d1File(target)))).toBe(before);
  });

  it("restore tooling: every check passes (the staging table is neither counted nor left)", async () => {
    const file = path.join(tempDir("values-tool"), "restored.db");
    const r = await timed("restoreTool", () =>
      runRestore({ source: { kind: "local", name: manifest.name, persistTo }, target: { kind: "sqlite", file }, reporter: silentReporter(), tempRoot: work, verifyKeys: keys.verifyKeys }),
    );
    expect(r.ok, JSON.stringify(r.checks)).toBe(true);
    expect(r.checks?.checks.find((c) => c.check === "staging-dropped")?.ok).toBe(true);
    expect(data(canonicalDump(file))).toBe(before);
  });
});

describe("putting large rows back into the live database", () => {
  it("inserts each row whole (CHECK sees it once, complete; triggers do not fire), never touches a live row, and is idempotent", async () => {
    const file = d1File(persistTo);
    const exec = (command: string) => wrangler(["d1", "execute", "tech-support-db", "--local", "--persist-to", persistTo, "--command", command]);
    // Lost rows, and a live row whose key the backup also has.
    exec("DELETE FROM huge WHERE id IN (1, 3, 6, 9); DELETE FROM jdoc WHERE id IN (1, 2, 3)");
    exec(`INSERT INTO jdoc (id, doc) VALUES (2, '{"live":true}'); DELETE FROM jdoc_log`);
    const out = path.join(tempDir("values-putback"), "put-back.sql");
    const r = await timed("putBack", () =>
      runRestore({
        source: { kind: "local", name: manifest.name, persistTo },
        target: { kind: "d1", database: "tech-support-db", remote: false, persistTo },
        // huge row 2 (1.99 MB) is still live: OR IGNORE must skip it whole.
        selective: { tables: ["huge", "jdoc"], where: ["huge:id IN (1, 2, 3, 6, 9)", "jdoc:id IN (1, 2, 3, 6, 9)"], out, apply: true },
        reporter: silentReporter(),
        tempRoot: work,
        verifyKeys: keys.verifyKeys,
      }),
    );
    expect(r.ok, JSON.stringify(r)).toBe(true);
    const put = fs.readFileSync(out, "utf8");
    expect(put).not.toMatch(/^UPDATE "(?!d1b_stage_)/m);
    expect(Math.max(...splitStatements(put).map((s) => Buffer.byteLength(s)))).toBeLessThanOrEqual(16_384);
    expect(r.putBack?.comparison).toEqual([
      { table: "huge", selected: 5, missing: 0, different: 0, kept: 0, links: 0, linksKept: 0 },
      { table: "jdoc", selected: 3, missing: 0, different: 0, kept: 1, links: 0, linksKept: 0 },
    ]);
    // CHECK (json_valid) saw rows 1 and 3 whole (a half-built value fails it); no trigger fired at
    // all: the put-back drops and re-creates them around its writes, so jdoc_log stays as it was.
    expect(r.putBack?.triggers.map((t) => t.name)).toEqual(["huge_whole", "huge_no_update", "jdoc_seen", "jdoc_no_update"]);
    expect(sqliteJson(file, "SELECT doc_id FROM jdoc_log;")).toEqual([]);
    expect(sqliteJson(file, "SELECT name FROM sqlite_master WHERE name = 'jdoc_seen';")).toEqual([{ name: "jdoc_seen" }]);
    expect(sqliteJson<{ doc: string }>(file, "SELECT doc FROM jdoc WHERE id = 2;")[0].doc).toBe('{"live":true}');
    // huge is back byte for byte: its part of the canonical dump equals the source's.
    const hugePart = (dump: string) => dump.slice(dump.indexOf("table huge "), dump.indexOf("table jdoc "));
    expect(hugePart(canonicalDump(file))).toBe(hugePart(before));
    expect(sqliteJson(file, "SELECT name FROM sqlite_master WHERE name LIKE 'd1b_stage_%';")).toEqual([]);
    // Again: OR IGNORE skips every row, large ones included; nothing changes.
    const after = canonicalDump(file);
    executeFileLocal(persistTo, out);
    expect(canonicalDump(file)).toBe(after);
  }, 600_000);
});
