// Groups rows into multi-row INSERTs that stay under a statement-size limit; a row too large for
// one statement goes in as an INSERT of its first pieces plus UPDATEs appending the rest. The dump
// and the put-back both write files this way and differ only in the INSERT and the split strategy.
import { BackupError } from "../errors";
import { quoteIdent, quoteText, splitLiteral, utf8Length, type LiteralChunks } from "./literals";
import { rowMatch, type TableInfo } from "./table";

/** D1's own limit on one SQL statement. */
export const D1_MAX_STATEMENT_BYTES = 100_000;

/** One value of a split row, as a strategy sees it. */
export interface SplitValue {
  /** The quoted table name. */
  table: string;
  /** The quoted column (an insertTargets entry). */
  target: string;
  /** Addresses the row (see rowMatch). */
  where: string;
  literal: string;
  chunks: LiteralChunks;
}

/** How a value too large for the INSERT is completed by UPDATEs. */
export interface SplitStrategy {
  /** What the "key too large" error calls the row's key. */
  keyName: string;
  /** Bytes each first piece leaves for the strategy's own wrapping of it. */
  firstOverhead: number;
  /** Bytes each UPDATE keeps free beyond its piece and WHERE. */
  updateReserve: number;
  /** The literal for the INSERT and the UPDATEs (each ending ";\n") that complete the value. */
  value(v: SplitValue): { first: string; updates: string[] };
}

/** The dump's: the INSERT always lands (the target is empty), so the rest is simply appended. */
export const plainAppends: SplitStrategy = {
  keyName: "primary key",
  firstOverhead: 0,
  updateReserve: 256,
  value: ({ table, target, where, chunks }) => ({
    first: chunks.first,
    updates: chunks.appends.map((append) => `UPDATE ${table} SET ${target} = ${append(target)} WHERE ${where};\n`),
  }),
};

/**
 * The put-back's. There the INSERT may be ignored (the row exists): appending to the live row
 * would corrupt it. So the first piece goes in behind a random sentinel, every UPDATE only touches
 * a value that still starts with that sentinel, and a last UPDATE strips it. A live row never matches.
 */
export function sentinelGuarded(sentinel: string): SplitStrategy {
  if (utf8Length(sentinel) !== sentinel.length) throw new BackupError("INTERNAL", "the put-back sentinel must be ASCII");
  const sentinelLit = quoteText(sentinel);
  const len = sentinel.length; // ASCII: characters = bytes
  const guard = (col: string) => `substr(CAST(${col} AS BLOB), 1, ${len}) = CAST(${sentinelLit} AS BLOB)`;
  return {
    keyName: "key",
    firstOverhead: sentinelLit.length + 4,
    updateReserve: 512,
    value: ({ table, target, where, literal, chunks }) => {
      const updates = chunks.appends.map(
        (append) => `UPDATE ${table} SET ${target} = ${append(target)} WHERE ${where} AND ${guard(target)};\n`,
      );
      const strip = `CAST(substr(CAST(${target} AS BLOB), ${len + 1}) AS ${literal.startsWith("X'") ? "BLOB" : "TEXT"})`;
      updates.push(`UPDATE ${table} SET ${target} = ${strip} WHERE ${where} AND ${guard(target)};\n`);
      return { first: `${sentinelLit} || ${chunks.first}`, updates };
    },
  };
}

export interface BatcherOptions<R> {
  table: TableInfo;
  /** "INSERT INTO" for a restore into an empty database, "INSERT OR IGNORE INTO" for a put-back. */
  insert: "INSERT INTO" | "INSERT OR IGNORE INTO";
  maxStatementBytes: number;
  split: SplitStrategy;
  /** The row's key literals; only asked for rows that have to be split. */
  keyLiterals: (row: R) => string[];
  emit: (statement: string) => void;
}

export class StatementBatcher<R> {
  rows = 0;
  /** Rows too large for one statement, written as INSERT + UPDATEs. */
  splitRows = 0;
  private readonly head: string;
  private readonly headBytes: number;
  private parts: string[] = [];
  private bytes = 0;

  constructor(private readonly o: BatcherOptions<R>) {
    this.head = `${o.insert} ${quoteIdent(o.table.name)} (${o.table.insertTargets.join(", ")}) VALUES\n`;
    this.headBytes = utf8Length(this.head);
  }

  /** Adds one row: its VALUES tuple (as built by valuesTuple) and whatever keyLiterals reads keys from. */
  add(tuple: string, row: R): void {
    this.rows++;
    const tb = utf8Length(tuple);
    const max = this.o.maxStatementBytes;
    if (this.headBytes + tb + 2 > max) {
      this.flush();
      this.splitRow(splitTuple(tuple), this.o.keyLiterals(row));
      return;
    }
    if (this.bytes + tb + 2 > max) this.flush();
    if (this.parts.length === 0) this.bytes = this.headBytes;
    this.parts.push(tuple);
    this.bytes += tb + 2;
  }

  flush(): void {
    if (this.parts.length === 0) return;
    this.o.emit(`${this.head}${this.parts.join(",\n")};\n`);
    this.parts = [];
    this.bytes = 0;
  }

  /** A row too large for one statement: INSERT with the first piece of each large value, then complete them. */
  private splitRow(values: string[], keyLits: string[]): void {
    const { table, maxStatementBytes: max, split } = this.o;
    this.splitRows++;
    const where = rowMatch(table, keyLits);
    const whereBytes = utf8Length(where);
    if (whereBytes > max / 4) {
      throw new BackupError(
        "UNSUPPORTED_SCHEMA",
        `table "${table.name}" has a row whose ${split.keyName} is too large to address in a ${max}-byte statement`,
      );
    }
    const share = Math.max(64, Math.floor((max - this.headBytes - 64) / values.length) - 8 - split.firstOverhead);
    const rest = max - whereBytes - split.updateReserve;
    const tableName = quoteIdent(table.name);
    const updates: string[] = [];
    const first = values.map((literal, i) => {
      if (utf8Length(literal) <= share) return literal;
      const target = table.insertTargets[i];
      const chunks = splitLiteral(literal, share, rest);
      if (!chunks) throw new BackupError("INTERNAL", `value in "${table.name}".${target} cannot be split`);
      const v = split.value({ table: tableName, target, where, literal, chunks });
      for (const u of v.updates) updates.push(u);
      return v.first;
    });
    this.o.emit(`${this.head}(${first.join(",")});\n`);
    for (const u of updates) this.o.emit(u);
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
