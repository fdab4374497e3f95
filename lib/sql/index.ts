// The SQL toolkit shared by the dump (lib/backup) and the restore tooling (lib/restore): quoting
// and exact literals, table descriptions, and the INSERT batcher. Knows SQLite, nothing of R2/D1.
export { literalExpr, literalPieces, quoteIdent, quoteText, safeTuple, utf8Length, type CellType, type LiteralMode } from "./literals";
export {
  cellSliceQuery,
  colAlias,
  describeTable,
  freeRowidName,
  isInternalTable,
  keyAlias,
  keyExprs,
  keyLiterals,
  LARGE_ALIAS,
  orderByForeignKeys,
  parseLargeCells,
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
  isStagingTable,
  splitTuple,
  stagingTableName,
  StatementBatcher,
  type BatcherOptions,
  type StageCell,
} from "./batcher";
export { splitStatements, StatementSplitter, type SqlStatement } from "./statements";
export { DumpSqlCheck, type DumpExpectation } from "./allowlist";
