// Retention against real local D1 + R2: which backups go, which stay whatever their age, that
// client documents and look-alike keys in the same bucket are never touched, that abandoned
// leftovers are removed, and that a dry run changes nothing.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { applyRetention, backupDatabase, BackupError, keysFor, listBackups, r2Store, type BackupStore } from "../../lib/backup";
import { backupNameFor } from "../../lib/backup/keys";
import { cleanupOldBackups } from "../../lib/backup/retention";
import { DEFAULT_RETENTION } from "../../lib/backup/retention-plan";
import { getBackupHealth } from "../../lib/monitor";
import { cloneBackup } from "../helpers/clone-backups";
import { faultyBucket } from "../helpers/faults";
import { freshPlatform } from "../helpers/local";

let platform: Awaited<ReturnType<typeof freshPlatform>>;
let db: D1Database;
let bucket: R2Bucket;

const DAY = 24 * 60 * 60 * 1000;
const HOUR = 60 * 60 * 1000;
// Later than every R2 upload time in this file by days, so leftovers written now count as old by
// their upload time too, and relative to the real clock, so the file keeps working in any year.
const NOW = new Date(Math.floor(Date.now() / 1000) * 1000 + 60 * DAY);
const daysAgo = (d: number, from = NOW) => new Date(from.getTime() - d * DAY);
const objectKey = (d: Date) => keysFor(backupNameFor(d)).object;

beforeAll(async () => {
  platform = await freshPlatform();
  db = platform.env.DB;
  bucket = platform.env.DOCUMENTS;
});

afterAll(async () => {
  await platform?.dispose();
});

beforeEach(async () => {
  // Each test starts from an empty bucket and audit trail (test code may delete anything).
  for (;;) {
    const page = await bucket.list({ limit: 1000 });
    if (page.objects.length === 0) break;
    await bucket.delete(page.objects.map((o) => o.key));
  }
  await db.exec("DELETE FROM activity_log");
});

/** Real backups at the given times (concurrently: distinct names never conflict); their keys in order. */
/** Backups at these times: the first made for real, the rest its copies under their own names (fast). */
async function backupsAt(dates: Date[]): Promise<string[]> {
  const [first, ...rest] = dates;
  const made = await backupDatabase({ db, bucket, now: first, trigger: "cli" });
  return [made.summary.key, ...(await cloneBackup(bucket, made.summary.name, rest))].sort((a, b) => dates.findIndex((d) => objectKey(d) === a) - dates.findIndex((d) => objectKey(d) === b));
}

async function allKeys(): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ cursor });
    keys.push(...page.objects.map((o) => o.key));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return keys.sort();
}

async function cleanupRows(): Promise<{ action: string; user_id: string | null; details: Record<string, unknown> }[]> {
  const rows = await db
    .prepare("SELECT action, user_id, details FROM activity_log WHERE action LIKE 'backup_cleanup_%' ORDER BY id")
    .all<{ action: string; user_id: string | null; details: string }>();
  return rows.results.map((r) => ({ ...r, details: JSON.parse(r.details) }));
}

const completeKeys = async () => (await listBackups(bucket)).backups.map((b) => b.key);

// Most cases use the daily tier alone: "N days" is then "ages 0 … N-1 days before the reference",
// whatever weekday or month the real clock puts NOW in (retention-plan.test.ts covers the calendar).
const DAILY30 = { daily: 30, weekly: 0, monthly: 0 };

describe("cleanupOldBackups", () => {
  it("deletes complete backups outside every tier (manifest and object), keeps the rest, and logs it", async () => {
    const ages = [0, 1, 2, 3, 4, 5, 6, 7, 29, 30, 31, 60];
    const keys = await backupsAt(ages.map((d) => daysAgo(d)));
    const result = await cleanupOldBackups({ db, bucket, now: NOW, actor: "user_admin_1", policy: DAILY30 });

    const old = [60, 31, 30].map((d) => objectKey(daysAgo(d)));
    expect(result.deleted).toEqual(old); // oldest first
    expect(result.kept).toEqual(keys.filter((k) => !old.includes(k))); // newest first; 29 days back is the 30th day
    expect(result.incompleteDeleted).toEqual([]);
    expect(result.needsAttention).toEqual([]);
    expect(result.dryRun).toBe(false);
    expect(result.reference).toBe(NOW.toISOString());
    // Every decision says why: the newest 7 and each day's backup.
    const day = (d: number) => daysAgo(d).toISOString().slice(0, 10);
    expect(result.decisions.map((d) => [d.key, d.keep, d.reasons])).toEqual(
      ages.map((age, i) => [keys[i], age < 30, [...(i < 7 ? ["newest 7"] : []), ...(age < 30 ? [`daily ${day(age)}`] : [])]]),
    );

    // Both halves of every deleted backup are gone; nothing is left half-deleted.
    const remaining = await allKeys();
    for (const d of [60, 31, 30]) {
      const k = keysFor(backupNameFor(daysAgo(d)));
      expect(remaining).not.toContain(k.object);
      expect(remaining).not.toContain(k.manifest);
    }
    const listing = await listBackups(bucket);
    expect(listing.backups.map((b) => b.key)).toEqual(result.kept);
    expect(listing.incomplete).toEqual([]);

    expect(await cleanupRows()).toEqual([
      {
        action: "backup_cleanup_completed",
        user_id: "user_admin_1",
        details: {
          trigger: "manual",
          deleted: old,
          kept: result.kept,
          incompleteDeleted: [],
          needsAttention: [],
          policy: { ...DEFAULT_RETENTION, ...DAILY30 },
          reference: result.reference,
          dryRun: false,
        },
      },
    ]);
  });

  it("never deletes the newest 7 backups, however old, whatever the tiers", async () => {
    // One backup every 10 days: 10 … 60 days back are outside every tier but among the newest 7.
    const keys = await backupsAt([0, 10, 20, 30, 40, 50, 60, 70, 80, 90].map((d) => daysAgo(d)));
    const result = await cleanupOldBackups({ db, bucket, now: NOW, policy: { daily: 0, weekly: 0, monthly: 0 } });
    expect(result.kept).toEqual(keys.slice(0, 7));
    expect(result.decisions.slice(0, 7).every((d) => d.reasons.join() === "newest 7")).toBe(true);
    expect(result.deleted).toEqual([90, 80, 70].map((d) => objectKey(daysAgo(d))));
    expect(await completeKeys()).toEqual(keys.slice(0, 7));
  });

  it("after a month of failed backups, periods count from the newest backup, not the clock", async () => {
    // The last good backup is 40 days old. By the clock alone every backup is outside the 30 days;
    // counted from the newest, the 30 days are ages 40 … 69.
    const keys = await backupsAt([40, 42, 44, 46, 48, 50, 52, 60, 69, 70, 71, 90].map((d) => daysAgo(d)));
    const result = await cleanupOldBackups({ db, bucket, now: NOW, policy: DAILY30 });
    expect(result.reference).toBe(daysAgo(40).toISOString());
    expect(result.deleted).toEqual([90, 71, 70].map((d) => objectKey(daysAgo(d))));
    expect(result.kept).toEqual(keys.slice(0, 9));
    expect(result.decisions[8].reasons).toEqual([`daily ${daysAgo(69).toISOString().slice(0, 10)}`]);
  });

  it("keeps the newest backup with a verified off-site copy, when the caller names them", async () => {
    const keys = await backupsAt([0, 1, 2, 3, 4, 5, 6, 40, 50, 60].map((d) => daysAgo(d)));
    const offsiteVerified = new Set([backupNameFor(daysAgo(50)), backupNameFor(daysAgo(60))]);
    const result = await cleanupOldBackups({ db, bucket, now: NOW, policy: DAILY30, offsiteVerified });
    expect(result.deleted).toEqual([60, 40].map((d) => objectKey(daysAgo(d))));
    expect(result.decisions.find((d) => d.key === keys[8])).toMatchObject({ keep: true, reasons: ["off-site copy"] });
    expect(await completeKeys()).toEqual([...keys.slice(0, 7), keys[8]]);
  });

  it("one backup dated 2099 among 100 good ones: deletes exactly what the rule says, flags it, never deletes it", async () => {
    // Backups failing for 40 days: real ones 40..139 days old, plus one named 2099 by a clock fault,
    // and a 2098 object without manifest written now (60 days before NOW).
    const ages = Array.from({ length: 100 }, (_, i) => 40 + i);
    for (let i = 0; i < ages.length; i += 25) await backupsAt(ages.slice(i, i + 25).map((d) => daysAgo(d)));
    const future = keysFor(backupNameFor(new Date(Date.UTC(2099, 0, 1, 2, 0, 0))));
    await backupsAt([new Date(Date.UTC(2099, 0, 1, 2, 0, 0))]);
    const futureLeftover = keysFor(backupNameFor(new Date(Date.UTC(2098, 5, 1)))).object;
    await bucket.put(futureLeftover, "partial");

    // The rule, computed here from the ages alone: the future one is no reference point and takes
    // no newest-7 place; the newest real backup is 40 days old, so the 30 days are ages 40 … 69
    // (the newest 7 are among them); everything older goes.
    const newestAge = Math.min(...ages);
    const expectedDeleted = [...ages]
      .filter((age) => age >= newestAge + DAILY30.daily)
      .sort((a, b) => b - a) // oldest first
      .map((d) => objectKey(daysAgo(d)));
    expect(expectedDeleted).toHaveLength(70);

    const result = await cleanupOldBackups({ db, bucket, now: NOW, policy: DAILY30 });
    expect(result.reference).toBe(daysAgo(newestAge).toISOString());
    expect(result.deleted).toEqual(expectedDeleted);
    expect(result.kept[0]).toBe(future.object);
    expect(result.decisions[0]).toMatchObject({ key: future.object, keep: true, reasons: ["future-dated"] });
    expect(result.kept).toHaveLength(1 + 100 - 70);
    expect(result.needsAttention).toEqual([
      { name: future.name, keys: [future.object, future.manifest], reason: expect.stringMatching(/^dated 2099-01-01T02:00:00.000Z, in the future/) },
    ]);
    // A future name does not make a leftover young: its upload time (60 days before NOW) counts.
    expect(result.incompleteDeleted).toEqual([futureLeftover]);
    expect(await allKeys()).toContain(future.manifest);

    // Health sees the real newest (40 days: stale), not 2099 at age 0, and names the clock fault.
    const health = await getBackupHealth({ db, bucket, now: NOW });
    expect(health.status).toBe("stale");
    expect(health.lastSuccess?.name).toBe(backupNameFor(daysAgo(40)));
    expect(health.issues.map((i) => i.code)).toEqual(["FUTURE_BACKUP"]);

    // And the next cleanup, even a year later and with the tightest policy, never deletes the 2099 backup.
    const again = await cleanupOldBackups({ db, bucket, now: new Date(NOW.getTime() + 365 * DAY), policy: { daily: 0, weekly: 0, monthly: 0 } });
    expect(again.deleted).not.toContain(future.object);
    expect(again.kept).toHaveLength(1 + 7);
    expect(await completeKeys()).toContain(future.object);
  }, 300_000);

  it("with every backup old, keeps exactly the newest 7 beyond the tiers", async () => {
    const keys = await backupsAt([40, 45, 50, 75, 80, 85, 90, 95, 100, 105].map((d) => daysAgo(d)));
    const result = await cleanupOldBackups({ db, bucket, now: NOW, policy: { daily: 1, weekly: 0, monthly: 0 } });
    expect(result.kept).toEqual(keys.slice(0, 7));
    expect(result.deleted).toEqual(keys.slice(7).reverse());
    expect(await completeKeys()).toEqual(keys.slice(0, 7));
  });

  it("never touches client documents or look-alike keys, byte for byte", async () => {
    const foreign: Record<string, string> = {
      "clients/acme/contract.pdf": "%PDF-1.7 client contract",
      "documents/42/report.docx": "PK\u0003\u0004 report",
      "backups/notes.txt": "restore notes",
      "backups-old/x": "an old export",
      "Backups/database-2020-01-01-00-00-00.sql.gz": "upper-case prefix",
      "backups/database-2026-13-45-00-00-00.sql.gz": "month 13",
      "backups/database-2020-02-31-00-00-00.sql.gz": "February 31st",
      "backups/database-2020-01-01-00-00-00.sql.gz.bak": "suffix",
      "backups/database-2020-01-01-00-00-00.manifest.json.tmp": "suffix",
      "backups/old/database-2020-01-01-00-00-00.sql.gz": "nested",
      "backups/.staging/database-2020-01-01-00-00-00.manifest.json": "a manifest is never staged",
      "backups/.staging/notes.txt": "staging look-alike",
      "backups/database-2020-1-1-0-0-0.sql.gz": "short fields",
      "xbackups/database-2020-01-01-00-00-00.sql.gz": "prefix look-alike",
    };
    for (const [key, text] of Object.entries(foreign)) {
      await bucket.put(key, new TextEncoder().encode(text), { customMetadata: { owner: "portal" } });
    }
    const keys = await backupsAt([1, 2, 3, 4, 5, 6, 7, 50, 60].map((d) => daysAgo(d)));

    // The most aggressive policy there is, long after everything was written.
    const result = await cleanupOldBackups({
      db,
      bucket,
      now: NOW,
      policy: { daily: 0, weekly: 0, monthly: 0, incompleteMaxAgeHours: 1 },
    });
    expect(result.deleted).toEqual([60, 50].map((d) => objectKey(daysAgo(d))));
    expect(result.incompleteDeleted).toEqual([]);

    for (const [key, text] of Object.entries(foreign)) {
      const obj = await bucket.get(key);
      expect(obj, key).not.toBeNull();
      expect(new TextDecoder().decode(await obj!.arrayBuffer()), key).toBe(text);
      expect(obj!.customMetadata, key).toEqual({ owner: "portal" });
    }
    const kept = keys.slice(0, 7).flatMap((k) => [k, k.replace(/\.sql\.gz$/, ".manifest.json")]);
    expect(await allKeys()).toEqual([...Object.keys(foreign), ...kept].sort());
  });

  it("a store whose listing names a client document as a backup gets nothing deleted", async () => {
    await bucket.put("clients/acme/contract.pdf", "contract");
    const name = backupNameFor(daysAgo(400));
    const lying: BackupStore = {
      // Eight real-looking names so one is past the newest 7; its "object" is a client document.
      list: async () => ({
        backups: [
          ...Array.from({ length: 7 }, (_, i) => ({ name: backupNameFor(daysAgo(i)), key: objectKey(daysAgo(i)), manifestKey: keysFor(backupNameFor(daysAgo(i))).manifest })),
          { name, key: "clients/acme/contract.pdf", manifestKey: keysFor(name).manifest },
        ],
        incomplete: [],
      }),
      delete: r2Store(bucket).delete,
    };
    const err = await applyRetention({ store: lying, now: NOW, policy: { ...DEFAULT_RETENTION, daily: 1, weekly: 0, monthly: 0 } }).catch((e) => e);
    expect(err).toBeInstanceOf(BackupError);
    expect(err.message).toBe(`refusing to delete clients/acme/contract.pdf: not a key of backup ${name}`);
    expect(await (await bucket.get("clients/acme/contract.pdf"))!.text()).toBe("contract");
  });

  it("removes leftovers of interrupted runs older than incompleteMaxAgeHours, keeps younger ones", async () => {
    await backupsAt([NOW]);
    // Object without manifest (interrupted before the manifest, or a cleanup interrupted after it).
    const [objOnly] = await backupsAt([daysAgo(3)]);
    await bucket.delete(keysFor(backupNameFor(daysAgo(3))).manifest);
    // Manifest without object.
    await backupsAt([daysAgo(5)]);
    await bucket.delete(keysFor(backupNameFor(daysAgo(5))).object);
    // A staged upload that never finished.
    const staged = keysFor(backupNameFor(daysAgo(2))).staging;
    await bucket.put(staged, new Uint8Array([0x1f, 0x8b, 1, 2, 3]));
    // Young: a leftover named 2 hours before "now" may belong to a run still writing.
    const young = keysFor(backupNameFor(new Date(NOW.getTime() - 2 * HOUR))).staging;
    await bucket.put(young, new Uint8Array([0x1f, 0x8b]));
    // Both halves present but not matching: could be a good backup read badly; an admin decides.
    await backupsAt([daysAgo(4)]);
    const mismatched = keysFor(backupNameFor(daysAgo(4)));
    const manifest = JSON.parse(await (await bucket.get(mismatched.manifest))!.text());
    manifest.object.sha256 = "0".repeat(64);
    await bucket.put(mismatched.manifest, JSON.stringify(manifest));

    const before = await listBackups(bucket);
    expect(before.incomplete).toHaveLength(5);

    const result = await cleanupOldBackups({ db, bucket, now: NOW });
    expect([...result.incompleteDeleted].sort()).toEqual(
      [objOnly, keysFor(backupNameFor(daysAgo(5))).manifest, staged].sort(),
    );
    expect(result.needsAttention).toEqual([
      { name: mismatched.name, keys: [mismatched.object, mismatched.manifest], reason: "manifest does not match the backup object" },
    ]);
    expect(result.deleted).toEqual([]);

    const after = await listBackups(bucket);
    expect(after.incomplete.map((i) => i.keys).sort()).toEqual([[young], [mismatched.object, mismatched.manifest]].sort());
    expect(after.backups.map((b) => b.key)).toEqual([objectKey(NOW)]);
    expect((await cleanupRows())[0].details.incompleteDeleted).toEqual(result.incompleteDeleted);

    // A day later the young leftover is abandoned too; the mismatched backup still waits for a person.
    const later = await cleanupOldBackups({ db, bucket, now: new Date(NOW.getTime() + DAY) });
    expect(later.incompleteDeleted).toEqual([young]);
    expect(later.needsAttention.map((n) => n.name)).toEqual([mismatched.name]);
  });

  it("keeps a leftover written recently even when its name is old (a run still writing)", async () => {
    const name = backupNameFor(new Date(Date.UTC(2020, 0, 1, 2, 0, 0)));
    await bucket.put(keysFor(name).staging, new Uint8Array([0x1f, 0x8b]));
    const result = await cleanupOldBackups({ db, bucket, now: new Date() });
    expect(result.incompleteDeleted).toEqual([]);
    expect(await allKeys()).toEqual([keysFor(name).staging]);
  });

  it("a dry run reports the same plan, deletes nothing and logs nothing", async () => {
    await backupsAt([0, 1, 2, 3, 4, 5, 6, 40, 50].map((d) => daysAgo(d)));
    const staged = keysFor(backupNameFor(daysAgo(3.5))).staging;
    await bucket.put(staged, new Uint8Array([1]));
    const before = await allKeys();

    const dry = await cleanupOldBackups({ db, bucket, now: NOW, dryRun: true, actor: "user_admin_1", policy: DAILY30 });
    expect(dry.dryRun).toBe(true);
    expect(dry.deleted).toEqual([50, 40].map((d) => objectKey(daysAgo(d))));
    expect(dry.incompleteDeleted).toEqual([staged]);
    expect(await allKeys()).toEqual(before);
    expect(await cleanupRows()).toEqual([]);

    expect(dry.decisions.filter((d) => !d.keep).map((d) => d.key)).toEqual([40, 50].map((d) => objectKey(daysAgo(d))));
    const real = await cleanupOldBackups({ db, bucket, now: NOW, policy: DAILY30 });
    expect({ ...real, dryRun: true }).toEqual(dry);
    expect((await cleanupRows()).map((r) => r.action)).toEqual(["backup_cleanup_completed"]);
  });

  it("a delete failing half way logs backup_cleanup_failed, and never leaves a manifest without its object", async () => {
    const keys = await backupsAt([0, 1, 2, 3, 4, 5, 6, 40, 50, 60].map((d) => daysAgo(d)));
    const [k60, k50] = [60, 50].map((d) => keysFor(backupNameFor(daysAgo(d))));
    // R2 fails deleting the 50-day-old backup's object, after its manifest is already gone.
    const failing = faultyBucket(bucket, { delete: { fails: (key) => key === k50.object, message: "injected: R2 delete timed out" } }).bucket;

    const err = await cleanupOldBackups({ db, bucket: failing, now: NOW, actor: "user_admin_1", policy: DAILY30 }).catch((e) => e);
    expect(err).toBeInstanceOf(BackupError);
    expect(err.code).toBe("STORAGE_ERROR");
    expect(err.message).toContain("injected: R2 delete timed out");

    const rows = await cleanupRows();
    expect(rows).toHaveLength(1);
    expect(rows[0].action).toBe("backup_cleanup_failed");
    expect(rows[0].user_id).toBe("user_admin_1");
    expect(rows[0].details).toMatchObject({ code: "STORAGE_ERROR", reason: err.message, deleted: [k60.object], incompleteDeleted: [] });

    // The interrupted backup is an object without manifest: never listed as restorable...
    const listing = await listBackups(bucket);
    expect(listing.backups.map((b) => b.key)).toEqual(keys.slice(0, 8));
    expect(listing.incomplete).toMatchObject([{ name: k50.name, keys: [k50.object], reason: "backup object without manifest" }]);
    // ...and the next cleanup finishes the job.
    const next = await cleanupOldBackups({ db, bucket, now: NOW, policy: DAILY30 });
    expect(next.deleted).toEqual([objectKey(daysAgo(40))]);
    expect(next.incompleteDeleted).toEqual([k50.object]);
    expect((await listBackups(bucket)).incomplete).toEqual([]);
  });

  it("refuses an invalid policy with INVALID_INPUT before touching anything", async () => {
    await backupsAt([0, 1, 2, 3, 4, 5, 6, 7, 40].map((d) => daysAgo(d)));
    const before = await allKeys();
    const bad: unknown[] = [
      { daily: -1 },
      { weekly: 1.5 },
      { monthly: 1201 },
      { incompleteMaxAgeHours: 0 },
      { daily: Number.NaN },
      { daily: "7" },
      { Daily: 1 },
      { maxAgeDays: 30 }, // the old flat policy's fields are refused, not ignored
      { keepLatest: 7 },
    ];
    for (const policy of bad) {
      const err = await cleanupOldBackups({ db, bucket, now: NOW, policy: policy as never }).catch((e) => e);
      expect(err, JSON.stringify(policy)).toBeInstanceOf(BackupError);
      expect(err.code).toBe("INVALID_INPUT");
      expect(err.status).toBe(400);
    }
    expect(await allKeys()).toEqual(before);
    expect(await cleanupRows()).toEqual([]);
  });
});
