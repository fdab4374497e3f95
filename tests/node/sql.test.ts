// lib/sql: quoting, UTF-8 lengths, literal splitting, tuple parsing and foreign-key ordering.
import { describe, expect, it } from "vitest";
import {
  isStagingTable,
  literalPieces,
  orderByForeignKeys,
  quoteIdent,
  splitTuple,
  stagingTableName,
  StatementBatcher,
  utf8Length,
  type TableInfo,
} from "../../lib/sql";

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
    const split = literalPieces(lit, 100)!;
    expect(split.type).toBe("text");
    for (const p of split.pieces) expect(utf8Length(p)).toBeLessThanOrEqual(100);
    const rebuilt = split.pieces.map((p) => p.slice(1, -1).replace(/''/g, "'")).join("");
    expect(rebuilt).toBe(text);
    expect(rebuilt.includes("\uFFFD")).toBe(false);
  });

  it("splits blob and hex-text literals at byte boundaries", () => {
    const blob = literalPieces(`X'${"AB".repeat(100)}'`, 53)!;
    expect(blob.type).toBe("blob");
    expect(blob.pieces[0]).toBe(`X'${"AB".repeat(25)}'`);
    expect(blob.pieces).toHaveLength(4);
    const text = literalPieces(`CAST(X'${"00".repeat(30)}' AS TEXT)`, 56)!;
    expect(text).toEqual({ type: "text", pieces: [`CAST(X'${"00".repeat(20)}' AS TEXT)`, `CAST(X'${"00".repeat(10)}' AS TEXT)`] });
    expect(literalPieces("12345", 20)).toBeNull();
    expect(literalPieces("NULL", 20)).toBeNull();
  });

  it("stages a row too large for one statement and inserts it whole, then drops the staging table", () => {
    const table = { name: "docs", insertTargets: ['"id"', '"doc"', '"b"'] } as TableInfo;
    const out: string[] = [];
    const staging = stagingTableName(["docs"]);
    expect(isStagingTable(staging)).toBe(true);
    const w = new StatementBatcher({ table, insert: "INSERT OR IGNORE INTO", maxStatementBytes: 1024, staging, emit: (s) => out.push(s) });
    w.add("(1,'small',X'00')");
    w.add(`(2,'${"x".repeat(3000)}',X'${"AB".repeat(100)}')`);
    const row = w.stage([{ literal: "3" }, { type: "text", bytes: 1500 }, { literal: "NULL" }]);
    row.appendHex(1, "41".repeat(1500));
    row.end();
    w.flush();
    const st = `"${staging}"`;
    expect(out[0]).toBe(`INSERT OR IGNORE INTO "docs" ("id", "doc", "b") VALUES\n(1,'small',X'00');\n`);
    expect(out[1]).toBe(`CREATE TABLE ${st} (k INTEGER PRIMARY KEY, v);\n`);
    for (const s of out) expect(utf8Length(s) - 1).toBeLessThanOrEqual(1024);
    // The target table sees one INSERT per row, never an UPDATE: no half-built value.
    expect(out.filter((s) => s.includes('"docs"'))).toEqual([
      out[0],
      `INSERT OR IGNORE INTO "docs" ("id", "doc", "b") VALUES\n(2,CAST((SELECT v FROM ${st} WHERE k=0) AS TEXT),X'${"AB".repeat(100)}');\n`,
      `INSERT OR IGNORE INTO "docs" ("id", "doc", "b") VALUES\n(3,CAST((SELECT v FROM ${st} WHERE k=0) AS TEXT),NULL);\n`,
    ]);
    expect(out.filter((s) => s.startsWith(`UPDATE ${st} SET v = v || `)).length).toBeGreaterThan(4);
    expect(out.filter((s) => s === `DELETE FROM ${st};\n`)).toHaveLength(2);
    expect(out[out.length - 1]).toBe(`DROP TABLE ${st};\n`);
    expect(w).toMatchObject({ rows: 3, splitRows: 2 });
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

