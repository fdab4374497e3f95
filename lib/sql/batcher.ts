// Groups rows into multi-row INSERTs that stay under a statement-size limit. A row too large for
// one statement is assembled in a staging table of our own and then inserted whole, so no
// constraint, trigger or index ever sees a value half-built, and a put-back's INSERT OR IGNORE
// either inserts the complete row or leaves the live one untouched. The dump and the put-back
// both write files this way and differ only in the INSERT verb.
import { BackupError } from "../errors";
import { literalPieces, quoteIdent, splitHex, utf8Length, type CellType } from "./literals";
import type { TableInfo } from "./table";

/** D1's own limit on one SQL statement. */
export const D1_MAX_STATEMENT_BYTES = 100_000;

/** Staging tables are named this plus 16 random hex digits, fresh for every file. */
export const STAGING_PREFIX = "d1b_stage_";

/** A table our files create to assemble large values and drop again (never user data). */
export function isStagingTable(name: string): boolean {
  return /^d1b_stage_[0-9a-f]{16}$/.test(name);
}

/** A staging table name no table in `taken` has (random, so no target table has it either). */
export function stagingTableName(taken: Iterable<string>): string {
  const names = new Set([...taken].map((n) => n.toLowerCase()));
  for (;;) {
    const bytes = crypto.getRandomValues(new Uint8Array(8));
    const name = STAGING_PREFIX + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    if (!names.has(name)) return name;
  }
}

/** A cell of a staged row: its literal, or (read apart, in slices) its type and size, bytes to follow. */
export type StageCell = { literal: string } | { type: CellType; bytes: number };

export interface BatcherOptions {
  table: TableInfo;
  /** "INSERT INTO" for a restore into an empty database, "INSERT OR IGNORE INTO" for a put-back. */
  insert: "INSERT INTO" | "INSERT OR IGNORE INTO";
  maxStatementBytes: number;
  /** The staging table (see stagingTableName): created on first use, dropped by flush(). */
  staging: string;
  emit: (statement: string) => void;
  /** Written after the VALUES of every INSERT (a put-back's ON CONFLICT … DO UPDATE clause). */
  tail?: string;
}

/**
 * Staged values are kept in rows of at most this many literal bytes, each grown by
 * `v = v || piece`: every append rewrites its row, so short rows keep the work near linear
 * (a 2 MB value built in one row is rewritten ~250 times at 16 KB statements).
 */
const MIN_CHUNK_BYTES = 64 * 1024;
/** Bytes of a staging statement beyond its piece: the longest is the UPDATE. */
const STAGE_OVERHEAD = 96;
/**
 * Staging statements stay this small even when rows are batched larger: wrangler's splitter is
 * quadratic in the length of one literal. A 1.99 MB blob restored by `wrangler d1 execute --local`
 * in 19.1 s with 16 KB pieces, 14.9 s with 4 KB, 13.2 s with 2 KB, 25.8 s with 1 KB (statement
 * overhead wins below that); the splitter alone took 10.8 s, 4.3 s, 1.0 s, 1.0 s.
 */
const STAGE_STATEMENT_BYTES = 4096;

export class StatementBatcher {
  rows = 0;
  /** Rows too large for one statement, assembled in the staging table. */
  splitRows = 0;
  private readonly head: string;
  private readonly tail: string;
  /** The head and the tail: what every INSERT has besides its rows. */
  private readonly headBytes: number;
  private readonly st: string;
  private stagingExists = false;
  private parts: string[] = [];
  private bytes = 0;

  constructor(private readonly o: BatcherOptions) {
    this.head = `${o.insert} ${quoteIdent(o.table.name)} (${o.table.insertTargets.join(", ")}) VALUES\n`;
    this.tail = o.tail ?? "";
    this.headBytes = utf8Length(this.head) + utf8Length(this.tail);
    this.st = quoteIdent(o.staging);
  }

  /** Adds one row: its VALUES tuple (as built by valuesTuple). */
  add(tuple: string): void {
    const tb = utf8Length(tuple);
    const max = this.o.maxStatementBytes;
    if (this.headBytes + tb + 2 > max) {
      this.stage(splitTuple(tuple).map((literal) => ({ literal }))).end();
      return;
    }
    this.rows++;
    if (this.bytes + tb + 2 > max) this.flushInsert();
    if (this.parts.length === 0) this.bytes = this.headBytes;
    this.parts.push(tuple);
    this.bytes += tb + 2;
  }

  /**
   * Starts a row that is assembled in the staging table: cells given by size are filled with
   * StagedRow.appendHex, then end() inserts the row whole. Statements are emitted as it goes, so
   * a large value is never held whole.
   */
  stage(cells: StageCell[]): StagedRow {
    this.flushInsert();
    this.rows++;
    this.splitRows++;
    if (!this.stagingExists) {
      // No type on v: no affinity, so each piece keeps the storage class it was written with.
      this.o.emit(`CREATE TABLE ${this.st} (k INTEGER PRIMARY KEY, v);\n`);
      this.stagingExists = true;
    }
    return new StagedRow(this.o, this.st, this.head, this.headBytes, cells);
  }

  /** Writes what is pending and drops the staging table: call at the end of the table. */
  flush(): void {
    this.flushInsert();
    if (this.stagingExists) {
      this.o.emit(`DROP TABLE ${this.st};\n`);
      this.stagingExists = false;
    }
  }

  private flushInsert(): void {
    if (this.parts.length === 0) return;
    this.o.emit(`${this.head}${this.parts.join(",\n")}${this.tail};\n`);
    this.parts = [];
    this.bytes = 0;
  }
}

interface Slot {
  type: CellType;
  /** Staging keys of its chunks, in order. */
  keys: number[];
  chunkBytes: number;
}

/** One row being assembled in the staging table (see StatementBatcher.stage). */
export class StagedRow {
  private readonly inline: (string | null)[];
  private readonly slots = new Map<number, Slot>();
  private readonly pieceBytes: number;
  private readonly chunkLimit: number;
  private nextKey = 0;

  constructor(
    private readonly o: BatcherOptions,
    private readonly st: string,
    private readonly head: string,
    headBytes: number,
    cells: StageCell[],
  ) {
    const max = o.maxStatementBytes;
    const where = `table "${o.table.name}"`;
    this.pieceBytes = Math.min(max, STAGE_STATEMENT_BYTES) - utf8Length(st) - STAGE_OVERHEAD;
    // The final INSERT names one subquery per chunk: stage the largest literals until the rest,
    // inline, leaves room for at least one chunk of every staged value.
    const leafBytes = utf8Length(this.leaf(9_999_999)) + 4;
    const slotBytes = leafBytes + 16; // CAST(... AS BLOB)
    const sizes = cells.map((c) => ("literal" in c ? utf8Length(c.literal) : 2 * c.bytes + 3));
    const staged = new Set(cells.flatMap((c, i) => ("literal" in c ? [] : [i])));
    let inlineBytes = cells.reduce((n, c, i) => n + (staged.has(i) ? 0 : sizes[i] + 1), 0);
    const room = () => max - headBytes - 8 - inlineBytes - staged.size * slotBytes;
    const bySize = cells.map((_, i) => i).filter((i) => !staged.has(i)).sort((a, b) => sizes[b] - sizes[a]);
    for (const i of bySize) {
      if (room() >= 0) break;
      const c = cells[i] as { literal: string };
      if (!literalPieces(c.literal, this.pieceBytes)) break; // numbers and NULL: a few bytes, never worth a subquery
      staged.add(i);
      inlineBytes -= sizes[i] + 1;
    }
    if (room() < 0) {
      throw new BackupError("UNSUPPORTED_SCHEMA", `${where} has a row too wide to insert in a ${max}-byte statement, even with its values staged`);
    }
    // Size chunks so every staged value's subqueries fit in the room left.
    const spareLeaves = Math.floor(room() / leafBytes);
    // 5% over: every piece carries its own quotes or X'', which the sizes above do not count.
    const total = Math.ceil([...staged].reduce((n, i) => n + sizes[i], 0) * 1.05);
    this.chunkLimit = spareLeaves > 0 ? Math.max(MIN_CHUNK_BYTES, this.pieceBytes + Math.ceil(total / spareLeaves)) : Infinity;

    this.inline = cells.map((c, i) => (staged.has(i) ? null : (c as { literal: string }).literal));
    for (const i of staged) {
      const c = cells[i];
      if ("literal" in c) {
        const split = literalPieces(c.literal, this.pieceBytes)!;
        this.slots.set(i, { type: split.type, keys: [], chunkBytes: 0 });
        for (const p of split.pieces) this.piece(i, p);
      } else {
        this.slots.set(i, { type: c.type, keys: [], chunkBytes: 0 });
      }
    }
  }

  /** Appends bytes (hex digits) to a cell given by size. */
  appendHex(index: number, hex: string): void {
    if (!this.slots.has(index) || this.inline[index] !== null) throw new BackupError("INTERNAL", `cell ${index} is not staged`);
    for (const p of splitHex(hex, this.pieceBytes - 3)) if (p) this.piece(index, `X'${p}'`);
  }

  /** Inserts the row whole from the staging table, then empties it for the next row. */
  end(): void {
    const values = this.inline.map((lit, i) => {
      if (lit !== null) return lit;
      const slot = this.slots.get(i)!;
      // A value with no bytes staged (an empty slice list) is the empty value of its type.
      const joined = slot.keys.length > 0 ? slot.keys.map((k) => this.leaf(k)).join(" || ") : slot.type === "blob" ? "X''" : "''";
      // || joins bytes and yields text; the CAST gives the value its storage class back.
      return `CAST(${joined} AS ${slot.type === "blob" ? "BLOB" : "TEXT"})`;
    });
    this.o.emit(`${this.head}(${values.join(",")})${this.o.tail ?? ""};\n`);
    this.o.emit(`DELETE FROM ${this.st};\n`);
  }

  private leaf(k: number): string {
    return `(SELECT v FROM ${this.st} WHERE k=${k})`;
  }

  private piece(index: number, literal: string): void {
    const slot = this.slots.get(index)!;
    const n = utf8Length(literal);
    if (slot.keys.length === 0 || slot.chunkBytes + n > this.chunkLimit) {
      const k = this.nextKey++;
      slot.keys.push(k);
      slot.chunkBytes = n;
      this.o.emit(`INSERT INTO ${this.st} (k, v) VALUES (${k}, ${literal});\n`);
    } else {
      slot.chunkBytes += n;
      const k = slot.keys[slot.keys.length - 1];
      this.o.emit(`UPDATE ${this.st} SET v = v || ${literal} WHERE k=${k};\n`);
    }
  }
}

/** Splits a VALUES tuple built by valuesTuple back into its literals (commas outside quotes/parens). */
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
