// The off-site copy (lib/offsite) against a real S3 server on 127.0.0.1 (s3rver, which checks
// SigV4 signatures) and real local D1/R2: each backup is copied, read back and recorded in its
// re-signed manifest; a server that answers 500 or 403 or is down costs nothing but the copy,
// which is logged, alerted and caught up by the next run; and the off-site copy alone restores
// the database exactly, through the restore CLI, with no R2 at all.
import { execFile } from "node:child_process";
import { randomBytes, createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keysFor, listBackups, parseRetentionSetting, readManifest, runBackup, runScheduledBackup, verifyManifestSignature, type Manifest } from "../../lib/backup";
import { PROJECT_ROOT } from "../../lib/local/platform";
import { getBackupHealth, getDashboard, parseAlertWebhook, runNightly, type AlertPayload } from "../../lib/monitor";
import { copyMissingToOffsite, hashStream, OffsiteClient, offsiteKeyFor, offsiteStep, parseOffsiteConfig, r2KeyFor, type OffsiteConfig, type OffsiteSetting } from "../../lib/offsite";
import { runRestore, silentReporter, type RestoreOptions } from "../../lib/restore";
import { seedDemoData } from "../../lib/seed/seed";
import { parseRestoreArgs } from "../../scripts/restore";
import { closedPort, startAlertReceiver, type AlertReceiver } from "../helpers/alert-receiver";
import { canonicalDump, CLI_ENV, d1File, freshPlatform, tempDir } from "../helpers/local";
import { S3_ACCESS_KEY, S3_SECRET_KEY, startFaultProxy, startS3Server, type FaultProxy, type S3Server } from "../helpers/s3-server";
import { testKeys, type TestKeys } from "../helpers/signing";

const BUCKET = "offsite-backups";
const MiB = 1024 * 1024;

function settings(over: Record<string, string | undefined>): (name: string) => string | undefined {
  const base: Record<string, string | undefined> = {
    OFFSITE_S3_BUCKET: BUCKET,
    OFFSITE_S3_REGION: "us-east-1",
    OFFSITE_S3_ACCESS_KEY_ID: S3_ACCESS_KEY,
    OFFSITE_S3_SECRET_ACCESS_KEY: S3_SECRET_KEY,
    ...over,
  };
  return (name) => base[name];
}

describe("OFFSITE_S3_* parsing", () => {
  it("none set: off; all set: a config, path-style for IP and localhost endpoints", () => {
    expect(parseOffsiteConfig(() => undefined)).toEqual({ config: null, problem: null });
    const { config, problem } = parseOffsiteConfig(settings({ OFFSITE_S3_ENDPOINT: "http://127.0.0.1:9000/" }));
    expect(problem).toBeNull();
    expect(config).toMatchObject({ endpoint: "http://127.0.0.1:9000", endpointHost: "127.0.0.1:9000", bucket: BUCKET, prefix: "backups/", pathStyle: true });
    const aws = parseOffsiteConfig(settings({ OFFSITE_S3_ENDPOINT: "https://s3.eu-central-1.amazonaws.com", OFFSITE_S3_PREFIX: "d1/portal" })).config!;
    expect(aws).toMatchObject({ pathStyle: false, prefix: "d1/portal/" });
    expect(parseOffsiteConfig(settings({ OFFSITE_S3_ENDPOINT: "https://s3.example.com", OFFSITE_S3_PATH_STYLE: "true" })).config!.pathStyle).toBe(true);
    // The R2 key names under the prefix, both ways; nothing outside the prefix maps back.
    const key = keysFor("database-2026-01-15-02-00-00").object;
    expect(offsiteKeyFor(aws, key)).toBe("d1/portal/database-2026-01-15-02-00-00.sql.gz");
    expect(r2KeyFor(aws, offsiteKeyFor(aws, key))).toBe(key);
    expect(r2KeyFor(aws, "other/database-2026-01-15-02-00-00.sql.gz")).toBeNull();
    expect(offsiteKeyFor(config!, key)).toBe(key);
  });

  it("a partial or bad set is a problem naming the settings, never their values", () => {
    const partial = parseOffsiteConfig((n) => ({ OFFSITE_S3_ENDPOINT: "https://s3.example.com", OFFSITE_S3_SECRET_ACCESS_KEY: "very-secret" })[n]);
    expect(partial.config).toBeNull();
    expect(partial.problem).toMatch(/OFFSITE_S3_BUCKET, OFFSITE_S3_REGION, OFFSITE_S3_ACCESS_KEY_ID not set \(set all of/);
    expect(partial.problem).not.toContain("very-secret");
    expect(parseOffsiteConfig(settings({ OFFSITE_S3_ENDPOINT: "s3.example.com" })).problem).toMatch(/OFFSITE_S3_ENDPOINT must be an http\(s\) URL/);
    expect(parseOffsiteConfig(settings({ OFFSITE_S3_ENDPOINT: "https://x.example.com", OFFSITE_S3_BUCKET: "Bad_Bucket" })).problem).toMatch(/OFFSITE_S3_BUCKET is not a bucket name/);
    expect(parseOffsiteConfig((n) => (n === "OFFSITE_S3_PREFIX" ? "x/" : undefined)).problem).toMatch(/OFFSITE_S3_PREFIX set but none of/);
  });
});

describe("off-site copy (real S3 server, real local D1/R2)", () => {
  let platform: Awaited<ReturnType<typeof freshPlatform>>;
  let db: D1Database;
  let bucket: R2Bucket;
  let s3: S3Server;
  let proxy: FaultProxy;
  let receiver: AlertReceiver;
  let keys: TestKeys;
  let setting: OffsiteSetting;
  let config: OffsiteConfig;
  let client: OffsiteClient;
  let disposed = false;
  /** The first backup, the database as it was when it was taken, for the restore. */
  let first: { name: string; before: string };
  const S = Math.floor(Date.now() / 1000) * 1000 - 3600_000;
  let tick = 0;
  const nextTime = () => new Date(S + ++tick * 60_000);
  // Small parts (the local server has no 5 MiB minimum) so a small backup takes the multipart path.
  const PART = 2 * 1024;
  const step = (s: OffsiteSetting = setting, limit?: number) => offsiteStep(s, { limit, client: { partSizeBytes: PART, retry: { attempts: 3, baseMs: 5 } } });

  async function activity(action: string): Promise<{ entity_id: string | null; details: Record<string, unknown> }[]> {
    const rows = await db.prepare("SELECT entity_id, details FROM activity_log WHERE action = ? ORDER BY id").bind(action).all<{ entity_id: string | null; details: string }>();
    return rows.results.map((r) => ({ entity_id: r.entity_id, details: JSON.parse(r.details) }));
  }

  beforeAll(async () => {
    [platform, s3, receiver, keys] = await Promise.all([freshPlatform(), startS3Server([BUCKET]), startAlertReceiver(), testKeys()]);
    proxy = await startFaultProxy(s3.port);
    db = platform.env.DB;
    bucket = platform.env.DOCUMENTS;
    await seedDemoData(db, { rows: 60 });
    setting = parseOffsiteConfig(settings({ OFFSITE_S3_ENDPOINT: proxy.url }));
    config = setting.config!;
    client = new OffsiteClient(config, { retry: { attempts: 2, baseMs: 5 } });
  });
  afterAll(async () => {
    await Promise.all([disposed ? null : platform?.dispose(), proxy?.close(), receiver?.close()]);
    await s3?.stop();
  });

  it("client: a multipart upload in 5 MiB parts reads back byte for byte; list pages; delete; a source that does not match is never completed", async () => {
    const big = client; // default part size would be 8 MiB: use S3's minimum
    const five = new OffsiteClient(config, { partSizeBytes: 5 * MiB });
    const data = randomBytes(5 * MiB + 123);
    const sha = createHash("sha256").update(data).digest("hex");
    const source = () =>
      new ReadableStream<Uint8Array>({
        start(c) {
          for (let off = 0; off < data.length; off += 1 * MiB) c.enqueue(new Uint8Array(data.subarray(off, off + 1 * MiB)));
          c.close();
        },
      });
    const seenBefore = proxy.seen.length;
    const up = await five.uploadStream("test/big.bin", source(), { contentType: "application/octet-stream", expected: { size: data.length, sha256: sha } });
    expect(up).toEqual({ size: data.length, sha256: sha, parts: 2 });
    expect(proxy.seen.slice(seenBefore).filter((r) => /partNumber=\d/.test(r.url)).map((r) => r.answered)).toEqual([200, 200]);
    const back = await big.getObject("test/big.bin");
    expect(await hashStream(back!.body)).toEqual({ size: data.length, sha256: sha });

    const wrong = await rejectionOf(five.uploadStream("test/wrong.bin", source(), { contentType: "application/octet-stream", expected: { size: data.length, sha256: "0".repeat(64) } }));
    expect(wrong.code).toBe("INTEGRITY_ERROR");
    expect(await big.headObject("test/wrong.bin")).toBeNull();
    expect(proxy.seen.some((r) => r.method === "DELETE" && r.url.startsWith("/offsite-backups/test/wrong.bin?uploadId="))).toBe(true);

    // More keys than one page: three pages of 2.
    await Promise.all(Array.from({ length: 5 }, (_, i) => big.putObject(`list/k${i}`, "x", "text/plain")));
    const listed = await big.listObjects("list/", { pageSize: 2 });
    expect(listed.map((o) => o.key)).toEqual(["list/k0", "list/k1", "list/k2", "list/k3", "list/k4"]);
    expect(proxy.seen.filter((r) => r.url.includes("continuation-token=")).length).toBe(2);
    await big.deleteObject("test/big.bin");
    expect(await big.headObject("test/big.bin")).toBeNull();
  });

  it("a backup is copied (multipart), read back, and recorded in its R2 manifest, re-signed", async () => {
    const now = nextTime();
    const before = canonicalDump(d1File(platform.persistTo));
    const seenBefore = proxy.seen.length;
    const result = await runBackup({ db, bucket, now, trigger: "cli", signingKey: keys.signingKey, offsite: step() });
    const name = result.summary.name;
    first = { name, before };
    expect(result.summary.warnings).toEqual([]);
    expect(result.summary.offsite).toEqual({ verified: true, key: keysFor(name).object, endpointHost: config.endpointHost, bucket: BUCKET });
    expect(result.offsite!.copied.map((c) => c.name)).toEqual([name]);
    // Several parts: the multipart path, not a single PUT.
    expect(result.summary.size).toBeGreaterThan(2 * PART);
    expect(proxy.seen.slice(seenBefore).filter((r) => r.method === "PUT" && /partNumber=/.test(r.url)).length).toBe(Math.ceil(result.summary.size / PART));

    const manifest = await readManifest(bucket, name);
    expect(manifest.offsite).toMatchObject({ endpointHost: config.endpointHost, bucket: BUCKET, key: keysFor(name).object, manifestKey: keysFor(name).manifest, sha256: manifest.object.sha256 });
    const raw = JSON.parse(await (await bucket.get(keysFor(name).manifest))!.text());
    expect(await verifyManifestSignature(raw, keys.verifyKeys)).toEqual({ state: "valid", keyId: keys.text.keyId });

    const object = await client.getObject(keysFor(name).object);
    expect(await hashStream(object!.body)).toEqual({ size: manifest.object.size, sha256: manifest.object.sha256 });
    const offManifest = JSON.parse((await client.getText(keysFor(name).manifest))!) as Manifest;
    expect(offManifest.object).toEqual(manifest.object);
    expect(await verifyManifestSignature(offManifest, keys.verifyKeys)).toEqual({ state: "valid", keyId: keys.text.keyId });

    const [done] = await activity("offsite_copy_completed");
    expect(done.entity_id).toBe(keysFor(name).object);
    expect(done.details).toMatchObject({ endpoint: config.endpointHost, bucket: BUCKET, size: manifest.object.size, sha256: manifest.object.sha256 });
  });

  it("500 during the copy (a part): the backup is good, the copy failed is logged and alerted, the upload aborted", async () => {
    proxy.set("500", (r) => r.method === "PUT" && r.url.includes("partNumber=2"));
    const seenBefore = proxy.seen.length;
    const now = nextTime();
    const hook = `${receiver.url}/offsite500/T0/B0/SECRET`;
    const r = await runNightly({ db, bucket, now, alertWebhook: parseAlertWebhook(hook), signingKey: keys.signingKey, offsite: step() });
    proxy.set("pass");
    const name = r.backup.summary.name;
    // The R2 backup: complete, listed, its manifest without an off-site record.
    expect((await listBackups(bucket)).backups.map((b) => b.name)).toContain(name);
    expect((await readManifest(bucket, name)).offsite).toBeUndefined();
    expect(r.backup.summary.offsite).toEqual({ verified: false, key: null, endpointHost: null, bucket: null });
    expect(r.backup.summary.warnings.join("\n")).toMatch(/off-site copy of .* failed \(the R2 backup is good; the next run tries again\): off-site upload part 2 of .* HTTP 500 InternalError/);
    // Retried (3 tries), then aborted; nothing of it is off-site.
    const mine = proxy.seen.slice(seenBefore);
    expect(mine.filter((x) => x.url.includes("partNumber=2")).map((x) => x.answered)).toEqual([500, 500, 500]);
    expect(mine.some((x) => x.method === "DELETE" && x.url.includes("uploadId="))).toBe(true);
    expect(await client.headObject(keysFor(name).object)).toBeNull();
    expect(await client.headObject(keysFor(name).manifest)).toBeNull();

    const failed = (await activity("offsite_copy_failed")).at(-1)!;
    expect(failed.entity_id).toBe(keysFor(name).object);
    expect(failed.details).toMatchObject({ code: "STORAGE_ERROR", endpoint: config.endpointHost, bucket: BUCKET });
    expect(failed.details.reason).toMatch(/HTTP 500/);
    // Alerted, and the delivery recorded.
    expect(r.offsiteAlert).toEqual({ kind: "offsite_copy_failed", delivery: { ok: true, status: 200 } });
    const sent = receiver.received.filter((x) => x.path.startsWith("/offsite500/"));
    expect(sent).toHaveLength(1);
    const text = (JSON.parse(sent[0].body) as AlertPayload).text;
    expect(text).toContain("off-site copy FAILED");
    expect(text).toContain("is good in R2");
    expect((await activity("backup_alert_sent")).at(-1)!.details).toMatchObject({ kind: "offsite_copy_failed" });

    // Health: amber while the newest backup has no verified copy, only when off-site is configured.
    const health = await getBackupHealth({ db, bucket, now, offsiteConfigured: true });
    expect(health.status).toBe("attention");
    expect(health.issues).toEqual([expect.objectContaining({ code: "NO_OFFSITE_COPY", severity: "amber" })]);
    expect(health.issues[0].message).toContain(`the newest backup ${name} has no verified off-site copy`);
    expect((await getBackupHealth({ db, bucket, now })).status).toBe("ok");
    // Dashboard: per backup, off-site ✓ / ✗, or – when not configured.
    const dash = await getDashboard({ db, bucket, now, offsiteConfigured: true });
    expect(dash.backups.map((b) => [b.name, b.offsite])).toEqual([
      [name, "missing"],
      [first.name, "verified"],
    ]);
    expect(dash.backups[1].offsiteAt).toBe(`${config.endpointHost}/${BUCKET}/${keysFor(first.name).object}`);
    expect((await getDashboard({ db, bucket, now })).backups.map((b) => b.offsite)).toEqual(["not-configured", "not-configured"]);
  });

  it("403 is not retried and the backup stands; a wrong secret gets the server's own 403; a server that is down, a partial config: each logged", async () => {
    proxy.set("403");
    const seenBefore = proxy.seen.length;
    const a = await runBackup({ db, bucket, now: nextTime(), trigger: "cli", signingKey: keys.signingKey, offsite: step() });
    proxy.set("pass");
    expect(a.offsite!.failed).toMatchObject({ code: "STORAGE_ERROR", name: a.summary.name });
    expect(a.offsite!.failed!.reason).toMatch(/HTTP 403 AccessDenied/);
    // One request (the first, refused), no retry and no more.
    expect(proxy.seen.slice(seenBefore).map((x) => x.answered)).toEqual([403]);
    expect((await listBackups(bucket)).backups.map((x) => x.name)).toContain(a.summary.name);
    expect(a.summary.warnings.join("\n")).toMatch(/off-site copy of .* failed \(the R2 backup is good/);

    // The copy step alone (the backup run calls it the same way): it tries the newest missing backup.
    const copyWith = (s: OffsiteSetting) => copyMissingToOffsite({ bucket, db, offsite: s, signingKey: keys.signingKey, newest: a.summary.name, limit: 1, client: { partSizeBytes: PART, retry: { attempts: 2, baseMs: 5 } } });
    const wrongKey = await copyWith(parseOffsiteConfig(settings({ OFFSITE_S3_ENDPOINT: `http://127.0.0.1:${s3.port}`, OFFSITE_S3_SECRET_ACCESS_KEY: "not-the-secret" })));
    expect(wrongKey.failed!.reason).toMatch(/HTTP 403 SignatureDoesNotMatch/);
    const down = await copyWith(parseOffsiteConfig(settings({ OFFSITE_S3_ENDPOINT: `http://127.0.0.1:${await closedPort()}` })));
    expect(down.failed!.reason).toMatch(/fetch failed|ECONNREFUSED|connect/i);
    const partial = await copyWith(parseOffsiteConfig((n) => (n === "OFFSITE_S3_ENDPOINT" ? proxy.url : undefined)));
    expect(partial.failed).toMatchObject({ code: "CONFIG_ERROR", name: a.summary.name });
    for (const r of [wrongKey, down, partial]) expect(r.copied).toEqual([]);
    expect((await activity("offsite_copy_failed")).map((x) => x.entity_id).slice(-4)).toEqual(Array(4).fill(a.summary.key));
  });

  it("the next runs catch up: every complete backup without a verified copy, newest first, a few per run", async () => {
    const missingBefore = (await listBackups(bucket)).backups.filter((b) => !b.manifest.offsite).map((b) => b.name);
    expect(missingBefore).toHaveLength(2);
    const r1 = await runBackup({ db, bucket, now: nextTime(), trigger: "cli", signingKey: keys.signingKey, offsite: step(setting, 2) });
    expect(r1.offsite!.copied.map((c) => c.name)).toEqual([r1.summary.name, missingBefore[0]]);
    expect(r1.offsite!.missing).toEqual([missingBefore[1]]);
    const r2 = await runBackup({ db, bucket, now: nextTime(), trigger: "cli", signingKey: keys.signingKey, offsite: step(setting) });
    expect(r2.offsite!.copied.map((c) => c.name)).toEqual([r2.summary.name, missingBefore[1]]);
    expect(r2.offsite!.missing).toEqual([]);
    const health = await getBackupHealth({ db, bucket, now: new Date(S + tick * 60_000), offsiteConfigured: true });
    expect(health.status, health.summary).toBe("ok");
    for (const b of (await listBackups(bucket)).backups) {
      expect(b.manifest.offsite?.sha256, b.name).toBe(b.manifest.object.sha256);
      const got = await client.getObject(keysFor(b.name).object);
      expect((await hashStream(got!.body)).sha256).toBe(b.manifest.object.sha256);
    }
  });

  describe("restore from the off-site copy alone", () => {
    const run = promisify(execFile);
    let work: string;
    const env = () => ({
      ...CLI_ENV,
      BACKUP_VERIFY_KEY: keys.text.verifyKey,
      OFFSITE_S3_ENDPOINT: proxy.url,
      OFFSITE_S3_BUCKET: BUCKET,
      OFFSITE_S3_REGION: "us-east-1",
      OFFSITE_S3_ACCESS_KEY_ID: S3_ACCESS_KEY,
      OFFSITE_S3_SECRET_ACCESS_KEY: S3_SECRET_KEY,
    });
    const cli = (args: string[], e: NodeJS.ProcessEnv = env()) =>
      run(path.join(PROJECT_ROOT, "node_modules", ".bin", "tsx"), [path.join(PROJECT_ROOT, "scripts", "restore.ts"), ...args], { cwd: work, env: e }).then(
        (r) => ({ code: 0, ...r }),
        (x: { code: number; stdout: string; stderr: string }) => ({ code: x.code, stdout: x.stdout, stderr: x.stderr }),
      );

    beforeAll(async () => {
      work = tempDir("offsite-restore");
      // No R2: the backup's objects are gone from the bucket.
      await bucket.delete([keysFor(first.name).object, keysFor(first.name).manifest]);
      expect(await bucket.head(keysFor(first.name).manifest)).toBeNull();
    });

    it("--from-offsite restores it exactly, cell by cell, with the signature and hashes checked", async () => {
      const file = path.join(work, "from-offsite.db");
      const r = await cli([first.name, "--from-offsite", "--to-sqlite", file, "--json"]);
      expect(r.code, r.stderr).toBe(0);
      const result = JSON.parse(r.stdout) as { ok: boolean; verification?: { checks: { check: string; ok: boolean }[] } };
      expect(result.ok).toBe(true);
      expect(JSON.stringify(result)).toMatch(/Ed25519 signature by key/);
      expect(canonicalDump(file, { withoutRestoreAudit: true })).toBe(first.before);
    });

    it("--file of a downloaded off-site copy restores the same; a changed off-site object is refused", async () => {
      const dir = tempDir("offsite-download");
      const objFile = path.join(dir, `${first.name}.sql.gz`);
      const got = await client.getObject(keysFor(first.name).object);
      fs.writeFileSync(objFile, new Uint8Array(await new Response(got!.body).arrayBuffer()));
      fs.writeFileSync(path.join(dir, `${first.name}.manifest.json`), (await client.getText(keysFor(first.name).manifest))!);
      const restore = (source: RestoreOptions["source"], file: string) =>
        runRestore({ source, target: { kind: "sqlite", file }, verifyKeys: keys.verifyKeys, reporter: silentReporter(), tempRoot: work });
      const file = path.join(work, "from-file.db");
      expect((await restore({ kind: "file", file: objFile }, file)).ok).toBe(true);
      expect(canonicalDump(file, { withoutRestoreAudit: true })).toBe(first.before);

      // Bit rot (or tampering) off-site: same size, one byte changed.
      const bytes = fs.readFileSync(objFile);
      bytes[bytes.length >> 1] ^= 1;
      await client.putObject(keysFor(first.name).object, new Uint8Array(bytes), "application/gzip");
      const bad = await rejectionOf(restore({ kind: "offsite", name: first.name, config }, path.join(work, "bad.db")));
      expect(bad.code).toBe("INTEGRITY_ERROR");
      expect(bad.message).toMatch(/^corrupted backup object: sha256 of backups\/database-.*\.sql\.gz is [0-9a-f]{64}, its manifest says/);
      expect(fs.existsSync(path.join(work, "bad.db"))).toBe(false);
      const gone = await rejectionOf(restore({ kind: "offsite", name: "database-2020-01-01-00-00-00", config }, path.join(work, "gone.db")));
      expect(gone.code).toBe("NOT_FOUND");
      expect(gone.message).toMatch(/missing manifest: backups\/database-2020-01-01-00-00-00\.manifest\.json was not found in the off-site bucket .*no such backup there/);
    });

    it("--from-offsite without OFFSITE_S3_* is refused (INVALID_INPUT: exit 2); a partial set names what is missing", () => {
      const none = () => parseRestoreArgs([first.name, "--from-offsite", "--to-sqlite", "x.db"], () => undefined);
      expect(none).toThrow(/^--from-offsite needs OFFSITE_S3_ENDPOINT, /);
      const partial = () => parseRestoreArgs([first.name, "--from-offsite", "--to-sqlite", "x.db"], settings({ OFFSITE_S3_ENDPOINT: proxy.url, OFFSITE_S3_REGION: undefined }));
      expect(partial).toThrow(/^off-site copy misconfigured: OFFSITE_S3_REGION not set/);
      expect(() => parseRestoreArgs([first.name, "--from-offsite", "--file", "a.sql.gz"], () => undefined)).toThrow(/one or the other/);
      const ok = parseRestoreArgs([first.name, "--from-offsite", "--to-sqlite", "x.db"], settings({ OFFSITE_S3_ENDPOINT: proxy.url }));
      expect(ok !== "help" && ok.options.source).toMatchObject({ kind: "offsite", name: first.name, config: { bucket: BUCKET } });
    });
  });

  it("the nightly run applies BACKUP_RETENTION to the off-site bucket by its own listing: the same GFS set there as in R2", async () => {
    // Ten nightly backups long ago (each copied off-site by its own run), then a nightly run as of
    // 2024-06-10 12:00 with daily=3 and no weekly or monthly tier. Expected, counted by hand: the
    // newest 7 (that night's and 06-10 … 06-05) stay; 06-01 … 06-04 go, in both buckets. Today's
    // backups from the tests above are in that run's future: never deleted, never counted.
    const day = (d: number, h = 2) => new Date(Date.UTC(2024, 5, d, h));
    for (let d = 1; d <= 10; d++) await runBackup({ db, bucket, now: day(d), trigger: "cli", signingKey: keys.signingKey, offsite: step(setting, 50) });
    const notes = offsiteKeyFor(config, "backups/notes.txt");
    await client.putObject(notes, "restore notes", "text/plain");
    const olds = async (names: string[]) => names.filter((n) => n.startsWith("database-2024-06-")).sort();
    const offsiteNames = async () =>
      olds((await client.listObjects(config.prefix)).map((o) => r2KeyFor(config, o.key)!).filter((k) => k.endsWith(".manifest.json")).map((k) => k.slice("backups/".length, -".manifest.json".length)));
    expect(await offsiteNames()).toHaveLength(10);

    const r = await runScheduledBackup({ db, bucket, now: day(10, 12), signingKey: keys.signingKey, offsite: step(setting, 50), retention: parseRetentionSetting("daily=3,weekly=0,monthly=0") });
    const expected = ["database-2024-06-10-12-00-00", ...[5, 6, 7, 8, 9, 10].map((d) => `database-2024-06-${String(d).padStart(2, "0")}-02-00-00`)].sort();
    expect(await olds((await listBackups(bucket)).backups.map((b) => b.name))).toEqual(expected);
    expect(await offsiteNames()).toEqual(expected);
    expect(r.cleanup.deleted.filter((k) => k.includes("2024-06-"))).toHaveLength(4);
    expect(r.offsite?.retention).toMatchObject({ leftToProvider: null });
    expect(r.offsite!.retention!.deleted.sort()).toEqual([1, 2, 3, 4].map((d) => keysFor(`database-2024-06-0${d}-02-00-00`).object));
    // Not a backup: untouched; and no object of a deleted backup is left off-site.
    expect(await client.getText(notes)).toBe("restore notes");
    expect((await client.listObjects(config.prefix)).filter((o) => o.key.includes("2024-06-0") && /2024-06-0[1-4]/.test(o.key))).toEqual([]);
  });

  it("npm run backup copies off-site from inside workerd (the runtime of Pages and the cron Worker)", async () => {
    // The CLI's workerd opens the same state: this process lets go of it first.
    await platform.dispose();
    disposed = true;
    const r = await promisify(execFile)(path.join(PROJECT_ROOT, "node_modules", ".bin", "tsx"), [path.join(PROJECT_ROOT, "scripts", "backup.ts"), "--persist-to", platform.persistTo], {
      cwd: PROJECT_ROOT,
      env: { ...CLI_ENV, BACKUP_SIGNING_KEY: keys.text.signingKey, OFFSITE_S3_ENDPOINT: proxy.url, OFFSITE_S3_BUCKET: BUCKET, OFFSITE_S3_REGION: "us-east-1", OFFSITE_S3_ACCESS_KEY_ID: S3_ACCESS_KEY, OFFSITE_S3_SECRET_ACCESS_KEY: S3_SECRET_KEY },
    });
    const out = JSON.parse(r.stdout) as { success: boolean; backup: { key: string; sha256: string; size: number; offsite: unknown; warnings?: string[] } };
    expect(out.success).toBe(true);
    expect(out.backup.warnings).toBeUndefined();
    expect(out.backup.offsite).toEqual({ verified: true, key: out.backup.key, endpointHost: config.endpointHost, bucket: BUCKET });
    const got = await client.getObject(out.backup.key);
    expect(await hashStream(got!.body)).toEqual({ size: out.backup.size, sha256: out.backup.sha256 });
    const offManifest = JSON.parse((await client.getText(out.backup.key.replace(/\.sql\.gz$/, ".manifest.json")))!) as Manifest;
    expect(await verifyManifestSignature(offManifest, keys.verifyKeys)).toEqual({ state: "valid", keyId: keys.text.keyId });

    // The R2 manifest with its off-site record still restores from R2: the re-signed signature verifies.
    const name = offManifest.name;
    const file = path.join(tempDir("r2-restore"), "r2.db");
    const restored = await runRestore({ source: { kind: "local", name, persistTo: platform.persistTo }, target: { kind: "sqlite", file }, verifyKeys: keys.verifyKeys, reporter: silentReporter() });
    expect(restored.ok).toBe(true);
    expect(JSON.stringify(restored)).toMatch(/Ed25519 signature by key/);
  });
});

async function rejectionOf(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code: string; message: string };
  }
  throw new Error("expected a rejection");
}
