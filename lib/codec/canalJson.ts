/**
 * canal-json rows as TiCDC's storage sink writes them (protocol=canal-json), one JSON object per row
 * followed by the terminator (TiCDC's sink `terminator`, default CRLF), and their decoding for the
 * consumer.
 *
 * Invariant guarded here: `decodeCanalJsonRows(encodeCanalJsonRows(rows))` gives every row back
 * (op, names, commit ts with the TiDB extension, typed values, old values), and the bytes of a row are
 * a pure function of the row, its table and the options: no clock is read.
 *
 * Layout, after TiCDC's pkg/sink/codec/canal/canal_json_encoder.go (`newJSONMessageForDML`), keys in
 * this order: `id` (0), `database`, `table`, `pkNames` (primary-key columns in table order, null when
 * none), `isDdl` (false), `type` (INSERT/UPDATE/DELETE), `es` (commit ts >> 18: the commit's physical
 * ms), `ts` (build time ms), `sql` (""), `sqlType` (java.sql.Types codes), `mysqlType`, `old` (an
 * update's old values, else null), `data` (the row: a delete's deleted values), then `_tidb:
 * {"commitTs":N}` only with `enableTidbExtension` (TiCDC's `enable-tidb-extension`, default false in
 * TiCDC: pkg/sink/codec/common/config.go; true here unless told otherwise, since the commit ts is what
 * lets a consumer skip rows it applied). Without the extension a row has no commit ts at all; it
 * decodes with `commitTs` undefined, and a file must then be read in its own order. A file mixing
 * rows with and without `_tidb` is refused (one sink writes one or the other).
 * `old` holds every column of the old image, or only the changed ones (TiCDC's
 * `only-output-updated-columns`, fillUpdateColumns in canal_json_encoder.go): the decoder takes the
 * missing ones from `data`, as TiCDC's canal_json_decoder.go does.
 * Values are strings or null: integers in decimal; FLOAT/DOUBLE as Go's `FormatFloat(x, 'f', -1)`
 * (never an exponent); binary columns as one character per byte (ISO-8859-1); ENUM as its 1-based
 * index and SET as its bit mask (both need the column's `elems`); everything else as its text.
 * Strings are escaped as easyjson does (`<`, `>`, `&`, U+2028, U+2029 and controls as \u00xx).
 * Choices where TiCDC is not deterministic: `mysqlType` keys follow table order (TiCDC iterates a Go
 * map), and `ts` defaults to `es` (TiCDC uses the wall clock; consumers ignore it).
 * Terminator: TiCDC's `[sink] terminator` ends every canal-json row too (pingcap/ticdc
 * pkg/sink/codec/canal/canal_json_txn_encoder.go writes it after each object; its integration tests
 * canal_json_storage_* set `terminator = "\n"`). TiCDC takes any string; sluice takes one or more
 * control characters (U+0000..U+001F: "\r\n", "\n", "\r", "\t"...), which an encoded object
 * never holds raw (JSON escapes them in strings, and nothing is written between tokens), so a
 * terminator can never be mistaken for part of a row (TiCDC's own reader, canal_json_txn_decoder.go,
 * cuts at the first of the terminator's characters it finds, so it would cut a row holding one). The
 * decoder therefore needs no setting: rows are the runs of other characters between runs of control
 * characters, and files written with any such terminator (CRLF, LF, ...) read alike.
 */
import { checkKnownKeys, checkNumber, InvalidOptionError } from '../core/errors.ts';
import {
  DecodeError,
  InvalidChangeEventError,
  MAX_UINT64,
  setOwn,
  type ColumnDef,
  type ColumnValue,
  type DecodedRow,
  type RowChange,
  type RowOp,
  type TableDef,
} from './changeEvent.ts';
import {
  binaryValue,
  columnClass,
  columnMismatch,
  ColumnValueError,
  decimalValue,
  floatValue,
  formatGoFloatFixed,
  fromLatin1,
  integerValue,
  parseScalar,
  textValue,
  toLatin1,
} from './columnValue.ts';
import { easyJsonString, JsonNumber, JsonSyntaxError, jsonTypeOf, parseJson, type JsonObject, type JsonValue } from './json.ts';

export interface CanalJsonOptions {
  /** The `ts` field, ms since the epoch. Default: the row's `es` (its commit's physical time). */
  buildTimeMs?: number;
  /**
   * Write `_tidb: {"commitTs": N}` after `data` (TiCDC's `enable-tidb-extension`). Default true here
   * (TiCDC's default is false); false gives TiCDC's default bytes, whose rows carry no commit ts.
   */
  enableTidbExtension?: boolean;
  /**
   * Ends each row in a file (TiCDC's sink `terminator`, which applies to canal-json as to csv). One
   * or more control characters, U+0000..U+001F (see the module header). Default '\r\n', TiCDC's.
   */
  terminator?: string;
}

/** The file-level canal-json settings: checked, defaults filled in. */
export interface CanalJsonDialect {
  readonly enableTidbExtension: boolean;
  readonly terminator: string;
}

/** sluice's canal-json defaults: TiCDC's terminator (CRLF), and the TiDB extension on (TiCDC: off). */
export const CANAL_JSON_DEFAULTS: CanalJsonDialect = Object.freeze({ enableTidbExtension: true, terminator: '\r\n' });

/** What a terminator may be made of: the characters an encoded row never holds raw. */
const TERMINATOR = /^[\u0000-\u001f]+$/;
/** What separates rows in a file, whatever the terminator was. */
const ROW_SEPARATOR = /[\u0000-\u001f]+/;

/** The settings `checkCanalJsonOptions` takes: any other key is refused. */
const DIALECT_NAMES: readonly string[] = Object.keys(CANAL_JSON_DEFAULTS);

/**
 * The file-level canal-json settings (`enableTidbExtension`, `terminator`) checked, `defaults`
 * filled in. Throws `InvalidOptionError` naming the option as `canalJson.<name>` and what it
 * accepts; any other key (a misspelt setting, or `buildTimeMs`, which the sink takes on its own) is
 * refused with the settings there are, never silently left at its default.
 *
 * @example checkCanalJsonOptions('storageSink', { terminator: '\n' }) // { enableTidbExtension: true, terminator: '\n' }
 */
export function checkCanalJsonOptions(owner: string, options: unknown, defaults: CanalJsonDialect = CANAL_JSON_DEFAULTS): CanalJsonDialect {
  if (options === undefined) return defaults;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidOptionError(owner, 'canalJson', options, 'an object { enableTidbExtension?: boolean, terminator?: string }');
  }
  checkKnownKeys(owner, 'canalJson', options, DIALECT_NAMES);
  const given = options as CanalJsonOptions;
  const enableTidbExtension = given.enableTidbExtension ?? defaults.enableTidbExtension;
  if (typeof enableTidbExtension !== 'boolean') throw new InvalidOptionError(owner, 'canalJson.enableTidbExtension', enableTidbExtension, 'a boolean');
  const terminator = given.terminator ?? defaults.terminator;
  if (typeof terminator !== 'string' || !TERMINATOR.test(terminator)) {
    throw new InvalidOptionError(
      owner,
      'canalJson.terminator',
      terminator,
      `one or more control characters such as "\\r\\n" (TiCDC's default) or "\\n" (characters U+0000..U+001F, which a canal-json row never holds raw, so a reader can tell rows apart)`,
    );
  }
  return Object.freeze({ enableTidbExtension, terminator });
}

const TYPE_NAMES: Readonly<Record<RowOp, string>> = { insert: 'INSERT', update: 'UPDATE', delete: 'DELETE' };

// java.sql.Types codes, as TiCDC's mysqlType2JavaType maps MySQL types.
const JAVA_BIT = -7;
const JAVA_TINYINT = -6;
const JAVA_SMALLINT = 5;
const JAVA_INTEGER = 4;
const JAVA_BIGINT = -5;
const JAVA_REAL = 7;
const JAVA_DOUBLE = 8;
const JAVA_DECIMAL = 3;
const JAVA_CHAR = 1;
const JAVA_VARCHAR = 12;
const JAVA_DATE = 91;
const JAVA_TIME = 92;
const JAVA_TIMESTAMP = 93;
const JAVA_BLOB = 2004;
const JAVA_CLOB = 2005;

const JAVA_TYPES: ReadonlyMap<string, number> = new Map([
  ['BIT', JAVA_BIT],
  ['TINYINT', JAVA_TINYINT],
  ['BOOL', JAVA_TINYINT],
  ['BOOLEAN', JAVA_TINYINT],
  ['SMALLINT', JAVA_SMALLINT],
  ['MEDIUMINT', JAVA_INTEGER],
  ['INT', JAVA_INTEGER],
  ['INTEGER', JAVA_INTEGER],
  ['BIGINT', JAVA_BIGINT],
  ['FLOAT', JAVA_REAL],
  ['DOUBLE', JAVA_DOUBLE],
  ['DOUBLE PRECISION', JAVA_DOUBLE],
  ['REAL', JAVA_DOUBLE],
  ['DECIMAL', JAVA_DECIMAL],
  ['NUMERIC', JAVA_DECIMAL],
  ['CHAR', JAVA_CHAR],
  ['VARCHAR', JAVA_VARCHAR],
  ['BINARY', JAVA_BLOB],
  ['VARBINARY', JAVA_BLOB],
  ['TINYBLOB', JAVA_BLOB],
  ['BLOB', JAVA_BLOB],
  ['MEDIUMBLOB', JAVA_BLOB],
  ['LONGBLOB', JAVA_BLOB],
  ['TINYTEXT', JAVA_CLOB],
  ['TEXT', JAVA_CLOB],
  ['MEDIUMTEXT', JAVA_CLOB],
  ['LONGTEXT', JAVA_CLOB],
  ['ENUM', JAVA_INTEGER],
  ['SET', JAVA_BIT],
  ['DATE', JAVA_DATE],
  ['DATETIME', JAVA_TIMESTAMP],
  ['TIMESTAMP', JAVA_TIMESTAMP],
  ['TIME', JAVA_TIME],
  ['JSON', JAVA_VARCHAR],
  ['YEAR', JAVA_VARCHAR],
]);

// An unsigned value past the signed range is announced as the next wider java type, as TiCDC does.
const UNSIGNED_WIDENING: ReadonlyMap<string, [limit: bigint, javaType: number]> = new Map([
  ['TINYINT', [127n, JAVA_SMALLINT]],
  ['SMALLINT', [32767n, JAVA_INTEGER]],
  ['INT', [2147483647n, JAVA_BIGINT]],
  ['INTEGER', [2147483647n, JAVA_BIGINT]],
  ['BIGINT', [9223372036854775807n, JAVA_DECIMAL]],
]);

/** TiCDC's `mysqlType` entry: the lower-case type, ' unsigned' except for BIT and YEAR. */
function mysqlTypeOf(column: ColumnDef): string {
  const type = column.type.toLowerCase();
  return column.unsigned && type !== 'bit' && type !== 'year' ? `${type} unsigned` : type;
}

/**
 * One row as one canal-json object, without the line break. Throws `InvalidChangeEventError` when
 * the row does not match `table` (names, columns, value types, an ENUM/SET without elems).
 *
 * @example encodeCanalJsonRow(row, table) // '{"id":0,"database":"shop","table":"orders",...,"_tidb":{"commitTs":4356}}'
 */
export function encodeCanalJsonRow(row: RowChange, table: TableDef, options: CanalJsonOptions = {}): string {
  if (row.schema !== table.schema || row.table !== table.table) {
    throw new InvalidChangeEventError(row, 'canal-json encoding', `row is for ${row.schema}.${row.table} but the table definition is ${table.schema}.${table.table}`);
  }
  const es = row.commitTs >> 18n;
  const ts = options.buildTimeMs === undefined ? es : checkNumber('encodeCanalJsonRow', 'buildTimeMs', options.buildTimeMs, { min: 0, integer: true });
  const data = encodeValues(row, table, row.columns);
  const pkNames = table.columns.filter((c) => c.primaryKey).map((c) => easyJsonString(c.name));
  const sqlType = table.columns.map((c, i) => `${easyJsonString(c.name)}:${data.javaTypes[i]}`);
  const mysqlType = table.columns.map((c) => `${easyJsonString(c.name)}:${easyJsonString(mysqlTypeOf(c))}`);
  const old = row.op === 'update' && row.oldColumns !== undefined ? `[${encodeValues(row, table, row.oldColumns).object}]` : 'null';
  const tidb = options.enableTidbExtension === false ? '' : `,"_tidb":{"commitTs":${row.commitTs}}`;
  return (
    `{"id":0,"database":${easyJsonString(table.schema)},"table":${easyJsonString(table.table)}` +
    `,"pkNames":${pkNames.length === 0 ? 'null' : `[${pkNames.join(',')}]`}` +
    `,"isDdl":false,"type":"${TYPE_NAMES[row.op]}","es":${es},"ts":${ts},"sql":""` +
    `,"sqlType":{${sqlType.join(',')}},"mysqlType":{${mysqlType.join(',')}}` +
    `,"old":${old},"data":[${data.object}]${tidb}}`
  );
}

/**
 * Many rows of one table, each object followed by the terminator (default CRLF). Throws
 * `InvalidOptionError` for a terminator that is not control characters.
 *
 * @example encodeCanalJsonRows(rows, table, { terminator: '\n' }) // '{"id":0,...}\n{"id":0,...}\n'
 */
export function encodeCanalJsonRows(rows: Iterable<RowChange>, table: TableDef, options: CanalJsonOptions = {}): string {
  const { terminator } = checkCanalJsonOptions('encodeCanalJsonRows', { terminator: options.terminator });
  let text = '';
  for (const row of rows) text += encodeCanalJsonRow(row, table, options) + terminator;
  return text;
}

function encodeValues(row: RowChange, table: TableDef, columns: Record<string, ColumnValue>): { object: string; javaTypes: number[] } {
  const mismatch = columnMismatch(table, columns);
  if (mismatch !== undefined) throw new InvalidChangeEventError(row, 'canal-json encoding', mismatch);
  const entries: string[] = [];
  const javaTypes: number[] = [];
  for (const column of table.columns) {
    try {
      const [text, javaType] = encodeValue(column, columns[column.name] as ColumnValue);
      entries.push(`${easyJsonString(column.name)}:${text === null ? 'null' : easyJsonString(text)}`);
      javaTypes.push(javaType);
    } catch (error) {
      if (error instanceof ColumnValueError) {
        throw new InvalidChangeEventError(row, `canal-json column ${JSON.stringify(column.name)}`, error.message);
      }
      throw error;
    }
  }
  return { object: `{${entries.join(',')}}`, javaTypes };
}

function encodeValue(column: ColumnDef, value: ColumnValue): [text: string | null, javaType: number] {
  const javaType = JAVA_TYPES.get(column.type) ?? JAVA_VARCHAR;
  if (value === null) return [null, javaType];
  switch (columnClass(column.type)) {
    case 'int':
    case 'bigint':
    case 'bit': {
      const n = integerValue(column, value);
      const widening = column.unsigned ? UNSIGNED_WIDENING.get(column.type) : undefined;
      return [String(n), widening !== undefined && n > widening[0] ? widening[1] : javaType];
    }
    case 'float':
      return [formatGoFloatFixed(floatValue(column, value), true), javaType];
    case 'double':
      return [formatGoFloatFixed(floatValue(column, value), false), javaType];
    case 'decimal':
      return [decimalValue(column, value), javaType];
    case 'binary':
      return [toLatin1(binaryValue(column, value)), javaType];
    case 'enum':
      return [String(enumIndex(column, textValue(column, value))), javaType];
    case 'set':
      return [String(setMask(column, textValue(column, value))), javaType];
    default:
      return [textValue(column, value), javaType];
  }
}

function elemsOf(column: ColumnDef): string[] {
  if (column.elems === undefined) throw new ColumnValueError(`${column.type} needs the column's elems to be written as canal-json`);
  return column.elems;
}

/** MySQL's ENUM index: 1-based, 0 for the empty error value ''. */
function enumIndex(column: ColumnDef, name: string): number {
  const index = elemsOf(column).indexOf(name);
  if (index >= 0) return index + 1;
  if (name === '') return 0;
  throw new ColumnValueError(`${JSON.stringify(name)} is not one of the ENUM's elems`);
}

/** MySQL's SET bit mask of comma-separated member names. */
function setMask(column: ColumnDef, names: string): bigint {
  const elems = elemsOf(column);
  let mask = 0n;
  if (names === '') return mask;
  for (const name of names.split(',')) {
    const index = elems.indexOf(name);
    if (index < 0) throw new ColumnValueError(`${JSON.stringify(name)} is not one of the SET's elems`);
    mask |= 1n << BigInt(index);
  }
  return mask;
}

/**
 * Decodes a data file of canal-json rows (one object per line, each ended by the sink's terminator:
 * any control characters, CRLF and LF alike, so no setting is needed) of one table into rows typed
 * by `table`'s column types. Throws `DecodeError` naming `where`, the line (row) and the problem, also
 * when the file does not end with a terminator, and when some rows carry `_tidb` and others do not
 * (the first line that differs from line 1).
 *
 * @example decodeCanalJsonRows(text, table, 'shop/orders/4350/CDC000001.json')
 */
export function decodeCanalJsonRows(text: string, table: TableDef, where = 'canal-json'): DecodedRow[] {
  const rows: DecodedRow[] = [];
  const lines = text.split(ROW_SEPARATOR);
  if (lines[lines.length - 1] === '') lines.pop();
  else if (lines.length > 0) throw new DecodeError(`${where} line ${lines.length}`, 'the last line does not end with a line break or other terminator (truncated file?)');
  lines.forEach((line, i) => {
    const row = decodeCanalJsonRow(line, table, `${where} line ${i + 1}`);
    if (i > 0 && (row.commitTs === undefined) !== (rows[0]!.commitTs === undefined)) {
      const [has, lacks] = row.commitTs === undefined ? [1, i + 1] : [i + 1, 1];
      throw new DecodeError(
        `${where} line ${i + 1}`,
        `line ${has} carries _tidb.commitTs but line ${lacks} does not: a file is written either with the TiDB extension or without it, never both (was it written by two sinks?)`,
      );
    }
    rows.push(row);
  });
  return rows;
}

/** Decodes one canal-json object (one row) typed by `table`. Throws `DecodeError` naming `where`. */
export function decodeCanalJsonRow(text: string, table: TableDef, where = 'canal-json'): DecodedRow {
  let json: JsonValue;
  try {
    json = parseJson(text);
  } catch (error) {
    if (error instanceof JsonSyntaxError) throw new DecodeError(where, `malformed JSON: ${error.message}`);
    throw error;
  }
  const fail = (problem: string): never => {
    throw new DecodeError(where, problem);
  };
  if (!(json instanceof Map)) return fail(`expected a JSON object, got ${jsonTypeOf(json)}`);
  const object = json;
  const field = (key: string) => object.get(key);
  const string = (key: string): string => {
    const value = field(key);
    return typeof value === 'string' ? value : fail(`${key} must be a string, got ${jsonTypeOf(value)}`);
  };
  if (field('isDdl') !== false) fail(`isDdl must be false in a row, got ${jsonTypeOf(field('isDdl'))}`);
  const type = string('type');
  const op = (Object.keys(TYPE_NAMES) as RowOp[]).find((k) => TYPE_NAMES[k] === type) ?? fail(`type must be INSERT, UPDATE or DELETE, got ${JSON.stringify(type)}`);
  const row: DecodedRow = { op, schema: string('database'), table: string('table'), columns: {} };

  const tidb = field('_tidb');
  if (tidb !== undefined) {
    if (!(tidb instanceof Map)) return fail(`_tidb must be an object, got ${jsonTypeOf(tidb)}`);
    const commitTs = tidb.get('commitTs');
    if (!(commitTs instanceof JsonNumber) || !/^[0-9]+$/.test(commitTs.text) || BigInt(commitTs.text) > MAX_UINT64) {
      return fail(`_tidb.commitTs must be a uint64, got ${commitTs instanceof JsonNumber ? commitTs.text : jsonTypeOf(commitTs)}`);
    }
    row.commitTs = BigInt(commitTs.text);
  }
  row.columns = decodeImage(field('data'), 'data', table, where);
  const old = field('old');
  if (op === 'update' && old !== null && old !== undefined) row.oldColumns = decodeImage(old, 'old', table, where, row.columns);
  else if (old !== null && old !== undefined) fail(`old must be null in an ${type}`);
  return row;
}

/** An image of every column; with `unchanged`, a column missing from `value` takes its value there. */
function decodeImage(value: JsonValue | undefined, key: string, table: TableDef, where: string, unchanged?: Record<string, ColumnValue>): Record<string, ColumnValue> {
  if (!Array.isArray(value) || value.length !== 1 || !(value[0] instanceof Map)) {
    throw new DecodeError(where, `${key} must be a list of one object, got ${jsonTypeOf(value)}`);
  }
  const image: JsonObject = value[0];
  const byName = new Map(table.columns.map((c) => [c.name, c]));
  for (const name of image.keys()) {
    if (!byName.has(name)) throw new DecodeError(where, `${key}: column ${JSON.stringify(name)} is not in ${table.schema}.${table.table}`);
  }
  const columns: Record<string, ColumnValue> = {};
  for (const column of table.columns) {
    const text = image.get(column.name);
    if (text === undefined && unchanged !== undefined) {
      setOwn(columns, column.name, unchanged[column.name] ?? null);
      continue;
    }
    if (text === undefined) throw new DecodeError(where, `${key}: column ${JSON.stringify(column.name)} is missing`);
    if (text !== null && typeof text !== 'string') {
      throw new DecodeError(where, `${key}.${column.name} must be a string or null, got ${jsonTypeOf(text)}`);
    }
    try {
      setOwn(columns, column.name, text === null ? null : decodeValue(column, text));
    } catch (error) {
      if (error instanceof ColumnValueError) {
        throw new DecodeError(where, `${key}.${column.name} (${column.type}): ${error.message}`);
      }
      throw error;
    }
  }
  return columns;
}

function decodeValue(column: ColumnDef, text: string): ColumnValue {
  switch (columnClass(column.type)) {
    case 'binary':
      return fromLatin1(text);
    case 'enum': {
      if (!/^[0-9]+$/.test(text)) throw new ColumnValueError(`expects an ENUM index, got ${JSON.stringify(text)}`);
      const index = Number(text);
      if (index === 0) return '';
      const name = elemsOf(column)[index - 1];
      if (name === undefined) throw new ColumnValueError(`ENUM index ${index} is past the ${elemsOf(column).length} elems`);
      return name;
    }
    case 'set': {
      if (!/^[0-9]+$/.test(text)) throw new ColumnValueError(`expects a SET bit mask, got ${JSON.stringify(text)}`);
      const elems = elemsOf(column);
      const mask = BigInt(text);
      if (mask >> BigInt(elems.length) !== 0n) throw new ColumnValueError(`SET mask ${text} has bits past the ${elems.length} elems`);
      return elems.filter((_, i) => (mask >> BigInt(i)) & 1n).join(',');
    }
    default:
      return parseScalar(column, text);
  }
}
