// Every SQL shape D1 can hold round-trips: rowids exactly where SQLite has them (and cells exactly
// where it has none by any name), FTS5 of each kind answering the same MATCH queries, lower-case
// blocks through wrangler's splitter, sqlite_stat1. Backups run through the library against real
// local D1/R2; both restore paths are compared cell by cell with the source.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backupDatabase, type Manifest } from "../../lib/backup";
import { runChecks } from "../../lib/restore";
import { sqliteQuery } from "../../lib/restore/sqlite";
import { openSplitterBlocks } from "../../lib/sql";
import { createShapesFixture, FTS_QUERIES } from "../fixtures/shapes";
import { expectDumpSqlAccepted } from "../helpers/dump-check";
import { canonicalDump, d1File, executeFileLocal, freshPlatform, sqliteJson, tempDir } from "../helpers/local";
import { splitStatements } from "../helpers/sql-split";

let platform: Awaited<ReturnType<typeof freshPlatform>>;
let work: string;

beforeAll(async () => {
  platform = await freshPlatform();
  work = tempDir("shapes");
  await createShapesFixture(platform.env.DB);
});

afterAll(async () => {
  await platform?.dispose();
});

function answers(file: string): string {
  return FTS_QUERIES.map((q) => `${q}\n${JSON.stringify(sqliteJson(file, `${q};`))}`).join("\n");
}

describe.each([
  { mode: "atomic snapshot", dump: {}, second: 0 },
  { mode: "paged reads (tiny pages), 2 KB statements", dump: { snapshotBudgetBytes: 0, pageBytes: 512, maxStatementBytes: 2048 }, second: 1 },
])("shapes round trip: $mode", ({ dump, second }) => {
  let before: string;
  let beforeAnswers: string;
  let manifest: Manifest;
  let sql: string;
  let file: string;

  beforeAll(async () => {
    const source = d1File(platform.persistTo);
    before = canonicalDump(source);
    beforeAnswers = answers(source);
    const result = await backupDatabase({
      db: platform.env.DB,
      bucket: platform.env.DOCUMENTS,
      now: new Date(Date.UTC(2026, 10, 25, 2, 0, second)),
      dump,
    });
    manifest = result.manifest;
    const object = await platform.env.DOCUMENTS.get(manifest.object.key);
    sql = gunzipSync(Buffer.from(await object!.arrayBuffer())).toString("utf8");
    file = path.join(work, `${manifest.name}.sql`);
    fs.writeFileSync(file, sql);
    expectDumpSqlAccepted(sql, manifest);
  });

  it("backs up every shape, FTS5 tables included and their shadow tables not as tables", () => {
    const names = manifest.tables.map((t) => t.name);
    for (const t of ["pk_desc", "pk_int", "shadowed", "shadowed_pk", "ticket_search", "kb_fts", "ticket_terms", "ticket_trigrams", "levels"]) {
      expect(names).toContain(t);
    }
    expect(names.filter((n) => /_(data|idx|content|docsize|config)$/.test(n))).toEqual([]);
    expect(manifest.tables.find((t) => t.name === "shadowed")?.rows).toBe(4);
    expect(manifest.tables.find((t) => t.name === "ticket_terms")?.rows).toBe(3);
    expect(manifest.tables.find((t) => t.name === "kb_fts")?.rows).toBe(2);
    // The rowid is written wherever it is not the primary key: DESC and INT keys are not aliases.
    expect(sql).toMatch(/^INSERT INTO "pk_desc" \(rowid, "id", "v"\) VALUES/m);
    expect(sql).toMatch(/^INSERT INTO "pk_int" \(rowid, "id", "v"\) VALUES/m);
    expect(sql).toMatch(/^INSERT INTO "pk_constraint" \("id", "v"\) VALUES/m);
    expect(sql).toMatch(/^INSERT INTO "kb_fts"\("kb_fts"\) VALUES \('rebuild'\);$/m);
    expect(sql).not.toMatch(/INSERT INTO "[^"]*_(data|idx|docsize|config)"/);
    // Every block wrangler's splitter sees opened is closed again, so no statement swallows the rest.
    expect(openSplitterBlocks(sql)).toBe(0);
    expect(Math.max(...splitStatements(sql).map((s) => Buffer.byteLength(s)))).toBeLessThanOrEqual(
      "maxStatementBytes" in dump ? 2048 : 16_384,
    );
  });

  it("restores with sqlite3 to the same database and the same search answers", async () => {
    const db = path.join(work, `${manifest.name}.db`);
    execFileSync("sh", ["-c", 'sqlite3 -bail "$1" < "$2"', "sh", db, file], { stdio: "pipe" });
    expect(canonicalDump(db)).toBe(before);
    expect(answers(db)).toBe(beforeAnswers);
    const report = await runChecks((q) => sqliteQuery(db, q), manifest);
    expect(report.checks.filter((c) => !c.ok)).toEqual([]);
  });

  it("restores with wrangler d1 execute --local --file to the same database and the same search answers", async () => {
    const persistTo = tempDir("shapes-restore");
    executeFileLocal(persistTo, file);
    const db = d1File(persistTo);
    expect(canonicalDump(db)).toBe(before);
    expect(answers(db)).toBe(beforeAnswers);
    const report = await runChecks((q) => sqliteQuery(db, q), manifest);
    expect(report.checks.filter((c) => !c.ok)).toEqual([]);
  });
});
