// Streams a D1 database as SQL that `wrangler d1 execute --file` and `sqlite3` restore exactly.
// Order follows miniflare's dumpSql: defer foreign keys, schema, data, sequences, then indexes,
// views and triggers (so no trigger fires while the data goes back in).
import { BackupError, wrapBindingError } from "../errors";
import {
  cellSliceQuery,
  colAlias,
  contentlessText,
  D1_MAX_STATEMENT_BYTES,
  keyAlias,
  LARGE_ALIAS,
  parseLargeCells,
  quoteIdent,
  quoteText,
  rowMatch,
  rowQuery,
  splitterSafe,
  splitTuple,
  stagingTableName,
  StatementBatcher,
  TUPLE_ALIAS,
  utf8Length,
  type Fts5Instance,
  type Fts5Table,
  type StageCell,
  type TableInfo,
} from "../sql";
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
/**
 * Bytes of a large cell read per query: its hex (twice this) must stay under D1's
 * 2,000,000-byte limit on one value, and few round trips per value are wanted.
 */
const SLICE_BYTES = 512 * 1024;

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

  // Random, and no table or other object of the database has it (see stagingTableName).
  const staging = stagingTableName([...schema.tables.map((t) => t.name), ...schema.objects.map((o) => o.name)]);
  const newWriter = (t: TableInfo) => tableWriter(t, options.maxStatementBytes, staging, emit);

  /** Writes rows; a row with large cells reads them in slices, handing output on between slices. */
  async function* writeRows(t: TableInfo, rows: Row[], writer: StatementBatcher): AsyncGenerator<string> {
    const q = rowQuery(t);
    for (let row of rows) {
      // Text that is not valid UTF-8 reaches JS with U+FFFD in place of its bytes: read the row
      // again with every non-ASCII byte in hex (the rare real U+FFFD just goes out as hex too).
      if (row[TUPLE_ALIAS].includes("\uFFFD")) row = await readRow(db, t, q.asciiRow(rowWhere(t, q.keyCount, row)));
      if (!row[LARGE_ALIAS]) writer.add(row[TUPLE_ALIAS]);
      else yield* writeLargeRow(db, t, rowWhere(t, q.keyCount, row), row, writer, drain);
      const chunk = drain();
      if (chunk) yield chunk;
    }
  }

  for (const line of options.header) out.push(`-- ${line.replace(/[\r\n]+/g, " ")}\n`);
  emit("PRAGMA defer_foreign_keys=TRUE;\n");
  for (const t of schema.tables) emit(splitterSafe(t.sql));
  for (const f of schema.fts) if (f.table.kind !== "regular") emit(splitterSafe(f.table.sql));
  // Options first, as the source had them while its index was built (pgsz, automerge, rank, …).
  for (const f of schema.fts) {
    const name = quoteIdent(f.table.name);
    for (const c of f.config) emit(`INSERT INTO ${name}(${name}, rank) VALUES (${c.k}, ${c.v});\n`);
  }

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
      const writer = newWriter(t);
      yield* writeRows(t, results[i].results, writer);
      writer.flush();
      stats.tables.push({ name: t.name, rows: writer.rows });
      results[i] = undefined as unknown as D1Result<Row>; // let the table's rows be collected
      const chunk = drain();
      if (chunk) yield chunk;
    }
    if (sequenceSql) sequences = results[schema.tables.length].results;
  } else {
    for (const t of schema.tables) {
      const writer = newWriter(t);
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
        yield* writeRows(t, page, writer);
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

  for (const o of schema.objects) emit(splitterSafe(o.sql));

  // After every table and view: an external-content index is rebuilt from its (restored) source.
  for (const f of schema.fts) {
    if (f.table.kind === "regular") continue;
    const name = quoteIdent(f.table.name);
    if (f.table.kind === "external") {
      emit(`INSERT INTO ${name}(${name}) VALUES ('rebuild');\n`);
      stats.tables.push({ name: f.table.name, rows: await countRows(db, f.table.name) });
      continue;
    }
    let rows = 0;
    for await (const tuples of contentlessPages(db, f.table)) {
      rows += tuples.length;
      writeWhole(f.table, tuples, options.maxStatementBytes, emit);
      const chunk = drain();
      if (chunk) yield chunk;
    }
    stats.tables.push({ name: f.table.name, rows });
  }

  if (schema.stat1.length > 0) {
    // ANALYZE of the schema table alone creates sqlite_stat1 (it cannot be created by hand) without
    // analyzing the restored tables; then the source's rows replace whatever it wrote.
    emit("ANALYZE sqlite_master;\n");
    emit("DELETE FROM sqlite_stat1;\n");
    writeWhole({ name: "sqlite_stat1", columns: ["tbl", "idx", "stat"] }, schema.stat1, options.maxStatementBytes, emit, "");
  }
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

/** A restore goes into an empty database, so plain INSERTs; rows too large for one statement are staged. */
function tableWriter(table: TableInfo, maxStatementBytes: number, staging: string, emit: (statement: string) => void): StatementBatcher {
  return new StatementBatcher({ table, insert: "INSERT INTO", maxStatementBytes, staging, emit });
}

/** The WHERE that addresses a row read by rowQuery. */
function rowWhere(table: TableInfo, keyCount: number, row: Row): string {
  const where = rowMatch(table, Array.from({ length: keyCount }, (_, i) => row[keyAlias(i)]));
  // The queries that use it must stay under D1's statement limit.
  if (utf8Length(where) > D1_MAX_STATEMENT_BYTES / 2) {
    throw new BackupError("UNSUPPORTED_SCHEMA", `table "${table.name}" has a row whose key is too large to address in a query`);
  }
  return where;
}

async function readRow(db: D1Database, table: TableInfo, sql: string): Promise<Row> {
  let row: Row | null;
  try {
    row = await db.prepare(sql).first<Row>();
  } catch (e) {
    throw wrapBindingError("DATABASE_ERROR", `reading a row of table "${table.name}" again failed`, e);
  }
  if (!row) throw changedWhileRead(table);
  return row;
}

function changedWhileRead(table: TableInfo): BackupError {
  return new BackupError("DATABASE_ERROR", `a row of table "${table.name}" changed while it was being read; run the backup again`);
}

/**
 * A row with cells too large for its tuple: each is read in slices by key and staged piece by
 * piece (see StatementBatcher.stage), so no query result, statement or string holds a whole
 * large value. The next slice is requested before the current one is written.
 */
async function* writeLargeRow(
  db: D1Database,
  table: TableInfo,
  where: string,
  row: Row,
  writer: StatementBatcher,
  drain: () => string | null,
): AsyncGenerator<string> {
  const large = parseLargeCells(row[LARGE_ALIAS]);
  const cells: StageCell[] = splitTuple(row[TUPLE_ALIAS]).map((literal) => ({ literal }));
  for (const c of large) cells[c.index] = { type: c.type, bytes: c.bytes };
  const staged = writer.stage(cells);
  for (const c of large) {
    const sql = cellSliceQuery(table, c.index, where);
    const slice = (offset: number) => {
      const p = db.prepare(sql).bind(offset + 1, SLICE_BYTES).first<{ h: string; t: string; n: number }>();
      p.catch(() => {}); // surfaced when awaited
      return p;
    };
    let next = slice(0);
    for (let offset = 0; offset < c.bytes; offset += SLICE_BYTES) {
      let r: { h: string; t: string; n: number } | null;
      try {
        r = await next;
      } catch (e) {
        throw wrapBindingError("DATABASE_ERROR", `reading a large value of table "${table.name}" failed`, e);
      }
      if (offset + SLICE_BYTES < c.bytes) next = slice(offset + SLICE_BYTES);
      // Same type and size as the row's first read, or the value changed in between.
      if (!r || r.t !== c.type || r.n !== c.bytes) throw changedWhileRead(table);
      staged.appendHex(c.index, r.h);
      const chunk = drain();
      if (chunk) yield chunk;
    }
  }
  staged.end();
}

function randomHex(bytes: number): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function countRows(db: D1Database, table: string): Promise<number> {
  try {
    return (await db.prepare(`SELECT count(*) AS n FROM ${quoteIdent(table)}`).first<{ n: number }>())?.n ?? 0;
  } catch (e) {
    throw wrapBindingError("DATABASE_ERROR", `counting table "${table}" failed`, e);
  }
}

/**
 * Multi-row INSERTs of whole tuples (rows of FTS5 tables and sqlite_stat1, which take no UPDATE):
 * grouped under the statement limit, alone up to D1's own limit, and refused beyond it.
 */
function writeWhole(
  table: Pick<Fts5Table, "name" | "columns">,
  tuples: string[],
  maxStatementBytes: number,
  emit: (statement: string) => void,
  rowid = "rowid, ",
): void {
  const head = `INSERT INTO ${quoteIdent(table.name)} (${rowid}${table.columns.map(quoteIdent).join(", ")}) VALUES\n`;
  let parts: string[] = [];
  let bytes = utf8Length(head);
  const flush = () => {
    if (parts.length > 0) emit(`${head}${parts.join(",\n")};\n`);
    parts = [];
    bytes = utf8Length(head);
  };
  for (const t of tuples) {
    const tb = utf8Length(t) + 2;
    if (utf8Length(head) + tb > D1_MAX_STATEMENT_BYTES) {
      throw new BackupError(
        "UNSUPPORTED_SCHEMA",
        `a row of "${table.name}" needs a ${utf8Length(head) + tb}-byte statement, over D1's ${D1_MAX_STATEMENT_BYTES} (it cannot be completed by UPDATEs)`,
      );
    }
    if (parts.length > 0 && bytes + tb > maxStatementBytes) flush();
    parts.push(t);
    bytes += tb;
  }
  flush();
}

/** Text as hex: no splitter or trimmer can misread it, whatever words the tokens make. */
function hexText(text: string): string {
  return `CAST(X'${Array.from(new TextEncoder().encode(text), (b) => b.toString(16).padStart(2, "0")).join("").toUpperCase()}' AS TEXT)`;
}

const CONTENTLESS_PAGE_DOCS = 500;

/**
 * A contentless FTS5 table keeps only its index, and D1 refuses writes to shadow tables (SQLite's
 * defensive mode: "table x_data may not be modified"), so the index cannot be copied. Its
 * documents are rebuilt from the index instead: fts5vocab's 'instance' table lists every token
 * with its document, column and offset. fts5vocab needs a CREATE VIRTUAL TABLE (D1 refuses the
 * temp schema), so each page is one batch - create, read, drop - which D1 runs as one
 * transaction: the vocabulary table is never seen outside it, and is gone if any step fails.
 */
async function* contentlessPages(db: D1Database, table: Fts5Table): AsyncGenerator<string[]> {
  const vocab = quoteIdent(`d1b_vocab_${randomHex(8)}`);
  const fts = quoteIdent(table.name);
  let after = "NULL";
  for (;;) {
    const page = `SELECT rowid FROM ${fts} WHERE ${after} IS NULL OR rowid > ${after} ORDER BY rowid LIMIT ${CONTENTLESS_PAGE_DOCS}`;
    let results: D1Result<Record<string, string | number | null>>[];
    try {
      results = await db.batch<Record<string, string | number | null>>([
        db.prepare(`CREATE VIRTUAL TABLE ${vocab} USING fts5vocab(${quoteText(table.name)}, 'instance')`),
        db.prepare(`SELECT quote(rowid) AS doc FROM (${page})`),
        db.prepare(`SELECT quote(doc) AS doc, col, "offset", term FROM ${vocab} WHERE doc IN (${page}) ORDER BY doc, col, "offset"`),
        db.prepare(`DROP TABLE ${vocab}`),
      ]);
    } catch (e) {
      throw wrapBindingError("DATABASE_ERROR", `reading the index of contentless FTS5 table "${table.name}" failed`, e);
    }
    const docs = results[1].results.map((r) => String(r.doc));
    if (docs.length === 0) return;
    const byDoc = new Map<string, Fts5Instance[]>(docs.map((d) => [d, []]));
    for (const r of results[2].results) {
      byDoc.get(String(r.doc))?.push({ col: r.col as string | null, offset: r.offset as number | null, term: String(r.term) });
    }
    yield docs.map((d) => `(${d},${contentlessText(table, byDoc.get(d)!).map((t) => (t === null ? "NULL" : hexText(t))).join(",")})`);
    if (docs.length < CONTENTLESS_PAGE_DOCS) return;
    after = docs[docs.length - 1];
  }
}
