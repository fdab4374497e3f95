// What a restore refuses and what it never destroys (issue 11). A backup whose manifest carries
// re-computed hashes but no signature, a wrong one, or one by another key is refused from the
// bucket and from --file before anything touches a target; --allow-unsigned goes ahead loudly and
// is audited. --force with a restore that fails its import or its checks leaves the old SQLite
// file and the old local D1 byte for byte as they were. A restore killed part way leaves no
// plaintext after the next run. Every argument mistake exits 2 with one line.
// Real local D1/R2 (getPlatformProxy), real wrangler and sqlite3.
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { gunzipSync, gzipSync } from "node:zlib";
import { beforeAll, describe, expect, it } from "vitest";
import { activitySummary, backupDatabase, DUMP_END_MARKER, keysFor, type Manifest, signManifest } from "../../lib/backup";
import { PROJECT_ROOT } from "../../lib/local/platform";
import { createReporter, openTarget, type RestoreOptions, type RestoreResult, runRestore, silentReporter } from "../../lib/restore";
import { seedDemoData } from "../../lib/seed/seed";
import { CLI_ENV, d1File, freshPlatform, rejection, sqliteJson, tempDir } from "../helpers/local";
import { makeTestKeys, type TestKeys } from "../helpers/signing";

const at = (s: number) => new Date(Date.UTC(2026, 1, 3, 2, 0, s));
const names = {
  good: "database-2026-02-03-02-00-00",
  unsigned: "database-2026-02-03-02-00-01", // a real backup made without BACKUP_SIGNING_KEY
  noSig: "database-2026-02-03-02-00-02", // tampered, hashes re-computed, signature removed
  otherKey: "database-2026-02-03-02-00-03", // tampered, hashes re-computed, signed by another key
  badSig: "database-2026-02-03-02-00-04", // tampered, hashes re-computed, the old signature kept
  failsImport: "database-2026-02-03-02-00-05", // signed, but its SQL fails near the end
  failsChecks: "database-2026-02-03-02-00-06", // signed, but the manifest counts one client more
};

let source: string;
let work: string;
let keys: TestKeys; // the real pair (BACKUP_SIGNING_KEY / BACKUP_VERIFY_KEY)
let attacker: TestKeys; // someone else's pair
let goodSql: string;
const crafted: Record<string, { gz: Buffer; manifest: object }> = {};
/** Tampered backups append this: if it ever ran, the target would have the table. */
const POISON = 'CREATE TABLE "pwned" (x);\nDELETE FROM "clients";\n';

const sha = (file: string) => createHash("sha256").update(fs.readFileSync(file)).digest("hex");
const hex = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

/** A backup whose SQL and manifest someone changed, with every hash re-computed to match. */
async function craft(bucket: R2Bucket, name: string, good: Manifest, sql: string, change: (m: Manifest) => Manifest, sign: "real" | "attacker" | "keep" | "none") {
  const gz = gzipSync(sql);
  const keysOf = keysFor(name);
  let manifest: Manifest = change({
    ...good,
    name,
    object: { ...good.object, key: keysOf.object, size: gz.length, sha256: hex(gz) },
    sql: { ...good.sql, size: Buffer.byteLength(sql), sha256: hex(sql) },
  });
  const { signature: kept, ...rest } = manifest;
  if (sign === "none") manifest = { ...rest, signature: null };
  else if (sign === "keep") manifest = { ...rest, signature: kept };
  else manifest = { ...rest, signature: await signManifest(rest, (sign === "real" ? keys : attacker).signingKey) };
  await bucket.put(keysOf.object, new Uint8Array(gz)); // a copy: the proxy refuses pooled Buffers
  await bucket.put(keysOf.manifest, JSON.stringify(manifest, null, 2));
  crafted[name] = { gz, manifest };
}

const beforeMarker = (sql: string, extra: string) => sql.replace(`${DUMP_END_MARKER}\n`, `${extra}${DUMP_END_MARKER}\n`);

beforeAll(async () => {
  [keys, attacker] = [await makeTestKeys(), await makeTestKeys()];
  const platform = await freshPlatform();
  source = platform.persistTo;
  work = tempDir("safety-work");
  try {
    const { DB: db, DOCUMENTS: bucket } = platform.env;
    await seedDemoData(db, { rows: 120 });
    const good = (await backupDatabase({ db, bucket, now: at(0), trigger: "cli", signingKey: keys.signingKey })).manifest;
    const unsigned = (await backupDatabase({ db, bucket, now: at(1), trigger: "cli" })).manifest;
    expect(good.signature?.keyId).toBe(keys.text.keyId);
    expect(unsigned.signature).toBeNull();
    goodSql = gunzipSync(Buffer.from(await (await bucket.get(good.object.key))!.arrayBuffer())).toString("utf8");
    const poisoned = beforeMarker(goodSql, POISON);
    await craft(bucket, names.noSig, good, poisoned, (m) => m, "none");
    await craft(bucket, names.otherKey, good, poisoned, (m) => m, "attacker");
    await craft(bucket, names.badSig, good, poisoned, (m) => m, "keep");
    const client = (await db.prepare("SELECT id FROM clients ORDER BY id LIMIT 1").first<{ id: string }>())!.id;
    // A duplicate key at the very end: the import fails after nearly all of it ran.
    await craft(bucket, names.failsImport, good, beforeMarker(goodSql, `INSERT INTO "clients" ("id", "company_name", "email") VALUES ('${client}', 'dup', 'dup@example.test');\n`), (m) => m, "real");
    await craft(bucket, names.failsChecks, good, goodSql, (m) => ({ ...m, tables: m.tables.map((t) => (t.name === "clients" ? { ...t, rows: t.rows + 1 } : t)) }), "real");
  } finally {
    await platform.dispose();
  }
});

function restore(opts: Partial<RestoreOptions> & { name?: string }): Promise<RestoreResult> {
  const { name, ...rest } = opts;
  return runRestore({
    source: { kind: "local", name: name ?? names.good, persistTo: source },
    reporter: silentReporter(),
    tempRoot: work,
    verifyKeys: keys.verifyKeys,
    ...rest,
  });
}

/** A SQLite file with data: what a refused or failed restore must leave exactly as it was. */
function existingSqlite(label: string): { file: string; hash: string } {
  const file = path.join(tempDir(`existing-${label}`), "existing.db");
  sqliteJson(file, "CREATE TABLE keep_me (x); INSERT INTO keep_me VALUES ('precious');");
  return { file, hash: sha(file) };
}

/** A local D1 (tech-support-db) holding the good backup: the old database --force must not lose. */
async function existingD1(label: string): Promise<{ persistTo: string; file: string; hash: string }> {
  const persistTo = path.join(tempDir(`existing-d1-${label}`), "state");
  const r = await restore({ target: { kind: "d1", database: "tech-support-db", remote: false, persistTo } });
  expect(r.ok).toBe(true);
  const file = d1File(persistTo);
  return { persistTo, file, hash: sha(file) };
}

const d1Target = (persistTo: string) => ({ kind: "d1" as const, database: "tech-support-db", remote: false, persistTo });
const leftovers = (dir: string) => fs.readdirSync(dir).filter((f) => f.includes(".restoring-"));

describe("signed manifests: only a backup signed by a listed key is restored", () => {
  let d1: Awaited<ReturnType<typeof existingD1>>;
  beforeAll(async () => {
    d1 = await existingD1("signatures");
  });

  const refusals = [
    { what: "no signature", name: names.noSig, state: "unsigned", message: /^unsigned backup: .* has no signature, so nothing proves its checksums were written by d1-backup/ },
    { what: "a valid signature by another key", name: names.otherKey, state: "unknown-key", message: /^signed by an unknown key: .* is signed by key [0-9a-f]{16}, which is not in BACKUP_VERIFY_KEY/ },
    { what: "the real key's signature over other content", name: names.badSig, state: "invalid", message: /^BAD SIGNATURE: .* does not match its signature by key [0-9a-f]{16}: the manifest was changed after it was signed/ },
  ];

  it.each(refusals)("re-computed hashes and $what: refused from the bucket, nothing executed (--force)", async ({ name, state, message }) => {
    const file = existingSqlite(state);
    for (const target of [{ kind: "sqlite" as const, file: file.file }, d1Target(d1.persistTo)]) {
      const e = await rejection(restore({ name, target, force: true }));
      expect(e.code).toBe("INTEGRITY_ERROR");
      expect(e.details).toMatchObject({ check: "signature", state });
      expect(e.message).toMatch(message);
      expect(e.message).toMatch(/--allow-unsigned \(printed and logged\)$/);
    }
    expect(sha(file.file)).toBe(file.hash);
    expect(sha(d1.file)).toBe(d1.hash);
    expect(leftovers(path.dirname(file.file))).toEqual([]);
  });

  it.each(refusals)("re-computed hashes and $what: refused from --file too", async ({ name, state }) => {
    const dir = tempDir(`file-${state}`);
    fs.writeFileSync(path.join(dir, `${name}.sql.gz`), crafted[name].gz);
    fs.writeFileSync(path.join(dir, `${name}.manifest.json`), JSON.stringify(crafted[name].manifest));
    const file = existingSqlite(`file-${state}`);
    const e = await rejection(
      runRestore({ source: { kind: "file", file: path.join(dir, `${name}.sql.gz`) }, target: { kind: "sqlite", file: file.file }, force: true, reporter: silentReporter(), tempRoot: work, verifyKeys: keys.verifyKeys }),
    );
    expect(e.details).toMatchObject({ check: "signature", state });
    expect(sha(file.file)).toBe(file.hash);
  });

  it("a signed backup without any public key is refused (no-keys), naming where the key goes", async () => {
    const e = await rejection(restore({ target: { kind: "sqlite", file: path.join(work, "never.db") }, verifyKeys: [] }));
    expect(e.details).toMatchObject({ check: "signature", state: "no-keys" });
    expect(e.message).toMatch(/no public key given\. Set BACKUP_VERIFY_KEY \(environment or \.dev\.vars\) or pass --verify-key FILE/);
    expect(fs.existsSync(path.join(work, "never.db"))).toBe(false);
  });

  it("a good signature passes, also with an older key listed after a rotation", async () => {
    const file = path.join(tempDir("good-sig"), "restored.db");
    const r = await restore({ target: { kind: "sqlite", file }, verifyKeys: [...attacker.verifyKeys, ...keys.verifyKeys] });
    expect(r.ok).toBe(true);
    expect(r.backup.signature).toEqual({ state: "valid", keyId: keys.text.keyId, allowed: false });
    expect(r.verification.find((c) => c.check === "signature")).toEqual({ check: "signature", ok: true, detail: `Ed25519 signature by key ${keys.text.keyId} verifies` });
    expect(r.warnings.join("\n")).not.toMatch(/UNVERIFIED/);
  });

  it("--allow-unsigned restores an unsigned backup, loudly (even quiet), and logs it in the portal database", async () => {
    const persistTo = path.join(tempDir("allow-unsigned"), "state");
    const lines: string[] = [];
    const r = await restore({
      name: names.unsigned,
      target: d1Target(persistTo),
      allowUnsigned: true,
      actor: "alice@example.test",
      reporter: createReporter({ quiet: true, write: (t) => lines.push(t) }),
    });
    expect(r.ok).toBe(true);
    expect(lines.join("")).toMatch(/^!!! --allow-unsigned: unsigned backup: .* RESTORING ANYWAY, as asked; this is logged\.$/m);
    expect(r.backup.signature).toEqual({ state: "unsigned", keyId: null, allowed: true });
    expect(r.warnings).toContain("UNVERIFIED SIGNATURE (unsigned): restored because of --allow-unsigned");
    expect(r.audit).toEqual(["restore_completed", "restore_unsigned_allowed"]);
    const rows = sqliteJson<{ user_id: string; action: string; entity_id: string; details: string }>(
      d1File(persistTo),
      "SELECT user_id, action, entity_id, details FROM activity_log WHERE action LIKE 'restore\\_%' ESCAPE '\\' ORDER BY id",
    );
    expect(rows.map((x) => [x.user_id, x.action, x.entity_id])).toEqual([
      ["alice@example.test", "restore_completed", keysFor(names.unsigned).object],
      ["alice@example.test", "restore_unsigned_allowed", keysFor(names.unsigned).object],
    ]);
    const details = JSON.parse(rows[0].details);
    expect(details).toMatchObject({ actor: "alice@example.test", backup: names.unsigned, signature: "unsigned", mode: "restore", force: false });
    expect(details.rows).toBe(r.checks!.tables.reduce((n, t) => n + (t.actual ?? 0), 0));
    expect(details.rto_ms).toBeGreaterThan(0);
    // The dashboard's feed says it in words.
    expect(activitySummary({ action: "restore_unsigned_allowed", details })).toBe(`--allow-unsigned: ${names.unsigned} used although its signature is unsigned (restore)`);
    expect(activitySummary({ action: "restore_completed", details })).toMatch(new RegExp(`^${names.unsigned} restored: \\d+ rows, RTO \\d+\\.\\d s; signature unsigned$`));
  });
});

describe("--force never destroys the old target when the restore fails", () => {
  it("an import that fails part way: old SQLite file and old local D1 byte-identical", async () => {
    const file = existingSqlite("import");
    const d1 = await existingD1("import");
    const e1 = await rejection(restore({ name: names.failsImport, target: { kind: "sqlite", file: file.file }, force: true }));
    expect(e1.code).toBe("DATABASE_ERROR");
    expect(e1.message).toMatch(/UNIQUE constraint failed: clients\.id/);
    const e2 = await rejection(restore({ name: names.failsImport, target: d1Target(d1.persistTo), force: true }));
    expect(e2.code).toBe("DATABASE_ERROR");
    expect(e2.message).toMatch(/UNIQUE constraint failed: clients\.id/);
    expect(sha(file.file)).toBe(file.hash);
    expect(sha(d1.file)).toBe(d1.hash);
    expect(leftovers(path.dirname(file.file))).toEqual([]);
  });

  it("a restore that fails its checks: old SQLite file and old local D1 byte-identical, exit status not ok", async () => {
    const file = existingSqlite("checks");
    const d1 = await existingD1("checks");
    for (const target of [{ kind: "sqlite" as const, file: file.file }, d1Target(d1.persistTo)]) {
      const r = await restore({ name: names.failsChecks, target, force: true });
      expect(r.ok).toBe(false);
      expect(r.checks?.checks.find((c) => c.check === "row-counts")?.detail).toMatch(/^clients: \d+ rows, manifest says \d+$/);
      expect(r.warnings.join("\n")).toMatch(/the new database failed its checks in .*: .* was NOT changed/);
      expect(r.audit).toEqual([]); // nothing changed, so nothing is written into the old database either
    }
    expect(sha(file.file)).toBe(file.hash);
    expect(sha(d1.file)).toBe(d1.hash);
    expect(leftovers(path.dirname(file.file))).toEqual([]);
  });

  it("the D1 replacement itself is one atomic import: a drop + dump file failing at its end changes nothing", async () => {
    // Past the rehearsal (which passed), the file imported into the target fails at its last
    // statement: the drops before it must be rolled back with it.
    const d1 = await existingD1("atomic");
    const target = openTarget(d1Target(d1.persistTo));
    const state = await target.inspect();
    const dir = tempDir("atomic-work");
    const sqlFile = path.join(dir, "dump.sql");
    fs.writeFileSync(sqlFile, goodSql);
    const staged = await target.restore(sqlFile, { replace: state, workDir: dir, reporter: silentReporter() });
    expect(staged.commitImports).toBe(true);
    expect(sha(d1.file)).toBe(d1.hash); // the rehearsal did not touch the target
    fs.writeFileSync(sqlFile, beforeMarker(goodSql, "INSERT INTO no_such_table VALUES (1);\n"));
    await expect(staged.commit(silentReporter())).rejects.toThrow(/no such table: no_such_table/);
    expect(sha(d1.file)).toBe(d1.hash);
  });

  it("--force that succeeds logs restore_completed and restore_forced in the replaced database", async () => {
    const d1 = await existingD1("forced");
    const r = await restore({ target: d1Target(d1.persistTo), force: true, actor: "bob" });
    expect(r.ok).toBe(true);
    expect(r.timings.map((t) => t.step)).toEqual(["download", "verify", "inspect target", "restore", "checks", "replace", "checks after replace"]);
    const rows = sqliteJson<{ action: string; details: string }>(d1.file, "SELECT action, details FROM activity_log WHERE action LIKE 'restore\\_%' ESCAPE '\\' ORDER BY id");
    // The restore that made the old database is in the backup's past, not in this trail: the
    // backup's own activity_log came back, plus this restore's two rows.
    expect(rows.map((x) => x.action)).toEqual(["restore_completed", "restore_forced"]);
    expect(JSON.parse(rows[1].details)).toMatchObject({ actor: "bob", force: true, signature: `valid:${keys.text.keyId}` });
    expect(activitySummary({ action: "restore_forced", details: JSON.parse(rows[1].details) })).toMatch(new RegExp(`^--force: \\d+ objects replaced by ${names.good}$`));
  });
});

// ---------------------------------------------------------------------------------------------
// The CLI: interrupted restores, argument mistakes.

// The project's tsx by path: the CLI runs with cwd elsewhere, where a bare "tsx" does not resolve.
const TSX_LOADER = ["--import", pathToFileURL(path.join(PROJECT_ROOT, "node_modules", "tsx", "dist", "loader.mjs")).href];
const SCRIPT = path.join(PROJECT_ROOT, "scripts", "restore.ts");
const cliEnv = (extra: Record<string, string> = {}) => ({ ...CLI_ENV, BACKUP_VERIFY_KEY: keys.text.verifyKey, ...extra });

function cli(args: string[], env: NodeJS.ProcessEnv = cliEnv()) {
  // node --import tsx: one process (the tsx CLI would be a parent relaying signals to a child).
  return promisify(execFile)(process.execPath, [...TSX_LOADER, SCRIPT, ...args], { cwd: work, env }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

/** Every plaintext file (.sql, .sql.gz) under a directory. */
function plaintext(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && /\.sql(\.gz)?$/.test(e.name)) out.push(path.join(e.parentPath, e.name));
  }
  return out;
}

describe("a restore killed part way leaves no plaintext", () => {
  async function startAndWaitForPlaintext(tmp: string) {
    const target = path.join(tempDir("killed-target"), "state");
    const child = spawn(process.execPath, [...TSX_LOADER, SCRIPT, names.good, "--source-persist-to", source, "--persist-to", target, "--quiet"], {
      cwd: work,
      env: cliEnv({ TMPDIR: tmp }),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (c) => (stderr += c));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
    // The decompressed SQL exists from the verify step until the end: kill while wrangler imports it.
    for (let i = 0; i < 600 && !plaintext(tmp).some((f) => f.endsWith(".sql")); i++) await new Promise((r) => setTimeout(r, 50));
    const dirs = fs.readdirSync(tmp).filter((d) => d.startsWith(`d1-backup-restore-${child.pid}-`));
    expect(dirs).toHaveLength(1);
    expect(fs.statSync(path.join(tmp, dirs[0])).mode & 0o777).toBe(0o700);
    expect(plaintext(tmp).length).toBeGreaterThan(0);
    return { child, exited, stderr: () => stderr, dir: path.join(tmp, dirs[0]) };
  }

  it("SIGINT: exits 130 and has removed its temporary files itself", async () => {
    const tmp = tempDir("tmp-sigint");
    const run = await startAndWaitForPlaintext(tmp);
    run.child.kill("SIGINT");
    expect(await run.exited).toEqual({ code: 130, signal: null });
    expect(run.stderr()).toMatch(/restore: SIGINT: stopped; temporary files removed/);
    expect(fs.existsSync(run.dir)).toBe(false);
    expect(plaintext(tmp)).toEqual([]);
  });

  it("SIGKILL: the next run removes what the killed one left, and says so", async () => {
    const tmp = tempDir("tmp-sigkill");
    const run = await startAndWaitForPlaintext(tmp);
    run.child.kill("SIGKILL");
    expect((await run.exited).signal).toBe("SIGKILL");
    expect(plaintext(tmp).length).toBeGreaterThan(0); // nothing can clean up after SIGKILL...
    const next = await cli([names.good, "--source-persist-to", source, "--to-sqlite", path.join(tempDir("after-kill"), "x.db"), "--dry-run", "--quiet"], cliEnv({ TMPDIR: tmp }));
    expect(next.code, next.stderr).toBe(0);
    expect(next.stderr).toContain(`removed the leftovers of a killed restore (pid ${run.child.pid}, no longer running): ${run.dir}`);
    expect(plaintext(tmp)).toEqual([]); // ...so the next run does
    expect(fs.readdirSync(tmp).filter((d) => d.startsWith("d1-backup-restore-"))).toEqual([]);
  });

  it("a half-built <target>.restoring-<pid> of a dead process is removed by the next restore to that file", async () => {
    const dir = tempDir("stale-restoring");
    const file = path.join(dir, "restored.db");
    fs.writeFileSync(`${file}.restoring-999999`, "half a database");
    fs.writeFileSync(`${file}.restoring-999999-journal`, "journal");
    const r = await restore({ target: { kind: "sqlite", file } });
    expect(r.ok).toBe(true);
    expect(r.warnings.filter((w) => w.startsWith("removed the leftovers of a killed restore (pid 999999"))).toHaveLength(2);
    expect(fs.readdirSync(dir)).toEqual(["restored.db"]);
  });
});

describe("npm run restore: argument mistakes exit 2 with one clear line", () => {
  const mistakes: { args: string[]; env?: Record<string, string>; message: RegExp }[] = [
    { args: [names.good, "--to-sqlit", "x.db"], message: /^restore: INVALID_INPUT: unknown option --to-sqlit \(did you mean --to-sqlite\?\); see --help$/ },
    { args: [names.good, "--frobnicate"], message: /^restore: INVALID_INPUT: unknown option --frobnicate; see --help$/ },
    { args: [names.good, "--to-sqlite"], message: /^restore: INVALID_INPUT: --to-sqlite needs a value: --to-sqlite FILE$/ },
    { args: [names.good, "--to-sqlite", "--force"], message: /^restore: INVALID_INPUT: --to-sqlite needs a value: --to-sqlite FILE$/ },
    { args: [names.good, "--force=yes", "--to-sqlite", "x.db"], message: /^restore: INVALID_INPUT: --force takes no value; see --help$/ },
    { args: [names.good, "--table"], message: /^restore: INVALID_INPUT: --table needs a value: --table NAME$/ },
    { args: [names.good, "--max-statement-bytes", "lots", "--table", "t"], message: /^restore: INVALID_INPUT: --max-statement-bytes takes a whole number \(got lots\)$/ },
    { args: [names.good, "other", "--to-sqlite", "x.db"], message: /^restore: INVALID_INPUT: one backup at a time \(got database-2026-02-03-02-00-00, other\)$/ },
    { args: ["--to-sqlite", "x.db"], message: /^restore: INVALID_INPUT: name the backup to restore \(or --file FILE\); see --help$/ },
    { args: [names.good], message: /^restore: INVALID_INPUT: say where to restore: / },
    { args: [names.good, "--to-sqlite", "x.db", "--verify-key", "no-such-key.pub"], message: /^restore: INVALID_INPUT: --verify-key no-such-key\.pub: no such file$/ },
    { args: [names.good, "--to-sqlite", "x.db"], env: { BACKUP_VERIFY_KEY: "not-a-key" }, message: /^restore: INVALID_INPUT: BACKUP_VERIFY_KEY entry 1 is not an Ed25519 public key/ },
    // `npm run restore NAME --to-sqlite x.db` without `--`: npm keeps --to-sqlite and passes "x.db" on.
    {
      args: [names.good, "x.db"],
      env: { npm_lifecycle_event: "restore", npm_config_to_sqlite: "true" },
      message: /^restore: INVALID_INPUT: npm took --to-sqlite for itself \(and left only their values\): put -- before the restore's options, e\.g\. npm run restore -- <backup> --to-sqlite restored\.db$/,
    },
    { args: [], env: { npm_lifecycle_event: "restore", npm_config_dry_run: "true", npm_config_force: "true" }, message: /^restore: INVALID_INPUT: npm took --force, --dry-run for itself/ },
  ];

  it.each(mistakes.map((m) => ({ ...m, label: [...m.args, ...Object.entries(m.env ?? {}).map(([k, v]) => `${k}=${v}`)].join(" ") || "(nothing)" })))("$label: exit 2", async ({ args, env, message }) => {
    const r = await cli(args, cliEnv(env));
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr.trim()).toMatch(message);
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });

  it("a backup that does not exist: exit 1, pointing to npm run backup -- --list", async () => {
    const r = await cli(["database-2001-01-01-00-00-00", "--source-persist-to", source, "--to-sqlite", "x.db", "--quiet"]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^restore: NOT_FOUND: missing manifest: .* no such backup \(see the backups there with npm run backup -- --list\)/);
  });

  it("--allow-unsigned is printed even with --quiet, and the result says UNVERIFIED first and last", async () => {
    const file = path.join(tempDir("cli-unsigned"), "x.db");
    const refused = await cli([names.unsigned, "--source-persist-to", source, "--to-sqlite", file, "--quiet"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim()).toMatch(/^restore: INTEGRITY_ERROR: unsigned backup: /);
    const r = await cli([names.unsigned, "--source-persist-to", source, "--to-sqlite", file, "--quiet", "--allow-unsigned"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^!!! --allow-unsigned: unsigned backup: /m);
    const out = r.stdout.trim().split("\n");
    expect(out[0]).toBe("!!! UNVERIFIED BACKUP (signature: unsigned): used because of --allow-unsigned");
    expect(out.at(-2)).toBe(out[0]);
    expect(out.at(-1)).toBe("RESULT: OK");
  });

  it("the exit codes in --help are the ones BACKUP_RESTORATION.md documents", async () => {
    // The paragraph starting "Exit codes:", up to the next blank line: each code follows ": " or ", ".
    const codes = (text: string) => {
      const para = /Exit codes: [\s\S]*?(?:\n\s*\n|$)/.exec(text)![0].replace(/\s+/g, " ");
      return [...para.matchAll(/(?:: |, )(\d+) [a-z]/g)].map((m) => m[1]);
    };
    const help = (await cli(["--help"])).stdout;
    const doc = fs.readFileSync(path.join(PROJECT_ROOT, "BACKUP_RESTORATION.md"), "utf8");
    expect(codes(help)).toEqual(["0", "1", "2", "3", "130", "143"]);
    expect(codes(doc)).toEqual(codes(help));
  });
});
