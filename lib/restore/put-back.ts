// Selective restore ("put back"): the backup is restored into a scratch SQLite file, the rows to
// put back are selected there (selection.ts: per-table --where, --cascade), and written as a SQL
// file that wrangler (or sqlite3) applies to the live database as one transaction.
// --mode ignore (default): INSERT OR IGNORE, so a row whose key still exists keeps its live values
// (plain INSERT would make the whole file fail on the first such row). --mode replace: an UPSERT on
// the primary key (ON CONFLICT (pk) DO UPDATE), so the backup's values win while the live row is
// updated in place. Never INSERT OR REPLACE: it deletes the live row first and, through ON DELETE
// CASCADE, its children. Foreign keys are deferred and checked at the end: a row whose parent is
// missing fails the file, which is what you want to know.
import fs from "node:fs";
import { BackupError, formatBytes } from "../backup";
import {
  D1_MAX_STATEMENT_BYTES,
  describeTable,
  freeRowidName,
  keyExprs,
  keyLiterals,
  literalExpr,
  quoteIdent,
  quoteText,
  stagingTableName,
  StatementBatcher,
  valuesTuple,
  type ColumnRow,
  type TableInfo,
} from "../sql";
import type { Reporter } from "./progress";
import { inKeys, keyColumnsOf, selectRows, type TableWhere } from "./selection";
import { sqliteLines, sqliteQuery } from "./sqlite";

/** Small statements restore fastest through wrangler (see DEFAULT_DUMP_OPTIONS in dump.ts). */
export const DEFAULT_PUT_BACK_STATEMENT_BYTES = 16_384;

export type PutBackMode = "ignore" | "replace";

/** A trigger as sqlite_master has it. */
export interface TriggerDef {
  name: string;
  table: string;
  sql: string;
}

export interface PutBackOptions {
  tables: string[];
  wheres: TableWhere[];
  cascade: boolean;
  mode: PutBackMode;
  /**
   * The target's triggers (read from it just before the file is written), or the backup's when
   * the target cannot be read; those on the tables the file writes are dropped and re-created.
   */
  triggers: TriggerDef[];
  out: string;
  maxStatementBytes?: number;
  /** For the file's header. */
  backupName: string | null;
  backupCreatedAt?: string | null;
  /** The command that applies the file, for its header. */
  applyCommand: string;
}

export interface PutBackTable {
  name: string;
  /** Rows put back whole. */
  rows: number;
  /** Rows too large for one statement, assembled in a staging table and inserted whole. */
  splitRows: number;
  keyColumns: string[];
  /** Its --where ("(all rows)" when none; "(cascade)" for a table reached only by --cascade). */
  where: string;
  /** The key table in the scratch copy (selection.ts). */
  keys: string;
}

/** Rows whose ON DELETE SET NULL link to a put-back row is set back (UPDATE of those columns only). */
export interface PutBackLink {
  table: string;
  columns: string[];
  parent: string;
  rows: number;
  setDefault: boolean;
  keys: string;
}

export interface PutBackResult {
  out: string;
  where: string | null;
  mode: PutBackMode;
  cascade: boolean;
  tables: PutBackTable[];
  links: PutBackLink[];
  /** Triggers the file drops and re-creates around its writes (so they never fire). */
  triggers: TriggerDef[];
  rows: number;
  statements: number;
  bytes: number;
  largestStatement: number;
  warnings: string[];
}

const USER_TABLES =
  "m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND m.name NOT LIKE '\\_cf\\_%' ESCAPE '\\' AND m.name NOT LIKE 'd1b\\_%' ESCAPE '\\'";

/**
 * Tables of the scratch copy keyed by their primary key (see KeyBy "primary-key"): `names`, or
 * every user table but virtual ones ("all", for --cascade's foreign-key graph; a table with no
 * key at all is left out of it). Three queries whatever the number of tables.
 */
export async function describeTables(scratch: string, names: string[] | "all"): Promise<Map<string, TableInfo>> {
  const which = names === "all" ? `${USER_TABLES} AND m.sql NOT LIKE 'CREATE VIRTUAL%'` : `m.type = 'table' AND m.name IN (${names.map(quoteText).join(", ") || "NULL"})`;
  const cols = await sqliteQuery<ColumnRow & { tbl: string; sql: string }>(
    scratch,
    `SELECT m.name AS tbl, m.sql, x.name, x.type, x.pk, x.hidden FROM sqlite_master m JOIN pragma_table_xinfo(m.name) x WHERE ${which} ORDER BY m.name, x.cid`,
  );
  const wr = new Set((await sqliteQuery<{ name: string }>(scratch, "SELECT name FROM pragma_table_list WHERE schema = 'main' AND wr = 1")).map((r) => r.name));
  const pkIndexed = new Set(
    (await sqliteQuery<{ tbl: string }>(scratch, `SELECT DISTINCT m.name AS tbl FROM sqlite_master m JOIN pragma_index_list(m.name) i WHERE ${which} AND i.origin = 'pk'`)).map((r) => r.tbl),
  );
  const byTable = new Map<string, { sql: string; columns: ColumnRow[] }>();
  for (const c of cols) {
    const t = byTable.get(c.tbl) ?? { sql: c.sql, columns: [] };
    t.columns.push({ name: c.name, type: c.type, pk: c.pk, hidden: c.hidden });
    byTable.set(c.tbl, t);
  }
  const out = new Map<string, TableInfo>();
  for (const [name, t] of byTable) {
    // Every rowid name shadowed by a column: no rowid to address rows by.
    const withoutRowid = wr.has(name) || !freeRowidName(t.columns);
    try {
      out.set(name, describeTable({ name, sql: t.sql, columns: t.columns, withoutRowid, primaryKeyIndexed: pkIndexed.has(name) }, "primary-key"));
    } catch (e) {
      if (names !== "all" || !(e instanceof BackupError && e.code === "UNSUPPORTED_SCHEMA")) throw e;
    }
  }
  if (names !== "all") for (const n of names) if (!out.has(n)) throw new BackupError("INTERNAL", `table "${n}" is not in the scratch copy`);
  return out;
}

/** Picks, validates and orders (parents first, as in the manifest) the tables to put back. */
async function resolveTables(scratch: string, wanted: string[], order: string[]): Promise<string[]> {
  const rows = await sqliteQuery<{ name: string }>(
    scratch,
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'",
  );
  const available = rows.map((r) => r.name);
  const unknown = wanted.filter((w) => !available.includes(w));
  if (unknown.length > 0) {
    throw new BackupError(
      "INVALID_INPUT",
      `no table ${unknown.map((u) => `"${u}"`).join(", ")} in this backup; its tables: ${available.join(", ")}`,
    );
  }
  const unique = [...new Set(wanted)];
  const rank = (t: string) => (order.includes(t) ? order.indexOf(t) : order.length + unique.indexOf(t));
  return unique.sort((a, b) => rank(a) - rank(b));
}

const oneLine = (s: string) => s.replace(/[\r\n]+/g, " ");

/**
 * Why the triggers are dropped and re-created inside the file, not compensated for: D1 cannot
 * switch triggers off, and compensating means predicting what each trigger does. Dropping the
 * triggers of every table the file writes, writing, and re-creating them with the exact SQL the
 * target's sqlite_master had, all in the one transaction the file is applied as, means no trigger
 * ever sees a put-back row and no other session ever sees the triggers missing. Triggers on other
 * tables cannot fire: the file writes nowhere else, and a dropped trigger chains to nothing.
 */
function triggersToSuspend(triggers: TriggerDef[], written: Set<string>): TriggerDef[] {
  return triggers.filter((t) => written.has(t.table));
}

/**
 * Writes the put-back file from a scratch SQLite copy of the backup. Reads rows as literals built
 * inside SQLite (exact for 64-bit integers, reals, blobs and any text), hex-encoded so any byte
 * survives the trip through sqlite3's output.
 */
export async function writePutBack(scratch: string, tableOrder: string[], opts: PutBackOptions, reporter: Reporter): Promise<PutBackResult> {
  const max = opts.maxStatementBytes ?? DEFAULT_PUT_BACK_STATEMENT_BYTES;
  if (!Number.isInteger(max) || max < 1024 || max > D1_MAX_STATEMENT_BYTES) {
    throw new BackupError("INVALID_INPUT", `--max-statement-bytes must be between 1024 and ${D1_MAX_STATEMENT_BYTES}`);
  }
  if (opts.tables.length === 0) throw new BackupError("INVALID_INPUT", "name at least one --table to put back");
  const names = await resolveTables(scratch, opts.tables, tableOrder);
  const allNames = (await sqliteQuery<{ name: string }>(scratch, "SELECT name FROM sqlite_master")).map((r) => r.name);
  const byName = opts.cascade ? await describeTables(scratch, "all") : new Map<string, TableInfo>();
  for (const [n, t] of await describeTables(scratch, names.filter((n) => !byName.has(n)))) byName.set(n, t);
  const all = [...byName.values()];

  const selection = await reporter.step("select rows", () => selectRows(scratch, all, names, opts.wheres, opts.cascade, allNames));
  // Parents before children, as in the manifest (the dump's order); tables the manifest does not
  // name keep the order they were found in.
  const rank = (t: string) => (tableOrder.includes(t) ? tableOrder.indexOf(t) : tableOrder.length + names.indexOf(t));
  const described = [...selection.rows.keys()].sort((a, b) => rank(a) - rank(b)).map((n) => byName.get(n)!);
  const warnings: string[] = [];
  if (opts.mode === "replace") {
    const keyless = described.filter((t) => t.keyColumns.length === 0 && (selection.rows.get(t.name)?.rows ?? 0) > 0);
    if (keyless.length > 0) {
      throw new BackupError(
        "INVALID_INPUT",
        `--mode replace needs a primary key to match live rows by; ${keyless.map((t) => t.name).join(", ")} has none (use --mode ignore)`,
      );
    }
  }
  const parentsOf = await sqliteQuery<{ child: string; parent: string }>(
    scratch,
    `SELECT DISTINCT m.name AS child, f."table" AS parent FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f WHERE m.type = 'table' AND m.name IN (${described.map((t) => quoteText(t.name)).join(", ") || "NULL"})`,
  );
  for (const t of described) {
    const missingParents = parentsOf.filter((p) => p.child === t.name && p.parent !== t.name && !selection.rows.has(p.parent)).map((p) => p.parent);
    if (missingParents.length > 0 && !opts.cascade) {
      warnings.push(
        `rows of ${t.name} come back only if their parents exist in the target (${missingParents.join(", ")}); ` +
          "if those rows were deleted too, add them with --table (or select the parent with --cascade)",
      );
    }
  }
  const written = new Set([
    ...described.filter((t) => (selection.rows.get(t.name)?.rows ?? 0) > 0).map((t) => t.name),
    ...selection.links.map((l) => l.fk.child),
  ]);
  const suspended = triggersToSuspend(opts.triggers, written);

  // Rows too large for one statement are assembled in this table and inserted whole, so OR IGNORE
  // keeps a live row untouched. Random: no live table has it (and CREATE TABLE fails loudly if one did).
  const staging = stagingTableName(allNames);
  const out = fs.createWriteStream(opts.out);
  let statements = 0;
  let bytes = 0;
  let largest = 0;
  const write = (text: string) => {
    bytes += Buffer.byteLength(text);
    out.write(text);
  };
  const emit = (statement: string) => {
    statements++;
    largest = Math.max(largest, Buffer.byteLength(statement) - 1); // without the newline
    write(statement);
  };

  const result: PutBackTable[] = [];
  const links: PutBackLink[] = [];
  const whereOf = (name: string) => opts.wheres.find((w) => w.table === name)?.where ?? (names.includes(name) ? "(all rows)" : "(cascade)");
  try {
    write(`-- d1-backup put-back file: rows of ${opts.backupName ?? "a backup"}${opts.backupCreatedAt ? ` (taken ${opts.backupCreatedAt})` : ""}\n`);
    for (const t of described) write(`-- ${t.name}: ${selection.rows.get(t.name)!.rows} rows where ${oneLine(whereOf(t.name))}\n`);
    for (const l of selection.links) write(`-- ${l.fk.child}.${l.fk.from.join(",")}: ${l.rows} links to ${l.fk.parent} set back (${l.fk.onDelete})\n`);
    write(
      opts.mode === "ignore"
        ? "-- mode ignore: INSERT OR IGNORE, rows whose key still exists in the target keep their live values; nothing is deleted.\n"
        : "-- mode replace: INSERT … ON CONFLICT (primary key) DO UPDATE, the backup's values win; nothing is deleted.\n",
    );
    if (suspended.length > 0) write(`-- triggers ${suspended.map((t) => t.name).join(", ")} are dropped before the writes and re-created after them, so they do not fire.\n`);
    write(`-- apply: ${oneLine(opts.applyCommand)}\n`);
    // Parents and children may come in any order within the file; checked at the end.
    emit("PRAGMA defer_foreign_keys=TRUE;\n");
    for (const tr of suspended) emit(`DROP TRIGGER ${quoteIdent(tr.name)};\n`);
    for (const t of described) {
      const sel = selection.rows.get(t.name)!;
      const update = t.insertColumns.filter((c) => !t.keyColumns.includes(c));
      const tail =
        opts.mode === "replace"
          ? ` ON CONFLICT (${t.keyColumns.map(quoteIdent).join(", ")}) DO ${update.length ? `UPDATE SET ${update.map((c) => `${quoteIdent(c)} = excluded.${quoteIdent(c)}`).join(", ")}` : "NOTHING"}`
          : undefined;
      const writer = new StatementBatcher({ table: t, insert: opts.mode === "replace" ? "INSERT INTO" : "INSERT OR IGNORE INTO", tail, maxStatementBytes: max, staging, emit });
      // Values as SQL literals made by SQLite itself (see literalExpr), all ASCII so no byte is
      // lost in decoding, hex-encoded so any byte survives sqlite3's output.
      const sql = `SELECT hex(${valuesTuple(t, "ascii")}) FROM ${quoteIdent(t.name)} WHERE ${inKeys(t, sel.keys)} ORDER BY ${keyExprs(t).join(", ")}`;
      await sqliteLines(scratch, sql, (line) => {
        writer.add(Buffer.from(line, "hex").toString("latin1"));
        if (writer.rows % 1000 === 0) reporter.progress(`${t.name}: ${writer.rows} rows, ${formatBytes(bytes)} written`);
      });
      writer.flush();
      result.push({ name: t.name, rows: writer.rows, splitRows: writer.splitRows, keyColumns: keyColumnsOf(t), where: whereOf(t.name), keys: sel.keys });
    }
    for (const l of selection.links) {
      const child = byName.get(l.fk.child)!;
      // `col IS NULL`: a link someone has set again since the delete is theirs, not ours to undo.
      const guard = l.fk.onDelete === "SET NULL" ? l.fk.from.map((c) => ` AND ${quoteIdent(c)} IS NULL`).join("") : "";
      const set = l.fk.from.map((c) => `${quoteText(`${quoteIdent(c)} = `)} || ${literalExpr(c, "ascii")}`).join(" || ', ' || ");
      const match = keyExprs(child).map((k, i) => `${quoteText(`${i ? " AND " : ""}${k} = `)} || ${keyLiterals(child)[i]}`).join(" || ");
      const sql =
        `SELECT hex(${quoteText(`UPDATE ${quoteIdent(child.name)} SET `)} || ${set} || ' WHERE ' || ${match} || ${quoteText(`${guard};`)}) ` +
        `FROM ${quoteIdent(child.name)} WHERE ${inKeys(child, l.keys)} ORDER BY ${keyExprs(child).join(", ")}`;
      await sqliteLines(scratch, sql, (line) => emit(`${Buffer.from(line, "hex").toString("latin1")}\n`));
      links.push({ table: child.name, columns: l.fk.from, parent: l.fk.parent, rows: l.rows, setDefault: l.fk.onDelete === "SET DEFAULT", keys: l.keys });
    }
    for (const tr of suspended) emit(`${tr.sql};\n`);
    write("-- d1-backup: end of put-back\n");
  } finally {
    await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
  }
  const wheres = opts.wheres.map((w) => (opts.tables.length === 1 && opts.wheres.length === 1 ? w.where : `${w.table}: ${w.where}`));
  return {
    out: opts.out,
    where: wheres.length ? wheres.join("; ") : null,
    mode: opts.mode,
    cascade: opts.cascade,
    tables: result,
    links,
    triggers: suspended,
    rows: result.reduce((n, t) => n + t.rows, 0),
    statements,
    bytes,
    largestStatement: largest,
    warnings,
  };
}

/** One cell (or row) of the target that is not what the backup had. */
export interface PutBackDifference {
  table: string;
  /** The row's key, as SQL literals ("42", "'client_007'"). */
  key: string;
  /** null: the row is missing from the target. */
  column: string | null;
  /** typeof:hex of the cell (reals as their exact literal). */
  live: string | null;
  backup: string | null;
  /** A SET NULL link (the row itself was not put back). */
  link: boolean;
}

export interface PutBackComparison {
  table: string;
  /** Rows put back whole, and how many of them are missing or differ afterwards (failures). */
  selected: number;
  missing: number;
  different: number;
  /** --mode ignore: rows that existed live with other values and kept them (not a failure). */
  kept: number;
  /** SET NULL links set back, and links left alone because the live row had been re-linked or is gone. */
  links: number;
  linksKept: number;
}

const cell = (x: string) => `typeof(${x}) || ':' || CASE WHEN typeof(${x}) = 'real' THEN quote(${x}) ELSE hex(${x}) END`;
// Same storage class and same bytes; a real by value, with the sign of a zero (hex would print
// both zeros alike, and its 15 digits would call two different reals equal).
const same = (a: string, b: string) =>
  `(typeof(${a}) = typeof(${b}) AND CASE WHEN typeof(${b}) = 'real' THEN ${a} = ${b} AND (atan2(${a}, -1) < 0) = (atan2(${b}, -1) < 0) ELSE hex(${a}) = hex(${b}) END)`;

/**
 * Reads every put-back row (and every set-back link) from the target's SQLite file and compares it
 * cell by cell with the scratch copy of the backup (ATTACHed; no user text is in these queries).
 */
async function differences(targetFile: string, scratch: string, put: PutBackResult, missingRows: boolean): Promise<PutBackDifference[]> {
  const parts: string[] = [];
  const tables = await describeTables(scratch, [...new Set([...put.tables.map((t) => t.name), ...put.links.map((l) => l.table)])]);
  const info = async (name: string) => tables.get(name)!;
  const keyText = (t: TableInfo) => keyExprs(t).map((k) => `quote(s.${k})`).join(" || ', ' || ");
  const joinOn = (t: TableInfo) => keyExprs(t).map((k) => `l.${k} IS s.${k}`).join(" AND ");
  for (const p of put.tables) {
    const t = await info(p.name);
    const name = quoteIdent(t.name);
    const from = `FROM b.${name} s WHERE ${inKeys(t, p.keys, "s.", "b.")}`;
    // Before the file is applied the deleted rows are all missing, as expected: not listed then.
    if (missingRows) {
      parts.push(`SELECT ${quoteText(t.name)} AS t, ${keyText(t)} AS k, NULL AS c, NULL AS live, NULL AS backup, 0 AS link ${from} AND NOT EXISTS (SELECT 1 FROM main.${name} l WHERE ${joinOn(t)})`);
    }
    for (const c of t.insertColumns) {
      const q = quoteIdent(c);
      parts.push(
        `SELECT ${quoteText(t.name)} AS t, ${keyText(t)} AS k, ${quoteText(c)} AS c, ${cell(`l.${q}`)} AS live, ${cell(`s.${q}`)} AS backup, 0 AS link ` +
          `FROM b.${name} s JOIN main.${name} l ON ${joinOn(t)} WHERE ${inKeys(t, p.keys, "s.", "b.")} AND NOT ${same(`l.${q}`, `s.${q}`)}`,
      );
    }
  }
  for (const l of put.links) {
    const t = await info(l.table);
    const name = quoteIdent(t.name);
    parts.push(`SELECT ${quoteText(t.name)} AS t, ${keyText(t)} AS k, NULL AS c, NULL AS live, NULL AS backup, 1 AS link FROM b.${name} s WHERE ${inKeys(t, l.keys, "s.", "b.")} AND NOT EXISTS (SELECT 1 FROM main.${name} l WHERE ${joinOn(t)})`);
    for (const c of l.columns) {
      const q = quoteIdent(c);
      parts.push(
        `SELECT ${quoteText(t.name)} AS t, ${keyText(t)} AS k, ${quoteText(c)} AS c, ${cell(`l.${q}`)} AS live, ${cell(`s.${q}`)} AS backup, 1 AS link ` +
          `FROM b.${name} s JOIN main.${name} l ON ${joinOn(t)} WHERE ${inKeys(t, l.keys, "s.", "b.")} AND NOT ${same(`l.${q}`, `s.${q}`)}`,
      );
    }
  }
  if (parts.length === 0) return [];
  const rows = await sqliteQuery<{ t: string; k: string; c: string | null; live: string | null; backup: string | null; link: number }>(
    targetFile,
    `${parts.join("\nUNION ALL\n")};`,
    { attach: { file: scratch, as: "b" } },
  );
  return rows.map((r) => ({ table: r.t, key: r.k, column: r.c, live: r.live, backup: r.backup, link: r.link === 1 }));
}

const diffId = (d: PutBackDifference) => JSON.stringify([d.table, d.key, d.column, d.live, d.link]);

/** The target before the file is applied: what differs from the backup already (see comparePutBack). */
export async function snapshotPutBack(targetFile: string, scratch: string, put: PutBackResult): Promise<Set<string>> {
  return new Set((await differences(targetFile, scratch, put, false)).map(diffId));
}

export interface PutBackCheck {
  comparison: PutBackComparison[];
  /** Failures: each is a cell (or row) the put-back should have made equal to the backup. */
  failures: PutBackDifference[];
  /** Not failures: live values OR IGNORE kept, links someone had set again, link rows since deleted. */
  kept: PutBackDifference[];
}

/**
 * After the file is applied: every put-back row must now equal the backup's, cell by cell, and
 * every set-back link its backup value. The exceptions were there before the file was applied
 * (`before`, the same comparison then) and are what the mode promises to keep: in --mode ignore a
 * row that existed live keeps its values; a link is only set back where it is still NULL; a
 * link row deleted since is not re-created.
 */
export async function comparePutBack(targetFile: string, scratch: string, put: PutBackResult, before: Set<string>): Promise<PutBackCheck> {
  const diffs = await differences(targetFile, scratch, put, true);
  const failures: PutBackDifference[] = [];
  const kept: PutBackDifference[] = [];
  for (const d of diffs) {
    const wasThere = before.has(diffId(d));
    const keepable = d.link ? d.column === null || !d.live?.startsWith("null:") : put.mode === "ignore" && d.column !== null;
    (wasThere && keepable ? kept : failures).push(d);
  }
  const count = (list: PutBackDifference[], table: string, link: boolean, rowsOnly: boolean | null = null) =>
    new Set(list.filter((d) => d.table === table && d.link === link && (rowsOnly === null || (d.column === null) === rowsOnly)).map((d) => d.key)).size;
  const comparison: PutBackComparison[] = [];
  const names = [...new Set([...put.tables.map((t) => t.name), ...put.links.map((l) => l.table)])];
  for (const name of names) {
    const t = put.tables.find((x) => x.name === name);
    comparison.push({
      table: name,
      selected: t?.rows ?? 0,
      missing: count(failures, name, false, true),
      different: count(failures, name, false, false),
      kept: count(kept, name, false),
      links: put.links.filter((l) => l.table === name).reduce((n, l) => n + l.rows, 0),
      linksKept: count(kept, name, true),
    });
  }
  // Link failures count as differences of their table.
  for (const c of comparison) c.different += count(failures, c.table, true);
  return { comparison, failures, kept };
}
