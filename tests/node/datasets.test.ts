// Real public sample databases nobody on the project wrote (Chinook, Northwind, Sakila; licences
// in their README), each loaded into a fresh local D1 after the portal's migrations, backed up by
// the library and restored through wrangler and sqlite3: every table cell by cell and every
// schema object must come back. They live beside the project (../shared/datasets), never in it.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { backupDatabase } from "../../lib/backup";
import { openLocalPlatform, PROJECT_ROOT } from "../../lib/local";
import { expectDumpSqlAccepted } from "../helpers/dump-check";
import { canonicalDump, d1File, executeFileLocal, migrateLocal, tempDir } from "../helpers/local";

const DATASETS = path.join(PROJECT_ROOT, "..", "shared", "datasets");
const NAMES = ["chinook", "northwind", "sakila"];
const present = NAMES.filter((n) => fs.existsSync(path.join(DATASETS, `${n}.sql`)));

if (present.length < NAMES.length) {
  console.warn(`datasets.test: skipping ${NAMES.filter((n) => !present.includes(n)).join(", ")}: not found in ${DATASETS}`);
}

const timings: string[] = [];
afterAll(() => {
  if (timings.length > 0) console.log(`datasets round trip:\n${timings.join("\n")}`);
});

describe.each(present.length > 0 ? present : ["(none)"])("sample database %s", (name) => {
  if (present.length === 0) {
    it.skip(`skipped: ${DATASETS} is absent (CI provides ../shared/datasets)`, () => {});
    return;
  }
  it("round-trips exactly through wrangler and sqlite3", { timeout: 600_000 }, async () => {
    const persistTo = tempDir(`ds-${name}`);
    migrateLocal(persistTo);
    executeFileLocal(persistTo, path.join(DATASETS, `${name}.sql`));
    const before = canonicalDump(d1File(persistTo));
    expect(before).toMatch(/^table /m);

    const platform = await openLocalPlatform({ persistTo });
    let t = Date.now();
    let sql: string;
    let tables: number;
    let rows: number;
    try {
      const { manifest } = await backupDatabase({ db: platform.env.DB, bucket: platform.env.DOCUMENTS, now: new Date(Date.UTC(2026, 10, 26, 2)) });
      const object = await platform.env.DOCUMENTS.get(manifest.object.key);
      sql = gunzipSync(Buffer.from(await object!.arrayBuffer())).toString("utf8");
      expectDumpSqlAccepted(sql, manifest);
      tables = manifest.tables.length;
      rows = manifest.totalRows;
    } finally {
      await platform.dispose();
    }
    const backupMs = Date.now() - t;
    const file = path.join(tempDir(`ds-${name}-dump`), `${name}.sql`);
    fs.writeFileSync(file, sql);

    t = Date.now();
    const target = tempDir(`ds-${name}-restore`);
    executeFileLocal(target, file);
    expect(canonicalDump(d1File(target))).toBe(before);
    const wranglerMs = Date.now() - t;

    t = Date.now();
    const db = path.join(path.dirname(file), `${name}.db`);
    execFileSync("sh", ["-c", 'sqlite3 -bail "$1" < "$2"', "sh", db, file], { stdio: "pipe" });
    expect(canonicalDump(db)).toBe(before);
    const sqliteMs = Date.now() - t;
    timings.push(
      `  ${name}: ${tables} tables, ${rows} rows, ${(Buffer.byteLength(sql) / 1e6).toFixed(1)} MB dump; ` +
        `backup ${backupMs} ms, wrangler restore+compare ${wranglerMs} ms, sqlite3 restore+compare ${sqliteMs} ms`,
    );
  });
});
