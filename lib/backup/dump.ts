// Streams a D1 database as SQL that `wrangler d1 execute --file` and `sqlite3` restore exactly.
// Order follows miniflare's dumpSql: defer foreign keys, schema, data, sequences, then indexes,
// views and triggers (so no trigger fires while the data goes back in).
import { BackupError, wrapBindingError } from "../errors";
import { colAlias, keyAlias, rowMatch, rowQuery, TUPLE_ALIAS, type SchemaInfo, type TableInfo } from "./schema";
import { quoteIdent, quoteText, splitLiteral, utf8Length } from "./sql";

export const DUMP_FORMAT_VERSION = 1;
export const DUMP_END_MARKER = "-- d1-backup: end of dump";

export interface DumpOptions {
  /** Largest statement written, in bytes. D1 rejects statements over 100 KB. */
  maxStatementBytes: number;
  /** Databases up to this size are read in one batch (one transaction): an atomic snapshot. */
  snapshotBudgetBytes: number;
  /** Target size of one page of rows read from D1 when paging. */
  pageBytes: number;
  /** Comment lines written at the top of the file. */
  header: string[];
}

/** D1's own limit on one SQL statement. */
export const D1_MAX_STATEMENT_BYTES = 100_000;

export const DEFAULT_DUMP_OPTIONS: DumpOptions = {
  // Far below D1's 100 KB on purpose: `wrangler d1 execute --local --file` splits statements with
  // a regex run on the growing statement text for every character, quadratic in statement length.
  // Measured on 100k portal rows: 90 KB statements restore in 55 s, 16 KB in 6.4 s, 4 KB in 8.4 s
  // (per-statement overhead wins below that), wrangler's own one-row-per-INSERT export in 145 s.
  maxStatementBytes: 16_384,
  snapshotBudgetBytes: 8 * 1024 * 1024,
  pageBytes: 2 * 1024 * 1024,
  header: [],
};

export interface SnapshotInfo {
  mode: "atomic" | "paged";
  atomic: boolean;
  databaseBytes: number | null;
  budgetBytes: number;
}

export interface DumpStats {
  tables: { name: string; rows: number }[];
  statements: number;
  snapshot: SnapshotInfo;
}

type Row = Record<string, string>;

const FIRST_PAGE_ROWS = 500;
const MIN_PAGE_ROWS = 16;
const MAX_PAGE_ROWS = 10_000;
/** Output is handed on in chunks of about this many characters. */
const CHUNK_CHARS = 64 * 1024;

export async function* dumpDatabase(
  db: D1Database,
  schema: SchemaInfo,
  options: DumpOptions,
  stats: DumpStats,
): AsyncGenerator<string> {
  if (options.maxStatementBytes < 1024 || options.maxStatementBytes > D1_MAX_STATEMENT_BYTES) {
    throw new RangeError(`maxStatementBytes must be between 1024 and ${D1_MAX_STATEMENT_BYTES}`);
  }
  let out: string[] = [];
  let outChars = 0;
  const emit = (statement: string) => {
    out.push(statement);
    outChars += statement.length;
    stats.statements++;
  };
  const drain = (): string | null => {
    if (outChars < CHUNK_CHARS) return null;
    const chunk = out.join("");
    out = [];
    outChars = 0;
    return chunk;
  };

  for (const line of options.header) out.push(`-- ${line.replace(/[\r\n]+/g, " ")}\n`);
  emit("PRAGMA defer_foreign_keys=TRUE;\n");
  for (const t of schema.tables) emit(`${t.sql};\n`);

  const databaseBytes = await databaseSize(db);
  const atomic = databaseBytes !== null && databaseBytes <= options.snapshotBudgetBytes;
  stats.snapshot = { mode: atomic ? "atomic" : "paged", atomic, databaseBytes, budgetBytes: options.snapshotBudgetBytes };

  const sequenceSql = schema.tables.some((t) => t.autoincrement)
    ? `SELECT quote(name) AS ${keyAlias(0)}, quote(seq) AS ${colAlias(0)} FROM sqlite_sequence ORDER BY name`
    : null;
  let sequences: Row[] = [];

  if (atomic) {
    // One batch runs as one transaction in D1: every table is read from the same state.
    const stmts = schema.tables.map((t) => db.prepare(rowQuery(t).sql(null, null)));
    if (sequenceSql) stmts.push(db.prepare(sequenceSql));
    let results: D1Result<Row>[];
    try {
      results = await db.batch<Row>(stmts);
    } catch (e) {
      throw wrapBindingError("DATABASE_ERROR", "reading the database snapshot failed", e);
    }
    for (const [i, t] of schema.tables.entries()) {
      const writer = new TableWriter(t, options.maxStatementBytes, emit);
      writer.add(results[i].results);
      writer.finish();
      stats.tables.push({ name: t.name, rows: writer.rows });
      results[i] = undefined as unknown as D1Result<Row>; // let the table's rows be collected
      const chunk = drain();
      if (chunk) yield chunk;
    }
    if (sequenceSql) sequences = results[schema.tables.length].results;
  } else {
    for (const t of schema.tables) {
      const writer = new TableWriter(t, options.maxStatementBytes, emit);
      const q = rowQuery(t);
      const fetchPage = async (after: string[] | null, limit: number): Promise<Row[]> => {
        try {
          return (await db.prepare(q.sql(after, limit)).all<Row>()).results;
        } catch (e) {
          throw wrapBindingError("DATABASE_ERROR", `reading table "${t.name}" failed`, e);
        }
      };
      let limit = FIRST_PAGE_ROWS;
      let pending: Promise<Row[]> | null = fetchPage(null, limit);
      while (pending) {
        const page: Row[] = await pending;
        pending = null;
        if (page.length === limit) {
          // Size pages by bytes, not rows, so wide rows do not blow the memory bound.
          let chars = 0;
          for (const row of page) chars += row[TUPLE_ALIAS].length;
          limit = Math.min(MAX_PAGE_ROWS, Math.max(MIN_PAGE_ROWS, Math.floor(options.pageBytes / Math.max(1, chars / page.length))));
          const last = page[page.length - 1];
          // Ask D1 for the next page before formatting this one: the query runs while we work.
          pending = fetchPage(
            Array.from({ length: q.keyCount }, (_, i) => last[keyAlias(i)]),
            limit,
          );
          pending.catch(() => {}); // surfaced when awaited; avoid an unhandled rejection meanwhile
        }
        writer.add(page);
        const chunk = drain();
        if (chunk) yield chunk;
      }
      writer.finish();
      stats.tables.push({ name: t.name, rows: writer.rows });
    }
    if (sequenceSql) {
      try {
        sequences = (await db.prepare(sequenceSql).all<Row>()).results;
      } catch (e) {
        throw wrapBindingError("DATABASE_ERROR", "reading sqlite_sequence failed", e);
      }
    }
  }

  // Inserting rows already advanced sqlite_sequence to the highest key; set the recorded value,
  // which is higher when rows were deleted, so restored AUTOINCREMENT ids never reuse old ones.
  const dumped = new Set(schema.tables.filter((t) => t.autoincrement).map((t) => quoteText(t.name)));
  for (const s of sequences) {
    const name = s[keyAlias(0)];
    if (!dumped.has(name)) continue;
    emit(`DELETE FROM sqlite_sequence WHERE name = ${name};\n`);
    emit(`INSERT INTO sqlite_sequence (name, seq) VALUES (${name}, ${s[colAlias(0)]});\n`);
  }

  for (const o of schema.objects) emit(`${o.sql};\n`);
  out.push(`${DUMP_END_MARKER}\n`);
  yield out.join("");
}

async function databaseSize(db: D1Database): Promise<number | null> {
  try {
    const r = await db.prepare("SELECT 1").run();
    const size = (r.meta as { size_after?: number }).size_after;
    return typeof size === "number" ? size : null;
  } catch (e) {
    throw wrapBindingError("DATABASE_ERROR", "reading the database size failed", e);
  }
}

/** Groups rows of one table into multi-row INSERTs that stay under the statement limit. */
class TableWriter {
  rows = 0;
  private readonly head: string;
  private readonly headBytes: number;
  private parts: string[] = [];
  private bytes = 0;
  private readonly keyCount: number;

  constructor(
    private readonly table: TableInfo,
    private readonly max: number,
    private readonly emit: (statement: string) => void,
  ) {
    this.head = `INSERT INTO ${quoteIdent(table.name)} (${table.insertTargets.join(", ")}) VALUES\n`;
    this.headBytes = utf8Length(this.head);
    this.keyCount = table.rowidKey ? 1 : table.keyColumns.length;
  }

  add(rows: Row[]): void {
    for (const row of rows) {
      const tuple = row[TUPLE_ALIAS];
      const tb = utf8Length(tuple);
      this.rows++;
      if (this.headBytes + tb + 2 > this.max) {
        this.flush();
        this.emitSplitRow(row, splitTuple(tuple));
        continue;
      }
      if (this.bytes + tb + 2 > this.max) this.flush();
      if (this.parts.length === 0) this.bytes = this.headBytes;
      this.parts.push(tuple);
      this.bytes += tb + 2;
    }
  }

  finish(): void {
    this.flush();
  }

  private flush(): void {
    if (this.parts.length === 0) return;
    this.emit(`${this.head}${this.parts.join(",\n")};\n`);
    this.parts = [];
    this.bytes = 0;
  }

  /** A row too large for one statement: INSERT with the first piece of each large value, then append. */
  private emitSplitRow(row: Row, values: string[]): void {
    const keyLits = Array.from({ length: this.keyCount }, (_, i) => row[keyAlias(i)]);
    const where = rowMatch(this.table, keyLits);
    const whereBytes = utf8Length(where);
    if (whereBytes > this.max / 4) {
      throw new BackupError(
        "UNSUPPORTED_SCHEMA",
        `table "${this.table.name}" has a row whose primary key is too large to address in a ${this.max}-byte statement`,
      );
    }
    const share = Math.max(64, Math.floor((this.max - this.headBytes - 64) / values.length) - 8);
    const rest = this.max - whereBytes - 256;
    const updates: string[] = [];
    const first = values.map((lit, i) => {
      if (utf8Length(lit) <= share) return lit;
      const target = this.table.insertTargets[i];
      const split = splitLiteral(lit, share, rest);
      if (!split) {
        throw new BackupError("INTERNAL", `value in "${this.table.name}".${target} cannot be split`);
      }
      const tableName = quoteIdent(this.table.name);
      for (const append of split.appends) updates.push(`UPDATE ${tableName} SET ${target} = ${append(target)} WHERE ${where};\n`);
      return split.first;
    });
    this.emit(`${this.head}(${first.join(",")});\n`);
    for (const u of updates) this.emit(u);
  }
}

/** Splits a VALUES tuple built by rowQuery back into its literals (commas outside quotes/parens). */
export function splitTuple(tuple: string): string[] {
  const inner = tuple.slice(1, -1);
  const parts: string[] = [];
  let depth = 0;
  let inQuote = false;
  let start = 0;
  for (let i = 0; i < inner.length; i++) {
    const ch = inner[i];
    if (inQuote) {
      if (ch === "'") {
        if (inner[i + 1] === "'") i++;
        else inQuote = false;
      }
    } else if (ch === "'") inQuote = true;
    else if (ch === "(") depth++;
    else if (ch === ")") depth--;
    else if (ch === "," && depth === 0) {
      parts.push(inner.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(inner.slice(start));
  return parts;
}
