// Selective restore ("put back"): the backup is restored into a scratch SQLite file, and the rows
// picked by --table/--where are written as INSERT OR IGNORE statements that wrangler can apply to
// the live database. Why OR IGNORE: the point is to put back rows that were deleted without
// touching anything else, so a row whose key still exists keeps its live values (plain INSERT
// would make the whole file fail on the first such row; OR REPLACE would delete the live row, and
// with it, through ON DELETE CASCADE, its children). Foreign keys are not affected by OR IGNORE:
// a row whose parent is missing fails the file, which is what you want to know.
import fs from "node:fs";
import { BackupError, formatBytes } from "../backup";
import {
  D1_MAX_STATEMENT_BYTES,
  describeTable,
  freeRowidName,
  keyExprs,
  quoteIdent,
  quoteText,
  stagingTableName,
  StatementBatcher,
  valuesTuple,
  type ColumnRow,
  type TableInfo,
} from "../sql";
import type { Reporter } from "./progress";
import { sqliteLines, sqliteQuery } from "./sqlite";

/** Small statements restore fastest through wrangler (see DEFAULT_DUMP_OPTIONS in dump.ts). */
export const DEFAULT_PUT_BACK_STATEMENT_BYTES = 16_384;

export interface PutBackOptions {
  tables: string[];
  where?: string;
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
  rows: number;
  /** Rows too large for one statement, assembled in a staging table and inserted whole. */
  splitRows: number;
  keyColumns: string[];
}

export interface PutBackResult {
  out: string;
  where: string | null;
  tables: PutBackTable[];
  rows: number;
  statements: number;
  bytes: number;
  largestStatement: number;
  warnings: string[];
}

/**
 * Rejects a --where with a `;` outside quotes: it is pasted into a SELECT on the scratch copy and
 * must stay one expression (sqlite3 would run a second statement).
 */
export function checkWhere(where: string): void {
  let quote: string | null = null;
  for (let i = 0; i < where.length; i++) {
    const ch = where[i];
    if (quote) {
      if (ch === quote) quote = where[i + 1] === quote ? (i++, quote) : null;
    } else if (ch === "'" || ch === '"' || ch === "`" || ch === "[") quote = ch === "[" ? "]" : ch;
    else if (ch === ";") throw new BackupError("INVALID_INPUT", `--where must be one SQL expression, without ";": ${where}`);
    else if (ch === "-" && where[i + 1] === "-") throw new BackupError("INVALID_INPUT", `--where must not contain a -- comment: ${where}`);
  }
}

/** A table of the scratch copy, keyed by its primary key (see KeyBy "primary-key"). */
async function describe(scratch: string, name: string): Promise<TableInfo> {
  const table = quoteIdent(name);
  const columns = await sqliteQuery<ColumnRow>(scratch, `PRAGMA table_xinfo(${table})`);
  const [master] = await sqliteQuery<{ sql: string }>(scratch, `SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ${quoteText(name)}`);
  if (!master) throw new BackupError("INTERNAL", `table "${name}" is not in the scratch copy`);
  const rowidName = freeRowidName(columns);
  let withoutRowid = true;
  if (rowidName) {
    try {
      await sqliteQuery(scratch, `SELECT ${rowidName} FROM ${table} LIMIT 0`);
      withoutRowid = false;
    } catch {
      withoutRowid = true; // "no such column": a WITHOUT ROWID table
    }
  }
  const indexes = await sqliteQuery<{ origin: string }>(scratch, `PRAGMA index_list(${table})`);
  return describeTable({ name, sql: master.sql, columns, withoutRowid, primaryKeyIndexed: indexes.some((i) => i.origin === "pk") }, "primary-key");
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
 * Writes the put-back file for `tables` (rows matching `where`) from a scratch SQLite copy of the
 * backup. Reads rows as literals built inside SQLite (exact for 64-bit integers, reals, blobs and
 * any text), hex-encoded so any byte survives the trip through sqlite3's output.
 */
export async function writePutBack(scratch: string, tableOrder: string[], opts: PutBackOptions, reporter: Reporter): Promise<PutBackResult> {
  const max = opts.maxStatementBytes ?? DEFAULT_PUT_BACK_STATEMENT_BYTES;
  if (!Number.isInteger(max) || max < 1024 || max > D1_MAX_STATEMENT_BYTES) {
    throw new BackupError("INVALID_INPUT", `--max-statement-bytes must be between 1024 and ${D1_MAX_STATEMENT_BYTES}`);
  }
  if (opts.tables.length === 0) throw new BackupError("INVALID_INPUT", "name at least one --table to put back");
  const where = opts.where?.trim() ? opts.where.trim() : null;
  if (where) checkWhere(where);
  const names = await resolveTables(scratch, opts.tables, tableOrder);

  const described: TableInfo[] = [];
  const warnings: string[] = [];
  for (const name of names) {
    const t = await describe(scratch, name);
    if (where) {
      try {
        await sqliteQuery(scratch, `SELECT count(*) AS n FROM ${quoteIdent(name)} WHERE (${where})`);
      } catch (e) {
        throw new BackupError("INVALID_INPUT", `--where "${where}" does not work on table "${name}": ${(e as Error).message.replace(/^.*failed: /, "")}`);
      }
    }
    described.push(t);
    const triggers = await sqliteQuery<{ name: string; sql: string }>(
      scratch,
      `SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ${quoteText(name)}`,
    );
    const onInsert = triggers.filter((tr) => /\bINSERT\s+ON\b/i.test(tr.sql));
    if (onInsert.length > 0) {
      warnings.push(
        `table ${name} has INSERT trigger(s) ${onInsert.map((tr) => tr.name).join(", ")}: they fire in the target for every put-back row ` +
          "(D1 cannot switch triggers off); check what they change (e.g. totals updated twice)",
      );
    }
    const parents = await sqliteQuery<{ parent: string }>(scratch, `SELECT DISTINCT "table" AS parent FROM pragma_foreign_key_list(${quoteText(name)})`);
    const missingParents = parents.map((p) => p.parent).filter((p) => p !== name && !names.includes(p));
    if (missingParents.length > 0) {
      warnings.push(
        `rows of ${name} come back only if their parents exist in the target (${missingParents.join(", ")}); ` +
          "if those rows were deleted too, add them with --table",
      );
    }
  }

  // Rows too large for one statement are assembled in this table and inserted whole, so OR IGNORE
  // keeps a live row untouched. Random: no live table has it (and CREATE TABLE fails loudly if one did).
  const allNames = await sqliteQuery<{ name: string }>(scratch, "SELECT name FROM sqlite_master");
  const staging = stagingTableName(allNames.map((r) => r.name));
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
  try {
    write(`-- d1-backup put-back file: rows of ${opts.backupName ?? "a backup"}${opts.backupCreatedAt ? ` (taken ${opts.backupCreatedAt})` : ""}\n`);
    write(`-- tables: ${names.join(", ")}; rows where: ${where ? oneLine(where) : "(all rows)"}\n`);
    write("-- INSERT OR IGNORE: rows whose key still exists in the target keep their live values; nothing is deleted.\n");
    write(`-- apply: ${oneLine(opts.applyCommand)}\n`);
    // Parents and children may come in any order within the file; checked at the end.
    emit("PRAGMA defer_foreign_keys=TRUE;\n");
    for (const t of described) {
      const writer = new StatementBatcher({ table: t, insert: "INSERT OR IGNORE INTO", maxStatementBytes: max, staging, emit });
      // Values as SQL literals made by SQLite itself (see literalExpr), all ASCII so no byte is
      // lost in decoding, hex-encoded so any byte survives sqlite3's output.
      const sql =
        `SELECT hex(${valuesTuple(t, "ascii")}) FROM ${quoteIdent(t.name)}` +
        `${where ? ` WHERE (${where})` : ""} ORDER BY ${keyExprs(t).join(", ")}`;
      await sqliteLines(
        scratch,
        sql,
        (line) => {
          writer.add(Buffer.from(line, "hex").toString("latin1"));
          if (writer.rows % 1000 === 0) reporter.progress(`${t.name}: ${writer.rows} rows, ${formatBytes(bytes)} written`);
        },
      );
      writer.flush();
      result.push({ name: t.name, rows: writer.rows, splitRows: writer.splitRows, keyColumns: t.rowidKey ? [t.rowidKey] : t.keyColumns });
    }
    write("-- d1-backup: end of put-back\n");
  } finally {
    await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
  }
  return {
    out: opts.out,
    where,
    tables: result,
    rows: result.reduce((n, t) => n + t.rows, 0),
    statements,
    bytes,
    largestStatement: largest,
    warnings,
  };
}

/**
 * After applying a put-back file to a target whose SQLite file is on this machine: how many of
 * the selected backup rows are still missing from it (by key), and how many exist with different
 * values (live rows that OR IGNORE left alone).
 */
export async function comparePutBack(
  targetFile: string,
  scratch: string,
  tables: PutBackTable[],
  where: string | null,
): Promise<{ table: string; selected: number; missing: number; different: number }[]> {
  const out: { table: string; selected: number; missing: number; different: number }[] = [];
  for (const t of tables) {
    const info = await describe(scratch, t.name);
    const name = quoteIdent(t.name);
    const match = keyExprs(info).map((k) => `l.${k} IS s.${k}`).join(" AND ");
    const same = info.insertColumns.map((c) => `l.${quoteIdent(c)} IS s.${quoteIdent(c)}`).join(" AND ");
    // A rowid is not part of `*`: select it by name so the outer query can match on it.
    const keySelect = info.rowidKey ? `${info.rowidKey} AS ${info.rowidKey}, *` : "*";
    const selected = `(SELECT ${keySelect} FROM b.${name}${where ? ` WHERE (${where})` : ""})`;
    const sql =
      `SELECT (SELECT count(*) FROM ${selected} s) AS selected,` +
      ` (SELECT count(*) FROM ${selected} s WHERE NOT EXISTS (SELECT 1 FROM main.${name} l WHERE ${match})) AS missing,` +
      ` (SELECT count(*) FROM ${selected} s WHERE EXISTS (SELECT 1 FROM main.${name} l WHERE ${match} AND NOT (${same || "1"}))) AS different;`;
    const [row] = await sqliteQuery<{ selected: number; missing: number; different: number }>(targetFile, sql, { attach: { file: scratch, as: "b" } });
    out.push({ table: t.name, selected: row.selected, missing: row.missing, different: row.different });
  }
  return out;
}
