// The checks after a restore: the restored database must hold what the manifest says the backup
// held (every table, row for row), be internally sound (foreign keys, quick_check), and be at the
// schema version the backup was taken at. Any failure fails the restore (non-zero exit).
import type { Manifest } from "../backup";
import { fts5ShadowNames, isInternalTable, isStagingTable, quoteIdent, quoteText } from "../sql";
import type { Query } from "./target";

export interface CheckResult {
  check: string;
  ok: boolean;
  detail: string;
}

export interface TableCount {
  name: string;
  /** Rows the manifest recorded (null: no manifest, or a table the manifest does not list). */
  expected: number | null;
  /** Rows in the restored database (null: the table is missing). */
  actual: number | null;
  ok: boolean;
}

export interface CheckReport {
  ok: boolean;
  checks: CheckResult[];
  tables: TableCount[];
}

/** Row counts of many tables in one query (one round trip, even through wrangler). */
export async function countRows(query: Query, tables: string[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  // SQLite caps a compound SELECT at 500 terms.
  for (let i = 0; i < tables.length; i += 400) {
    const part = tables.slice(i, i + 400);
    const sql = part.map((t) => `SELECT ${quoteText(t)} AS t, count(*) AS n FROM ${quoteIdent(t)}`).join(" UNION ALL ");
    for (const r of await query<{ t: string; n: number }>(sql)) counts.set(r.t, Number(r.n));
  }
  return counts;
}

export async function runChecks(query: Query, manifest: Manifest | null): Promise<CheckReport> {
  const checks: CheckResult[] = [];
  const master = await query<{ type: string; name: string; tbl_name: string; sql: string | null }>(
    "SELECT type, name, tbl_name, sql FROM sqlite_master",
  );
  // FTS5 shadow tables are part of their FTS5 table (counted through it), never backup tables.
  const shadow = fts5ShadowNames(master);
  const tableNames = master
    .filter((m) => m.type === "table" && !isInternalTable(m.name) && !shadow.has(m.name.toLowerCase()))
    .map((m) => m.name);
  // A dump's staging table (see StatementBatcher.stage) is not data: it is dropped before the dump
  // ends, so one left over is a failure of its own, not an extra table. One the backup listed is a user's.
  const listed = (name: string) => manifest?.tables.some((t) => t.name === name) ?? false;
  const leftovers = tableNames.filter((n) => isStagingTable(n) && !listed(n));
  const present = tableNames.filter((n) => !leftovers.includes(n));
  const counts = await countRows(query, present);

  // Row counts, table by table.
  const tables: TableCount[] = [];
  if (manifest) {
    for (const t of manifest.tables) {
      const actual = counts.has(t.name) ? counts.get(t.name)! : null;
      tables.push({ name: t.name, expected: t.rows, actual, ok: actual === t.rows });
    }
    // A table the backup did not have: the target was not empty, or the restore added something.
    for (const extra of present.filter((p) => !manifest.tables.some((t) => t.name === p))) {
      tables.push({ name: extra, expected: null, actual: counts.get(extra) ?? 0, ok: false });
    }
    const bad = tables.filter((t) => !t.ok);
    const restoredRows = tables.reduce((n, t) => n + (t.actual ?? 0), 0);
    checks.push({
      check: "row-counts",
      ok: bad.length === 0,
      detail:
        bad.length === 0
          ? `${tables.length} tables, ${restoredRows} rows: all equal to the manifest`
          : bad
              .map((t) =>
                t.actual === null
                  ? `${t.name}: missing (manifest: ${t.expected} rows)`
                  : t.expected === null
                    ? `${t.name}: not in the manifest (${t.actual} rows)`
                    : `${t.name}: ${t.actual} rows, manifest says ${t.expected}`,
              )
              .join("; "),
    });
  } else {
    for (const name of present) tables.push({ name, expected: null, actual: counts.get(name) ?? 0, ok: true });
    checks.push({ check: "row-counts", ok: true, detail: "not compared: no manifest (--no-manifest)" });
  }

  // Schema objects: indexes, views and triggers come after the data in the dump, so a dump cut
  // short (or a restore that stopped early) shows here even when the row counts are right.
  if (manifest) {
    const objects = master.filter((m) => m.sql !== null && !isInternalTable(m.tbl_name) && !isInternalTable(m.name));
    const n = (type: string) => objects.filter((o) => o.type === type).length;
    const got = { indexes: n("index"), views: n("view"), triggers: n("trigger") };
    const want = { indexes: manifest.schema.indexes, views: manifest.schema.views, triggers: manifest.schema.triggers };
    const ok = got.indexes === want.indexes && got.views === want.views && got.triggers === want.triggers;
    checks.push({
      check: "schema-objects",
      ok,
      detail: ok
        ? `${got.indexes} indexes, ${got.views} views, ${got.triggers} triggers, as in the manifest`
        : `restored ${got.indexes} indexes, ${got.views} views, ${got.triggers} triggers; manifest says ${want.indexes}, ${want.views}, ${want.triggers}`,
    });
  }

  checks.push({
    check: "staging-dropped",
    ok: leftovers.length === 0,
    detail: leftovers.length === 0 ? "no staging table left behind" : `staging table(s) left behind, the dump did not run to its end: ${leftovers.join(", ")}`,
  });

  const fk = await query<{ table: string; rowid: number | null; parent: string; fkid: number }>("PRAGMA foreign_key_check");
  checks.push({
    check: "foreign-key-check",
    ok: fk.length === 0,
    detail:
      fk.length === 0
        ? "no foreign key violations"
        : `${fk.length} violation(s), e.g. ${fk
            .slice(0, 5)
            .map((v) => `${v.table} rowid ${v.rowid} -> ${v.parent}`)
            .join(", ")}`,
  });

  const qc = await query<Record<string, string>>("PRAGMA quick_check");
  const qcValues = qc.map((r) => Object.values(r)[0]);
  const qcOk = qcValues.length === 1 && qcValues[0] === "ok";
  checks.push({ check: "quick-check", ok: qcOk, detail: qcOk ? "ok" : qcValues.slice(0, 5).join("; ") });

  if (manifest) {
    const expected = manifest.schema.latestMigration;
    let actual: string | null = null;
    if (present.includes("d1_migrations")) {
      actual = (await query<{ name: string }>("SELECT name FROM d1_migrations ORDER BY id DESC LIMIT 1"))[0]?.name ?? null;
    }
    checks.push({
      check: "latest-migration",
      ok: actual === expected,
      detail:
        actual === expected
          ? `${actual ?? "(no migrations)"}, as in the manifest`
          : `restored database is at ${actual ?? "(no d1_migrations)"}, manifest says ${expected ?? "(no migrations)"}`,
    });
  }

  return { ok: checks.every((c) => c.ok), checks, tables };
}
