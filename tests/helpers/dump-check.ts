// The restore's SQL check (only dump SQL is ever executed) over a dump a test made: every real
// dump must pass it, so tests that restore with sqlite3 or wrangler directly run it too.
import { expect } from "vitest";
import type { Manifest } from "../../lib/backup";
import { DumpSqlCheck } from "../../lib/sql";

export function expectDumpSqlAccepted(sql: string, manifest: Manifest): void {
  const check = new DumpSqlCheck({
    tables: manifest.tables.map((t) => t.name),
    indexes: manifest.schema.indexes,
    views: manifest.schema.views,
    triggers: manifest.schema.triggers,
  });
  // In pieces, as the restore feeds it: a statement cut anywhere must not matter.
  for (let i = 0; i < sql.length; i += 64 * 1024) check.push(sql.slice(i, i + 64 * 1024));
  check.end();
  expect(check.statements).toBeGreaterThan(0);
}
