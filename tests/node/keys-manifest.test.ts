// Key patterns (the guard that keeps client documents safe) and manifest validation.
import { describe, expect, it } from "vitest";
import { backupNameFor, keysFor, parseBackupKey, parseBackupName } from "../../lib/backup/keys";
import { MANIFEST_FORMAT, parseManifest } from "../../lib/backup/manifest";
import { generateKeyPair, parseSigningKey, parseVerifyKeys, signManifest, verifyManifestSignature } from "../../lib/backup/signature";

describe("backup keys", () => {
  it("names backups by UTC second", () => {
    expect(backupNameFor(new Date("2026-01-15T02:00:00.999Z"))).toBe("database-2026-01-15-02-00-00");
    expect(keysFor("database-2026-01-15-02-00-00")).toEqual({
      name: "database-2026-01-15-02-00-00",
      object: "backups/database-2026-01-15-02-00-00.sql.gz",
      manifest: "backups/database-2026-01-15-02-00-00.manifest.json",
      staging: "backups/.staging/database-2026-01-15-02-00-00.sql.gz",
    });
  });

  it("parses exactly the backup keys and nothing that looks like them", () => {
    expect(parseBackupKey("backups/database-2026-01-15-02-00-00.sql.gz")?.kind).toBe("object");
    expect(parseBackupKey("backups/database-2026-01-15-02-00-00.manifest.json")?.kind).toBe("manifest");
    expect(parseBackupKey("backups/.staging/database-2026-01-15-02-00-00.sql.gz")?.kind).toBe("staging");
    for (const key of [
      "backups/notes.txt",
      "backups-old/database-2026-01-15-02-00-00.sql.gz",
      "Backups/database-2026-01-15-02-00-00.sql.gz",
      "backups/database-2026-13-45-00-00-00.sql.gz", // not a date
      "backups/database-2026-02-30-00-00-00.sql.gz", // rolls over: rejected
      "backups/database-2026-01-15-02-00-00.sql", // uncompressed look-alike
      "backups/database-2026-01-15-02-00-00.sql.gz.bak",
      "backups/sub/database-2026-01-15-02-00-00.sql.gz",
      "backups/.staging/database-2026-01-15-02-00-00.manifest.json",
      "clients/acme/database-2026-01-15-02-00-00.sql.gz",
      "",
    ]) {
      expect(parseBackupKey(key), key).toBeNull();
    }
  });

  it("accepts the ways a person names a backup, and nothing else", () => {
    for (const input of [
      "database-2026-01-15-02-00-00",
      "database-2026-01-15-02-00-00.sql.gz",
      "backups/database-2026-01-15-02-00-00.sql.gz",
      " backups/database-2026-01-15-02-00-00.manifest.json ",
    ]) {
      expect(parseBackupName(input), input).toBe("database-2026-01-15-02-00-00");
    }
    for (const input of ["../database-2026-01-15-02-00-00", "backups%2Fdatabase-2026-01-15-02-00-00", "clients/acme/contract.pdf", "database-latest"]) {
      expect(parseBackupName(input), input).toBeNull();
    }
  });
});

describe("manifest validation", () => {
  it("refuses other formats, newer versions and malformed manifests with distinct messages", () => {
    expect(() => parseManifest("{oops", "m.json")).toThrow("m.json is not valid JSON");
    expect(() => parseManifest(JSON.stringify({ format: "other" }), "m.json")).toThrow("m.json is not a d1-backup manifest");
    expect(() => parseManifest(JSON.stringify({ format: MANIFEST_FORMAT, formatVersion: 99 }), "m.json")).toThrow(
      "m.json has format version 99; this tool reads up to 1: upgrade d1-backup",
    );
    expect(() => parseManifest(JSON.stringify({ format: MANIFEST_FORMAT, formatVersion: 1 }), "m.json")).toThrow(/m\.json is malformed at/);
  });
});

describe("manifest snapshot record", () => {
  // A manifest as written before consistency was recorded: restore tools must keep reading it.
  const old = {
    format: MANIFEST_FORMAT,
    formatVersion: 1,
    name: "database-2026-11-24-02-00-00",
    createdAt: "2026-11-24T02:00:00.000Z",
    completedAt: "2026-11-24T02:00:01.000Z",
    durationMs: 1000,
    trigger: "scheduled",
    object: { key: "backups/database-2026-11-24-02-00-00.sql.gz", size: 10, sha256: "a".repeat(64), contentEncoding: "gzip" },
    sql: { size: 20, sha256: "b".repeat(64), statements: 3, dumpFormatVersion: 1 },
    schema: { latestMigration: "0002_backup_lock.sql", migrationsApplied: 2, tables: 1, indexes: 0, triggers: 0, views: 0 },
    tables: [{ name: "clients", rows: 1 }],
    totalRows: 1,
    snapshot: { mode: "paged", atomic: false, databaseBytes: 9_000_000, budgetBytes: 8_388_608 },
  };

  it("parses manifests without the consistency fields, and with them", () => {
    expect(parseManifest(JSON.stringify(old)).snapshot).toEqual(old.snapshot);
    const now = { ...old, snapshot: { ...old.snapshot, atomic: true, consistency: "total_changes", reads: 40, attempts: 2 } };
    expect(parseManifest(JSON.stringify(now)).snapshot).toEqual(now.snapshot);
    expect(() => parseManifest(JSON.stringify({ ...old, snapshot: { ...old.snapshot, consistency: "hope" } }), "m.json")).toThrow(
      /m\.json is malformed at snapshot\.consistency/,
    );
  });
});

describe("manifest signatures (Ed25519, WebCrypto in Node; tests/workers signs in workerd)", () => {
  const manifest = {
    format: MANIFEST_FORMAT,
    name: "database-2026-01-15-02-00-00",
    object: { size: 10, sha256: "a".repeat(64) },
    tables: [{ name: "clients", rows: 3 }],
    note: "ünïcödé 🎫 \"quoted\"\n",
  };

  it("a signature verifies with the public key, whatever the key order or JSON spacing of the stored manifest", async () => {
    const pair = await generateKeyPair();
    const { key, problem } = await parseSigningKey(pair.signingKey);
    expect(problem).toBeNull();
    expect(key!.keyId).toBe(pair.keyId);
    expect(pair.keyId).toMatch(/^[0-9a-f]{16}$/);
    const signature = await signManifest(manifest, key!);
    expect(signature).toMatchObject({ alg: "Ed25519", keyId: pair.keyId });
    const stored = JSON.parse(JSON.stringify({ signature, ...Object.fromEntries(Object.entries(manifest).reverse()) }, null, 2));
    expect(await verifyManifestSignature(stored, await parseVerifyKeys(pair.verifyKey))).toEqual({ state: "valid", keyId: pair.keyId });
  });

  it("any change, an unlisted key, or no signature is told apart", async () => {
    const [a, b] = [await generateKeyPair(), await generateKeyPair()];
    const signature = await signManifest(manifest, (await parseSigningKey(a.signingKey)).key!);
    const keysA = await parseVerifyKeys(a.verifyKey);
    const changed = { ...manifest, tables: [{ name: "clients", rows: 4 }], signature };
    expect(await verifyManifestSignature(changed, keysA)).toEqual({ state: "invalid", keyId: a.keyId });
    expect(await verifyManifestSignature({ ...manifest, extra: 1, signature }, keysA)).toEqual({ state: "invalid", keyId: a.keyId });
    expect(await verifyManifestSignature({ ...manifest, signature }, await parseVerifyKeys(b.verifyKey))).toEqual({ state: "unknown-key", keyId: a.keyId });
    expect(await verifyManifestSignature({ ...manifest, signature }, [])).toEqual({ state: "no-keys", keyId: a.keyId });
    expect(await verifyManifestSignature({ ...manifest, signature: null }, keysA)).toEqual({ state: "unsigned" });
    expect(await verifyManifestSignature(manifest, keysA)).toEqual({ state: "unsigned" });
    // A rotation: the old key is still listed, after the new one.
    expect(await verifyManifestSignature({ ...manifest, signature }, await parseVerifyKeys(`${b.verifyKey}, ${a.verifyKey}`))).toEqual({ state: "valid", keyId: a.keyId });
  });

  it("key text: base64 or PEM; unset is no key; anything else is named, never echoed", async () => {
    const pair = await generateKeyPair();
    const pem = `-----BEGIN PRIVATE KEY-----\n${pair.signingKey}\n-----END PRIVATE KEY-----\n`;
    expect((await parseSigningKey(pem)).key?.keyId).toBe(pair.keyId);
    expect((await parseVerifyKeys(`-----BEGIN PUBLIC KEY-----\n${pair.verifyKey}\n-----END PUBLIC KEY-----`))[0].keyId).toBe(pair.keyId);
    expect(await parseSigningKey(undefined)).toEqual({ key: null, problem: null });
    expect(await parseSigningKey("  ")).toEqual({ key: null, problem: null });
    const bad = await parseSigningKey("sekrit-value");
    expect(bad.problem).toMatch(/^BACKUP_SIGNING_KEY is invalid: not base64/);
    expect(bad.problem).not.toContain("sekrit");
    expect((await parseSigningKey(pair.verifyKey)).problem).toMatch(/not an Ed25519 private key/);
    await expect(parseVerifyKeys(`${pair.verifyKey},${pair.signingKey}`)).rejects.toThrow(/^BACKUP_VERIFY_KEY entry 2 is not an Ed25519 public key/);
  });
});
