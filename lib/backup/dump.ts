// Streams a D1 database as SQL that `wrangler d1 execute --file` and `sqlite3` restore exactly.
// Order follows miniflare's dumpSql: defer foreign keys, schema, data, sequences, then indexes,
// views and triggers (so no trigger fires while the data goes back in).
import { wrapBindingError } from "../errors";
import { colAlias, D1_MAX_STATEMENT_BYTES, keyAlias, plainAppends, quoteText, rowQuery, StatementBatcher, TUPLE_ALIAS, type TableInfo } from "../sql";
import type { SchemaInfo } from "./schema";

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
      const writer = tableWriter(t, options.maxStatementBytes, emit);
      addRows(writer, results[i].results);
      writer.flush();
      stats.tables.push({ name: t.name, rows: writer.rows });
      results[i] = undefined as unknown as D1Result<Row>; // let the table's rows be collected
      const chunk = drain();
      if (chunk) yield chunk;
    }
    if (sequenceSql) sequences = results[schema.tables.length].results;
  } else {
    for (const t of schema.tables) {
      const writer = tableWriter(t, options.maxStatementBytes, emit);
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
        addRows(writer, page);
        const chunk = drain();
        if (chunk) yield chunk;
      }
      writer.flush();
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

/** A restore goes into an empty database, so plain INSERTs, and split values are simply appended. */
function tableWriter(table: TableInfo, maxStatementBytes: number, emit: (statement: string) => void): StatementBatcher<Row> {
  const keyCount = table.rowidKey ? 1 : table.keyColumns.length;
  return new StatementBatcher<Row>({
    table,
    insert: "INSERT INTO",
    maxStatementBytes,
    split: plainAppends,
    keyLiterals: (row) => Array.from({ length: keyCount }, (_, i) => row[keyAlias(i)]),
    emit,
  });
}

function addRows(writer: StatementBatcher<Row>, rows: Row[]): void {
  for (const row of rows) writer.add(row[TUPLE_ALIAS], row);
}
