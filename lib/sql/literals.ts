// Quoting and literals: the text that SQLite reads back as exactly the value it wrote.

/** Quotes an identifier so keywords, spaces and quotes in names survive (`a "b"` -> `"a ""b"""`). */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Quotes a string literal. */
export function quoteText(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * SQL that turns a column into the literal that recreates its value exactly.
 * quote() is exact for integers (all 64 bits, because it is computed inside SQLite and never
 * passes through a JS number), for reals (SQLite prints a round-trip form) and for blobs.
 * It stops text at the first NUL, so text containing NUL is written as CAST(X'..' AS TEXT); so is
 * text containing a carriage return, because both sqlite3 and wrangler drop a CR at a line end
 * while reading the file.
 */
export function literalExpr(column: string): string {
  const c = quoteIdent(column);
  return (
    `CASE WHEN typeof(${c})='text' AND (instr(CAST(${c} AS BLOB),X'00')>0 OR instr(${c},char(13))>0) ` +
    `THEN 'CAST(X''' || hex(${c}) || ''' AS TEXT)' ELSE quote(${c}) END`
  );
}

/** UTF-8 byte length of a JS string, without allocating. */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 2; // a surrogate pair is 2 UTF-16 units and 4 UTF-8 bytes
      i++;
    } else n += 2;
  }
  return n;
}

/** One literal as produced by literalExpr, split into pieces that concatenate back to the value. */
export interface LiteralChunks {
  /** Literal for the INSERT (the first piece). */
  first: string;
  /** SQL expressions `col || piece` for the following UPDATEs, given the quoted column. */
  appends: ((col: string) => string)[];
}

/**
 * Splits a long literal into a first piece of at most `firstBytes` and further pieces of at most
 * `restBytes`, so that no statement exceeds D1's statement-size limit. Returns null when the
 * literal cannot be split (numbers, NULL).
 */
export function splitLiteral(literal: string, firstBytes: number, restBytes: number): LiteralChunks | null {
  const hexBlob = /^X'([0-9A-F]*)'$/.exec(literal);
  if (hexBlob) {
    // `||` on blobs yields text with the same bytes; CAST back to BLOB restores the type.
    const parts = splitHex(hexBlob[1], firstBytes, restBytes);
    return {
      first: `X'${parts[0]}'`,
      appends: parts.slice(1).map((p) => (col: string) => `CAST(${col} || X'${p}' AS BLOB)`),
    };
  }
  const hexText = /^CAST\(X'([0-9A-F]*)' AS TEXT\)$/.exec(literal);
  if (hexText) {
    const parts = splitHex(hexText[1], firstBytes, restBytes);
    return {
      first: `CAST(X'${parts[0]}' AS TEXT)`,
      appends: parts.slice(1).map((p) => (col: string) => `${col} || CAST(X'${p}' AS TEXT)`),
    };
  }
  if (literal.length >= 2 && literal.startsWith("'") && literal.endsWith("'")) {
    const text = literal.slice(1, -1).replace(/''/g, "'");
    const parts = splitText(text, firstBytes, restBytes);
    return {
      first: quoteText(parts[0]),
      appends: parts.slice(1).map((p) => (col: string) => `${col} || ${quoteText(p)}`),
    };
  }
  return null;
}

function splitHex(hex: string, firstBytes: number, restBytes: number): string[] {
  const even = (n: number) => Math.max(2, Math.floor(n / 2) * 2);
  const parts: string[] = [hex.slice(0, even(firstBytes))];
  const step = even(restBytes);
  for (let i = parts[0].length; i < hex.length; i += step) parts.push(hex.slice(i, i + step));
  return parts;
}

function splitText(text: string, firstBytes: number, restBytes: number): string[] {
  // Quoting can double every apostrophe, so budget for the worst case.
  let budget = Math.max(4, Math.floor(firstBytes / 2));
  const parts: string[] = [];
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < text.length; ) {
    const code = text.codePointAt(i)!;
    const units = code > 0xffff ? 2 : 1;
    const b = code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
    if (bytes + b > budget && i > start) {
      parts.push(text.slice(start, i));
      start = i;
      bytes = 0;
      budget = Math.max(4, Math.floor(restBytes / 2));
    }
    bytes += b;
    i += units;
  }
  parts.push(text.slice(start));
  return parts;
}
