// Key patterns (the guard that keeps client documents safe) and manifest validation.
import { describe, expect, it } from "vitest";
import { backupNameFor, keysFor, parseBackupKey, parseBackupName } from "../../lib/backup/keys";
import { MANIFEST_FORMAT, parseManifest } from "../../lib/backup/manifest";

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
