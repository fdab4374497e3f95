// The SQL toolkit shared by the dump (lib/backup) and the restore tooling (lib/restore): quoting
// and exact literals, table descriptions, and the INSERT batcher. Knows SQLite, nothing of R2/D1.
export { literalExpr, literalPieces, quoteIdent, quoteText, splitHex, utf8Length, type CellType, type LiteralMode } from "./literals";
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
  largeCellBytes,
  largeCells,
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
export {
  D1_MAX_STATEMENT_BYTES,
  isStagingTable,
  splitTuple,
  STAGING_PREFIX,
  stagingTableName,
  StagedRow,
  StatementBatcher,
  type BatcherOptions,
  type StageCell,
} from "./batcher";
