// lib/sql: quoting, UTF-8 lengths, literal splitting, tuple parsing and foreign-key ordering.
import { describe, expect, it } from "vitest";
import { orderByForeignKeys, quoteIdent, splitLiteral, splitTuple, utf8Length, type TableInfo } from "../../lib/sql";

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

