/**
 * A data file's bytes into rows typed by its table version's schema file (csv or canal-json by the
 * file's extension), or straight into the statements that apply them.
 *
 * Invariant guarded here: every row comes back with the column types of exactly its table version,
 * and a file that is not valid UTF-8, has another extension, or has a malformed record fails with a
 * `DecodeError` naming the file and line; nothing is skipped. `prepareDataFile` gives the statements
 * of exactly the rows `decodeDataFile` gives, and the same errors (its csv fast path hands every
 * doubtful file to `decodeDataFile`).
 */
import { Buffer, isAscii } from 'node:buffer';
import { decodeCanalJsonRows } from '../../lib/codec/canalJson.ts';
import { DecodeError, type DecodedRow, type TableDef } from '../../lib/codec/changeEvent.ts';
import { checkCsvOptions, decodeCsvRows, type CsvOptions } from '../../lib/codec/csv.ts';
import { prepareCsvStatements } from './csvStatements.ts';
import { prepareRows, type PreparedFile, type StatementLimits, type TableWriter } from './rowWriter.ts';

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

function textOf(bytes: Uint8Array, path: string): string {
  // ASCII (the common case) is valid UTF-8 and the cheapest string V8 makes.
  if (isAscii(bytes)) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  try {
    return STRICT_UTF8.decode(bytes);
  } catch {
    throw new DecodeError(path, 'the data file is not valid UTF-8');
  }
}

function decodeText(text: string, path: string, table: TableDef, csv: CsvOptions): DecodedRow[] {
  let rows: DecodedRow[];
  if (path.endsWith('.csv')) rows = decodeCsvRows(text, table, { ...csv, where: path });
  else if (path.endsWith('.json')) rows = decodeCanalJsonRows(text, table, path);
  else throw new DecodeError(path, 'a data file must end with .csv or .json (canal-json)');
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    if (row.schema !== table.schema || row.table !== table.table) {
      throw new DecodeError(`${path} record ${i + 1}`, `the row is for ${row.schema}.${row.table}, but the file is in ${table.schema}.${table.table}'s folder`);
    }
  }
  return rows;
}

/**
 * The rows of a data file of `table`'s version; `csv` is the sink's csv dialect (TiCDC's defaults for
 * what it leaves out). Throws `DecodeError` (file, line) or `InvalidOptionError` for a bad dialect.
 */
export function decodeDataFile(bytes: Uint8Array, path: string, table: TableDef, csv: CsvOptions): DecodedRow[] {
  return decodeText(textOf(bytes, path), path, table, csv);
}

/**
 * The statements of a data file of `writer`'s table version. Throws `DecodeError` (file, line) or
 * `ApplyError`; `csv` is the sink's csv dialect (TiCDC's defaults for what it leaves out). `pause`
 * runs between slices of a big csv file (say, a turn of the event loop).
 */
export async function prepareDataFile(bytes: Uint8Array, path: string, writer: TableWriter, csv: CsvOptions, limits: StatementLimits, pause?: () => Promise<void>): Promise<PreparedFile> {
  const text = textOf(bytes, path);
  if (path.endsWith('.csv')) {
    const steps = prepareCsvStatements(text, writer, checkCsvOptions('prepareDataFile', csv), limits);
    let step = steps.next();
    while (!step.done) {
      if (pause) await pause();
      step = steps.next();
    }
    if (step.value !== undefined) return step.value;
  }
  return prepareRows(writer, decodeText(text, path, writer.def, csv), path, limits);
}
