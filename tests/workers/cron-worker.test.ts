/// <reference types="@cloudflare/vitest-pool-workers/types" />
// The cron Worker inside workerd, with the bindings of functions/wrangler.toml (local D1/R2) and
// the real migrations: a scheduled event makes a complete backup, applies retention and logs it;
// any failure rejects (so Cloudflare marks the run failed) and is logged as scheduled_backup_failed.
import { SELF } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../functions/cron-worker";
import { backupDatabase, BackupError, DUMP_END_MARKER, generateKeyPair, keysFor, listBackups, parseVerifyKeys, verifyManifestSignature } from "../../lib/backup";
import { manifestPutFails } from "../helpers/faults";
import { runCron } from "./cron";

const DAY = 24 * 60 * 60 * 1000;

async function activity(action: string): Promise<{ entity_id: string | null; details: Record<string, unknown> }[]> {
  const rows = await env.DB.prepare("SELECT entity_id, details FROM activity_log WHERE action = ? ORDER BY id")
    .bind(action)
    .all<{ entity_id: string | null; details: string }>();
  return rows.results.map((r) => ({ ...r, details: JSON.parse(r.details) }));
}

async function lockRows(): Promise<unknown[]> {
  return (await env.DB.prepare("SELECT * FROM backup_lock").all()).results;
}

describe("cron Worker scheduled()", () => {
  it("makes a complete backup, applies retention and logs scheduled_backup_completed", async () => {
    await env.DB.prepare("INSERT INTO clients (id, company_name, email) VALUES ('c1', 'Acme ''Corp''', 'it@acme.test')").run();
    // Eight backups from 31..38 days ago: with tonight's they are nine. Daily tier only (30 days),
    // so beyond the newest 7 nothing is kept and the two oldest go (GFS tiers: retention tests).
    for (let d = 31; d <= 38; d++) {
      await backupDatabase({ db: env.DB, bucket: env.DOCUMENTS, now: new Date(Date.now() - d * DAY), trigger: "cli" });
    }
    const before = (await listBackups(env.DOCUMENTS)).backups;
    expect(before).toHaveLength(8);

    await runCron({ ...env, BACKUP_RETENTION: "daily=30,weekly=0,monthly=0" });

    const listing = await listBackups(env.DOCUMENTS);
    expect(listing.incomplete).toEqual([]);
    expect(listing.backups).toHaveLength(7);
    const [newest] = listing.backups;
    expect(newest.manifest.trigger).toBe("scheduled");
    expect(Date.now() - Date.parse(newest.manifest.createdAt)).toBeLessThan(60_000);
    expect(newest.manifest.tables.find((t) => t.name === "clients")?.rows).toBe(1);
    expect(newest.manifest.tables.map((t) => t.name)).toContain("backup_lock");
    // The object is a whole gzip'd dump, as the manifest says.
    const obj = await env.DOCUMENTS.get(newest.key);
    const sql = await new Response(obj!.body.pipeThrough(new DecompressionStream("gzip"))).text();
    expect(sql).toContain("INSERT INTO \"clients\"");
    expect(sql.trimEnd().endsWith(DUMP_END_MARKER)).toBe(true);

    const deleted = before.slice(-2).map((b) => b.key).reverse();
    expect(await activity("scheduled_backup_completed")).toEqual([
      {
        entity_id: newest.key,
        details: { key: newest.key, size: newest.size, rows: newest.manifest.totalRows, deleted, incompleteDeleted: [] },
      },
    ]);
    expect((await activity("backup_cleanup_completed")).at(-1)?.details).toMatchObject({ trigger: "scheduled", deleted });
    expect(await lockRows()).toEqual([]);
  });

  it("an R2 failure rejects (the run is marked failed) and logs scheduled_backup_failed", async () => {
    const before = (await listBackups(env.DOCUMENTS)).backups.map((b) => b.key);
    const err = await runCron({ ...env, DOCUMENTS: manifestPutFails(env.DOCUMENTS) }).catch((e) => e);
    expect(err).toBeInstanceOf(BackupError);
    expect(err.code).toBe("STORAGE_ERROR");
    expect(err.message).toContain("injected: R2 is unavailable");

    const failed = await activity("scheduled_backup_failed");
    expect(failed.at(-1)?.details).toEqual({ stage: "backup", key: null, code: "STORAGE_ERROR", reason: err.message });
    const listing = await listBackups(env.DOCUMENTS);
    expect(listing.backups.map((b) => b.key)).toEqual(before);
    expect(listing.incomplete).toEqual([]);
    expect(await lockRows()).toEqual([]);
  });

  it("a missing DOCUMENTS binding rejects with a CONFIG_ERROR naming it, and is logged", async () => {
    const { DOCUMENTS: _omitted, ...withoutBucket } = env;
    const err = await runCron(withoutBucket).catch((e) => e);
    expect(err).toBeInstanceOf(BackupError);
    expect(err.code).toBe("CONFIG_ERROR");
    expect(err.message).toContain("missing binding DOCUMENTS (R2 bucket tech-support-documents)");
    expect((await activity("scheduled_backup_failed")).at(-1)?.details).toEqual({
      stage: "config",
      code: "CONFIG_ERROR",
      reason: err.message,
    });
  });

  it("a missing DB or a wrong binding type rejects naming every problem", async () => {
    const err = await runCron({ DOCUMENTS: "tech-support-documents" as unknown as R2Bucket }).catch((e) => e);
    expect(err.code).toBe("CONFIG_ERROR");
    expect(err.message).toContain("missing binding DB (D1 database tech-support-db)");
    expect(err.message).toContain("binding DOCUMENTS is not an R2 bucket binding");
  });

  it("a database without the backup_lock migration rejects, naming it, and is logged", async () => {
    await env.DB.exec("ALTER TABLE backup_lock RENAME TO backup_lock_away");
    try {
      const err = await runCron(env).catch((e) => e);
      expect(err.code).toBe("CONFIG_ERROR");
      expect(err.message).toContain("migrations/0002_backup_lock.sql");
    } finally {
      await env.DB.exec("ALTER TABLE backup_lock_away RENAME TO backup_lock");
    }
    expect((await activity("scheduled_backup_failed")).at(-1)?.details).toMatchObject({ stage: "backup", code: "CONFIG_ERROR" });
  });

  it("signs the nightly manifest with BACKUP_SIGNING_KEY (Ed25519 in workerd); it verifies with the public key", async () => {
    const pair = await generateKeyPair();
    await runCron({ ...env, BACKUP_SIGNING_KEY: pair.signingKey });
    const [newest] = (await listBackups(env.DOCUMENTS)).backups;
    expect(newest.manifest.signature).toMatchObject({ alg: "Ed25519", keyId: pair.keyId });
    // Verified on the manifest as stored, as the restore does.
    const stored = JSON.parse(await (await env.DOCUMENTS.get(keysFor(newest.name).manifest))!.text());
    expect(await verifyManifestSignature(stored, await parseVerifyKeys(pair.verifyKey))).toEqual({ state: "valid", keyId: pair.keyId });
    // Someone with write access to the bucket changes a row count: the signature no longer holds.
    stored.totalRows += 1;
    expect(await verifyManifestSignature(stored, await parseVerifyKeys(pair.verifyKey))).toEqual({ state: "invalid", keyId: pair.keyId });
  });

  it("without BACKUP_SIGNING_KEY the backup is made unsigned; an unusable one fails the run naming it", async () => {
    await runCron(env);
    expect((await listBackups(env.DOCUMENTS)).backups[0].manifest.signature).toBeNull();
    const count = (await listBackups(env.DOCUMENTS)).backups.length;
    const err = await runCron({ ...env, BACKUP_SIGNING_KEY: "not-a-key" }).catch((e) => e);
    expect(err.code).toBe("CONFIG_ERROR");
    expect(err.message).toContain("BACKUP_SIGNING_KEY is invalid: not base64");
    expect(err.message).not.toContain("not-a-key");
    expect((await listBackups(env.DOCUMENTS)).backups).toHaveLength(count);
  });

  it("serves nothing over HTTP", async () => {
    const res = await worker.fetch();
    expect(res.status).toBe(404);
    expect((await SELF.fetch("https://cron.example/__scheduled")).status).toBe(404);
  });
});
