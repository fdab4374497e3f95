// The SQL toolkit shared by the dump (lib/backup) and the restore tooling (lib/restore): quoting
// and exact literals, table descriptions, and the INSERT batcher. Knows SQLite, nothing of R2/D1.
export { quoteIdent, quoteText, splitLiteral, utf8Length, type LiteralChunks } from "./literals";
export {
  colAlias,
  describeTable,
  freeRowidName,
  isInternalTable,
  keyAlias,
  keyExprs,
  keyLiterals,
  orderByForeignKeys,
  rowMatch,
  rowQuery,
  TUPLE_ALIAS,
  valuesTuple,
  type ColumnRow,
  type KeyBy,
  type TableInfo,
  type TableSource,
} from "./table";
export { contentlessText, describeFts5, fts5ShadowNames, parseVirtualTable, type Fts5Instance, type Fts5Kind, type Fts5Table } from "./fts5";
export { openSplitterBlocks, splitterSafe } from "./splitter";
export {
  D1_MAX_STATEMENT_BYTES,
  plainAppends,
  sentinelGuarded,
  splitTuple,
  StatementBatcher,
  type BatcherOptions,
  type SplitStrategy,
  type SplitValue,
} from "./batcher";
