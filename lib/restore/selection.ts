// Which rows a put-back writes. The selection is computed once, in the scratch SQLite copy of the
// backup, into key tables of our own (d1b_sel_*: the keys of the rows to put back whole;
// d1b_link_*: rows whose ON DELETE SET NULL link is to be set back), so the file writer and the
// cell-by-cell comparison after --apply read exactly the same rows, and a --where typed by a
// person is evaluated once, in sqlite3's safe mode.
import { BackupError } from "../backup";
import { quoteIdent, quoteText, type TableInfo } from "../sql";
import { sqliteQuery } from "./sqlite";

/** A --where, given for one table ("tickets:id = 42"), or bare (only with exactly one --table). */
export interface TableWhere {
  table: string;
  where: string;
}

/**
 * Rejects a --where with a `;` outside quotes: it is pasted into a SELECT on the scratch copy and
 * must stay one expression (sqlite3 would run a second statement).
 */
function checkWhere(where: string): void {
  let quote: string | null = null;
  for (let i = 0; i < where.length; i++) {
    const ch = where[i];
    if (quote) {
      if (ch === quote) quote = where[i + 1] === quote ? (i++, quote) : null;
    } else if (ch === "'" || ch === '"' || ch === "`" || ch === "[") quote = ch === "[" ? "]" : ch;
    else if (ch === ";") throw new BackupError("INVALID_INPUT", `--where must be one SQL expression, without ";": ${where}`);
    else if (ch === "-" && where[i + 1] === "-") throw new BackupError("INVALID_INPUT", `--where must not contain a -- comment: ${where}`);
  }
}

// A table prefix: a plain name or a "quoted" one, then ':' (not '::', and ':name' is a bind
// parameter, which needs no space before it to be one, so `a :b` is never read as a prefix).
const PREFIX = /^\s*("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*):(?!:)/;

/**
 * Pairs every --where with its table. `tables:expr` names its table, which must be one of the
 * --table ones; a bare expression keeps its old meaning only when there is exactly one --table
 * (with several, which table it is for is a guess this tool does not make). Argument mistakes
 * (exit 2), checked before anything is downloaded.
 */
export function parseWheres(tables: string[], wheres: string[]): TableWhere[] {
  const out: TableWhere[] = [];
  const unique = [...new Set(tables)];
  for (const raw of wheres) {
    const m = PREFIX.exec(raw);
    let table: string;
    let where: string;
    if (m && (unique.includes(unquote(m[1])) || !m[1].startsWith('"'))) {
      table = unquote(m[1]);
      where = raw.slice(m[0].length).trim();
      if (!unique.includes(table)) {
        throw new BackupError("INVALID_INPUT", `--where "${raw}" is for table ${table}, which is not a --table (add --table ${table})`);
      }
    } else {
      if (unique.length !== 1) {
        throw new BackupError(
          "INVALID_INPUT",
          `--where "${raw}" does not say its table and there are ${unique.length} --table: prefix it, e.g. --where "${unique[0] ?? "tickets"}:${raw.trim()}"`,
        );
      }
      table = unique[0];
      where = raw.trim();
    }
    if (!where) throw new BackupError("INVALID_INPUT", `--where "${raw}" has no expression after the table`);
    checkWhere(where);
    if (out.some((w) => w.table === table)) {
      throw new BackupError("INVALID_INPUT", `two --where for table ${table}: combine them in one with AND / OR`);
    }
    out.push({ table, where });
  }
  return out;
}

function unquote(name: string): string {
  return name.startsWith('"') ? name.slice(1, -1).replace(/""/g, '"') : name;
}

/** One foreign key of the backup's schema (PRAGMA foreign_key_list, grouped by id). */
export interface ForeignKey {
  child: string;
  id: number;
  parent: string;
  from: string[];
  /** The parent's columns (its primary key when the schema names none). */
  to: string[];
  onDelete: string;
}

/** A SET NULL (or SET DEFAULT) link of rows that still exist, to be set back to the backup's value. */
export interface LinkRestore {
  fk: ForeignKey;
  /** d1b_link_* table of the child's keys. */
  keys: string;
  rows: number;
}

export interface Selection {
  /** Table -> its d1b_sel_* key table (keys of rows put back whole) and row count. */
  rows: Map<string, { keys: string; rows: number }>;
  links: LinkRestore[];
}

/** The key of a put-back table: its primary key columns, or the rowid (see KeyBy "primary-key"). */
export function keyColumnsOf(t: TableInfo): string[] {
  return t.rowidKey ? [t.rowidKey] : t.keyColumns;
}

const k = (i: number) => `k${i}`;
const kList = (n: number) => Array.from({ length: n }, (_, i) => k(i)).join(", ");
/**
 * `key IN (SELECT k0.. FROM keys)`, with row values for composite keys; `alias` qualifies the key,
 * `schema` the key table (when the scratch copy is ATTACHed).
 */
export function inKeys(t: TableInfo, keysTable: string, alias = "", schema = ""): string {
  const cols = keyColumnsOf(t).map((c) => `${alias}${c === t.rowidKey ? c : quoteIdent(c)}`);
  const lhs = cols.length === 1 ? cols[0] : `(${cols.join(", ")})`;
  return `${lhs} IN (SELECT ${kList(cols.length)} FROM ${schema}${quoteIdent(keysTable)})`;
}

async function foreignKeys(scratch: string, tables: TableInfo[]): Promise<ForeignKey[]> {
  const byName = new Map(tables.map((t) => [t.name, t]));
  const rows = await sqliteQuery<{ child: string; id: number; seq: number; parent: string; from: string; to: string | null; on_delete: string }>(
    scratch,
    `SELECT m.name AS child, f.id, f.seq, f."table" AS parent, f."from", f."to", f.on_delete FROM sqlite_master m ` +
      `JOIN pragma_foreign_key_list(m.name) f WHERE m.type = 'table' ORDER BY m.name, f.id, f.seq`,
  );
  const fks = new Map<string, ForeignKey>();
  for (const r of rows) {
    const id = `${r.child}\u0000${r.id}`;
    const fk = fks.get(id) ?? { child: r.child, id: r.id, parent: r.parent, from: [], to: [], onDelete: r.on_delete.toUpperCase() };
    fk.from.push(r.from);
    if (r.to !== null) fk.to.push(r.to);
    fks.set(id, fk);
  }
  const out: ForeignKey[] = [];
  for (const fk of fks.values()) {
    const parent = byName.get(fk.parent);
    if (!parent || !byName.has(fk.child)) continue; // a dangling reference: nothing to follow
    if (fk.to.length === 0) fk.to = parent.keyColumns.length === fk.from.length ? parent.keyColumns : [];
    if (fk.to.length !== fk.from.length) continue;
    out.push(fk);
  }
  return out;
}

/** Rows of `fk.child` whose link points at a selected row of `fk.parent`. */
function referencing(fk: ForeignKey, child: TableInfo, parent: TableInfo, parentKeys: string): string {
  const keys = keyColumnsOf(child).map((c) => (c === child.rowidKey ? `c.${c}` : `c.${quoteIdent(c)}`));
  const on = fk.from.map((f, i) => `c.${quoteIdent(f)} = p.${quoteIdent(fk.to[i])}`).join(" AND ");
  return `SELECT ${keys.join(", ")} FROM ${quoteIdent(child.name)} c JOIN ${quoteIdent(parent.name)} p ON ${on} WHERE ${inKeys(parent, parentKeys, "p.")}`;
}

const SET_LINK = new Set(["SET NULL", "SET DEFAULT"]);

/**
 * Fills the key tables in the scratch copy: rows matching each table's --where; with `cascade`,
 * then every row that referenced a selected row through a foreign key, recursively. Children by
 * CASCADE (deleted with their parent), RESTRICT and NO ACTION (which had to be deleted before it)
 * are put back whole and followed further; children by SET NULL / SET DEFAULT still exist in the
 * live database with the link cleared, so only the link is set back (and not followed: their own
 * children were never touched by the delete).
 */
export async function selectRows(
  scratch: string,
  tables: TableInfo[],
  wanted: string[],
  wheres: TableWhere[],
  cascade: boolean,
  taken: string[],
): Promise<Selection> {
  const tag = uniqueTag(taken);
  const byName = new Map(tables.map((t) => [t.name, t]));
  const fks = cascade ? await foreignKeys(scratch, tables) : [];
  const selected = new Set(wanted);
  // Every table that can receive rows through the cascade gets a key table.
  if (cascade) {
    let grew = true;
    while (grew) {
      grew = false;
      for (const fk of fks) {
        if (!SET_LINK.has(fk.onDelete) && selected.has(fk.parent) && !selected.has(fk.child)) {
          selected.add(fk.child);
          grew = true;
        }
      }
    }
  }
  const keysOf = new Map<string, string>();
  const ddl: string[] = [];
  [...selected].forEach((name, i) => {
    const t = byName.get(name)!;
    const keys = `d1b_sel_${tag}_${i}`;
    keysOf.set(name, keys);
    const n = keyColumnsOf(t).length;
    // No column types: no affinity, so every key keeps its storage class exactly.
    ddl.push(`CREATE TABLE ${quoteIdent(keys)} (${kList(n)}, PRIMARY KEY (${kList(n)})) WITHOUT ROWID;`);
  });
  await sqliteQuery(scratch, ddl.join("\n"), { readonly: false });

  // The --where of each table, in safe mode like every sqlite3 here: it is text typed by a person.
  for (const name of wanted) {
    const t = byName.get(name)!;
    const w = wheres.find((x) => x.table === name);
    const keys = keyColumnsOf(t).map((c) => (c === t.rowidKey ? c : quoteIdent(c)));
    const sql = `INSERT OR IGNORE INTO ${quoteIdent(keysOf.get(name)!)} SELECT ${keys.join(", ")} FROM ${quoteIdent(name)}${w ? ` WHERE (${w.where})` : ""};`;
    try {
      await sqliteQuery(scratch, sql, { readonly: false });
    } catch (e) {
      const shown = w ? w.where : "(all rows)";
      throw new BackupError("INVALID_INPUT", `--where "${shown}" does not work on table "${name}": ${(e as Error).message.replace(/^.*failed: /, "")}`);
    }
  }

  if (cascade) {
    const follow = fks.filter((fk) => !SET_LINK.has(fk.onDelete) && keysOf.has(fk.parent));
    // Until nothing new is found: each round adds the children of what the last one added.
    for (;;) {
      const script = follow.map(
        (fk) => `INSERT OR IGNORE INTO ${quoteIdent(keysOf.get(fk.child)!)} ${referencing(fk, byName.get(fk.child)!, byName.get(fk.parent)!, keysOf.get(fk.parent)!)};`,
      );
      const [r] = await sqliteQuery<{ n: number }>(scratch, `${script.join("\n")}\nSELECT total_changes() AS n;`, { readonly: false });
      if (!r || r.n === 0) break;
    }
  }

  const links: LinkRestore[] = [];
  if (cascade) {
    const ddl2: string[] = [];
    const fill: string[] = [];
    fks
      .filter((fk) => SET_LINK.has(fk.onDelete) && keysOf.has(fk.parent))
      .forEach((fk, i) => {
        const child = byName.get(fk.child)!;
        const keys = `d1b_link_${tag}_${i}`;
        const n = keyColumnsOf(child).length;
        ddl2.push(`CREATE TABLE ${quoteIdent(keys)} (${kList(n)}, PRIMARY KEY (${kList(n)})) WITHOUT ROWID;`);
        fill.push(`INSERT OR IGNORE INTO ${quoteIdent(keys)} ${referencing(fk, child, byName.get(fk.parent)!, keysOf.get(fk.parent)!)};`);
        links.push({ fk, keys, rows: 0 });
      });
    if (links.length > 0) await sqliteQuery(scratch, [...ddl2, ...fill].join("\n"), { readonly: false });
  }

  const counts = [
    ...[...keysOf.entries()].map(([, keys]) => `SELECT ${quoteText(keys)} AS t, count(*) AS n FROM ${quoteIdent(keys)}`),
    ...links.map((l) => `SELECT ${quoteText(l.keys)} AS t, count(*) AS n FROM ${quoteIdent(l.keys)}`),
  ];
  const n = new Map((await sqliteQuery<{ t: string; n: number }>(scratch, `${counts.join(" UNION ALL ")};`)).map((r) => [r.t, r.n]));
  for (const l of links) l.rows = n.get(l.keys) ?? 0;
  const rows = new Map([...keysOf.entries()].map(([name, keys]) => [name, { keys, rows: n.get(keys) ?? 0 }]));
  return { rows, links: links.filter((l) => l.rows > 0) };
}

function uniqueTag(taken: string[]): string {
  const lower = taken.map((t) => t.toLowerCase());
  for (;;) {
    const tag = Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) => b.toString(16).padStart(2, "0")).join("");
    if (!lower.some((t) => t.includes(tag))) return tag;
  }
}
