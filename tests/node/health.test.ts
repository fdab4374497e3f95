// Backup health and alerts. Pure rules first (staleness, the public view, the schedule, the alert
// message); then the same functions against real local D1/R2 with real backups taken at chosen
// times; then alert delivery over real sockets to a node:http receiver on 127.0.0.1 (success,
// HTTP 500, refused connection, no answer); then the nightly run with alerts end to end in Node.
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKUP_ACTIONS } from "../../lib/backup/activity";
import { buildAlertPayload, checkWebhookUrl, sendAlert, type AlertInput, type AlertPayload } from "../../lib/backup/alerts";
import { backupDatabase } from "../../lib/backup/backup";
import { BackupError } from "../../lib/backup/errors";
import {
  assessHealth,
  backupSizeSeries,
  getBackupHealth,
  nextScheduledRun,
  publicHealth,
  recentBackupActivity,
  SCHEDULE_CRON,
  STALE_AFTER_HOURS,
  type BackupHealth,
} from "../../lib/backup/health";
import { listBackups } from "../../lib/backup/list";
import { readAlertWebhookUrl, runScheduledBackupWithAlerts, staleAtCronTime } from "../../lib/backup/scheduled";
import { PROJECT_ROOT } from "../../lib/local/platform";
import { closedPort, startAlertReceiver, type AlertReceiver } from "../helpers/alert-receiver";
import { faultyBucket } from "../helpers/faults";
import { freshPlatform } from "../helpers/local";

const HOUR = 60 * 60 * 1000;
const DAY = 24 * HOUR;
const NOW = new Date("2026-06-10T12:00:00.000Z");
const hoursAgo = (h: number, from = NOW) => new Date(from.getTime() - h * HOUR);

function health(overrides: Partial<BackupHealth> = {}): BackupHealth {
  return {
    status: "ok",
    summary: "the newest complete backup is 10.0 h old",
    checkedAt: NOW.toISOString(),
    lastSuccess: {
      key: "backups/database-2026-06-10-02-00-00.sql.gz",
      name: "database-2026-06-10-02-00-00",
      createdAt: "2026-06-10T02:00:00.000Z",
      ageHours: 10,
      size: 1_572_864,
      tables: 14,
      rows: 12_345,
    },
    lastRun: { action: "scheduled_backup_completed", at: "2026-06-10T02:00:05.000Z", ok: true },
    nextScheduledRun: "2026-06-11T02:00:00.000Z",
    staleAfterHours: 26,
    incompleteCount: 0,
    backupsCount: 7,
    totalSize: 9_000_000,
    incompleteSize: 0,
    ...overrides,
  };
}

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

describe("buildAlertPayload", () => {
  const failed: AlertInput = {
    kind: "backup_failed",
    reason: "writing the manifest failed: R2 <unavailable> & retrying",
    code: "STORAGE_ERROR",
    stage: "backup",
    health: health({ status: "failing", summary: "the last backup run failed; the newest complete backup is 24.0 h old", lastSuccess: { ...health().lastSuccess!, ageHours: 24 } }),
    at: new Date("2026-06-11T02:00:07.000Z"),
  };

  function assertSlackShape(p: AlertPayload) {
    expect(typeof p.text).toBe("string");
    expect(p.blocks!.length).toBeLessThanOrEqual(50);
    for (const b of p.blocks!) {
      if (b.type === "header") expect(b.text.text.length).toBeLessThanOrEqual(150);
      if (b.type === "section") expect(b.text!.text.length).toBeLessThanOrEqual(3000);
    }
    expect(JSON.parse(JSON.stringify(p))).toEqual(p);
  }

  it("a failure says what failed, why, the last good backup and its age, and what to do, in text alone", () => {
    const p = buildAlertPayload(failed);
    assertSlackShape(p);
    expect(p.text).toContain("D1 backup FAILED");
    expect(p.text).toContain("2026-06-11 02:00 UTC");
    expect(p.text).toContain("writing the manifest failed: R2 &lt;unavailable&gt; &amp; retrying"); // escaped for Slack
    expect(p.text).toContain("stage backup, code STORAGE_ERROR");
    expect(p.text).toContain("*Last good backup:* backups/database-2026-06-10-02-00-00.sql.gz, taken 2026-06-10 02:00 UTC (24.0 h before this alert; 1.5 MB, 14 tables, 12345 rows)");
    expect(p.text).toContain("*Status:* failing");
    expect(p.text).toContain("next scheduled run 2026-06-11 02:00 UTC");
    expect(p.text).toContain("BACKUP_RESTORATION.md");
    expect(p.text).toContain("POST /api/admin/backup");
    expect(p.text).toContain("npx wrangler tail --config functions/wrangler.toml");
    expect(p.text).not.toMatch(/<(?!\/)/); // no raw "<" that Slack would read as a link
    expect(p.blocks![0]).toEqual({ type: "header", text: { type: "plain_text", text: "D1 backup FAILED", emoji: true } });
  });

  it("is pure: same input, same output, input untouched", () => {
    const copy = structuredClone(failed);
    expect(buildAlertPayload(failed)).toEqual(buildAlertPayload(failed));
    expect(failed).toEqual(copy);
  });

  it("says plainly when there is no backup at all, or when health could not be read", () => {
    const never = buildAlertPayload({ ...failed, health: health({ status: "never", lastSuccess: null }) });
    expect(never.text).toContain("there is NO complete backup to restore from");
    const unknown = buildAlertPayload({ ...failed, health: null, healthError: "missing binding DOCUMENTS", stage: "config", code: "CONFIG_ERROR" });
    expect(unknown.text).toContain("*Last good backup:* unknown: backup health could not be read (missing binding DOCUMENTS)");
    expect(unknown.text).not.toContain("*Status:*");
    assertSlackShape(unknown);
  });

  it("a cleanup-stage failure says the backup itself was made", () => {
    expect(buildAlertPayload({ ...failed, stage: "cleanup" }).text).toContain("the backup itself was made; retention cleanup failed after it");
  });

  it("clips a huge reason to stay within Slack's limits", () => {
    const p = buildAlertPayload({ ...failed, reason: "x".repeat(10_000) });
    assertSlackShape(p);
    expect(p.text.length).toBeLessThan(4000);
    expect(p.text).toContain("…");
  });

  it("a stale alert names the gap, the backup before it and the one this run made", () => {
    const before = health({
      status: "stale",
      checkedAt: "2026-06-12T02:00:00.000Z",
      summary: "the newest complete backup is 48.0 h old (limit 26 h)",
      lastSuccess: { ...health().lastSuccess!, ageHours: 48 },
    });
    const p = buildAlertPayload({
      kind: "backup_stale",
      reason: staleAtCronTime(before, true)!,
      health: before,
      at: new Date("2026-06-12T02:00:00.000Z"),
      newBackup: { key: "backups/database-2026-06-12-02-00-00.sql.gz", size: 2048 },
    });
    assertSlackShape(p);
    expect(p.text).toContain("D1 backups were STALE");
    expect(p.text).toContain("was 48.0 h old (limit 26 h): at least one nightly backup is missing");
    expect(p.text).toContain("*This run succeeded:* backups/database-2026-06-12-02-00-00.sql.gz (2.0 KB)");
    expect(p.text).toContain("*Newest backup before this run:* backups/database-2026-06-10-02-00-00.sql.gz");
    expect(p.text).toContain("D1 Time Travel");
    expect(p.text).toContain("BACKUP_RESTORATION.md");
  });
});

describe("staleAtCronTime and ALERT_WEBHOOK_URL", () => {
  const at = (ageH: number) => health({ checkedAt: NOW.toISOString(), lastSuccess: { ...health().lastSuccess!, createdAt: hoursAgo(ageH).toISOString() } });

  it("reports a gap when the newest backup was more than 26 h old when the cron fired", () => {
    expect(staleAtCronTime(at(24), true)).toBeNull();
    expect(staleAtCronTime(at(26), true)).toBeNull();
    expect(staleAtCronTime(at(27), true)).toContain("27.0 h old (limit 26 h)");
  });

  it("no backup at cron time: a gap only if backups had been made before (not on the first run)", () => {
    expect(staleAtCronTime({ lastSuccess: null, checkedAt: NOW.toISOString() }, false)).toBeNull();
    expect(staleAtCronTime({ lastSuccess: null, checkedAt: NOW.toISOString() }, true)).toContain("backups had been made before");
  });

  it("unset or empty turns alerts off; anything else must be an http(s) URL, and errors never echo it", () => {
    expect(readAlertWebhookUrl(undefined)).toEqual({ url: null, problem: null });
    expect(readAlertWebhookUrl("  ")).toEqual({ url: null, problem: null });
    expect(readAlertWebhookUrl("https://hooks.slack.com/services/T0/B0/SECRET")).toEqual({ url: "https://hooks.slack.com/services/T0/B0/SECRET", problem: null });
    for (const [value, message] of [
      ["ftp://hooks.example/SECRET", "must use https: or http:, not ftp:"],
      ["hooks.slack.com/services/SECRET", "not an absolute URL"],
      ["https://user:SECRET@hooks.example/x", "must not contain a user name or password"],
    ]) {
      const r = readAlertWebhookUrl(value);
      expect(r.url).toBeNull();
      expect(r.problem).toContain("ALERT_WEBHOOK_URL is invalid");
      expect(r.problem).toContain(message);
      expect(r.problem).not.toContain("SECRET");
    }
    expect(checkWebhookUrl(42)).toEqual({ ok: false, error: "webhook URL is empty" });
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
        checkedAt: T.toISOString(),
        lastSuccess: null,
        lastRun: null,
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

  describe("recentBackupActivity", () => {
    let ids: number[];

    beforeAll(async () => {
      await db.exec("DELETE FROM activity_log");
      const stmts: D1PreparedStatement[] = [];
      for (let i = 0; i < 23; i++) {
        const action = BACKUP_ACTIONS[i % BACKUP_ACTIONS.length];
        const details = i === 4 ? "{not json" : i === 7 ? null : JSON.stringify({ i });
        stmts.push(db.prepare("INSERT INTO activity_log (user_id, action, entity_type, entity_id, details) VALUES (?, ?, 'backup', ?, ?)").bind(i % 2 ? "user_a" : null, action, `e${i}`, details));
        if (i % 8 === 0) {
          // The portal's own activity shares the table and must not show up.
          stmts.push(db.prepare("INSERT INTO activity_log (user_id, action, entity_type, details) VALUES ('user_b', 'ticket_created', 'ticket', '{}')"));
        }
      }
      await db.batch(stmts);
      ids = (await db.prepare("SELECT id FROM activity_log WHERE entity_type = 'backup' ORDER BY id DESC").all<{ id: number }>()).results.map((r) => r.id);
      expect(ids).toHaveLength(23);
    });

    it("pages through backup activity newest first, with the total", async () => {
      const seen: number[] = [];
      for (let offset = 0; offset < 30; offset += 10) {
        const page = await recentBackupActivity(db, { limit: 10, offset });
        expect(page).toMatchObject({ total: 23, limit: 10, offset });
        seen.push(...page.entries.map((e) => e.id));
        expect(page.entries.length).toBe(Math.min(10, Math.max(0, 23 - offset)));
      }
      expect(seen).toEqual(ids);
      const beyond = await recentBackupActivity(db, { limit: 10, offset: 100 });
      expect(beyond).toEqual({ entries: [], total: 23, limit: 10, offset: 100 });
    });

    it("parses details (bad JSON stays the raw string, NULL stays null) and maps the columns", async () => {
      const { entries } = await recentBackupActivity(db, { limit: 100 });
      const byEntity = new Map(entries.map((e) => [e.entityId, e]));
      expect(byEntity.get("e4")!.details).toBe("{not json");
      expect(byEntity.get("e7")!.details).toBeNull();
      expect(byEntity.get("e3")).toMatchObject({ action: BACKUP_ACTIONS[3], userId: "user_a", entityType: "backup", details: { i: 3 } });
      expect(byEntity.get("e3")!.createdAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      expect(entries.some((e) => (e.action as string) === "ticket_created")).toBe(false);
      expect(new Set(entries.map((e) => e.action))).toEqual(new Set(BACKUP_ACTIONS)); // alerts included
    });

    it("defaults to 20 from 0, accepts query-string digits, refuses anything else with INVALID_INPUT", async () => {
      expect((await recentBackupActivity(db)).entries.map((e) => e.id)).toEqual(ids.slice(0, 20));
      expect((await recentBackupActivity(db, { limit: "5", offset: "3" })).entries.map((e) => e.id)).toEqual(ids.slice(3, 8));
      for (const bad of [{ limit: 0 }, { limit: 101 }, { limit: 1.5 }, { limit: "ten" }, { offset: -1 }, { offset: "1e3" }]) {
        const err = await recentBackupActivity(db, bad).catch((e) => e);
        expect(err, JSON.stringify(bad)).toBeInstanceOf(BackupError);
        expect(err.code).toBe("INVALID_INPUT");
      }
    });
  });

  describe("backupSizeSeries", () => {
    it("one point per complete backup in the last 30 days, oldest first, from real backups", async () => {
      const at = ["2024-12-20T02:00:00Z", "2025-01-02T00:00:00Z", "2025-01-15T02:00:00Z", "2025-01-15T14:00:00Z", "2025-01-31T02:00:00Z"];
      const made = new Map<string, { key: string; size: number }>();
      for (const iso of at) {
        const { summary } = await backupDatabase({ db, bucket, now: new Date(iso), trigger: "cli" });
        made.set(iso, { key: summary.key, size: summary.size });
      }
      const listing = await listBackups(bucket); // also holds the getBackupHealth tests' newer backups
      const now = new Date("2025-02-01T00:00:00Z");
      const point = (iso: string) => ({ date: iso.slice(0, 10), ...made.get(iso)! });
      expect(backupSizeSeries(listing, now)).toEqual(at.slice(1).map(point)); // 30 days back is inclusive
      expect(backupSizeSeries(listing, now, 7)).toEqual([point("2025-01-31T02:00:00Z")]);
      expect(backupSizeSeries({ backups: [], incomplete: [] }, now)).toEqual([]);
      expect(() => backupSizeSeries(listing, now, 0)).toThrow("days must be a positive integer");
    });
  });
});

describe("sendAlert to a real HTTP receiver", () => {
  let receiver: AlertReceiver;
  const payload: AlertPayload = { text: "D1 backup FAILED: test", blocks: [{ type: "header", text: { type: "plain_text", text: "x" } }] };

  beforeAll(async () => {
    receiver = await startAlertReceiver();
  });
  afterAll(async () => {
    await receiver?.close();
  });

  it("delivers: a JSON POST, 2xx is ok", async () => {
    const r = await sendAlert(`${receiver.url}/services/T0/B0/SECRETTOKEN`, payload);
    expect(r).toEqual({ ok: true, status: 200 });
    const got = receiver.received.at(-1)!;
    expect(got).toMatchObject({ method: "POST", path: "/services/T0/B0/SECRETTOKEN" });
    expect(got.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(got.body)).toEqual(payload);
  });

  it("a 500 from the receiver is a failure with its status and body, not a throw", async () => {
    const r = await sendAlert(`${receiver.url}/status/500/SECRETTOKEN`, payload);
    expect(r.ok).toBe(false);
    expect(r.status).toBe(500);
    expect(r.error).toContain("answered HTTP 500: receiver says 500");
    expect(r.error).not.toContain("SECRETTOKEN"); // the body echoed the path; it is redacted
  });

  it("a redirect is a failure (a redirected POST would arrive as a GET without the message)", async () => {
    const r = await sendAlert(`${receiver.url}/redirect/x`, payload);
    expect(r).toMatchObject({ ok: false, status: 302 });
    expect(receiver.received.filter((q) => q.path === "/ok")).toEqual([]);
  });

  it("an unreachable receiver (closed port) is a failure naming the host, not a throw", async () => {
    const port = await closedPort();
    const r = await sendAlert(`http://127.0.0.1:${port}/services/SECRETTOKEN`, payload);
    expect(r.ok).toBe(false);
    expect(r.status).toBeUndefined();
    expect(r.error).toContain(`could not reach 127.0.0.1:${port}`);
    expect(r.error).toMatch(/ECONNREFUSED/);
    expect(r.error).not.toContain("SECRETTOKEN");
  });

  it("a receiver that never answers times out", async () => {
    const started = Date.now();
    const r = await sendAlert(`${receiver.url}/hang/SECRETTOKEN`, payload, { timeoutMs: 300 });
    expect(r).toEqual({ ok: false, error: `${new URL(receiver.url).host} did not answer within 300 ms` });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(receiver.received.at(-1)!.path).toBe("/hang/SECRETTOKEN"); // it did arrive
  });

  it("an invalid URL is a clear failure and sends nothing", async () => {
    const count = receiver.count();
    expect(await sendAlert("ftp://127.0.0.1/SECRETTOKEN", payload)).toEqual({ ok: false, error: "webhook URL must use https: or http:, not ftp:" });
    expect(await sendAlert("not a url", payload)).toEqual({ ok: false, error: "webhook URL is not an absolute URL (expected https://…)" });
    expect(receiver.count()).toBe(count);
  });

  it("uses an injected fetch, and reports a fetch that throws", async () => {
    const r = await sendAlert("https://hooks.example/x", payload, {
      fetch: async () => {
        throw new TypeError("boom");
      },
    });
    expect(r).toEqual({ ok: false, error: "could not reach hooks.example: boom" });
  });
});

describe("runScheduledBackupWithAlerts (library, real local D1/R2, real receiver)", () => {
  let platform: Awaited<ReturnType<typeof freshPlatform>>;
  let db: D1Database;
  let bucket: R2Bucket;
  let receiver: AlertReceiver;
  const S = new Date(Math.floor(Date.now() / 1000) * 1000);
  const later = (h: number) => new Date(S.getTime() + h * HOUR);
  const hook = (name: string) => `${receiver.url}/${name}/T0/B0/SECRETTOKEN`;
  const sentTo = (name: string) => receiver.received.filter((r) => r.path.startsWith(`/${name}/`));

  async function alertRows(): Promise<{ action: string; entity_id: string | null; details: Record<string, unknown> }[]> {
    const rows = await db
      .prepare("SELECT action, entity_id, details FROM activity_log WHERE action IN ('backup_alert_sent', 'backup_alert_failed') ORDER BY id")
      .all<{ action: string; entity_id: string | null; details: string }>();
    return rows.results.map((r) => ({ ...r, details: JSON.parse(r.details) }));
  }

  beforeAll(async () => {
    [platform, receiver] = await Promise.all([freshPlatform(), startAlertReceiver()]);
    db = platform.env.DB;
    bucket = platform.env.DOCUMENTS;
  });
  afterAll(async () => {
    await Promise.all([platform?.dispose(), receiver?.close()]);
  });

  it("the first run ever (no backup, none logged) is not a gap: no alert", async () => {
    const r = await runScheduledBackupWithAlerts({ db, bucket, now: S, alertWebhookUrl: hook("first") });
    expect(r.staleBeforeRun).toBeNull();
    expect(r.alert).toBeNull();
    expect(sentTo("first")).toEqual([]);
    expect(await alertRows()).toEqual([]);
  });

  it("a run 24 h after the last backup: no alert", async () => {
    const r = await runScheduledBackupWithAlerts({ db, bucket, now: later(24), alertWebhookUrl: hook("fresh") });
    expect(r.staleBeforeRun).toBeNull();
    expect(r.alert).toBeNull();
    expect(sentTo("fresh")).toEqual([]);
  });

  it("a successful run 27 h after the last backup sends backup_stale and logs backup_alert_sent", async () => {
    const previous = (await listBackups(bucket)).backups[0].key;
    const r = await runScheduledBackupWithAlerts({ db, bucket, now: later(51), alertWebhookUrl: hook("stale") });
    expect(r.staleBeforeRun).toContain(`newest complete backup (${previous}) was 27.0 h old`);
    expect(r.alert).toEqual({ kind: "backup_stale", delivery: { ok: true, status: 200 } });
    const [got] = sentTo("stale");
    expect(got.headers["content-type"]).toBe("application/json");
    const body = JSON.parse(got.body) as AlertPayload;
    expect(body.text).toContain("D1 backups were STALE");
    expect(body.text).toContain(`*This run succeeded:* ${r.backup.summary.key}`);
    expect(body.text).toContain(`*Newest backup before this run:* ${previous}`);
    expect(await alertRows()).toEqual([
      {
        action: "backup_alert_sent",
        entity_id: previous,
        details: { kind: "backup_stale", host: new URL(receiver.url).host, status: 200, reason: r.staleBeforeRun },
      },
    ]);
  });

  it("a failed run sends backup_failed and rethrows the run's own error", async () => {
    const lastGood = (await listBackups(bucket)).backups[0];
    const faulty = faultyBucket(bucket, { put: { key: /\.manifest\.json$/, message: "injected: R2 is unavailable" } });
    let thrown: unknown;
    try {
      await runScheduledBackupWithAlerts({ db, bucket: faulty.bucket, now: later(52), alertWebhookUrl: hook("failed") });
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(BackupError);
    expect((thrown as BackupError).code).toBe("STORAGE_ERROR");
    const [got] = sentTo("failed");
    const body = JSON.parse(got.body) as AlertPayload;
    expect(body.text).toContain("D1 backup FAILED");
    expect(body.text).toContain("injected: R2 is unavailable");
    expect(body.text).toContain("stage backup, code STORAGE_ERROR");
    expect(body.text).toContain(`*Last good backup:* ${lastGood.key}`);
    expect(body.text).toContain("(1.0 h before this alert;");
    expect((await alertRows()).at(-1)).toMatchObject({ action: "backup_alert_sent", details: { kind: "backup_failed", status: 200 } });
  });

  it("an alert that cannot be delivered (HTTP 500, no answer) is logged and never hides the failure", async () => {
    const faulty = faultyBucket(bucket, { put: { key: /\.manifest\.json$/, message: "injected: R2 is unavailable" } });
    for (const [name, timeout, error] of [
      ["status/500", undefined, "answered HTTP 500"],
      ["hang", 300, "did not answer within 300 ms"],
    ] as const) {
      const err = await runScheduledBackupWithAlerts({
        db,
        bucket: faulty.bucket,
        now: later(53 + (timeout ? 1 : 0)),
        alertWebhookUrl: hook(name),
        alertTimeoutMs: timeout,
      }).catch((e) => e);
      expect(err).toBeInstanceOf(BackupError);
      expect(err.message).toContain("injected: R2 is unavailable");
      expect((await alertRows()).at(-1)).toMatchObject({ action: "backup_alert_failed", details: { kind: "backup_failed" } });
      expect(String((await alertRows()).at(-1)!.details.error)).toContain(error);
    }
  });

  it("an invalid ALERT_WEBHOOK_URL still gets the backup made, is logged, then fails the run with CONFIG_ERROR", async () => {
    const count = (await listBackups(bucket)).backups.length;
    const err = await runScheduledBackupWithAlerts({ db, bucket, now: later(55), alertWebhookUrl: "ftp://hooks.example/SECRETTOKEN" }).catch((e) => e);
    expect(err).toBeInstanceOf(BackupError);
    expect(err.code).toBe("CONFIG_ERROR");
    expect(err.message).toContain("ALERT_WEBHOOK_URL is invalid: webhook URL must use https: or http:, not ftp:");
    expect(err.message).toContain("The backup succeeded");
    const listing = await listBackups(bucket);
    expect(listing.backups).toHaveLength(count + 1);
    expect(listing.backups[0].manifest.createdAt).toBe(later(55).toISOString());
    expect((await alertRows()).at(-1)).toMatchObject({ action: "backup_alert_failed", entity_id: listing.backups[0].key, details: { kind: null } });
  });

  it("never writes the webhook URL's secret part into activity_log", async () => {
    const all = (await db.prepare("SELECT details FROM activity_log").all<{ details: string }>()).results.map((r) => r.details).join("\n");
    expect(all).toContain("backup_failed");
    expect(all).not.toContain("SECRETTOKEN");
  });
});
