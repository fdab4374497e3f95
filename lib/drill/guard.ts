// The drill empties RESTORE_DRILL_DB, so before anything is written it must be sure that binding is
// not the portal's database. A D1 binding does not expose its database id to the Worker (the id is
// in the deploy config, and PRAGMA database_list is not something D1 answers usefully), so the
// identity is proven through the databases themselves:
//   1. the portal (DB) must not hold the drill's marker table;
//   2. RESTORE_DRILL_DB must hold it, or be empty (a database just made with `wrangler d1 create`),
//      in which case the marker is created: a database with tables and no marker is never emptied;
//   3. a fresh random nonce is written into the scratch's marker, and DB must not see it. If DB
//      does, both bindings are one database (only possible when it was empty): the marker is
//      removed again and the drill refuses.
// Same database id in both bindings (a copy-paste in wrangler.toml) fails at 2 (or 3), before any
// drop or replay; the marker table itself is never dropped by the drill and never compared.
import { isBackupError, wrapBindingError } from "../backup";
import { isInternalTable, quoteIdent } from "../sql";

export const DRILL_MARKER_TABLE = "d1b_restore_drill";
const MARKER = quoteIdent(DRILL_MARKER_TABLE);

export class DrillRefused extends Error {}

async function userTables(db: D1Database): Promise<string[]> {
  const r = await db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all<{ name: string }>();
  return r.results.map((t) => t.name).filter((n) => !isInternalTable(n));
}

function randomHex(bytes: number): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Throws DrillRefused (nothing written to DB, nothing dropped) unless `scratch` is proven another database. */
export async function proveScratchDatabase(db: D1Database, scratch: D1Database, now: Date): Promise<void> {
  try {
    const [portal, drill] = await Promise.all([userTables(db), userTables(scratch)]);
    if (portal.includes(DRILL_MARKER_TABLE)) {
      throw new DrillRefused(
        `DB holds the drill's marker table ${DRILL_MARKER_TABLE}: RESTORE_DRILL_DB was (or is) the portal's database; drop that table from the portal only after checking functions/wrangler.toml`,
      );
    }
    if (!drill.includes(DRILL_MARKER_TABLE)) {
      if (drill.length > 0) {
        throw new DrillRefused(
          `RESTORE_DRILL_DB has ${drill.length} table(s) and no drill marker: it is not a scratch database made for the drill ` +
            "(is it the portal's database? both bindings must name different database ids); the drill only empties a database that was empty when it first used it",
        );
      }
      await scratch.prepare(`CREATE TABLE ${MARKER} (id INTEGER PRIMARY KEY CHECK (id = 1), nonce TEXT NOT NULL, at TEXT NOT NULL)`).run();
    }
    const nonce = randomHex(16);
    await scratch.prepare(`INSERT OR REPLACE INTO ${MARKER} (id, nonce, at) VALUES (1, ?, ?)`).bind(nonce, now.toISOString()).run();
    const seen = await db
      .prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?")
      .bind(DRILL_MARKER_TABLE)
      .first<{ n: number }>();
    if ((seen?.n ?? 0) > 0) {
      // Only reachable when DB was empty: leave it as it was.
      await db.prepare(`DROP TABLE IF EXISTS ${MARKER}`).run();
      throw new DrillRefused("RESTORE_DRILL_DB and DB are the same database (the marker written through one was seen through the other)");
    }
  } catch (e) {
    if (e instanceof DrillRefused || isBackupError(e)) throw e;
    throw wrapBindingError("DATABASE_ERROR", "checking that RESTORE_DRILL_DB is not the portal's database failed", e);
  }
}
