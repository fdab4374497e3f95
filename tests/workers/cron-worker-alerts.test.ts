/// <reference types="@cloudflare/vitest-pool-workers/types" />
// The cron Worker's alerts, inside workerd: with ALERT_WEBHOOK_URL pointing at a real node:http
// receiver (tests/workers/global-setup.ts), a failed run posts backup_failed over a real socket
// and still rejects with its own error; a run that finds backups had been missing posts
// backup_stale; each delivery is recorded in activity_log. Each test posts to its own path and
// reads back only what arrived there.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { backupDatabase, BackupError, listBackups } from "../../lib/backup";
import type { AlertPayload } from "../../lib/monitor";
import { manifestPutFails } from "../helpers/faults";
import { runCron } from "./cron";

const HOUR = 60 * 60 * 1000;

/** A webhook URL on the receiver, unique to one test; the path's last segment plays the secret. */
const hook = (name: string, behaviour = "") => `${env.ALERT_RECEIVER_URL}/${behaviour}${name}/T0/B0/SECRETTOKEN`;

interface Received {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

async function received(name: string, behaviour = ""): Promise<Received[]> {
  const res = await fetch(`${env.ALERT_RECEIVER_URL}/__received?prefix=${encodeURIComponent(`/${behaviour}${name}/`)}`);
  return res.json();
}

async function alertRows(): Promise<{ action: string; entity_id: string | null; details: Record<string, unknown> }[]> {
  const rows = await env.DB.prepare(
    "SELECT action, entity_id, details FROM activity_log WHERE action IN ('backup_alert_sent', 'backup_alert_failed') ORDER BY id",
  ).all<{ action: string; entity_id: string | null; details: string }>();
  return rows.results.map((r) => ({ ...r, details: JSON.parse(r.details) }));
}

describe("cron Worker alerts (ALERT_WEBHOOK_URL)", () => {
  it("a successful run after a gap (newest backup 30 h old) posts backup_stale; the next run posts nothing", async () => {
    expect((await listBackups(env.DOCUMENTS)).backups).toEqual([]); // this file's own storage
    const old = await backupDatabase({ db: env.DB, bucket: env.DOCUMENTS, now: new Date(Date.now() - 30 * HOUR), trigger: "scheduled" });

    await runCron({ ...env, ALERT_WEBHOOK_URL: hook("stale") });

    const newest = (await listBackups(env.DOCUMENTS)).backups[0];
    expect(newest.key).not.toBe(old.summary.key);
    const got = await received("stale");
    expect(got).toHaveLength(1);
    expect(got[0].method).toBe("POST");
    expect(got[0].headers["content-type"]).toBe("application/json");
    const body = JSON.parse(got[0].body) as AlertPayload;
    expect(body.text).toContain("D1 backups were STALE");
    expect(body.text).toMatch(new RegExp(`newest complete backup \\(${old.summary.key}\\) was 30\\.0 h old \\(limit 26 h\\)`));
    expect(body.text).toContain(`*This run succeeded:* ${newest.key}`);
    expect(body.blocks?.[0]).toMatchObject({ type: "header" });
    expect((await alertRows()).at(-1)).toEqual({
      action: "backup_alert_sent",
      entity_id: old.summary.key,
      details: { kind: "backup_stale", host: new URL(env.ALERT_RECEIVER_URL).host, status: 200, reason: expect.stringContaining("30.0 h old") },
    });

    // Now the newest backup is seconds old: nothing to say.
    const rowsBefore = (await alertRows()).length;
    await runCron({ ...env, ALERT_WEBHOOK_URL: hook("fresh") });
    expect(await received("fresh")).toEqual([]);
    expect(await alertRows()).toHaveLength(rowsBefore);
  });

  it("a failed run posts backup_failed with the reason and the last good backup, and still rejects with the run's error", async () => {
    const lastGood = (await listBackups(env.DOCUMENTS)).backups[0];
    const err = await runCron({ ...env, DOCUMENTS: manifestPutFails(env.DOCUMENTS), ALERT_WEBHOOK_URL: hook("failed") }).catch((e) => e);
    expect(err).toBeInstanceOf(BackupError);
    expect(err.code).toBe("STORAGE_ERROR");
    expect(err.message).toContain("injected: R2 is unavailable");

    const got = await received("failed");
    expect(got).toHaveLength(1);
    const body = JSON.parse(got[0].body) as AlertPayload;
    expect(body.text).toContain("D1 backup FAILED");
    expect(body.text).toContain("injected: R2 is unavailable");
    expect(body.text).toContain("stage backup, code STORAGE_ERROR");
    expect(body.text).toContain(`*Last good backup:* ${lastGood.key}`);
    expect(body.text).toContain("BACKUP_RESTORATION.md");
    expect(body.text).toContain("POST /api/admin/backup");
    expect((await alertRows()).at(-1)).toMatchObject({
      action: "backup_alert_sent",
      entity_id: lastGood.key,
      details: { kind: "backup_failed", status: 200 },
    });
  });

  it("a receiver answering 500 is logged as backup_alert_failed; the run still rejects with its own error", async () => {
    const err = await runCron({ ...env, DOCUMENTS: manifestPutFails(env.DOCUMENTS), ALERT_WEBHOOK_URL: hook("down", "status/500/") }).catch((e) => e);
    expect(err).toBeInstanceOf(BackupError);
    expect(err.message).toContain("injected: R2 is unavailable");
    expect(await received("down", "status/500/")).toHaveLength(1);
    const row = (await alertRows()).at(-1)!;
    expect(row).toMatchObject({ action: "backup_alert_failed", details: { kind: "backup_failed", status: 500 } });
    expect(row.details.error).toContain("answered HTTP 500");
  });

  it("a missing DOCUMENTS binding is alerted too (without health), and rejects with the CONFIG_ERROR", async () => {
    const { DOCUMENTS: _omitted, ...withoutBucket } = env;
    const err = await runCron({ ...withoutBucket, ALERT_WEBHOOK_URL: hook("config") }).catch((e) => e);
    expect(err.code).toBe("CONFIG_ERROR");
    const [got] = await received("config");
    const body = JSON.parse(got.body) as AlertPayload;
    expect(body.text).toContain("missing binding DOCUMENTS");
    expect(body.text).toContain("stage config, code CONFIG_ERROR");
    expect(body.text).toContain("*Last good backup:* unknown");
  });

  it("an invalid ALERT_WEBHOOK_URL never costs the backup: it is made, then the run rejects naming the setting", async () => {
    const count = (await listBackups(env.DOCUMENTS)).backups.length;
    const err = await runCron({ ...env, ALERT_WEBHOOK_URL: "hooks.slack.com/services/SECRETTOKEN" }).catch((e) => e);
    expect(err).toBeInstanceOf(BackupError);
    expect(err.code).toBe("CONFIG_ERROR");
    expect(err.message).toContain("ALERT_WEBHOOK_URL is invalid: webhook URL is not an absolute URL");
    expect(err.message).not.toContain("SECRETTOKEN");
    const listing = await listBackups(env.DOCUMENTS);
    expect(listing.backups).toHaveLength(count + 1);
    expect((await alertRows()).at(-1)).toMatchObject({ action: "backup_alert_failed", entity_id: listing.backups[0].key });

    // With a binding missing as well, the setting is named among the problems up front.
    const { DB: _db, ...withoutDb } = env;
    const both = await runCron({ ...withoutDb, ALERT_WEBHOOK_URL: "ftp://x/SECRETTOKEN" }).catch((e) => e);
    expect(both.details.problems).toEqual([
      "missing binding DB (D1 database tech-support-db)",
      "ALERT_WEBHOOK_URL is invalid: webhook URL must use https: or http:, not ftp:",
    ]);
  });

  it("no webhook secret stored anywhere in activity_log", async () => {
    const all = (await env.DB.prepare("SELECT entity_id, details FROM activity_log").all<{ entity_id: string | null; details: string }>()).results
      .map((r) => `${r.entity_id} ${r.details}`)
      .join("\n");
    expect(all).toContain('"kind":"backup_stale"');
    expect(all).toContain('"kind":"backup_failed"');
    expect(all).not.toContain("SECRETTOKEN");
  });
});
