// The promise of the whole system: a backup restores, unedited, into an empty database with
// wrangler and with sqlite3, and gives back the same database, cell for cell. Backups here run
// inside workerd (as in production) through the local runner; the object is fetched with
// `wrangler r2 object get --local`, the command the restore guide uses.
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listBackups, type Manifest } from "../../lib/backup";
import { DEFAULT_DUMP_OPTIONS, DUMP_END_MARKER } from "../../lib/backup/dump";
import { D1_MAX_STATEMENT_BYTES } from "../../lib/sql";
import { openLocalPlatform } from "../../lib/local/platform";
import { startLocalWorker, type LocalWorker } from "../../lib/local/runner";
import { seedDemoData } from "../../lib/seed/seed";
import { createAwkwardFixture } from "../fixtures/awkward";
import { expectDumpSqlAccepted } from "../helpers/dump-check";
import { canonicalDump, d1File, executeFileLocal, freshPlatform, sqliteJson, tempDir, wrangler } from "../helpers/local";
import { splitStatements } from "../helpers/sql-split";

let persistTo: string;
let work: string;
let worker: LocalWorker | undefined;

interface RunResult {
  backup: { key: string; tables: string[]; size: number };
  manifest: Manifest;
}

beforeAll(async () => {
  const platform = await freshPlatform();
  persistTo = platform.persistTo;
  work = tempDir("roundtrip");
  try {
    await seedDemoData(platform.env.DB, { rows: 400 });
    await createAwkwardFixture(platform.env.DB);
  } finally {
    await platform.dispose();
  }
  worker = await startLocalWorker({ persistTo });
});

afterAll(async () => {
  await worker?.dispose();
  worker = undefined;
});

function download(result: RunResult): { gz: Buffer; sql: string; file: string } {
  const gzFile = path.join(work, `${result.manifest.name}.sql.gz`);
  wrangler(["r2", "object", "get", `tech-support-documents/${result.backup.key}`, "--local", "--persist-to", persistTo, "--file", gzFile]);
  const gz = fs.readFileSync(gzFile);
  const plain = gunzipSync(gz);
  const file = path.join(work, `${result.manifest.name}.sql`);
  fs.writeFileSync(file, plain);
  expectDumpSqlAccepted(plain.toString("utf8"), result.manifest);
  return { gz, sql: plain.toString("utf8"), file };
}

function restoreWithSqlite3(dumpFile: string): string {
  const db = path.join(work, `sqlite-${path.basename(dumpFile)}.db`);
  // -bail: the first failing statement fails the restore instead of being skipped.
  execFileSync("sh", ["-c", 'sqlite3 -bail "$1" < "$2"', "sh", db, dumpFile], { stdio: "pipe" });
  return db;
}

function restoreWithWrangler(dumpFile: string): string {
  const persistTo = tempDir("restore");
  executeFileLocal(persistTo, dumpFile);
  return d1File(persistTo);
}

describe.each([
  { mode: "atomic snapshot, default statement size", dump: {}, offsetSeconds: 0 },
  {
    mode: "paged reads (tiny pages) and 2 KB statements",
    dump: { snapshotBudgetBytes: 0, pageBytes: 4096, maxStatementBytes: 2048 },
    offsetSeconds: 1,
  },
])("round trip: $mode", ({ dump, offsetSeconds }) => {
  let before: string;
  let result: RunResult;
  let downloaded: ReturnType<typeof download>;

  beforeAll(async () => {
    before = canonicalDump(d1File(persistTo));
    const res = await worker!.call<RunResult>("/backup", {
      method: "POST",
      body: { now: new Date(Date.UTC(2026, 10, 24, 2, 0, offsetSeconds)).toISOString(), dump },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    result = res.body;
    downloaded = download(result);
  });

  it("records checksums and sizes that match the stored object", async () => {
    const { manifest } = result;
    expect(manifest.object.size).toBe(downloaded.gz.length);
    expect(manifest.object.sha256).toBe(createHash("sha256").update(downloaded.gz).digest("hex"));
    expect(manifest.sql.sha256).toBe(createHash("sha256").update(downloaded.sql).digest("hex"));
    expect(manifest.sql.size).toBe(Buffer.byteLength(downloaded.sql));
    const listing = await worker!.call<{ backups: { key: string; metadata: Record<string, string> }[] }>("/list");
    const listed = listing.body.backups.find((b) => b.key === result.backup.key);
    expect(listed?.metadata).toMatchObject({
      "backup-timestamp": manifest.createdAt,
      "backup-size": String(manifest.object.size),
      "tables-count": String(manifest.tables.length),
      sha256: manifest.object.sha256,
    });
    expect(downloaded.sql.trimEnd().endsWith(DUMP_END_MARKER)).toBe(true);
    expect(result.backup.size).toBe(manifest.object.size);
    expect(manifest.snapshot.mode).toBe("snapshotBudgetBytes" in dump ? "paged" : "atomic");
  });

  it("backs up every table from the schema, with exact row counts", () => {
    const file = d1File(persistTo);
    const tables = sqliteJson<{ name: string }>(
      file,
      "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\';",
    ).map((t) => t.name);
    expect(tables.length).toBeGreaterThanOrEqual(13 + 9);
    expect(result.manifest.tables.map((t) => t.name).sort()).toEqual([...tables].sort());
    expect(result.backup.tables).not.toContain("_cf_METADATA");
    expect(result.backup.tables).toContain("d1_migrations");
    // The portal tables come out parents first.
    const order = result.manifest.tables.map((t) => t.name);
    expect(order.indexOf("parent table")).toBeLessThan(order.indexOf('child "rows"'));
    expect(order.indexOf("clients")).toBeLessThan(order.indexOf("tickets"));
    expect(result.manifest.schema.latestMigration).toMatch(/^0\d+_.*\.sql$/);
  });

  it("never writes a statement over D1's 100 KB limit", () => {
    const statements = splitStatements(downloaded.sql);
    const largest = Math.max(...statements.map((s) => Buffer.byteLength(s)));
    expect(largest).toBeLessThanOrEqual("maxStatementBytes" in dump ? 2048 : DEFAULT_DUMP_OPTIONS.maxStatementBytes);
    expect(largest).toBeLessThanOrEqual(D1_MAX_STATEMENT_BYTES);
    // The large values really were staged and inserted whole: no UPDATE of a user table, and
    // the staging table is dropped.
    expect(downloaded.sql).toMatch(/^UPDATE "d1b_stage_[0-9a-f]{16}" SET v = v \|\| X'/m);
    expect(downloaded.sql).toMatch(/^UPDATE "d1b_stage_[0-9a-f]{16}" SET v = v \|\| 'x/m);
    expect(downloaded.sql).toMatch(/^INSERT INTO "big" \("id", "t", "b", "t2"\) VALUES\n\(1,CAST\(\(SELECT v FROM "d1b_stage_[0-9a-f]{16}" WHERE k=0\) \|\| /m);
    expect(downloaded.sql).not.toMatch(/^UPDATE "(?!d1b_stage_)/m);
    const created = [...downloaded.sql.matchAll(/^CREATE TABLE ("d1b_stage_[0-9a-f]{16}")/gm)].map((m) => m[1]);
    expect(created.length).toBeGreaterThan(0);
    for (const st of created) expect(downloaded.sql).toContain(`DROP TABLE ${st};`);
    // Splitter bait goes out as hex: wrangler's trimmer would cut "BEGIN TRANSACTION;" / "COMMIT;".
    expect(downloaded.sql).not.toMatch(/BEGIN TRANSACTION|COMMIT;/i);
  });

  it("restores with sqlite3 to the same database, cell for cell", () => {
    const restored = restoreWithSqlite3(downloaded.file);
    expect(canonicalDump(restored)).toBe(before);
  });

  it("restores with wrangler d1 execute --local --file to the same database, cell for cell", () => {
    const restored = restoreWithWrangler(downloaded.file);
    expect(canonicalDump(restored)).toBe(before);
    const fk = sqliteJson(restored, "PRAGMA foreign_key_check;");
    expect(fk).toEqual([]);
  });
});

describe("after the round trips", () => {
  it("lists both backups as complete, newest first, with no staged leftovers", async () => {
    await worker!.dispose();
    worker = undefined;
    const platform = await openLocalPlatform({ persistTo });
    try {
      const listing = await listBackups(platform.env.DOCUMENTS);
      expect(listing.backups.map((b) => b.name)).toEqual([
        "database-2026-11-24-02-00-01",
        "database-2026-11-24-02-00-00",
      ]);
      expect(listing.incomplete).toEqual([]);
      const staged = await platform.env.DOCUMENTS.list({ prefix: "backups/.staging/" });
      expect(staged.objects).toEqual([]);
      const rows = await platform.env.DB.prepare(
        "SELECT entity_id, details FROM activity_log WHERE action = 'database_backup_created' ORDER BY id",
      ).all<{ entity_id: string; details: string }>();
      expect(rows.results.map((r) => r.entity_id)).toEqual([
        "backups/database-2026-11-24-02-00-00.sql.gz",
        "backups/database-2026-11-24-02-00-01.sql.gz",
      ]);
      expect(JSON.parse(rows.results[0].details)).toMatchObject({ trigger: "cli", tables: expect.any(Number) });
    } finally {
      await platform.dispose();
    }
  });
});
