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
  safeTuple,
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
import { TableChecksum } from "./checksum";
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
  /** The run's own writes (its lease), carried inside the dump's watched reads (see OwnWrites). */
  ownWrites?: OwnWrites;
}

/**
 * Writes the run itself must make while a dump reads (its lease renewals and upload records).
 * A write on its own would move total_changes() like anyone else's and fail the attempt, so while
 * the read window is open they wait, and each is run inside one of the dump's watched batches,
 * where its own row changes are known exactly and subtracted (see WriteWatch).
 */
export interface OwnWrites {
  openWindow(): void;
  /** Flushes what waited. */
  closeWindow(): Promise<void>;
  /** The write due now, if any; `settle` gets its rows changed, or null when the batch failed. */
  takeWrite(): { statement: D1PreparedStatement; settle(changes: number | null): void } | null;
}

export const DEFAULT_DUMP_OPTIONS: DumpOptions = {
  // Far below D1's 100 KB on purpose: `wrangler d1 execute --local --file` splits statements with
  // a regex run on the growing statement text for every character, quadratic in statement length.
  // Measured on 100k portal rows: 90 KB statements restore in 55 s, 16 KB in 6.4 s, 4 KB in 8.4 s
  // (per-statement overhead wins below that), wrangler's own one-row-per-INSERT export in 145 s.
  maxStatementBytes: 16_384,
  // One batch returns every row at once, held whole in the Worker (128 MB). Measured locally
  // (workerd peak RSS, D1 and the Worker in one process, one-batch minus paged run of the same
  // database): +23 MB for a 2.9 MB database, +61 MB for 8.5 MB, +150 MB for 16.9 MB, i.e. 8-9 MB
  // per MB. 4 MiB keeps that near 35 MB, a third of the isolate beside the run's ~15 MB of parts
  // and buffers; D1's own bounds (30 s per query, 50 MB result) are far off at this size.
  snapshotBudgetBytes: 4 * 1024 * 1024,
  pageBytes: 2 * 1024 * 1024,
  header: [],
};

export interface SnapshotInfo {
  mode: "atomic" | "paged";
  /** The dump is one state of the database. Always true for a dump that completed. */
  atomic: boolean;
  /** How that was obtained: one batch (one transaction), or paged reads proven unchanged by total_changes(). */
  consistency?: "single-batch" | "total_changes";
  /** Reads (batches) that carried total_changes(), when paged. */
  reads?: number;
  /** Attempts the run needed (each one that saw a write was discarded). */
  attempts?: number;
  databaseBytes: number | null;
  budgetBytes: number;
}

export interface DumpStats {
  /** checksum: see checksum.ts (absent for external-content FTS5 tables, rebuilt from their source). */
  tables: { name: string; rows: number; checksum?: string }[];
  /** sqlite_sequence as written by the dump (AUTOINCREMENT tables only). */
  sequences?: { name: string; seq: string }[];
  statements: number;
  snapshot: SnapshotInfo;
}

/**
 * Tables whose schema is dumped but never their rows: operational state that describes the run
 * making the backup (the lock it holds), not the portal. A restored database starts unlocked.
 */
export const SCHEMA_ONLY_TABLES: ReadonlySet<string> = new Set(["backup_lock"]);

/** A row as rowQuery reads it: literals, and a NULL tuple for a row with large cells. */
type Row = Record<string, string | null>;

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

// total_changes() counts every row any statement on D1's one SQLite connection changed (trigger
// effects included) since that connection opened; reads never move it, so two equal values
// bracket an interval in which nothing was committed. DDL does not count: the schema is compared.
const CHANGES_SQL = "SELECT total_changes() AS d1b_changes";
const SCHEMA_SQL =
  "SELECT group_concat(d1b_entry, char(30)) AS d1b_schema FROM " +
  "(SELECT type || char(31) || name || char(31) || tbl_name || char(31) || coalesce(sql, '') AS d1b_entry FROM sqlite_master ORDER BY rowid)";
/**
 * What `meta.served_by` says under wrangler/miniflare. Locally, workerd writes a simulated D1
 * bookmark into _cf_METADATA on every commit (workerd src/workerd/io/sqlite-metadata.h: "not used
 * in production"), so there every request, reads included, moves total_changes() by exactly one.
 */
const LOCAL_SERVED_BY = "miniflare.db";

/** The schema as sqlite_master holds it, to prove no DDL ran between two points of a run. */
export async function readSchemaFingerprint(db: D1Database): Promise<string> {
  try {
    return (await db.prepare(SCHEMA_SQL).first<{ d1b_schema: string | null }>())?.d1b_schema ?? "";
  } catch (e) {
    throw wrapBindingError("DATABASE_ERROR", "reading the schema fingerprint failed", e);
  }
}

/** An attempt saw the database change; the run discards it and may try again. */
function changedError(reason: string): BackupError {
  return new BackupError("DATABASE_BUSY", `the database changed while it was being read: ${reason}`, { details: { reason } });
}

/**
 * Collects total_changes() from every paged read of one attempt. Without foreign commits the
 * values are all equal (production) or consecutive, one per request (local, see LOCAL_SERVED_BY);
 * anything else means another caller committed between two of our reads.
 */
class WriteWatch {
  reads = 0;
  /** Rows our own writes changed inside watched batches (never in the first, which sets the base). */
  own = 0;

  constructor(readonly ownWrites?: OwnWrites) {}
  private perRequest: 0 | 1 | null = null;
  private readonly values = new Set<number>();
  private min = Infinity;
  private max = -Infinity;

  observe(result: D1Result<{ d1b_changes: number }>, ownChanges = 0): void {
    this.own += ownChanges;
    const raw = result.results[0]?.d1b_changes;
    if (typeof raw !== "number") throw new BackupError("INTERNAL", "total_changes() returned no number");
    const value = raw - this.own;
    this.perRequest ??= (result.meta as { served_by?: string }).served_by === LOCAL_SERVED_BY ? 1 : 0;
    this.reads++;
    if (this.values.has(value) && this.perRequest === 1) throw changedError("two reads saw the same local commit counter");
    this.values.add(value);
    this.min = Math.min(this.min, value);
    this.max = Math.max(this.max, value);
    // Fail fast (a page or two may still be in flight, hence the slack); verify() is exact.
    if (this.max - this.min > this.perRequest * (this.reads + 1)) throw changedError(this.describe());
  }

  verify(): void {
    if (this.max - this.min !== (this.perRequest ?? 0) * (this.reads - 1)) throw changedError(this.describe());
  }

  private describe(): string {
    const foreign = this.max - this.min - (this.perRequest ?? 0) * (this.reads - 1);
    return `total_changes() moved by ${this.max - this.min} over ${this.reads} reads (${foreign} not ours)`;
  }
}

export async function* dumpDatabase(
  db: D1Database,
  schema: SchemaInfo,
  options: DumpOptions,
  stats: DumpStats,
  /** sqlite_master as it was before `schema` was read; read here when not given. */
  schemaFingerprint?: string,
): AsyncGenerator<string> {
  // The run's own writes wait for (and ride in) the watched reads until the dump ends, however it ends.
  options.ownWrites?.openWindow();
  try {
    yield* readAndWrite(db, schema, options, stats, schemaFingerprint);
  } finally {
    await options.ownWrites?.closeWindow();
  }
}

async function* readAndWrite(
  db: D1Database,
  schema: SchemaInfo,
  options: DumpOptions,
  stats: DumpStats,
  schemaFingerprint?: string,
): AsyncGenerator<string> {
  if (options.maxStatementBytes < 1024 || options.maxStatementBytes > D1_MAX_STATEMENT_BYTES) {
    throw new RangeError(`maxStatementBytes must be between 1024 and ${D1_MAX_STATEMENT_BYTES}`);
  }
  const fingerprint = schemaFingerprint ?? (await readSchemaFingerprint(db));
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
  const schemaUnchanged = (now: string | null | undefined) => {
    if ((now ?? "") !== fingerprint) throw changedError("the schema changed (sqlite_master differs)");
  };

  // Random, and no table or other object of the database has it (see stagingTableName).
  const staging = stagingTableName([...schema.tables.map((t) => t.name), ...schema.objects.map((o) => o.name)]);
  const newWriter = (t: TableInfo) => tableWriter(t, options.maxStatementBytes, staging, emit);

  /** Writes rows; a row with large cells reads them in slices, handing output on between slices. */
  async function* writeRows(t: TableInfo, rows: Row[], writer: StatementBatcher, sum: TableChecksum): AsyncGenerator<string> {
    const q = rowQuery(t);
    for (let row of rows) {
      // No tuple: the row has a cell too large for one, read again with its large cells apart.
      if (row[TUPLE_ALIAS] === null) row = await readRow(db, watch, t, q.largeRow(rowWhere(t, q.keyCount, row)));
      // Text that is not valid UTF-8 reaches JS with U+FFFD in place of its bytes: read the row
      // again with every non-ASCII byte in hex (the rare real U+FFFD just goes out as hex too).
      // Before safeTuple, which is exact only on valid UTF-8.
      if (row[TUPLE_ALIAS]!.includes("\uFFFD")) row = await readRow(db, watch, t, q.asciiRow(rowWhere(t, q.keyCount, row)));
      const tuple = safeTuple(row[TUPLE_ALIAS]!);
      sum.row(tuple);
      if (!row[LARGE_ALIAS]) writer.add(tuple);
      else yield* writeLargeRow(db, watch, t, rowWhere(t, q.keyCount, row), tuple, row[LARGE_ALIAS], writer, drain, sum);
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
  stats.snapshot = {
    mode: atomic ? "atomic" : "paged",
    atomic: false, // set once the dump has proven itself one state
    consistency: atomic ? "single-batch" : "total_changes",
    databaseBytes,
    budgetBytes: options.snapshotBudgetBytes,
  };

  // Every read of rows from here to the last one carries total_changes() (see WriteWatch).
  const watch = new WriteWatch(options.ownWrites);
  const dataTables = schema.tables.filter((t) => !SCHEMA_ONLY_TABLES.has(t.name));
  const sequenceSql = schema.tables.some((t) => t.autoincrement)
    ? `SELECT quote(name) AS ${keyAlias(0)}, quote(seq) AS ${colAlias(0)} FROM sqlite_sequence ORDER BY name`
    : null;
  let sequences: Row[] = [];

  if (atomic) {
    // One batch runs as one transaction in D1: every table is read from the same state, and the
    // schema read with it proves `schema` (read before) still describes that state.
    const stmts = dataTables.map((t) => db.prepare(rowQuery(t).sql(null, null)));
    if (sequenceSql) stmts.push(db.prepare(sequenceSql));
    stmts.push(db.prepare(SCHEMA_SQL));
    // The counter too: reads after this batch (large cells, FTS5 indexes) are checked against it.
    const results = await watchedBatch(db, watch, stmts, "reading the database snapshot failed");
    schemaUnchanged(results[results.length - 1].results[0]?.d1b_schema);
    let next = 0;
    for (const t of schema.tables) {
      const writer = newWriter(t);
      const sum = new TableChecksum();
      if (!SCHEMA_ONLY_TABLES.has(t.name)) {
        yield* writeRows(t, results[next].results, writer, sum);
        results[next++] = undefined as unknown as D1Result<Row>; // let the table's rows be collected
      }
      writer.flush();
      stats.tables.push({ name: t.name, rows: writer.rows, checksum: await sum.hex() });
      const chunk = drain();
      if (chunk) yield chunk;
    }
    if (sequenceSql) sequences = results[next].results;
  } else {
    const pages = pageReader(db, dataTables, options.pageBytes, watch);
    for (const t of schema.tables) {
      const writer = newWriter(t);
      const sum = new TableChecksum();
      if (!SCHEMA_ONLY_TABLES.has(t.name)) {
        for (;;) {
          const page = await pages.next();
          yield* writeRows(t, page.rows, writer, sum);
          if (page.last) break;
        }
      }
      writer.flush();
      stats.tables.push({ name: t.name, rows: writer.rows, checksum: await sum.hex() });
    }
    if (sequenceSql) sequences = (await watchedBatch(db, watch, [db.prepare(sequenceSql)], "reading sqlite_sequence failed"))[0].results;
  }

  // Inserting rows already advanced sqlite_sequence to the highest key; set the recorded value,
  // which is higher when rows were deleted, so restored AUTOINCREMENT ids never reuse old ones.
  const dumped = new Map(schema.tables.filter((t) => t.autoincrement).map((t) => [quoteText(t.name), t.name]));
  stats.sequences = [];
  for (const s of sequences) {
    const name = String(s[keyAlias(0)]); // quote() output, never NULL
    if (!dumped.has(name)) continue;
    stats.sequences.push({ name: dumped.get(name)!, seq: String(s[colAlias(0)]) });
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
      stats.tables.push({ name: f.table.name, rows: await countRows(db, watch, f.table.name) });
      continue;
    }
    let rows = 0;
    const sum = new TableChecksum();
    for await (const tuples of contentlessPages(db, watch, f.table)) {
      rows += tuples.length;
      for (const t of tuples) sum.row(t);
      writeWhole(f.table, tuples, options.maxStatementBytes, emit);
      const chunk = drain();
      if (chunk) yield chunk;
    }
    stats.tables.push({ name: f.table.name, rows, checksum: await sum.hex() });
  }

  if (schema.stat1.length > 0) {
    // ANALYZE of the schema table alone creates sqlite_stat1 (it cannot be created by hand) without
    // analyzing the restored tables; then the source's rows replace whatever it wrote.
    emit("ANALYZE sqlite_master;\n");
    emit("DELETE FROM sqlite_stat1;\n");
    writeWhole({ name: "sqlite_stat1", columns: ["tbl", "idx", "stat"] }, schema.stat1, options.maxStatementBytes, emit, "");
  }

  // The last read closes the window: the counter says no write committed since the first read of
  // rows, sqlite_master that no DDL ran since the schema was read. One batch alone needs neither.
  if (!atomic || watch.reads > 1) {
    const [last] = await watchedBatch(db, watch, [db.prepare(SCHEMA_SQL)], "reading the schema at the end failed");
    watch.verify();
    schemaUnchanged(last.results[0]?.d1b_schema);
    stats.snapshot.consistency = "total_changes";
    stats.snapshot.reads = watch.reads;
  }
  stats.snapshot.atomic = true;
  out.push(`${DUMP_END_MARKER}\n`);
  yield out.join("");
}

/** One read inside the snapshot window: the statements plus total_changes(), in one transaction. */
async function watchedBatch(
  db: D1Database,
  watch: WriteWatch,
  stmts: D1PreparedStatement[],
  what: string,
): Promise<D1Result<Row>[]> {
  // Never in an attempt's first read: that one sets the base every later count is measured from.
  const own = watch.reads > 0 ? (watch.ownWrites?.takeWrite() ?? null) : null;
  let results: D1Result<Row>[];
  try {
    results = await db.batch<Row>([...stmts, ...(own ? [own.statement] : []), db.prepare(CHANGES_SQL)]);
  } catch (e) {
    own?.settle(null);
    throw wrapBindingError("DATABASE_ERROR", what, e);
  }
  const changes = results.pop() as unknown as D1Result<{ d1b_changes: number }>;
  const ownChanges = own ? (results.pop()?.meta.changes ?? 0) : 0;
  own?.settle(ownChanges);
  watch.observe(changes, ownChanges);
  return results;
}

interface Page {
  rows: Row[];
  /** The table's last page. */
  last: boolean;
}

/**
 * Keyset-paged reads of every table in turn, each page read in one batch with total_changes().
 * The next read (of this table, or the first page of the next) is always requested before the
 * caller formats the current page, so D1 works while we do.
 */
function pageReader(db: D1Database, tables: TableInfo[], pageBytes: number, watch: WriteWatch): { next(): Promise<Page> } {
  interface Request {
    table: number;
    limit: number;
    rows: Promise<Row[]>;
  }
  const queries = tables.map(rowQuery);
  const request = (table: number, after: string[] | null, limit: number): Request => {
    const t = tables[table];
    const rows = (async () => {
      const [page] = await watchedBatch(db, watch, [db.prepare(queries[table].sql(after, limit))], `reading table "${t.name}" failed`);
      return page.results;
    })();
    rows.catch(() => {}); // surfaced when awaited; avoid an unhandled rejection meanwhile
    return { table, limit, rows };
  };
  let pending: Request | null = tables.length > 0 ? request(0, null, FIRST_PAGE_ROWS) : null;
  return {
    async next(): Promise<Page> {
      if (!pending) throw new BackupError("INTERNAL", "read past the last page");
      const current = pending;
      const rows = await current.rows;
      const last = rows.length < current.limit;
      if (!last) {
        // Size pages by bytes, not rows, so wide rows do not blow the memory bound.
        let chars = 0;
        for (const row of rows) chars += row[TUPLE_ALIAS]?.length ?? 0;
        const limit = Math.min(MAX_PAGE_ROWS, Math.max(MIN_PAGE_ROWS, Math.floor(pageBytes / Math.max(1, chars / rows.length))));
        const key = rows[rows.length - 1];
        pending = request(current.table, rowKeys(key, queries[current.table].keyCount), limit);
      } else {
        pending = current.table + 1 < tables.length ? request(current.table + 1, null, FIRST_PAGE_ROWS) : null;
      }
      // Let the next read go out now: workerd sends a request only when this isolate returns to
      // its event loop, which formatting the page (microtasks only) never does. With D1 in another
      // process the 1M-row backup took 12.9 s without this and 10.3 s with it (means of three runs).
      if (pending) await new Promise((r) => setTimeout(r, 0));
      return { rows, last };
    },
  };
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

/** A row's key literals (quote() output, never NULL). */
function rowKeys(row: Row, keyCount: number): string[] {
  return Array.from({ length: keyCount }, (_, i) => String(row[keyAlias(i)]));
}

/** The WHERE that addresses a row read by rowQuery. */
function rowWhere(table: TableInfo, keyCount: number, row: Row): string {
  const where = rowMatch(table, rowKeys(row, keyCount));
  // The queries that use it must stay under D1's statement limit.
  if (utf8Length(where) > D1_MAX_STATEMENT_BYTES / 2) {
    throw new BackupError("UNSUPPORTED_SCHEMA", `table "${table.name}" has a row whose key is too large to address in a query`);
  }
  return where;
}

/** Reads go through watchedBatch, so the write watch sees them like every other read of the attempt. */
async function readRow(db: D1Database, watch: WriteWatch, table: TableInfo, sql: string): Promise<Row> {
  const [r] = await watchedBatch(db, watch, [db.prepare(sql)], `reading a row of table "${table.name}" again failed`);
  const row = r.results[0];
  if (!row) throw changedWhileRead(table);
  return row;
}

/** A value that changed between its reads: the attempt is discarded and retried like any write. */
function changedWhileRead(table: TableInfo): BackupError {
  return changedError(`a row of table "${table.name}" changed while it was being read`);
}

/**
 * A row with cells too large for its tuple: each is read in slices by key and staged piece by
 * piece (see StatementBatcher.stage), so no query result, statement or string holds a whole
 * large value. The next slice is requested before the current one is written.
 */
async function* writeLargeRow(
  db: D1Database,
  watch: WriteWatch,
  table: TableInfo,
  where: string,
  tuple: string,
  largeList: string,
  writer: StatementBatcher,
  drain: () => string | null,
  sum: TableChecksum,
): AsyncGenerator<string> {
  const large = parseLargeCells(largeList);
  const cells: StageCell[] = splitTuple(tuple).map((literal) => ({ literal }));
  for (const c of large) cells[c.index] = { type: c.type, bytes: c.bytes };
  const staged = writer.stage(cells);
  for (const c of large) {
    const sql = cellSliceQuery(table, c.index, where);
    type Slice = { h: string; t: string; n: number } | undefined;
    const slice = (offset: number): Promise<Slice> => {
      const stmt = db.prepare(sql).bind(offset + 1, SLICE_BYTES);
      const what = `reading a large value of table "${table.name}" failed`;
      const p = watchedBatch(db, watch, [stmt], what).then(([res]) => res.results[0] as unknown as Slice);
      p.catch(() => {}); // surfaced when awaited
      return p;
    };
    let next = slice(0);
    for (let offset = 0; offset < c.bytes; offset += SLICE_BYTES) {
      const r = await next;
      if (offset + SLICE_BYTES < c.bytes) next = slice(offset + SLICE_BYTES);
      // Same type and size as the row's first read, or the value changed in between.
      if (!r || r.t !== c.type || r.n !== c.bytes) throw changedWhileRead(table);
      staged.appendHex(c.index, r.h);
      sum.slice(c.index, r.h);
      const chunk = drain();
      if (chunk) yield chunk;
    }
  }
  staged.end();
}

function randomHex(bytes: number): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function countRows(db: D1Database, watch: WriteWatch, table: string): Promise<number> {
  const [r] = await watchedBatch(db, watch, [db.prepare(`SELECT count(*) AS n FROM ${quoteIdent(table)}`)], `counting table "${table}" failed`);
  return Number((r.results[0] as unknown as { n: number } | undefined)?.n ?? 0);
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
async function* contentlessPages(db: D1Database, watch: WriteWatch, table: Fts5Table): AsyncGenerator<string[]> {
  const vocab = quoteIdent(`d1b_vocab_${randomHex(8)}`);
  const fts = quoteIdent(table.name);
  let after = "NULL";
  for (;;) {
    const page = `SELECT rowid FROM ${fts} WHERE ${after} IS NULL OR rowid > ${after} ORDER BY rowid LIMIT ${CONTENTLESS_PAGE_DOCS}`;
    // Inside the snapshot window like every read of rows (the DDL here is undone within the batch).
    const results = (await watchedBatch(
      db,
      watch,
      [
        db.prepare(`CREATE VIRTUAL TABLE ${vocab} USING fts5vocab(${quoteText(table.name)}, 'instance')`),
        db.prepare(`SELECT quote(rowid) AS doc FROM (${page})`),
        db.prepare(`SELECT quote(doc) AS doc, col, "offset", term FROM ${vocab} WHERE doc IN (${page}) ORDER BY doc, col, "offset"`),
        db.prepare(`DROP TABLE ${vocab}`),
      ],
      `reading the index of contentless FTS5 table "${table.name}" failed`,
    )) as unknown as D1Result<Record<string, string | number | null>>[];
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
