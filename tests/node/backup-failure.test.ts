// A failure half way must leave nothing that passes for a backup: no manifest, nothing listed as
// complete, the multipart upload aborted, and a database_backup_failed row saying why.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backupDatabase, BackupError, listBackups } from "../../lib/backup";
import { seedDemoData } from "../../lib/seed/seed";
import { faultyBucket, faultyDb } from "../helpers/faults";
import { d1File, freshPlatform, sqlite } from "../helpers/local";

let platform: Awaited<ReturnType<typeof freshPlatform>>;

beforeAll(async () => {
  platform = await freshPlatform();
  await seedDemoData(platform.env.DB, { rows: 300 });
  // Incompressible data so the gzip stream spans more than one 5 MiB part.
  await platform.env.DB.exec("CREATE TABLE attachments_raw (id INTEGER PRIMARY KEY, data BLOB)");
  for (let i = 0; i < 7; i++) {
    await platform.env.DB.prepare("INSERT INTO attachments_raw (data) VALUES (randomblob(1000000))").run();
  }
});

afterAll(async () => {
  await platform?.dispose();
});

const at = (s: number) => new Date(Date.UTC(2026, 10, 20, 2, 0, s));

async function keysUnder(prefix: string): Promise<string[]> {
  return (await platform.env.DOCUMENTS.list({ prefix })).objects.map((o) => o.key);
}

async function failureRows(key: string): Promise<{ code: string; reason: string }[]> {
  const rows = await platform.env.DB.prepare(
    "SELECT details FROM activity_log WHERE action = 'database_backup_failed' AND entity_id = ?",
  )
    .bind(key)
    .all<{ details: string }>();
  return rows.results.map((r) => JSON.parse(r.details));
}

async function expectNothingLeft(name: string): Promise<void> {
  expect(await keysUnder(`backups/${name}`)).toEqual([]);
  expect(await keysUnder(`backups/.staging/${name}`)).toEqual([]);
  const listing = await listBackups(platform.env.DOCUMENTS);
  expect(listing.backups.map((b) => b.name)).not.toContain(name);
  expect(listing.incomplete.map((b) => b.name)).not.toContain(name);
}

async function expectAborted(real: R2Bucket, aborted: [string, string][]): Promise<void> {
  expect(aborted.length).toBeGreaterThan(0);
  for (const [key, id] of aborted) {
    // R2 itself refuses further parts: the upload is really gone, not just forgotten.
    await expect(real.resumeMultipartUpload(key, id).uploadPart(99, new Uint8Array(1))).rejects.toThrow();
  }
}

describe("a failure half way through a backup", () => {
  it("R2 failing on the second part aborts the upload and leaves no manifest", async () => {
    const { bucket, aborted } = faultyBucket(platform.env.DOCUMENTS, {
      uploadPart: { nth: 2, message: "injected: connection reset by R2" },
    });
    const err = await backupDatabase({ db: platform.env.DB, bucket, now: at(1) }).catch((e) => e);
    expect(err).toBeInstanceOf(BackupError);
    expect(err.code).toBe("STORAGE_ERROR");
    expect(err.message).toContain("injected: connection reset by R2");
    await expectAborted(platform.env.DOCUMENTS, aborted);
    await expectNothingLeft("database-2026-11-20-02-00-01");
    expect(await failureRows("backups/database-2026-11-20-02-00-01.sql.gz")).toEqual([
      { trigger: "manual", key: "backups/database-2026-11-20-02-00-01.sql.gz", code: "STORAGE_ERROR", reason: err.message },
    ]);
  });

  it("a full bucket is reported as STORAGE_FULL (507), with nothing left behind", async () => {
    const { bucket, aborted } = faultyBucket(platform.env.DOCUMENTS, {
      uploadPart: { nth: 1, message: "Storage quota exceeded for this account" },
    });
    const err = await backupDatabase({ db: platform.env.DB, bucket, now: at(2) }).catch((e) => e);
    expect(err.code).toBe("STORAGE_FULL");
    expect(err.status).toBe(507);
    await expectAborted(platform.env.DOCUMENTS, aborted);
    await expectNothingLeft("database-2026-11-20-02-00-02");
    expect((await failureRows("backups/database-2026-11-20-02-00-02.sql.gz"))[0].code).toBe("STORAGE_FULL");
  });

  it("D1 failing while reading a table mid-dump aborts the upload and names the table", async () => {
    const { bucket, aborted } = faultyBucket(platform.env.DOCUMENTS, {});
    const db = faultyDb(platform.env.DB, /FROM "tickets"/, "injected: D1 storage operation exceeded timeout");
    const err = await backupDatabase({ db, bucket, now: at(3), dump: { snapshotBudgetBytes: 0 } }).catch((e) => e);
    expect(err.code).toBe("DATABASE_ERROR");
    expect(err.message).toBe('reading table "tickets" failed: injected: D1 storage operation exceeded timeout');
    await expectAborted(platform.env.DOCUMENTS, aborted);
    await expectNothingLeft("database-2026-11-20-02-00-03");
    expect((await failureRows("backups/database-2026-11-20-02-00-03.sql.gz"))[0].reason).toBe(err.message);
  });

  it("a failed manifest write removes the finished object: no manifest, no listed backup", async () => {
    const { bucket } = faultyBucket(platform.env.DOCUMENTS, {
      put: { key: /manifest\.json$/, message: "injected: manifest write refused" },
    });
    const err = await backupDatabase({ db: platform.env.DB, bucket, now: at(4) }).catch((e) => e);
    expect(err.code).toBe("STORAGE_ERROR");
    expect(err.message).toContain("writing the manifest failed");
    await expectNothingLeft("database-2026-11-20-02-00-04");
    expect(await failureRows("backups/database-2026-11-20-02-00-04.sql.gz")).toHaveLength(1);
  });

  it("after all that, a healthy run still produces a complete backup", async () => {
    const { summary } = await backupDatabase({ db: platform.env.DB, bucket: platform.env.DOCUMENTS, now: at(5) });
    const listing = await listBackups(platform.env.DOCUMENTS);
    expect(listing.backups.map((b) => b.key)).toEqual([summary.key]);
    expect(listing.incomplete).toEqual([]);
    expect(summary.size).toBeGreaterThan(5 * 1024 * 1024); // really spanned several parts
  });

  it("refuses to overwrite an existing backup of the same second", async () => {
    const err = await backupDatabase({ db: platform.env.DB, bucket: platform.env.DOCUMENTS, now: at(5) }).catch((e) => e);
    expect(err.code).toBe("BACKUP_EXISTS");
    const listing = await listBackups(platform.env.DOCUMENTS);
    expect(listing.backups).toHaveLength(1); // the original is untouched
  });
});

describe("virtual tables", () => {
  // Was: FTS5 refused. FTS5 is now backed up (tests/node/shapes.test.ts restores each kind).
  it("an FTS5 table is backed up, its shadow tables not as tables of their own", async () => {
    await platform.env.DB.exec("CREATE VIRTUAL TABLE ticket_search USING fts5(subject, body)");
    try {
      const { manifest } = await backupDatabase({ db: platform.env.DB, bucket: platform.env.DOCUMENTS, now: at(6) });
      expect(manifest.tables.map((t) => t.name)).toContain("ticket_search");
      expect(manifest.tables.map((t) => t.name).filter((n) => n.startsWith("ticket_search_"))).toEqual([]);
    } finally {
      await platform.env.DB.exec("DROP TABLE ticket_search");
    }
  });

  it("any other virtual table module fails the backup with an error naming the table, before anything is written", async () => {
    // D1 refuses to create R*Tree tables itself; a database file can still hold one.
    sqlite(d1File(platform.persistTo), "CREATE VIRTUAL TABLE ticket_geo USING rtree(id, minx, maxx);");
    try {
      const err = await backupDatabase({ db: platform.env.DB, bucket: platform.env.DOCUMENTS, now: at(7) }).catch((e) => e);
      expect(err.code).toBe("UNSUPPORTED_SCHEMA");
      expect(err.message).toContain('"ticket_geo" (rtree)');
      await expectNothingLeft("database-2026-11-20-02-00-07");
    } finally {
      sqlite(d1File(platform.persistTo), "DROP TABLE ticket_geo;");
    }
  });
});
