// What a table is to a writer of INSERTs: the columns to write and the key that orders and
// addresses its rows. Pure: callers read PRAGMA table_xinfo their own way (the D1 binding in
// lib/backup, the sqlite3 CLI in lib/restore) and pass the rows in, so both describe alike.
import { BackupError } from "../errors";
import { literalExpr, quoteIdent, type LiteralMode } from "./literals";

/** The fields of one PRAGMA table_xinfo row that a description needs. */
export interface ColumnRow {
  name: string;
  type: string;
  pk: number;
  /** 0 normal, 1 hidden (virtual tables), 2/3 generated (virtual/stored). */
  hidden: number;
}

export interface TableInfo {
  name: string;
  /** CREATE TABLE statement exactly as SQLite stores it. */
  sql: string;
  withoutRowid: boolean;
  /** Columns written by INSERT (generated columns are excluded: SQLite computes them). */
  insertColumns: string[];
  /** Column list of the INSERT, including an explicit rowid when the table is keyed by it. */
  insertTargets: string[];
  /** Columns that order and page the table (its primary key), when rowidKey is null. */
  keyColumns: string[];
  /** The rowid keyword that keys the table (then it is written, so rows keep their rowids). */
  rowidKey: string | null;
  /**
   * No key at all: every rowid name is a column and there is no primary key. Rows are read in
   * scan order by position (within one snapshot) and get new rowids; their cells come back exactly.
   */
  byPosition: boolean;
  autoincrement: boolean;
}

/** What a caller has read about one table. */
export interface TableSource {
  name: string;
  sql: string;
  columns: ColumnRow[];
  /** No usable rowid: a WITHOUT ROWID table, or every rowid name is taken by a column. */
  withoutRowid: boolean;
  /**
   * The table has an index for its primary key (PRAGMA index_list, origin 'pk'). SQLite's own
   * answer to "is the primary key the rowid": an INTEGER PRIMARY KEY alias has no such index, while
   * `INTEGER PRIMARY KEY DESC`, `INT PRIMARY KEY` and composite keys do.
   */
  primaryKeyIndexed: boolean;
}

/**
 * Which identity keys a row.
 * "rowid" (the dump): the rowid, unless an INTEGER PRIMARY KEY is the rowid or there is none;
 *   a whole-database restore must give every row back its rowid.
 * "primary-key" (the put-back): the primary key whenever there is one, the rowid otherwise; in
 *   the live database a TEXT-keyed row's rowid is not its identity, and new rows took new rowids.
 */
export type KeyBy = "rowid" | "primary-key";

/** The names SQLite answers to for the rowid, in the order they are tried. */
const ROWID_NAMES = ["rowid", "_rowid_", "oid"] as const;

/** Tables SQLite or Cloudflare own: recreated by the engine, or internal to D1. */
export function isInternalTable(name: string): boolean {
  return name.startsWith("sqlite_") || name.startsWith("_cf_");
}

/** The first rowid name that no column shadows (a column named rowid hides the real one), or null. */
export function freeRowidName(columns: ColumnRow[]): string | null {
  const names = new Set(columns.map((c) => c.name.toLowerCase()));
  return ROWID_NAMES.find((n) => !names.has(n)) ?? null;
}

export function describeTable(source: TableSource, keyBy: KeyBy = "rowid"): TableInfo {
  const { name, sql, columns, withoutRowid, primaryKeyIndexed } = source;
  // Generated columns (hidden 2/3) are never inserted.
  const insertColumns = columns.filter((c) => c.hidden === 0).map((c) => c.name);
  const pk = columns.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk);
  const rowidName = freeRowidName(columns);
  const base = { name, sql, withoutRowid, insertColumns, byPosition: false, autoincrement: /\bAUTOINCREMENT\b/i.test(sql) };
  const byColumns = (keyColumns: string[]): TableInfo => ({ ...base, insertTargets: insertColumns.map(quoteIdent), keyColumns, rowidKey: null });
  const byRowid = (rowid: string): TableInfo => ({ ...base, insertTargets: [rowid, ...insertColumns.map(quoteIdent)], keyColumns: [], rowidKey: rowid });

  if (keyBy === "primary-key") {
    if (pk.length > 0) return byColumns(pk.map((c) => c.name));
    if (rowidName) return byRowid(rowidName);
    throw new BackupError("UNSUPPORTED_SCHEMA", `table "${name}" has no primary key and no addressable rowid`);
  }
  // A rowid table whose one-column primary key has no index of its own: that column is the rowid.
  if (!withoutRowid && pk.length === 1 && !primaryKeyIndexed && pk[0].hidden === 0) return byColumns([pk[0].name]);
  if (!withoutRowid && rowidName) return byRowid(rowidName);
  if (pk.length > 0) return byColumns(pk.map((c) => c.name)); // WITHOUT ROWID, or a shadowed rowid
  // Every rowid name is a column and nothing else is a key (a WITHOUT ROWID table always has one).
  return { ...base, insertTargets: insertColumns.map(quoteIdent), keyColumns: [], rowidKey: null, byPosition: true };
}

/** Parents before children (Kahn's algorithm, stable); cycles keep schema order and rely on deferred FKs. */
export function orderByForeignKeys<T extends { name: string }>(tables: T[], parents: Map<string, Set<string>>): T[] {
  const byName = new Map(tables.map((t) => [t.name, t]));
  const done = new Set<string>();
  const ordered: T[] = [];
  let progressed = true;
  while (ordered.length < tables.length && progressed) {
    progressed = false;
    for (const t of tables) {
      if (done.has(t.name)) continue;
      const waiting = [...(parents.get(t.name) ?? [])].some((p) => byName.has(p) && !done.has(p));
      if (!waiting) {
        ordered.push(t);
        done.add(t.name);
        progressed = true;
      }
    }
  }
  for (const t of tables) if (!done.has(t.name)) ordered.push(t);
  return ordered;
}

/** The SQL expressions that key a row, in ORDER BY order (none for a table read by position). */
export function keyExprs(table: TableInfo): string[] {
  return table.rowidKey ? [table.rowidKey] : table.keyColumns.map(quoteIdent);
}

/**
 * SQL that turns each key of a row into its exact literal. ASCII, so a key carried through JS
 * into the next page's WHERE is exact even when its text is not UTF-8. Only ever part of a query,
 * never of a file: no splitter reads it, so only NUL (quote() stops there) and non-ASCII go hex.
 */
export function keyLiterals(table: TableInfo): string[] {
  if (table.rowidKey) return [`quote(${table.rowidKey})`];
  return table.keyColumns.map((name) => {
    const c = quoteIdent(name);
    const unsafe = `instr(CAST(${c} AS BLOB),X'00')>0 OR ${c} GLOB '*[^' || char(9,10) || ' -~]*'`;
    return `CASE WHEN typeof(${c})='text' AND (${unsafe}) THEN 'CAST(X''' || hex(${c}) || ''' AS TEXT)' ELSE quote(${c}) END`;
  });
}

/** The insertTargets as expressions, each with the literal that recreates its value. */
function cellLiterals(table: TableInfo, mode: LiteralMode): { expr: string; literal: string }[] {
  return [
    ...(table.rowidKey ? [{ expr: table.rowidKey, literal: `quote(${table.rowidKey})` }] : []),
    ...table.insertColumns.map((c) => ({ expr: quoteIdent(c), literal: literalExpr(c, mode) })),
  ];
}

/**
 * SQL that builds a row's whole VALUES tuple `(lit,lit,…)` inside SQLite, in insertTargets order.
 * With `largeBytes`, a cell over that many bytes is written NULL here and read apart (see largeCells).
 */
export function valuesTuple(table: TableInfo, mode: LiteralMode = "utf8", largeBytes: number | null = null): string {
  const values = cellLiterals(table, mode).map(({ expr, literal }) =>
    largeBytes === null ? literal : `CASE WHEN octet_length(${expr})>${largeBytes} THEN 'NULL' ELSE ${literal} END`,
  );
  return `'(' || ${values.join(" || ',' || ")} || ')'`;
}

/**
 * Cells above this many bytes are left out of the row's tuple and read in slices: the tuple is
 * one SQLite string, which must stay under D1's 2,000,000-byte value limit however many columns
 * the table has (D1 allows 100; a hex literal is twice its value).
 */
export function largeCellBytes(table: TableInfo): number {
  return Math.max(1024, Math.min(64 * 1024, Math.floor(1_600_000 / (2 * table.insertTargets.length))));
}

/** SQL listing a row's cells over `largeBytes` as `index:type:bytes,` ('' when none). */
export function largeCells(table: TableInfo, largeBytes: number): string {
  const parts = cellLiterals(table, "utf8").map(
    ({ expr }, i) => `CASE WHEN octet_length(${expr})>${largeBytes} THEN '${i}:' || typeof(${expr}) || ':' || octet_length(${expr}) || ',' ELSE '' END`,
  );
  return parts.join(" || ");
}

/** Parses largeCells' output. */
export function parseLargeCells(list: string): { index: number; type: "blob" | "text"; bytes: number }[] {
  return list
    .split(",")
    .filter(Boolean)
    .map((e) => {
      const [i, type, n] = e.split(":");
      return { index: Number(i), type: type === "blob" ? "blob" : "text", bytes: Number(n) };
    });
}

/**
 * One slice of one cell, as hex, with the cell's type and size (so a value that changed between
 * reads is noticed). Bind: 1-based byte offset, length. `where` from rowMatch.
 */
export function cellSliceQuery(table: TableInfo, index: number, where: string): string {
  const { expr } = cellLiterals(table, "utf8")[index];
  return `SELECT hex(substr(CAST(${expr} AS BLOB), ?1, ?2)) AS h, typeof(${expr}) AS t, octet_length(${expr}) AS n FROM ${quoteIdent(table.name)} WHERE ${where}`;
}

export const keyAlias = (i: number) => `d1b_k${i}`;
export const colAlias = (i: number) => `d1b_c${i}`;
export const TUPLE_ALIAS = "d1b_tuple";
export const LARGE_ALIAS = "d1b_large";

/** SQL true when a row has a cell over `largeBytes` (one cheap test per cell, no string built). */
function largeFlag(table: TableInfo, largeBytes: number): string {
  return cellLiterals(table, "utf8").map(({ expr }) => `octet_length(${expr})>${largeBytes}`).join(" OR ");
}

/**
 * Keyset-paged SELECT returning, per row, the key literals and the whole VALUES tuple, built
 * inside SQLite (one string per row is far cheaper to move out of D1 than one per cell).
 * Keys are carried between pages as SQL literals, never as JS numbers, so 64-bit keys stay exact.
 * The tuple is "utf8" (see safeTuple), and NULL for a row with a cell over largeCellBytes: such
 * rows are rare and read again one by one with largeRow, which lists those cells in LARGE_ALIAS,
 * to be read in slices, and leaves them NULL in its tuple.
 */
export function rowQuery(table: TableInfo): {
  keyCount: number;
  sql: (after: string[] | null, limit: number | null) => string;
  /** One row with its large cells apart (when sql gave it no tuple). */
  largeRow: (where: string) => string;
  /** largeRow with text all ASCII (when the tuple came back with U+FFFD). */
  asciiRow: (where: string) => string;
} {
  if (table.byPosition) return positionQuery(table);
  const exprs = keyExprs(table);
  const keyLits = keyLiterals(table);
  const large = largeCellBytes(table);
  // Aliases are unusual on purpose: ORDER BY prefers an alias over a column of the same name.
  const keys = keyLits.map((e, i) => `${e} AS ${keyAlias(i)}`);
  const tuple = `CASE WHEN ${largeFlag(table, large)} THEN NULL ELSE ${valuesTuple(table, "utf8")} END AS ${TUPLE_ALIAS}`;
  const select = `SELECT ${[...keys, tuple].join(", ")} FROM ${quoteIdent(table.name)}`;
  const largeAware = (mode: LiteralMode) =>
    [...keys, `${valuesTuple(table, mode, large)} AS ${TUPLE_ALIAS}`, `${largeCells(table, large)} AS ${LARGE_ALIAS}`].join(", ");
  const order = ` ORDER BY ${exprs.join(", ")}`;
  const keyTuple = exprs.length === 1 ? exprs[0] : `(${exprs.join(", ")})`;
  return {
    keyCount: keyLits.length,
    sql: (after, limit) => {
      const where = after ? ` WHERE ${keyTuple} > ${after.length === 1 ? after[0] : `(${after.join(", ")})`}` : "";
      return `${select}${where}${order}${limit === null ? "" : ` LIMIT ${limit}`}`;
    },
    largeRow: (where) => `SELECT ${largeAware("utf8")} FROM ${quoteIdent(table.name)} WHERE ${where}`,
    asciiRow: (where) => `SELECT ${largeAware("ascii")} FROM ${quoteIdent(table.name)} WHERE ${where}`,
  };
}

/**
 * A table with no key, paged by position: the "key" of a row is how many rows precede it plus one,
 * and the next page starts after the last one. The inner LIMIT/OFFSET skips rows without building
 * their tuples; the same statement on the same snapshot scans in the same order, so pages neither
 * overlap nor skip (the dump's snapshot is what keeps the data still between pages). With no key a
 * cell cannot be read again in slices, so text is read with every non-ASCII byte in hex (exact for
 * invalid UTF-8 too) and every cell inline: a value too large for that fails the read loudly.
 */
function positionQuery(table: TableInfo): ReturnType<typeof rowQuery> {
  return {
    keyCount: 1,
    sql: (after, limit) => {
      const offset = after ? BigInt(after[0]) : 0n; // a literal SQLite wrote with quote(): an integer
      const inner = `SELECT * FROM ${quoteIdent(table.name)}${limit === null ? "" : ` LIMIT ${limit}`}${offset > 0n ? `${limit === null ? " LIMIT -1" : ""} OFFSET ${offset}` : ""}`;
      return `SELECT quote(${offset} + row_number() OVER ()) AS ${keyAlias(0)}, ${valuesTuple(table, "ascii")} AS ${TUPLE_ALIAS}, '' AS ${LARGE_ALIAS} FROM (${inner})`;
    },
    largeRow: () => {
      throw new BackupError("INTERNAL", `table "${table.name}" is read by position, every cell inline`);
    },
    asciiRow: () => {
      throw new BackupError("INTERNAL", `table "${table.name}" is read by position, already as ASCII`);
    },
  };
}

/** The WHERE clause that addresses one row by its key literals (to read its large cells). */
export function rowMatch(table: TableInfo, keyLits: string[]): string {
  if (table.byPosition) throw new BackupError("INTERNAL", `table "${table.name}" has no key to address a row by`);
  return keyExprs(table).map((k, i) => `${k} = ${keyLits[i]}`).join(" AND ");
}
