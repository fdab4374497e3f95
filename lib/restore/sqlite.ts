// The sqlite3 CLI as a library: read-only queries on SQLite files (restored files, the files
// behind local D1 databases, scratch copies) and streaming a SQL file into a database. Every
// invocation runs with -safe (no ATTACH, no .shell/.system/.output/.load, no readfile/writefile/
// load_extension): a second wall behind the check that only dump SQL is ever run (lib/sql allowlist).
import fs from "node:fs";
import { Readable, Transform } from "node:stream";
import { BackupError } from "../backup";
import { quoteIdent, quoteText } from "../sql";
import { cleanToolOutput, run } from "./exec";

export const SQLITE3 = process.env.SQLITE3_BIN || "sqlite3";

/** How every sqlite3 here starts: no prompts, stop at the first error, safe mode. */
export const SQLITE3_FLAGS = ["-batch", "-bail", "-safe"] as const;

export interface QueryOptions {
  /** Open read-only (default): an inspection must never change, or create, the file. */
  readonly?: boolean;
  /**
   * A second database our own code compares against (put-back checks): attached by -cmd before
   * -safe is turned on, the one thing safe mode would refuse; everything after runs safe.
   */
  attach?: { file: string; as: string };
}

function flags(opts: QueryOptions): string[] {
  const f = ["-batch", "-bail", ...((opts.readonly ?? true) ? ["-readonly"] : [])];
  if (opts.attach) f.push("-cmd", `ATTACH ${quoteText(opts.attach.file)} AS ${quoteIdent(opts.attach.as)}`);
  return [...f, "-safe"];
}

/** Runs one statement and returns its rows (sqlite3 -json). */
export async function sqliteQuery<T = Record<string, unknown>>(file: string, sql: string, opts: QueryOptions = {}): Promise<T[]> {
  const res = await run(SQLITE3, [...flags(opts), "-json", file], { input: sql });
  if (res.code !== 0) {
    throw new BackupError("DATABASE_ERROR", `sqlite3 on ${file} failed: ${cleanToolOutput(res.stderr) || `exit code ${res.code}`}`);
  }
  const text = res.stdout.trim();
  if (!text) return [];
  try {
    return JSON.parse(text) as T[];
  } catch {
    // Several statements that return rows print one JSON array each: join them.
    return JSON.parse(`[${text.replace(/\]\s*\n\[/g, "],[")}]`).flat() as T[];
  }
}

/** Streams a query's output lines (list mode, no header) to a callback, without keeping them. */
export async function sqliteLines(file: string, sql: string, onLine: (line: string) => void, opts: QueryOptions = {}): Promise<void> {
  let rest = "";
  const res = await run(SQLITE3, [...flags(opts), "-list", "-noheader", file], {
    input: sql,
    onStdout: (chunk) => {
      const text = rest + chunk.toString("latin1"); // the lines are hex: one byte per character
      const lines = text.split("\n");
      rest = lines.pop() ?? "";
      for (const l of lines) if (l) onLine(l);
    },
  });
  if (rest) onLine(rest);
  if (res.code !== 0) {
    throw new BackupError("DATABASE_ERROR", `sqlite3 on ${file} failed: ${cleanToolOutput(res.stderr) || `exit code ${res.code}`}`);
  }
}

export interface ApplyProgress {
  bytes: number;
  statements: number;
  table: string | null;
  rows: number;
}

/**
 * Pipes a SQL file into `sqlite3 -bail FILE`, wrapped in BEGIN/COMMIT: one transaction is many
 * times faster than one per statement, and a failure leaves nothing half-applied. Reports bytes,
 * the table being filled and (approximate: a text value may span lines) rows as it goes.
 */
export async function sqliteApplyFile(dbFile: string, sqlFile: string, onProgress?: (p: ApplyProgress) => void): Promise<ApplyProgress> {
  const progress: ApplyProgress = { bytes: 0, statements: 0, table: null, rows: 0 };
  let carry = "";
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      progress.bytes += chunk.length;
      const text = carry + chunk.toString("utf8");
      const lines = text.split("\n");
      carry = lines.pop() ?? "";
      for (const line of lines) {
        const insert = /^INSERT (?:OR \w+ )?INTO "((?:[^"]|"")*)"/.exec(line);
        if (insert) {
          progress.table = insert[1].replace(/""/g, '"');
          progress.statements++;
        } else if (line.startsWith("(")) progress.rows++;
        else if (line.endsWith(";")) progress.statements++;
      }
      onProgress?.(progress);
      done(null, chunk);
    },
  });
  // Rows after the INSERT head line start with "(" on their own line; a statement's first row is
  // on the line after the head too, so the count above is rows, not rows minus statements.
  const input = Readable.from(
    (async function* () {
      // synchronous=OFF: the file is a fresh copy that is thrown away if anything fails.
      yield Buffer.from("PRAGMA synchronous=OFF;\nBEGIN;\n");
      for await (const chunk of fs.createReadStream(sqlFile).pipe(counter)) yield chunk as Buffer;
      yield Buffer.from("\nCOMMIT;\n");
    })(),
  );
  const res = await run(SQLITE3, [...SQLITE3_FLAGS, dbFile], { input, maxKeep: 1024 * 1024 });
  if (res.code !== 0) {
    throw new BackupError("DATABASE_ERROR", `sqlite3 could not apply ${sqlFile}: ${cleanToolOutput(res.stderr) || `exit code ${res.code}`}`);
  }
  return progress;
}

/** SQLite's own version, for reports. */
export async function sqliteVersion(): Promise<string> {
  const res = await run(SQLITE3, ["-version"]);
  return res.code === 0 ? res.stdout.trim().split(" ")[0] : "unknown";
}
