// The backup lock against real local D1: one run at a time, a crashed run's lock expires, a failed
// run releases it, only the owner releases, and the lock row a backup carries in its own dump is
// harmless once restored. Plus the run.ts operations that take it.
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { BackupError, keysFor, listBackups } from "../../lib/backup";
import { backupNameFor } from "../../lib/backup/keys";
import { acquireBackupLock, DEFAULT_LOCK_TTL_MS, releaseBackupLock, withBackupLock } from "../../lib/backup/lock";
import { parseRetentionSetting } from "../../lib/backup/retention-plan";
import { runBackup, runCleanup, runScheduledBackup } from "../../lib/backup/run";
import { faultyBucket } from "../helpers/faults";
import { freshPlatform } from "../helpers/local";

let platform: Awaited<ReturnType<typeof freshPlatform>>;
let db: D1Database;
let bucket: R2Bucket;

beforeAll(async () => {
  platform = await freshPlatform();
  db = platform.env.DB;
  bucket = platform.env.DOCUMENTS;
});

afterAll(async () => {
  await platform?.dispose();
});

beforeEach(async () => {
  await db.exec("DELETE FROM backup_lock");
  await db.exec("DELETE FROM activity_log");
});

let second = 0;
/** A distinct backup timestamp per call, so runs never collide on a name. */
const nextTime = () => new Date(Date.UTC(2026, 5, 1, 2, 0, 0) + ++second * 1000);

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

async function lockRows(): Promise<{ name: string; owner: string; started_at: string; expires_at: string }[]> {
  return (await db.prepare("SELECT name, owner, started_at, expires_at FROM backup_lock").all<{ name: string; owner: string; started_at: string; expires_at: string }>()).results;
}

async function activity(action: string): Promise<{ user_id: string | null; entity_id: string | null; details: Record<string, unknown> }[]> {
  const rows = await db
    .prepare("SELECT user_id, entity_id, details FROM activity_log WHERE action = ? ORDER BY id")
    .bind(action)
    .all<{ user_id: string | null; entity_id: string | null; details: string }>();
  return rows.results.map((r) => ({ ...r, details: JSON.parse(r.details) }));
}

async function keysUnder(prefix: string): Promise<string[]> {
  return (await bucket.list({ prefix })).objects.map((o) => o.key);
}

describe("withBackupLock / runBackup", () => {
  it("two concurrent runBackup calls: exactly one runs, the other gets BACKUP_IN_PROGRESS (409) with startedAt", async () => {
    const times = [nextTime(), nextTime()];
    const settled = await Promise.allSettled(times.map((now) => runBackup({ db, bucket, now, trigger: "manual", actor: "user_a" })));

    const ok = settled.filter((s) => s.status === "fulfilled");
    const refused = settled.filter((s): s is PromiseRejectedResult => s.status === "rejected");
    expect(ok).toHaveLength(1);
    expect(refused).toHaveLength(1);
    const err = refused[0].reason;
    expect(err).toBeInstanceOf(BackupError);
    expect(err.code).toBe("BACKUP_IN_PROGRESS");
    expect(err.status).toBe(409);
    expect(err.details.startedAt).toMatch(ISO);
    expect(Date.parse(err.details.expiresAt) - Date.parse(err.details.startedAt)).toBe(DEFAULT_LOCK_TTL_MS);
    expect(err.details.owner).toBe("manual:user_a");
    expect(err.message).toContain(err.details.startedAt);

    // The refused run left nothing in the bucket; the lock is free again.
    const loser = times[settled.indexOf(refused[0])];
    expect(await keysUnder(`backups/${backupNameFor(loser)}`)).toEqual([]);
    const winner = times[settled.findIndex((s) => s.status === "fulfilled")];
    expect((await listBackups(bucket)).backups.map((b) => b.name)).toContain(backupNameFor(winner));
    expect(await lockRows()).toEqual([]);
  });

  it("of five concurrent callers exactly one gets the lock", async () => {
    let inside = 0;
    let maxInside = 0;
    const settled = await Promise.allSettled(
      Array.from({ length: 5 }, () =>
        withBackupLock({ db }, async () => {
          maxInside = Math.max(maxInside, ++inside);
          await new Promise((r) => setTimeout(r, 300));
          inside--;
        }),
      ),
    );
    expect(settled.filter((s) => s.status === "fulfilled")).toHaveLength(1);
    for (const s of settled.filter((s): s is PromiseRejectedResult => s.status === "rejected")) {
      expect(s.reason.code).toBe("BACKUP_IN_PROGRESS");
    }
    expect(maxInside).toBe(1);
    expect(await lockRows()).toEqual([]);
  });

  it("takes over a crashed run's expired lock, and refuses a live one untouched", async () => {
    await db
      .prepare("INSERT INTO backup_lock (name, owner, started_at, expires_at) VALUES ('backup', 'scheduled:crashed', ?, ?)")
      .bind(new Date(Date.now() - 2 * DEFAULT_LOCK_TTL_MS).toISOString(), new Date(Date.now() - DEFAULT_LOCK_TTL_MS).toISOString())
      .run();
    const now = nextTime();
    const result = await runBackup({ db, bucket, now, trigger: "manual" });
    expect(result.summary.name).toBe(backupNameFor(now));
    expect(await lockRows()).toEqual([]);

    const live = { started_at: new Date().toISOString(), expires_at: new Date(Date.now() + 60_000).toISOString() };
    await db
      .prepare("INSERT INTO backup_lock (name, owner, started_at, expires_at) VALUES ('backup', 'manual:other', ?, ?)")
      .bind(live.started_at, live.expires_at)
      .run();
    const err = await runBackup({ db, bucket, now: nextTime(), trigger: "manual" }).catch((e) => e);
    expect(err.code).toBe("BACKUP_IN_PROGRESS");
    expect(err.details).toEqual({ startedAt: live.started_at, expiresAt: live.expires_at, owner: "manual" });
    expect(await lockRows()).toEqual([{ name: "backup", owner: "manual:other", ...live }]);
  });

  it("a failed run releases the lock, so the next run works", async () => {
    const { bucket: failing } = faultyBucket(bucket, { put: { key: /\.manifest\.json$/, message: "injected: R2 unavailable" } });
    const err = await runBackup({ db, bucket: failing, now: nextTime(), trigger: "manual" }).catch((e) => e);
    expect(err).toBeInstanceOf(BackupError);
    expect(err.code).toBe("STORAGE_ERROR");
    expect(await lockRows()).toEqual([]);

    const now = nextTime();
    expect((await runBackup({ db, bucket, now, trigger: "manual" })).summary.name).toBe(backupNameFor(now));
  });

  it("only the owner releases: an overdue run does not release the lock of the run that took it over", async () => {
    const t0 = Date.now();
    const a = await acquireBackupLock({ db, now: () => new Date(t0), ttlMs: 1000, owner: "manual" });
    await expect(acquireBackupLock({ db, now: () => new Date(t0 + 999), ttlMs: 1000 })).rejects.toMatchObject({ code: "BACKUP_IN_PROGRESS" });
    const b = await acquireBackupLock({ db, now: () => new Date(t0 + 1000), ttlMs: 1000, owner: "scheduled" });
    expect(b.owner).not.toBe(a.owner);
    expect(await releaseBackupLock(db, a)).toBe(false);
    expect((await lockRows()).map((r) => r.owner)).toEqual([b.owner]);
    expect(await releaseBackupLock(db, b)).toBe(true);
    expect(await lockRows()).toEqual([]);
  });

  it("a backup under the lock dumps backup_lock's schema but never the row it holds", async () => {
    const now = nextTime();
    const { summary } = await runBackup({ db, bucket, now, trigger: "manual" });
    const sql = gunzipSync(Buffer.from(await (await bucket.get(summary.key))!.arrayBuffer())).toString("utf8");
    expect(sql).toContain("CREATE TABLE backup_lock");
    expect(sql).not.toContain('INSERT INTO "backup_lock"');
    expect(await lockRows()).toEqual([]); // released after the run
  });
});

describe("runCleanup / runScheduledBackup", () => {
  it("runCleanup is refused while a backup holds the lock; its dry run is not", async () => {
    const held = await acquireBackupLock({ db, owner: "scheduled" });
    await expect(runCleanup({ db, bucket })).rejects.toMatchObject({ code: "BACKUP_IN_PROGRESS", status: 409 });
    const dry = await runCleanup({ db, bucket, dryRun: true });
    expect(dry.dryRun).toBe(true);
    // An invalid policy is a 400, not a 409, even while the lock is held.
    await expect(runCleanup({ db, bucket, policy: { daily: -1 } })).rejects.toMatchObject({ code: "INVALID_INPUT" });
    await releaseBackupLock(db, held);
    const real = await runCleanup({ db, bucket, actor: "user_admin" });
    expect(real.dryRun).toBe(false);
    expect(await activity("backup_cleanup_completed")).toHaveLength(1);
    expect(await lockRows()).toEqual([]);
  });

  it("runScheduledBackup: backup + cleanup, logs scheduled_backup_completed", async () => {
    const now = nextTime();
    const { backup, cleanup } = await runScheduledBackup({ db, bucket, now });
    expect(backup.summary.name).toBe(backupNameFor(now));
    expect(backup.manifest.trigger).toBe("scheduled");
    expect(cleanup.kept[0]).toBe(backup.summary.key);
    expect(await activity("scheduled_backup_completed")).toEqual([
      {
        user_id: null,
        entity_id: backup.summary.key,
        details: {
          key: backup.summary.key,
          size: backup.summary.size,
          rows: backup.summary.totalRows,
          deleted: cleanup.deleted,
          incompleteDeleted: cleanup.incompleteDeleted,
        },
      },
    ]);
    expect(await lockRows()).toEqual([]);
  });

  it("runScheduledBackup with a malformed BACKUP_RETENTION: the backup is made, the run fails at its cleanup stage", async () => {
    const now = nextTime();
    const retention = parseRetentionSetting("daily=30,weekly=twelve");
    const err = await runScheduledBackup({ db, bucket, now, retention }).catch((e) => e);
    expect(err.code).toBe("CONFIG_ERROR");
    expect(err.message).toMatch(/^BACKUP_RETENTION has a malformed entry "weekly=twelve"/);
    const [row] = await activity("scheduled_backup_failed");
    expect(row.details).toMatchObject({ stage: "cleanup", key: keysFor(backupNameFor(now)).object, code: "CONFIG_ERROR" });
    expect(await keysUnder(keysFor(backupNameFor(now)).manifest)).toHaveLength(1);
    expect(await activity("backup_cleanup_completed")).toEqual([]);
    expect(await lockRows()).toEqual([]);
  });

  it("runScheduledBackup rethrows a failure and logs scheduled_backup_failed with the reason", async () => {
    const { bucket: failing } = faultyBucket(bucket, { put: { key: /\.manifest\.json$/, message: "injected: R2 unavailable" } });
    const now = nextTime();
    const err = await runScheduledBackup({ db, bucket: failing, now }).catch((e) => e);
    expect(err.code).toBe("STORAGE_ERROR");
    const [row] = await activity("scheduled_backup_failed");
    expect(row.details).toEqual({ stage: "backup", key: null, code: "STORAGE_ERROR", reason: err.message });
    expect(await keysUnder(keysFor(backupNameFor(now)).object)).toEqual([]);
    expect(await lockRows()).toEqual([]);

    // Held lock: the nightly run fails loudly instead of running beside another.
    const held = await acquireBackupLock({ db, owner: "manual:user_a" });
    const busy = await runScheduledBackup({ db, bucket, now: nextTime() }).catch((e) => e);
    expect(busy.code).toBe("BACKUP_IN_PROGRESS");
    expect((await activity("scheduled_backup_failed"))[1].details).toMatchObject({ stage: "backup", code: "BACKUP_IN_PROGRESS" });
    await releaseBackupLock(db, held);
  });
});

describe("the lease: renewed while alive, recovered when dead", () => {
  it("a live run renews its short lease, so a second caller is refused long after the first TTL", async () => {
    let refusedAt = 0;
    await withBackupLock({ db, ttlMs: 400 }, async () => {
      const started = Date.now();
      await new Promise((r) => setTimeout(r, 1500)); // almost four TTLs
      await expect(acquireBackupLock({ db, ttlMs: 400 })).rejects.toMatchObject({ code: "BACKUP_IN_PROGRESS" });
      refusedAt = Date.now() - started;
      const [row] = await lockRows();
      expect(Date.parse(row.expires_at)).toBeGreaterThan(Date.now());
    });
    expect(refusedAt).toBeGreaterThan(1200);
    expect(await lockRows()).toEqual([]);
  });

  it("a run whose lease was taken over stops writing (LEASE_LOST) and leaves the new holder's row alone", async () => {
    const now = nextTime();
    let takenBy = "";
    const slow = faultyBucket(bucket, {});
    const wrapped = {
      ...slow.bucket,
      createMultipartUpload: async (k: string, o?: R2MultipartOptions) => {
        // Stand in for a run stalled past its lease: another run takes the lease over meanwhile.
        await db.prepare("UPDATE backup_lock SET expires_at = ?").bind(new Date(Date.now() - 1).toISOString()).run();
        takenBy = (await acquireBackupLock({ db, owner: "scheduled" })).owner;
        return slow.bucket.createMultipartUpload(k, o);
      },
    } as unknown as R2Bucket;
    const err = await runBackup({ db, bucket: wrapped, now, trigger: "manual" }).catch((e) => e);
    expect(err.code).toBe("LEASE_LOST");
    expect((await lockRows()).map((r) => r.owner)).toEqual([takenBy]);
    expect(await keysUnder(`backups/${backupNameFor(now)}`)).toEqual([]);
  });

  it("the next run logs a dead backup run as interrupted, aborts its open upload and removes what it left", async () => {
    // What a run killed mid-upload leaves: its lease row (expired), an open multipart upload with a
    // part in it, and an object copied without its manifest.
    const dead = keysFor(backupNameFor(nextTime()));
    const upload = await bucket.createMultipartUpload(dead.staging);
    await upload.uploadPart(1, new Uint8Array(5 * 1024 * 1024));
    await bucket.put(dead.object, "partial");
    const state = { op: "backup", name: dead.name, uploads: [{ key: dead.staging, uploadId: upload.uploadId }] };
    await db
      .prepare("INSERT INTO backup_lock (name, owner, started_at, expires_at, state) VALUES ('backup', 'manual:user_dead:abc', ?, ?, ?)")
      .bind(new Date(Date.now() - 200_000).toISOString(), new Date(Date.now() - 80_000).toISOString(), JSON.stringify(state))
      .run();

    const now = nextTime();
    const { summary } = await runBackup({ db, bucket, now, trigger: "cli" });
    expect(summary.name).toBe(backupNameFor(now));
    expect(summary.warnings[0]).toMatch(/was interrupted and is logged as failed; removed .*\.staging.*upload/);

    const [failed] = await activity("database_backup_failed");
    expect(failed.user_id).toBe("user_dead");
    expect(failed.entity_id).toBe(dead.object);
    expect(failed.details).toMatchObject({
      trigger: "manual",
      code: "INTERRUPTED",
      key: dead.object,
      left: { staging: dead.staging, uploads: [{ key: dead.staging, uploadId: upload.uploadId }] },
      aborted: [{ key: dead.staging, uploadId: upload.uploadId }],
      warnings: [],
    });
    expect(failed.details.reason).toMatch(/^interrupted: the backup run of manual:user_dead started at /);
    expect(await keysUnder(`backups/${dead.name}`)).toEqual([]);
    expect(await keysUnder(dead.staging)).toEqual([]);
    // Aborted for real: R2 no longer knows the upload.
    await expect(bucket.resumeMultipartUpload(dead.staging, upload.uploadId).uploadPart(2, new Uint8Array(10))).rejects.toThrow();
    expect(await lockRows()).toEqual([]);
  });

  it("a dead cleanup is logged as backup_cleanup_failed (interrupted)", async () => {
    await db
      .prepare("INSERT INTO backup_lock (name, owner, started_at, expires_at, state) VALUES ('backup', 'scheduled:x', ?, ?, ?)")
      .bind(new Date(Date.now() - 200_000).toISOString(), new Date(Date.now() - 80_000).toISOString(), JSON.stringify({ op: "cleanup", uploads: [] }))
      .run();
    const result = await runCleanup({ db, bucket, actor: "user_admin" });
    expect(result.warnings[0]).toMatch(/previous run \(scheduled, started .*\) was interrupted/);
    const rows = await activity("backup_cleanup_failed");
    expect(rows).toHaveLength(1);
    expect(rows[0].details).toMatchObject({ code: "INTERRUPTED", trigger: "scheduled" });
    expect(await activity("database_backup_failed")).toEqual([]);
  });
});

describe("clock and same-second duplicates", () => {
  it("refuses to run when this clock is 10 minutes off the database's, naming both times", async () => {
    const skewed = () => new Date(Date.now() + 10 * 60_000);
    const err = await runBackup({ db, bucket, now: nextTime(), trigger: "manual", clock: skewed }).catch((e) => e);
    expect(err).toBeInstanceOf(BackupError);
    expect(err.code).toBe("CLOCK_SKEW");
    expect(err.status).toBe(500);
    expect(err.message).toMatch(/this clock says \S+Z but the database says \S+Z \(600 s apart/);
    expect(Date.parse(err.details.clock) - Date.parse(err.details.databaseClock)).toBeGreaterThan(590_000);
    expect(await lockRows()).toEqual([]);
    // 2 minutes off is within the limit.
    await expect(runBackup({ db, bucket, now: nextTime(), trigger: "manual", clock: () => new Date(Date.now() - 120_000) })).resolves.toBeTruthy();
    // The nightly run logs the refusal, so health and alerts see it.
    const nightly = await runScheduledBackup({ db, bucket, now: nextTime(), clock: skewed }).catch((e) => e);
    expect(nightly.code).toBe("CLOCK_SKEW");
    expect((await activity("scheduled_backup_failed"))[0].details).toMatchObject({ code: "CLOCK_SKEW" });
  });

  it("a second backup in the same second is a 409 BACKUP_EXISTS, not a failure", async () => {
    const now = nextTime();
    await runBackup({ db, bucket, now, trigger: "manual", actor: "user_a" });
    const err = await runBackup({ db, bucket, now, trigger: "manual", actor: "user_a" }).catch((e) => e);
    expect(err.code).toBe("BACKUP_EXISTS");
    expect(err.status).toBe(409);
    expect(await activity("database_backup_failed")).toEqual([]);
    expect(await lockRows()).toEqual([]);
  });
});

describe("without the migration", () => {
  it("a missing backup_lock table is a CONFIG_ERROR naming the migration", async () => {
    await db.exec("DROP TABLE backup_lock");
    const err = await runBackup({ db, bucket, now: nextTime(), trigger: "cli" }).catch((e) => e);
    expect(err.code).toBe("CONFIG_ERROR");
    expect(err.message).toContain("0002_backup_lock.sql");
  });
});
