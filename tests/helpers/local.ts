// Test helpers for real local D1/R2: temp state directories, wrangler CLI, sqlite3 on the files.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openLocalPlatform, PROJECT_ROOT, type LocalPlatform } from "../../lib/local/platform";
import { localD1File, WRANGLER_BIN, wranglerEnv } from "../../lib/local/wrangler";
import type { BackupError } from "../../lib/errors";
import { DATABASE_NAME } from "../../lib/names";

export const CLI_ENV = wranglerEnv();

const tempDirs: string[] = [];

/** A temp directory removed after the test file (tests/setup.ts). */
export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `d1b-${prefix}-`));
  tempDirs.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

/** Runs the project's wrangler (pinned) with non-interactive settings; returns stdout. */
export function wrangler(args: string[], opts: { input?: string } = {}): string {
  return execFileSync(WRANGLER_BIN, args, {
    cwd: PROJECT_ROOT,
    env: CLI_ENV,
    encoding: "utf8",
    input: opts.input,
    maxBuffer: 256 * 1024 * 1024,
    stdio: ["pipe", "pipe", "pipe"],
  });
}

/**
 * A state directory with the portal's migrations applied. The real `wrangler d1 migrations apply`
 * runs once per set of migrations (and wrangler version) into a template, which every later call
 * copies: the same files wrangler wrote, without ~5 s of wrangler and workerd each time (31 calls
 * in a full run). The template lives in the temp directory under a hash of its inputs, made under
 * its own name and renamed into place, so parallel test files never see half of one.
 */
export function migrateLocal(persistTo: string): void {
  fs.cpSync(migratedTemplate(), persistTo, { recursive: true });
}

function migratedTemplate(): string {
  const hash = createHash("sha256");
  const migrations = path.join(PROJECT_ROOT, "migrations");
  for (const f of fs.readdirSync(migrations).sort()) hash.update(`${f}\0`).update(fs.readFileSync(path.join(migrations, f))).update("\0");
  hash.update(fs.readFileSync(path.join(PROJECT_ROOT, "wrangler.toml")));
  hash.update(fs.readFileSync(path.join(PROJECT_ROOT, "node_modules", "wrangler", "package.json")));
  const template = path.join(os.tmpdir(), `d1b-migrated-${hash.digest("hex").slice(0, 16)}`);
  if (fs.existsSync(template)) return template;
  const building = fs.mkdtempSync(`${template}.building-`);
  try {
    wrangler(["d1", "migrations", "apply", DATABASE_NAME, "--local", "--persist-to", building]);
    fs.renameSync(building, template);
  } catch (e) {
    // Another test file renamed its template into place first: use that one.
    if (!fs.existsSync(template)) throw e;
  } finally {
    fs.rmSync(building, { recursive: true, force: true });
  }
  return template;
}

export function executeFileLocal(persistTo: string, file: string): string {
  return wrangler(["d1", "execute", DATABASE_NAME, "--local", "--persist-to", persistTo, "--file", file, "--yes"]);
}

/** The SQLite file behind the local D1 database in a persist directory. */
export const d1File = localD1File;

// The D1 file may be mid-commit in workerd while a test reads it: wait for the lock, do not fail.
const BUSY_WAIT = ["-cmd", ".timeout 10000"];

export function sqlite(file: string, sql: string): string {
  return execFileSync("sqlite3", [...BUSY_WAIT, file], { input: sql, encoding: "utf8", maxBuffer: 1024 * 1024 * 1024 });
}

export function sqliteJson<T = Record<string, unknown>>(file: string, sql: string): T[] {
  const out = execFileSync("sqlite3", [...BUSY_WAIT, "-json", file], { input: sql, encoding: "utf8", maxBuffer: 1024 * 1024 * 1024 });
  return out.trim() ? (JSON.parse(out) as T[]) : [];
}

/**
 * Every schema object, sqlite_sequence and every cell (typeof + hex, so 64-bit integers, reals,
 * -0.0, NUL-bearing text and blobs compare exactly) of a SQLite file, as one comparable string.
 */
export function canonicalDump(file: string, opts: { withoutRestoreAudit?: boolean } = {}): string {
  const q = (s: string) => `"${s.replace(/"/g, '""')}"`;
  const lines: string[] = [];
  const objects = sqliteJson<{ type: string; name: string; tbl_name: string; sql: string | null }>(
    file,
    "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE '\\_cf\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite_stat%' ORDER BY type, name;",
  );
  for (const o of objects) lines.push(`schema ${o.type} ${o.name} ${o.tbl_name} ${o.sql}`);
  if (objects.some((o) => o.name === "sqlite_sequence")) {
    for (const r of sqliteJson<{ name: string; seq: string }>(file, "SELECT name, CAST(seq AS TEXT) AS seq FROM sqlite_sequence ORDER BY name;")) {
      if (opts.withoutRestoreAudit && r.name === "activity_log") {
        // The counter as it was before the audit rows: the highest id of the other rows.
        const [m] = sqliteJson<{ id: string }>(file, "SELECT CAST(max(id) AS TEXT) AS id FROM activity_log WHERE action NOT LIKE 'restore\\_%' ESCAPE '\\';");
        lines.push(`seq ${r.name} ${m.id}`);
      } else lines.push(`seq ${r.name} ${r.seq}`);
    }
  }
  if (sqliteJson(file, "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1';").length > 0) {
    for (const r of sqliteJson<{ r: string }>(
      file,
      "SELECT quote(tbl) || ' ' || quote(idx) || ' ' || quote(stat) AS r FROM sqlite_stat1 WHERE tbl NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY tbl, idx;",
    )) {
      lines.push(`stat1 ${r.r}`);
    }
  }
  // An FTS5 index's pages depend on how it was built, not on what it holds: it is compared by
  // every token it lists (term, document, column, offset) instead of its %_data/%_idx bytes.
  const ftsLayout = new Set<string>();
  for (const v of objects.filter((o) => /^\s*CREATE\s+VIRTUAL\s+TABLE[\s\S]*\bUSING\s+fts5\b/i.test(o.sql ?? ""))) {
    ftsLayout.add(`${v.name}_data`.toLowerCase()).add(`${v.name}_idx`.toLowerCase());
    const rows = sqliteJson<{ r: string }>(
      file,
      `CREATE VIRTUAL TABLE temp.d1b_v USING fts5vocab(main, ${q(v.name)}, instance);
       SELECT quote(term) || ' ' || doc || ' ' || quote(col) || ' ' || quote("offset") AS r FROM temp.d1b_v ORDER BY term, doc, col, "offset";`,
    );
    lines.push(`fts5 ${v.name} ${rows.length}`);
    for (const r of rows) lines.push(r.r);
  }
  const tables = objects.filter(
    (o) => o.type === "table" && !o.name.startsWith("sqlite_") && !/^\s*CREATE\s+VIRTUAL/i.test(o.sql ?? "") && !ftsLayout.has(o.name.toLowerCase()),
  );
  if (tables.length === 0) return lines.join("\n");
  // Two sqlite3 runs for all the tables, not two per table: every column list, then every table's
  // rows, each table after a marker line (a row is typeof:hex cells: never a line break, never a '#').
  const columns = new Map<string, string[]>();
  for (const c of sqliteJson<{ t: string; c: string }>(file, "SELECT m.name AS t, p.name AS c FROM sqlite_master AS m, pragma_table_xinfo(m.name) AS p WHERE m.type = 'table';")) {
    if (!columns.has(c.t)) columns.set(c.t, []);
    columns.get(c.t)!.push(c.c);
  }
  const selects = tables.map((t, i) => {
    const withoutRowid = /WITHOUT\s+ROWID\s*$/i.test((t.sql ?? "").trim());
    // hex() prints -0.0 as 0.0: atan2 tells the sign of a zero.
    const exprs = (columns.get(t.name) ?? []).map(
      (c) => `typeof(${q(c)}) || ':' || hex(${q(c)}) || CASE WHEN typeof(${q(c)})='real' AND ${q(c)}=0 AND atan2(${q(c)},-1)<0 THEN '-' ELSE '' END`,
    );
    if (!withoutRowid) exprs.unshift("'rowid:' || rowid");
    // The restore writes restore_* rows into the portal database it restored (its audit trail):
    // comparisons of data may leave those out, and then check them on their own.
    const skipAudit = opts.withoutRestoreAudit && t.name === "activity_log" ? " WHERE action NOT LIKE 'restore\\_%' ESCAPE '\\'" : "";
    return `SELECT '#${i}';\nSELECT ${exprs.join(" || '|' || ")} AS r FROM ${q(t.name)}${skipAudit} ORDER BY ${withoutRowid ? "1" : "rowid"};`;
  });
  const rowsOf: string[][] = tables.map(() => []);
  let current: string[] | null = null;
  // An empty line is a row whose text is NULL (a column named rowid holding NULL): kept, as a row.
  for (const line of sqlite(file, selects.join("\n")).replace(/\n$/, "").split("\n")) {
    if (line.startsWith("#")) current = rowsOf[Number(line.slice(1))];
    else current!.push(line);
  }
  tables.forEach((t, i) => {
    lines.push(`table ${t.name} ${rowsOf[i].length}`);
    for (const r of rowsOf[i]) lines.push(r);
  });
  return lines.join("\n");
}

/** A migrated local D1 + R2 in its own temp directory, opened through getPlatformProxy. */
export async function freshPlatform(opts: { migrate?: boolean } = {}): Promise<LocalPlatform & { persistTo: string }> {
  const persistTo = tempDir("state");
  if (opts.migrate ?? true) migrateLocal(persistTo);
  const platform = await openLocalPlatform({ persistTo });
  return { ...platform, persistTo };
}

/** The error a promise is refused with; a promise that resolves fails the test. */
export async function rejection(p: Promise<unknown>): Promise<BackupError> {
  try {
    await p;
  } catch (e) {
    return e as BackupError;
  }
  throw new Error("expected the restore to be refused");
}
