import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { isBackupError } from "../../lib/errors";
import { splitStatements, StatementSplitter } from "../../lib/sql";

const SQL = [
  "PRAGMA defer_foreign_keys=TRUE;",
  "-- a comment; with a semicolon\nCREATE TABLE \"a;b\" (x TEXT, [y;z] INT, `w;` BLOB);",
  "INSERT INTO \"a;b\" VALUES('it''s; -- not a comment', -5, X'3b2f2a');",
  "/* block; comment */ INSERT INTO \"a;b\" VALUES('/* ; */', 1/2, NULL);",
  "CREATE TRIGGER t1 AFTER INSERT ON \"a;b\" BEGIN\n  UPDATE \"a;b\" SET x = 'end;' WHERE 0;\n  SELECT CASE WHEN 1 THEN 2 END;\nend;",
  "create temp trigger t2 after delete on \"a;b\" begin select 1; end;",
  "CREATE VIEW v AS SELECT CASE x WHEN 'a' THEN 'b' END AS c FROM \"a;b\";",
  "SELECT 'trigger'; ",
];

describe("statement splitter (sqlite3_complete's rules)", () => {
  it("splits where SQLite does, whole text and in any chunking", () => {
    const text = SQL.join("\n");
    const whole = splitStatements(text);
    expect(whole.map((s) => s.text)).toEqual(SQL.map((s) => s.replace(/^(-- [^\n]*\n|\/\* [^*]*\*\/ )/, "").trim()));
    expect(whole.map((s) => s.line)).toEqual([1, 3, 4, 5, 6, 10, 11, 12]);
    for (const size of [1, 2, 3, 7, 64]) {
      const s = new StatementSplitter();
      const got = [];
      for (let i = 0; i < text.length; i += size) got.push(...s.push(text.slice(i, i + size)));
      s.end();
      expect(got).toEqual(whole);
    }
  });

  it("agrees with sqlite3 on what the statements do", () => {
    const text = SQL.slice(0, 7).join("\n");
    const direct = execFileSync("sqlite3", [":memory:", "-cmd", ".bail on"], { input: `${text}\nSELECT count(*) FROM sqlite_master;\nSELECT count(*) FROM sqlite_temp_master;` }).toString();
    const oneByOne = execFileSync("sqlite3", [":memory:"], {
      input: `${splitStatements(text).map((s) => s.text).join("\n")}\nSELECT count(*) FROM sqlite_master;\nSELECT count(*) FROM sqlite_temp_master;`,
    }).toString();
    expect(oneByOne).toBe(direct);
    expect(direct.trim().split("\n").slice(-2)).toEqual(["3", "1"]);
  });

  it("refuses truncated SQL clearly", () => {
    for (const [text, message] of [
      ["SELECT 1; SELECT 2", /line 1 has no closing ';'/],
      ["SELECT 1;\nSELECT 'abc", /unterminated quoted text in the statement at line 2/],
      ["SELECT 1; /* open", /unterminated \/\* comment/],
      ["CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1;", /has no closing ';'/],
    ] as const) {
      let error: unknown;
      try {
        splitStatements(text);
      } catch (e) {
        error = e;
      }
      expect(isBackupError(error) && error.code === "INTEGRITY_ERROR").toBe(true);
      expect(String((error as Error).message)).toMatch(message);
    }
  });
});
