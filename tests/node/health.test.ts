// Backup health (lib/monitor/health.ts). Pure rules first (staleness, the public view, the
// schedule); then getBackupHealth against real local D1/R2 with real backups taken at chosen times.
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backupDatabase, BackupError, keysFor, listBackups, runBackup } from "../../lib/backup";
import { backupNameFor } from "../../lib/backup/keys";
import { PROJECT_ROOT } from "../../lib/local/platform";
import {
  assessHealth,
  getBackupHealth,
  nextScheduledRun,
  publicHealth,
  publicHealthCache,
  SCHEDULE_CRON,
  STALE_AFTER_HOURS,
  type BackupHealth,
} from "../../lib/monitor";
import { getPublicHealth } from "../../lib/monitor/health";
import { faultyBucket } from "../helpers/faults";
import { health, HOUR, hoursAgo, NOW } from "../helpers/health-fixture";
import { freshPlatform } from "../helpers/local";

describe("assessHealth (the staleness rule)", () => {
  const ok = (h: number) => ({ newestBackupAt: hoursAgo(h), lastRun: { ok: true, at: hoursAgo(h - 0.01) } });

  it("fresh, 25 h and exactly 26 h are ok; 27 h is stale", () => {
    expect(assessHealth(ok(1), NOW)).toEqual({ status: "ok", ageHours: 1, summary: "the newest complete backup is 1.0 h old" });
    expect(assessHealth(ok(25), NOW).status).toBe("ok");
    expect(assessHealth(ok(STALE_AFTER_HOURS), NOW).status).toBe("ok");
    expect(assessHealth(ok(26.001), NOW).status).toBe("stale");
    expect(assessHealth(ok(27), NOW)).toEqual({
      status: "stale",
      ageHours: 27,
      summary: "the newest complete backup is 27.0 h old (limit 26 h)",
    });
  });

  it("a failure newer than the newest success is failing, even with a fresh backup", () => {
    const r = assessHealth({ newestBackupAt: hoursAgo(10), lastRun: { ok: false, at: hoursAgo(1) } }, NOW);
    expect(r.status).toBe("failing");
    expect(r.ageHours).toBe(10);
  });

  it("failing wins over stale (it names a cause)", () => {
    expect(assessHealth({ newestBackupAt: hoursAgo(50), lastRun: { ok: false, at: hoursAgo(1) } }, NOW).status).toBe("failing");
  });

  it("a success after a failure is ok again", () => {
    expect(assessHealth({ newestBackupAt: hoursAgo(2), lastRun: { ok: true, at: hoursAgo(2) } }, NOW).status).toBe("ok");
  });

  it("a logged failure older than a backup that exists in R2 is not failing (R2 is authoritative)", () => {
    expect(assessHealth({ newestBackupAt: hoursAgo(2), lastRun: { ok: false, at: hoursAgo(3) } }, NOW).status).toBe("ok");
  });

  it("no complete backup is never, whatever the log says", () => {
    expect(assessHealth({ newestBackupAt: null, lastRun: null }, NOW)).toEqual({ status: "never", ageHours: null, summary: "no complete backup exists" });
    expect(assessHealth({ newestBackupAt: null, lastRun: { ok: false, at: hoursAgo(1) } }, NOW).status).toBe("never");
    expect(assessHealth({ newestBackupAt: null, lastRun: { ok: true, at: hoursAgo(1) } }, NOW).status).toBe("never");
  });

  it("accepts ISO strings, clamps a backup from the future to age 0, refuses invalid dates", () => {
    expect(assessHealth({ newestBackupAt: "2026-06-10T11:00:00.000Z", lastRun: null }, NOW).ageHours).toBe(1);
    expect(assessHealth({ newestBackupAt: "2026-06-10T13:00:00.000Z", lastRun: null }, NOW)).toMatchObject({ status: "ok", ageHours: 0 });
    expect(() => assessHealth({ newestBackupAt: "yesterday", lastRun: null }, NOW)).toThrow(BackupError);
  });
});

describe("publicHealth", () => {
  it("reveals only status and age_hours: failing, stale and never all read stale", () => {
    const cases: [BackupHealth, { status: string; age_hours: number | null }][] = [
      [health(), { status: "ok", age_hours: 10 }],
      [health({ status: "stale", lastSuccess: { ...health().lastSuccess!, ageHours: 27.46 } }), { status: "stale", age_hours: 27.5 }],
      [health({ status: "failing", lastRun: { action: "scheduled_backup_failed", at: NOW.toISOString(), ok: false, reason: "R2 down: secret-bucket-name" } }), { status: "stale", age_hours: 10 }],
      [health({ status: "never", lastSuccess: null }), { status: "stale", age_hours: null }],
    ];
    for (const [h, expected] of cases) {
      const pub = publicHealth(h);
      expect(Object.keys(pub).sort()).toEqual(["age_hours", "status"]);
      expect(pub).toEqual(expected);
      const json = JSON.stringify(pub);
      for (const secret of ["backups/", "database-", "secret-bucket-name", "1572864", "12345", "R2"]) expect(json).not.toContain(secret);
    }
  });
});

describe("nextScheduledRun (daily 02:00 UTC)", () => {
  const next = (iso: string) => nextScheduledRun(new Date(iso)).toISOString();

  it("is today's 02:00 before it and tomorrow's from 02:00:00.000 on", () => {
    expect(next("2026-06-10T00:00:00.000Z")).toBe("2026-06-10T02:00:00.000Z");
    expect(next("2026-06-09T23:59:59.999Z")).toBe("2026-06-10T02:00:00.000Z");
    expect(next("2026-06-10T01:59:59.999Z")).toBe("2026-06-10T02:00:00.000Z");
    expect(next("2026-06-10T02:00:00.000Z")).toBe("2026-06-11T02:00:00.000Z");
    expect(next("2026-06-10T02:00:00.001Z")).toBe("2026-06-11T02:00:00.000Z");
    expect(next("2026-06-10T12:00:00.000Z")).toBe("2026-06-11T02:00:00.000Z");
  });

  it("crosses month and year ends and leap days in UTC", () => {
    expect(next("2026-12-31T03:00:00.000Z")).toBe("2027-01-01T02:00:00.000Z");
    expect(next("2028-02-28T02:30:00.000Z")).toBe("2028-02-29T02:00:00.000Z");
    expect(next("2026-04-30T22:00:00.000Z")).toBe("2026-05-01T02:00:00.000Z");
  });

  it("matches the cron Worker's trigger in functions/wrangler.toml", () => {
    const toml = fs.readFileSync(path.join(PROJECT_ROOT, "functions", "wrangler.toml"), "utf8");
    expect(/^crons\s*=\s*\[([^\]]*)\]/m.exec(toml)?.[1].trim()).toBe(JSON.stringify(SCHEDULE_CRON));
  });
});

describe("against real local D1 and R2", () => {
  let platform: Awaited<ReturnType<typeof freshPlatform>>;
  let db: D1Database;
  let bucket: R2Bucket;
  // Real clock (activity_log.created_at is written by D1's clock), whole seconds (backup names).
  const T = new Date(Math.floor(Date.now() / 1000) * 1000);
  const before = (h: number) => new Date(T.getTime() - h * HOUR);

  beforeAll(async () => {
    platform = await freshPlatform();
    db = platform.env.DB;
    bucket = platform.env.DOCUMENTS;
  });
  afterAll(async () => {
    await platform?.dispose();
  });

  describe("getBackupHealth", () => {
    it("never: an empty bucket (client documents and look-alikes are not backups)", async () => {
      await bucket.put("clients/acme/contract.pdf", "pdf");
      await bucket.put("backups/notes.txt", "not a backup");
      const h = await getBackupHealth({ db, bucket, now: T });
      expect(h).toEqual({
        status: "never",
        summary: "no complete backup exists",
        issues: [],
        checkedAt: T.toISOString(),
        lastSuccess: null,
        lastRun: null,
        lastDrill: null,
        nextScheduledRun: nextScheduledRun(T).toISOString(),
        staleAfterHours: 26,
        incompleteCount: 0,
        backupsCount: 0,
        totalSize: 0,
        incompleteSize: 0,
      });
      expect(publicHealth(h)).toEqual({ status: "stale", age_hours: null });
    });

    it("stale: the only backup is 27 h old; its facts come from its manifest", async () => {
      await db.prepare("INSERT INTO clients (id, company_name, email) VALUES ('c1', 'Acme', 'it@acme.test')").run();
      const { summary, manifest } = await backupDatabase({ db, bucket, now: before(27), trigger: "cli" });
      const h = await getBackupHealth({ db, bucket, now: T });
      expect(h.status).toBe("stale");
      expect(h.lastSuccess).toEqual({
        key: summary.key,
        name: summary.name,
        createdAt: before(27).toISOString(),
        ageHours: 27,
        size: summary.size,
        tables: manifest.tables.length,
        rows: manifest.totalRows,
      });
      expect(h.lastSuccess!.rows).toBeGreaterThanOrEqual(1); // the client, plus d1_migrations' rows
      expect(h.lastRun).toMatchObject({ action: "database_backup_created", ok: true });
      expect(h).toMatchObject({ backupsCount: 1, totalSize: summary.size, incompleteCount: 0 });
      expect(publicHealth(h)).toEqual({ status: "stale", age_hours: 27 });
    });

    it("ok: a newer backup 25 h old", async () => {
      const first = (await listBackups(bucket)).backups[0];
      const { summary } = await backupDatabase({ db, bucket, now: before(25), trigger: "cli" });
      const h = await getBackupHealth({ db, bucket, now: T });
      expect(h.status).toBe("ok");
      expect(h.lastSuccess).toMatchObject({ key: summary.key, ageHours: 25 });
      expect(h).toMatchObject({ backupsCount: 2, totalSize: summary.size + first.size });
      expect(publicHealth(h)).toEqual({ status: "ok", age_hours: 25 });
    });

    it("failing: a real failed backup after the newest success; the last good backup is unchanged", async () => {
      const good = (await getBackupHealth({ db, bucket, now: T })).lastSuccess;
      const faulty = faultyBucket(bucket, { put: { key: /\.manifest\.json$/, message: "injected: R2 is unavailable" } });
      await expect(backupDatabase({ db, bucket: faulty.bucket, now: before(1), trigger: "manual", actor: "user_admin" })).rejects.toThrow(
        "injected: R2 is unavailable",
      );
      const h = await getBackupHealth({ db, bucket, now: T });
      expect(h.status).toBe("failing");
      expect(h.lastSuccess).toEqual(good);
      expect(h.lastRun).toMatchObject({ action: "database_backup_failed", ok: false, code: "STORAGE_ERROR" });
      expect(h.lastRun!.reason).toContain("injected: R2 is unavailable");
      expect(h.incompleteCount).toBe(0); // the failed run removed what it wrote
      expect(publicHealth(h)).toEqual({ status: "stale", age_hours: 25 });
    });

    it("ok again after a successful backup; counts incomplete leftovers; takes a listing it is given", async () => {
      const { summary } = await backupDatabase({ db, bucket, now: before(0.5), trigger: "manual", actor: "user_admin" });
      // A leftover of an interrupted run: an object without its manifest.
      await bucket.put(`backups/database-${before(2).toISOString().slice(0, 19).replace(/[T:]/g, "-")}.sql.gz`, "partial");
      const listing = await listBackups(bucket);
      const h = await getBackupHealth({ db, bucket, now: T, listing });
      expect(h.status).toBe("ok");
      expect(h.lastSuccess).toMatchObject({ key: summary.key, ageHours: 0.5 });
      expect(h.lastRun).toMatchObject({ action: "database_backup_created", ok: true });
      expect(h.lastRun).not.toHaveProperty("reason");
      expect(h).toMatchObject({ backupsCount: 3, incompleteCount: 1, incompleteSize: "partial".length });
      expect(await getBackupHealth({ db, bucket, now: T })).toEqual(h);
    });

    it("a nightly run that failed in cleanup, after its backup, is failing with stage cleanup", async () => {
      await db
        .prepare("INSERT INTO activity_log (action, entity_type, details) VALUES ('scheduled_backup_failed', 'backup', ?)")
        .bind(JSON.stringify({ stage: "cleanup", key: "backups/x", code: "STORAGE_ERROR", reason: "deleting failed" }))
        .run();
      const h = await getBackupHealth({ db, bucket, now: T });
      expect(h.status).toBe("failing");
      expect(h.lastRun).toMatchObject({ action: "scheduled_backup_failed", ok: false, stage: "cleanup", reason: "deleting failed" });
      await backupDatabase({ db, bucket, now: before(0.25), trigger: "manual" });
      expect((await getBackupHealth({ db, bucket, now: T })).status).toBe("ok");
    });
  });
});

describe("issues beside age and the last run (real local D1 and R2)", () => {
  let platform: Awaited<ReturnType<typeof freshPlatform>>;
  let db: D1Database;
  let bucket: R2Bucket;
  const T = new Date(Math.floor(Date.now() / 1000) * 1000);
  const before = (h: number) => new Date(T.getTime() - h * HOUR);

  beforeAll(async () => {
    platform = await freshPlatform();
    db = platform.env.DB;
    bucket = platform.env.DOCUMENTS;
  });
  afterAll(async () => {
    await platform?.dispose();
  });

  /** The admin health, checked against the cheap public one: the same rule must give the same answer. */
  async function check(now = T) {
    const h = await getBackupHealth({ db, bucket, now });
    expect(await getPublicHealth({ db, bucket, now })).toEqual(publicHealth(h));
    return { status: h.status, codes: h.issues.map((i) => `${i.severity}:${i.code}`), newest: h.lastSuccess?.name ?? null, summary: h.summary };
  }
  const log = (action: string, details: object = {}) =>
    db.prepare("INSERT INTO activity_log (action, entity_type, details) VALUES (?, 'backup', ?)").bind(action, JSON.stringify(details)).run();
  const lease = (op: string, expiresAt: Date) =>
    db
      .prepare("INSERT INTO backup_lock (name, owner, started_at, expires_at, state) VALUES ('backup', 'scheduled:x', ?, ?, ?)")
      .bind(new Date(expiresAt.getTime() - 120_000).toISOString(), expiresAt.toISOString(), JSON.stringify({ op, name: backupNameFor(before(0.1)), uploads: [] }))
      .run();

  it("two backups asked for in the same second: one backup, one 409, health stays ok", async () => {
    const now = before(1);
    await runBackup({ db, bucket, now, trigger: "manual", actor: "user_a" });
    await expect(runBackup({ db, bucket, now, trigger: "manual", actor: "user_a" })).rejects.toMatchObject({ code: "BACKUP_EXISTS", status: 409 });
    expect(await check()).toMatchObject({ status: "ok", codes: [], newest: backupNameFor(now) });
    expect(publicHealth(await getBackupHealth({ db, bucket, now: T }))).toEqual({ status: "ok", age_hours: 1 });
  });

  it("a backup dated 2099 is amber (attention), never the newest", async () => {
    const future = await backupDatabase({ db, bucket, now: new Date(Date.UTC(2099, 0, 1)), trigger: "cli" });
    const r = await check();
    expect(r).toMatchObject({ status: "attention", codes: ["amber:FUTURE_BACKUP"], newest: backupNameFor(before(1)) });
    expect(r.summary).toMatch(/^the newest complete backup is 1\.0 h old; 1 backup\(s\) dated in the future \(database-2099-01-01-00-00-00\)/);
    expect(await getPublicHealth({ db, bucket, now: T })).toEqual({ status: "attention", age_hours: 1 });
    await bucket.delete([future.summary.key, future.summary.manifestKey]);
    expect((await check()).status).toBe("ok");
  });

  it("leftovers older than a day are amber", async () => {
    const staged = keysFor(backupNameFor(before(48))).staging;
    await bucket.put(staged, "partial");
    expect((await check()).status).toBe("ok"); // written just now: could be a run still writing
    const r = await check(new Date(T.getTime() + 24.5 * HOUR)); // the backup is 25.5 h old then: still fresh
    expect(r).toMatchObject({ status: "attention", codes: ["amber:OLD_LEFTOVERS"] });
    await bucket.delete(staged);
  });

  it("the newest backup failing verification (object replaced, or missing) is red, and the older good one is the newest", async () => {
    const { summary } = await backupDatabase({ db, bucket, now: before(0.5), trigger: "cli" });
    const original = await (await bucket.get(summary.key))!.arrayBuffer();
    const meta = (await bucket.head(summary.key))!.customMetadata;
    // Bytes replaced with the metadata copied along: only the size (or R2's checksum) tells.
    await bucket.put(summary.key, new Uint8Array(original.byteLength + 1), { customMetadata: meta });
    let r = await check();
    expect(r).toMatchObject({ status: "failing", codes: ["red:DAMAGED_BACKUP"], newest: backupNameFor(before(1)) });
    expect(r.summary).toContain(`the newest backup ${summary.name} fails verification (manifest does not match the backup object)`);
    await bucket.delete(summary.key);
    r = await check();
    expect(r).toMatchObject({ status: "failing", codes: ["red:DAMAGED_BACKUP"] });
    expect(r.summary).toContain("manifest without backup object");
    await bucket.delete(summary.manifestKey);
    expect((await check()).status).toBe("ok");
  });

  it("a failed restoration test is red until one passes", async () => {
    await log("restoration_test_failed", { key: "backups/x", checks: "failed" });
    expect(await check()).toMatchObject({ status: "failing", codes: ["red:RESTORATION_TEST_FAILED"] });
    await log("restoration_test_completed", { key: "backups/x", checks: "passed" });
    expect((await check()).status).toBe("ok");
  });

  it("an interrupted backup run is red, an interrupted cleanup amber, a live run neither", async () => {
    await lease("backup", new Date(T.getTime() + 60_000));
    expect((await check()).status).toBe("ok");
    await db.exec("DELETE FROM backup_lock");
    await lease("backup", new Date(T.getTime() - 1000));
    expect(await check()).toMatchObject({ status: "failing", codes: ["red:INTERRUPTED_RUN"] });
    await db.exec("DELETE FROM backup_lock");
    await lease("cleanup", new Date(T.getTime() - 1000));
    expect(await check()).toMatchObject({ status: "attention", codes: ["amber:INTERRUPTED_RUN"] });
    await db.exec("DELETE FROM backup_lock");
  });

  it("the public health is answered from memory for its TTL, then read again", async () => {
    let clock = 0;
    const cached = publicHealthCache(() => clock);
    expect(await cached({ db, bucket }, 30_000)).toMatchObject({ status: "ok" });
    await log("restoration_test_failed", {});
    clock = 29_999;
    expect(await cached({ db, bucket }, 30_000)).toMatchObject({ status: "ok" }); // from memory
    clock = 30_000;
    expect(await cached({ db, bucket }, 30_000)).toMatchObject({ status: "stale" });
    // TTL 0 reads every time.
    await log("restoration_test_completed", {});
    expect(await cached({ db, bucket }, 0)).toMatchObject({ status: "ok" });
  });
});
