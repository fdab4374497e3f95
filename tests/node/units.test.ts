// Pure pieces of the backup library: key patterns (the guard that keeps client documents safe),
// literal splitting, tuple parsing, foreign-key ordering and manifest validation.
import { describe, expect, it } from "vitest";
import { splitTuple } from "../../lib/backup/dump";
import { backupNameFor, keysFor, parseBackupKey, parseBackupName } from "../../lib/backup/keys";
import { MANIFEST_FORMAT, parseManifest } from "../../lib/backup/manifest";
import { orderByForeignKeys, type TableInfo } from "../../lib/backup/schema";
import { quoteIdent, splitLiteral, utf8Length } from "../../lib/backup/sql";

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

describe("SQL helpers", () => {
  it("quotes identifiers with quotes inside", () => {
    expect(quoteIdent('we"ird name')).toBe('"we""ird name"');
  });

  it("counts UTF-8 bytes like TextEncoder", () => {
    for (const s of ["", "abc", "Zoë", "日本語", "🎫🎫", "a\u0000b", "mixed ü 日 🎫 end"]) {
      expect(utf8Length(s), s).toBe(new TextEncoder().encode(s).length);
    }
  });

  it("splits text literals on code points, undoing and redoing quote doubling", () => {
    const text = "it's 🎫 日本 ".repeat(50);
    const lit = `'${text.replace(/'/g, "''")}'`;
    const split = splitLiteral(lit, 40, 100)!;
    const pieces = [split.first, ...split.appends.map((f) => f("c").replace(/^c \|\| /, ""))];
    for (const p of pieces) expect(utf8Length(p)).toBeLessThanOrEqual(100 + 2);
    const rebuilt = pieces.map((p) => p.slice(1, -1).replace(/''/g, "'")).join("");
    expect(rebuilt).toBe(text);
    expect(rebuilt.includes("\uFFFD")).toBe(false);
  });

  it("splits blob and hex-text literals at byte boundaries", () => {
    const blob = splitLiteral(`X'${"AB".repeat(100)}'`, 20, 50)!;
    expect(blob.first).toBe(`X'${"AB".repeat(10)}'`);
    expect(blob.appends.map((f) => f('"b"'))[0]).toBe(`CAST("b" || X'${"AB".repeat(25)}' AS BLOB)`);
    const text = splitLiteral(`CAST(X'${"00".repeat(30)}' AS TEXT)`, 20, 40)!;
    expect(text.first).toBe(`CAST(X'${"00".repeat(10)}' AS TEXT)`);
    expect(text.appends).toHaveLength(1);
    expect(splitLiteral("12345", 2, 2)).toBeNull();
    expect(splitLiteral("NULL", 2, 2)).toBeNull();
  });

  it("splits a VALUES tuple back into its literals", () => {
    expect(splitTuple("(1,'a,b','it''s (x)',X'00',CAST(X'6100' AS TEXT),NULL,-9.0e+999)")).toEqual([
      "1",
      "'a,b'",
      "'it''s (x)'",
      "X'00'",
      "CAST(X'6100' AS TEXT)",
      "NULL",
      "-9.0e+999",
    ]);
  });
});

describe("foreign-key order", () => {
  const t = (name: string) => ({ name }) as TableInfo;
  it("puts parents first, keeps schema order otherwise, and survives cycles", () => {
    const tables = ["invoice_items", "invoices", "clients", "a", "b"].map(t);
    const parents = new Map([
      ["invoice_items", new Set(["invoices"])],
      ["invoices", new Set(["clients"])],
      ["a", new Set(["b"])],
      ["b", new Set(["a"])],
    ]);
    expect(orderByForeignKeys(tables, parents).map((x) => x.name)).toEqual(["clients", "invoices", "invoice_items", "a", "b"]);
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
