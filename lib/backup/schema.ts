// Discovers what to back up from the live schema (never a hard-coded list), so a table added by a
// migration is in the next backup with no code change.
import { BackupError, wrapBindingError } from "../errors";
import { literalExpr, quoteIdent } from "./sql";

export interface TableInfo {
  name: string;
  /** CREATE TABLE statement exactly as SQLite stores it. */
  sql: string;
  withoutRowid: boolean;
  /** Columns written by INSERT (generated columns are excluded: SQLite computes them). */
  insertColumns: string[];
  /** Column list of the INSERT, including an explicit rowid when the table has no alias for it. */
  insertTargets: string[];
  /** Columns that order and page the table (its primary key), when rowidKey is null. */
  keyColumns: string[];
  /** The rowid keyword that keys the table when it has a rowid but no INTEGER PRIMARY KEY alias. */
  rowidKey: string | null;
  autoincrement: boolean;
}

export interface SchemaObject {
  type: "index" | "trigger" | "view";
  name: string;
  sql: string;
}

export interface SchemaInfo {
  /** Tables in an order that satisfies foreign keys (parents first). */
  tables: TableInfo[];
  /** Indexes, triggers and views, created after the data so no trigger fires during restore. */
  objects: SchemaObject[];
  latestMigration: string | null;
  migrationsApplied: number;
}

interface MasterRow {
  type: string;
  name: string;
  tbl_name: string;
  sql: string | null;
}

/** Tables SQLite or Cloudflare own: recreated by the engine, or internal to D1. */
export function isInternalTable(name: string): boolean {
  return name.startsWith("sqlite_") || name.startsWith("_cf_");
}

const ROWID_NAMES = ["rowid", "_rowid_", "oid"];

async function all<T>(db: D1Database, sql: string): Promise<T[]> {
  try {
    return (await db.prepare(sql).all<T>()).results;
  } catch (e) {
    throw wrapBindingError("DATABASE_ERROR", `reading the schema failed (${sql.slice(0, 60)})`, e);
  }
}

export async function readSchema(db: D1Database): Promise<SchemaInfo> {
  const master = await all<MasterRow>(
    db,
    "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid",
  );
  const tableRows = master.filter((r) => r.type === "table" && !isInternalTable(r.name));

  const virtual = tableRows.filter((r) => /^\s*CREATE\s+VIRTUAL\s+TABLE/i.test(r.sql ?? ""));
  if (virtual.length > 0) {
    // Shadow tables of a virtual table cannot be restored through D1 (no writable_schema), and a
    // dump that fails at restore time is worse than no dump: refuse loudly, naming the table.
    const names = virtual.map((v) => `"${v.name}"`).join(", ");
    throw new BackupError(
      "UNSUPPORTED_SCHEMA",
      `virtual table ${names} cannot be backed up as restorable SQL (virtual/FTS tables are not supported); ` +
        "drop it or rebuild it from its source table after restore",
      { details: { tables: virtual.map((v) => v.name) } },
    );
  }

  const tables: TableInfo[] = [];
  const parents = new Map<string, Set<string>>();
  for (const row of tableRows) {
    tables.push(await describeTable(db, row.name, row.sql ?? ""));
    const fks = await all<{ table: string }>(db, `PRAGMA foreign_key_list(${quoteIdent(row.name)})`);
    parents.set(row.name, new Set(fks.map((f) => f.table).filter((t) => t !== row.name)));
  }

  const objects: SchemaObject[] = master
    .filter(
      (r): r is MasterRow & { sql: string } =>
        (r.type === "index" || r.type === "trigger" || r.type === "view") &&
        r.sql !== null && // automatic indexes (UNIQUE/PRIMARY KEY) come back with their table
        !isInternalTable(r.tbl_name),
    )
    .map((r) => ({ type: r.type as SchemaObject["type"], name: r.name, sql: r.sql }));
  // Indexes first, then views, then triggers: a trigger body may refer to a view.
  const rank = { index: 0, view: 1, trigger: 2 } as const;
  objects.sort((a, b) => rank[a.type] - rank[b.type]);

  let latestMigration: string | null = null;
  let migrationsApplied = 0;
  if (tableRows.some((r) => r.name === "d1_migrations")) {
    const rows = await all<{ name: string; n: number }>(
      db,
      "SELECT (SELECT name FROM d1_migrations ORDER BY id DESC LIMIT 1) AS name, (SELECT count(*) FROM d1_migrations) AS n",
    );
    latestMigration = rows[0]?.name ?? null;
    migrationsApplied = rows[0]?.n ?? 0;
  }

  return { tables: orderByForeignKeys(tables, parents), objects, latestMigration, migrationsApplied };
}

async function describeTable(db: D1Database, name: string, sql: string): Promise<TableInfo> {
  const cols = await all<{ name: string; type: string; pk: number; hidden: number }>(
    db,
    `PRAGMA table_xinfo(${quoteIdent(name)})`,
  );
  // hidden: 0 normal, 2/3 generated (virtual/stored). Generated columns are never inserted.
  const insertColumns = cols.filter((c) => c.hidden === 0).map((c) => c.name);
  const pk = cols.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk);
  const names = new Set(cols.map((c) => c.name.toLowerCase()));
  const rowidName = ROWID_NAMES.find((n) => !names.has(n));

  let withoutRowid = true;
  if (rowidName) {
    try {
      await db.prepare(`SELECT ${rowidName} FROM ${quoteIdent(name)} LIMIT 0`).all();
      withoutRowid = false;
    } catch {
      withoutRowid = true; // "no such column": a WITHOUT ROWID table
    }
  }

  let keyColumns: string[] = [];
  let rowidKey: string | null = null;
  let insertTargets = insertColumns.map(quoteIdent);
  if (withoutRowid) {
    if (pk.length === 0) {
      throw new BackupError("UNSUPPORTED_SCHEMA", `table "${name}" has neither a rowid nor a primary key`);
    }
    keyColumns = pk.map((c) => c.name);
  } else if (pk.length === 1 && pk[0].type.toUpperCase() === "INTEGER" && pk[0].hidden === 0) {
    keyColumns = [pk[0].name]; // INTEGER PRIMARY KEY is the rowid itself
  } else if (rowidName) {
    // The rowid is not a column here; write it explicitly so restored rows keep their rowids.
    rowidKey = rowidName;
    insertTargets = [rowidName, ...insertTargets];
  } else {
    throw new BackupError(
      "UNSUPPORTED_SCHEMA",
      `table "${name}" has columns named rowid, _rowid_ and oid, so its rows cannot be addressed`,
    );
  }

  return {
    name,
    sql,
    withoutRowid,
    insertColumns,
    insertTargets,
    keyColumns,
    rowidKey,
    autoincrement: /\bAUTOINCREMENT\b/i.test(sql),
  };
}

/** Parents before children (Kahn's algorithm, stable); cycles keep schema order and rely on deferred FKs. */
export function orderByForeignKeys(tables: TableInfo[], parents: Map<string, Set<string>>): TableInfo[] {
  const byName = new Map(tables.map((t) => [t.name, t]));
  const done = new Set<string>();
  const ordered: TableInfo[] = [];
  let progressed = true;
  while (ordered.length < tables.length && progressed) {
    progressed = false;
    for (const t of tables) {
      if (done.has(t.name)) continue;
      const waiting = [...(parents.get(t.name) ?? [])].some((p) => byName.has(p) && !done.has(p));
      if (!waiting) {
        ordered.push(t);
        done.add(t.name);
        progressed = true;
      }
    }
  }
  for (const t of tables) if (!done.has(t.name)) ordered.push(t);
  return ordered;
}

/**
 * Keyset-paged SELECT returning, per row, the key literals and the whole VALUES tuple, built
 * inside SQLite (one string per row is far cheaper to move out of D1 than one per cell).
 * Keys are carried between pages as SQL literals, never as JS numbers, so 64-bit keys stay exact.
 */
export function rowQuery(table: TableInfo): { keyCount: number; sql: (after: string[] | null, limit: number | null) => string } {
  const keyExprs = table.rowidKey ? [table.rowidKey] : table.keyColumns.map(quoteIdent);
  const keyLits = table.rowidKey ? [`quote(${table.rowidKey})`] : table.keyColumns.map(literalExpr);
  const values = [...(table.rowidKey ? [`quote(${table.rowidKey})`] : []), ...table.insertColumns.map(literalExpr)];
  const tuple = `'(' || ${values.join(" || ',' || ")} || ')'`;
  // Aliases are unusual on purpose: ORDER BY prefers an alias over a column of the same name.
  const list = [...keyLits.map((e, i) => `${e} AS ${keyAlias(i)}`), `${tuple} AS ${TUPLE_ALIAS}`];
  const select = `SELECT ${list.join(", ")} FROM ${quoteIdent(table.name)}`;
  const order = ` ORDER BY ${keyExprs.join(", ")}`;
  const keyTuple = keyExprs.length === 1 ? keyExprs[0] : `(${keyExprs.join(", ")})`;
  return {
    keyCount: keyLits.length,
    sql: (after, limit) => {
      const where = after ? ` WHERE ${keyTuple} > ${after.length === 1 ? after[0] : `(${after.join(", ")})`}` : "";
      return `${select}${where}${order}${limit === null ? "" : ` LIMIT ${limit}`}`;
    },
  };
}

export const keyAlias = (i: number) => `d1b_k${i}`;
export const colAlias = (i: number) => `d1b_c${i}`;
export const TUPLE_ALIAS = "d1b_tuple";

/** The WHERE clause that addresses one row by its key literals (for the UPDATEs of split values). */
export function rowMatch(table: TableInfo, keyLits: string[]): string {
  const keyExprs = table.rowidKey ? [table.rowidKey] : table.keyColumns.map(quoteIdent);
  return keyExprs.map((k, i) => `${k} = ${keyLits[i]}`).join(" AND ");
}
