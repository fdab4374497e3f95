// Client-side encryption (BACKUP_AGE_RECIPIENTS): a backup made inside workerd, as the CLI and the
// Worker make it, is an age file in R2 (`.sql.gz.age`) holding no plaintext; Debian's `age` CLI
// with either of its two identities, then gunzip and sqlite3, restore it exactly, and so does
// `npm run restore -- --identity`; a wrong or missing identity is refused with one line and the
// target is never created. A stream of more than one 5 MiB part goes through the multipart upload
// and the copy to its final key encrypted; encryption and decryption stay flat in memory.
import { execFile, execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import v8 from "node:v8";
import vm from "node:vm";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listBackups, parseAgeRecipients, parseManifest, verifyManifestSignature, type Manifest } from "../../lib/backup";
import { decryptStream, encryptStream, generateAgeKey, parseAgeIdentities } from "../../lib/backup/encryption";
import { keysFor, parseBackupKey, parseBackupName } from "../../lib/backup/keys";
import { copyWithMetadata, MIN_PART_SIZE, uploadGzip } from "../../lib/backup/upload";
import localWorker from "../../lib/local/worker";
import { openLocalPlatform, PROJECT_ROOT } from "../../lib/local/platform";
import { startLocalWorker, type LocalWorker } from "../../lib/local/runner";
import { seedDemoData } from "../../lib/seed/seed";
import { loadAgeIdentities, runRestore, silentReporter } from "../../lib/restore";
import { canonicalDump, CLI_ENV, d1File, freshPlatform, rejection, tempDir } from "../helpers/local";
import { testKeys, type TestKeys } from "../helpers/signing";
import { timed as timedIn } from "../helpers/timing";

const MARKER = `PLAINTEXT-MARKER-${randomBytes(6).toString("hex")}`;
const AGE_MAGIC = "age-encryption.org/v1\n";

let persistTo: string;
let work: string;
let keys: TestKeys;
let before: string;
let manifest: Manifest;
let objectBytes: Buffer;
const ids: { a: string; b: string; wrong: string } = { a: "", b: "", wrong: "" };
const recipients: string[] = [];
const timings: Record<string, number> = {};

const timed = <T>(label: string, f: () => T | Promise<T>) => timedIn(timings, label, f);

/** An identity file as age-keygen writes it. */
function identityFile(label: string, identity: string, recipient: string): string {
  const file = path.join(work, `${label}-key.txt`);
  fs.writeFileSync(file, `# created: 2026-01-15T02:00:00Z\n# public key: ${recipient}\n${identity}\n`, { mode: 0o600 });
  return file;
}

beforeAll(async () => {
  keys = await testKeys();
  work = tempDir("age");
  const platform = await freshPlatform();
  persistTo = platform.persistTo;
  try {
    const db = platform.env.DB;
    await seedDemoData(db, { rows: 150 });
    await db.prepare("INSERT INTO ticket_comments (ticket_id, author_id, body, is_internal, created_at) VALUES (1, NULL, ?, 1, '2026-01-14T09:00:00.000Z')").bind(`${MARKER}: the admin password is hunter2`).run();
  } finally {
    await platform.dispose();
  }
  before = canonicalDump(d1File(persistTo));

  const [a, b, wrong] = await Promise.all([generateAgeKey(), generateAgeKey(), generateAgeKey()]);
  recipients.push(a.recipient, b.recipient);
  ids.a = identityFile("a", a.identity, a.recipient);
  ids.b = identityFile("b", b.identity, b.recipient);
  ids.wrong = identityFile("wrong", wrong.identity, wrong.recipient);

  let worker: LocalWorker | undefined;
  try {
    // As an operator would set it: two keys, a comment, newline and comma separated.
    worker = await startLocalWorker({
      persistTo,
      secrets: { BACKUP_SIGNING_KEY: keys.text.signingKey, BACKUP_AGE_RECIPIENTS: `# ops laptop\n${a.recipient},\n${b.recipient}` },
    });
    const res = await timed("backup", () =>
      worker!.call<{ manifest: Manifest; backup: { key: string } }>("/backup", { method: "POST", body: { now: "2026-01-15T02:00:00.000Z", dump: {} } }),
    );
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    manifest = res.body.manifest;
  } finally {
    await worker?.dispose();
  }
  const p = await openLocalPlatform({ persistTo });
  try {
    const obj = await p.env.DOCUMENTS.get(manifest.object.key);
    objectBytes = Buffer.from(await obj!.arrayBuffer());
  } finally {
    await p.dispose();
  }
}, 180_000);

afterAll(() => console.log(`encryption.test timings (ms): ${JSON.stringify(timings)}`));

const run = promisify(execFile);
const restoreCli = (args: string[], env: Record<string, string> = {}) =>
  run(path.join(PROJECT_ROOT, "node_modules", ".bin", "tsx"), [path.join(PROJECT_ROOT, "scripts", "restore.ts"), ...args], {
    cwd: work,
    env: { ...CLI_ENV, BACKUP_VERIFY_KEY: keys.text.verifyKey, AGE_IDENTITY_FILE: "", ...env },
    maxBuffer: 64 * 1024 * 1024,
  }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

describe("an encrypted backup in R2", () => {
  it("is an age file under .sql.gz.age: not gzip, no plaintext", () => {
    expect(manifest.object.key).toBe("backups/database-2026-01-15-02-00-00.sql.gz.age");
    expect(parseBackupKey(manifest.object.key)).toMatchObject({ kind: "object", encrypted: true });
    expect(objectBytes.subarray(0, AGE_MAGIC.length).toString("latin1")).toBe(AGE_MAGIC);
    expect(objectBytes[0] === 0x1f && objectBytes[1] === 0x8b).toBe(false);
    expect(() => gunzipSync(objectBytes)).toThrow();
    expect(objectBytes.includes(MARKER)).toBe(false);
    expect(objectBytes.includes("CREATE TABLE")).toBe(false);
    // Two recipients: two X25519 stanzas in the header.
    expect(objectBytes.subarray(0, 1000).toString("latin1").match(/^-> X25519 /gm)).toHaveLength(2);
  });

  it("its signed manifest records the encryption and hashes both the encrypted object and the plain SQL", async () => {
    const parsed = parseManifest(JSON.stringify(manifest));
    expect(parsed.object.contentEncoding).toBe("age+gzip");
    expect(parsed.encryption).toEqual({ scheme: "age", recipients });
    expect(parsed.object.size).toBe(objectBytes.length);
    expect(parsed.object.sha256).toBe(createHash("sha256").update(objectBytes).digest("hex"));
    const sql = execFileSync("sh", ["-c", 'age -d -i "$1" | gunzip', "sh", ids.a], { input: objectBytes, maxBuffer: 256 * 1024 * 1024 });
    expect(parsed.sql.size).toBe(sql.length);
    expect(parsed.sql.sha256).toBe(createHash("sha256").update(sql).digest("hex"));
    expect(sql.includes(MARKER)).toBe(true); // the marker is in the backup, only encrypted
    expect(await verifyManifestSignature(manifest, keys.verifyKeys)).toMatchObject({ state: "valid" });
    // Taking the encryption out of a signed manifest breaks its signature.
    const stripped = { ...manifest, encryption: null, object: { ...manifest.object, contentEncoding: "gzip" } };
    expect(await verifyManifestSignature(stripped, keys.verifyKeys)).toMatchObject({ state: "invalid" });
  });

  it("is listed as a complete backup, and named by either spelling", async () => {
    const p = await openLocalPlatform({ persistTo });
    try {
      const listing = await listBackups(p.env.DOCUMENTS);
      expect(listing.incomplete).toEqual([]);
      expect(listing.backups.map((b) => b.key)).toEqual([manifest.object.key]);
    } finally {
      await p.dispose();
    }
    expect(parseBackupName("backups/database-2026-01-15-02-00-00.sql.gz.age")).toBe("database-2026-01-15-02-00-00");
  });
});

/** The object and its manifest as downloaded files, named as the bucket names them. */
function downloaded(): string {
  const dir = tempDir("age-download");
  const file = path.join(dir, "database-2026-01-15-02-00-00.sql.gz.age");
  fs.writeFileSync(file, objectBytes);
  fs.writeFileSync(path.join(dir, "database-2026-01-15-02-00-00.manifest.json"), JSON.stringify(manifest));
  return file;
}

describe("restoring it", () => {
  it("with stock tools: age -d -i key | gunzip | sqlite3, cell for cell; the other identity decrypts it too", async () => {
    const file = path.join(work, "backup.sql.gz.age");
    fs.writeFileSync(file, objectBytes);
    const db = path.join(tempDir("age-stock"), "new.db");
    await timed("stock", () => execFileSync("bash", ["-c", 'set -o pipefail; age -d -i "$1" "$2" | gunzip | sqlite3 -bail "$3"', "bash", ids.a, file, db], { stdio: "pipe" }));
    expect(canonicalDump(db)).toBe(before);
    const sha = execFileSync("bash", ["-c", 'set -o pipefail; age -d -i "$1" "$2" | gunzip | sha256sum', "bash", ids.b, file], { encoding: "utf8" });
    expect(sha.split(" ")[0]).toBe(manifest.sql.sha256);
  });

  it("with npm run restore -- --identity, verified and exact", async () => {
    const file = path.join(tempDir("age-cli"), "restored.db");
    const r = await timed("cli-restore", () => restoreCli([manifest.name, "--source-persist-to", persistTo, "--identity", ids.a, "--to-sqlite", file, "--json"]));
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as { ok: boolean; verification: { check: string; ok: boolean }[]; backup: { key: string } };
    expect(result.ok).toBe(true);
    expect(result.backup.key).toBe(manifest.object.key);
    expect(result.verification.filter((c) => c.ok).map((c) => c.check)).toEqual(
      expect.arrayContaining(["signature", "object-sha256", "decrypt", "gzip", "sql-sha256", "end-marker"]),
    );
    expect(canonicalDump(file)).toBe(before);
  });

  it("refuses a wrong identity (exit 1), a missing one and a bad key file (exit 2) in one line, creating nothing", async () => {
    const tmp = tempDir("age-tmp");
    const target = path.join(tempDir("age-refused"), "never.db");
    const notAKey = path.join(work, "not-a-key.txt");
    fs.writeFileSync(notAKey, `${recipients[0]}\n`);
    // A downloaded copy (--file): the same verification as from R2, without starting workerd.
    const file = downloaded();
    const [wrong, missing, bad] = await timed("cli-refusals", () =>
      Promise.all([
        // The wrong key given through AGE_IDENTITY_FILE (the environment or .dev.vars) this time.
        restoreCli(["--file", file, "--to-sqlite", target, "--quiet"], { TMPDIR: tmp, AGE_IDENTITY_FILE: ids.wrong }),
        restoreCli(["--file", file, "--to-sqlite", target, "--quiet"], { TMPDIR: tmp }),
        restoreCli([manifest.name, "--source-persist-to", persistTo, "--identity", notAKey, "--to-sqlite", target, "--quiet"], { TMPDIR: tmp }),
      ]),
    );
    expect(wrong.code).toBe(1);
    expect(wrong.stderr.trim().split("\n")).toHaveLength(1);
    expect(wrong.stderr).toMatch(/^restore: INTEGRITY_ERROR: wrong age identity: none of the given identities can decrypt .*database-2026-01-15-02-00-00\.sql\.gz\.age/);
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim().split("\n")).toHaveLength(1);
    expect(missing.stderr).toMatch(/^restore: INVALID_INPUT: encrypted backup: .* is an age file \(encrypted to age1.*\): give the age identity with --identity FILE/);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^restore: INVALID_INPUT: --identity .*not-a-key\.txt: line 1 of its keys is not an age identity/);

    expect(fs.existsSync(target)).toBe(false);
    expect(fs.readdirSync(path.dirname(target))).toEqual([]);
    // No download, no plaintext left behind (tsx keeps its compile cache there).
    expect(fs.readdirSync(tmp).filter((f) => f.startsWith("d1-backup-restore-"))).toEqual([]);
  });

  it("restores a downloaded .sql.gz.age with the other identity, and refuses it without one even with no manifest", async () => {
    const file = downloaded();
    const db = path.join(tempDir("age-file"), "restored.db");
    const r = await runRestore({ source: { kind: "file", file }, target: { kind: "sqlite", file: db }, reporter: silentReporter(), tempRoot: work, verifyKeys: keys.verifyKeys, identities: loadAgeIdentities(ids.b) });
    expect(r.ok, JSON.stringify(r.checks)).toBe(true);
    expect(canonicalDump(db)).toBe(before);
    // Without a manifest, the file's own first line says it is encrypted.
    const raw = await rejection(
      runRestore({ source: { kind: "file", file, noManifest: true }, target: { kind: "sqlite", file: `${db}.2` }, allowUnsigned: true, reporter: silentReporter(), tempRoot: work, verifyKeys: [] }),
    );
    expect(raw.code).toBe("INVALID_INPUT");
    expect(raw.message).toMatch(/^encrypted backup: .* is an age file: give the age identity/);
    expect(fs.existsSync(`${db}.2`)).toBe(false);
    // One flipped byte in the body: with the manifest its sha256 refuses it; without, the age
    // chunk's authentication does, and no SQL is kept.
    const flipped = downloaded();
    const bytes = fs.readFileSync(flipped);
    bytes[bytes.length - 100] ^= 1;
    fs.writeFileSync(flipped, bytes);
    const opts = { target: { kind: "sqlite" as const, file: `${db}.3` }, reporter: silentReporter(), tempRoot: work, identities: loadAgeIdentities(ids.a) };
    expect((await rejection(runRestore({ ...opts, source: { kind: "file", file: flipped }, verifyKeys: keys.verifyKeys }))).details).toMatchObject({ check: "object-sha256" });
    const cut = await rejection(runRestore({ ...opts, source: { kind: "file", file: flipped, noManifest: true }, allowUnsigned: true, verifyKeys: [] }));
    expect(cut.details).toMatchObject({ check: "decrypt" });
    expect(cut.message).toMatch(/^corrupted age file: .* does not decrypt completely/);
    expect(fs.existsSync(`${db}.3`)).toBe(false);
  });
});

describe("configuration and streaming", () => {
  it("BACKUP_AGE_RECIPIENTS: unset is off; a private key, garbage or a bad checksum is a clear config error", async () => {
    expect(parseAgeRecipients(undefined)).toEqual({ encryption: null, problem: null });
    expect(parseAgeRecipients("  \n# none yet\n")).toEqual({ encryption: null, problem: null });
    expect(parseAgeRecipients(`${recipients[0]} ${recipients[0]}`).encryption?.recipients).toEqual([recipients[0]]);
    const identity = parseAgeIdentities(fs.readFileSync(ids.a, "utf8"), "a")[0];
    expect(parseAgeRecipients(identity).problem).toMatch(/^BACKUP_AGE_RECIPIENTS entry 1 is a PRIVATE key/);
    expect(parseAgeRecipients(`${recipients[0]}, ssh-ed25519`).problem).toMatch(/^BACKUP_AGE_RECIPIENTS entry 2 is not an age X25519 recipient/);
    const flipped = recipients[0].slice(0, -1) + (recipients[0].endsWith("q") ? "p" : "q");
    expect(parseAgeRecipients(flipped).problem).toMatch(/^BACKUP_AGE_RECIPIENTS entry 1 has a bad checksum/);
    // The CLI backup's entry point (lib/local/worker.ts, here called in Node with the real local
    // bindings) refuses to back up with it, and writes nothing.
    const p = await openLocalPlatform({ persistTo });
    try {
      const env = { DB: p.env.DB, DOCUMENTS: p.env.DOCUMENTS, BACKUP_AGE_RECIPIENTS: "age1notakey" };
      const res = await localWorker.fetch(new Request("http://local/backup", { method: "POST", body: JSON.stringify({ now: "2026-01-16T02:00:00.000Z" }) }), env);
      expect(res.status).toBe(500);
      expect(((await res.json()) as { error: unknown }).error).toMatchObject({ code: "CONFIG_ERROR", message: expect.stringMatching(/BACKUP_AGE_RECIPIENTS entry 1/) });
      const listing = await listBackups(p.env.DOCUMENTS);
      expect(listing.backups.map((b) => b.name)).toEqual([manifest.name]);
      expect(listing.incomplete).toEqual([]);
    } finally {
      await p.dispose();
    }
  });

  it("a stream larger than one part is uploaded, copied and read back encrypted, then decrypts by age to the hashed SQL", async () => {
    const p = await openLocalPlatform({ persistTo });
    const staging = "backups/.staging/database-2026-01-17-02-00-00.sql.gz.age";
    const final = "backups/database-2026-01-17-02-00-00.sql.gz.age";
    try {
      const bucket = p.env.DOCUMENTS;
      // Random hex text compresses to about half: 12 MiB of it is more than one 5 MiB part of gzip.
      async function* chunks() {
        for (let i = 0; i < 44; i++) yield `INSERT INTO t VALUES (X'${randomBytes(128 * 1024).toString("hex")}');\n`;
      }
      const up = await timed("multipart", () => uploadGzip(bucket, staging, chunks(), MIN_PART_SIZE, { scheme: "age", recipients }));
      expect(up.parts).toBeGreaterThanOrEqual(2);
      expect(up.size).toBeGreaterThan(MIN_PART_SIZE);
      await copyWithMetadata(bucket, staging, final, { size: up.size, sha256: up.sha256 }, { customMetadata: {}, httpMetadata: {} }, MIN_PART_SIZE);
      const bytes = Buffer.from(await (await bucket.get(final))!.arrayBuffer());
      expect(bytes.length).toBe(up.size);
      expect(createHash("sha256").update(bytes).digest("hex")).toBe(up.sha256);
      expect(bytes.subarray(0, AGE_MAGIC.length).toString("latin1")).toBe(AGE_MAGIC);
      const sha = execFileSync("bash", ["-c", 'set -o pipefail; age -d -i "$1" | gunzip | sha256sum', "bash", ids.b], { input: bytes, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
      expect(sha.split(" ")[0]).toBe(up.plainSha256);
    } finally {
      await p.env.DOCUMENTS.delete([staging, final]);
      await p.dispose();
    }
  });

  it("encrypts and decrypts 24 MiB as streams in flat memory", async () => {
    const total = 24 * 1024 * 1024;
    const chunk = randomBytes(256 * 1024);
    let sent = 0;
    const source = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent >= total) return c.close();
        c.enqueue(new Uint8Array(chunk));
        sent += chunk.length;
      },
    });
    const identity = parseAgeIdentities(fs.readFileSync(ids.a, "utf8"), "a");
    // What stays live is the question, not garbage not yet collected: collect every 2 MiB.
    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc") as () => void;
    gc();
    const base = process.memoryUsage();
    let peak = 0;
    let sinceGc = 0;
    const inHash = createHash("sha256");
    const plain = await decryptStream(await encryptStream(source, { scheme: "age", recipients: [recipients[0]] }), identity, "stream");
    let received = 0;
    await timed("stream24MiB", async () => {
      for await (const c of plain as unknown as AsyncIterable<Uint8Array>) {
        inHash.update(c);
        received += c.length;
        if ((sinceGc += c.length) < 2 * 1024 * 1024) continue;
        sinceGc = 0;
        gc();
        const m = process.memoryUsage();
        peak = Math.max(peak, m.heapUsed + m.arrayBuffers - base.heapUsed - base.arrayBuffers);
      }
    });
    expect(received).toBe(total);
    timings.streamPeakExtraMiB = Math.round(peak / 1024 / 1024);
    // Whole-buffer handling would keep 24 MiB alive at least once; streaming holds a few chunks.
    expect(peak).toBeLessThan(12 * 1024 * 1024);
  });
});

describe("keys and manifests of both forms", () => {
  it("builds and parses .sql.gz.age keys beside .sql.gz ones, and nothing that looks like them", () => {
    const name = "database-2026-01-15-02-00-00";
    expect(keysFor(name, { encrypted: true })).toEqual({
      name,
      object: `backups/${name}.sql.gz.age`,
      manifest: `backups/${name}.manifest.json`,
      staging: `backups/.staging/${name}.sql.gz.age`,
    });
    expect(parseBackupKey(`backups/.staging/${name}.sql.gz.age`)).toMatchObject({ kind: "staging", encrypted: true });
    expect(parseBackupKey(`backups/${name}.sql.gz`)).toMatchObject({ kind: "object", encrypted: false });
    for (const key of [`backups/${name}.sql.age`, `backups/${name}.sql.gz.age.bak`, `backups/${name}.age`, `clients/${name}.sql.gz.age`, `backups/${name}.manifest.json.age`]) {
      expect(parseBackupKey(key), key).toBeNull();
    }
  });

  it("old manifests (no encryption field) still parse; contentEncoding and encryption must agree", () => {
    const plain = { ...manifest, object: { ...manifest.object, key: manifest.object.key.replace(/\.age$/, ""), contentEncoding: "gzip" } } as Record<string, unknown>;
    delete plain.encryption;
    expect(parseManifest(JSON.stringify(plain)).encryption).toBeUndefined();
    expect(() => parseManifest(JSON.stringify({ ...plain, encryption: manifest.encryption }), "m.json")).toThrow(/m\.json is malformed at encryption/);
    expect(() => parseManifest(JSON.stringify({ ...manifest, encryption: null }), "m.json")).toThrow(/m\.json is malformed at encryption/);
  });
});
