// Restore is safe by default: every kind of damaged backup is refused with its own message before
// anything is touched, a non-empty target is refused without --force, and a good backup restores
// (into a SQLite file, a fresh local D1, or over a non-empty one with --force) to exactly the
// database it was taken from. Selective restore puts deleted rows back, with wrangler, leaving
// everything else as it was. Real local D1/R2 (getPlatformProxy), real wrangler and sqlite3.
import { createHash } from "node:crypto";
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { gunzipSync, gzipSync } from "node:zlib";
import { beforeAll, describe, expect, it } from "vitest";
import { backupDatabase, type Manifest, signManifest } from "../../lib/backup";
import { DUMP_END_MARKER } from "../../lib/backup/dump";
import { keysFor } from "../../lib/backup/keys";
import { PROJECT_ROOT } from "../../lib/local/platform";
import { openTarget, type RestoreOptions, type RestoreResult, runChecks, runRestore, silentReporter } from "../../lib/restore";
import { seedDemoData } from "../../lib/seed/seed";
import { canonicalDump, CLI_ENV, d1File, executeFileLocal, freshPlatform, rejection, sqliteJson, tempDir, wrangler } from "../helpers/local";
import { testKeys, type TestKeys } from "../helpers/signing";
import { splitStatements } from "../helpers/sql-split";

const at = (s: number) => new Date(Date.UTC(2026, 0, 15, 2, 0, s));

let source: string; // the source state: D1 with data + R2 with backups
let work: string;
let good: Manifest; // the backup the restores use
let before: string; // canonicalDump of the source as it was when `good` was taken
const names = {
  good: "database-2026-01-15-02-00-00",
  other: "database-2026-01-15-02-00-01",
  flipped: "database-2026-01-15-02-00-02",
  truncated: "database-2026-01-15-02-00-03",
  noManifest: "database-2026-01-15-02-00-04",
  wrongManifest: "database-2026-01-15-02-00-05",
};
/** The ticket whose comments the put-back tests delete; it also holds a comment too large for one statement. */
let bigTicket: number;
let bigDocument: number;
/** The backups are signed with this pair (BACKUP_SIGNING_KEY / BACKUP_VERIFY_KEY in production). */
let keys: TestKeys;
let verifyKeys: TestKeys["verifyKeys"];

// Text that exercises every literal form: quotes, newlines, a carriage return (written as hex),
// emoji; long enough to need splitting under the 16 KB statement limit.
const BIG_TEXT = `${"Line with 'quotes' and \"double\" and emoji 🎫\r\n".repeat(900)}end`;
// Without a carriage return the value is a plain quoted literal: the other text form of splitting.
const BIG_PLAIN = `${"It's a long comment — ünïcödé, newlines\nand 'quotes'. ".repeat(700)}end`;

beforeAll(async () => {
  keys = await testKeys();
  verifyKeys = keys.verifyKeys;
  const platform = await freshPlatform();
  source = platform.persistTo;
  work = tempDir("restore-work");
  try {
    const db = platform.env.DB;
    const bucket = platform.env.DOCUMENTS;
    await seedDemoData(db, { rows: 400 });
    bigTicket = (await db.prepare("SELECT ticket_id FROM ticket_comments GROUP BY ticket_id HAVING count(*) >= 2 ORDER BY ticket_id LIMIT 1").first<{ ticket_id: number }>())!.ticket_id;
    await db.prepare("INSERT INTO ticket_comments (ticket_id, author_id, body, is_internal, created_at) VALUES (?, NULL, ?, 0, '2026-01-14T09:00:00.000Z')").bind(bigTicket, BIG_TEXT).run();
    await db.prepare("INSERT INTO ticket_comments (ticket_id, author_id, body, is_internal, created_at) VALUES (?, 'user_00001', ?, 1, '2026-01-14T10:00:00.000Z')").bind(bigTicket, BIG_PLAIN).run();
    // A document with a large binary thumbnail (zero bytes included): the blob form of splitting.
    const blob = new Uint8Array(40_000).map((_, i) => (i * 7) % 256);
    bigDocument = (await db.prepare("SELECT max(id) AS id FROM documents").first<{ id: number }>())!.id;
    await db.prepare("UPDATE documents SET thumbnail = ? WHERE id = ?").bind(blob, bigDocument).run();

    before = canonicalDump(d1File(source));
    good = (await backupDatabase({ db, bucket, now: at(0), trigger: "cli", signingKey: keys.signingKey })).manifest;
    const made: Record<string, Manifest> = { good };
    for (const [key, name] of Object.entries(names)) {
      if (key === "good") continue;
      const s = Number(name.slice(-2));
      made[key] = (await backupDatabase({ db, bucket, now: at(s), trigger: "cli", signingKey: keys.signingKey })).manifest;
    }

    // One flipped byte in the stored object (bit rot at rest: size and metadata unchanged).
    const flipKey = keysFor(names.flipped).object;
    const obj = (await bucket.get(flipKey))!;
    const bytes = new Uint8Array(await obj.arrayBuffer());
    bytes[Math.floor(bytes.length / 2)] ^= 0x01;
    await bucket.put(flipKey, bytes, { customMetadata: obj.customMetadata, httpMetadata: obj.httpMetadata });

    // An object cut short (an interrupted copy), its manifest intact.
    const truncKey = keysFor(names.truncated).object;
    const tobj = (await bucket.get(truncKey))!;
    const tbytes = new Uint8Array(await tobj.arrayBuffer());
    await bucket.put(truncKey, tbytes.slice(0, Math.floor(tbytes.length * 0.6)), { customMetadata: tobj.customMetadata });

    await bucket.delete(keysFor(names.noManifest).manifest);

    // The manifest of another backup, copied over this one's.
    const otherManifest = await (await bucket.get(keysFor(names.other).manifest))!.text();
    await bucket.put(keysFor(names.wrongManifest).manifest, otherManifest);
  } finally {
    await platform.dispose();
  }
});

function restore(opts: Partial<RestoreOptions> & Pick<RestoreOptions, "target"> & { name?: string }): Promise<RestoreResult> {
  const { name, ...rest } = opts;
  return runRestore({
    source: { kind: "local", name: name ?? names.good, persistTo: source },
    reporter: silentReporter(),
    tempRoot: work,
    verifyKeys,
    ...rest,
  });
}

const sha = (file: string) => createHash("sha256").update(fs.readFileSync(file)).digest("hex");

/** A SQLite target with data in it: what a refused restore must leave exactly as it was. */
async function existingSqlite(label: string): Promise<{ file: string; hash: string }> {
  const file = path.join(tempDir(`existing-${label}`), "existing.db");
  fs.writeFileSync(file, "");
  execSqlite(file, "CREATE TABLE keep_me (x); INSERT INTO keep_me VALUES ('precious');");
  return { file, hash: sha(file) };
}

function execSqlite(file: string, sql: string): void {
  sqliteJson(file, sql);
}

function leftovers(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => f.includes(".restoring-"));
}

describe("damaged backups are refused before anything is touched", () => {
  const cases: { what: string; name: string; code: string; check: string; message: RegExp }[] = [
    { what: "one flipped byte in the R2 object", name: names.flipped, code: "INTEGRITY_ERROR", check: "object-sha256", message: /^corrupted backup object: sha256 of backups\/database-2026-01-15-02-00-02\.sql\.gz is [0-9a-f]{64}, its manifest says/ },
    { what: "an object truncated in R2", name: names.truncated, code: "INTEGRITY_ERROR", check: "object-size", message: /^truncated backup object: .* is \d+ bytes, its manifest says \d+/ },
    { what: "a missing manifest", name: names.noManifest, code: "NOT_FOUND", check: "manifest-present", message: /^missing manifest: backups\/database-2026-01-15-02-00-04\.manifest\.json was not found .*the backup object exists: the backup is incomplete/ },
    { what: "the manifest of another backup", name: names.wrongManifest, code: "INTEGRITY_ERROR", check: "manifest-name", message: /^manifest of another backup: .* describes database-2026-01-15-02-00-01, not database-2026-01-15-02-00-05/ },
  ];

  it.each(cases)("$what: $code ($check), SQLite target untouched even with --force", async ({ name, code, check, message }) => {
    const target = await existingSqlite(check);
    const e = await rejection(restore({ name, target: { kind: "sqlite", file: target.file }, force: true }));
    expect(e.code).toBe(code);
    expect(e.details?.check).toBe(check);
    expect(e.message).toMatch(message);
    expect(sha(target.file)).toBe(target.hash);
    expect(leftovers(path.dirname(target.file))).toEqual([]);
  });

  it("each failure has its own message", () => {
    const patterns = cases.map((c) => c.message.source);
    expect(new Set(patterns).size).toBe(cases.length);
  });

  it("a damaged backup never creates a local D1 target", async () => {
    const dir = path.join(tempDir("never"), "state");
    const e = await rejection(restore({ name: names.flipped, target: { kind: "d1", database: "tech-support-db", remote: false, persistTo: dir } }));
    expect(e.code).toBe("INTEGRITY_ERROR");
    expect(fs.existsSync(dir)).toBe(false);
  });

  describe("from files", () => {
    let gz: Buffer;
    beforeAll(() => {
      const file = path.join(work, `${names.good}.sql.gz`);
      wrangler(["r2", "object", "get", `tech-support-documents/${good.object.key}`, "--local", "--persist-to", source, "--file", file]);
      gz = fs.readFileSync(file);
    });

    function fileBackup(label: string, object: Buffer, manifest: object | null): { file: string; manifest: string | undefined } {
      const dir = tempDir(`file-${label}`);
      const file = path.join(dir, `${names.good}.sql.gz`);
      fs.writeFileSync(file, object);
      if (!manifest) return { file, manifest: undefined };
      const m = path.join(dir, "manifest.json");
      fs.writeFileSync(m, JSON.stringify(manifest));
      return { file, manifest: m };
    }

    it("truncated gzip (a manifest that matches the cut object): refused by full decompression", async () => {
      const cut = gz.subarray(0, Math.floor(gz.length * 0.7));
      const unsigned = { ...good, object: { ...good.object, size: cut.length, sha256: createHash("sha256").update(cut).digest("hex") } };
      // Re-signed with the real key: this case is about the gzip layer, past the signature.
      const manifest = { ...unsigned, signature: await signManifest(unsigned, keys.signingKey) };
      const f = fileBackup("trunc", cut, manifest);
      const target = await existingSqlite("trunc-gz");
      const e = await rejection(runRestore({ source: { kind: "file", file: f.file, manifestFile: f.manifest }, target: { kind: "sqlite", file: target.file }, force: true, reporter: silentReporter(), tempRoot: work, verifyKeys }));
      expect(e.code).toBe("INTEGRITY_ERROR");
      expect(e.details?.check).toBe("gzip");
      expect(e.message).toMatch(/^truncated gzip: .* ends in the middle of its gzip stream \(unexpected end of file\)/);
      expect(sha(target.file)).toBe(target.hash);
    });

    it("a dump without its end marker (unverified file): refused as incomplete", async () => {
      const sql = gunzipSync(gz).toString("utf8").replace(`${DUMP_END_MARKER}\n`, "");
      const f = fileBackup("nomarker", gzipSync(sql), null);
      const e = await rejection(runRestore({ source: { kind: "file", file: f.file, noManifest: true }, target: { kind: "sqlite", file: path.join(work, "never.db") }, reporter: silentReporter(), tempRoot: work, verifyKeys, allowUnsigned: true }));
      expect(e.details?.check).toBe("end-marker");
      expect(e.message).toMatch(/^incomplete dump: the SQL does not end with "-- d1-backup: end of dump"/);
      expect(fs.existsSync(path.join(work, "never.db"))).toBe(false);
    });

    it("a file without a manifest is refused unless --no-manifest", async () => {
      const f = fileBackup("nomanifest", gz, null);
      const e = await rejection(runRestore({ source: { kind: "file", file: f.file }, target: { kind: "sqlite", file: path.join(work, "never2.db") }, reporter: silentReporter(), tempRoot: work, verifyKeys }));
      expect(e.code).toBe("NOT_FOUND");
      expect(e.details?.check).toBe("manifest-present");
      expect(e.message).toMatch(/^missing manifest: .*database-2026-01-15-02-00-00\.manifest\.json does not exist/);
    });

    it("a plain .sql file is checked against the manifest's SQL checksum and restores", async () => {
      const dir = tempDir("plain");
      const file = path.join(dir, `${names.good}.sql`);
      fs.writeFileSync(file, gunzipSync(gz));
      fs.writeFileSync(path.join(dir, `${names.good}.manifest.json`), JSON.stringify(good)); // found beside it
      const target = path.join(dir, "restored.db");
      const r = await runRestore({ source: { kind: "file", file }, target: { kind: "sqlite", file: target }, reporter: silentReporter(), tempRoot: work, verifyKeys });
      expect(r.ok).toBe(true);
      expect(r.verification.map((c) => c.check)).toEqual(["manifest", "signature", "object-sha256", "sql-sha256", "end-marker", "statements"]);
      expect(canonicalDump(target)).toBe(before);
      fs.appendFileSync(file, "DELETE FROM clients;\n");
      const e = await rejection(runRestore({ source: { kind: "file", file }, target: { kind: "sqlite", file: path.join(dir, "never.db") }, reporter: silentReporter(), tempRoot: work, verifyKeys }));
      expect(e.details?.check).toBe("sql-sha256");
      expect(e.message).toMatch(/^corrupted SQL: /);
    });

    it("a good file with its manifest restores", async () => {
      const f = fileBackup("good", gz, good);
      const file = path.join(tempDir("from-file"), "restored.db");
      const r = await runRestore({ source: { kind: "file", file: f.file, manifestFile: f.manifest }, target: { kind: "sqlite", file }, reporter: silentReporter(), tempRoot: work, verifyKeys });
      expect(r.ok).toBe(true);
      expect(r.verification.map((c) => c.check)).toEqual(["manifest", "signature", "object-sha256", "gzip", "sql-sha256", "end-marker", "statements"]);
      expect(canonicalDump(file)).toBe(before);
    });
  });
});

describe("targets that are not empty", () => {
  it("a local D1 with tables is refused without --force: TARGET_NOT_EMPTY, a dry run in the details, untouched", async () => {
    const dir = tempDir("nonempty-d1");
    await restore({ target: { kind: "d1", database: "tech-support-db", remote: false, persistTo: dir } });
    wrangler(["d1", "execute", "tech-support-db", "--local", "--persist-to", dir, "--command", "DELETE FROM ticket_comments WHERE id % 2 = 0"]);
    const state = canonicalDump(d1File(dir));
    const e = await rejection(restore({ target: { kind: "d1", database: "tech-support-db", remote: false, persistTo: dir } }));
    expect(e.code).toBe("TARGET_NOT_EMPTY");
    expect(e.message).toMatch(/is not empty \(table d1_migrations, table clients, .*nothing was changed.*--force/);
    const plan = e.details?.dryRun as RestoreResult;
    expect(plan.mode).toBe("dry-run");
    expect(plan.plan?.command).toMatch(/^npx wrangler d1 execute tech-support-db --local --persist-to \S+ --file \S+\.sql --yes$/);
    expect(plan.plan?.replaces).toContain('DROP TABLE IF EXISTS "ticket_comments";');
    expect(canonicalDump(d1File(dir))).toBe(state);

    // --force: user objects dropped (children first) and the backup restored, in one transaction.
    const forced = await restore({ target: { kind: "d1", database: "tech-support-db", remote: false, persistTo: dir }, force: true });
    expect(forced.ok).toBe(true);
    expect(forced.audit).toEqual(["restore_completed", "restore_forced"]);
    expect(canonicalDump(d1File(dir), { withoutRestoreAudit: true })).toBe(before);
  });

  it("an existing SQLite file is refused without --force, untouched; --force replaces it", async () => {
    const target = await existingSqlite("nonempty");
    const e = await rejection(restore({ target: { kind: "sqlite", file: target.file } }));
    expect(e.code).toBe("TARGET_NOT_EMPTY");
    expect(e.message).toContain("table keep_me");
    expect(sha(target.file)).toBe(target.hash);
    const r = await restore({ target: { kind: "sqlite", file: target.file }, force: true });
    expect(r.ok).toBe(true);
    expect(canonicalDump(target.file)).toBe(before);
    expect(leftovers(path.dirname(target.file))).toEqual([]);
  });

  it("--dry-run verifies and shows every table with its rows and the command, and creates nothing", async () => {
    const dir = path.join(tempDir("dry"), "state");
    const r = await restore({ target: { kind: "d1", database: "tech-support-db", remote: false, persistTo: dir }, dryRun: true });
    expect(r.mode).toBe("dry-run");
    expect(r.ok).toBe(true);
    expect(r.target?.empty).toBe(true);
    expect(r.backup.tables).toEqual(good.tables);
    expect(r.verification.every((c) => c.ok)).toBe(true);
    expect(r.plan?.command).toContain(`--persist-to ${dir} --file`);
    expect(fs.existsSync(dir)).toBe(false);
  });
});

describe("restores equal to the source at backup time", () => {
  it("into a SQLite file (sqlite3, BEGIN/COMMIT): every check passes, cell for cell equal", async () => {
    const file = path.join(tempDir("sqlite-target"), "restored.db");
    const r = await restore({ target: { kind: "sqlite", file } });
    expect(r.ok).toBe(true);
    expect(r.checks?.checks.map((c) => [c.check, c.ok])).toEqual([
      ["row-counts", true],
      ["schema-objects", true],
      ["staging-dropped", true],
      ["foreign-key-check", true],
      ["quick-check", true],
      ["latest-migration", true],
    ]);
    expect(r.checks?.tables.map((t) => [t.name, t.actual])).toEqual(good.tables.map((t) => [t.name, t.rows]));
    expect(r.timings.map((t) => t.step)).toEqual(["download", "verify", "inspect target", "restore", "checks"]);
    expect(canonicalDump(file)).toBe(before);
  });

  it("into a fresh local D1 (wrangler d1 execute --local --persist-to): cell for cell equal", async () => {
    const dir = path.join(tempDir("d1-target"), "state");
    const r = await restore({ target: { kind: "d1", database: "tech-support-db", remote: false, persistTo: dir } });
    expect(r.ok).toBe(true);
    expect(r.plan?.command).toMatch(/^npx wrangler d1 execute tech-support-db --local --persist-to /);
    expect(r.audit).toEqual(["restore_completed"]);
    expect(canonicalDump(d1File(dir), { withoutRestoreAudit: true })).toBe(before);
  });

  it("a restored database that differs from the manifest fails its checks", async () => {
    const dir = path.join(tempDir("d1-check"), "state");
    await restore({ target: { kind: "d1", database: "tech-support-db", remote: false, persistTo: dir } });
    // Damage the restored database, then run the checks again through the library (without the
    // restore_completed row the restore added to activity_log: it is not what the manifest counted).
    execSqlite(d1File(dir), "DELETE FROM activity_log WHERE action LIKE 'restore_%'; DELETE FROM invoice_items WHERE id <= 3; INSERT INTO ticket_comments (ticket_id, body) VALUES (999999, 'orphan');");
    const report = await runChecks(openTarget({ kind: "d1", database: "tech-support-db", remote: false, persistTo: dir }).query, good);
    expect(report.ok).toBe(false);
    const failed = Object.fromEntries(report.checks.filter((c) => !c.ok).map((c) => [c.check, c.detail]));
    expect(failed["row-counts"]).toMatch(/^ticket_comments: (\d+) rows, manifest says \d+; invoice_items: \d+ rows, manifest says \d+$/);
    expect(failed["foreign-key-check"]).toMatch(/1 violation\(s\), e\.g\. ticket_comments rowid \d+ -> tickets/);
  });
});

describe("selective restore: put deleted rows back", () => {
  const where = () => `ticket_id = ${bigTicket}`;
  let full: string;

  beforeAll(() => {
    full = canonicalDump(d1File(source));
  });

  function deleteComments(): void {
    wrangler(["d1", "execute", "tech-support-db", "--local", "--persist-to", source, "--command", `DELETE FROM ticket_comments WHERE ${where()}`]);
  }

  it("writes INSERT OR IGNORE statements under the limit that wrangler applies, giving back the same database", async () => {
    deleteComments();
    const afterDelete = canonicalDump(d1File(source));
    expect(afterDelete).not.toBe(full);
    const out = path.join(tempDir("putback"), "put-back.sql");
    const r = await restore({ target: { kind: "d1", database: "tech-support-db", remote: false, persistTo: source }, selective: { tables: ["ticket_comments"], where: where(), out } });
    expect(r.mode).toBe("put-back");
    expect(r.putBack?.applied).toBe(false);
    expect(canonicalDump(d1File(source))).toBe(afterDelete); // writing the file changed nothing

    const sql = fs.readFileSync(out, "utf8");
    expect(sql).toMatch(/^INSERT OR IGNORE INTO "ticket_comments" \("id", "ticket_id", "author_id", "body", "is_internal", "created_at"\) VALUES$/m);
    // Nothing deletes, drops or overwrites a user table; only our own staging table is written,
    // emptied and dropped.
    expect(sql).not.toMatch(/^(DELETE|DROP|INSERT INTO|INSERT OR REPLACE|UPDATE)(?! (FROM |TABLE |INTO )?"d1b_stage_[0-9a-f]{16}")/m);
    expect(r.putBack?.tables[0].splitRows).toBe(2); // BIG_TEXT and BIG_PLAIN went in pieces
    // Assembled in the staging table (non-ASCII text as hex), then inserted whole by OR IGNORE.
    const st = /^CREATE TABLE ("d1b_stage_[0-9a-f]{16}") \(k INTEGER PRIMARY KEY, v\);$/m.exec(sql)![1];
    expect(sql).toMatch(new RegExp(`^UPDATE ${st} SET v = v \\|\\| CAST\\(X'[0-9A-F]+' AS TEXT\\) WHERE k=\\d+;$`, "m"));
    expect(sql).toMatch(new RegExp(`^\\(\\d+,${bigTicket},NULL,CAST\\(\\(SELECT v FROM ${st} WHERE k=0\\)( \\|\\| \\(SELECT v FROM ${st} WHERE k=\\d+\\))* AS TEXT\\),0,'2026-01-14T09:00:00.000Z'\\);$`, "m"));
    expect(sql).toContain(`DROP TABLE ${st};\n-- d1-backup: end of put-back`);
    const statements = splitStatements(sql);
    expect(Math.max(...statements.map((s) => Buffer.byteLength(s)))).toBeLessThanOrEqual(16_384);
    expect(r.putBack?.largestStatement).toBeLessThanOrEqual(16_384);

    executeFileLocal(source, out); // stock wrangler, as an admin would
    expect(canonicalDump(d1File(source))).toBe(full);

    // Applying it again changes nothing: OR IGNORE skips existing rows, large ones included (they
    // are inserted whole from the staging table, which the file drops again).
    executeFileLocal(source, out);
    expect(canonicalDump(d1File(source))).toBe(full);
  });

  it("--apply puts them back itself and checks every selected row is there", async () => {
    deleteComments();
    const out = path.join(tempDir("putback-apply"), "put-back.sql");
    const r = await restore({
      target: { kind: "d1", database: "tech-support-db", remote: false, persistTo: source },
      selective: { tables: ["ticket_comments"], where: where(), out, apply: true, maxStatementBytes: 2048 },
    });
    expect(r.ok).toBe(true);
    expect(r.putBack?.applied).toBe(true);
    const n = sqliteJson<{ n: number }>(d1File(source), `SELECT count(*) AS n FROM ticket_comments WHERE ${where()}`)[0].n;
    expect(r.putBack?.comparison).toEqual([{ table: "ticket_comments", selected: n, missing: 0, different: 0, kept: 0, links: 0, linksKept: 0 }]);
    expect(r.putBack?.largestStatement).toBeLessThanOrEqual(2048);
    expect(r.audit).toEqual(["restore_put_back_completed"]);
    expect(canonicalDump(d1File(source), { withoutRestoreAudit: true })).toBe(full);
  });

  it("a large blob is put back exactly, and a live row with the same key is left alone", async () => {
    const file = d1File(source);
    wrangler(["d1", "execute", "tech-support-db", "--local", "--persist-to", source, "--command", `UPDATE documents SET file_name = 'edited live' WHERE id = ${bigDocument - 1}; DELETE FROM documents WHERE id = ${bigDocument}`]);
    const edited = canonicalDump(file);
    const r = await restore({
      target: { kind: "d1", database: "tech-support-db", remote: false, persistTo: source },
      selective: { tables: ["documents"], where: `id >= ${bigDocument - 1}`, out: path.join(tempDir("blob"), "docs.sql"), apply: true },
    });
    expect(r.ok).toBe(true);
    expect(r.putBack?.tables[0]).toMatchObject({ rows: 2, splitRows: 1 });
    expect(r.putBack?.comparison).toEqual([{ table: "documents", selected: 2, missing: 0, different: 0, kept: 1, links: 0, linksKept: 0 }]);
    expect(r.putBack?.kept).toEqual([expect.objectContaining({ table: "documents", key: String(bigDocument - 1), column: "file_name", link: false })]);
    expect(r.warnings.join("\n")).toMatch(/documents: 1 selected row\(s\) existed in the target with other values; --mode ignore kept the live values/);
    const row = sqliteJson<{ h: string; n: number; name: string }>(file, `SELECT hex(thumbnail) AS h, length(thumbnail) AS n, typeof(thumbnail) AS name FROM documents WHERE id = ${bigDocument}`)[0];
    expect(row.n).toBe(40_000);
    expect(row.name).toBe("blob");
    expect(row.h).toBe(Buffer.from(new Uint8Array(40_000).map((_, i) => (i * 7) % 256)).toString("hex").toUpperCase());
    expect(sqliteJson<{ f: string }>(file, `SELECT file_name AS f FROM documents WHERE id = ${bigDocument - 1}`)[0].f).toBe("edited live");
    expect(canonicalDump(file)).not.toBe(edited);
  });

  it("refuses tables the backup does not have, and --where that is not one expression", async () => {
    const target = { kind: "d1" as const, database: "tech-support-db", remote: false, persistTo: source };
    const e1 = await rejection(restore({ target, selective: { tables: ["nope"], out: path.join(work, "x.sql") } }));
    expect(e1.code).toBe("INVALID_INPUT");
    expect(e1.message).toMatch(/no table "nope" in this backup; its tables: d1_migrations, /);
    const e2 = await rejection(restore({ target, selective: { tables: ["tickets"], where: "1; DELETE FROM tickets", out: path.join(work, "y.sql") } }));
    expect(e2.message).toMatch(/--where must be one SQL expression/);
    const e3 = await rejection(restore({ target, selective: { tables: ["tickets"], where: "no_such_column = 1", out: path.join(work, "z.sql") } }));
    expect(e3.message).toMatch(/--where "no_such_column = 1" does not work on table "tickets": .*no such column: no_such_column/);
  });
});

describe("npm run restore (the CLI)", () => {
  const run = promisify(execFile);
  const cli = (args: string[], env: NodeJS.ProcessEnv = { ...CLI_ENV, BACKUP_VERIFY_KEY: keys.text.verifyKey }) =>
    run(path.join(PROJECT_ROOT, "node_modules", ".bin", "tsx"), [path.join(PROJECT_ROOT, "scripts", "restore.ts"), ...args], { cwd: work, env }).then(
      (r) => ({ code: 0, ...r }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );

  it("documents every option in --help", async () => {
    const r = await cli(["--help"]);
    expect(r.code).toBe(0);
    for (const opt of ["--file", "--manifest", "--no-manifest", "--remote", "--local", "--source-persist-to", "--bucket", "--to-sqlite", "--persist-to", "--database", "--dry-run", "--force", "--yes", "--table", "--where", "--cascade", "--mode", "--out", "--apply", "--max-statement-bytes", "--keep-sql", "--json", "--quiet"]) {
      expect(r.stdout).toContain(opt);
    }
  });

  it("restores to a SQLite file and prints JSON; exit 3 and a dry run when the target exists", async () => {
    const file = path.join(tempDir("cli"), "cli.db");
    const ok = await cli([names.good, "--source-persist-to", source, "--to-sqlite", file, "--json"]);
    expect(ok.code, ok.stderr).toBe(0);
    const result = JSON.parse(ok.stdout) as RestoreResult;
    expect(result.ok).toBe(true);
    expect(result.backup.key).toBe(good.object.key);
    expect(ok.stderr).toMatch(/✓ restore \(/); // progress and timings go to stderr

    const refused = await cli([`backups/${names.good}.sql.gz`, "--source-persist-to", source, "--to-sqlite", file, "--quiet"]);
    expect(refused.code).toBe(3);
    expect(refused.stdout).toMatch(/Tables to restore \(rows from the manifest\)/);
    expect(refused.stdout).toMatch(/REFUSED: the target is not empty; nothing was changed\./);
    expect(refused.stderr).toMatch(/^restore: TARGET_NOT_EMPTY: SQLite file .* is not empty/);
  });

  it("exit 1 with the check's message for a damaged backup, exit 2 for bad arguments", async () => {
    const bad = await cli([names.flipped, "--source-persist-to", source, "--to-sqlite", path.join(work, "cli-bad.db"), "--quiet"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^restore: INTEGRITY_ERROR: corrupted backup object: /);
    const usage = await cli(["not-a-backup", "--to-sqlite", path.join(work, "x.db"), "--quiet"]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/"not-a-backup" is not a backup name/);
    const noTarget = await cli([names.good, "--quiet"]);
    expect(noTarget.code).toBe(2);
    expect(noTarget.stderr).toMatch(/say where to restore/);
  });
});
