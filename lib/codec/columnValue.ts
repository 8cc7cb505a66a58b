/**
 * Column values by MySQL type, shared by the csv and canal-json codecs: which JS value each type takes,
 * how numbers are printed the way TiCDC's Go code prints them, and how text is typed back on decode.
 *
 * Invariant guarded here: a value that is accepted is printed so that decoding the text gives the same
 * value back (floats after rounding to the column's precision), and a value that cannot be printed
 * exactly (an unsafe integer in an INT column, NaN) is refused instead of being rounded.
 *
 * Decoded JS types by column type: TINYINT..INT, YEAR, BOOL -> number; BIGINT, BIT -> bigint;
 * FLOAT, DOUBLE -> number; DECIMAL -> string; BINARY, VARBINARY, *BLOB -> Uint8Array; everything
 * else (CHAR, VARCHAR, TEXT, DATE, DATETIME, TIMESTAMP, TIME, JSON, ENUM and SET names...) -> string.
 */
import { Buffer } from 'node:buffer';
import type { ColumnDef, ColumnValue, TableDef } from './changeEvent.ts';

export type ColumnClass = 'int' | 'bigint' | 'bit' | 'float' | 'double' | 'decimal' | 'binary' | 'enum' | 'set' | 'text';

const CLASSES: ReadonlyMap<string, ColumnClass> = new Map<string, ColumnClass>([
  ...['TINYINT', 'SMALLINT', 'MEDIUMINT', 'INT', 'INTEGER', 'YEAR', 'BOOL', 'BOOLEAN'].map((t) => [t, 'int'] as const),
  ['BIGINT', 'bigint'],
  ['BIT', 'bit'],
  ['FLOAT', 'float'],
  ...['DOUBLE', 'DOUBLE PRECISION', 'REAL'].map((t) => [t, 'double'] as const),
  ...['DECIMAL', 'NUMERIC'].map((t) => [t, 'decimal'] as const),
  ...['BINARY', 'VARBINARY', 'TINYBLOB', 'BLOB', 'MEDIUMBLOB', 'LONGBLOB'].map((t) => [t, 'binary'] as const),
  ['ENUM', 'enum'],
  ['SET', 'set'],
]);

/** How values of a column type are represented; unknown types are text. */
export function columnClass(type: string): ColumnClass {
  return CLASSES.get(type) ?? 'text';
}

/** A value that does not fit its column; the codecs add which event, file or line. */
export class ColumnValueError extends Error {
  override readonly name = 'ColumnValueError';
}

const MIN_INT64 = -(1n << 63n);
const MAX_UINT64 = (1n << 64n) - 1n;

function describe(value: ColumnValue): string {
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (typeof value === 'bigint') return `${value}n`;
  return JSON.stringify(value);
}

/** The integer of an integer-typed column's value; booleans count as 1 and 0. */
export function integerValue(column: ColumnDef, value: ColumnValue): bigint {
  const cls = columnClass(column.type);
  let n: bigint;
  if (typeof value === 'bigint') n = value;
  else if (typeof value === 'boolean') n = value ? 1n : 0n;
  else if (typeof value === 'number' && Number.isInteger(value)) n = BigInt(value);
  else throw new ColumnValueError(`${column.type} takes an integer, got ${describe(value)}`);
  const [min, max] =
    cls === 'int' ? [BigInt(Number.MIN_SAFE_INTEGER), BigInt(Number.MAX_SAFE_INTEGER)]
    : cls === 'bit' ? [0n, MAX_UINT64]
    : [MIN_INT64, MAX_UINT64];
  if (n < min || n > max) throw new ColumnValueError(`${column.type} value ${n} is outside [${min}, ${max}]`);
  return n;
}

/** A FLOAT or DOUBLE column's value, rounded to float32 for FLOAT. */
export function floatValue(column: ColumnDef, value: ColumnValue): number {
  const n = typeof value === 'bigint' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n)) {
    throw new ColumnValueError(`${column.type} takes a finite number, got ${describe(value)}`);
  }
  if (columnClass(column.type) !== 'float') return n;
  const rounded = Math.fround(n);
  if (!Number.isFinite(rounded)) throw new ColumnValueError(`${column.type} value ${n} is outside the float32 range`);
  return rounded;
}

const DECIMAL = /^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;

/** A DECIMAL column's value as decimal text. */
export function decimalValue(column: ColumnDef, value: ColumnValue): string {
  if (typeof value === 'bigint') return String(value);
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'string' && DECIMAL.test(value)) return value;
  throw new ColumnValueError(`${column.type} takes decimal text or a number, got ${describe(value)}`);
}

/** A binary column's bytes; a string stands for its UTF-8 bytes. */
export function binaryValue(column: ColumnDef, value: ColumnValue): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'string') return new Uint8Array(Buffer.from(value, 'utf8'));
  throw new ColumnValueError(`${column.type} takes bytes (Uint8Array) or a string, got ${describe(value)}`);
}

/** A text column's (or ENUM/SET name's) string. */
export function textValue(column: ColumnDef, value: ColumnValue): string {
  if (typeof value === 'string') return value;
  throw new ColumnValueError(
    `${column.type} takes a string${value instanceof Uint8Array ? '; binary data needs a binary type (BINARY, VARBINARY, BLOB...)' : ''}, got ${describe(value)}`,
  );
}

/** What is wrong when a row's columns are not exactly the table's, or undefined. */
export function columnMismatch(table: TableDef, columns: Record<string, ColumnValue>): string | undefined {
  const names = Object.keys(columns);
  if (names.length === table.columns.length && table.columns.every((c) => Object.hasOwn(columns, c.name))) return undefined;
  const known = new Set(table.columns.map((c) => c.name));
  const missing = table.columns.filter((c) => !Object.hasOwn(columns, c.name)).map((c) => c.name);
  const unknown = names.filter((n) => !known.has(n));
  return `columns do not match ${table.schema}.${table.table}: missing [${missing.join(', ')}], unknown [${unknown.join(', ')}]`;
}

// ---- numbers the way Go prints them ---------------------------------------------------------------

/** Shortest round-trip decimal digits of |x| and the exponent e with |x| = d.ddd x 10^e. */
function shortestDigits(x: number, float32: boolean): { digits: string; exp: number } {
  const abs = Math.abs(x);
  let scientific = abs.toExponential(); // shortest for a double
  if (float32) {
    for (let precision = 1; precision <= 9; precision++) {
      const candidate = abs.toExponential(precision - 1);
      if (Math.fround(Number(candidate)) === abs) {
        scientific = candidate;
        break;
      }
    }
  }
  const [mantissa = '0', exponent = '0'] = scientific.split('e');
  return { digits: mantissa.replace('.', ''), exp: Number(exponent) };
}

function sign(x: number): string {
  return x < 0 || Object.is(x, -0) ? '-' : '';
}

/** Go's fixed form of the digits (strconv 'f' with the shortest precision). */
function fixed(digits: string, exp: number): string {
  const pointAt = exp + 1; // digits before the decimal point
  const fractionDigits = Math.max(digits.length - pointAt, 0);
  const integer = pointAt > 0 ? digits.slice(0, pointAt).padEnd(pointAt, '0') : '0';
  if (fractionDigits === 0) return integer;
  const fraction = pointAt >= 0 ? digits.slice(pointAt) : '0'.repeat(-pointAt) + digits;
  return `${integer}.${fraction}`;
}

/**
 * `x` as Go's `fmt` `%v` prints a float64 (or a float32 when `float32`): shortest digits, exponent
 * form (`1e+06`, `1.5e-05`) when the exponent is < -4 or >= 6. TiCDC's csv prints floats this way.
 */
export function formatGoFloatV(x: number, float32: boolean): string {
  const { digits, exp } = shortestDigits(x, float32);
  if (exp < -4 || exp >= 6) {
    const mantissa = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const magnitude = Math.abs(exp);
    return `${sign(x)}${mantissa}e${exp < 0 ? '-' : '+'}${magnitude < 10 ? '0' : ''}${magnitude}`;
  }
  return sign(x) + fixed(digits, exp);
}

/** `x` as Go's `strconv.FormatFloat(x, 'f', -1, 32|64)`: shortest digits, never an exponent (canal-json). */
export function formatGoFloatFixed(x: number, float32: boolean): string {
  const { digits, exp } = shortestDigits(x, float32);
  return sign(x) + fixed(digits, exp);
}

// ---- decoding text back into typed values ---------------------------------------------------------

const INTEGER = /^-?[0-9]+$/;
const FLOAT = /^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;

/**
 * The typed value of a number or text column from its text; binary, ENUM and SET are format-specific
 * and handled by the codecs.
 */
export function parseScalar(column: ColumnDef, text: string): ColumnValue {
  switch (columnClass(column.type)) {
    case 'int': {
      if (!INTEGER.test(text)) throw new ColumnValueError(`${column.type} expects an integer, got ${JSON.stringify(text)}`);
      const n = Number(text);
      if (!Number.isSafeInteger(n)) throw new ColumnValueError(`${column.type} value ${text} is not a safe integer`);
      return n;
    }
    case 'bigint':
    case 'bit': {
      if (!INTEGER.test(text)) throw new ColumnValueError(`${column.type} expects an integer, got ${JSON.stringify(text)}`);
      return BigInt(text);
    }
    case 'float':
    case 'double':
      if (!FLOAT.test(text)) throw new ColumnValueError(`${column.type} expects a number, got ${JSON.stringify(text)}`);
      return Number(text);
    case 'decimal':
      if (!DECIMAL.test(text)) throw new ColumnValueError(`${column.type} expects decimal text, got ${JSON.stringify(text)}`);
      return text;
    default:
      return text;
  }
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Standard base64 with padding, as Go's `base64.StdEncoding`. */
export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** Bytes of strict standard base64; throws `ColumnValueError` on anything else. */
export function fromBase64(text: string): Uint8Array {
  if (!BASE64.test(text)) throw new ColumnValueError(`expects base64, got ${JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}...` : text)}`);
  return new Uint8Array(Buffer.from(text, 'base64'));
}

/** Each byte as one character U+0000..U+00FF (ISO-8859-1), as TiCDC's canal-json writes binary data. */
export function toLatin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

const NOT_LATIN1 = /[^\u0000-\u00ff]/;

/** The bytes of an ISO-8859-1 string; throws `ColumnValueError` on a character above U+00FF. */
export function fromLatin1(text: string): Uint8Array {
  if (NOT_LATIN1.test(text)) throw new ColumnValueError('binary text has a character above U+00FF');
  return new Uint8Array(Buffer.from(text, 'latin1'));
}
