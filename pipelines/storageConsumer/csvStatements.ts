/**
 * The csv of a data file straight into multi-row statements (see rowWriter.ts), without row objects:
 * each field is checked by its column's type and written as its SQL literal as the record is read.
 * Per row it allocates only the field strings and the row's SQL text, where decoding into rows and
 * then formatting them built a row object, a column map and a typed value per field.
 *
 * Invariant guarded here: this is a fast path, never a second dialect. It takes only records that
 * `decodeCsvRows` (lib/codec/csv.ts) takes, with the same checks per column type, and gives each value
 * the literal `sqlLiteral` gives the decoded value (the same SQL, up to how a number is spelled). On
 * anything else (a malformed record, another table's row, `outputOldValue`'s D+I pairs, a dialect
 * with quote '' or a delimiter longer than one character) it returns undefined and the caller decodes
 * the file the general way, which names the file and line. Any other dialect (delimiter, quote,
 * terminator, null string, hex or base64, a header line) is read here, its characters compared as
 * char codes held by one reader per file: the default dialect costs what it did before.
 */
import { Buffer } from 'node:buffer';
import { csvHeaderLine, type CsvDialect } from '../../lib/codec/csv.ts';
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

const CR = 13;
const LF = 10;

/**
 * Reads the fields of one file in one dialect (a one-character delimiter and quote): `read` sets
 * [start, end) of the field's text, whether it was quoted and whether it holds a doubled quote.
 * One reader per file; nothing is allocated per field but the texts asked for.
 */
class CsvFieldReader {
  start = 0;
  end = 0;
  quoted = false;
  doubled = false;
  readonly quote: string;
  readonly quoteCode: number;
  readonly doubledQuote: string;
  readonly delimiterCode: number;
  readonly terminator: string;
  readonly terminatorCode: number;
  readonly nullString: string;

  constructor(dialect: CsvDialect) {
    this.quote = dialect.quote;
    this.quoteCode = dialect.quote.charCodeAt(0);
    this.doubledQuote = dialect.quote + dialect.quote;
    this.delimiterCode = dialect.delimiter.charCodeAt(0);
    this.terminator = dialect.terminator;
    this.terminatorCode = dialect.terminator.charCodeAt(0);
    this.nullString = dialect.nullString;
  }

  /** Reads the field at `pos`; returns the position after it, or -1 when malformed. */
  read(text: string, pos: number): number {
    const quoteCode = this.quoteCode;
    if (text.charCodeAt(pos) === quoteCode) {
      let from = pos + 1;
      let doubled = false;
      for (;;) {
        const close = text.indexOf(this.quote, from);
        if (close < 0) return -1;
        if (text.charCodeAt(close + 1) === quoteCode) {
          doubled = true;
          from = close + 2;
          continue;
        }
        this.start = pos + 1;
        this.end = close;
        this.quoted = true;
        this.doubled = doubled;
        return close + 1;
      }
    }
    const delimiterCode = this.delimiterCode;
    const terminatorCode = this.terminatorCode;
    let end = pos;
    const length = text.length;
    for (; end < length; end++) {
      const c = text.charCodeAt(end);
      if (c === delimiterCode || c === terminatorCode || c === CR || c === LF || c === quoteCode) break;
    }
    if (end < length && text.charCodeAt(end) === quoteCode) return -1;
    this.start = pos;
    this.end = end;
    this.quoted = false;
    this.doubled = false;
    return end;
  }

  /** Is `pos` at the delimiter? */
  atDelimiter(text: string, pos: number): boolean {
    return text.charCodeAt(pos) === this.delimiterCode;
  }

  /** The position after the terminator at `pos`, or -1 when there is none. */
  afterTerminator(text: string, pos: number): number {
    const terminator = this.terminator;
    if (text.charCodeAt(pos) !== this.terminatorCode) return -1;
    if (terminator.length > 1 && !text.startsWith(terminator, pos)) return -1;
    return pos + terminator.length;
  }

  text(text: string): string {
    const raw = text.slice(this.start, this.end);
    return this.doubled ? raw.replaceAll(this.doubledQuote, this.quote) : raw;
  }

  /** Is the field exactly `expected` (no copy)? */
  is(text: string, expected: string): boolean {
    if (this.doubled) return this.text(text) === expected;
    return this.end - this.start === expected.length && text.startsWith(expected, this.start);
  }

  /** Is the field the bare null string? */
  isNull(text: string): boolean {
    return !this.quoted && this.end - this.start === this.nullString.length && text.startsWith(this.nullString, this.start);
  }
}

const HEX = /^(?:[0-9a-fA-F]{2})*$/;

/** The SQL literal of the field for a column of class `code`, or undefined when the general path must judge it. */
function literal(text: string, field: CsvFieldReader, code: number, hex: boolean): string | undefined {
  if (field.isNull(text)) return 'NULL';
  const value = field.text(text);
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
      if (hex) return HEX.test(value) ? `X'${value.toLowerCase()}'` : undefined;
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
 * general path (a problem to report, `outputOldValue`, or a dialect this path does not read: quote ''
 * or a delimiter of more than one character). A generator that pauses every
 * `CSV_RECORDS_PER_SLICE` records, so the caller can let the event loop answer the server (the
 * statements in flight) while a big file is read ahead.
 */
export function* prepareCsvStatements(text: string, writer: TableWriter, csv: CsvDialect, limits: StatementLimits): Generator<void, PreparedFile | undefined> {
  if (csv.outputOldValue || csv.quote.length !== 1 || csv.delimiter.length !== 1) return undefined;
  const { schema, table } = writer.def;
  const codes = writer.columns.map((c) => classCode(c.type));
  const columnCount = codes.length;
  const keyIndexes = writer.keyIndexes;
  const values: string[] = new Array<string>(columnCount);
  const builder = new StatementBuilder(writer, limits, csv.includeCommitTs);
  const field = new CsvFieldReader(csv);
  const hex = csv.binaryEncodingMethod === 'hex';
  const length = text.length;
  let pos = 0;
  if (csv.outputFieldHeader && length > 0) {
    const header = csvHeaderLine(writer.def, csv);
    if (!text.startsWith(header)) return undefined;
    pos = header.length;
  }
  let records = 0;
  while (pos < length) {
    pos = field.read(text, pos);
    if (pos < 0 || field.end - field.start !== 1) return undefined;
    const letter = text.charCodeAt(field.start);
    const isDelete = letter === 68; // D
    if (!isDelete && letter !== 73 && letter !== 85) return undefined; // I, U
    if (!field.atDelimiter(text, pos) || (pos = field.read(text, pos + 1)) < 0 || !field.is(text, table)) return undefined;
    if (!field.atDelimiter(text, pos) || (pos = field.read(text, pos + 1)) < 0 || !field.is(text, schema)) return undefined;
    let ts: bigint | undefined;
    if (csv.includeCommitTs) {
      if (!field.atDelimiter(text, pos) || (pos = field.read(text, pos + 1)) < 0) return undefined;
      const digits = field.text(text);
      if (!UINT.test(digits)) return undefined;
      ts = BigInt(digits);
      if (ts >= MAX_TS) return undefined;
    }
    for (let c = 0; c < columnCount; c++) {
      if (!field.atDelimiter(text, pos) || (pos = field.read(text, pos + 1)) < 0) return undefined;
      const value = literal(text, field, codes[c]!, hex);
      if (value === undefined) return undefined;
      values[c] = value;
    }
    if ((pos = field.afterTerminator(text, pos)) < 0) return undefined;
    const record = ++records;
    if (record % CSV_RECORDS_PER_SLICE === 0) yield;
    if (isDelete) builder.addValues('delete', values, keyIndexes, keyIndexes.length > 1, record, ts);
    else builder.addValues('upsert', values, undefined, true, record, ts);
  }
  return builder.finish(records);
}
