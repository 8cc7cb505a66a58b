/**
 * The csv rows of TiCDC's storage sink (protocol=csv) in any of TiCDC's csv dialects, and their
 * decoding for the consumer.
 *
 * Invariant guarded here: every encoded record decodes to the row it came from (with
 * `outputOldValue`, the D+I pair of an update decodes back into one update), every record ends with
 * the terminator so a truncated file is detected, a NULL is never confused with text where the
 * dialect can tell them apart (see below), and only dialects whose files can be split back into
 * fields are accepted (`checkCsvOptions`).
 *
 * A record: op, table, schema, [commit ts], [is-update], values in table order, joined by the
 * delimiter and ended by the terminator. As TiCDC's csv codec (pkg/sink/codec/csv/csv_message.go)
 * writes them:
 * - strings (the op, table and schema columns too; DECIMAL, dates, times, JSON, ENUM/SET names, and
 *   binary columns as base64 or hex text) are quoted with the quote character, an inner quote
 *   doubled; nothing else is escaped inside quotes (backslashes, CR and LF stay as they are). With
 *   quote '' (no quoting) a string is escaped instead: CR as `\r`, LF as `\n`, a backslash as `\\`,
 *   and each character of the delimiter where the whole delimiter occurs as `\` + that character;
 * - integers, BIT values and the commit ts are bare decimals; a boolean in an integer column is 1 or 0;
 * - FLOAT and DOUBLE are bare, printed as Go's `%v` does (`3.14`, `1e+06`, `1.5e-05`; FLOAT with float32
 *   shortest digits);
 * - is-update is bare `true` or `false`: true on both rows of an update's D+I pair, and on a lone U row;
 * - NULL is the null string, bare (default `\N`);
 * - output-handle-key writes nothing: TiCDC accepts the setting and writes no handle-key column
 *   (it logs "not support output handle key"); so does sluice;
 * - output-field-header: each data file starts with one header line (`csvHeaderLine`): the names
 *   `ticdc-meta$operation`, `ticdc-meta$table`, `ticdc-meta$schema`, [`ticdc-meta$commit-ts`],
 *   [`ticdc-meta$is-update`] and the column names, bare, joined by the delimiter, then the terminator.
 *
 * NULL and text: with a quote character, a bare null string is NULL and quoted text is text.
 * Departure: TiCDC's consumer (TiDB lightning's parser) reads a quoted null string as NULL too; this
 * decoder reads it as the text. With quote '' nothing marks text, so a text whose escaped form equals
 * the null string reads back as NULL (TiCDC's consumer does the same): the default `\N` never collides
 * (a text `\N` is written `\\N`), but a null string that escaped text can spell does: one without a
 * backslash (`NULL`, '') or with a backslash before n, r, a backslash or a delimiter character
 * (`\null` is how the text LF + `ull` is written).
 *
 * Departures in what is accepted (`checkCsvOptions`): TiCDC checks only the quote (at most one
 * character, not CR or LF), the delimiter (1 to 3 bytes, no CR or LF, nothing in common with the
 * quote) and the binary encoding method. It accepts any terminator and null string, and dialects in
 * which a bare value, the null string or an escaped string can contain the delimiter or the
 * terminator; the files they give cannot be split back into fields, and sluice refuses them. The
 * rules, each named in its error: the terminator is not empty; no letter, digit, '.', '+' or '-' in
 * the delimiter, the quote or the terminator (bare numbers and true/false are made of those); the
 * delimiter, the terminator, the quote and the null string share no character (the quote may appear
 * in neither the delimiter, the terminator nor the null string; no CR or LF in the null string, and
 * the null string is not a number);
 * with quote '' the terminator is CR and LF only, the delimiter has no backslash and no border (a
 * part that both starts and ends it, as in `***` or `|@|`: TiCDC escapes only whole delimiters, so a
 * text ending in `|@` would split), and the null string does not end with a backslash.
 * Departure in what is written: with quote '' and a delimiter of non-ASCII characters (e.g. '§'),
 * TiCDC escapes the delimiter byte by byte (pingcap/ticdc pkg/sink/codec/csv/csv_message.go
 * formatWithEscapes writes `rune(byte)`), so a text holding '§' comes out as `\Â\§` and reads back
 * mangled (`Â§`), where sluice escapes it per character (`\§`, read back as '§').
 */
import { Buffer } from 'node:buffer';
import {
  DecodeError,
  InvalidChangeEventError,
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
  formatGoFloatV,
  fromBase64,
  integerValue,
  parseScalar,
  textValue,
  toBase64,
} from './columnValue.ts';
import { checkKnownKeys, InvalidOptionError } from '../core/errors.ts';

/** How binary columns (BINARY, VARBINARY, *BLOB) are written: standard base64 or lowercase hex. */
export type BinaryEncodingMethod = 'base64' | 'hex';

/** TiCDC's csv settings (`[sink.csv]` and the sink's `terminator`), with TiCDC's names in the docs. */
export interface CsvOptions {
  /** `delimiter`: between fields, 1 to 3 bytes. Default ','. */
  delimiter?: string;
  /** `quote`: encloses strings, one ASCII character, or '' for none (strings are then backslash-escaped). Default '"'. */
  quote?: string;
  /** `terminator` (a `[sink]` setting in TiCDC): ends each record. Default '\r\n'. */
  terminator?: string;
  /** `null`: how NULL is written, bare. Default '\N' (backslash, N). */
  nullString?: string;
  /** `include-commit-ts`: the commit ts as the 4th field. Default false (TiCDC's; sluice's sink and consumer default to true). */
  includeCommitTs?: boolean;
  /** `binary-encoding-method`: 'base64' or 'hex'. Default 'base64'. */
  binaryEncodingMethod?: BinaryEncodingMethod;
  /** `output-old-value`: an is-update field, and an update as a D row of old values then an I row. Default false. */
  outputOldValue?: boolean;
  /** `output-handle-key`: accepted and without effect, as in TiCDC (which writes no handle-key column). Default false. */
  outputHandleKey?: boolean;
  /** `output-field-header`: each data file starts with a header line of field names. Default false. */
  outputFieldHeader?: boolean;
}

/** Every csv setting, checked. */
export type CsvDialect = Readonly<Required<CsvOptions>>;

/** TiCDC's defaults (pkg/config/replica_config.go, pkg/config/sink.go). */
export const CSV_DEFAULTS: CsvDialect = Object.freeze({
  delimiter: ',',
  quote: '"',
  terminator: '\r\n',
  nullString: '\\N',
  includeCommitTs: false,
  binaryEncodingMethod: 'base64',
  outputOldValue: false,
  outputHandleKey: false,
  outputFieldHeader: false,
});

const OPTION_NAMES = Object.keys(CSV_DEFAULTS) as Array<keyof CsvOptions>;
const BOOLEAN_OPTIONS = ['includeCommitTs', 'outputOldValue', 'outputHandleKey', 'outputFieldHeader'] as const;
/** What bare numbers and true/false are made of: never part of a delimiter, quote or terminator. */
const BARE_VALUE_CHARACTER = /[A-Za-z0-9.+-]/;
/** A bare number as the encoder may write one: never the null string. */
const BARE_NUMBER = /^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;

/** How a person types a setting: `"\r\n"` with the escapes a shell user gives (`'\r\n'`). */
export function describeCsvText(text: string): string {
  return JSON.stringify(text);
}

function sharedCharacter(a: string, b: string): string | undefined {
  for (const c of a) if (b.includes(c)) return c;
  return undefined;
}

/** True when a proper prefix of `text` is also a suffix of it (`***`, `|@|`). */
function hasBorder(text: string): boolean {
  for (let n = 1; n < text.length; n++) if (text.endsWith(text.slice(0, n))) return true;
  return false;
}

/**
 * The csv settings checked with `defaults` (TiCDC's unless given) filled in; throws
 * `InvalidOptionError` naming the option as `csv.<name>` and what it accepts. Rules: TiCDC's
 * (pkg/config/sink.go CSVConfig.validateAndAdjust) and the readability rules in the module header.
 *
 * @example checkCsvOptions('storageSink', { terminator: '\n', quote: '' }) // { delimiter: ',', quote: '', terminator: '\n', ... }
 */
export function checkCsvOptions(owner: string, options: unknown, defaults: CsvDialect = CSV_DEFAULTS): CsvDialect {
  if (options === undefined) return defaults;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw new InvalidOptionError(owner, 'csv', options, 'an object of csv settings');
  checkKnownKeys(owner, 'csv', options, OPTION_NAMES);
  const given = options as CsvOptions;
  const dialect = { ...defaults };
  for (const key of OPTION_NAMES) {
    if (given[key] !== undefined) (dialect as Record<string, unknown>)[key] = given[key];
  }
  const fail = (name: keyof CsvOptions, expected: string): never => {
    throw new InvalidOptionError(owner, `csv.${name}`, dialect[name], expected);
  };
  for (const name of BOOLEAN_OPTIONS) if (typeof dialect[name] !== 'boolean') fail(name, 'a boolean');
  if (dialect.binaryEncodingMethod !== 'base64' && dialect.binaryEncodingMethod !== 'hex') fail('binaryEncodingMethod', "'base64' or 'hex'");
  for (const name of ['delimiter', 'quote', 'terminator', 'nullString'] as const) if (typeof dialect[name] !== 'string') fail(name, 'a string');
  const { delimiter, quote, terminator, nullString } = dialect;

  // TiCDC's rules.
  if (quote.length > 1 || (quote !== '' && quote.charCodeAt(0) > 0x7f)) fail('quote', "'' (no quoting) or one ASCII character");
  if (quote === '\r' || quote === '\n') fail('quote', 'not a line break (CR or LF)');
  const delimiterBytes = Buffer.byteLength(delimiter, 'utf8');
  if (delimiterBytes < 1 || delimiterBytes > 3) fail('delimiter', '1 to 3 bytes (UTF-8)');
  if (/[\r\n]/.test(delimiter)) fail('delimiter', 'free of line breaks (CR, LF)');
  if (quote !== '' && delimiter.includes(quote)) fail('delimiter', `free of the quote character ${describeCsvText(quote)}`);
  // sluice's readability rules.
  if (terminator === '') fail('terminator', "not empty (TiCDC's default is '\\r\\n')");
  for (const name of ['delimiter', 'quote', 'terminator'] as const) {
    if (BARE_VALUE_CHARACTER.test(dialect[name])) fail(name, "free of letters, digits, '.', '+' and '-' (bare numbers and true/false are made of them)");
  }
  if (quote !== '' && terminator.includes(quote)) fail('terminator', `free of the quote character ${describeCsvText(quote)}`);
  const shared = sharedCharacter(delimiter, terminator);
  if (shared !== undefined) fail('terminator', `free of the delimiter's characters (both have ${describeCsvText(shared)})`);
  if (quote === '') {
    if (/[^\r\n]/.test(terminator)) fail('terminator', "made of CR and LF only with quote '' (unquoted text escapes only those)");
    if (delimiter.includes('\\')) fail('delimiter', "free of backslashes with quote '' (the escape character)");
    if (hasBorder(delimiter)) fail('delimiter', "without a border with quote '': no part of it may both start and end it (TiCDC escapes only whole delimiters)");
    if (nullString.endsWith('\\')) fail('nullString', "not ending with a backslash with quote '' (it would escape the delimiter)");
  }
  if (/[\r\n]/.test(nullString)) fail('nullString', 'free of line breaks (CR, LF)');
  if (BARE_NUMBER.test(nullString)) fail('nullString', 'not a number (a bare number in the file would read as NULL)');
  const inNull = sharedCharacter(nullString, delimiter + terminator + quote);
  if (inNull !== undefined) fail('nullString', `free of the characters of the delimiter, the terminator and the quote (it has ${describeCsvText(inNull)})`);
  return Object.freeze(dialect);
}

const OP_LETTERS: Readonly<Record<RowOp, string>> = { insert: 'I', update: 'U', delete: 'D' };
const CR = 13;
const LF = 10;
const BACKSLASH = 92;

/** A string field as TiCDC writes it: quoted, or escaped with quote ''. */
type StringFormatter = (text: string) => string;

function stringFormatter(delimiter: string, quote: string): StringFormatter {
  if (quote === '"') return (text) => `"${text.replaceAll('"', '""')}"`;
  if (quote !== '') {
    const doubled = quote + quote;
    return (text) => quote + text.replaceAll(quote, doubled) + quote;
  }
  const first = delimiter.charCodeAt(0);
  let escapedDelimiter = '';
  for (const c of delimiter) escapedDelimiter += `\\${c}`;
  return (text) => {
    let out = '';
    let last = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === CR || c === LF || c === BACKSLASH) {
        out += `${text.slice(last, i)}\\${c === CR ? 'r' : c === LF ? 'n' : '\\'}`;
        last = i + 1;
      } else if (c === first && text.startsWith(delimiter, i)) {
        out += text.slice(last, i) + escapedDelimiter;
        i += delimiter.length - 1;
        last = i + 1;
      }
    }
    return last === 0 ? text : out + text.slice(last);
  };
}

/** Encodes rows of any table in one dialect: the dialect is checked once, when created. */
export type CsvRowEncoder = (row: RowChange, table: TableDef) => string;

/**
 * The encoder of csv records in `options`' dialect (checked here; throws `InvalidOptionError`
 * naming `owner`). The encoder gives a row's record(s), each ending with the terminator: two for an
 * update with `outputOldValue` and old values, one otherwise. Lossless: `decodeCsvRows` gives the
 * row back. It throws `InvalidChangeEventError` when the row does not match `table`; with
 * `columnsChecked` the caller vouches that every row's column set is exactly the table's (the storage
 * sink checks it at admission) and only the values are checked, as they are encoded.
 *
 * @example createCsvRowEncoder({ terminator: '\n', includeCommitTs: true })(row, table) // '"I","orders","shop",4356,1,"9.50"\n'
 */
export function createCsvRowEncoder(options: CsvOptions = {}, owner = 'createCsvRowEncoder', columnsChecked = false): CsvRowEncoder {
  const { delimiter, quote, terminator, nullString, includeCommitTs, outputOldValue, binaryEncodingMethod } = checkCsvOptions(owner, options);
  const formatString = stringFormatter(delimiter, quote);
  const hex = binaryEncodingMethod === 'hex';
  const opFields = { I: formatString('I'), U: formatString('U'), D: formatString('D') };
  const isUpdateFields = [`${delimiter}false`, `${delimiter}true`];
  // Rows come in runs of one table: its name fields are formatted once per run.
  let lastTable: string | undefined;
  let lastSchema: string | undefined;
  let names = '';

  const encodeValue = (column: ColumnDef, value: ColumnValue): string => {
    if (value === null) return nullString;
    switch (columnClass(column.type)) {
      case 'int':
      case 'bigint':
      case 'bit':
        return String(integerValue(column, value));
      case 'float':
        return formatGoFloatV(floatValue(column, value), true);
      case 'double':
        return formatGoFloatV(floatValue(column, value), false);
      case 'decimal':
        return formatString(decimalValue(column, value));
      case 'binary': {
        const bytes = binaryValue(column, value);
        return formatString(hex ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex') : toBase64(bytes));
      }
      default:
        return formatString(textValue(column, value));
    }
  };

  const encodeValues = (row: RowChange, table: TableDef, columns: Record<string, ColumnValue>): string => {
    if (!columnsChecked) {
      const mismatch = columnMismatch(table, columns);
      if (mismatch !== undefined) throw new InvalidChangeEventError(row, 'csv encoding', mismatch);
    }
    let out = '';
    for (const column of table.columns) {
      try {
        out += delimiter + encodeValue(column, columns[column.name] as ColumnValue);
      } catch (error) {
        if (error instanceof ColumnValueError) {
          throw new InvalidChangeEventError(row, `csv column ${JSON.stringify(column.name)}`, error.message);
        }
        throw error;
      }
    }
    return out;
  };

  return (row, table) => {
    if (row.schema !== table.schema || row.table !== table.table) {
      throw new InvalidChangeEventError(row, 'csv encoding', `row is for ${row.schema}.${row.table} but the table definition is ${table.schema}.${table.table}`);
    }
    if (row.table !== lastTable || row.schema !== lastSchema) {
      names = delimiter + formatString(row.table) + delimiter + formatString(row.schema);
      lastTable = row.table;
      lastSchema = row.schema;
    }
    let meta = names;
    if (includeCommitTs) meta += delimiter + String(row.commitTs);
    if (outputOldValue) meta += isUpdateFields[row.op === 'update' ? 1 : 0];
    if (row.op === 'update' && outputOldValue && row.oldColumns !== undefined) {
      return opFields.D + meta + encodeValues(row, table, row.oldColumns) + terminator + opFields.I + meta + encodeValues(row, table, row.columns) + terminator;
    }
    return opFields[OP_LETTERS[row.op] as 'I' | 'U' | 'D'] + meta + encodeValues(row, table, row.columns) + terminator;
  };
}

/**
 * The csv record(s) of one row (see `createCsvRowEncoder`, which checks the dialect once for many
 * rows). Throws `InvalidOptionError` for bad options, `InvalidChangeEventError` for a bad row.
 *
 * @example encodeCsvRow(row, table, { includeCommitTs: true }) // '"I","orders","shop",4356,1,"9.50"\r\n'
 */
export function encodeCsvRow(row: RowChange, table: TableDef, options: CsvOptions = {}): string {
  return createCsvRowEncoder(options, 'encodeCsvRow')(row, table);
}

/** The csv records of many rows of one table, concatenated (no header line: see `csvHeaderLine`). */
export function encodeCsvRows(rows: Iterable<RowChange>, table: TableDef, options: CsvOptions = {}): string {
  const encode = createCsvRowEncoder(options, 'encodeCsvRows');
  let text = '';
  for (const row of rows) text += encode(row, table);
  return text;
}

/**
 * The header line of a data file of `table` (output-field-header), whether or not the option is on:
 * TiCDC's meta names and the column names, bare (TiCDC neither quotes nor escapes them), joined by
 * the delimiter, ending with the terminator. Throws `InvalidOptionError` for bad options.
 *
 * @example csvHeaderLine(table, { includeCommitTs: true }) // 'ticdc-meta$operation,ticdc-meta$table,ticdc-meta$schema,ticdc-meta$commit-ts,id,name\r\n'
 */
export function csvHeaderLine(table: TableDef, options: CsvOptions = {}): string {
  const { delimiter, terminator, includeCommitTs, outputOldValue } = checkCsvOptions('csvHeaderLine', options);
  const names = ['ticdc-meta$operation', 'ticdc-meta$table', 'ticdc-meta$schema'];
  if (includeCommitTs) names.push('ticdc-meta$commit-ts');
  if (outputOldValue) names.push('ticdc-meta$is-update');
  for (const column of table.columns) names.push(column.name);
  return names.join(delimiter) + terminator;
}

/** A csv field: its text (unquoted, unescaped) and whether it is NULL (the bare null string). */
interface Field {
  text: string;
  isNull: boolean;
}

/** A terminator as people name it: CRLF, LF, CR, or its text. */
export function terminatorName(terminator: string): string {
  return terminator === '\r\n' ? 'CRLF' : terminator === '\n' ? 'LF' : terminator === '\r' ? 'CR' : describeCsvText(terminator);
}

/** A setting as typed on sluice's command line: CR, LF, tab and backslash as `\r`, `\n`, `\t`, `\\`. */
function asFlag(text: string): string {
  return `'${text.replace(/[\\\r\n\t]/g, (c) => (c === '\\' ? '\\\\' : c === '\r' ? '\\r' : c === '\n' ? '\\n' : '\\t'))}'`;
}

/**
 * Splits csv text into records of fields in `dialect`. Inside quotes anything goes (the delimiter,
 * CR, LF) and a doubled quote is a quote; unquoted fields end at the delimiter, the terminator or a
 * line break, and with quote '' a backslash escapes the next character (`\n` LF, `\r` CR, else the
 * character itself). Yields each record with where it starts (`line N` when the terminator holds an
 * LF, `record N` otherwise).
 */
function* csvRecords(text: string, dialect: CsvDialect, where: string, start: number, startLine: number): Generator<{ fields: Field[]; at: string }> {
  const { delimiter, quote, terminator, nullString } = dialect;
  const quoteCode = quote === '' ? -1 : quote.charCodeAt(0);
  const doubled = quote + quote;
  const delimiterCode = delimiter.charCodeAt(0);
  const terminatorCode = terminator.charCodeAt(0);
  const escapes = quote === '';
  const countsLines = terminator.includes('\n');
  const name = terminatorName(terminator);
  let pos = start;
  let line = startLine;
  let record = 0;
  while (pos < text.length) {
    record++;
    const at = countsLines ? `${where} line ${line}` : `${where} record ${record}`;
    const fields: Field[] = [];
    for (;;) {
      let field: Field;
      if (text.charCodeAt(pos) === quoteCode) {
        let from = pos + 1;
        let close: number;
        for (;;) {
          close = text.indexOf(quote, from);
          if (close < 0) throw new DecodeError(at, `field ${fields.length + 1}: unterminated quoted field`);
          if (text.charCodeAt(close + 1) !== quoteCode) break;
          from = close + 2;
        }
        const raw = text.slice(pos + 1, close);
        const value = from === pos + 1 ? raw : raw.replaceAll(doubled, quote);
        if (countsLines) line += countLineFeeds(value);
        field = { text: value, isNull: false };
        pos = close + 1;
      } else {
        let end = pos;
        let value = '';
        let last = pos;
        for (; end < text.length; end++) {
          const c = text.charCodeAt(end);
          if (c === CR || c === LF || c === quoteCode) break;
          if (c === delimiterCode && text.startsWith(delimiter, end)) break;
          if (c === terminatorCode && text.startsWith(terminator, end)) break;
          if (escapes && c === BACKSLASH) {
            if (end + 1 >= text.length) break;
            const next = text.charCodeAt(end + 1);
            value += text.slice(last, end) + (next === 110 ? '\n' : next === 114 ? '\r' : text[end + 1]);
            end++;
            last = end + 1;
          }
        }
        if (end < text.length && text.charCodeAt(end) === quoteCode) throw new DecodeError(at, `field ${fields.length + 1}: quote inside an unquoted field`);
        const raw = text.slice(pos, end);
        field = { text: last === pos ? raw : value + text.slice(last, end), isNull: raw === nullString };
        pos = end;
      }
      fields.push(field);
      if (text.startsWith(delimiter, pos)) {
        pos += delimiter.length;
        continue;
      }
      if (text.startsWith(terminator, pos)) {
        pos += terminator.length;
        if (countsLines) line += countLineFeeds(terminator);
        break;
      }
      if (pos >= text.length) throw new DecodeError(at, `the last record does not end with ${name} (truncated file?)`);
      // The text ends with only the start of the terminator (a CRLF file cut after its CR): truncated too.
      if (text.length - pos < terminator.length && terminator.startsWith(text.slice(pos))) {
        throw new DecodeError(at, `the last record does not end with ${name}, only with its start ${describeCsvText(text.slice(pos))} (truncated file?)`);
      }
      const found = text[pos]!;
      const other = found === '\r' || found === '\n' ? (text.startsWith('\r\n', pos) ? '\r\n' : found) : undefined;
      const hint =
        other === undefined
          ? `; was the sink run with another delimiter or quote? pass --delimiter, --quote`
          : `; was the sink run with terminator ${asFlag(other)}? pass --terminator ${asFlag(other)}`;
      throw new DecodeError(at, `unexpected ${JSON.stringify(found)} after field ${fields.length} (fields are separated by ${describeCsvText(delimiter)}, records end with ${name})${hint}`);
    }
    yield { fields, at };
  }
}

function countLineFeeds(text: string): number {
  let count = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) count++;
  return count;
}

export interface CsvDecodeOptions extends CsvOptions {
  /** Names the input in error messages, e.g. the data file's path. Default 'csv'. */
  where?: string;
}

/**
 * Where the records of a csv file start: after the header line with `outputFieldHeader` (which must
 * be exactly `csvHeaderLine`'s), at 0 otherwise. Throws `DecodeError` naming the file for a missing
 * or different header. An empty file has no header and no records.
 */
export function csvRecordsStart(text: string, table: TableDef, dialect: CsvDialect, where: string): number {
  if (!dialect.outputFieldHeader || text === '') return 0;
  const header = csvHeaderLine(table, dialect);
  if (text.startsWith(header)) return header.length;
  const end = text.indexOf(dialect.terminator);
  const first = end < 0 ? text : text.slice(0, end);
  const hint = first.startsWith('ticdc-meta$operation') ? `; does the table definition match the file (columns of ${table.schema}.${table.table} version ${table.version})?` : '; was the sink run without output-field-header? drop --output-field-header';
  throw new DecodeError(`${where} line 1`, `expected the header line ${describeCsvText(header)} (output-field-header), got ${describeCsvText(first.length > 200 ? `${first.slice(0, 200)}...` : first)}${hint}`);
}

/** What a person may have set differently when a record has `got` fields where `expected` were due. */
function fieldCountHint(dialect: CsvDialect, got: number, expected: number): string {
  const diff = got - expected;
  if (got === 1) return `; is the delimiter right? (records here have no ${describeCsvText(dialect.delimiter)}; pass --delimiter)`;
  if (diff === -1 && dialect.includeCommitTs) return '; was the sink run with include-commit-ts=false? pass --include-commit-ts=false';
  if (diff === -1 && dialect.outputOldValue) return '; was the sink run without output-old-value? drop --output-old-value';
  if (diff === 1 && !dialect.includeCommitTs) return '; was the sink run with include-commit-ts? pass --include-commit-ts';
  if (diff === 1 && !dialect.outputOldValue) return '; was the sink run with output-old-value? pass --output-old-value';
  if (diff === 2 && !dialect.includeCommitTs && !dialect.outputOldValue) return '; was the sink run with include-commit-ts and output-old-value? pass both';
  if (diff === -2 && dialect.includeCommitTs && dialect.outputOldValue) return '; was the sink run with include-commit-ts=false and without output-old-value?';
  return '';
}

/**
 * Decodes the csv records of one table's data file, in the dialect of `options`, into rows typed by
 * `table`'s column types (see columnValue.ts). With `outputOldValue`, an update's D+I pair becomes
 * one update with `oldColumns`; with `outputFieldHeader` the file's header line is checked and
 * skipped. Throws `InvalidOptionError` for bad options and `DecodeError` naming the file, line (or
 * record) and field, with a hint at the setting that likely differs from the sink's.
 *
 * @example decodeCsvRows(text, table, { includeCommitTs: true, terminator: '\n', where: 'shop/orders/4350/CDC000001.csv' })
 */
export function decodeCsvRows(text: string, table: TableDef, options: CsvDecodeOptions = {}): DecodedRow[] {
  const { where: given, ...settings } = options;
  const where = given ?? 'csv';
  const dialect = checkCsvOptions('decodeCsvRows', settings);
  const { includeCommitTs, outputOldValue } = dialect;
  const hex = dialect.binaryEncodingMethod === 'hex';
  const metaCount = 3 + (includeCommitTs ? 1 : 0) + (outputOldValue ? 1 : 0);
  const start = csvRecordsStart(text, table, dialect, where);
  const rows: DecodedRow[] = [];
  let pendingOld: { row: DecodedRow; at: string } | undefined;
  for (const { fields, at } of csvRecords(text, dialect, where, start, 1 + countLineFeeds(text.slice(0, start)))) {
    const letter = fields[0]!.text;
    const op = letter === 'I' ? 'insert' : letter === 'U' ? 'update' : letter === 'D' ? 'delete' : undefined;
    // One field: the delimiter is likely wrong, which the field count says better than the op.
    if (op === undefined && fields.length > 1) {
      const hint = letter === 'ticdc-meta$operation' ? '; the file starts with a header line: pass --output-field-header' : '';
      throw new DecodeError(at, `field 1: operation must be I, U or D, got ${JSON.stringify(letter)}${hint}`);
    }
    if (fields.length !== metaCount + table.columns.length) {
      const expected = metaCount + table.columns.length;
      throw new DecodeError(
        at,
        `expected ${expected} fields (${metaCount} meta + ${table.columns.length} columns of ${table.schema}.${table.table}), got ${fields.length}${fieldCountHint(dialect, fields.length, expected)}`,
      );
    }
    if (op === undefined) throw new DecodeError(at, `field 1: operation must be I, U or D, got ${JSON.stringify(letter)}`);
    const row: DecodedRow = { op, schema: fields[2]!.text, table: fields[1]!.text, columns: {} };
    let next = 3;
    if (includeCommitTs) {
      const ts = fields[next++]!.text;
      if (!/^[0-9]+$/.test(ts) || BigInt(ts) >= 1n << 64n) throw new DecodeError(at, `field 4: commit ts must be a uint64, got ${JSON.stringify(ts)}`);
      row.commitTs = BigInt(ts);
    }
    let isUpdate = false;
    if (outputOldValue) {
      const flag = fields[next++]!.text;
      if (flag !== 'true' && flag !== 'false') throw new DecodeError(at, `field ${next}: is-update must be true or false, got ${JSON.stringify(flag)}`);
      isUpdate = flag === 'true';
    }
    table.columns.forEach((column, i) => {
      setOwn(row.columns, column.name, decodeField(column, fields[next + i]!, at, next + i + 1, hex));
    });

    if (pendingOld !== undefined) {
      const old = pendingOld;
      pendingOld = undefined;
      if (!(isUpdate && op === 'insert') || old.row.table !== row.table || old.row.schema !== row.schema || old.row.commitTs !== row.commitTs) {
        throw new DecodeError(old.at, 'the D row of an update (is-update true) must be followed by its I row');
      }
      rows.push({ ...row, op: 'update', oldColumns: old.row.columns });
      continue;
    }
    if (isUpdate && op === 'delete') {
      pendingOld = { row, at };
      continue;
    }
    if (outputOldValue && isUpdate !== (op === 'update')) {
      throw new DecodeError(at, `is-update is ${isUpdate} on a lone ${letter} row`);
    }
    rows.push(row);
  }
  if (pendingOld !== undefined) {
    throw new DecodeError(pendingOld.at, 'the D row of an update (is-update true) has no I row after it');
  }
  return rows;
}

const HEX = /^(?:[0-9a-fA-F]{2})*$/;

/** Bytes of hex text (either case, as Go's hex.DecodeString); throws `ColumnValueError` on anything else. */
export function fromHex(text: string): Uint8Array {
  if (!HEX.test(text)) throw new ColumnValueError(`expects hex, got ${JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}...` : text)}`);
  return new Uint8Array(Buffer.from(text, 'hex'));
}

function decodeField(column: ColumnDef, field: Field, at: string, fieldNumber: number, hex: boolean): ColumnValue {
  if (field.isNull) return null;
  try {
    switch (columnClass(column.type)) {
      case 'binary':
        return hex ? fromHex(field.text) : fromBase64(field.text);
      case 'enum':
      case 'set':
      case 'text':
        return field.text;
      default:
        return parseScalar(column, field.text);
    }
  } catch (error) {
    if (error instanceof ColumnValueError) {
      throw new DecodeError(at, `field ${fieldNumber} (column ${JSON.stringify(column.name)}, ${column.type}): ${error.message}`);
    }
    throw error;
  }
}
