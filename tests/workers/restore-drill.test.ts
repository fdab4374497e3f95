/// <reference types="@cloudflare/vitest-pool-workers/types" />
// The nightly restore drill inside workerd: the cron Worker backs up the seeded portal, restores
// the backup into RESTORE_DRILL_DB (functions/wrangler.toml, a second local D1) and checks it.
// Tampering, refusals and the budget are driven through the same scheduled() or runRestoreDrill.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { backupDatabase, keysFor, listBackups, parseManifest, type Manifest } from "../../lib/backup";
import { DEFAULT_BUDGET, DRILL_MARKER_TABLE, runRestoreDrill } from "../../lib/drill";
import { getBackupHealth, getDashboard } from "../../lib/monitor";
import { seedDemoData } from "../../lib/seed";
import { createShapesFixture } from "../fixtures/shapes";
import { runCron } from "./cron";

type Row = { entity_id: string | null; details: Record<string, unknown> };

async function lastDrill(): Promise<(Row & { action: string }) | null> {
  const r = await env.DB.prepare("SELECT action, entity_id, details FROM activity_log WHERE action LIKE 'restore_drill_%' ORDER BY id DESC LIMIT 1").first<{
    action: string;
    entity_id: string | null;
    details: string;
  }>();
  return r ? { ...r, details: JSON.parse(r.details) } : null;
}

async function count(db: D1Database, table: string): Promise<number> {
  return (await db.prepare(`SELECT count(*) AS n FROM "${table}"`).first<{ n: number }>())!.n;
}

async function newest(): Promise<{ name: string; manifest: Manifest }> {
  const [b] = (await listBackups(env.DOCUMENTS)).backups;
  return { name: b.name, manifest: b.manifest };
}

async function gz(text: string): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await new Response(new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer());
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  return [...new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Rewrites a sealed backup's SQL and recomputes every hash its manifest holds, as someone with bucket access could. */
async function tamper(name: string, edit: (sql: string) => string): Promise<void> {
  const keys = keysFor(name);
  const obj = await env.DOCUMENTS.get(keys.object);
  const sql = await new Response(obj!.body.pipeThrough(new DecompressionStream("gzip"))).text();
  const changed = edit(sql);
  expect(changed).not.toBe(sql);
  const plain = new TextEncoder().encode(changed);
  const body = await gz(changed);
  const manifest = parseManifest(await (await env.DOCUMENTS.get(keys.manifest))!.text());
  manifest.object.size = body.byteLength;
  manifest.object.sha256 = await sha256(body);
  manifest.sql.size = plain.byteLength;
  manifest.sql.sha256 = await sha256(plain);
  await env.DOCUMENTS.put(keys.object, body, {
    customMetadata: { ...obj!.customMetadata, sha256: manifest.object.sha256, "backup-size": String(body.byteLength) },
  });
  await env.DOCUMENTS.put(keys.manifest, JSON.stringify(manifest));
}

const drill = (name: string, over: Partial<Parameters<typeof runRestoreDrill>[0]> = {}) =>
  runRestoreDrill({ db: env.DB, scratch: env.RESTORE_DRILL_DB, bucket: env.DOCUMENTS, name, budget: DEFAULT_BUDGET, ...over });

describe("nightly restore drill", () => {
  beforeAll(async () => {
    await seedDemoData(env.DB, { rows: 1000 });
  });

  it("passes on the seeded portal: every table restored, rows and checksums equal, RTO recorded", async () => {
    await runCron(env);
    const { name, manifest } = await newest();
    expect(manifest.tables.every((t) => /^[0-9a-f]{64}$/.test(t.checksum ?? ""))).toBe(true);
    const d = await lastDrill();
    expect(d?.action).toBe("restore_drill_completed");
    expect(d?.entity_id).toBe(keysFor(name).object);
    expect(d?.details).toMatchObject({ name, statements: manifest.sql.statements, rows: manifest.totalRows, signature: "not-checked" });
    expect(d?.details.replay_ms).toBeTypeOf("number");
    expect(d?.details.queries).toBeGreaterThan(3);
    const tables = d?.details.tables as { name: string; rows: number; ok: boolean; checked: string }[];
    expect(tables.map((t) => t.name)).toEqual(manifest.tables.map((t) => t.name));
    expect(tables.every((t) => t.ok && t.checked === "rows+checksum")).toBe(true);
    // The scratch database really holds the portal's rows; the portal is untouched.
    expect(await count(env.RESTORE_DRILL_DB!, "tickets")).toBe(await count(env.DB, "tickets"));
    expect(await count(env.RESTORE_DRILL_DB!, DRILL_MARKER_TABLE)).toBe(1);
    expect(await count(env.DB, "tickets")).toBeGreaterThan(0);

    const health = await getBackupHealth({ db: env.DB, bucket: env.DOCUMENTS });
    expect(health.status).toBe("ok");
    expect(health.lastDrill).toMatchObject({ outcome: "completed", key: keysFor(name).object });
    const dash = await getDashboard({ db: env.DB, bucket: env.DOCUMENTS });
    expect(dash.backups[0].drill).toMatchObject({ outcome: "completed" });
    expect(dash.provenRestorable?.key).toBe(keysFor(name).object);
    expect(dash.rto?.at(-1)).toMatchObject({ key: keysFor(name).object });
  });

  it("a backup object changed after sealing, hashes recomputed, fails naming the table", async () => {
    const { name } = await newest();
    // One open ticket becomes closed; the row count stays the same.
    await tamper(name, (sql) => {
      const at = sql.indexOf('INSERT INTO "tickets"');
      return sql.slice(0, at) + sql.slice(at).replace("'open'", "'closed'");
    });
    const r = await drill(name);
    expect(r.outcome).toBe("failed");
    expect(r.summary).toContain('table "tickets": checksum');
    const d = await lastDrill();
    expect(d?.action).toBe("restore_drill_failed");
    expect((d?.details.differences as { table?: string; what: string }[]).map((x) => `${x.table}:${x.what}`)).toEqual(["tickets:checksum"]);

    const health = await getBackupHealth({ db: env.DB, bucket: env.DOCUMENTS });
    expect(health.status).toBe("failing");
    expect(health.issues.map((i) => i.code)).toContain("RESTORE_DRILL_FAILED");
    const dash = await getDashboard({ db: env.DB, bucket: env.DOCUMENTS });
    expect(dash.backups[0].drill).toMatchObject({ outcome: "failed" });
    expect(dash.backups[0].drill?.reason).toContain("tickets");
  });

  it("a manifest checksum changed fails naming the table", async () => {
    await runCron(env);
    const { name } = await newest();
    const keys = keysFor(name);
    const manifest = parseManifest(await (await env.DOCUMENTS.get(keys.manifest))!.text());
    const t = manifest.tables.find((x) => x.name === "invoices")!;
    t.checksum = "0".repeat(64);
    await env.DOCUMENTS.put(keys.manifest, JSON.stringify(manifest));
    const r = await drill(name);
    expect(r.outcome).toBe("failed");
    expect(r.summary).toMatch(/^table "invoices": checksum/);
  });

  it("RESTORE_DRILL_DB unset is logged as skipped (not configured); equal to DB refuses and touches nothing", async () => {
    const { RESTORE_DRILL_DB: _omitted, ...without } = env;
    await runCron(without);
    expect(await lastDrill()).toMatchObject({ action: "restore_drill_skipped", details: { reason: "not_configured" } });
    const health = await getBackupHealth({ db: env.DB, bucket: env.DOCUMENTS });
    expect(health.status).toBe("attention");
    expect(health.issues.map((i) => i.code)).toContain("RESTORE_DRILL_SKIPPED");

    const tickets = await count(env.DB, "tickets");
    const tablesBefore = await env.DB.prepare("SELECT group_concat(name) AS n FROM sqlite_master").first<{ n: string }>();
    // The same database under both names (a copy-pasted database_id): PORTAL_AGAIN is DB's id.
    for (const same of [env.DB, (env as unknown as { PORTAL_AGAIN: D1Database }).PORTAL_AGAIN]) {
      await runCron({ ...env, RESTORE_DRILL_DB: same });
      const d = await lastDrill();
      expect(d?.action).toBe("restore_drill_failed");
      expect(d?.details).toMatchObject({ stage: "refused", refused: true });
      expect(String(d?.details.reason)).toContain("not a scratch database");
    }
    expect(await count(env.DB, "tickets")).toBe(tickets);
    expect(await env.DB.prepare("SELECT group_concat(name) AS n FROM sqlite_master").first<{ n: string }>()).toEqual(tablesBefore);
    expect((await getBackupHealth({ db: env.DB, bucket: env.DOCUMENTS })).status).toBe("failing");
  });

  it("a database over the drill's budget is skipped with the measured figures and the limit, and alerted", async () => {
    const hook = `${env.ALERT_RECEIVER_URL}/drill-budget/T0/B0/SECRETTOKEN`;
    await runCron({ ...env, RESTORE_DRILL_MAX_QUERIES: "80", ALERT_WEBHOOK_URL: hook });
    const posted = (await (await fetch(`${env.ALERT_RECEIVER_URL}/__received?prefix=${encodeURIComponent("/drill-budget/")}`)).json()) as { body: string }[];
    expect(posted).toHaveLength(1);
    expect(JSON.parse(posted[0].body).text).toMatch(/Restore drill SKIPPED.*\n\*Why:\* restoring \d+ statements/);
    const { manifest } = await newest();
    const d = await lastDrill();
    expect(d?.action).toBe("restore_drill_skipped");
    expect(d?.details).toMatchObject({ reason: "over_budget", max_queries: 80, sql_bytes: manifest.sql.size, statements: manifest.sql.statements });
    expect(d?.details.estimated_queries as number).toBeGreaterThan(d?.details.available_queries as number);
    const health = await getBackupHealth({ db: env.DB, bucket: env.DOCUMENTS });
    expect(health.status).toBe("attention");
    const dash = await getDashboard({ db: env.DB, bucket: env.DOCUMENTS });
    expect(dash.backups[0].drill).toMatchObject({ outcome: "skipped" });
  });

  it("a passing drill turns health green again; no drill for over 48 h is amber (missing); a failed one is alerted", async () => {
    await runCron(env);
    expect((await lastDrill())?.action).toBe("restore_drill_completed");
    const now = Date.now();
    expect((await getBackupHealth({ db: env.DB, bucket: env.DOCUMENTS, now: new Date(now) })).status).toBe("ok");
    const later = await getBackupHealth({ db: env.DB, bucket: env.DOCUMENTS, now: new Date(now + 49 * 3600_000) });
    expect(later.issues.map((i) => i.code)).toContain("RESTORE_DRILL_MISSING");
    const { name } = await newest();
    const dash = await getDashboard({ db: env.DB, bucket: env.DOCUMENTS });
    expect(dash.provenRestorable?.name).toBe(name);
    expect(dash.rto?.length).toBeGreaterThanOrEqual(2);

    const hook = `${env.ALERT_RECEIVER_URL}/drill-refused/T0/B0/SECRETTOKEN`;
    await runCron({ ...env, RESTORE_DRILL_DB: env.DB, ALERT_WEBHOOK_URL: hook });
    const posted = (await (await fetch(`${env.ALERT_RECEIVER_URL}/__received?prefix=${encodeURIComponent("/drill-refused/")}`)).json()) as { body: string }[];
    expect(posted.map((p) => JSON.parse(p.body).text.split("\n")[0])).toEqual([expect.stringContaining("Restore drill FAILED")]);
    // The proven one stays the one to prefer: the refused drill was of the newer backup.
    expect((await getDashboard({ db: env.DB, bucket: env.DOCUMENTS })).provenRestorable?.name).toBe(name);
  });

  it("proves every awkward shape: FTS5 of each kind, sqlite_stat1, keyless tables, a value read in slices; and empties them for the next drill", async () => {
    await createShapesFixture(env.DB);
    await env.DB.prepare("CREATE TABLE big_cells (id INTEGER PRIMARY KEY, b BLOB)").run();
    await env.DB.prepare("INSERT INTO big_cells VALUES (1, randomblob(700000)), (2, x'00')").run();
    for (let i = 0; i < 2; i++) {
      const { summary, manifest } = await backupDatabase({ db: env.DB, bucket: env.DOCUMENTS, trigger: "cli", now: new Date(Date.now() + 5000 + i * 1000) });
      expect(manifest.tables.find((t) => t.name === "ticket_terms")?.checksum).toMatch(/^[0-9a-f]{64}$/);
      const r = await drill(summary.name);
      expect(r.summary).toContain("every check passed");
      expect(r.outcome).toBe("completed");
    }
    // A changed large value (past the tuple, in its slices) is found too.
    const { name } = await newest();
    // The one value over the tuple limit is staged and completed by `|| X'…'` pieces.
    await tamper(name, (sql) => sql.replace(/(\|\| X')([0-9A-F])/, (_m, head: string, c: string) => head + (c === "0" ? "1" : "0")));
    const r = await drill(name);
    expect(r.outcome).toBe("failed");
    expect(r.summary).toMatch(/table "big_cells": checksum/);
  });
});
