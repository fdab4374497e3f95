// Only dump SQL is ever executed (issue 11). A backup whose SQL carries anything the backup writer
// never emits (sqlite3 dot-commands, ATTACH, an extra DROP TABLE, writes to another schema,
// load_extension(), a function inside VALUES, …) is refused before any target is opened, naming
// the line and the statement, even when its hashes are re-computed and its signature is valid:
// from the bucket, from --file (also without a manifest) and for put-back. A marker file proves
// nothing ran; the targets stay byte-identical. Real sqlite3, wrangler, local D1/R2.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { beforeAll, describe, expect, it } from "vitest";
import { backupDatabase, DUMP_END_MARKER, keysFor, type Manifest, signManifest } from "../../lib/backup";
import { openLocalPlatform } from "../../lib/local/platform";
import { type RestoreOptions, runRestore, silentReporter } from "../../lib/restore";
import { seedDemoData } from "../../lib/seed/seed";
import { DumpSqlCheck, type DumpExpectation } from "../../lib/sql";
import { d1File, freshPlatform, rejection, sqliteJson, tempDir } from "../helpers/local";
import { makeTestKeys, type TestKeys } from "../helpers/signing";

let keys: TestKeys;
let attacker: TestKeys;
let source: string;
let work: string;
let good: Manifest;
let goodSql: string;
let marker: string;
let expectation: DumpExpectation;

const hex = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");
const sha = (file: string) => hex(fs.readFileSync(file));
const beforeMarker = (sql: string, extra: string) => sql.replace(`${DUMP_END_MARKER}\n`, `${extra}${DUMP_END_MARKER}\n`);
const lineOf = (sql: string, needle: string) => sql.slice(0, sql.indexOf(needle)).split("\n").length;

/** The SQL check alone, over a text fed in small pieces (as the stream feeds it). */
function check(sql: string, exp: DumpExpectation | null = expectation): void {
  const c = new DumpSqlCheck(exp);
  for (let i = 0; i < sql.length; i += 997) c.push(sql.slice(i, i + 997));
  c.end();
}
function refusalOf(sql: string, exp: DumpExpectation | null = expectation): { message: string; details: Record<string, unknown> } {
  try {
    check(sql, exp);
  } catch (e) {
    const err = e as { code: string; message: string; details: Record<string, unknown> };
    expect(err.code).toBe("INTEGRITY_ERROR");
    return err;
  }
  throw new Error("expected the SQL to be refused");
}

const poisons = () => [
  { what: "a .shell dot-command", extra: `.shell touch ${marker}\n`, reason: /a sqlite3 shell command \("\.shell touch .*"\), not SQL/ },
  { what: "a .system dot-command", extra: `.system touch ${marker}\n`, reason: /a sqlite3 shell command \("\.system touch/ },
  { what: "ATTACH", extra: `ATTACH '${marker}' AS main2;\n`, reason: /ATTACH statement: not a statement the dump writer emits/ },
  { what: "an extra DROP TABLE", extra: 'DROP TABLE "clients";\n', reason: /"clients" is not a staging table this dump created/ },
  { what: "an INSERT into temp", extra: "INSERT INTO temp.x (a) VALUES (1);\n", reason: /table name "temp\.…" is in another schema/ },
  { what: "an INSERT into another schema", extra: `INSERT INTO main2."clients" ("id") VALUES ('x');\n`, reason: /table name "main2\.…" is in another schema/ },
  { what: "SELECT load_extension()", extra: "SELECT load_extension('/tmp/evil.so');\n", reason: /a SELECT other than the dump's no-op closer/ },
  { what: "a function inside VALUES", extra: `INSERT INTO "clients" ("id") VALUES (writefile('${marker}', 'x'));\n`, reason: /"writefile" is not a literal/ },
  { what: "INSERT … SELECT", extra: `INSERT INTO "clients" ("id") SELECT load_extension('x');\n`, reason: /expected VALUES/ },
  { what: "two statements on one line", extra: `INSERT INTO "clients" ("id") VALUES ('z'); ATTACH '${marker}' AS x;\n`, reason: /ATTACH statement/ },
  { what: "another PRAGMA", extra: "PRAGMA writable_schema=ON;\n", reason: /a PRAGMA other than the dump's PRAGMA defer_foreign_keys=TRUE/ },
  { what: "VACUUM INTO", extra: `VACUUM INTO '${marker}';\n`, reason: /VACUUM statement/ },
  { what: "CREATE TEMP TABLE", extra: "CREATE TEMP TABLE x (a);\n", reason: /CREATE "TEMP": a dump only creates/ },
  { what: "a trigger calling writefile", extra: `CREATE TRIGGER t_evil AFTER INSERT ON "clients" BEGIN SELECT writefile('${marker}', 'x'); END;\n`, reason: /writefile: a function that reaches outside/ },
  { what: "a view reading files", extra: "CREATE VIEW v_evil AS SELECT name, data FROM fsdir('/etc');\n", reason: /fsdir: a function that reaches outside/ },
  { what: "a dot-command hidden after a `go` line", extra: `CREATE VIEW v_go AS SELECT 1\ngo\n.shell touch ${marker}\n;\n`, reason: /a line "go", which sqlite3 reads as the end of the statement/ },
  { what: "a NUL byte", extra: "INSERT INTO \"clients\" (\"id\") VALUES ('a\0');\n", reason: /a NUL byte/ },
];

beforeAll(async () => {
  [keys, attacker] = [await makeTestKeys(), await makeTestKeys()];
  work = tempDir("allowlist-work");
  marker = path.join(work, "MARKER");
  const platform = await freshPlatform();
  source = platform.persistTo;
  try {
    const { DB: db, DOCUMENTS: bucket } = platform.env;
    await seedDemoData(db, { rows: 30 });
    good = (await backupDatabase({ db, bucket, now: new Date(Date.UTC(2026, 2, 1, 2)), trigger: "cli", signingKey: keys.signingKey })).manifest;
    goodSql = gunzipSync(Buffer.from(await (await bucket.get(good.object.key))!.arrayBuffer())).toString("utf8");
  } finally {
    await platform.dispose();
  }
  expectation = { tables: good.tables.map((t) => t.name), indexes: good.schema.indexes, views: good.schema.views, triggers: good.schema.triggers };
});

describe("the SQL check: every statement is one the dump writer emits", () => {
  it("a real dump passes, with its manifest and without", () => {
    expect(good.schema.triggers).toBeGreaterThan(0); // the portal's schema: indexes, views, triggers
    check(goodSql);
    check(goodSql, null);
  });

  it.each([
    { what: "a CREATE INDEX the manifest does not count", extra: 'CREATE INDEX idx_x ON "clients" ("id");\n', message: /the SQL creates \d+ indexes, the manifest says \d+/ },
    { what: "a table the manifest does not list", extra: "CREATE TABLE extra (a);\n", message: /table "extra" is not one of the tables the manifest lists/ },
  ])("$what is refused", ({ extra, message }) => {
    expect(refusalOf(beforeMarker(goodSql, extra)).message).toMatch(message);
  });

  it("the poisons are each refused, naming the line and the statement", () => {
    for (const p of poisons()) {
      const sql = beforeMarker(goodSql, p.extra);
      const e = refusalOf(sql);
      expect(e.message, p.what).toMatch(p.reason);
      expect(e.details.check).toBe("statements");
      if (p.what !== "a NUL byte") {
        const first = p.extra.split("\n")[0];
        const line = lineOf(sql, p.extra) + (p.what.includes("`go`") ? 1 : 0);
        expect(e.details.line, p.what).toBe(line);
        expect(e.message).toMatch(/^not dump SQL at line \d+: /);
        expect(String(e.details.statement).length).toBeLessThanOrEqual(120);
        if (p.what !== "two statements on one line") expect(String(e.details.statement)).toContain(first.slice(0, 20).replace(/\s+/g, " "));
      }
      // Without a manifest the shapes are checked all the same.
      expect(() => check(sql, null), p.what).toThrow(p.reason);
    }
  });

  it("literal forms the writer uses pass; anything computed does not", () => {
    const t = 'CREATE TABLE "clients" (id, v);\n';
    const exp: DumpExpectation = { tables: ["clients"], indexes: 0, views: 0, triggers: 0 };
    check(`${t}INSERT INTO "clients" (rowid, "id", "v") VALUES\n(1,NULL,-0.0),\n(2,'it''s',X'00FF'),\n(-3,CAST(X'E282AC' AS TEXT),1.5e-07),\n(4,9.0e+999,-9223372036854775808);\n`, exp);
    for (const v of ["abs(1)", "1+1", "(1)", "?", ":x", "CAST(1 AS TEXT)", "0x10", "TRUE", "CURRENT_TIME", "X'ABC'", "'a' || 'b'"]) {
      expect(() => check(`${t}INSERT INTO "clients" ("id") VALUES (${v});\n`, exp), v).toThrow(/not dump SQL at line 2/);
      // After rows in the writer's own format too (those are matched in one pass, the rest token by token).
      expect(() => check(`${t}INSERT INTO "clients" ("id") VALUES\n('a'),\n(-1.5),\n(${v});\n`, exp), v).toThrow(/not dump SQL at line 5/);
    }
  });

  it("a row with more or fewer values than columns is refused", () => {
    const t = 'CREATE TABLE "clients" (id, v);\n';
    const exp: DumpExpectation = { tables: ["clients"], indexes: 0, views: 0, triggers: 0 };
    check(`${t}INSERT INTO "clients" ("id", "v") VALUES\n(1,'a'),\n(2,'b');\n`, exp);
    expect(() => check(`${t}INSERT INTO "clients" ("id", "v") VALUES\n(1,'a'),\n(2,'b',3);\n`, exp)).toThrow(/line 4: a row with more values than its 2 column/);
    expect(() => check(`${t}INSERT INTO "clients" ("id", "v") VALUES\n(1,'a'),\n(2);\n`, exp)).toThrow(/line 4: expected ","/);
  });

  it("the staging shapes of large rows pass only with their own staging table", () => {
    const st = '"d1b_stage_0123456789abcdef"';
    const exp: DumpExpectation = { tables: ["docs"], indexes: 0, views: 0, triggers: 0 };
    const staged =
      `CREATE TABLE "docs" (id INTEGER PRIMARY KEY, body);\nCREATE TABLE ${st} (k INTEGER PRIMARY KEY, v);\n` +
      `INSERT INTO ${st} (k, v) VALUES (0, X'AB');\nUPDATE ${st} SET v = v || X'CD' WHERE k=0;\n` +
      `INSERT INTO ${st} (k, v) VALUES (1, CAST(X'41' AS TEXT));\n` +
      `INSERT INTO "docs" ("id", "body") VALUES\n(1,CAST((SELECT v FROM ${st} WHERE k=0) || (SELECT v FROM ${st} WHERE k=1) AS BLOB));\n` +
      `INSERT INTO "docs" ("id", "body") VALUES\n(2,CAST(X'' AS BLOB));\nDELETE FROM ${st};\nDROP TABLE ${st};\n`;
    check(staged, exp);
    // After the DROP the staging table is gone: reading it again is not dump SQL.
    expect(() => check(`${staged}UPDATE ${st} SET v = v || X'00' WHERE k=0;\n`, exp)).toThrow(/is not a staging table this dump created/);
    expect(() => check(staged.replace("WHERE k=0)", "WHERE k=0 OR load_extension('x'))"), exp)).toThrow(/expected "\)"/);
    expect(() => check(staged.replace("(k INTEGER PRIMARY KEY, v)", "(k INTEGER PRIMARY KEY, v CHECK (writefile('x','y')))"), exp)).toThrow(/expected "\)"/);
  });
});

// ---------------------------------------------------------------------------------------------
// Real restores of poisoned backups.

/** A poisoned copy of the good backup in the bucket, hashes re-computed, signed as asked. */
async function craft(bucket: R2Bucket, name: string, sql: string, sign: "real" | "attacker" | "none"): Promise<{ gz: Buffer; manifest: Manifest }> {
  const gz = gzipSync(sql);
  const k = keysFor(name);
  const { signature: _old, ...rest } = {
    ...good,
    name,
    object: { ...good.object, key: k.object, size: gz.length, sha256: hex(gz) },
    sql: { ...good.sql, size: Buffer.byteLength(sql), sha256: hex(sql) },
  };
  const manifest: Manifest = { ...rest, signature: sign === "none" ? null : await signManifest(rest, (sign === "real" ? keys : attacker).signingKey) };
  await bucket.put(k.object, new Uint8Array(gz)); // a copy: the proxy refuses pooled Buffers
  await bucket.put(k.manifest, JSON.stringify(manifest, null, 2));
  return { gz, manifest };
}

const POISON = () => `.shell touch ${marker}\n.system touch ${marker}\nDROP TABLE "clients";\n`;

describe("poisoned backups are refused before anything runs", () => {
  const names = { signed: "database-2026-03-01-02-00-01", attacker: "database-2026-03-01-02-00-02", unsigned: "database-2026-03-01-02-00-03" };
  let poisoned: string;
  let existing: { file: string; hash: string };
  let d1: { persistTo: string; file: string; hash: string };
  const crafted: Record<string, { gz: Buffer; manifest: Manifest }> = {};

  const restore = (opts: Partial<RestoreOptions>) =>
    runRestore({ source: { kind: "local", name: names.signed, persistTo: source }, reporter: silentReporter(), tempRoot: work, verifyKeys: keys.verifyKeys, ...opts });

  beforeAll(async () => {
    poisoned = beforeMarker(goodSql, POISON());
    const platform = await openLocalPlatform({ persistTo: source });
    try {
      for (const [key, name] of Object.entries(names)) {
        crafted[key] = await craft(platform.env.DOCUMENTS, name, poisoned, key === "signed" ? "real" : key === "attacker" ? "attacker" : "none");
      }
    } finally {
      await platform.dispose();
    }
    existing = { file: path.join(tempDir("allow-existing"), "existing.db"), hash: "" };
    sqliteJson(existing.file, "CREATE TABLE keep_me (x); INSERT INTO keep_me VALUES ('precious');");
    existing.hash = sha(existing.file);
    // The seeded source database is the local D1 target: it must come out of every refusal as it was.
    d1 = { persistTo: source, file: d1File(source), hash: sha(d1File(source)) };
  });

  const expectNothingRan = () => {
    expect(fs.existsSync(marker)).toBe(false);
    expect(sha(existing.file)).toBe(existing.hash);
    expect(sha(d1.file)).toBe(d1.hash);
  };
  const line = () => lineOf(poisoned, ".shell touch");
  const expectRefused = (e: { code: string; message: string; details?: Record<string, unknown> }) => {
    expect(e.code).toBe("INTEGRITY_ERROR");
    expect(e.details).toMatchObject({ check: "statements", line: line() });
    expect(e.message).toMatch(new RegExp(`^not dump SQL at line ${line()}: a sqlite3 shell command \\("\\.shell touch .*MARKER"\\), not SQL`));
  };

  it("the poison is live: sqlite3 without -safe would run it (the marker proves it), -safe alone stops the shell", () => {
    const plain = path.join(work, "poisoned.sql");
    fs.writeFileSync(plain, poisoned);
    execFileSync("sh", ["-c", 'sqlite3 -batch "$1" < "$2" || true', "sh", path.join(work, "unsafe.db"), plain], { stdio: "pipe" });
    expect(fs.existsSync(marker)).toBe(true);
    fs.rmSync(marker);
    execFileSync("sh", ["-c", 'sqlite3 -batch -safe "$1" < "$2" || true', "sh", path.join(work, "safe.db"), plain], { stdio: "pipe" });
    expect(fs.existsSync(marker)).toBe(false);
    fs.rmSync(plain);
  });

  it("signed by the right key: refused from the bucket, into a SQLite file and a local D1 (--force)", async () => {
    for (const target of [{ kind: "sqlite" as const, file: existing.file }, { kind: "d1" as const, database: "tech-support-db", remote: false, persistTo: d1.persistTo }]) {
      expectRefused(await rejection(restore({ target, force: true })));
    }
    expectNothingRan();
    expect(fs.readdirSync(path.dirname(existing.file))).toEqual(["existing.db"]);
  });

  it("by another key or unsigned: refused by the signature; with --allow-unsigned, by the SQL check", async () => {
    for (const name of [names.attacker, names.unsigned]) {
      const src = { kind: "local" as const, name, persistTo: source };
      const e = await rejection(restore({ source: src, target: { kind: "sqlite", file: existing.file }, force: true }));
      expect(e.details).toMatchObject({ check: "signature" });
      expectRefused(await rejection(restore({ source: src, target: { kind: "sqlite", file: existing.file }, force: true, allowUnsigned: true })));
    }
    expectNothingRan();
  });

  it("from --file: the .sql.gz with its manifest, and a plain .sql with --no-manifest", async () => {
    const dir = tempDir("allow-file");
    const gzFile = path.join(dir, `${names.signed}.sql.gz`);
    fs.writeFileSync(gzFile, crafted.signed.gz);
    fs.writeFileSync(path.join(dir, `${names.signed}.manifest.json`), JSON.stringify(crafted.signed.manifest));
    expectRefused(await rejection(restore({ source: { kind: "file", file: gzFile }, target: { kind: "sqlite", file: existing.file }, force: true })));
    const plain = path.join(dir, "poisoned.sql");
    fs.writeFileSync(plain, poisoned);
    expectRefused(
      await rejection(restore({ source: { kind: "file", file: plain, noManifest: true }, target: { kind: "sqlite", file: existing.file }, force: true, allowUnsigned: true })),
    );
    expectNothingRan();
  });

  it("for put-back: refused before the scratch copy is built or the put-back file written", async () => {
    const out = path.join(tempDir("allow-putback"), "put-back.sql");
    const e = await rejection(
      restore({ target: { kind: "d1", database: "tech-support-db", remote: false, persistTo: d1.persistTo }, selective: { tables: ["clients"], out, apply: true } }),
    );
    expectRefused(e);
    expect(fs.existsSync(out)).toBe(false);
    expectNothingRan();
  });

  it("the good backup still restores, and says its statements were checked", async () => {
    const file = path.join(tempDir("allow-good"), "restored.db");
    const r = await restore({ source: { kind: "local", name: good.name, persistTo: source }, target: { kind: "sqlite", file } });
    expect(r.ok).toBe(true);
    expect(r.verification.find((c) => c.check === "statements")?.detail).toMatch(
      /^\d+ statements, each of a kind the backup writer emits, for the tables and schema objects the manifest lists$/,
    );
    expect(r.plan?.command).toMatch(/ sqlite3 -batch -bail -safe /);
  });
});
