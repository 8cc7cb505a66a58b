/**
 * The storage sink's codec layer: change events, their JSON-lines form, csv and canal-json rows,
 * schema files and the path layout, all pure (no I/O) and compatible with TiCDC's storage sink.
 */
export {
  checkChangeEvent,
  changeEventProblem,
  columnValueProblem,
  DecodeError,
  describeChangeEvent,
  InvalidChangeEventError,
  MAX_UINT64,
  pathNameProblem,
  tableDefProblem,
  type ChangeEvent,
  type ColumnDef,
  type ColumnValue,
  type DdlEvent,
  type DecodedRow,
  type RowChange,
  type RowOp,
  type TableDef,
} from './changeEvent.ts';
export { DDL_TYPE_CODES, ddlTypeCode, ddlTypeName } from './ddlTypes.ts';
export { formatChangeEventLine, parseChangeEventLine } from './jsonLines.ts';
export { CSV_DEFAULTS, decodeCsvRows, encodeCsvRow, encodeCsvRows, type CsvDecodeOptions, type CsvOptions } from './csv.ts';
export { decodeCanalJsonRow, decodeCanalJsonRows, encodeCanalJsonRow, encodeCanalJsonRows, type CanalJsonOptions } from './canalJson.ts';
export {
  decodeSchemaFile,
  encodeSchemaFile,
  SCHEMA_FILE_VERSION,
  schemaChecksum,
  type EncodedSchemaFile,
  type SchemaFileContent,
} from './schemaFile.ts';
export {
  checkFileIndexWidth,
  commitTsToDate,
  dataFileName,
  dataFilePath,
  dataFolderPath,
  dateFolder,
  formatIndexFile,
  indexFilePath,
  LAYOUT_DEFAULTS,
  MAX_FILE_INDEX_WIDTH,
  metadataFile,
  MIN_FILE_INDEX_WIDTH,
  parseDataFileName,
  parseIndexFile,
  parseMetadataFile,
  parseSchemaFileName,
  parseSchemaFilePath,
  schemaFilePath,
  type DataFileLocation,
  type DataFolder,
  type DateSeparator,
  type ParsedDataFileName,
} from './layout.ts';
