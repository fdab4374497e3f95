// Selective restore ("put back"): the backup is restored into a scratch SQLite file, and the rows
// picked by --table/--where are written as INSERT OR IGNORE statements that wrangler can apply to
// the live database. Why OR IGNORE: the point is to put back rows that were deleted without
// touching anything else, so a row whose key still exists keeps its live values (plain INSERT
// would make the whole file fail on the first such row; OR REPLACE would delete the live row, and
// with it, through ON DELETE CASCADE, its children). Foreign keys are not affected by OR IGNORE:
// a row whose parent is missing fails the file, which is what you want to know.
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import { splitTuple } from "../backup/dump";
import { BackupError } from "../backup/errors";
import { literalExpr, quoteIdent, quoteText, splitLiteral, utf8Length } from "../backup/sql";
import { D1_MAX_STATEMENT_BYTES } from "../backup/dump";
import { formatBytes } from "../backup/units";
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
  /** Rows too large for one statement, written as INSERT + guarded UPDATEs. */
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

interface ScratchTable {
  name: string;
  insertColumns: string[];
  /** Columns written by the INSERT (plus the rowid for tables with no primary key). */
  insertTargets: string[];
  /** SQL expressions that identify a row (primary key columns, or the rowid). */
  keyExprs: string[];
  keyColumns: string[];
  /** The rowid keyword when the table has no primary key (then it is written and keys the row). */
  rowidKey: string | null;
}

const ROWID_NAMES = ["rowid", "_rowid_", "oid"];

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

async function describe(scratch: string, name: string): Promise<ScratchTable> {
  const cols = await sqliteQuery<{ name: string; type: string; pk: number; hidden: number }>(scratch, `PRAGMA table_xinfo(${quoteIdent(name)})`);
  const insertColumns = cols.filter((c) => c.hidden === 0).map((c) => c.name);
  const pk = cols.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk);
  if (pk.length > 0) {
    // The primary key is the row's identity in the live database; its rowid is not (a TEXT
    // primary key table gets new rowids for new rows, and a put-back row must not collide on one).
    return { name, insertColumns, insertTargets: insertColumns.map(quoteIdent), keyExprs: pk.map((c) => quoteIdent(c.name)), keyColumns: pk.map((c) => c.name), rowidKey: null };
  }
  const names = new Set(cols.map((c) => c.name.toLowerCase()));
  const rowid = ROWID_NAMES.find((n) => !names.has(n));
  if (!rowid) throw new BackupError("UNSUPPORTED_SCHEMA", `table "${name}" has no primary key and no addressable rowid`);
  // No primary key: the rowid is the only identity, so it is written (as the dump does).
  return { name, insertColumns, insertTargets: [rowid, ...insertColumns.map(quoteIdent)], keyExprs: [rowid], keyColumns: [rowid], rowidKey: rowid };
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

class PutBackWriter {
  rows = 0;
  splitRows = 0;
  private parts: string[] = [];
  private bytes = 0;
  private readonly head: string;
  private readonly headBytes: number;

  constructor(
    private readonly table: ScratchTable,
    private readonly max: number,
    private readonly sentinel: string,
    private readonly emit: (statement: string) => void,
  ) {
    this.head = `INSERT OR IGNORE INTO ${quoteIdent(table.name)} (${table.insertTargets.join(", ")}) VALUES\n`;
    this.headBytes = utf8Length(this.head);
  }

  add(tuple: string, keyLits: string[]): void {
    this.rows++;
    const tb = utf8Length(tuple);
    if (this.headBytes + tb + 2 > this.max) {
      this.flush();
      this.splitRow(splitTuple(tuple), keyLits);
      return;
    }
    if (this.bytes + tb + 2 > this.max) this.flush();
    if (this.parts.length === 0) this.bytes = this.headBytes;
    this.parts.push(tuple);
    this.bytes += tb + 2;
  }

  flush(): void {
    if (this.parts.length === 0) return;
    this.emit(`${this.head}${this.parts.join(",\n")};\n`);
    this.parts = [];
    this.bytes = 0;
  }

  /**
   * A row larger than one statement. The dump appends the rest of a large value with UPDATEs, but
   * here the INSERT may be ignored (the row exists): appending to the live row would corrupt it.
   * So the first piece goes in behind a random sentinel, every UPDATE only touches a value that
   * still starts with that sentinel, and a last UPDATE strips it. A live row never matches.
   */
  private splitRow(values: string[], keyLits: string[]): void {
    this.splitRows++;
    const where = this.table.keyExprs.map((k, i) => `${k} = ${keyLits[i]}`).join(" AND ");
    const whereBytes = utf8Length(where);
    if (whereBytes > this.max / 4) {
      throw new BackupError("UNSUPPORTED_SCHEMA", `table "${this.table.name}" has a row whose key is too large to address in a ${this.max}-byte statement`);
    }
    const sentinelLit = quoteText(this.sentinel);
    const len = this.sentinel.length; // ASCII: characters = bytes
    const guard = (col: string) => `substr(CAST(${col} AS BLOB), 1, ${len}) = CAST(${sentinelLit} AS BLOB)`;
    const share = Math.max(64, Math.floor((this.max - this.headBytes - 64) / values.length) - 8 - sentinelLit.length - 4);
    const rest = this.max - whereBytes - 512;
    const tableName = quoteIdent(this.table.name);
    const updates: string[] = [];
    const first = values.map((lit, i) => {
      if (utf8Length(lit) <= share) return lit;
      const target = this.table.insertTargets[i];
      const split = splitLiteral(lit, share, rest);
      if (!split) throw new BackupError("INTERNAL", `value in "${this.table.name}".${target} cannot be split`);
      const isBlob = lit.startsWith("X'");
      for (const append of split.appends) {
        updates.push(`UPDATE ${tableName} SET ${target} = ${append(target)} WHERE ${where} AND ${guard(target)};\n`);
      }
      const strip = `CAST(substr(CAST(${target} AS BLOB), ${len + 1}) AS ${isBlob ? "BLOB" : "TEXT"})`;
      updates.push(`UPDATE ${tableName} SET ${target} = ${strip} WHERE ${where} AND ${guard(target)};\n`);
      return `${sentinelLit} || ${split.first}`;
    });
    this.emit(`${this.head}(${first.join(",")});\n`);
    for (const u of updates) this.emit(u);
  }
}

const oneLine = (s: string) => s.replace(/[\r\n]+/g, " ");

/**
 * Writes the put-back file for `tables` (rows matching `where`) from a scratch SQLite copy of the
 * backup. Reads rows as literals built inside SQLite (exact for 64-bit integers, reals, blobs and
 * text with NULs), hex-encoded so any byte survives the trip through sqlite3's output.
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

  const described: ScratchTable[] = [];
  const warnings: string[] = [];
  for (const name of names) {
    const t = await describe(scratch, name);
    if (where) {
      try {
        await sqliteQuery(scratch, `SELECT count(*) AS n FROM ${quoteIdent(name)} WHERE (${where})`, { safe: true });
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

  const sentinel = `d1b-putback-${randomBytes(8).toString("hex")}:`;
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
      const writer = new PutBackWriter(t, max, sentinel, emit);
      // Key and values as SQL literals made by SQLite itself (see literalExpr), hex-encoded.
      const keyLits = t.rowidKey ? [`hex(quote(${t.rowidKey}))`] : t.keyColumns.map((k) => `hex(${literalExpr(k)})`);
      const values = [...(t.rowidKey ? [`quote(${t.rowidKey})`] : []), ...t.insertColumns.map(literalExpr)];
      const tuple = `'(' || ${values.join(" || ',' || ")} || ')'`;
      const sql =
        `SELECT hex(${tuple}) || ' ' || ${keyLits.join(" || ' ' || ")} FROM ${quoteIdent(t.name)}` +
        `${where ? ` WHERE (${where})` : ""} ORDER BY ${t.keyExprs.join(", ")}`;
      await sqliteLines(
        scratch,
        sql,
        (line) => {
          const [tupleHex, ...keys] = line.split(" ");
          writer.add(Buffer.from(tupleHex, "hex").toString("utf8"), keys.map((k) => Buffer.from(k, "hex").toString("utf8")));
          if (writer.rows % 1000 === 0) reporter.progress(`${t.name}: ${writer.rows} rows, ${formatBytes(bytes)} written`);
        },
        { safe: true },
      );
      writer.flush();
      result.push({ name: t.name, rows: writer.rows, splitRows: writer.splitRows, keyColumns: t.keyColumns });
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
    const match = info.keyExprs.map((k) => `l.${k} IS s.${k}`).join(" AND ");
    const same = info.insertColumns.map((c) => `l.${quoteIdent(c)} IS s.${quoteIdent(c)}`).join(" AND ");
    // A rowid is not part of `*`: select it by name so the outer query can match on it.
    const keySelect = info.rowidKey ? `${info.rowidKey} AS ${info.rowidKey}, *` : "*";
    const selected = `(SELECT ${keySelect} FROM b.${name}${where ? ` WHERE (${where})` : ""})`;
    const sql =
      `ATTACH ${quoteText(scratch)} AS b;\n` +
      `SELECT (SELECT count(*) FROM ${selected} s) AS selected,` +
      ` (SELECT count(*) FROM ${selected} s WHERE NOT EXISTS (SELECT 1 FROM main.${name} l WHERE ${match})) AS missing,` +
      ` (SELECT count(*) FROM ${selected} s WHERE EXISTS (SELECT 1 FROM main.${name} l WHERE ${match} AND NOT (${same || "1"}))) AS different;`;
    const [row] = await sqliteQuery<{ selected: number; missing: number; different: number }>(targetFile, sql);
    out.push({ table: t.name, selected: row.selected, missing: row.missing, different: row.different });
  }
  return out;
}
