/**
 * The csv of a data file straight into multi-row statements (see rowWriter.ts), without row objects:
 * each field is checked by its column's type and written as its SQL literal as the record is read.
 * Per row it allocates only the field strings and the row's SQL text, where decoding into rows and
 * then formatting them built a row object, a column map and a typed value per field.
 *
 * Invariant guarded here: this is a fast path, never a second dialect. It takes only records that
 * `decodeCsvRows` (lib/codec/csv.ts) takes, with the same checks per column type, and gives each value
 * the literal `sqlLiteral` gives the decoded value (the same SQL, up to how a number is spelled). On
 * anything else (a malformed record, another table's row, `outputOldValue`'s D+I pairs) it returns
 * undefined and the caller decodes the file the general way, which names the file and line.
 */
import { Buffer } from 'node:buffer';
import type { CsvOptions } from '../../lib/codec/csv.ts';
import { columnClass, fromBase64 } from '../../lib/codec/columnValue.ts';
import { quoteString } from '../../lib/mysql/sql.ts';
import { StatementBuilder, type PreparedFile, type StatementLimits, type TableWriter } from './rowWriter.ts';

// The checks of parseScalar (lib/codec/columnValue.ts), which the general path applies.
const INTEGER = /^-?[0-9]+$/;
const FLOAT = /^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;
const DECIMAL = FLOAT;
const UINT = /^[0-9]+$/;
const MAX_TS = 1n << 64n;

const INT = 0;
const BIGINT = 1;
const REAL = 2;
const DEC = 3;
const BIN = 4;
const TEXT = 5;

function classCode(type: string): number {
  switch (columnClass(type)) {
    case 'int':
      return INT;
    case 'bigint':
    case 'bit':
      return BIGINT;
    case 'float':
    case 'double':
      return REAL;
    case 'decimal':
      return DEC;
    case 'binary':
      return BIN;
    default:
      return TEXT;
  }
}

const QUOTE = 34;
const COMMA = 44;
const CR = 13;
const LF = 10;

/** The field just read: [start, end) of its text, whether quoted, whether it holds a doubled quote. */
let fieldStart = 0;
let fieldEnd = 0;
let fieldQuoted = false;
let fieldDoubled = false;

/** Reads the field at `pos`; returns the position after it, or -1 when malformed. */
function readField(text: string, pos: number): number {
  if (text.charCodeAt(pos) === QUOTE) {
    let from = pos + 1;
    let doubled = false;
    for (;;) {
      const close = text.indexOf('"', from);
      if (close < 0) return -1;
      if (text.charCodeAt(close + 1) === QUOTE) {
        doubled = true;
        from = close + 2;
        continue;
      }
      fieldStart = pos + 1;
      fieldEnd = close;
      fieldQuoted = true;
      fieldDoubled = doubled;
      return close + 1;
    }
  }
  let end = pos;
  const length = text.length;
  for (; end < length; end++) {
    const c = text.charCodeAt(end);
    if (c === COMMA || c === CR || c === LF || c === QUOTE) break;
  }
  if (end < length && text.charCodeAt(end) === QUOTE) return -1;
  fieldStart = pos;
  fieldEnd = end;
  fieldQuoted = false;
  fieldDoubled = false;
  return end;
}

function fieldText(text: string): string {
  const raw = text.slice(fieldStart, fieldEnd);
  return fieldDoubled ? raw.replaceAll('""', '"') : raw;
}

/** Is the field exactly `expected` (no copy)? */
function fieldIs(text: string, expected: string): boolean {
  if (fieldDoubled) return fieldText(text) === expected;
  return fieldEnd - fieldStart === expected.length && text.startsWith(expected, fieldStart);
}

/** The SQL literal of the field for a column of class `code`, or undefined when the general path must judge it. */
function literal(text: string, code: number): string | undefined {
  if (!fieldQuoted && fieldEnd - fieldStart === 2 && text.charCodeAt(fieldStart) === 92 && text.charCodeAt(fieldStart + 1) === 78) return 'NULL';
  const value = fieldText(text);
  switch (code) {
    case INT:
      return INTEGER.test(value) && Number.isSafeInteger(Number(value)) ? value : undefined;
    case BIGINT:
      return INTEGER.test(value) ? value : undefined;
    case REAL:
      return FLOAT.test(value) ? String(Number(value)) : undefined;
    case DEC:
      return DECIMAL.test(value) ? `'${value}'` : undefined;
    case BIN: {
      let bytes: Uint8Array;
      try {
        bytes = fromBase64(value);
      } catch {
        return undefined;
      }
      return bytes.byteLength === 0 ? "X''" : `X'${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')}'`;
    }
    default:
      return quoteString(value);
  }
}

/** Records read between pauses (see `prepareCsvStatements`). */
export const CSV_RECORDS_PER_SLICE = 2000;

/**
 * The statements of one csv data file of `writer`'s table, or undefined when the file needs the
 * general path (a problem to report, or `outputOldValue`). A generator that pauses every
 * `CSV_RECORDS_PER_SLICE` records, so the caller can let the event loop answer the server (the
 * statements in flight) while a big file is read ahead.
 */
export function* prepareCsvStatements(text: string, writer: TableWriter, csv: Required<CsvOptions>, limits: StatementLimits): Generator<void, PreparedFile | undefined> {
  if (csv.outputOldValue) return undefined;
  const { schema, table } = writer.def;
  const codes = writer.columns.map((c) => classCode(c.type));
  const columnCount = codes.length;
  const keyIndexes = writer.keyIndexes;
  const values: string[] = new Array<string>(columnCount);
  const builder = new StatementBuilder(writer, limits, csv.includeCommitTs);
  const length = text.length;
  let pos = 0;
  let records = 0;
  while (pos < length) {
    pos = readField(text, pos);
    if (pos < 0 || fieldEnd - fieldStart !== 1) return undefined;
    const letter = text.charCodeAt(fieldStart);
    const isDelete = letter === 68; // D
    if (!isDelete && letter !== 73 && letter !== 85) return undefined; // I, U
    if (text.charCodeAt(pos) !== COMMA || (pos = readField(text, pos + 1)) < 0 || !fieldIs(text, table)) return undefined;
    if (text.charCodeAt(pos) !== COMMA || (pos = readField(text, pos + 1)) < 0 || !fieldIs(text, schema)) return undefined;
    let ts: bigint | undefined;
    if (csv.includeCommitTs) {
      if (text.charCodeAt(pos) !== COMMA || (pos = readField(text, pos + 1)) < 0) return undefined;
      const digits = fieldText(text);
      if (!UINT.test(digits)) return undefined;
      ts = BigInt(digits);
      if (ts >= MAX_TS) return undefined;
    }
    for (let c = 0; c < columnCount; c++) {
      if (text.charCodeAt(pos) !== COMMA || (pos = readField(text, pos + 1)) < 0) return undefined;
      const value = literal(text, codes[c]!);
      if (value === undefined) return undefined;
      values[c] = value;
    }
    if (text.charCodeAt(pos) !== CR || text.charCodeAt(pos + 1) !== LF) return undefined;
    pos += 2;
    const record = ++records;
    if (record % CSV_RECORDS_PER_SLICE === 0) yield;
    if (isDelete) builder.addValues('delete', values, keyIndexes, keyIndexes.length > 1, record, ts);
    else builder.addValues('upsert', values, undefined, true, record, ts);
  }
  return builder.finish(records);
}
