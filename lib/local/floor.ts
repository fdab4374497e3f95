// The benchmark's D1 read floor: every row of every table read through the D1 binding and nothing
// done with it, with `SELECT *` (whole tables or in keyset pages by rowid, as a dump reads) or with
// our own read queries. Used by worker.ts, with D1 in the same workerd and in another (d1-host.ts).
import { keyAlias, quoteIdent, rowQuery, type TableInfo } from "../sql";

export const FLOOR_PAGE_ROWS = 10_000;

export async function readEveryRow(db: D1Database, tables: TableInfo[], how: "whole" | "paged"): Promise<void> {
  for (const table of tables) {
    if (how === "whole" || !table.rowidKey) {
      await db.prepare(`SELECT * FROM ${quoteIdent(table.name)}`).raw();
      continue;
    }
    const sql = `SELECT ${table.rowidKey} AS d1b_r, * FROM ${quoteIdent(table.name)} WHERE ${table.rowidKey} > ?1 ORDER BY ${table.rowidKey} LIMIT ${FLOOR_PAGE_ROWS}`;
    for (let after = Number.MIN_SAFE_INTEGER; ; ) {
      const rows = await db.prepare(sql).bind(after).raw();
      if (rows.length < FLOOR_PAGE_ROWS) break;
      after = rows[rows.length - 1][0] as number;
    }
  }
}

/** Our own read queries (exact literals built inside SQLite) in keyset pages, nothing done with the rows. */
export async function readOurQueries(db: D1Database, tables: TableInfo[]): Promise<void> {
  for (const table of tables) {
    const q = rowQuery(table);
    for (let after: string[] | null = null; ; ) {
      const rows: Record<string, string>[] = (await db.prepare(q.sql(after, FLOOR_PAGE_ROWS)).all<Record<string, string>>()).results;
      if (rows.length < FLOOR_PAGE_ROWS) break;
      const last: Record<string, string> = rows[rows.length - 1];
      after = Array.from({ length: q.keyCount }, (_, i) => String(last[keyAlias(i)]));
    }
  }
}

/** The best of `n` runs of `read`, in ms: one read of a whole table makes a garbage-heavy result whose time varies ±30 %. */
export async function bestOf(n: number, read: () => Promise<void>): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < n; i++) {
    const t0 = Date.now();
    await read();
    best = Math.min(best, Date.now() - t0);
  }
  return best;
}
