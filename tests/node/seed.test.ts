// The demo data every other test and the benchmark stand on: it must fill all 13 portal tables
// with valid foreign keys, be byte-for-byte reproducible (tests compare seeded databases), carry
// the awkward shapes a dump can get wrong, and refuse to seed a database twice.
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openLocalPlatform, type LocalPlatform } from "../../lib/local/platform";
import { seedDemoData } from "../../lib/seed/seed";
import { migrateLocal, removeTempDirs, tempDir } from "../helpers/local";

const PORTAL_TABLES = [
  "clients",
  "users",
  "projects",
  "tickets",
  "ticket_comments",
  "documents",
  "invoices",
  "invoice_items",
  "payments",
  "appointments",
  "time_entries",
  "notifications",
  "activity_log",
];
const ROWS = 500;

interface Seeded {
  platform: LocalPlatform;
  tables: Record<string, number>;
  progressCalls: number;
}

/** A freshly migrated local D1 in its own temp directory (wrangler CLI, as a developer would). */
async function migratedPlatform(): Promise<LocalPlatform> {
  const persistTo = tempDir("seed");
  migrateLocal(persistTo);
  return openLocalPlatform({ persistTo });
}

async function seeded(): Promise<Seeded> {
  const platform = await migratedPlatform();
  let progressCalls = 0;
  try {
    // Rest parameters: the test holds whichever progress signature the seeder reports with.
    const result = await seedDemoData(platform.env.DB, { rows: ROWS, onProgress: (..._args: unknown[]) => void progressCalls++ });
    return { platform, tables: result.tables, progressCalls };
  } catch (e) {
    await platform.dispose();
    throw e;
  }
}

async function all<T>(db: D1Database, sql: string): Promise<T[]> {
  return (await db.prepare(sql).all<T>()).results;
}

/**
 * Each portal table as (row count, SHA-256 over every cell with its storage class, in rowid
 * order), plus sqlite_sequence. d1_migrations is left out: it records when migrations ran.
 */
async function contentDigest(db: D1Database): Promise<Record<string, string>> {
  const digest: Record<string, string> = {};
  for (const table of PORTAL_TABLES) {
    const cols = await all<{ name: string }>(db, `PRAGMA table_info("${table}")`);
    const cells = cols.map((c) => `typeof("${c.name}") || ':' || quote("${c.name}")`).join(" || '|' || ");
    const rows = await all<{ r: string }>(db, `SELECT ${cells} AS r FROM "${table}" ORDER BY rowid`);
    const hash = createHash("sha256");
    for (const row of rows) hash.update(row.r).update("\n");
    digest[table] = `${rows.length} ${hash.digest("hex")}`;
  }
  const seq = await all<{ name: string; seq: number }>(db, "SELECT name, seq FROM sqlite_sequence WHERE name <> 'd1_migrations' ORDER BY name");
  digest.sqlite_sequence = JSON.stringify(seq);
  return digest;
}

let first: Seeded;
let second: Seeded;

beforeAll(async () => {
  first = await seeded();
  second = await seeded();
});

afterAll(async () => {
  await first?.platform.dispose();
  await second?.platform.dispose();
  // tests/setup.ts does this too; repeated here so the file cleans up under any vitest config.
  removeTempDirs();
});

describe("seedDemoData", () => {
  it("fills every one of the 13 portal tables and reports what it inserted", async () => {
    const db = first.platform.env.DB;
    const existing = (await all<{ name: string }>(db, "SELECT name FROM sqlite_master WHERE type = 'table'")).map((t) => t.name);
    expect(existing).toEqual(expect.arrayContaining(PORTAL_TABLES));

    for (const table of PORTAL_TABLES) {
      const [{ n }] = await all<{ n: number }>(db, `SELECT count(*) AS n FROM "${table}"`);
      expect(n, table).toBeGreaterThan(0);
      expect(first.tables[table], table).toBe(n);
    }
    const total = PORTAL_TABLES.reduce((sum, t) => sum + first.tables[t], 0);
    expect(total).toBeGreaterThanOrEqual(ROWS);
    expect(total).toBeLessThan(ROWS + PORTAL_TABLES.length); // "about": at most a few minimums over
    // Many-per-parent tables outnumber their parents, as in a real portal.
    expect(first.tables.tickets).toBeGreaterThan(first.tables.clients);
    expect(first.tables.ticket_comments).toBeGreaterThan(first.tables.clients);
    expect(first.progressCalls).toBeGreaterThan(0);
  });

  it("leaves every foreign key valid", async () => {
    const db = first.platform.env.DB;
    expect(await all(db, "PRAGMA foreign_key_check")).toEqual([]);
    // ON DELETE SET NULL / CASCADE columns must point somewhere real, not just be NULL everywhere.
    const [{ n }] = await all<{ n: number }>(db, "SELECT count(*) AS n FROM tickets WHERE assigned_to IS NOT NULL OR project_id IS NOT NULL");
    expect(n).toBeGreaterThan(0);
  });

  it("gives the same database, cell for cell, when run twice with the same options", async () => {
    const a = await contentDigest(first.platform.env.DB);
    const b = await contentDigest(second.platform.env.DB);
    expect(Object.keys(a)).toHaveLength(PORTAL_TABLES.length + 1);
    expect(b).toEqual(a);
    expect(second.tables).toEqual(first.tables);
  });

  it("writes the shapes a backup must carry exactly: NULL vs '' vs empty BLOB, quotes, newlines, unicode, reals", async () => {
    const db = first.platform.env.DB;
    const thumbs = await all<{ kind: string }>(
      db,
      "SELECT DISTINCT CASE WHEN thumbnail IS NULL THEN 'null' WHEN length(thumbnail) = 0 THEN 'empty' ELSE typeof(thumbnail) END AS kind FROM documents",
    );
    expect(thumbs.map((t) => t.kind).sort()).toEqual(["blob", "empty", "null"]);

    const [text] = await all<{ quotes: number; newlines: number; nonAscii: number; emptyStrings: number }>(
      db,
      `SELECT
         (SELECT count(*) FROM ticket_comments WHERE instr(body, '''') > 0) +
           (SELECT count(*) FROM clients WHERE instr(company_name, '''') > 0 OR instr(notes, '''') > 0) AS quotes,
         (SELECT count(*) FROM ticket_comments WHERE instr(body, char(10)) > 0) +
           (SELECT count(*) FROM tickets WHERE instr(description, char(10)) > 0) AS newlines,
         (SELECT count(*) FROM tickets WHERE length(CAST(subject AS BLOB)) > length(subject)) AS nonAscii,
         (SELECT count(*) FROM tickets WHERE description = '') AS emptyStrings`,
    );
    expect(text.quotes).toBeGreaterThan(0);
    expect(text.newlines).toBeGreaterThan(0);
    expect(text.nonAscii).toBeGreaterThan(0); // multi-byte UTF-8 (accents, CJK, emoji)
    expect(text.emptyStrings).toBeGreaterThan(0);

    const [money] = await all<{ reals: number; fractional: number }>(
      db,
      "SELECT count(*) AS reals, sum(amount <> CAST(amount AS INTEGER)) AS fractional FROM invoice_items WHERE typeof(amount) = 'real'",
    );
    expect(money.reals).toBe(first.tables.invoice_items);
    expect(money.fractional).toBeGreaterThan(0);

    const [log] = await all<{ system: number; json: number; bad: number }>(
      db,
      `SELECT sum(user_id IS NULL) AS system, sum(json_valid(details)) AS json,
              sum(created_at NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T*Z') AS bad
         FROM activity_log`,
    );
    expect(log.system).toBeGreaterThan(0); // rows logged by the system (cron, CLI) have no user
    expect(log.json).toBe(first.tables.activity_log);
    expect(log.bad).toBe(0);
  });

  it("refuses to seed a database that already has data, and changes nothing", async () => {
    const db = first.platform.env.DB;
    const before = await contentDigest(db);
    await expect(seedDemoData(db, { rows: ROWS })).rejects.toThrow(/already/i);
    expect(await contentDigest(db)).toEqual(before);
  });
});
