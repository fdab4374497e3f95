// The nightly run with alerts (lib/monitor/nightly.ts): the stale-at-cron-time rule, then runNightly
// end to end in Node against real local D1/R2 and a real node:http alert receiver.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BackupError, listBackups } from "../../lib/backup";
import { parseAlertWebhook, runNightly, staleAtCronTime, type AlertPayload } from "../../lib/monitor";
import { startAlertReceiver, type AlertReceiver } from "../helpers/alert-receiver";
import { faultyBucket } from "../helpers/faults";
import { health, HOUR, hoursAgo, NOW } from "../helpers/health-fixture";
import { freshPlatform } from "../helpers/local";

describe("staleAtCronTime", () => {
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
});

describe("runNightly (library, real local D1/R2, real receiver)", () => {
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
    const r = await runNightly({ db, bucket, now: S, alertWebhook: parseAlertWebhook(hook("first")) });
    expect(r.staleBeforeRun).toBeNull();
    expect(r.alert).toBeNull();
    expect(sentTo("first")).toEqual([]);
    expect(await alertRows()).toEqual([]);
  });

  it("a run 24 h after the last backup: no alert", async () => {
    const r = await runNightly({ db, bucket, now: later(24), alertWebhook: parseAlertWebhook(hook("fresh")) });
    expect(r.staleBeforeRun).toBeNull();
    expect(r.alert).toBeNull();
    expect(sentTo("fresh")).toEqual([]);
  });

  it("a successful run 27 h after the last backup sends backup_stale and logs backup_alert_sent", async () => {
    const previous = (await listBackups(bucket)).backups[0].key;
    const r = await runNightly({ db, bucket, now: later(51), alertWebhook: parseAlertWebhook(hook("stale")) });
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
      await runNightly({ db, bucket: faulty.bucket, now: later(52), alertWebhook: parseAlertWebhook(hook("failed")) });
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
      const err = await runNightly({
        db,
        bucket: faulty.bucket,
        now: later(53 + (timeout ? 1 : 0)),
        alertWebhook: parseAlertWebhook(hook(name)),
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
    const err = await runNightly({ db, bucket, now: later(55), alertWebhook: parseAlertWebhook("ftp://hooks.example/SECRETTOKEN") }).catch((e) => e);
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
