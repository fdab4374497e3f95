// lib/sql: quoting, UTF-8 lengths, literal splitting, tuple parsing and foreign-key ordering.
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import {
  contentlessText,
  describeFts5,
  describeTable,
  fts5ShadowNames,
  isStagingTable,
  literalPieces,
  openSplitterBlocks,
  orderByForeignKeys,
  quoteIdent,
  rowMatch,
  rowQuery,
  safeTuple,
  splitterSafe,
  splitTuple,
  stagingTableName,
  StatementBatcher,
  utf8Length,
  valuesTuple,
  type TableInfo,
} from "../../lib/sql";

describe("SQL helpers", () => {
  it("quotes identifiers with quotes inside", () => {
    expect(quoteIdent('we"ird name')).toBe('"we""ird name"');
  });

  it("counts UTF-8 bytes like TextEncoder", () => {
    for (const s of ["", "abc", "Zoë", "日本語", "🎫🎫", "a\u0000b", "mixed ü 日 🎫 end", "\u007f", "\u0080", "tab\tnew\nline"]) {
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

describe("splitter bait, re-encoded in JS", () => {
  const sqlite = (sql: string): string => {
    const r = spawnSync("sqlite3", [":memory:"], { input: sql, encoding: "utf8" });
    if (r.status !== 0) throw new Error(r.stderr);
    return r.stdout;
  };
  // Every kind of bait, once in a value beside other literal kinds; '' escapes and 4-byte emoji.
  const bait = ["a]b", "[x", "semi;colon", "$$ quoted $$", "back`tick", "back\\slash", "cr\r", "-- comment", "/* c */",
    "BEGIN TRANSACTION;", "Commit;", "rollBACK", "transaction", "it''s; 🤷 begin"];
  const plain = ["plain", "it''s fine", "Zoë 日本 🎫", "line\nfeed", "a-b-c / d * e"];
  const table: TableInfo = {
    name: "t", sql: "", withoutRowid: false, insertColumns: ["i", "r", "z", "n", "b", "nul", "v", "p"],
    insertTargets: [], keyColumns: [], rowidKey: null, byPosition: false, autoincrement: false,
  };
  const values = bait.flatMap((b, i) =>
    [`(${-i - 1}, 1.5e300, -0.0, NULL, X'00FF', CAST(X'6100' || X'3B' AS TEXT), ${sqlText(b)}, ${sqlText(plain[i % plain.length])})`]);
  function sqlText(s: string): string {
    return `'${s}'`.replace(/\r/g, "' || char(13) || '").replace(/\n/g, "' || char(10) || '");
  }
  const setup = `CREATE TABLE t(i, r, z, n, b, nul, v, p); INSERT INTO t VALUES ${values.join(",")};`;
  const tuples = sqlite(`${setup}\n.mode list\nSELECT ${valuesTuple(table, "utf8")} FROM t ORDER BY rowid;`)
    .split("\n").filter(Boolean).join("\n").split(/\n(?=\()/);

  it("writes every quoted text holding bait as hex, leaves every other literal as SQLite wrote it", () => {
    expect(tuples).toHaveLength(bait.length);
    for (const [i, tuple] of tuples.entries()) {
      const safe = safeTuple(tuple);
      const before = splitTuple(tuple);
      const after = splitTuple(safe);
      // Without the JS step the bait is there in plain text: this test fails if it is skipped.
      expect(before[6], bait[i]).toMatch(/^'/);
      expect(after[6], bait[i]).toMatch(/^CAST\(X'[0-9A-F]+' AS TEXT\)$/);
      expect(after.filter((_, c) => c !== 6)).toEqual(before.filter((_, c) => c !== 6));
      expect(after[5]).toBe("CAST(X'61003B' AS TEXT)"); // text with a NUL: hex from SQLite itself
      expect(after[2]).toBe("-0.0");
      // Outside hex nothing a splitter could misread is left.
      expect(safe.replace(/X'[0-9A-F]*'/g, "")).not.toMatch(/[\];$`\\[\r]|--|\/\*|begin|commit|rollback|transaction/i);
    }
  });

  it("gives back exactly the bytes SQLite holds, emoji and apostrophes included", () => {
    const restored = tuples.map(safeTuple).map((t) => `INSERT INTO u VALUES ${t};`).join("\n");
    const cells = "hex(i)||typeof(i), hex(r)||typeof(r), hex(z)||typeof(z), typeof(n), hex(b)||typeof(b), hex(nul)||typeof(nul), hex(v)||typeof(v), hex(p)||typeof(p)";
    const source = sqlite(`${setup}\nSELECT ${cells} FROM t ORDER BY rowid;`);
    const copy = sqlite(`CREATE TABLE u(i, r, z, n, b, nul, v, p);\n${restored}\nSELECT ${cells} FROM u ORDER BY rowid;`);
    expect(copy).toBe(source);
    expect(source).toContain("F09FA4B7"); // 🤷, 4 bytes
    // -0.0 kept its sign bit: SQLite reads "-0.0" back as negative zero.
    expect(sqlite(`CREATE TABLE u(i, r, z, n, b, nul, v, p);\n${restored}\nSELECT DISTINCT atan2(z, -1) < 0 FROM u;`).trim()).toBe("1");
  });

  it("returns a tuple without bait unchanged", () => {
    const t = "(1,'plain text, with commas','it''s',X'3B3B',CAST(X'2D2D' AS TEXT),-0.0,NULL)";
    expect(safeTuple(t)).toBe(t);
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


describe("SQLite's rowid rules", () => {
  const col = (name: string, type: string, pk = 0) => ({ name, type, pk, hidden: 0 });
  const table = (columns: ReturnType<typeof col>[], primaryKeyIndexed: boolean, withoutRowid = false) =>
    describeTable({ name: "t", sql: "CREATE TABLE t(…)", columns, withoutRowid, primaryKeyIndexed });
  it("keys by the rowid unless the primary key is its alias (no index of its own)", () => {
    expect(table([col("id", "INTEGER", 1), col("v", "")], false).rowidKey).toBeNull(); // INTEGER PRIMARY KEY, PRIMARY KEY(id DESC)
    expect(table([col("id", "INTEGER", 1), col("v", "")], true).rowidKey).toBe("rowid"); // INTEGER PRIMARY KEY DESC
    expect(table([col("id", "INT", 1), col("v", "")], true).rowidKey).toBe("rowid");
    expect(table([col("a", "INTEGER", 1), col("b", "INTEGER", 2)], true).rowidKey).toBe("rowid");
    expect(table([col("id", "INTEGER", 1), col("v", "")], true, true).keyColumns).toEqual(["id"]); // WITHOUT ROWID
  });
  it("pages a table whose rowid names are all columns by its primary key, or by position", () => {
    const names = [col("rowid", "TEXT"), col("_rowid_", ""), col("oid", "")];
    const keyed = table([...names, col("code", "TEXT", 1)], true, true);
    expect(keyed).toMatchObject({ rowidKey: null, keyColumns: ["code"], byPosition: false });
    const bare = table(names, false, true);
    expect(bare).toMatchObject({ rowidKey: null, keyColumns: [], byPosition: true });
    expect(rowQuery(bare).sql(["1000"], 500)).toContain('FROM (SELECT * FROM "t" LIMIT 500 OFFSET 1000)');
    // No key addresses one of its rows: nothing may try (its large rows are staged, not updated).
    expect(() => rowMatch(bare, [])).toThrow(/no key to address a row/);
  });
});

describe("FTS5 and wrangler's splitter", () => {
  it("tells the three kinds of FTS5 table apart and names their shadow tables", () => {
    expect(describeFts5("f", "CREATE VIRTUAL TABLE f USING fts5(a, b UNINDEXED, tokenize = 'porter unicode61')")).toMatchObject({
      kind: "regular",
      columns: ["a", "b"],
      options: { tokenize: "porter unicode61" },
    });
    expect(describeFts5("f", `CREATE VIRTUAL TABLE f USING fts5("x y", content="docs", content_rowid=id)`)).toMatchObject({
      kind: "external",
      columns: ["x y"],
      options: { content: "docs", content_rowid: "id" },
    });
    expect(describeFts5("f", "CREATE VIRTUAL TABLE f USING fts5(a, content='')")?.kind).toBe("contentless");
    expect(describeFts5("g", "CREATE VIRTUAL TABLE g USING rtree(id, a, b)")).toBeNull();
    const shadow = fts5ShadowNames([{ type: "table", name: "F", sql: "CREATE VIRTUAL TABLE F USING fts5(a)" }]);
    expect([...shadow].sort()).toEqual(["f_config", "f_content", "f_data", "f_docsize", "f_idx"]);
  });
  it("rebuilds contentless documents from their tokens, trigrams by overlap", () => {
    const t = describeFts5("f", "CREATE VIRTUAL TABLE f USING fts5(a, b, content='')")!;
    expect(contentlessText(t, [{ col: "b", offset: 1, term: "jam" }, { col: "b", offset: 0, term: "printer" }])).toEqual([null, "printer jam"]);
    const tri = describeFts5("f", "CREATE VIRTUAL TABLE f USING fts5(a, content='', tokenize='trigram')")!;
    const terms = ["dis", "isk", "sk ", "k f"].map((term, offset) => ({ col: "a", offset, term }));
    expect(contentlessText(tri, terms)).toEqual(["disk f"]);
  });
  it("counts the blocks wrangler's splitter leaves open (it closes only on upper-case END)", () => {
    expect(openSplitterBlocks("CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; END;")).toBe(0);
    expect(openSplitterBlocks("create trigger t after insert on a begin select 1; end;")).toBe(1);
    expect(openSplitterBlocks("CREATE VIEW v AS SELECT CASE WHEN x THEN 1 END) FROM a;")).toBe(1);
    expect(openSplitterBlocks("CREATE VIEW v AS SELECT 'begin ' || \"case \" FROM a; -- BEGIN \n")).toBe(0);
    const safe = splitterSafe("create view v as select case when x then 1 else 0 end as y from a");
    expect(openSplitterBlocks(safe)).toBe(0);
  });
});
