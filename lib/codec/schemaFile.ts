/**
 * Schema files of TiCDC's storage sink (`{schema}/{table}/meta/schema_{tableVersion}_{checksum}.json`,
 * `{schema}/meta/...` for database-level DDL): their JSON, byte for byte as Go's
 * `json.MarshalIndent(v, "", "    ")` writes it, and the checksum in their name.
 *
 * Invariant guarded here: the checksum is exactly TiCDC's (pkg/cloudstorage/schema_file.go,
 * `marshalForChecksum` + `hash.PositionInertia`, which is CRC32-IEEE of one buffer): CRC32 of the
 * indented JSON of {Table, Schema, Version: 0, TableColumns sorted by ColumnName (UTF-8 byte order),
 * TableColumnsTotal}, so a file we write and a file TiCDC writes for the same table get the same
 * name, and a decoded file whose content does not match its name is refused.
 *
 * Layout (TiCDC's `SchemaFile` and `TableCol` field order): Table, Schema, Version (1), TableVersion,
 * Query, Type (TiDB action code), TableColumns (null when there are no columns), TableColumnsTotal.
 * A column: [ColumnId], ColumnName, ColumnType (+ " UNSIGNED"), [ColumnDefault], [ColumnPrecision],
 * [ColumnScale], [ColumnNullable "false"], [ColumnIsPk "true"], [ColumnElems] (bracketed: omitted when
 * empty). FORMATS.md lists ColumnElems before ColumnNullable; TiCDC's struct, followed here, puts it last.
 * Precision and scale are written as given; TiDB's default display widths are not inferred.
 */
import { crc32 } from 'node:zlib';
import { Buffer } from 'node:buffer';
import {
  checkChangeEvent,
  DecodeError,
  InvalidChangeEventError,
  MAX_UINT64,
  tableDefProblem,
  type ColumnDef,
  type DdlEvent,
  type TableDef,
} from './changeEvent.ts';
import { ddlTypeCode, ddlTypeName } from './ddlTypes.ts';
import { goJsonString, JsonNumber, JsonSyntaxError, jsonTypeOf, parseJson, type JsonValue } from './json.ts';
import { parseSchemaFileName, schemaFilePath } from './layout.ts';

/** The schema file format version TiCDC writes. */
export const SCHEMA_FILE_VERSION = 1;

/** A schema file as read back. */
export interface SchemaFileContent {
  schema: string;
  /** Absent for a database-level file (Table ""). */
  table?: string;
  /** The file format version (1). */
  version: number;
  tableVersion: bigint;
  query: string;
  /** TiDB's DDL action code (0 for a table first seen without DDL). */
  typeCode: number;
  /** The name of `typeCode` (see `DDL_TYPE_CODES`), when it is a known DDL type. */
  ddlType?: string;
  /** The table's columns, when the file has any. */
  tableDef?: TableDef;
  /** The checksum of the content, as in the file name. */
  checksum: number;
}

export interface EncodedSchemaFile {
  /** Where the file goes: `{schema}/{table}/meta/schema_{tableVersion}_{checksum}.json` or `{schema}/meta/...`. */
  path: string;
  text: string;
  checksum: number;
}

/** One `TableCol` as TiCDC stores it: every field as the string (or value) that is written. */
interface TableCol {
  id?: string;
  name: string;
  type: string;
  default?: string | number;
  precision?: string;
  scale?: string;
  nullable?: string;
  isPk?: string;
  elems?: string[];
}

function tableCol(column: ColumnDef): TableCol {
  return {
    name: column.name,
    type: column.unsigned ? `${column.type} UNSIGNED` : column.type,
    default: column.default,
    precision: column.precision === undefined ? undefined : String(column.precision),
    scale: column.scale === undefined ? undefined : String(column.scale),
    nullable: column.nullable === false ? 'false' : undefined,
    isPk: column.primaryKey ? 'true' : undefined,
    elems: column.elems,
  };
}

/** A number as Go's encoding/json writes a float64 (same digits as JS, except -0). */
function goJsonNumber(n: number): string {
  return Object.is(n, -0) ? '-0' : String(n);
}

/** Go's MarshalIndent of a TableCol at the nesting of TableColumns' elements. */
function tableColJson(col: TableCol): string {
  const fields: string[] = [];
  const add = (key: string, json: string) => fields.push(`            "${key}": ${json}`);
  // omitempty: strings when '', the default when nil, elems when empty
  if (col.id) add('ColumnId', goJsonString(col.id));
  add('ColumnName', goJsonString(col.name));
  add('ColumnType', goJsonString(col.type));
  if (col.default !== undefined) add('ColumnDefault', typeof col.default === 'string' ? goJsonString(col.default) : goJsonNumber(col.default));
  if (col.precision) add('ColumnPrecision', goJsonString(col.precision));
  if (col.scale) add('ColumnScale', goJsonString(col.scale));
  if (col.nullable) add('ColumnNullable', goJsonString(col.nullable));
  if (col.isPk) add('ColumnIsPk', goJsonString(col.isPk));
  if (col.elems !== undefined && col.elems.length > 0) {
    add('ColumnElems', `[\n${col.elems.map((m) => `                ${goJsonString(m)}`).join(',\n')}\n            ]`);
  }
  return `        {\n${fields.join(',\n')}\n        }`;
}

/** Go's MarshalIndent of a []TableCol: `null` for a nil slice, `[]` for an empty one. */
function tableColsJson(cols: TableCol[] | null): string {
  if (cols === null) return 'null';
  if (cols.length === 0) return '[]';
  return `[\n${cols.map(tableColJson).join(',\n')}\n    ]`;
}

function utf8Compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function checksumOf(table: string, schema: string, cols: TableCol[]): number {
  const sorted = [...cols].sort((a, b) => utf8Compare(a.name, b.name));
  const text =
    `{\n    "Table": ${goJsonString(table)},\n    "Schema": ${goJsonString(schema)},\n    "Version": 0,\n` +
    `    "TableColumns": ${tableColsJson(sorted)},\n    "TableColumnsTotal": ${cols.length}\n}`;
  return crc32(Buffer.from(text, 'utf8'));
}

/**
 * The checksum in a schema file's name: CRC32-IEEE of TiCDC's checksum JSON of the table (no
 * columns and an absent table for a database-level file).
 *
 * @example schemaChecksum({ schema: 'test', table: 'table1', columns }) // 4192708364
 */
export function schemaChecksum(def: { schema: string; table?: string; columns?: readonly ColumnDef[] }): number {
  return checksumOf(def.table ?? '', def.schema, (def.columns ?? []).map(tableCol));
}

function isDdlEvent(source: DdlEvent | TableDef): source is DdlEvent {
  return (source as DdlEvent).kind === 'ddl';
}

/**
 * The schema file of a DDL (its table after the DDL, or a database-level file when it has no
 * tableDef) or of a table first seen without DDL (Query "", Type 0, TableVersion = its version).
 * Throws `InvalidChangeEventError` for an invalid DDL or table definition.
 *
 * @example encodeSchemaFile(ddl).path // 'shop/orders/meta/schema_4350_0123456789.json'
 */
export function encodeSchemaFile(source: DdlEvent | TableDef): EncodedSchemaFile {
  let schema: string;
  let table: string;
  let tableVersion: bigint;
  let query = '';
  let typeCode = 0;
  let columns: ColumnDef[] | undefined;
  if (isDdlEvent(source)) {
    checkChangeEvent(source, 'schema file encoding');
    ({ query, commitTs: tableVersion } = source);
    typeCode = ddlTypeCode(source.ddlType) as number;
    schema = source.tableDef?.schema ?? source.schema;
    table = source.tableDef?.table ?? source.table ?? '';
    columns = source.tableDef?.columns;
  } else {
    const problem = tableDefProblem(source);
    if (problem !== undefined) throw new InvalidChangeEventError(source, 'schema file encoding', `table definition ${problem}`);
    ({ schema, table, version: tableVersion, columns } = source);
  }
  const cols = columns?.map(tableCol) ?? null;
  const checksum = checksumOf(table, schema, cols ?? []);
  const text =
    `{\n    "Table": ${goJsonString(table)},\n    "Schema": ${goJsonString(schema)},\n    "Version": ${SCHEMA_FILE_VERSION},\n` +
    `    "TableVersion": ${tableVersion},\n    "Query": ${goJsonString(query)},\n    "Type": ${typeCode},\n` +
    `    "TableColumns": ${tableColsJson(cols)},\n    "TableColumnsTotal": ${cols?.length ?? 0}\n}`;
  return { path: schemaFilePath(schema, table === '' ? undefined : table, tableVersion, checksum), text, checksum };
}

/**
 * Reads a schema file. `where` names it in errors; when its last path segment is a schema file name
 * (`schema_{tableVersion}_{checksum}.json`), the content's checksum and table version must match it.
 * Throws `DecodeError`.
 */
export function decodeSchemaFile(text: string, where: string): SchemaFileContent {
  const fail = (problem: string): never => {
    throw new DecodeError(where, problem);
  };
  let json: JsonValue;
  try {
    json = parseJson(text);
  } catch (error) {
    if (error instanceof JsonSyntaxError) return fail(`malformed JSON: ${error.message}`);
    throw error;
  }
  if (!(json instanceof Map)) return fail(`expected a JSON object, got ${jsonTypeOf(json)}`);
  const object = json;
  const string = (key: string): string => {
    const value = object.get(key);
    return typeof value === 'string' ? value : fail(`${key} must be a string, got ${jsonTypeOf(value)}`);
  };
  const integer = (key: string, max: bigint): bigint => {
    const value = object.get(key);
    if (value instanceof JsonNumber && /^[0-9]+$/.test(value.text) && BigInt(value.text) <= max) return BigInt(value.text);
    return fail(`${key} must be an integer in [0, ${max}], got ${value instanceof JsonNumber ? value.text : jsonTypeOf(value)}`);
  };
  const schema = string('Schema');
  const table = string('Table');
  const version = Number(integer('Version', 0xffffffffn));
  const tableVersion = integer('TableVersion', MAX_UINT64);
  const query = string('Query');
  const typeCode = Number(integer('Type', 255n));
  const total = Number(integer('TableColumnsTotal', BigInt(Number.MAX_SAFE_INTEGER)));
  const rawColumns = object.get('TableColumns');
  if (rawColumns !== null && !Array.isArray(rawColumns)) return fail(`TableColumns must be a list or null, got ${jsonTypeOf(rawColumns)}`);
  const cols = (rawColumns ?? []).map((raw, i) => readTableCol(raw, `TableColumns[${i}]`, fail));
  if (cols.length !== total) fail(`TableColumnsTotal is ${total} but TableColumns has ${cols.length}`);

  const checksum = checksumOf(table, schema, cols);
  const fileName = where.slice(where.lastIndexOf('/') + 1);
  if (fileName.startsWith('schema_')) {
    const named = parseSchemaFileName(fileName, where);
    if (named.checksum !== checksum) fail(`checksum mismatch: the name says ${named.checksum}, the content gives ${checksum}`);
    if (named.tableVersion !== tableVersion) fail(`table version mismatch: the name says ${named.tableVersion}, the content says ${tableVersion}`);
  }

  const content: SchemaFileContent = { schema, version, tableVersion, query, typeCode, checksum };
  if (table !== '') content.table = table;
  const ddlType = ddlTypeName(typeCode);
  if (ddlType !== undefined) content.ddlType = ddlType;
  if (cols.length > 0) {
    const tableDef: TableDef = { schema, table, version: tableVersion, columns: cols.map(columnDef) };
    const problem = tableDefProblem(tableDef);
    if (problem !== undefined) fail(`table definition ${problem}`);
    content.tableDef = tableDef;
  }
  return content;
}

function readTableCol(raw: JsonValue, at: string, fail: (problem: string) => never): TableCol {
  if (!(raw instanceof Map)) return fail(`${at} must be an object, got ${jsonTypeOf(raw)}`);
  const optionalString = (key: string): string | undefined => {
    const value = raw.get(key);
    if (value === undefined) return undefined;
    return typeof value === 'string' ? value : fail(`${at}.${key} must be a string, got ${jsonTypeOf(value)}`);
  };
  const name = optionalString('ColumnName');
  const type = optionalString('ColumnType');
  if (name === undefined || type === undefined) return fail(`${at} needs ColumnName and ColumnType`);
  const col: TableCol = {
    id: optionalString('ColumnId'),
    name,
    type,
    precision: optionalString('ColumnPrecision'),
    scale: optionalString('ColumnScale'),
    nullable: optionalString('ColumnNullable'),
    isPk: optionalString('ColumnIsPk'),
  };
  const def = raw.get('ColumnDefault');
  if (typeof def === 'string') col.default = def;
  else if (def instanceof JsonNumber) col.default = Number(def.text);
  else if (def !== undefined && def !== null) fail(`${at}.ColumnDefault must be a string or a number, got ${jsonTypeOf(def)}`);
  const elems = raw.get('ColumnElems');
  if (Array.isArray(elems) && elems.every((m) => typeof m === 'string')) col.elems = elems as string[];
  else if (elems !== undefined && elems !== null) fail(`${at}.ColumnElems must be a list of strings`);
  for (const [key, value] of [['ColumnPrecision', col.precision], ['ColumnScale', col.scale]] as const) {
    if (value !== undefined && value !== '' && !/^[0-9]+$/.test(value)) fail(`${at}.${key} must be decimal digits, got ${JSON.stringify(value)}`);
  }
  return col;
}

function columnDef(col: TableCol): ColumnDef {
  const unsigned = col.type.endsWith(' UNSIGNED');
  const column: ColumnDef = { name: col.name, type: unsigned ? col.type.slice(0, -' UNSIGNED'.length) : col.type };
  if (unsigned) column.unsigned = true;
  if (col.nullable === 'false') column.nullable = false;
  if (col.isPk === 'true') column.primaryKey = true;
  if (col.default !== undefined) column.default = col.default;
  if (col.precision) column.precision = Number(col.precision);
  if (col.scale) column.scale = Number(col.scale);
  if (col.elems !== undefined && col.elems.length > 0) column.elems = col.elems;
  return column;
}
