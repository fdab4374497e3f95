// Where a restore goes: a plain SQLite file, a local D1 (a --persist-to state directory, or the
// default .wrangler/state), or a named remote D1. Each target can say whether it is empty, restore
// a verified dump, apply a put-back file, and answer the read-only queries the checks need.
import fs from "node:fs";
import path from "node:path";
import { BackupError, formatBytes } from "../backup";
import { fts5ShadowNames, isInternalTable, orderByForeignKeys, quoteIdent } from "../sql";
import { DEFAULT_PERSIST_TO, localD1Files } from "../local";
import { DATABASE_NAME } from "../names";
import { own, release } from "./cleanup";
import { cleanToolOutput, fileExists, shellQuote, wrangler, wranglerCommand } from "./exec";
import type { Reporter } from "./progress";
import { SQLITE3, SQLITE3_FLAGS, sqliteApplyFile, sqliteQuery } from "./sqlite";

export type TargetSpec =
  /** A plain SQLite file (must not exist unless --force). */
  | { kind: "sqlite"; file: string }
  /** A D1 database: local (in persistTo, default .wrangler/state) or remote. */
  | { kind: "d1"; database: string; remote: boolean; persistTo?: string };

export interface SchemaEntry {
  type: string;
  name: string;
}

export interface TargetState {
  /** Whether the file / database exists at all (remote databases always "exist"). */
  exists: boolean;
  /** User tables, views and triggers (not sqlite_*, not _cf_*, not indexes). */
  objects: SchemaEntry[];
  userTables: string[];
  /** Child -> parents, for dropping in foreign-key-safe order (D1 --force). */
  parents: Map<string, Set<string>>;
}

export type Query = <T = Record<string, unknown>>(sql: string) => Promise<T[]>;

/**
 * A restore that is built but not yet in place. The checks run on `query` first; only then does
 * commit() put it in place, so a restore that fails its import or its checks never costs the old
 * target anything (--force included).
 */
export interface StagedRestore {
  /** Read-only queries on the new database (where the checks run). */
  query: Query;
  /** For people: where the checks ran. */
  where: string;
  /** Whether commit() imports into the target (D1 --force): the checks are then run again on it. */
  commitImports: boolean;
  commit(reporter: Reporter): Promise<void>;
  /** Throws the staged database away; the target is as it was. */
  discard(): void;
}

export interface Target {
  spec: TargetSpec;
  /** For people: "SQLite file /x/y.db", "local D1 tech-support-db in DIR", … */
  label: string;
  inspect(): Promise<TargetState>;
  /** The exact command that restores `sqlFile` into this target. */
  restoreCommand(sqlFile: string): string;
  /** Builds a verified dump, not yet in place; `replace` = the target is not empty and --force was given. */
  restore(sqlFile: string, opts: { replace: TargetState | null; workDir: string; reporter: Reporter }): Promise<StagedRestore>;
  /** The exact command that applies a put-back file. */
  applyCommand(sqlFile: string): string;
  apply(sqlFile: string, reporter: Reporter): Promise<void>;
  /** Read-only queries on the target, after a restore (for the checks). */
  query: Query;
  /** Runs statements that change the target (the activity_log audit rows). */
  execute(sql: string): Promise<void>;
  /** The SQLite file behind the target, when there is one on this machine. */
  localFile(): string | null;
}

const USER_OBJECTS_SQL =
  "SELECT type, name, sql FROM sqlite_master WHERE type IN ('table', 'view', 'trigger') ORDER BY rowid";
const FK_SQL =
  "SELECT m.name AS child, p.\"table\" AS parent FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) p " +
  "WHERE m.type = 'table'";

async function readState(query: Query, exists: boolean): Promise<TargetState> {
  const rows = await query<SchemaEntry & { sql: string | null }>(USER_OBJECTS_SQL);
  // FTS5 shadow tables go with their table (D1 refuses to drop them on their own).
  const shadow = fts5ShadowNames(rows);
  const objects = rows.filter((o) => !isInternalTable(o.name) && !shadow.has(o.name.toLowerCase())).map(({ type, name }) => ({ type, name }));
  const userTables = objects.filter((o) => o.type === "table").map((o) => o.name);
  const parents = new Map<string, Set<string>>();
  if (userTables.length > 0) {
    try {
      for (const r of await query<{ child: string; parent: string }>(FK_SQL)) {
        if (r.child === r.parent) continue;
        const set = parents.get(r.child) ?? new Set<string>();
        set.add(r.parent);
        parents.set(r.child, set);
      }
    } catch {
      // No table-valued pragmas: drop order then relies on defer_foreign_keys alone.
    }
  }
  return { exists, objects, userTables, parents };
}

/**
 * SQL that removes every user object of a D1 database, children before parents, so that a dump
 * (whose CREATE TABLEs have no IF NOT EXISTS, on purpose) can go in. Deferred foreign keys let
 * tables in a cycle go in any order; indexes go with their tables; sqlite_sequence rows of dropped
 * tables are removed by SQLite itself. _cf_* tables belong to D1 and are never touched.
 */
export function dropAllSql(state: TargetState): string {
  const lines = ["PRAGMA defer_foreign_keys=TRUE;"];
  for (const o of state.objects.filter((o) => o.type === "trigger")) lines.push(`DROP TRIGGER IF EXISTS ${quoteIdent(o.name)};`);
  for (const o of state.objects.filter((o) => o.type === "view")) lines.push(`DROP VIEW IF EXISTS ${quoteIdent(o.name)};`);
  // orderByForeignKeys returns parents first, so reverse it.
  const ordered = orderByForeignKeys(state.userTables.map((name) => ({ name })), state.parents).reverse();
  for (const t of ordered) lines.push(`DROP TABLE IF EXISTS ${quoteIdent(t.name)};`);
  return `${lines.join("\n")}\n`;
}

export function openTarget(spec: TargetSpec): Target {
  if (spec.kind === "sqlite") return sqliteTarget(spec);
  return spec.remote ? remoteD1Target({ ...spec, remote: true }) : localD1Target({ ...spec, remote: false });
}

// ---------------------------------------------------------------------------------------------
// SQLite file

/** What a person would type to do what sqliteApplyFile does (-safe included, as it runs). */
const sqliteCommand = (sqlFile: string, file: string) =>
  `(echo 'BEGIN;'; cat ${shellQuote(sqlFile)}; echo 'COMMIT;') | ${SQLITE3} ${SQLITE3_FLAGS.join(" ")} ${shellQuote(file)}`;

function sqliteTarget(spec: { kind: "sqlite"; file: string }): Target {
  const file = path.resolve(spec.file);
  const query: Query = (sql) => sqliteQuery(file, sql);
  return {
    spec,
    label: `SQLite file ${file}`,
    async inspect() {
      if (!fileExists(file)) return { exists: false, objects: [], userTables: [], parents: new Map() };
      if (fs.statSync(file).size === 0) return { exists: true, objects: [], userTables: [], parents: new Map() };
      try {
        return await readState(query, true);
      } catch (e) {
        // Not a database (or unreadable): certainly not something to overwrite silently.
        return { exists: true, objects: [{ type: "file", name: `(not a SQLite database: ${(e as Error).message})` }], userTables: [], parents: new Map() };
      }
    },
    restoreCommand: (sqlFile) =>
      sqliteCommand(sqlFile, file),
    async restore(sqlFile, { reporter }) {
      // Built beside the target and checked there; renamed over it only by commit(), so the old
      // file (with --force) is untouched by a restore that fails its import or its checks.
      fs.mkdirSync(path.dirname(file), { recursive: true });
      const building = `${file}.restoring-${process.pid}`;
      const scraps = [building, `${building}-journal`];
      const discard = () => scraps.forEach(release);
      for (const p of scraps) {
        fs.rmSync(p, { force: true });
        own(p); // removed on SIGINT/SIGTERM too; a later run removes a killed run's (cleanup.ts)
      }
      const total = fs.statSync(sqlFile).size;
      try {
        await sqliteApplyFile(building, sqlFile, (p) =>
          reporter.progress(`${p.table ? `table ${p.table}: ` : ""}~${p.rows} rows, ${formatBytes(p.bytes)} of ${formatBytes(total)} of SQL`),
        );
      } catch (e) {
        discard();
        throw e;
      }
      return {
        query: (sql) => sqliteQuery(building, sql),
        where: `the new file ${path.basename(building)}, before it replaces ${path.basename(file)}`,
        commitImports: false,
        async commit() {
          for (const suffix of ["-wal", "-shm", "-journal"]) fs.rmSync(`${file}${suffix}`, { force: true });
          fs.renameSync(building, file);
          discard();
        },
        discard,
      };
    },
    applyCommand: (sqlFile) => sqliteCommand(sqlFile, file),
    async apply(sqlFile, reporter) {
      if (!fileExists(file)) throw new BackupError("NOT_FOUND", `${file} does not exist: nothing to put rows back into`);
      await sqliteApplyFile(file, sqlFile, (p) => reporter.progress(`~${p.rows} rows, ${formatBytes(p.bytes)}`));
    },
    query,
    async execute(sql) {
      await sqliteQuery(file, sql, { readonly: false });
    },
    localFile: () => file,
  };
}

// ---------------------------------------------------------------------------------------------
// D1 through wrangler

type D1Spec = { database: string; remote: boolean; persistTo?: string };

function d1Args(spec: D1Spec): string[] {
  return spec.remote ? [spec.database, "--remote"] : [spec.database, "--local", "--persist-to", path.resolve(spec.persistTo ?? DEFAULT_PERSIST_TO)];
}

function wranglerQuery(spec: { database: string; remote: boolean; persistTo?: string }): Query {
  return async <T>(sql: string): Promise<T[]> => {
    const args = ["d1", "execute", ...d1Args(spec), "--json", "--command", sql, ...(spec.remote ? ["--yes"] : [])];
    const res = await wrangler(args);
    let parsed: unknown;
    try {
      parsed = JSON.parse(res.stdout);
    } catch {
      parsed = null;
    }
    if (res.code !== 0 || !Array.isArray(parsed)) {
      const jsonError = (parsed as { error?: { text?: string } } | null)?.error?.text;
      throw new BackupError("DATABASE_ERROR", `querying ${spec.database} failed: ${jsonError ?? cleanToolOutput(res.stderr || res.stdout)}`);
    }
    const last = parsed[parsed.length - 1] as { results?: T[] };
    return last?.results ?? [];
  };
}

async function runWranglerFile(spec: D1Spec, sqlFile: string, reporter: Reporter, what: string) {
  const args = ["d1", "execute", ...d1Args(spec), "--file", sqlFile, "--yes"];
  const size = fs.statSync(sqlFile).size;
  // wrangler prints nothing while it works; a ticker shows the restore is alive.
  const timer = setInterval(() => reporter.progress(`wrangler is ${what} ${formatBytes(size)} of SQL`), 1000);
  try {
    const res = await wrangler(args);
    if (res.code !== 0) {
      throw new BackupError("DATABASE_ERROR", `${wranglerCommand(args)} failed: ${cleanToolOutput(res.stderr || res.stdout).split("\n").slice(-4).join(" ")}`);
    }
  } finally {
    clearInterval(timer);
  }
}

function localD1Target(spec: { kind: "d1"; database: string; remote: false; persistTo?: string }): Target {
  const persistTo = path.resolve(spec.persistTo ?? DEFAULT_PERSIST_TO);
  const viaWrangler = wranglerQuery(spec);
  // With one local D1 in the state (wrangler.toml binds one), its file is read directly with
  // sqlite3: read-only, instant, and an empty state stays uncreated. Otherwise ask wrangler.
  const file = () => {
    const files = localD1Files(persistTo);
    return files.length === 1 ? files[0] : null;
  };
  const query: Query = (sql) => {
    const f = file();
    return f ? sqliteQuery(f, sql) : viaWrangler(sql);
  };
  const target: Target = {
    spec,
    label: `local D1 ${spec.database} in ${persistTo}`,
    async inspect() {
      const files = localD1Files(persistTo);
      if (files.length === 0) return { exists: false, objects: [], userTables: [], parents: new Map() };
      return readState(query, true);
    },
    restoreCommand: (sqlFile) => d1FileCommand(spec, sqlFile),
    restore: (sqlFile, opts) => restoreD1(spec, sqlFile, opts, "restoring", query),
    applyCommand: (sqlFile) => d1FileCommand(spec, sqlFile),
    apply: (sqlFile, reporter) => runWranglerFile(spec, sqlFile, reporter, "applying"),
    query,
    execute: async (sql) => void (await viaWrangler(sql)),
    localFile: file,
  };
  return target;
}

const d1FileCommand = (spec: D1Spec, sqlFile: string) => wranglerCommand(["d1", "execute", ...d1Args(spec), "--file", sqlFile, "--yes"]);

/**
 * A verified dump into a D1 database. Into an empty one it is imported directly (a failure has
 * nothing to destroy). Replacing (--force), it is first rehearsed in a scratch local D1 in the
 * private work directory, where the checks run; only then does commit() import the drops and the
 * dump as ONE file: wrangler runs a file as one transaction locally and D1 imports it as one job
 * remotely, so a failing import leaves the old database as it was (locally byte for byte; remotely
 * the Time Travel bookmark taken before, restore.ts, is the way back).
 */
async function restoreD1(
  spec: D1Spec,
  sqlFile: string,
  { replace, workDir, reporter }: { replace: TargetState | null; workDir: string; reporter: Reporter },
  verb: string,
  query: Query,
): Promise<StagedRestore> {
  if (!replace || replace.objects.length === 0) {
    await runWranglerFile(spec, sqlFile, reporter, verb);
    return { query, where: "the target", commitImports: false, commit: async () => {}, discard: () => {} };
  }
  // The rehearsal uses the binding wrangler.toml declares, whatever the target's name.
  const rehearsal = { database: DATABASE_NAME, remote: false, persistTo: path.join(workDir, "rehearsal-d1") };
  await runWranglerFile(rehearsal, sqlFile, reporter, "rehearsing (scratch local D1)");
  return {
    query: localD1Target({ kind: "d1", ...rehearsal, remote: false }).query,
    where: "a scratch local D1 (the rehearsal), before anything in the target changes",
    commitImports: true,
    async commit(r) {
      const file = path.join(workDir, `replace-${path.basename(sqlFile)}`);
      fs.writeFileSync(file, dropAllSql(replace));
      await appendFile(sqlFile, file);
      try {
        await runWranglerFile(spec, file, r, verb);
      } finally {
        fs.rmSync(file, { force: true });
      }
    },
    discard: () => fs.rmSync(rehearsal.persistTo, { recursive: true, force: true }),
  };
}

function remoteD1Target(spec: { kind: "d1"; database: string; remote: true; persistTo?: string }): Target {
  const query = wranglerQuery(spec);
  return {
    spec,
    label: `remote D1 ${spec.database}`,
    inspect: async () => readState(query, true),
    restoreCommand: (sqlFile) => d1FileCommand(spec, sqlFile),
    restore: (sqlFile, opts) => restoreD1(spec, sqlFile, opts, "importing", query),
    applyCommand: (sqlFile) => d1FileCommand(spec, sqlFile),
    apply: (sqlFile, reporter) => runWranglerFile(spec, sqlFile, reporter, "applying"),
    query,
    execute: async (sql) => void (await query(sql)),
    localFile: () => null,
  };
}

async function appendFile(from: string, to: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const out = fs.createWriteStream(to, { flags: "a" });
    fs.createReadStream(from).on("error", reject).pipe(out).on("error", reject).on("finish", () => resolve());
  });
}

/** A Time Travel bookmark of a remote D1 (the way back before overwriting it). */
export async function timeTravelBookmark(database: string): Promise<string> {
  const args = ["d1", "time-travel", "info", database, "--json"];
  const res = await wrangler(args);
  const m = /"bookmark"\s*:\s*"([^"]+)"/.exec(res.stdout);
  if (res.code !== 0 || !m) {
    throw new BackupError("DATABASE_ERROR", `${wranglerCommand(args)} failed: ${cleanToolOutput(res.stderr || res.stdout)}`);
  }
  return m[1];
}
