// What `wrangler d1 execute --local --file` sees in a statement. Its splitter (wrangler
// src/d1/splitter.ts) does not split on `;` inside BEGIN/CASE blocks, but it recognises a block's
// end only as upper-case ` END` followed by `;` or a space: a lower-case `end`, or `END)`, leaves
// the block open and every later statement of the file is glued into one huge statement.

/** Blocks the splitter still counts as open after reading `sql` (quotes and comments as it reads them). */
export function openSplitterBlocks(sql: string): number {
  let depth = 0;
  let str = "";
  for (let i = 0; i < sql.length; i++) {
    const ch = sql[i];
    if (depth > 0 && /\sEND[;\s]$/.test(str.slice(-5) + ch)) depth--;
    if (ch === "'" || ch === '"' || ch === "`") {
      const end = sql.indexOf(ch, i + 1);
      const stop = end === -1 ? sql.length : end + 1;
      str += sql.slice(i, stop);
      i = stop - 1;
    } else if (ch === "-" && sql[i + 1] === "-") {
      const end = sql.indexOf("\n", i + 2);
      i = end === -1 ? sql.length : end;
      str += "\n";
    } else if (ch === "/" && sql[i + 1] === "*") {
      const end = sql.indexOf("*/", i + 2);
      i = end === -1 ? sql.length : end + 1;
    } else str += ch;
    if (/\s(BEGIN|CASE)\s$/i.test(str.slice(-7))) depth++;
  }
  return depth;
}

/**
 * A schema statement followed, when needed, by a no-op whose upper-case ` END ` closes the blocks
 * the splitter left open (its `(CASE` opens none: the splitter wants a space before CASE), so what
 * follows is split normally. SQLite stores the statement's own text unchanged.
 */
export function splitterSafe(statement: string): string {
  const open = openSplitterBlocks(`${statement};`);
  if (open === 0) return `${statement};\n`;
  const closers = Array.from({ length: open }, () => "(CASE WHEN 0 THEN 0 END )").join(" AND ");
  return `${statement};\n-- d1-backup: closes ${open} block(s) wrangler's splitter saw open\nSELECT 1 WHERE 0 AND ${closers};\n`;
}
