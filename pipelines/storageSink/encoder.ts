/**
 * The storage sink's row encoder: one row change becomes the text it adds to a data file (csv or
 * canal-json, as TiCDC writes them) and the data folder and dispatcher whose file it belongs to
 * (the sink then keeps the text's bytes in its RowArena until the file is written).
 *
 * Invariant guarded here: a row is encoded only after it passed `checkChangeEvent`, with the table
 * definition of exactly its table version, into the folder of that version and of its commit's date
 * (UTC).
 */
import { checkCsvOptions, createCsvRowEncoder, CSV_DEFAULTS, csvHeaderLine, type CsvOptions } from '../../lib/codec/csv.ts';
import { CANAL_JSON_DEFAULTS, checkCanalJsonOptions, encodeCanalJsonRow } from '../../lib/codec/canalJson.ts';
import { checkChangeEvent, InvalidChangeEventError, type ChangeEvent, type RowChange } from '../../lib/codec/changeEvent.ts';
import { commitTsToDate, dataFolderPath, dateFolder, LAYOUT_DEFAULTS, type DataFolder, type DateSeparator } from '../../lib/codec/layout.ts';
import { checkFunction, InvalidOptionError } from '../../lib/core/errors.ts';
import { TableRegistry } from './tableRegistry.ts';

const OWNER = 'createRowEncoder';
const DAY_MS = 86_400_000;
const DATE_SEPARATORS: ReadonlySet<string> = new Set(['none', 'year', 'month', 'day']);

export type RowProtocol = 'csv' | 'canal-json';

export interface RowEncoderOptions {
  protocol: RowProtocol;
  /** The date level of the data folders: 'none', 'year', 'month' or 'day' (UTC). Default 'day'. */
  dateSeparator?: DateSeparator;
  /** Where each row's table definition comes from (by its table version). */
  tables: TableRegistry;
  /** csv only: the csv dialect (see CsvOptions). Default TiCDC's (`CSV_DEFAULTS`, include-commit-ts false). */
  csv?: CsvOptions;
  /**
   * canal-json only: `enableTidbExtension` writes `_tidb: {"commitTs": N}` in every row (TiCDC's
   * `enable-tidb-extension`). Default true (TiCDC's default is false): without it rows carry no commit
   * ts and a consumer can only apply files in order, with no dedupe by commit ts. `terminator` ends
   * each row (TiCDC's sink `terminator`): control characters only, default '\r\n' (see
   * checkCanalJsonOptions).
   */
  canalJson?: { enableTidbExtension?: boolean; terminator?: string };
  /**
   * canal-json only: the clock of the `ts` field (build time), ms since the epoch. Default: none, `ts`
   * is the commit's physical time, so the bytes are a pure function of the row.
   */
  buildTimeMs?: () => number;
  /**
   * The caller has already checked every row, well formed and its column set exactly its table
   * definition's (the storage sink does at admission, naming each event by its input position), so
   * the encoder does not check that again. Default false.
   */
  rowsChecked?: boolean;
}

export const ROW_ENCODER_DEFAULTS = Object.freeze({
  dateSeparator: LAYOUT_DEFAULTS.dateSeparator,
  csv: CSV_DEFAULTS,
  canalJson: CANAL_JSON_DEFAULTS,
});

/** One row, encoded, with the data file it belongs to: the (folder, dispatcher) pair. */
export interface EncodedRow {
  kind: 'row';
  folder: DataFolder;
  dispatcherId: string;
  /** The row's record(s), each ending with the terminator (an update with old values is two csv records). */
  text: string;
  /** The UTF-8 length of `text`: the bytes the row adds to its data file. */
  bytes: number;
}

export type RowEncoder = (row: RowChange) => EncodedRow;

/**
 * Creates the encoder of the storage sink's rows. Options are checked here; `encode` throws
 * `InvalidChangeEventError` (naming the event) for a malformed row or one that does not match its
 * table definition, and `UnknownTableVersionError` when its table version has no definition. Pure
 * apart from the registry lookup (and `buildTimeMs` when given): nothing is lost or buffered.
 *
 * @example
 * const encode = createRowEncoder({ protocol: 'csv', dateSeparator: 'day', tables });
 * const { folder, dispatcherId, text, bytes } = encode(row); // folder shop/orders/4350/2024-05-01
 *
 * Options: `protocol` ('csv' | 'canal-json'), `dateSeparator`, `tables`, `csv` (csv options),
 * `canalJson` ({ enableTidbExtension, default true; terminator, default '\r\n' }), `buildTimeMs`
 * (canal-json `ts` clock, ms).
 */
export function createRowEncoder(options: RowEncoderOptions): RowEncoder {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError(OWNER, 'options', options, 'an object');
  const { protocol, tables } = options;
  if (protocol !== 'csv' && protocol !== 'canal-json') throw new InvalidOptionError(OWNER, 'protocol', protocol, "'csv' or 'canal-json'");
  const dateSeparator = options.dateSeparator ?? ROW_ENCODER_DEFAULTS.dateSeparator;
  if (!DATE_SEPARATORS.has(dateSeparator)) throw new InvalidOptionError(OWNER, 'dateSeparator', dateSeparator, "'none', 'year', 'month' or 'day'");
  if (!(tables instanceof TableRegistry)) throw new InvalidOptionError(OWNER, 'tables', tables, 'a TableRegistry');
  if (options.csv !== undefined && protocol !== 'csv') throw new InvalidOptionError(OWNER, 'csv', options.csv, `absent with protocol '${protocol}'`);
  if (options.buildTimeMs !== undefined && protocol !== 'canal-json') {
    throw new InvalidOptionError(OWNER, 'buildTimeMs', options.buildTimeMs, `absent with protocol '${protocol}'`);
  }
  const csv = checkCsvOptions(OWNER, options.csv, ROW_ENCODER_DEFAULTS.csv);
  const encodeCsv = protocol === 'csv' ? createCsvRowEncoder(csv, OWNER, options.rowsChecked === true) : undefined;
  const buildTimeMs = options.buildTimeMs === undefined ? undefined : checkFunction(OWNER, 'buildTimeMs', options.buildTimeMs);
  if (options.canalJson !== undefined && protocol !== 'canal-json') throw new InvalidOptionError(OWNER, 'canalJson', options.canalJson, `absent with protocol '${protocol}'`);
  const canalJson = checkCanalJsonOptions(OWNER, options.canalJson, ROW_ENCODER_DEFAULTS.canalJson);
  const { enableTidbExtension } = canalJson;
  const canalJsonOptions = Object.freeze({ enableTidbExtension });
  // Every row's text ends with this: the csv terminator, or the canal-json one after an object.
  const terminator = protocol === 'csv' ? csv.terminator : canalJson.terminator;
  const lastCode = terminator.charCodeAt(terminator.length - 1);

  const encodeText = (row: RowChange): string => {
    const table = tables.definitionFor(row);
    if (encodeCsv !== undefined) return encodeCsv(row, table);
    return encodeCanalJsonRow(row, table, buildTimeMs === undefined ? canalJsonOptions : { enableTidbExtension, buildTimeMs: Math.floor(buildTimeMs()) }) + terminator;
  };

  const rowsChecked = options.rowsChecked === true;

  // Rows come in runs of one table and one day: the last date folder and data folder are reused
  // (a folder is never changed once made, so sharing it is safe).
  let dayStartMs = 0;
  let dayEndMs = -1;
  let dayFolder = '';
  const dateOf = (commitTs: bigint): string => {
    const ms = Number(commitTs >> 18n);
    if (ms < dayStartMs || ms >= dayEndMs) {
      dayStartMs = Math.floor(ms / DAY_MS) * DAY_MS;
      dayEndMs = dayStartMs + DAY_MS;
      dayFolder = dateFolder(commitTsToDate(commitTs), dateSeparator);
    }
    return dayFolder;
  };
  let lastFolder: DataFolder | undefined;

  return (row: RowChange): EncodedRow => {
    if (!rowsChecked) checkChangeEvent(row as unknown, 'storage sink encoder');
    const event: ChangeEvent = row;
    if (event.kind !== 'row') throw new InvalidChangeEventError(event, 'storage sink encoder', 'expected a row change; DDL goes to the schema file, not a data file');
    const date = dateOf(event.commitTs);
    let folder = lastFolder;
    if (folder === undefined || folder.schema !== event.schema || folder.table !== event.table || folder.tableVersion !== event.tableVersion || (folder.date ?? '') !== date) {
      folder = { schema: event.schema, table: event.table, tableVersion: event.tableVersion };
      if (date !== '') folder.date = date;
      lastFolder = folder;
    }
    const text = encodeText(event);
    // Reading a character flattens the text now, while it is young: built by concatenation it is a
    // tree of dozens of small strings, which every collection would copy while a caller holds the
    // row (measured: 471 B per csv row of ~200 B as a tree, 235 B flat).
    if (text.charCodeAt(text.length - 1) !== lastCode) throw new Error(`${OWNER}: an encoded row must end with its terminator`);
    return { kind: 'row', folder, dispatcherId: event.dispatcherId, text, bytes: Buffer.byteLength(text, 'utf8') };
  };
}

/**
 * The key of the data file a row goes to: its folder's path and its dispatcher, so rows with equal
 * keys (and only those) may share a data file. Throws `InvalidOptionError` for a bad folder.
 *
 * @example folderKey({ schema: 'shop', table: 'orders', tableVersion: 4350n, date: '2024-05-01' }, '7') // 'shop/orders/4350/2024-05-01\t7'
 */
export function folderKey(folder: DataFolder, dispatcherId: string): string {
  // A tab cannot appear in a checked name, so path and dispatcher never run into each other.
  return `${dataFolderPath(folder, 'folderKey')}\t${dispatcherId}`;
}

/** True when two data folders are the same folder (the same object, or equal fields). */
export function sameFolder(a: DataFolder, b: DataFolder): boolean {
  return (
    a === b ||
    (a.schema === b.schema && a.table === b.table && a.tableVersion === b.tableVersion && a.partitionId === b.partitionId && a.date === b.date)
  );
}

/**
 * The header line each data file of a table version starts with (csv with `outputFieldHeader`), as
 * UTF-8 bytes, or undefined when data files have none (canal-json, or the option off). The sink's
 * writer puts it before the rows of every data file it writes, as TiCDC does (one header per file).
 * Throws `InvalidOptionError` for a bad `csv` and `UnknownTableVersionError` for a folder whose table
 * version has no definition.
 *
 * @example const header = createFileHeader({ protocol: 'csv', csv: { outputFieldHeader: true }, tables }); header?.(folder)
 */
export function createFileHeader(options: Pick<RowEncoderOptions, 'protocol' | 'csv' | 'tables'>): ((folder: DataFolder) => Buffer) | undefined {
  if (options.protocol !== 'csv') return undefined;
  const csv = checkCsvOptions('createFileHeader', options.csv, ROW_ENCODER_DEFAULTS.csv);
  if (!csv.outputFieldHeader) return undefined;
  const headers = new Map<string, Buffer>();
  return (folder) => {
    const key = `${folder.schema}\t${folder.table}\t${folder.tableVersion}`;
    let header = headers.get(key);
    if (header === undefined) {
      header = Buffer.from(csvHeaderLine(options.tables.definitionAt(folder.schema, folder.table, folder.tableVersion), csv), 'utf8');
      headers.set(key, header);
    }
    return header;
  };
}
