/**
 * Paths and small files of TiCDC's storage sink layout, as pure functions (no I/O):
 *
 *   {schema}/{table}/{tableVersion}[/{partitionId}][/{date}]/CDC{index}{ext}   data file
 *   .../CDC_{dispatcherId}_{index}{ext}                                        (table across dispatchers)
 *   {data folder}/meta/CDC.index | meta/CDC_{dispatcherId}.index               index file: newest data file
 *   {schema}/{table}/meta/schema_{tableVersion}_{checksum}.json                schema file
 *   {schema}/meta/schema_{version}_{checksum}.json                             database-level schema file
 *   metadata                                                                   {"checkpoint-ts":N}
 *
 * Invariant guarded here: every name put into a path passes `pathNameProblem` (no '/', no '..', no
 * control characters), so a path can never leave its folder, and every name we format parses back
 * into what it was made from. A data folder's levels after the table version are read by the layout
 * configuration (`dateSeparator`, `enablePartitionSeparator`), never by their shape: a partition id
 * and a year are both digits.
 *
 * Data files are numbered from 1 (`FIRST_FILE_INDEX`): TiCDC's generator resets a folder's counter to
 * 0 and increments it before naming a file, and its consumer reads indexes 1..N (pingcap/ticdc
 * pkg/cloudstorage/generator.go `GenerateDataFilePath`, cmd/storage-consumer/consumer.go
 * `diffDMLMaps`), so a file 0 would never be read.
 *
 * Follows TiCDC's pkg/cloudstorage (generator.go, path_key.go). Departure: `dateFolder` formats in
 * UTC, so paths do not depend on the host's time zone; TiCDC formats the PD clock's current time in
 * the local time zone. Not supported: `use-table-id-as-path` (`{tableId}/{version}/...`).
 */
import { InvalidOptionError, checkNumber } from '../core/errors.ts';
import { DecodeError, MAX_UINT64, pathNameProblem } from './changeEvent.ts';
import { JsonNumber, JsonSyntaxError, parseJson } from './json.ts';

export type DateSeparator = 'none' | 'year' | 'month' | 'day';

/** The date-separator values, in TiCDC's order (pingcap/ticdc pkg/config/sink.go `DateSeparator`). */
export const DATE_SEPARATORS: readonly DateSeparator[] = Object.freeze(['none', 'year', 'month', 'day']);

/**
 * TiCDC's defaults for the layout options (pingcap/ticdc pkg/config/replica_config.go:
 * `DateSeparator: day`, `EnablePartitionSeparator: true`; pkg/config `DefaultFileIndexWidth` 20).
 */
export const LAYOUT_DEFAULTS = Object.freeze({
  /** Digits of the zero-padded data file index, 6..20. */
  fileIndexWidth: 20,
  dateSeparator: 'day' as DateSeparator,
  /** A partitioned table's rows go to a `{partitionId}` folder level per physical partition. */
  enablePartitionSeparator: true,
});

/** The index of a folder's first data file (TiCDC increments its counter before naming a file). */
export const FIRST_FILE_INDEX = 1;

export const MIN_FILE_INDEX_WIDTH = 6;
export const MAX_FILE_INDEX_WIDTH = 20;

/** The folder of a table version's data files. */
export interface DataFolder {
  schema: string;
  table: string;
  tableVersion: bigint;
  /** The physical partition id, a folder level only with partition-separator. */
  partitionId?: bigint | number;
  /** `YYYY`, `YYYY-MM` or `YYYY-MM-DD` (see `dateFolder`); absent without date-separator. */
  date?: string;
}

export interface DataFileLocation extends DataFolder {
  index: number;
  /** '.csv' or '.json' (canal-json). */
  extension: string;
  /** Set when a table is spread across several dispatchers: `CDC_{dispatcherId}_{index}`. */
  dispatcherId?: string;
  fileIndexWidth: number;
}

export interface ParsedDataFileName {
  index: number;
  dispatcherId?: string;
  extension: string;
}

const DATE = /^[0-9]{4}(?:-[0-9]{2}(?:-[0-9]{2})?)?$/;
const EXTENSION = /^\.[A-Za-z0-9]+$/;

function checkName(owner: string, option: string, value: unknown): string {
  const problem = pathNameProblem(value);
  if (problem !== undefined) throw new InvalidOptionError(owner, option, value, `a name usable as a path segment (it ${problem})`);
  return value as string;
}

function checkUint64(owner: string, option: string, value: unknown, min = 0n): bigint {
  if (typeof value !== 'bigint' || value < min || value > MAX_UINT64) {
    throw new InvalidOptionError(owner, option, value, `a bigint in [${min}, 2^64-1]`);
  }
  return value;
}

/** Checks a date-separator: 'none', 'year', 'month' or 'day'. */
export function checkDateSeparator(owner: string, option: string, value: unknown): DateSeparator {
  if (typeof value !== 'string' || !(DATE_SEPARATORS as readonly string[]).includes(value)) {
    throw new InvalidOptionError(owner, option, value, "'none', 'year', 'month' or 'day'");
  }
  return value as DateSeparator;
}

/** Checks a file-index-width: an integer in 6..20. */
export function checkFileIndexWidth(owner: string, width: unknown): number {
  return checkNumber(owner, 'fileIndexWidth', width, { min: MIN_FILE_INDEX_WIDTH, max: MAX_FILE_INDEX_WIDTH, integer: true });
}

/**
 * `{schema}/{table}/{tableVersion}[/{partitionId}][/{date}]`.
 *
 * @example dataFolderPath({ schema: 'shop', table: 'orders', tableVersion: 4350n, date: '2024-05-01' }) // 'shop/orders/4350/2024-05-01'
 */
export function dataFolderPath(folder: DataFolder, owner = 'dataFolderPath'): string {
  let path = `${checkName(owner, 'schema', folder.schema)}/${checkName(owner, 'table', folder.table)}/${checkUint64(owner, 'tableVersion', folder.tableVersion)}`;
  if (folder.partitionId !== undefined) {
    const id = folder.partitionId;
    const valid = (typeof id === 'bigint' && id > 0n && id < 1n << 63n) || (typeof id === 'number' && Number.isSafeInteger(id) && id > 0);
    if (!valid) throw new InvalidOptionError(owner, 'partitionId', id, 'a positive integer (int64)');
    path += `/${id}`;
  }
  if (folder.date !== undefined) {
    if (typeof folder.date !== 'string' || !DATE.test(folder.date)) throw new InvalidOptionError(owner, 'date', folder.date, 'YYYY, YYYY-MM or YYYY-MM-DD');
    path += `/${folder.date}`;
  }
  return path;
}

/**
 * A data file's base name: `CDC{index}{ext}` or `CDC_{dispatcherId}_{index}{ext}`, the index
 * zero-padded to `fileIndexWidth` digits (longer when it does not fit, as Go's `%0Nd`).
 */
export function dataFileName(location: Pick<DataFileLocation, 'index' | 'extension' | 'dispatcherId' | 'fileIndexWidth'>, owner = 'dataFileName'): string {
  const width = checkFileIndexWidth(owner, location.fileIndexWidth);
  const index = checkNumber(owner, 'index', location.index, { min: 0, max: Number.MAX_SAFE_INTEGER, integer: true });
  if (typeof location.extension !== 'string' || !EXTENSION.test(location.extension)) {
    throw new InvalidOptionError(owner, 'extension', location.extension, "a '.' and letters or digits, such as '.csv' or '.json'");
  }
  const digits = String(index).padStart(width, '0');
  if (location.dispatcherId === undefined) return `CDC${digits}${location.extension}`;
  return `CDC_${checkName(owner, 'dispatcherId', location.dispatcherId)}_${digits}${location.extension}`;
}

/**
 * A data file's path: `{data folder}/CDC{index}{ext}` or `{data folder}/CDC_{dispatcherId}_{index}{ext}`.
 * Throws `InvalidOptionError` naming the bad field.
 *
 * @example dataFilePath({ schema: 'shop', table: 'orders', tableVersion: 4350n, index: 1, extension: '.csv', fileIndexWidth: 6 })
 * // 'shop/orders/4350/CDC000001.csv'
 */
export function dataFilePath(location: DataFileLocation): string {
  return `${dataFolderPath(location, 'dataFilePath')}/${dataFileName(location, 'dataFilePath')}`;
}

/**
 * The index file of a data folder: `{data folder}/meta/CDC.index`, or `meta/CDC_{dispatcherId}.index`.
 *
 * @example indexFilePath({ schema: 'shop', table: 'orders', tableVersion: 4350n }) // 'shop/orders/4350/meta/CDC.index'
 */
export function indexFilePath(folder: DataFolder & { dispatcherId?: string }): string {
  const dir = dataFolderPath(folder, 'indexFilePath');
  if (folder.dispatcherId === undefined) return `${dir}/meta/CDC.index`;
  return `${dir}/meta/CDC_${checkName('indexFilePath', 'dispatcherId', folder.dispatcherId)}.index`;
}

/**
 * The schema file path: `{schema}/{table}/meta/schema_{version}_{checksum}.json`, or
 * `{schema}/meta/...` when `table` is undefined (database-level DDL). The checksum is written as 10
 * zero-padded digits; the version must be > 0, as in TiCDC.
 */
export function schemaFilePath(schema: string, table: string | undefined, version: bigint, checksum: number): string {
  const owner = 'schemaFilePath';
  const dir = table === undefined ? checkName(owner, 'schema', schema) : `${checkName(owner, 'schema', schema)}/${checkName(owner, 'table', table)}`;
  checkUint64(owner, 'version', version, 1n);
  checkNumber(owner, 'checksum', checksum, { min: 0, max: 0xffffffff, integer: true });
  return `${dir}/meta/schema_${version}_${String(checksum).padStart(10, '0')}.json`;
}

/** `schema_{tableVersion}_{checksum}.json` parsed; throws `DecodeError` naming `where`. */
export function parseSchemaFileName(name: string, where = name): { tableVersion: bigint; checksum: number } {
  const match = /^schema_([0-9]+)_([0-9]{10})\.json$/.exec(name);
  if (match === null) throw new DecodeError(where, `${JSON.stringify(name)} is not a schema file name (schema_{tableVersion}_{10-digit checksum}.json)`);
  const tableVersion = BigInt(match[1]!);
  const checksum = Number(match[2]);
  if (tableVersion > MAX_UINT64) throw new DecodeError(where, `table version ${tableVersion} is past 2^64-1`);
  if (checksum > 0xffffffff) throw new DecodeError(where, `checksum ${checksum} is past 2^32-1`);
  return { tableVersion, checksum };
}

/**
 * A schema file path parsed: `{schema}/meta/schema_...json` (database level, no table) or
 * `{schema}/{table}/meta/schema_...json`. Throws `DecodeError`.
 */
export function parseSchemaFilePath(path: string): { schema: string; table?: string; tableVersion: bigint; checksum: number } {
  const parts = path.split('/');
  if ((parts.length !== 3 && parts.length !== 4) || parts[parts.length - 2] !== 'meta') {
    throw new DecodeError(path, 'a schema file path is {schema}[/{table}]/meta/schema_{tableVersion}_{checksum}.json');
  }
  for (const name of parts.slice(0, -2)) {
    const problem = pathNameProblem(name);
    if (problem !== undefined) throw new DecodeError(path, `path segment ${JSON.stringify(name)} ${problem}`);
  }
  const parsed = parseSchemaFileName(parts[parts.length - 1]!, path);
  return parts.length === 4 ? { schema: parts[0]!, table: parts[1]!, ...parsed } : { schema: parts[0]!, ...parsed };
}

/** How a sink lays out the levels of a data folder after the table version. */
export interface FolderLayout {
  dateSeparator: DateSeparator;
  /** With true, a partitioned table's data folders have a `{partitionId}` level (other tables none). */
  enablePartitionSeparator: boolean;
}

/** The levels of a data folder after the table version, as read by a `FolderLayout`. */
export interface FolderLevels {
  /** The physical partition id, in decimal without leading zeros. */
  partitionId?: string;
  /** '' without a date level. */
  date: string;
}

/** The date folder of each separator (pingcap/ticdc pkg/config/sink.go `GetPattern`). */
const DATE_LEVEL: Readonly<Record<DateSeparator, RegExp | undefined>> = {
  none: undefined,
  year: /^[0-9]{4}$/,
  month: /^[0-9]{4}-[0-9]{2}$/,
  day: /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/,
};
const DATE_SHAPE: Readonly<Record<DateSeparator, string>> = { none: '', year: 'YYYY', month: 'YYYY-MM', day: 'YYYY-MM-DD' };
/** A physical table id: a positive int64, written without leading zeros. */
const PARTITION_LEVEL = /^[1-9][0-9]{0,18}$/;
const MAX_INT64 = (1n << 63n) - 1n;

function isPartitionLevel(level: string): boolean {
  return PARTITION_LEVEL.test(level) && BigInt(level) <= MAX_INT64;
}

/** The levels read by one layout, or undefined when they do not fit it. */
function readLevels(levels: readonly string[], layout: FolderLayout): FolderLevels | undefined {
  const dateLevel = DATE_LEVEL[layout.dateSeparator];
  const datePart = dateLevel === undefined ? 0 : 1;
  const partitionPart = levels.length - datePart;
  if (partitionPart < 0 || partitionPart > (layout.enablePartitionSeparator ? 1 : 0)) return undefined;
  const read: FolderLevels = { date: '' };
  if (partitionPart === 1) {
    if (!isPartitionLevel(levels[0]!)) return undefined;
    read.partitionId = levels[0]!;
  }
  if (dateLevel !== undefined) {
    const date = levels[levels.length - 1]!;
    if (!dateLevel.test(date)) return undefined;
    read.date = date;
  }
  return read;
}

/** 'none', '{partitionId}', '{date YYYY}', ... : the shapes a layout accepts, for messages. */
function expectedShapes(layout: FolderLayout): string {
  const date = layout.dateSeparator === 'none' ? undefined : `{date ${DATE_SHAPE[layout.dateSeparator]}}`;
  if (date === undefined) return layout.enablePartitionSeparator ? 'none or {partitionId}' : 'none';
  return layout.enablePartitionSeparator ? `${date} or {partitionId}/${date}` : date;
}

function describeLevels(read: FolderLevels): string {
  const parts: string[] = [];
  if (read.partitionId !== undefined) parts.push(`partition ${read.partitionId}`);
  if (read.date !== '') parts.push(`date ${read.date}`);
  return parts.length === 0 ? 'no partition, no date' : parts.join(', ');
}

/**
 * The levels of a data folder after its table version (`[{partitionId}][/{date}]`), read by the sink's
 * layout configuration, as TiCDC's consumer reads them (pingcap/ticdc pkg/cloudstorage/path_key.go
 * `ParseIndexFilePath(dateSeparator, path)`): the date separator says whether the last level is a
 * date and of which shape; one level more is a partition id, allowed only with
 * `enablePartitionSeparator`. Levels that do not fit throw a `DecodeError` naming `where`, the
 * levels, what the configuration expects and the settings that would read them.
 *
 * @example parseFolderLevels(['1093'], { dateSeparator: 'none', enablePartitionSeparator: true }, 'db/t/5/1093/meta/CDC.index') // { partitionId: '1093', date: '' }
 */
export function parseFolderLevels(levels: readonly string[], layout: FolderLayout, where: string): FolderLevels {
  const read = readLevels(levels, layout);
  if (read !== undefined) return read;
  const current = `date-separator=${layout.dateSeparator} and enable-partition-separator=${layout.enablePartitionSeparator}`;
  const count = levels.length === 0 ? 'no level' : levels.length === 1 ? 'one level' : `${levels.length} levels`;
  const shown = levels.length === 0 ? '' : ` (${levels.map((level) => JSON.stringify(level)).join('/')})`;
  const readers: string[] = [];
  for (const dateSeparator of DATE_SEPARATORS) {
    for (const enablePartitionSeparator of [layout.enablePartitionSeparator, !layout.enablePartitionSeparator]) {
      const other = readLevels(levels, { dateSeparator, enablePartitionSeparator });
      if (other === undefined) continue;
      const changes: string[] = [];
      if (dateSeparator !== layout.dateSeparator) changes.push(`date-separator=${dateSeparator}`);
      if (enablePartitionSeparator !== layout.enablePartitionSeparator) changes.push(`enable-partition-separator=${enablePartitionSeparator}`);
      readers.push(`${changes.join(', ')} (${describeLevels(other)})`);
      break; // the same separator with the other partition setting adds nothing
    }
  }
  const hint =
    readers.length === 0
      ? 'no date-separator or enable-partition-separator setting reads it: it is not a data folder of a TiCDC-compatible sink'
      : `it reads with ${readers.join(' or with ')}: was the sink run with ${readers.length === 1 ? 'that' : 'one of those'}? Pass the sink's settings (--date-separator, --enable-partition-separator)`;
  throw new DecodeError(where, `${count} after the table version${shown}, but ${current} expect ${expectedShapes(layout)}; ${hint}`);
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/**
 * The date folder of a moment: `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, or '' for 'none'; in UTC (TiCDC uses
 * the local time zone).
 *
 * @example dateFolder(new Date('2024-05-01T23:30:00Z'), 'day') // '2024-05-01'
 */
export function dateFolder(time: Date, separator: DateSeparator): string {
  if (!(time instanceof Date) || Number.isNaN(time.getTime())) throw new InvalidOptionError('dateFolder', 'time', time, 'a valid Date');
  const year = String(time.getUTCFullYear()).padStart(4, '0');
  switch (separator) {
    case 'none':
      return '';
    case 'year':
      return year;
    case 'month':
      return `${year}-${pad2(time.getUTCMonth() + 1)}`;
    case 'day':
      return `${year}-${pad2(time.getUTCMonth() + 1)}-${pad2(time.getUTCDate())}`;
    default:
      throw new InvalidOptionError('dateFolder', 'separator', separator, "'none', 'year', 'month' or 'day'");
  }
}

/** The physical time of a TiDB timestamp (its high bits are ms since the epoch). */
export function commitTsToDate(commitTs: bigint): Date {
  return new Date(Number(commitTs >> 18n));
}

/**
 * A data file's base name parsed: `CDC{index}{ext}` or `CDC_{dispatcherId}_{index}{ext}` (the
 * dispatcher id ends at the last '_'), at least 6 index digits. Throws `DecodeError`.
 *
 * @example parseDataFileName('CDC_7_000042.json') // { index: 42, dispatcherId: '7', extension: '.json' }
 */
export function parseDataFileName(name: string, where = name): ParsedDataFileName {
  const match = /^CDC(?:_(.+)_)?([0-9]+)(\.[A-Za-z0-9]+)$/.exec(name);
  if (match === null) {
    throw new DecodeError(where, `${JSON.stringify(name)} is not a data file name (CDC{index}{ext} or CDC_{dispatcherId}_{index}{ext})`);
  }
  const [, dispatcherId, digits = '', extension = ''] = match;
  if (digits.length < MIN_FILE_INDEX_WIDTH) throw new DecodeError(where, `the index of ${JSON.stringify(name)} has fewer than ${MIN_FILE_INDEX_WIDTH} digits`);
  const index = Number(digits);
  if (!Number.isSafeInteger(index)) throw new DecodeError(where, `the index of ${JSON.stringify(name)} is past 2^53-1`);
  if (dispatcherId === undefined) return { index, extension };
  const problem = pathNameProblem(dispatcherId);
  if (problem !== undefined) throw new DecodeError(where, `the dispatcher id of ${JSON.stringify(name)} ${problem}`);
  return { index, dispatcherId, extension };
}

/** The content of an index file: the base name of the newest data file and a newline. */
export function formatIndexFile(dataFileBaseName: string): string {
  try {
    parseDataFileName(dataFileBaseName);
  } catch (error) {
    if (error instanceof DecodeError) throw new InvalidOptionError('formatIndexFile', 'dataFileBaseName', dataFileBaseName, 'a data file base name such as CDC000001.csv');
    throw error;
  }
  return `${dataFileBaseName}\n`;
}

/** An index file's content parsed (the trailing newline may be missing, as TiCDC allows). Throws `DecodeError`. */
export function parseIndexFile(text: string, where: string): ParsedDataFileName & { name: string } {
  const name = text.endsWith('\n') ? text.slice(0, -1) : text;
  if (name === '') throw new DecodeError(where, 'the index file is empty');
  if (/\s/.test(name)) throw new DecodeError(where, `the index file must hold one data file name and a newline, got ${JSON.stringify(text)}`);
  return { name, ...parseDataFileName(name, where) };
}

/** The root `metadata` file: `{"checkpoint-ts":N}`, as TiCDC's `json.Marshal` writes it (no newline). */
export function metadataFile(checkpointTs: bigint): string {
  return `{"checkpoint-ts":${checkUint64('metadataFile', 'checkpointTs', checkpointTs)}}`;
}

/** The checkpoint ts of a `metadata` file. Throws `DecodeError` naming `where`. */
export function parseMetadataFile(text: string, where: string): bigint {
  let json;
  try {
    json = parseJson(text);
  } catch (error) {
    if (error instanceof JsonSyntaxError) throw new DecodeError(where, `malformed JSON: ${error.message}`);
    throw error;
  }
  const ts = json instanceof Map ? json.get('checkpoint-ts') : undefined;
  if (!(ts instanceof JsonNumber) || !/^[0-9]+$/.test(ts.text) || BigInt(ts.text) > MAX_UINT64) {
    throw new DecodeError(where, `expected {"checkpoint-ts":<uint64>}, got ${JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}...` : text)}`);
  }
  return BigInt(ts.text);
}
