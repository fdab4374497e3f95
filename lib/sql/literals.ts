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
 * How text is written. "utf8": quoted unless it holds a NUL (see needsHex), then made safe from
 * splitters in JS (safeTuple), which is exact only if the text is valid UTF-8. "ascii": text a
 * splitter could misread, and every byte outside printable ASCII, tab and newline, goes out as hex
 * in SQLite, so the literal is pure ASCII and exact whatever the bytes (JS decodes text and
 * replaces invalid UTF-8 with U+FFFD).
 */
export type LiteralMode = "utf8" | "ascii";

/**
 * Text a SQL splitter or trimmer could misread even inside quotes (hasBait): sqlite3 and wrangler drop a CR
 * at a line end; wrangler's trimmer deletes the first "BEGIN TRANSACTION;" and "COMMIT;" anywhere
 * in the file, strings included (and refuses a second); splitters that do not track quotes misread
 * ';', comment markers, '$' quoting, brackets, backticks, backslashes. Such text goes out as
 * CAST(X'..' AS TEXT): hex holds none of these. No flag u, so /i folds ASCII letters only: every
 * spelling of the keywords (matching more would only write more hex, which is exact too).
 */
const BAIT_CHARS = /[\];$`\\[\r]|--|\/\*/;
const BAIT_WORDS = /begin|commit|rollback|transaction/i;

/** Two tests, not one alternation of all: about twice as fast over a row (measured on the seeded portal). */
function hasBait(text: string): boolean {
  return BAIT_CHARS.test(text) || BAIT_WORDS.test(text);
}

/**
 * The SQL-side tests for text that goes out as hex. quote() stops at a NUL, so NUL is always
 * found here. "utf8" leaves the splitter bait to JS (safeTuple: one regex over the row instead of
 * eight scans of every cell in SQLite); "ascii" finds it here, and every byte outside printable ASCII.
 */
function needsHex(c: string, mode: LiteralMode): string {
  const tests = [`instr(CAST(${c} AS BLOB),X'00')>0`];
  if (mode === "ascii") {
    tests.push(
      // One GLOB class (a ']' first is literal): ] ; $ ` \ [ and CR.
      `${c} GLOB '*[];$\`\\[' || char(13) || ']*'`,
      `instr(${c},'--')>0`,
      `instr(${c},'/*')>0`,
      // LIKE ignores ASCII case: every spelling of the transaction keywords.
      ...["begin", "commit", "rollback", "transaction"].map((k) => `${c} LIKE '%${k}%'`),
      `${c} GLOB '*[^' || char(9,10) || ' -~]*'`,
    );
  }
  return tests.join(" OR ");
}

/**
 * SQL that turns a column into the literal that recreates its value exactly.
 * quote() is exact for integers (all 64 bits, because it is computed inside SQLite and never
 * passes through a JS number), for reals (SQLite prints a round-trip form) and for blobs. It
 * prints -0.0 as 0.0, so a negative zero (atan2 tells its sign) is written -0.0, which SQLite
 * parses back to the same bits. Text that is not safe quoted is hex (see needsHex); a tuple of
 * "utf8" literals must go through safeTuple before it is written.
 */
export function literalExpr(column: string, mode: LiteralMode = "utf8"): string {
  const c = quoteIdent(column);
  // typeof once per cell; each storage class runs only its own test.
  return (
    `CASE typeof(${c}) ` +
    `WHEN 'text' THEN CASE WHEN ${needsHex(c, mode)} THEN 'CAST(X''' || hex(${c}) || ''' AS TEXT)' ELSE quote(${c}) END ` +
    `WHEN 'real' THEN CASE WHEN ${c}=0 AND atan2(${c},-1)<0 THEN '-0.0' ELSE quote(${c}) END ` +
    `ELSE quote(${c}) END`
  );
}

/** A quoted literal ('' escapes included). X'..' hex matches too, and never holds bait. */
const QUOTED = /'[^']*(?:''[^']*)*'/g;
const HEX_BYTE = Array.from({ length: 256 }, (_, b) => b.toString(16).toUpperCase().padStart(2, "0"));
const encoder = new TextEncoder();

/** Text as CAST(X'..' AS TEXT), its UTF-8 in upper-case hex as SQLite's hex() writes it. */
export function hexTextLiteral(text: string): string {
  const bytes = encoder.encode(text);
  let hex = "";
  for (let i = 0; i < bytes.length; i++) hex += HEX_BYTE[bytes[i]];
  return `CAST(X'${hex}' AS TEXT)`;
}

/**
 * A VALUES tuple of "utf8" literals with every quoted text that holds splitter bait written as hex.
 * Exact: a utf8-mode tuple reaches JS as valid UTF-8 (a row with U+FFFD must be read again in
 * "ascii" mode first), so encoding the unquoted text gives back its bytes. Outside quoted text a
 * tuple holds only numbers, NULL, hex and CAST(... AS TEXT), none of them bait, and its quotes pair
 * up as SQLite's tokens do, so QUOTED sees exactly the text literals (and hex, left alone).
 */
export function safeTuple(tuple: string): string {
  if (!hasBait(tuple)) return tuple;
  return tuple.replace(QUOTED, (lit) => (hasBait(lit) ? hexTextLiteral(lit.slice(1, -1).replace(/''/g, "'")) : lit));
}


const NON_ASCII = /[^\0-\x7f]/;

/** UTF-8 byte length of a JS string, without allocating. */
export function utf8Length(s: string): number {
  // Most rows are ASCII: one native scan instead of a JS loop (encodeInto is slower in workerd).
  if (!NON_ASCII.test(s)) return s.length;
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

/** A value's storage class once staged: the CAST that gives the assembled bytes their type back. */
export type CellType = "blob" | "text";

/**
 * Splits a literal as produced by literalExpr into standalone literals of at most `pieceBytes`
 * whose concatenation (SQLite's ||, which joins the bytes) is the value. Null for numbers and
 * NULL, which are never long.
 */
export function literalPieces(literal: string, pieceBytes: number): { type: CellType; pieces: string[] } | null {
  const hexBlob = /^X'([0-9A-F]*)'$/.exec(literal);
  if (hexBlob) return { type: "blob", pieces: splitHex(hexBlob[1], pieceBytes - 3).map((p) => `X'${p}'`) };
  const hexText = /^CAST\(X'([0-9A-F]*)' AS TEXT\)$/.exec(literal);
  if (hexText) return { type: "text", pieces: splitHex(hexText[1], pieceBytes - 16).map((p) => `CAST(X'${p}' AS TEXT)`) };
  if (literal.length >= 2 && literal.startsWith("'") && literal.endsWith("'")) {
    const text = literal.slice(1, -1).replace(/''/g, "'");
    return { type: "text", pieces: splitText(text, pieceBytes - 2).map(quoteText) };
  }
  return null;
}

/** Hex digits in pieces of at most `chars` (even, so no byte is cut). */
export function splitHex(hex: string, chars: number): string[] {
  const step = Math.max(2, Math.floor(chars / 2) * 2);
  const parts: string[] = [];
  for (let i = 0; i < hex.length; i += step) parts.push(hex.slice(i, i + step));
  return parts.length > 0 ? parts : [""];
}

function splitText(text: string, maxBytes: number): string[] {
  // Quoting can double every apostrophe, so budget for the worst case.
  const budget = Math.max(4, Math.floor(maxBytes / 2));
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
    }
    bytes += b;
    i += units;
  }
  parts.push(text.slice(start));
  return parts;
}
