// Discovers what to back up from the live schema (never a hard-coded list), so a table added by a
// migration is in the next backup with no code change.
import { BackupError, wrapBindingError } from "../errors";
import { describeTable, freeRowidName, isInternalTable, orderByForeignKeys, quoteIdent, type ColumnRow, type TableInfo } from "../sql";

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
    tables.push(await readTable(db, row.name, row.sql ?? ""));
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

/** Reads what describeTable needs through the binding; the description itself is lib/sql's. */
async function readTable(db: D1Database, name: string, sql: string): Promise<TableInfo> {
  const columns = await all<ColumnRow>(db, `PRAGMA table_xinfo(${quoteIdent(name)})`);
  const rowidName = freeRowidName(columns);
  let withoutRowid = true;
  if (rowidName) {
    try {
      await db.prepare(`SELECT ${rowidName} FROM ${quoteIdent(name)} LIMIT 0`).all();
      withoutRowid = false;
    } catch {
      withoutRowid = true; // "no such column": a WITHOUT ROWID table
    }
  }
  return describeTable({ name, sql, columns, withoutRowid });
}
