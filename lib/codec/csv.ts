/**
 * The csv rows of TiCDC's storage sink (protocol=csv, default settings: delimiter ',', quote '"',
 * null '\N', terminator CRLF, binary-encoding-method base64), and their decoding for the consumer.
 *
 * Invariant guarded here: every encoded record decodes to the row it came from (with
 * `outputOldValue`, the D+I pair of an update decodes back into one update), every record ends with
 * CRLF so a truncated file is detected, and a NULL (`\N` bare) is never confused with the text "\N"
 * (quoted).
 *
 * A record: `"I"|"U"|"D"`, `"table"`, `"schema"`, [commit ts], [is-update], values in table order.
 * As TiCDC's csv codec (pkg/sink/codec/csv/csv_message.go) writes them:
 * - strings (the op, table and schema columns too; DECIMAL, dates, times, JSON, ENUM/SET names) are
 *   quoted, with `"` doubled; nothing else is escaped inside quotes (backslashes stay as they are);
 * - integers, BIT values and the commit ts are bare decimals; a boolean in an integer column is 1 or 0;
 * - FLOAT and DOUBLE are bare, printed as Go's `%v` does (`3.14`, `1e+06`, `1.5e-05`; FLOAT with float32
 *   shortest digits);
 * - is-update is bare `true` or `false`: true on both rows of an update's D+I pair, and on a lone U row;
 * - binary columns (BINARY, VARBINARY, *BLOB) are quoted standard base64;
 * - NULL is bare `\N`.
 * Departure: TiCDC's consumer reads a quoted "\N" as NULL too; this decoder reads it as the text.
 */
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

export interface CsvOptions {
  /** Write the commit ts as the 4th column (TiCDC's include-commit-ts). Default false. */
  includeCommitTs?: boolean;
  /** Write an is-update column and an update as a D row of old values then an I row (output-old-value). Default false. */
  outputOldValue?: boolean;
}

/** TiCDC's defaults. */
export const CSV_DEFAULTS: Readonly<Required<CsvOptions>> = Object.freeze({ includeCommitTs: false, outputOldValue: false });

const OP_LETTERS: Readonly<Record<RowOp, string>> = { insert: 'I', update: 'U', delete: 'D' };
const NULL = '\\N';
const CRLF = '\r\n';

function quote(text: string): string {
  return `"${text.replaceAll('"', '""')}"`;
}

/**
 * The csv record(s) of one row, each ending with CRLF: two records for an update with
 * `outputOldValue` and old values, one otherwise. Lossless: `decodeCsvRows` gives the row back.
 * Throws `InvalidChangeEventError` when the row does not match `table` (names, columns, value types).
 *
 * @example encodeCsvRow(row, table, { includeCommitTs: true }) // '"I","orders","shop",4356,1,"9.50"\r\n'
 */
export function encodeCsvRow(row: RowChange, table: TableDef, options: CsvOptions = {}): string {
  const { includeCommitTs, outputOldValue } = { ...CSV_DEFAULTS, ...options };
  if (row.schema !== table.schema || row.table !== table.table) {
    throw new InvalidChangeEventError(row, 'csv encoding', `row is for ${row.schema}.${row.table} but the table definition is ${table.schema}.${table.table}`);
  }
  const record = (op: string, columns: Record<string, ColumnValue>) => {
    let line = `${quote(op)},${quote(row.table)},${quote(row.schema)}`;
    if (includeCommitTs) line += `,${row.commitTs}`;
    if (outputOldValue) line += row.op === 'update' ? ',true' : ',false';
    return line + encodeValues(row, table, columns) + CRLF;
  };
  if (row.op === 'update' && outputOldValue && row.oldColumns !== undefined) {
    return record('D', row.oldColumns) + record('I', row.columns);
  }
  return record(OP_LETTERS[row.op], row.columns);
}

/** The csv records of many rows of one table, concatenated. */
export function encodeCsvRows(rows: Iterable<RowChange>, table: TableDef, options: CsvOptions = {}): string {
  let text = '';
  for (const row of rows) text += encodeCsvRow(row, table, options);
  return text;
}

function encodeValues(row: RowChange, table: TableDef, columns: Record<string, ColumnValue>): string {
  const mismatch = columnMismatch(table, columns);
  if (mismatch !== undefined) throw new InvalidChangeEventError(row, 'csv encoding', mismatch);
  let out = '';
  for (const column of table.columns) {
    try {
      out += `,${encodeValue(column, columns[column.name] as ColumnValue)}`;
    } catch (error) {
      if (error instanceof ColumnValueError) {
        throw new InvalidChangeEventError(row, `csv column ${JSON.stringify(column.name)}`, error.message);
      }
      throw error;
    }
  }
  return out;
}

function encodeValue(column: ColumnDef, value: ColumnValue): string {
  if (value === null) return NULL;
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
      return quote(decimalValue(column, value));
    case 'binary':
      return quote(toBase64(binaryValue(column, value)));
    default:
      return quote(textValue(column, value));
  }
}

/** A csv field: its text without quotes and whether it was quoted. */
interface Field {
  text: string;
  quoted: boolean;
}

/**
 * Splits csv text into records of fields. Fields are separated by ',', records end with CRLF; inside
 * quotes anything goes (commas, CR, LF) and `""` is a quote. Yields each record with the 1-based line
 * it starts on.
 */
function* csvRecords(text: string, where: string): Generator<{ fields: Field[]; line: number }> {
  let pos = 0;
  let line = 1;
  while (pos < text.length) {
    const startLine = line;
    const fields: Field[] = [];
    for (;;) {
      let field: Field;
      if (text[pos] === '"') {
        let value = '';
        let from = pos + 1;
        for (;;) {
          const close = text.indexOf('"', from);
          if (close < 0) throw new DecodeError(`${where} line ${startLine}`, `field ${fields.length + 1}: unterminated quoted field`);
          value += text.slice(from, close);
          if (text[close + 1] === '"') {
            value += '"';
            from = close + 2;
            continue;
          }
          pos = close + 1;
          break;
        }
        line += countLineFeeds(value);
        field = { text: value, quoted: true };
      } else {
        let end = pos;
        while (end < text.length && text[end] !== ',' && text[end] !== '\r' && text[end] !== '\n' && text[end] !== '"') end++;
        if (text[end] === '"') throw new DecodeError(`${where} line ${startLine}`, `field ${fields.length + 1}: quote inside an unquoted field`);
        field = { text: text.slice(pos, end), quoted: false };
        pos = end;
      }
      fields.push(field);
      if (text[pos] === ',') {
        pos++;
        continue;
      }
      if (text[pos] === '\r' && text[pos + 1] === '\n') {
        pos += 2;
        line++;
        break;
      }
      const problem = pos >= text.length ? 'the last record does not end with CRLF (truncated file?)' : `unexpected ${JSON.stringify(text[pos])} after field ${fields.length} (records end with CRLF)`;
      throw new DecodeError(`${where} line ${line}`, problem);
    }
    yield { fields, line: startLine };
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
 * Decodes the csv records of one table's data file into rows typed by `table`'s column types (see
 * columnValue.ts). With `outputOldValue`, an update's D+I pair becomes one update with `oldColumns`.
 * Throws `DecodeError` naming the file, line and field.
 *
 * @example decodeCsvRows(text, table, { includeCommitTs: true, where: 'shop/orders/4350/CDC000001.csv' })
 */
export function decodeCsvRows(text: string, table: TableDef, options: CsvDecodeOptions = {}): DecodedRow[] {
  const { includeCommitTs, outputOldValue } = { ...CSV_DEFAULTS, ...options };
  const where = options.where ?? 'csv';
  const metaCount = 3 + (includeCommitTs ? 1 : 0) + (outputOldValue ? 1 : 0);
  const rows: DecodedRow[] = [];
  let pendingOld: { row: DecodedRow; line: number } | undefined;
  for (const { fields, line } of csvRecords(text, where)) {
    const at = `${where} line ${line}`;
    if (fields.length !== metaCount + table.columns.length) {
      throw new DecodeError(at, `expected ${metaCount + table.columns.length} fields (${metaCount} meta + ${table.columns.length} columns of ${table.schema}.${table.table}), got ${fields.length}`);
    }
    const letter = fields[0]!.text;
    const op = letter === 'I' ? 'insert' : letter === 'U' ? 'update' : letter === 'D' ? 'delete' : undefined;
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
      setOwn(row.columns, column.name, decodeField(column, fields[next + i]!, `${at}`, next + i + 1));
    });

    if (pendingOld !== undefined) {
      const old = pendingOld;
      pendingOld = undefined;
      if (!(isUpdate && op === 'insert') || old.row.table !== row.table || old.row.schema !== row.schema || old.row.commitTs !== row.commitTs) {
        throw new DecodeError(`${where} line ${old.line}`, 'the D row of an update (is-update true) must be followed by its I row');
      }
      rows.push({ ...row, op: 'update', oldColumns: old.row.columns });
      continue;
    }
    if (isUpdate && op === 'delete') {
      pendingOld = { row, line };
      continue;
    }
    if (outputOldValue && isUpdate !== (op === 'update')) {
      throw new DecodeError(at, `is-update is ${isUpdate} on a lone ${letter} row`);
    }
    rows.push(row);
  }
  if (pendingOld !== undefined) {
    throw new DecodeError(`${where} line ${pendingOld.line}`, 'the D row of an update (is-update true) has no I row after it');
  }
  return rows;
}

function decodeField(column: ColumnDef, field: Field, at: string, fieldNumber: number): ColumnValue {
  if (!field.quoted && field.text === NULL) return null;
  try {
    switch (columnClass(column.type)) {
      case 'binary':
        return fromBase64(field.text);
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
