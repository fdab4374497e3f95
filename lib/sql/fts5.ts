// What a virtual table is to a dump: FTS5 tables are described from their CREATE VIRTUAL TABLE
// (module, columns, content= option) so each kind can be put back the way SQLite allows; their
// shadow tables are created by that statement and are never dumped as tables.
import { BackupError } from "../errors";

/** How an FTS5 table gets its content back after a restore. */
export type Fts5Kind =
  /** Stores its own copy of the text: re-inserting the rows rebuilds the index. */
  | "regular"
  /** content=<table>: the text lives in another table; 'rebuild' reindexes it. */
  | "external"
  /** content='': only the index exists; documents are rebuilt from its tokens. */
  | "contentless";

export interface Fts5Table {
  name: string;
  sql: string;
  kind: Fts5Kind;
  /** Indexed columns in declaration order (UNINDEXED ones included). */
  columns: string[];
  /** Options (content, content_rowid, tokenize, detail, …), keys lower-case, values unquoted. */
  options: Record<string, string>;
}

/** The tables FTS5's xCreate makes for a table named `name` (SQLite matches them case-insensitively). */
const FTS5_SHADOW_SUFFIXES = ["data", "idx", "content", "docsize", "config"] as const;

/** Module name and raw arguments of a CREATE VIRTUAL TABLE, or null for any other statement. */
export function parseVirtualTable(sql: string): { module: string; args: string[] } | null {
  const m = /^\s*CREATE\s+VIRTUAL\s+TABLE\s+[\s\S]*?\bUSING\s+([A-Za-z0-9_]+)\s*(\(([\s\S]*)\))?\s*$/i.exec(sql);
  if (!m) return null;
  return { module: m[1].toLowerCase(), args: m[3] === undefined ? [] : splitArgs(m[3]) };
}

/** Splits module arguments on commas outside quotes and brackets. */
function splitArgs(text: string): string[] {
  const args: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quote) {
      if (ch === quote) quote = text[i + 1] === quote ? (i++, quote) : null;
    } else if (ch === "'" || ch === '"' || ch === "`") quote = ch;
    else if (ch === "[") quote = "]";
    else if (ch === "(") depth++;
    else if (ch === ")") depth--;
    else if (ch === "," && depth === 0) {
      args.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  args.push(text.slice(start).trim());
  return args.filter((a) => a.length > 0);
}

/** The value of an SQL token as FTS5 reads it: quotes removed, doubled quotes undone. */
function unquote(token: string): string {
  const t = token.trim();
  const q = t[0];
  const close = q === "[" ? "]" : q;
  if ((q === "'" || q === '"' || q === "`" || q === "[") && t.endsWith(close) && t.length >= 2) {
    const inner = t.slice(1, -1);
    return q === "[" ? inner : inner.split(close + close).join(close);
  }
  return t;
}

/** Describes an FTS5 table from its CREATE VIRTUAL TABLE (null: not an FTS5 table). */
export function describeFts5(name: string, sql: string): Fts5Table | null {
  const vt = parseVirtualTable(sql);
  if (!vt || vt.module !== "fts5") return null;
  const columns: string[] = [];
  const options: Record<string, string> = {};
  for (const arg of vt.args) {
    const eq = optionSplit(arg);
    if (eq) options[eq[0].toLowerCase()] = unquote(eq[1]);
    else columns.push(unquote(arg.replace(/\s+UNINDEXED\s*$/i, "")));
  }
  const content = options.content;
  const kind: Fts5Kind = content === undefined ? "regular" : content === "" ? "contentless" : "external";
  return { name, sql, kind, columns, options };
}

/** `key = value` at the top level of one argument (an option), or null (a column). */
function optionSplit(arg: string): [string, string] | null {
  const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*([\s\S]*)$/.exec(arg);
  return m ? [m[1], m[2]] : null;
}

/** Lower-cased names of the shadow tables of every FTS5 table among these sqlite_master rows. */
export function fts5ShadowNames(master: { type: string; name: string; sql: string | null }[]): Set<string> {
  const names = new Set<string>();
  for (const m of master) {
    if (m.type !== "table" || !m.sql || parseVirtualTable(m.sql)?.module !== "fts5") continue;
    for (const s of FTS5_SHADOW_SUFFIXES) names.add(`${m.name}_${s}`.toLowerCase());
  }
  return names;
}

/** One token of a contentless table's index, as fts5vocab's 'instance' table lists it. */
export interface Fts5Instance {
  col: string | null;
  offset: number | null;
  term: string;
}

/**
 * Text per column whose tokens, re-tokenized, are the tokens the index holds at the same offsets:
 * tokens are tokenizer output already (folded), so joined by spaces they come back unchanged;
 * trigram tokens overlap, so the text is the first trigram plus the last character of each next.
 * With detail=none/column the index keeps no offsets (and with none no columns): the terms are
 * written in index order, which answers the same MATCH queries those tables support.
 */
export function contentlessText(table: Fts5Table, instances: Fts5Instance[]): (string | null)[] {
  const trigram = /^\s*trigram\b/i.test(table.options.tokenize ?? "");
  const byCol = new Map<string, Fts5Instance[]>();
  for (const i of instances) {
    const col = i.col ?? table.columns[0];
    if (!table.columns.includes(col)) {
      throw new BackupError("UNSUPPORTED_SCHEMA", `FTS5 table "${table.name}" lists a token in unknown column "${col}"`);
    }
    const list = byCol.get(col) ?? [];
    list.push(i);
    byCol.set(col, list);
  }
  return table.columns.map((c) => {
    const list = byCol.get(c);
    if (!list) return null;
    list.sort((a, b) => (a.offset ?? 0) - (b.offset ?? 0));
    if (!trigram) return list.map((i) => i.term).join(" ");
    const chars = [...list[0].term];
    for (const i of list.slice(1)) chars.push([...i.term].at(-1) ?? "");
    return chars.join("");
  });
}
