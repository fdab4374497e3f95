// Discovers what to back up from the live schema (never a hard-coded list), so a table added by a
// migration is in the next backup with no code change.
import { BackupError, wrapBindingError } from "../errors";
import {
  describeFts5,
  describeTable,
  freeRowidName,
  fts5ShadowNames,
  isInternalTable,
  orderByForeignKeys,
  parseVirtualTable,
  quoteIdent,
  type ColumnRow,
  type Fts5Table,
  type TableInfo,
} from "../sql";

export interface SchemaObject {
  type: "index" | "trigger" | "view";
  name: string;
  sql: string;
}

/** An FTS5 table and the options it was given with `INSERT INTO t(t, rank) VALUES(k, v)`. */
export interface Fts5Info {
  table: Fts5Table;
  /** Its %_config rows but 'version' (written by CREATE VIRTUAL TABLE), as SQL literals. */
  config: { k: string; v: string }[];
}

export interface SchemaInfo {
  /** Tables whose rows are read and inserted, parents first (regular FTS5 tables among them). */
  tables: TableInfo[];
  /** Every FTS5 table; external-content and contentless ones are not in `tables`. */
  fts: Fts5Info[];
  /** sqlite_stat1 rows as VALUES tuples (empty: never analyzed), so query plans come back too. */
  stat1: string[];
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
  // Shadow tables belong to their FTS5 table: CREATE VIRTUAL TABLE makes them, D1 refuses writes to them.
  const shadow = fts5ShadowNames(master);
  const tableRows = master.filter((r) => r.type === "table" && !isInternalTable(r.name) && !shadow.has(r.name.toLowerCase()));

  const virtual = tableRows.filter((r) => /^\s*CREATE\s+VIRTUAL\s+TABLE/i.test(r.sql ?? ""));
  const unsupported = virtual.filter((v) => !describeFts5(v.name, v.sql ?? ""));
  if (unsupported.length > 0) {
    // Only FTS5 is known to come back through D1; any other module's shadow tables are unwritable
    // there, and a dump that fails at restore time is worse than no dump: refuse, naming the table.
    const names = unsupported.map((v) => `"${v.name}" (${parseVirtualTable(v.sql ?? "")?.module ?? "unknown module"})`).join(", ");
    throw new BackupError(
      "UNSUPPORTED_SCHEMA",
      `virtual table ${names} cannot be backed up as restorable SQL (only FTS5 virtual tables are supported); ` +
        "drop it or rebuild it from its source table after restore",
      { details: { tables: unsupported.map((v) => v.name) } },
    );
  }
  const fts: Fts5Info[] = [];
  for (const v of virtual) {
    const table = describeFts5(v.name, v.sql ?? "")!;
    if (table.kind === "external") {
      const source = table.options.content.toLowerCase();
      if (!master.some((m) => (m.type === "table" || m.type === "view") && m.name.toLowerCase() === source)) {
        throw new BackupError(
          "UNSUPPORTED_SCHEMA",
          `FTS5 table "${v.name}" takes its content from "${table.options.content}", which does not exist, so it cannot be rebuilt after restore`,
          { details: { tables: [v.name] } },
        );
      }
    }
    const config = await all<{ k: string; v: string }>(
      db,
      `SELECT quote(k) AS k, quote(v) AS v FROM ${quoteIdent(`${v.name}_config`)} WHERE k IS NOT 'version' ORDER BY k`,
    );
    fts.push({ table, config });
  }
  const rowsRead = (r: MasterRow) => !virtual.includes(r) || fts.some((f) => f.table.name === r.name && f.table.kind === "regular");

  const tables: TableInfo[] = [];
  const parents = new Map<string, Set<string>>();
  for (const row of tableRows.filter(rowsRead)) {
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

  // Restored exactly rather than recomputed: the planner then chooses the plans production had.
  const stat1 = master.some((r) => r.name === "sqlite_stat1")
    ? (
        await all<{ t: string }>(
          db,
          "SELECT '(' || quote(tbl) || ',' || quote(idx) || ',' || quote(stat) || ')' AS t FROM sqlite_stat1 " +
            "WHERE tbl NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY tbl, idx",
        )
      ).map((r) => r.t)
    : [];

  return { tables: orderByForeignKeys(tables, parents), fts, stat1, objects, latestMigration, migrationsApplied };
}

/** Tables a dump covers: those whose rows are read, plus FTS5 tables filled another way. */
export function dumpedTableCount(schema: SchemaInfo): number {
  return schema.tables.length + schema.fts.filter((f) => f.table.kind !== "regular").length;
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
  const indexes = await all<{ origin: string }>(db, `PRAGMA index_list(${quoteIdent(name)})`);
  return describeTable({ name, sql, columns, withoutRowid, primaryKeyIndexed: indexes.some((i) => i.origin === "pk") });
}
