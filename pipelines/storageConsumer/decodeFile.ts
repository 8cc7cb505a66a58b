/**
 * A data file's bytes into rows typed by its table version's schema file: csv or canal-json by the
 * file's extension.
 *
 * Invariant guarded here: every row comes back with the column types of exactly its table version,
 * and a file that is not valid UTF-8, has another extension, or has a malformed record fails with a
 * `DecodeError` naming the file and line; nothing is skipped.
 */
import { decodeCanalJsonRows } from '../../lib/codec/canalJson.ts';
import { DecodeError, type DecodedRow, type TableDef } from '../../lib/codec/changeEvent.ts';
import { decodeCsvRows, type CsvOptions } from '../../lib/codec/csv.ts';

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

export function decodeDataFile(bytes: Uint8Array, path: string, table: TableDef, csv: CsvOptions): DecodedRow[] {
  let text: string;
  try {
    text = STRICT_UTF8.decode(bytes);
  } catch {
    throw new DecodeError(path, 'the data file is not valid UTF-8');
  }
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
