// A backup is one state of the database or it is not a backup. Here other "Workers" write while a
// paged backup reads (the binding is wrapped, D1 underneath is real): atomic batches of a new
// client + ticket + comment, a payment whose trigger moves an invoice, and a delete. Any backup
// that comes out must restore (wrangler and sqlite3) to exactly the source as it was after some
// prefix of those batches, each batch whole; when writes never stop the run must fail loudly.
import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backupDatabase, listBackups, type Manifest } from "../../lib/backup";
import { SCHEMA_ONLY_TABLES } from "../../lib/backup/dump";
import { leasedBucket, leasedDb } from "../../lib/backup/interrupted";
import { withBackupLock } from "../../lib/backup/lock";
import { seedDemoData } from "../../lib/seed/seed";
import { canonicalDump, d1File, executeFileLocal, freshPlatform, sqliteJson, tempDir } from "../helpers/local";

let platform: Awaited<ReturnType<typeof freshPlatform>>;
let work: string;

// Tiny pages: every table of the seeded database is read in its own pages, the big ones in several.
const PAGED = { snapshotBudgetBytes: 0, pageBytes: 8192, maxStatementBytes: 4096 };
const at = (s: number) => new Date(Date.UTC(2026, 11, 3, 2, 0, s));

beforeAll(async () => {
  platform = await freshPlatform();
  work = tempDir("consistency");
  await seedDemoData(platform.env.DB, { rows: 3000 });
});

afterAll(async () => {
  await platform?.dispose();
});

/** One portal request's writes, as one atomic batch: parent + child, a trigger-driven payment, a delete. */
function portalWrite(db: D1Database, k: number): D1PreparedStatement[] {
  const client = `consistency-client-${k}`;
  const ticket = 50_000_000 + k;
  return [
    db.prepare("INSERT INTO clients (id, company_name, email) VALUES (?1, ?2, ?3)").bind(client, `Writer ${k} Ltd`, `w${k}@example.com`),
    db.prepare("INSERT INTO tickets (id, client_id, subject) VALUES (?1, ?2, ?3)").bind(ticket, client, `written during backup ${k}`),
    db.prepare("INSERT INTO ticket_comments (id, ticket_id, body) VALUES (?1, ?1, ?2)").bind(ticket, `comment ${k}`),
    // trg_payments_apply moves the invoice's amount_paid in the same transaction.
    db
      .prepare("INSERT INTO payments (invoice_id, amount, method) VALUES ((SELECT id FROM invoices ORDER BY id LIMIT 1 OFFSET ?1), 12.5, 'card')")
      .bind(k % 20),
    db.prepare("DELETE FROM ticket_comments WHERE id = (SELECT min(id) FROM ticket_comments)"),
  ];
}

interface Writer {
  db: D1Database;
  /** The source's canonical dump before any write and after each batch. */
  states: string[];
  writes: number;
}

/**
 * The binding the backup uses; before some of its batches (every page is one) another Worker's
 * batch lands on the real database first. `maxWrites` bounds how many ever land.
 */
let written = 0; // across writers, so every batch inserts new ids

function writingDb(real: D1Database, every: number, maxWrites: number): Writer {
  const writer: Writer = { db: real, states: [canonicalDump(d1File(platform.persistTo))], writes: 0 };
  let calls = 0;
  writer.db = {
    prepare: (sql: string) => real.prepare(sql),
    batch: async (stmts: D1PreparedStatement[]) => {
      calls++;
      if (calls % every === 0 && writer.writes < maxWrites) {
        writer.writes++;
        await real.batch(portalWrite(real, written++));
        writer.states.push(canonicalDump(d1File(platform.persistTo)));
      }
      return real.batch(stmts);
    },
    exec: (sql: string) => real.exec(sql),
    dump: () => real.dump(),
  } as unknown as D1Database;
  return writer;
}

async function downloadSql(manifest: Manifest): Promise<string> {
  const obj = await platform.env.DOCUMENTS.get(manifest.object.key);
  expect(obj).not.toBeNull();
  const file = path.join(work, `${manifest.name}.sql`);
  fs.writeFileSync(file, gunzipSync(Buffer.from(await obj!.arrayBuffer())));
  return file;
}

function restoreBoth(file: string): { sqlite: string; d1: string } {
  const db = path.join(work, `${path.basename(file)}.db`);
  execFileSync("sh", ["-c", 'sqlite3 -bail "$1" < "$2"', "sh", db, file], { stdio: "pipe" });
  const persistTo = tempDir("consistency-restore");
  executeFileLocal(persistTo, file);
  return { sqlite: db, d1: d1File(persistTo) };
}

describe("writes landing between a paged backup's reads", () => {
  it("are detected, the attempt retried, and the backup restores to a state after a whole prefix of the writes", async () => {
    const writer = writingDb(platform.env.DB, 3, 6);
    const { manifest } = await backupDatabase({
      db: writer.db,
      bucket: platform.env.DOCUMENTS,
      now: at(1),
      dump: PAGED,
      consistency: { attempts: 10, backoffMs: 20 },
    });
    expect(writer.writes).toBe(6);
    expect(manifest.snapshot).toMatchObject({ mode: "paged", atomic: true, consistency: "total_changes" });
    expect(manifest.snapshot.reads).toBeGreaterThan(13); // every table paged, the big ones in several pages
    // Writes landed inside the first attempts' windows: those were discarded.
    expect(manifest.snapshot.attempts).toBeGreaterThan(1);

    const file = await downloadSql(manifest);
    const restored = restoreBoth(file);
    for (const db of [restored.sqlite, restored.d1]) {
      const state = writer.states.indexOf(canonicalDump(db));
      expect(state, "restored database equals the source after some prefix of the write batches").toBeGreaterThanOrEqual(0);
      expect(sqliteJson(db, "PRAGMA foreign_key_check;")).toEqual([]);
    }
    // Nothing staged is left from the discarded attempts.
    expect((await platform.env.DOCUMENTS.list({ prefix: "backups/.staging/" })).objects).toEqual([]);
  });

  it("writes that never stop fail the run with DATABASE_BUSY, logged, with nothing left behind", async () => {
    const writer = writingDb(platform.env.DB, 1, Infinity);
    const name = "database-2026-12-03-02-00-02";
    const err = await backupDatabase({
      db: writer.db,
      bucket: platform.env.DOCUMENTS,
      now: at(2),
      dump: PAGED,
      consistency: { attempts: 3, backoffMs: 20 },
    }).catch((e) => e);
    expect(err.code).toBe("DATABASE_BUSY");
    expect(err.status).toBe(503);
    expect(err.message).toMatch(/^writes never stopped during 3 attempts over \d+\.\d s/);

    const rows = await platform.env.DB.prepare("SELECT details FROM activity_log WHERE action = 'database_backup_failed' AND entity_id = ?")
      .bind(`backups/${name}.sql.gz`)
      .all<{ details: string }>();
    expect(rows.results.map((r) => JSON.parse(r.details))).toEqual([
      { trigger: "manual", key: `backups/${name}.sql.gz`, code: "DATABASE_BUSY", reason: err.message },
    ]);
    expect((await platform.env.DOCUMENTS.list({ prefix: `backups/${name}` })).objects).toEqual([]);
    expect((await platform.env.DOCUMENTS.list({ prefix: `backups/.staging/${name}` })).objects).toEqual([]);
    const listing = await listBackups(platform.env.DOCUMENTS);
    expect([...listing.backups, ...listing.incomplete].map((b) => b.name)).not.toContain(name);
  });
});

const WRITTEN =
  "SELECT (SELECT count(*) FROM clients WHERE id LIKE 'consistency-client-%') AS clients, " +
  "(SELECT count(*) FROM tickets WHERE id >= 50000000) AS tickets, (SELECT count(*) FROM ticket_comments) AS comments, " +
  "(SELECT total(amount_paid) FROM invoices) AS paid;";

describe("the run's own lease writes during a paged backup", () => {
  // A 400 ms lease is due for renewal every 100 ms: dozens of renewals land inside the read window.
  const TTL = 400;

  it("ride inside the watched reads: one attempt, the lease kept alive, still exact", async () => {
    const db = platform.env.DB;
    const { manifest, lease } = await withBackupLock({ db, owner: "consistency-lease", ttlMs: TTL }, async (lease) => {
      const started = lease.expiresAt;
      const result = await backupDatabase({
        db: leasedDb(db, lease),
        bucket: leasedBucket(platform.env.DOCUMENTS, lease),
        now: at(10),
        dump: PAGED,
        consistency: { attempts: 1 }, // any write mistaken for a foreign one fails the run
        ownWrites: lease,
      });
      expect(Date.parse(lease.expiresAt)).toBeGreaterThan(Date.parse(started) + TTL); // renewed meanwhile
      return { ...result, lease };
    });
    expect(lease.expiresAt).toBeTruthy();
    expect(manifest.snapshot).toMatchObject({ mode: "paged", consistency: "total_changes", attempts: 1 });
    const restored = restoreBoth(await downloadSql(manifest));
    for (const r of [restored.sqlite, restored.d1]) expect(sqliteJson(r, "PRAGMA foreign_key_check;")).toEqual([]);
  });

  it("do not hide a foreign write: it is still seen and the attempt retried", async () => {
    const writer = writingDb(platform.env.DB, 4, 1);
    const { manifest } = await withBackupLock({ db: platform.env.DB, owner: "consistency-lease-2", ttlMs: TTL }, (lease) =>
      backupDatabase({
        db: leasedDb(writer.db, lease),
        bucket: leasedBucket(platform.env.DOCUMENTS, lease),
        now: at(11),
        dump: PAGED,
        consistency: { attempts: 3, backoffMs: 20 },
        ownWrites: lease,
      }),
    );
    expect(writer.writes).toBe(1);
    expect(manifest.snapshot.attempts).toBe(2);
    const restored = restoreBoth(await downloadSql(manifest));
    // The source's own backup_lock row differs (the lease), so compare what the portal wrote: the
    // one batch is in the backup, whole.
    const source = sqliteJson(d1File(platform.persistTo), WRITTEN);
    for (const r of [restored.sqlite, restored.d1]) expect(sqliteJson(r, WRITTEN)).toEqual(source);
  });

  it("without the window they would be taken for writes (the mechanism is needed)", async () => {
    const db = platform.env.DB;
    const err = await withBackupLock({ db, owner: "consistency-lease-3", ttlMs: TTL }, (lease) =>
      backupDatabase({ db: leasedDb(db, lease), bucket: platform.env.DOCUMENTS, now: at(12), dump: PAGED, consistency: { attempts: 1 } }),
    ).catch((e) => e);
    expect(err.code).toBe("DATABASE_BUSY");
  });
});

describe("operational state", () => {
  it.each([
    { mode: "atomic", dump: {}, second: 3 },
    { mode: "paged", dump: PAGED, second: 4 },
  ])("the backup_lock row held by the run is not dumped ($mode), its table is", async ({ mode, dump, second }) => {
    expect(SCHEMA_ONLY_TABLES.has("backup_lock")).toBe(true);
    const db = platform.env.DB;
    const { manifest } = await withBackupLock({ db, owner: "consistency-test" }, async () => {
      const held = await db.prepare("SELECT count(*) AS n FROM backup_lock").first<{ n: number }>();
      expect(held?.n).toBe(1);
      return backupDatabase({ db, bucket: platform.env.DOCUMENTS, now: at(second), dump });
    });
    expect(manifest.snapshot.mode).toBe(mode);
    expect(manifest.tables.find((t) => t.name === "backup_lock")).toMatchObject({ name: "backup_lock", rows: 0 });
    const file = await downloadSql(manifest);
    const sql = fs.readFileSync(file, "utf8");
    expect(sql).toContain("CREATE TABLE backup_lock");
    expect(sql).not.toMatch(/INSERT INTO "backup_lock"/);
    const restored = restoreBoth(file);
    for (const r of [restored.sqlite, restored.d1]) expect(sqliteJson(r, "SELECT * FROM backup_lock;")).toEqual([]);
  });
});
