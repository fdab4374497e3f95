// Splits SQL text into statements on semicolons outside quotes and comments (enough to measure
// statement sizes of a dump; trigger bodies split into pieces, which only makes them smaller).
export function splitStatements(sql: string): string[] {
  const out: string[] = [];
  let start = 0;
  let quote: string | null = null;
  for (let i = 0; i < sql.length; i++) {
    const ch = sql[i];
    if (quote) {
      if (ch === quote) {
        if (sql[i + 1] === quote) i++;
        else quote = null;
      }
    } else if (ch === "'" || ch === '"' || ch === "`") quote = ch;
    else if (ch === "-" && sql[i + 1] === "-") {
      const nl = sql.indexOf("\n", i);
      i = nl === -1 ? sql.length : nl;
    } else if (ch === ";") {
      out.push(sql.slice(start, i + 1).trim());
      start = i + 1;
    }
  }
  const rest = sql.slice(start).trim();
  if (rest && !/^(--[^\n]*\n?\s*)*$/.test(rest)) out.push(rest);
  return out.filter((s) => s !== ";");
}
