// Splits SQL text into the statements SQLite itself would see, streaming: the state machine of
// sqlite3_complete() (complete.c), so `;` inside strings, quoted names, comments and
// CREATE TRIGGER … BEGIN … END bodies never ends a statement. Used to check a dump before it runs
// (restore allowlist) and to replay one through a D1 binding (restore drill).
import { BackupError } from "../errors";

export interface SqlStatement {
  /** From its first token to its `;`, inclusive; leading comments and whitespace dropped. */
  text: string;
  /** 1-based line of the first token. */
  line: number;
}

// Tokens and transitions exactly as sqlite3_complete: SEMI WS OTHER EXPLAIN CREATE TEMP TRIGGER END.
const SEMI = 0, WS = 1, OTHER = 2, EXPLAIN = 3, CREATE = 4, TEMP = 5, TRIGGER = 6, END = 7;
const TRANS = [
  [1, 0, 2, 3, 4, 2, 2, 2],
  [1, 1, 2, 3, 4, 2, 2, 2],
  [1, 2, 2, 2, 2, 2, 2, 2],
  [1, 3, 3, 2, 4, 2, 2, 2],
  [1, 4, 2, 2, 2, 4, 5, 2],
  [6, 5, 5, 5, 5, 5, 5, 5],
  [6, 6, 5, 5, 5, 5, 5, 7],
  [1, 7, 5, 5, 5, 5, 5, 5],
];
const KEYWORDS: Record<string, number> = { explain: EXPLAIN, create: CREATE, temp: TEMP, temporary: TEMP, trigger: TRIGGER, end: END };
const WORD = /[A-Za-z0-9_$\u0080-\uffff]/;
// At one position: whitespace, a word, or other characters that start no quote, comment or `;`.
const SPECIAL = /[;'"`[\-/]/g;
const RUN = /(?:([ \t\n\r\f]+)|([A-Za-z0-9_$\u0080-\uffff]+)|([^'"`[;\-/ \t\n\r\fA-Za-z0-9_$\u0080-\uffff]+))/y;

type Lex = { kind: "none" } | { kind: "quote"; close: string } | { kind: "line" } | { kind: "block" } | { kind: "word"; word: string };

/** Feed text with push(); statements come out as soon as their `;` is read. Call end() last. */
export class StatementSplitter {
  private state = 0;
  private lex: Lex = { kind: "none" };
  private current = "";
  private started = false;
  private line = 1;
  private startLine = 1;
  /** What the last push could not decide yet (half of `--`, `/*` or `*\/`). */
  private carry = "";

  /** maxChars guards against a runaway statement (an unterminated string in a poisoned file). */
  constructor(private readonly maxChars = 16 * 1024 * 1024) {}

  push(chunk: string): SqlStatement[] {
    const text = this.carry + chunk;
    this.carry = "";
    return this.scan(text, false);
  }

  /** The statement read so far and not ended by a `;` (before end(): what a refusal names). */
  unfinished(): SqlStatement | null {
    return this.started ? { text: this.current, line: this.startLine } : null;
  }

  /** The rest must be whitespace or comments: a statement without its `;` is refused. */
  end(): void {
    const text = this.carry;
    this.carry = "";
    this.scan(text, true);
    if (this.lex.kind === "word") {
      this.token(KEYWORDS[this.lex.word.toLowerCase()] ?? OTHER);
      this.lex = { kind: "none" };
    }
    if (this.lex.kind === "quote") throw new BackupError("INTEGRITY_ERROR", `unterminated quoted text in the statement at line ${this.startLine}`);
    if (this.lex.kind === "block") throw new BackupError("INTEGRITY_ERROR", "unterminated /* comment at the end of the SQL");
    if (this.started) throw new BackupError("INTEGRITY_ERROR", `the statement at line ${this.startLine} has no closing ';' (the SQL is truncated)`);
  }

  /** Not final: a last character that may be half of `--`, `/*` or `*\/` is carried to the next push. */
  private scan(chunk: string, final: boolean): SqlStatement[] {
    const out: SqlStatement[] = [];
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      const lex = this.lex;
      if (lex.kind === "quote") {
        // A doubled quote inside is an escape: the next round reopens the quote, same token class.
        const close = chunk.indexOf(lex.close, i);
        const stop = close === -1 ? n : close + 1;
        this.take(chunk, i, stop);
        i = stop;
        if (close !== -1) this.lex = { kind: "none" };
        continue;
      }
      if (lex.kind === "line") {
        const nl = chunk.indexOf("\n", i);
        const stop = nl === -1 ? n : nl + 1;
        this.skip(chunk, i, stop);
        i = stop;
        if (nl !== -1) this.lex = { kind: "none" };
        continue;
      }
      if (lex.kind === "block") {
        const close = chunk.indexOf("*/", i);
        if (close === -1 && !final && chunk.endsWith("*")) {
          this.skip(chunk, i, n - 1);
          this.carry = "*";
          break;
        }
        const stop = close === -1 ? n : close + 2;
        this.skip(chunk, i, stop);
        i = stop;
        if (close !== -1) {
          this.lex = { kind: "none" };
          this.token(WS);
        }
        continue;
      }
      const ch = chunk[i];
      if ((ch === "-" || ch === "/") && i === n - 1 && !final && lex.kind === "none") {
        this.carry = ch;
        break;
      }
      if (lex.kind === "none" && (this.state === 2 || this.state === 5)) {
        // Inside a statement (or a trigger body) only `;` moves the state: skip to the next
        // character that may start a quote, a comment or end it.
        SPECIAL.lastIndex = i;
        const found = SPECIAL.exec(chunk);
        const stop = found ? found.index : n;
        if (stop > i) {
          this.take(chunk, i, stop);
          i = stop;
          continue;
        }
      }
      if (lex.kind === "word") {
        if (WORD.test(ch)) {
          lex.word += ch;
          this.take(chunk, i, i + 1);
          i++;
          continue;
        }
        this.lex = { kind: "none" };
        this.token(KEYWORDS[lex.word.toLowerCase()] ?? OTHER);
        continue; // ch is read again in the "none" state
      }
      if (ch === "'" || ch === '"' || ch === "`" || ch === "[") {
        this.begin();
        this.lex = { kind: "quote", close: ch === "[" ? "]" : ch };
        this.take(chunk, i, i + 1);
        this.token(OTHER);
        i++;
      } else if (ch === ";") {
        this.begin();
        this.take(chunk, i, i + 1);
        i++;
        this.token(SEMI);
        if (this.state === 1) {
          out.push({ text: this.current, line: this.startLine });
          this.current = "";
          this.started = false;
        }
      } else if (ch === "-" && chunk[i + 1] === "-") {
        this.lex = { kind: "line" };
        this.skip(chunk, i, i + 2);
        this.token(WS);
        i += 2;
      } else if (ch === "/" && chunk[i + 1] === "*") {
        this.lex = { kind: "block" };
        this.skip(chunk, i, i + 2);
        i += 2;
      } else {
        // Runs at once (a dump is mostly numbers and commas): repeated WS or OTHER tokens move the
        // state machine exactly as one does.
        RUN.lastIndex = i;
        const run = RUN.exec(chunk);
        const [, space, word] = run ?? [];
        const stop = i + (run ? run[0].length : 1);
        if (space) {
          this.skip(chunk, i, stop);
          this.token(WS);
        } else if (word) {
          this.begin();
          this.take(chunk, i, stop);
          if (stop === n) this.lex = { kind: "word", word };
          else this.token(KEYWORDS[word.toLowerCase()] ?? OTHER);
        } else {
          this.begin();
          this.take(chunk, i, stop);
          this.token(OTHER);
        }
        i = stop;
      }
    }
    return out;
  }

  private begin(): void {
    if (!this.started) {
      this.started = true;
      this.startLine = this.line;
    }
  }

  private take(chunk: string, from: number, to: number): void {
    const piece = chunk.slice(from, to);
    this.current += piece;
    this.countLines(piece);
    if (this.current.length > this.maxChars) {
      throw new BackupError("INTEGRITY_ERROR", `the statement at line ${this.startLine} is over ${this.maxChars} characters: not SQL a dump writes`);
    }
  }

  /** Whitespace and comments: kept inside a statement (a trigger body may hold them), dropped before one. */
  private skip(chunk: string, from: number, to: number): void {
    if (this.started) this.take(chunk, from, to);
    else this.countLines(chunk.slice(from, to));
  }

  private countLines(piece: string): void {
    for (let k = piece.indexOf("\n"); k !== -1; k = piece.indexOf("\n", k + 1)) this.line++;
  }

  private token(t: number): void {
    this.state = TRANS[this.state][t];
  }
}

/** All statements of a complete SQL text. */
export function splitStatements(sql: string): SqlStatement[] {
  const s = new StatementSplitter();
  const out = s.push(sql);
  s.end();
  return out;
}
