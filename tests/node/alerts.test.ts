// The alert message and the one webhook sender (lib/monitor/alerts.ts): the message's content and
// Slack's limits, the parse of ALERT_WEBHOOK_URL, then delivery over real sockets to a node:http
// receiver on 127.0.0.1 (success, HTTP 500, redirect, refused connection, no answer).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildAlertPayload, checkWebhookUrl, parseAlertWebhook, sendAlert, staleAtCronTime, type AlertInput, type AlertPayload } from "../../lib/monitor";
import { closedPort, startAlertReceiver, type AlertReceiver } from "../helpers/alert-receiver";
import { health } from "../helpers/health-fixture";

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

describe("parseAlertWebhook (ALERT_WEBHOOK_URL)", () => {
  it("unset or empty turns alerts off; anything else must be an http(s) URL, and errors never echo it", () => {
    expect(parseAlertWebhook(undefined)).toEqual({ url: null, problem: null });
    expect(parseAlertWebhook("  ")).toEqual({ url: null, problem: null });
    expect(parseAlertWebhook("https://hooks.slack.com/services/T0/B0/SECRET")).toEqual({ url: "https://hooks.slack.com/services/T0/B0/SECRET", problem: null });
    for (const [value, message] of [
      ["ftp://hooks.example/SECRET", "must use https: or http:, not ftp:"],
      ["hooks.slack.com/services/SECRET", "not an absolute URL"],
      ["https://user:SECRET@hooks.example/x", "must not contain a user name or password"],
    ]) {
      const r = parseAlertWebhook(value);
      expect(r.url).toBeNull();
      expect(r.problem).toContain("ALERT_WEBHOOK_URL is invalid");
      expect(r.problem).toContain(message);
      expect(r.problem).not.toContain("SECRET");
    }
    expect(checkWebhookUrl(42)).toEqual({ ok: false, error: "webhook URL is empty" });
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

describe("webhook secrets never leave sendAlert", () => {
  // Receivers that answer 4xx/5xx quoting what they got, in the spellings real ones use.
  const echo = (body: (url: string) => string) => ({
    fetch: async (input: RequestInfo | URL) => new Response(body(String(input)), { status: 403 }),
  });
  const URLS = [
    "https://hooks.example/services/T0AAAA/B0BBBB/S3cr3tT0ken",
    "https://hooks.example/hook?token=S3cr3tT0ken&channel=ops",
    "https://hooks.example/h/S3cr3t%2FT0ken?sig=S3cr3tT0ken",
  ];
  const SECRETS = ["S3cr3tT0ken", "S3cr3t", "T0AAAA", "B0BBBB"];

  it("a receiver echoing the URL, its path, query or token (raw, JSON-escaped, decoded, encoded) is redacted", async () => {
    const echoes: ((u: string) => string)[] = [
      (u) => `invalid_token for ${u}`,
      (u) => JSON.stringify({ error: "no such hook", url: u }).replace(/\//g, "\\/"),
      (u) => `bad path ${new URL(u).pathname} query ${new URL(u).search}`,
      (u) => `token=${decodeURIComponent(new URL(u).pathname.split("/").pop()!)} / ${new URL(u).searchParams.get("token") ?? ""}`,
      (u) => `got ${encodeURIComponent(u)}`,
      // The secret straddles the 300-character snippet boundary: no half of it may stay.
      (u) => `${"x".repeat(295)}${new URL(u).pathname}${new URL(u).search}`,
    ];
    for (const url of URLS) {
      for (const body of echoes) {
        const r = await sendAlert(url, payload0, echo(body));
        expect(r.ok).toBe(false);
        expect(r.error).toContain("hooks.example answered HTTP 403");
        for (const s of SECRETS) expect(r.error, `${url} → ${r.error}`).not.toContain(s.slice(0, 5));
      }
    }
  });

  it("user name and password are refused without being echoed", async () => {
    const r = await sendAlert("https://alice:pa55w0rdXYZ@hooks.example/x", payload0);
    expect(r).toEqual({ ok: false, error: "webhook URL must not contain a user name or password" });
  });
});

const payload0: AlertPayload = { text: "D1 backup FAILED: test" };
