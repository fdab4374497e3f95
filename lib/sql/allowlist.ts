// The statements a d1-backup dump can contain, and nothing else. A restore runs the dump through
// sqlite3 or wrangler, so a tampered dump (a `.shell` line, ATTACH, load_extension(), a DROP, a
// write to another schema) would run on the admin's machine or in the target: every statement is
// tokenized and must match one of the shapes the writers emit (lib/backup/dump.ts, batcher.ts,
// splitter.ts, fts5 and sqlite_sequence/sqlite_stat1 statements), values literals only. Streaming.
import { BackupError } from "../errors";
import { isStagingTable } from "./batcher";
import { StatementSplitter, type SqlStatement } from "./statements";

/** What the manifest says the dump holds (null without a manifest: only the shapes are checked). */
export interface DumpExpectation {
  /** The tables the dump creates (manifest.tables names). */
  tables: string[];
  indexes: number;
  views: number;
  triggers: number;
}

type TokKind = "word" | "ident" | "string" | "blob" | "number" | "op" | "param";
interface Tok {
  k: TokKind;
  /** word: as written; ident/string: unquoted; blob: the hex digits; op: the operator. */
  v: string;
  /** Offset in the statement text. */
  at: number;
}

const ID_START = /[A-Za-z_\u0080-\uffff]/;
const ID_CHAR = /[A-Za-z0-9_$\u0080-\uffff]/;
const WORD_RUN = /[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*/y;
const NUMBER_RUN = /(?:0[xX][0-9A-Fa-f_]+|[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][+-]?[0-9_]+)?|\.[0-9][0-9_]*(?:[eE][+-]?[0-9_]+)?)/y;
const SPACE_RUN = /[ \t\n\f\r]+/y;
const OPS = ["->>", "||", "<=", ">=", "==", "!=", "<>", "<<", ">>", "->"];

function badToken(sql: string, at: number): never {
  throw new Refusal(`SQLite cannot read ${JSON.stringify(sql.slice(at, at + 20))}`, at);
}

/**
 * The next of SQLite's tokens (tokenize.c) from `i`, whitespace and comments skipped; null at the
 * end. Anything SQLite would not read is refused on the spot.
 */
function lexOne(sql: string, start: number): { tok: Tok; next: number } | null {
  const n = sql.length;
  let i = start;
  while (i < n) {
    const ch = sql[i];
    SPACE_RUN.lastIndex = i;
    if (SPACE_RUN.test(sql)) {
      i = SPACE_RUN.lastIndex;
      continue;
    }
    if (ch === "-" && sql[i + 1] === "-") {
      const nl = sql.indexOf("\n", i);
      i = nl === -1 ? n : nl + 1;
      continue;
    }
    if (ch === "/" && sql[i + 1] === "*") {
      const close = sql.indexOf("*/", i + 2);
      i = close === -1 ? n : close + 2;
      continue;
    }
    if ((ch === "x" || ch === "X") && sql[i + 1] === "'") {
      const close = sql.indexOf("'", i + 2);
      const hex = close === -1 ? null : sql.slice(i + 2, close);
      if (hex === null || hex.length % 2 !== 0 || !/^[0-9A-Fa-f]*$/.test(hex)) badToken(sql, i);
      return { tok: { k: "blob", v: hex!, at: i }, next: close + 1 };
    }
    if (ch === "'" || ch === '"' || ch === "`" || ch === "[") {
      const closer = ch === "[" ? "]" : ch;
      let j = i + 1;
      let value = "";
      for (;;) {
        const close = sql.indexOf(closer, j);
        if (close === -1) badToken(sql, i);
        value += sql.slice(j, close);
        if (closer !== "]" && sql[close + 1] === closer) {
          value += closer;
          j = close + 2;
          continue;
        }
        j = close + 1;
        break;
      }
      return { tok: { k: ch === "'" ? "string" : "ident", v: value, at: i }, next: j };
    }
    if ((ch >= "0" && ch <= "9") || (ch === "." && /[0-9]/.test(sql[i + 1] ?? ""))) {
      NUMBER_RUN.lastIndex = i;
      NUMBER_RUN.test(sql);
      const end = NUMBER_RUN.lastIndex;
      if (ID_CHAR.test(sql[end] ?? "")) badToken(sql, i); // "1abc", "1e": SQLite's "unrecognized token"
      return { tok: { k: "number", v: sql.slice(i, end), at: i }, next: end };
    }
    if (ID_START.test(ch)) {
      WORD_RUN.lastIndex = i;
      WORD_RUN.test(sql);
      return { tok: { k: "word", v: sql.slice(i, WORD_RUN.lastIndex), at: i }, next: WORD_RUN.lastIndex };
    }
    if (ch === "?" || ch === ":" || ch === "@" || ch === "$" || ch === "#") {
      WORD_RUN.lastIndex = i + 1;
      const end = WORD_RUN.test(sql) ? WORD_RUN.lastIndex : i + 1;
      return { tok: { k: "param", v: sql.slice(i, end), at: i }, next: end };
    }
    const op = OPS.find((o) => sql.startsWith(o, i)) ?? ("(),;.=+-*/%<>&|~!".includes(ch) ? ch : null);
    if (op === null) badToken(sql, i);
    return { tok: { k: "op", v: op!, at: i }, next: i + op!.length };
  }
  return null;
}

// The rows of a dump's INSERT as the writer formats them (valuesTuple: no spaces, rows joined by
// ",\n"), matched in one pass; anything else (staged cells, other spacing) goes token by token.
const LITERAL = String.raw`NULL|-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|'[^']*(?:''[^']*)*'|X'(?:[0-9A-Fa-f]{2})*'|CAST\(X'(?:[0-9A-Fa-f]{2})*' AS TEXT\)`;
const tupleRuns = new Map<number, RegExp>();
function tupleRun(columns: number): RegExp {
  let re = tupleRuns.get(columns);
  if (!re) {
    re = new RegExp(String.raw`[ \t\n\f\r]*\((?:${LITERAL})(?:,(?:${LITERAL})){${columns - 1}}\)(?:,\n(?=\())?`, "y");
    tupleRuns.set(columns, re);
  }
  return re;
}

/** ASCII-only case folding, as SQLite compares names (so "É" and "é" stay two tables). */
const fold = (name: string) => name.replace(/[A-Z]+/g, (m) => m.toLowerCase());

/**
 * Functions and table-valued functions of the sqlite3 shell (and SQLite) that reach outside the
 * database: files, extensions, raw pages, SQL run from a string. D1 has none of them, so no real
 * backup's schema (CHECK, DEFAULT, view or trigger body) can name one.
 */
const FORBIDDEN = new Set([
  "load_extension",
  "readfile",
  "writefile",
  "edit",
  "fts3_tokenizer",
  "fsdir",
  "lsdir",
  "zipfile",
  "zipfile_cds",
  "sqlar_compress",
  "sqlar_uncompress",
  "sha3_query",
  "sqlite_dbpage",
  "sqlite_dbdata",
  "sqlite_dbptr",
  "usleep",
]);

/** A refusal inside one statement: why, and the token it is about. */
class Refusal extends Error {
  constructor(
    readonly reason: string,
    readonly at: number,
  ) {
    super(reason);
  }
}

class Cursor {
  i = 0;
  /** Tokens lexed so far (lazily: rows matched by fastRows are never tokenized). */
  readonly toks: Tok[] = [];
  private pos = 0;
  constructor(readonly text: string) {}

  peek(k = 0): Tok | undefined {
    while (this.toks.length <= this.i + k) {
      const r = lexOne(this.text, this.pos);
      if (!r) return undefined;
      this.toks.push(r.tok);
      this.pos = r.next;
    }
    return this.toks[this.i + k];
  }
  /** Every token to the end of the statement. */
  rest(): Tok[] {
    while (this.peek(this.toks.length - this.i) !== undefined);
    return this.toks;
  }
  /**
   * Rows in the writer's own format with `columns` literals each, from here. "none": not one;
   * "comma": rows, then ",\n" before a row to read token by token; "stop": rows, then the rest.
   */
  fastRows(columns: number): "none" | "comma" | "stop" {
    if (this.toks.length !== this.i) return "none"; // tokens already read ahead: stay on them
    const re = tupleRun(columns);
    let state: "none" | "comma" | "stop" = "none";
    for (;;) {
      re.lastIndex = this.pos;
      const m = re.exec(this.text);
      if (!m) return state;
      this.pos = re.lastIndex;
      if (!m[0].endsWith("\n")) return "stop";
      state = "comma";
    }
  }
  private here(): number {
    return this.peek()?.at ?? this.text.length;
  }
  fail(reason: string, at = this.here()): never {
    throw new Refusal(reason, at);
  }
  isWord(w: string, k = 0): boolean {
    const t = this.peek(k);
    return t?.k === "word" && t.v.toLowerCase() === w;
  }
  isOp(o: string, k = 0): boolean {
    const t = this.peek(k);
    return t?.k === "op" && t.v === o;
  }
  word(w: string): void {
    if (!this.isWord(w)) this.fail(`expected ${w.toUpperCase()}`);
    this.i++;
  }
  op(o: string): void {
    if (!this.isOp(o)) this.fail(`expected "${o}"`);
    this.i++;
  }
  /** An unqualified name: `x.y` would be a table in another schema (temp, an attached one). */
  name(what: string): string {
    const t = this.peek();
    if (!t || (t.k !== "word" && t.k !== "ident")) this.fail(`expected ${what}`);
    this.i++;
    if (this.isOp(".")) this.fail(`${what} "${t.v}.…" is in another schema; a dump only writes to its own (main) database`, t.at);
    return t.v;
  }
  integer(): void {
    if (this.isOp("-")) this.i++;
    const t = this.peek();
    if (t?.k !== "number" || !/^[0-9]+$/.test(t.v)) this.fail("expected an integer");
    this.i++;
  }
  /** The statement's last token, its `;`. */
  end(): void {
    if (!this.isOp(";")) this.fail(`unexpected ${this.describe()} where the dump's statement ends`);
    this.i++;
    if (this.peek() !== undefined) this.fail("more after the end of the statement");
  }
  describe(t = this.peek()): string {
    return t ? `"${t.v.slice(0, 40)}"` : "end of statement";
  }
}

/**
 * Checks a dump statement by statement (see DumpSqlCheck for the stream). Knows every shape:
 * PRAGMA defer_foreign_keys=TRUE; CREATE TABLE / VIRTUAL TABLE … USING fts5 / [UNIQUE] INDEX /
 * VIEW / TRIGGER on unqualified names; INSERT INTO <table> (<columns>) VALUES of literals only;
 * the staging table's CREATE/INSERT/UPDATE … || …/DELETE/DROP and the INSERT that reads it;
 * sqlite_sequence and sqlite_stat1 rows, ANALYZE sqlite_master; wrangler's splitter closers.
 */
class DumpStatementChecker {
  statements = 0;
  private readonly expected: Map<string, string> | null;
  private readonly created = new Map<string, string>();
  private readonly staging = new Set<string>();
  private readonly counts = { indexes: 0, views: 0, triggers: 0 };
  private analyzed = false;

  constructor(private readonly expectation: DumpExpectation | null) {
    this.expected = expectation ? new Map(expectation.tables.map((t) => [fold(t), t])) : null;
  }

  /** Throws INTEGRITY_ERROR (check "statements") naming the line and the statement. */
  check(stmt: SqlStatement): void {
    this.statements++;
    const text = stmt.text;
    if (text.startsWith(".") || text.startsWith("#")) {
      const line = text.split("\n", 1)[0];
      throw refusal(stmt, 0, `a sqlite3 shell command ("${line.slice(0, 60)}"), not SQL; sqlite3 would run it`);
    }
    const p = new Cursor(text);
    try {
      commandTerminator(text);
      this.statement(p);
    } catch (e) {
      if (e instanceof Refusal) throw refusal(stmt, e.at, e.reason);
      throw e;
    }
  }

  /** After the last statement: the schema objects are the ones the manifest counts. */
  finish(): void {
    const x = this.expectation;
    if (!x) return;
    const missing = [...this.expected!.entries()].filter(([k]) => !this.created.has(k)).map(([, v]) => v);
    if (missing.length > 0) {
      throw new BackupError("INTEGRITY_ERROR", `not dump SQL: the manifest lists table(s) ${missing.map((m) => `"${m}"`).join(", ")} that the SQL never creates`, {
        details: { check: "statements", missing },
      });
    }
    for (const kind of ["indexes", "views", "triggers"] as const) {
      if (this.counts[kind] !== x[kind]) {
        throw new BackupError("INTEGRITY_ERROR", `not dump SQL: the SQL creates ${this.counts[kind]} ${kind}, the manifest says ${x[kind]}`, {
          details: { check: "statements", kind, expected: x[kind], actual: this.counts[kind] },
        });
      }
    }
  }

  private statement(p: Cursor): void {
    const first = p.peek();
    const kw = first?.k === "word" ? first.v.toLowerCase() : "";
    p.i++;
    switch (kw) {
      case "pragma":
        if (!(p.isWord("defer_foreign_keys") && p.isOp("=", 1) && p.isWord("true", 2) && p.isOp(";", 3))) {
          p.fail("a PRAGMA other than the dump's PRAGMA defer_foreign_keys=TRUE", first!.at);
        }
        p.i += 3;
        return p.end();
      case "create":
        return this.create(p);
      case "insert":
        return this.insert(p);
      case "update":
        return this.update(p);
      case "delete":
        return this.delete(p);
      case "drop": {
        p.word("table");
        this.staging.delete(fold(this.liveStaging(p)));
        return p.end();
      }
      case "analyze":
        p.word("sqlite_master");
        this.analyzed = true;
        return p.end();
      case "select":
        try {
          return closer(p);
        } catch (e) {
          if (!(e instanceof Refusal)) throw e;
          return p.fail("a SELECT other than the dump's no-op closer SELECT 1 WHERE 0 AND (CASE WHEN 0 THEN 0 END )", e.at);
        }
      default:
        p.i--;
        p.fail(first ? `${first.k === "word" ? `${first.v.toUpperCase()} statement` : p.describe()}: not a statement the dump writer emits` : "empty statement", first?.at ?? 0);
    }
  }

  private create(p: Cursor): void {
    const kind = p.peek()?.k === "word" ? p.peek()!.v.toLowerCase() : "";
    p.i++;
    if (kind === "table") {
      const nameAt = p.peek()?.at ?? 0;
      const name = p.name("table name");
      if (isStagingTable(name) && !this.expected?.has(fold(name))) {
        // CREATE TABLE "d1b_stage_…" (k INTEGER PRIMARY KEY, v); exactly (batcher.ts).
        for (const w of ["(", "k", "integer", "primary", "key", ",", "v", ")"]) {
          if (w === "(" || w === "," || w === ")") p.op(w);
          else p.word(w);
        }
        this.staging.add(fold(name));
        return p.end();
      }
      this.newTable(p, name, nameAt);
      p.op("(");
      return schemaBody(p);
    }
    if (kind === "virtual") {
      p.word("table");
      const nameAt = p.peek()?.at ?? 0;
      const name = p.name("table name");
      p.word("using");
      if (!p.isWord("fts5")) p.fail(`virtual table module ${p.describe()}: a dump only creates FTS5 tables`);
      p.i++;
      this.newTable(p, name, nameAt);
      return schemaBody(p);
    }
    if (kind === "unique") p.word("index");
    if (kind === "unique" || kind === "index") {
      p.name("index name");
      p.word("on");
      const table = p.name("table name");
      if (!this.created.has(fold(table)) || this.staging.has(fold(table))) p.fail(`index on "${table}", which is not a table this dump created`, p.toks[p.i - 1].at);
      this.counts.indexes++;
      return schemaBody(p);
    }
    if (kind === "view" || kind === "trigger") {
      p.name(`${kind} name`);
      this.counts[kind === "view" ? "views" : "triggers"]++;
      return schemaBody(p);
    }
    p.i--;
    p.fail(`CREATE ${p.describe()}: a dump only creates tables, FTS5 tables, indexes, views and triggers of its own database (no TEMP)`);
  }

  private newTable(p: Cursor, name: string, at: number): void {
    const key = fold(name);
    if (this.expected && !this.expected.has(key)) p.fail(`table "${name}" is not one of the tables the manifest lists`, at);
    if (!this.expected && (key.startsWith("sqlite_") || key.startsWith("_cf_"))) p.fail(`table "${name}" is internal; a dump never creates it`, at);
    if (this.created.has(key)) p.fail(`table "${name}" is created twice`, at);
    this.created.set(key, name);
  }

  /** A staging table created earlier in the dump and not dropped yet. */
  private liveStaging(p: Cursor): string {
    const name = p.name("staging table name");
    if (!this.staging.has(fold(name))) p.fail(`"${name}" is not a staging table this dump created`, p.toks[p.i - 1].at);
    return name;
  }

  private insert(p: Cursor): void {
    p.word("into");
    const nameTok = p.peek();
    const table = fold(p.name("table name"));
    p.op("(");
    const columns: string[] = [];
    for (;;) {
      columns.push(fold(p.name("column name")));
      if (p.isOp(")")) break;
      p.op(",");
    }
    p.i++;
    p.word("values");
    const kind = this.staging.has(table)
      ? "staging"
      : table === "sqlite_sequence"
        ? "sequence"
        : table === "sqlite_stat1"
          ? "stat1"
          : this.created.has(table)
            ? "table"
            : null;
    if (!kind) p.fail(`INSERT into "${nameTok!.v}", which is not a table this dump created`, nameTok!.at);
    const want = { staging: "k,v", sequence: "name,seq", stat1: "tbl,idx,stat", table: null }[kind];
    if (want && columns.join(",") !== want) p.fail(`INSERT into ${nameTok!.v} with columns (${columns.join(", ")}); the dump writes (${want.replace(/,/g, ", ")})`, nameTok!.at);
    if (kind === "stat1" && !this.analyzed) p.fail("rows of sqlite_stat1 before ANALYZE sqlite_master", nameTok!.at);
    for (;;) {
      const run = kind === "table" || kind === "stat1" ? p.fastRows(columns.length) : "none";
      if (run === "stop") {
        if (p.isOp(",")) {
          p.i++;
          continue;
        }
        return p.end();
      }
      p.op("(");
      for (let c = 0; c < columns.length; c++) {
        if (c > 0) p.op(",");
        if (kind === "staging") {
          if (c === 0) p.integer();
          else this.piece(p);
        } else if (kind === "sequence" && c === 0) {
          const t = p.peek();
          if (t?.k !== "string" || !this.created.has(fold(t.v))) p.fail("sqlite_sequence row for a table this dump did not create");
          p.i++;
        } else if (kind === "sequence") p.integer();
        else this.value(p);
      }
      if (!p.isOp(")")) p.fail(`a row with more values than its ${columns.length} column(s), or not a literal`);
      p.i++;
      if (p.isOp(",") && (kind === "table" || kind === "stat1")) {
        p.i++;
        continue;
      }
      return p.end();
    }
  }

  /** UPDATE "<staging>" SET v = v || <piece> WHERE k=<n>; */
  private update(p: Cursor): void {
    this.liveStaging(p);
    p.word("set");
    p.word("v");
    p.op("=");
    p.word("v");
    p.op("||");
    this.piece(p);
    p.word("where");
    p.word("k");
    p.op("=");
    p.integer();
    p.end();
  }

  private delete(p: Cursor): void {
    p.word("from");
    if (p.isWord("sqlite_stat1") && p.isOp(";", 1)) {
      p.i++;
      return p.end();
    }
    if (p.isWord("sqlite_sequence")) {
      p.i++;
      p.word("where");
      p.word("name");
      p.op("=");
      const t = p.peek();
      if (t?.k !== "string" || !this.created.has(fold(t.v))) p.fail("sqlite_sequence row for a table this dump did not create");
      p.i++;
      return p.end();
    }
    this.liveStaging(p);
    p.end();
  }

  /** A piece of a staged value: X'..', CAST(X'..' AS TEXT) or '..' (literals.ts literalPieces). */
  private piece(p: Cursor): void {
    const t = p.peek();
    if (t?.k === "blob" || t?.k === "string") {
      p.i++;
      return;
    }
    p.word("cast");
    p.op("(");
    if (p.peek()?.k !== "blob") p.fail("expected X'…'");
    p.i++;
    p.word("as");
    p.word("text");
    p.op(")");
  }

  /**
   * One cell: NULL, a number (quote()'s forms, -0.0 included), '…', X'…', CAST(X'…' AS TEXT), or
   * a staged value CAST((SELECT v FROM "<staging>" WHERE k=n) || … AS BLOB|TEXT). No functions.
   */
  private value(p: Cursor): void {
    const t = p.peek();
    if (!t) p.fail("expected a value");
    if (t.k === "string" || t.k === "blob" || (t.k === "word" && t.v.toLowerCase() === "null")) {
      p.i++;
      return;
    }
    if (t.k === "op" && t.v === "-") p.i++;
    const n = p.peek();
    if (n?.k === "number" && !/^0[xX]/.test(n.v)) {
      p.i++;
      return;
    }
    if (t.k === "op" && t.v === "-") p.fail("expected a number after -");
    if (!p.isWord("cast")) p.fail(`${p.describe()} is not a literal: a dump's values are literals only (no functions, no expressions)`);
    p.i++;
    p.op("(");
    const inner = p.peek();
    if (inner?.k === "blob" || (inner?.k === "string" && inner.v === "")) {
      p.i++;
    } else {
      for (;;) {
        p.op("(");
        p.word("select");
        p.word("v");
        p.word("from");
        this.liveStaging(p);
        p.word("where");
        p.word("k");
        p.op("=");
        p.integer();
        p.op(")");
        if (!p.isOp("||")) break;
        p.i++;
      }
    }
    p.word("as");
    if (p.isWord("text")) p.i++;
    else if (p.isWord("blob") && inner?.k !== "string") p.i++;
    else p.fail("expected AS TEXT or AS BLOB");
    p.op(")");
  }
}

/** `SELECT 1 WHERE 0 AND (CASE WHEN 0 THEN 0 END ) [AND …];` (splitter.ts splitterSafe). */
function closer(p: Cursor): void {
  const num = (v: string) => {
    const t = p.peek();
    if (t?.k !== "number" || t.v !== v) p.fail(`expected ${v}`);
    p.i++;
  };
  num("1");
  p.word("where");
  num("0");
  do {
    p.word("and");
    p.op("(");
    p.word("case");
    p.word("when");
    num("0");
    p.word("then");
    num("0");
    p.word("end");
    p.op(")");
  } while (!p.isOp(";"));
  p.end();
}

/**
 * The rest of a schema statement (stored by SQLite, so any SQL the source accepted): refused if it
 * names a function that reaches outside the database, or the temp schema (the only other one a
 * -safe sqlite3 has; SQLite itself refuses views and triggers of main that reference it).
 */
function schemaBody(p: Cursor): void {
  const toks = p.rest();
  for (let i = p.i; i < toks.length; i++) {
    const t = toks[i];
    if (t.k === "param") throw new Refusal(`parameter ${t.v} in a schema statement`, t.at);
    if (t.k !== "word" && t.k !== "ident") continue;
    const name = t.v.toLowerCase();
    const next = toks[i + 1];
    if (FORBIDDEN.has(name) || (name.startsWith("shell_") && next?.k === "op" && next.v === "(")) {
      throw new Refusal(`${t.v}: a function that reaches outside the database; no real backup's schema uses it`, t.at);
    }
    if ((name === "temp" || name === "temporary") && next?.k === "op" && next.v === ".") {
      throw new Refusal(`${t.v}.… refers to the temp schema; a dump's schema only refers to its own database`, t.at);
    }
  }
  p.i = toks.length - 1;
  p.end();
}

/**
 * sqlite3 also ends a statement at a line holding only `/` or `go` (Oracle and SQL Server habits)
 * when what came before is complete with a `;` added: what follows would start a new statement,
 * possibly a dot-command. No dump statement has such a line outside its quotes.
 */
function commandTerminator(text: string): void {
  const re = /\n[ \t\f\r]*(?:\/|[gG][oO])(?=[ \t\f\r]*(?:\n|--|\/\*|$))/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const prefix = text.slice(0, m.index);
    if (new StatementSplitter().push(`${prefix};`).length > 0) {
      throw new Refusal(`a line "${m[0].trim()}", which sqlite3 reads as the end of the statement`, m.index + 1);
    }
  }
}

function refusal(stmt: SqlStatement, at: number, reason: string): BackupError {
  const line = stmt.line + countNewlines(stmt.text, at);
  const flat = stmt.text.replace(/\s+/g, " ");
  const shown = flat.length > 120 ? `${flat.slice(0, 117)}…` : flat;
  const near = at > 80 ? ` (near ${JSON.stringify(stmt.text.slice(at, at + 60).replace(/\s+/g, " "))})` : "";
  return new BackupError(
    "INTEGRITY_ERROR",
    `not dump SQL at line ${line}: ${reason}${near}. Statement: ${shown}. ` +
      "The backup holds SQL the backup writer never produces (tampered, or not a d1-backup dump); nothing was run. Do not restore it; report it",
    { details: { check: "statements", line, statement: shown, reason } },
  );
}

function countNewlines(text: string, upTo: number): number {
  let n = 0;
  for (let k = text.indexOf("\n"); k !== -1 && k < upTo; k = text.indexOf("\n", k + 1)) n++;
  return n;
}

/**
 * The whole check over a stream of SQL text: split as sqlite3 splits (statements.ts), each
 * statement checked as it completes, so the SQL is never held whole. A NUL byte is refused outright:
 * sqlite3 reads lines as C strings and would see a different text than this check does.
 */
export class DumpSqlCheck {
  private readonly splitter = new StatementSplitter(1024 * 1024);
  private readonly checker: DumpStatementChecker;
  private line = 1;

  constructor(expectation: DumpExpectation | null) {
    this.checker = new DumpStatementChecker(expectation);
  }

  get statements(): number {
    return this.checker.statements;
  }

  push(text: string): void {
    const nul = text.indexOf("\0");
    if (nul !== -1) {
      const line = this.line + countNewlines(text, nul);
      throw new BackupError("INTEGRITY_ERROR", `not dump SQL at line ${line}: a NUL byte (a dump writes text with NUL as hex). Do not restore it; report it`, {
        details: { check: "statements", line },
      });
    }
    this.line += countNewlines(text, text.length);
    let statements: SqlStatement[];
    try {
      statements = this.splitter.push(text);
    } catch (e) {
      throw notDumpSql(e);
    }
    for (const s of statements) this.checker.check(s);
  }

  end(): void {
    // A dot-command on the last lines has no `;` after it: named as what it is, not as truncation.
    const rest = this.splitter.unfinished();
    if (rest && /^[.#]/.test(rest.text)) this.checker.check(rest);
    try {
      this.splitter.end();
    } catch (e) {
      throw notDumpSql(e);
    }
    this.checker.finish();
  }
}

/** The splitter's own refusals (unterminated quote, runaway statement), as this check's. */
function notDumpSql(e: unknown): unknown {
  if (!(e instanceof BackupError)) return e;
  return new BackupError("INTEGRITY_ERROR", `not dump SQL: ${e.message}. Do not restore it; report it`, { details: { check: "statements" } });
}
