// After the replay: the restored database against the backup's manifest. The rows are re-read by
// the dump itself (dumpDatabase over the scratch database, output discarded), so each table's
// checksum is computed by the same code, over the same quote()-built tuples, as at backup time.
import { DEFAULT_DUMP_OPTIONS, dumpDatabase, readSchema, wrapBindingError, type DumpStats, type Manifest } from "../backup";
import { DRILL_MARKER_TABLE } from "./guard";

export interface Difference {
  /** The table it concerns, when it concerns one. */
  table?: string;
  what: string;
  expected: unknown;
  actual: unknown;
}

export interface TableResult {
  name: string;
  rows: number;
  /** Rows and checksum as the manifest says; "rows" when the manifest has no checksum (older backups). */
  checked: "rows+checksum" | "rows";
  ok: boolean;
}

export interface CheckResult {
  differences: Difference[];
  tables: TableResult[];
  ms: number;
}

export async function checkRestored(scratch: D1Database, manifest: Manifest, replayedStatements: number): Promise<CheckResult> {
  const started = Date.now();
  const differences: Difference[] = [];
  const differ = (what: string, expected: unknown, actual: unknown, table?: string) => {
    if (JSON.stringify(expected) !== JSON.stringify(actual)) differences.push({ ...(table ? { table } : {}), what, expected, actual });
  };

  // Not compared with manifest.sql.statements: the dump counts what it emits, and a few emitted
  // pieces hold two statements (splitterSafe's no-op after a lower-case `end`); the SQL's sha256
  // (checked by the caller) already proves the replayed text is the backup's.
  void replayedStatements;

  const schema = await readSchema(scratch);
  // The marker is the drill's own, never part of a backup.
  schema.tables = schema.tables.filter((t) => t.name !== DRILL_MARKER_TABLE);
  const stats: DumpStats = { tables: [], statements: 0, snapshot: { mode: "paged", atomic: false, databaseBytes: null, budgetBytes: 0 } };
  for await (const chunk of dumpDatabase(scratch, schema, { ...DEFAULT_DUMP_OPTIONS, header: [] }, stats)) void chunk;

  differ("latest migration", manifest.schema.latestMigration, schema.latestMigration);
  differ("migrations applied", manifest.schema.migrationsApplied, schema.migrationsApplied);
  differ("tables", manifest.schema.tables, stats.tables.length);
  for (const type of ["index", "trigger", "view"] as const) {
    const key = `${type === "index" ? "indexes" : `${type}s`}` as "indexes" | "triggers" | "views";
    differ(key, manifest.schema[key], schema.objects.filter((o) => o.type === type).length);
  }

  const restored = new Map(stats.tables.map((t) => [t.name, t]));
  const tables: TableResult[] = [];
  for (const t of manifest.tables) {
    const r = restored.get(t.name);
    if (!r) {
      differences.push({ table: t.name, what: "table missing", expected: t.rows, actual: null });
      tables.push({ name: t.name, rows: 0, checked: t.checksum ? "rows+checksum" : "rows", ok: false });
      continue;
    }
    const before = differences.length;
    differ("rows", t.rows, r.rows, t.name);
    if (t.checksum) differ("checksum", t.checksum, r.checksum ?? null, t.name);
    tables.push({ name: t.name, rows: r.rows, checked: t.checksum ? "rows+checksum" : "rows", ok: differences.length === before });
  }
  for (const r of stats.tables) {
    if (!manifest.tables.some((t) => t.name === r.name)) differences.push({ table: r.name, what: "table not in the backup", expected: null, actual: r.rows });
  }
  if (manifest.sequences) differ("sqlite_sequence", manifest.sequences, stats.sequences ?? []);

  try {
    const [fk, quick] = await scratch.batch<Record<string, unknown>>([scratch.prepare("PRAGMA foreign_key_check"), scratch.prepare("PRAGMA quick_check")]);
    for (const v of fk.results.slice(0, 10)) {
      differences.push({ table: String(v.table), what: "foreign_key_check", expected: "no violation", actual: `rowid ${String(v.rowid)} -> ${String(v.parent)}` });
    }
    const quickRows = quick.results.map((r) => String(Object.values(r)[0]));
    differ("quick_check", ["ok"], quickRows);
  } catch (e) {
    throw wrapBindingError("DATABASE_ERROR", "PRAGMA foreign_key_check / quick_check on RESTORE_DRILL_DB failed", e);
  }
  return { differences, tables, ms: Date.now() - started };
}

/** One line naming what differed, for the activity log, alerts and the dashboard. */
export function describeDifferences(d: Difference[]): string {
  const parts = d.slice(0, 5).map((x) => `${x.table ? `table "${x.table}": ` : ""}${x.what} ${JSON.stringify(x.expected)} expected, ${JSON.stringify(x.actual)} restored`);
  return parts.join("; ") + (d.length > 5 ? `; and ${d.length - 5} more` : "");
}
