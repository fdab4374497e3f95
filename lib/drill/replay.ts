// Emptying the scratch database and replaying a backup object into it through the D1 binding.
// A library function over a stream, so the replay could later run in steps (a Workflow, a Durable
// Object alarm) from an offset instead of in one invocation.
import { BackupError, createSha256, isBackupError, wrapBindingError } from "../backup";
import { D1_MAX_STATEMENT_BYTES, fts5ShadowNames, isInternalTable, quoteIdent, StatementSplitter, utf8Length } from "../sql";
import { DRILL_MARKER_TABLE } from "./guard";

interface MasterRow {
  type: string;
  name: string;
  sql: string | null;
}

// Each batch() is one transaction (D1): the dump's own PRAGMA defer_foreign_keys lasts only for
// the first one, so every batch starts with it, and a child row may still precede its parent
// inside a batch. Rows are dumped parents first, so no batch ends with a dangling reference.
const DEFER_FKS = "PRAGMA defer_foreign_keys = TRUE";

/**
 * Drops everything but the marker: triggers and views first (nothing fires while tables go),
 * FTS5 virtual tables (their shadow tables go with them), then tables, all in one batch with
 * foreign keys deferred, children before parents.
 */
export async function emptyDatabase(scratch: D1Database): Promise<{ dropped: number }> {
  try {
    // Newest first: the last restore created parents before children, so children are dropped
    // first (dropping a child whose parent is gone fails: its implicit DELETE checks the key).
    const master = (await scratch.prepare("SELECT type, name, sql FROM sqlite_master ORDER BY rowid DESC").all<MasterRow>()).results;
    const shadow = fts5ShadowNames(master);
    const keep = (m: MasterRow) => !isInternalTable(m.name) && m.name !== DRILL_MARKER_TABLE && !shadow.has(m.name.toLowerCase());
    const virtual = (m: MasterRow) => /^\s*CREATE\s+VIRTUAL\s+TABLE/i.test(m.sql ?? "");
    const stmts = [
      ...master.filter((m) => m.type === "trigger" && keep(m)).map((m) => `DROP TRIGGER IF EXISTS ${quoteIdent(m.name)}`),
      ...master.filter((m) => m.type === "view" && keep(m)).map((m) => `DROP VIEW IF EXISTS ${quoteIdent(m.name)}`),
      ...master.filter((m) => m.type === "table" && keep(m) && virtual(m)).map((m) => `DROP TABLE IF EXISTS ${quoteIdent(m.name)}`),
      ...master.filter((m) => m.type === "table" && keep(m) && !virtual(m)).map((m) => `DROP TABLE IF EXISTS ${quoteIdent(m.name)}`),
    ];
    // sqlite_stat1 cannot be dropped under D1; emptied, a restore without it leaves no stale plans.
    if (master.some((m) => m.name === "sqlite_stat1")) stmts.push("DELETE FROM sqlite_stat1");
    if (stmts.length > 0) await scratch.batch([DEFER_FKS, ...stmts].map((s) => scratch.prepare(s)));
    const left = (await scratch.prepare("SELECT type, name, sql FROM sqlite_master").all<MasterRow>()).results.filter(
      (m) => keep(m) && m.type !== "index",
    );
    if (left.length > 0) throw new BackupError("INTERNAL", `emptying RESTORE_DRILL_DB left ${left.map((m) => `${m.type} "${m.name}"`).join(", ")}`);
    return { dropped: stmts.length };
  } catch (e) {
    if (isBackupError(e)) throw e;
    throw wrapBindingError("DATABASE_ERROR", "emptying RESTORE_DRILL_DB failed", e);
  }
}

export interface ReplayResult {
  statements: number;
  batches: number;
  /** sha256 of the object as read (gzip bytes) and of the SQL inside, to compare with the manifest. */
  objectSha256: string;
  objectSize: number;
  sqlSha256: string;
  sqlSize: number;
  ms: number;
}

export interface ReplayOptions {
  batchBytes: number;
  batchStatements: number;
  /** Called before each batch(); may throw to stop (the budget). */
  beforeBatch?: () => void;
}

/** Hashes what passes through (and counts it), unchanged. */
function hashing(): { stream: TransformStream<Uint8Array, Uint8Array>; done: () => Promise<{ sha256: string; size: number }> } {
  const h = createSha256();
  let size = 0;
  const stream = new TransformStream<Uint8Array, Uint8Array>({
    async transform(chunk, controller) {
      size += chunk.byteLength;
      await h.update(chunk);
      controller.enqueue(chunk);
    },
  });
  return { stream, done: async () => ({ sha256: await h.hex(), size }) };
}

/**
 * Streams a gzip'd dump into `scratch`: gunzip, split into statements exactly as SQLite would
 * (StatementSplitter; the dump's comment lines fall away), and run them in batch() calls bounded
 * by bytes and count, in order, one at a time. Never holds more than one batch of SQL.
 */
export async function replayDump(scratch: D1Database, body: ReadableStream<Uint8Array>, opts: ReplayOptions): Promise<ReplayResult> {
  const started = Date.now();
  const objectHash = hashing();
  const sqlHash = hashing();
  const text = body
    .pipeThrough(objectHash.stream)
    .pipeThrough(new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>)
    .pipeThrough(sqlHash.stream)
    .pipeThrough(new TextDecoderStream("utf-8", { fatal: true }) as unknown as TransformStream<Uint8Array, string>);
  const splitter = new StatementSplitter(D1_MAX_STATEMENT_BYTES);
  let pending: string[] = [];
  let pendingBytes = 0;
  let statements = 0;
  let batches = 0;
  let firstLine = 1;

  const flush = async () => {
    if (pending.length === 0) return;
    opts.beforeBatch?.();
    const sql = pending;
    pending = [];
    pendingBytes = 0;
    batches++;
    try {
      await scratch.batch([DEFER_FKS, ...sql].map((s) => scratch.prepare(s)));
    } catch (e) {
      throw wrapBindingError("DATABASE_ERROR", `replaying the statements from line ${firstLine} failed`, e);
    }
  };

  const reader = text.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      for (const s of splitter.push(value)) {
        const bytes = utf8Length(s.text);
        if (bytes > D1_MAX_STATEMENT_BYTES) {
          throw new BackupError("INTEGRITY_ERROR", `the statement at line ${s.line} is ${bytes} bytes, over D1's ${D1_MAX_STATEMENT_BYTES}`);
        }
        if (pending.length > 0 && (pendingBytes + bytes > opts.batchBytes || pending.length >= opts.batchStatements)) await flush();
        if (pending.length === 0) firstLine = s.line;
        pending.push(s.text);
        pendingBytes += bytes;
        statements++;
      }
    }
    splitter.end();
    await flush();
  } catch (e) {
    await reader.cancel().catch(() => {});
    if (e instanceof TypeError) throw new BackupError("INTEGRITY_ERROR", `the backup object is not a readable gzip'd UTF-8 dump: ${e.message}`, { cause: e });
    throw e;
  }
  const [obj, sql] = await Promise.all([objectHash.done(), sqlHash.done()]);
  return { statements, batches, objectSha256: obj.sha256, objectSize: obj.size, sqlSha256: sql.sha256, sqlSize: sql.size, ms: Date.now() - started };
}
