/**
 * The storage consumer's reading of the sink layout's paths: which keys are schema files, index
 * files and data files, and which table, version and date folder each belongs to.
 *
 * Invariant guarded here: a key is classified from its own segments only (no listing context), and a
 * key that looks like one of ours but does not parse fails with a `DecodeError` naming it, rather
 * than being skipped: a skipped index file would silently lose its rows.
 *
 * Folder levels after the table version (`[{partitionId}][/{date}]`) are read by the sink's layout
 * configuration (`FolderLayout`: date-separator and enable-partition-separator), as TiCDC's consumer
 * does, never guessed from their shape: `…/{version}/1093/` is a partition with date-separator=none
 * and a year with date-separator=year. Levels that do not fit the configuration fail the key with a
 * `DecodeError` saying which setting would read them.
 */
import { DecodeError, pathNameProblem } from '../../lib/codec/changeEvent.ts';
import { parseDataFileName, parseFolderLevels, parseSchemaFilePath, type FolderLayout } from '../../lib/codec/layout.ts';

/** One data folder (and dispatcher), as named by its index file. */
export interface IndexFolder {
  /** The index file's key. */
  indexPath: string;
  /** `{schema}/{table}/{version}[/{partition}][/{date}]` */
  folderPath: string;
  schema: string;
  table: string;
  tableVersion: bigint;
  /** The physical partition id (decimal, no leading zeros); only with enable-partition-separator. */
  partitionId?: string;
  /** '' without a date level. */
  date: string;
  /** Set for `meta/CDC_{dispatcherId}.index`. */
  dispatcherId?: string;
}

export interface SchemaFileRef {
  path: string;
  schema: string;
  /** Absent for a database-level schema file. */
  table?: string;
  tableVersion: bigint;
  checksum: number;
}

export type LayoutKey =
  | { kind: 'metadata' }
  | { kind: 'schema'; ref: SchemaFileRef }
  | { kind: 'index'; folder: IndexFolder }
  | { kind: 'data'; folderPath: string; name: string }
  | { kind: 'other' };

const DIGITS = /^[0-9]+$/;
const INDEX_NAME = /^CDC(?:_(.+))?\.index$/;

/** The key of the table a schema file or data folder belongs to ('' table: database level). */
export function tableKeyOf(schema: string, table: string | undefined): string {
  return `${schema}/${table ?? ''}`;
}

/**
 * Classifies a key of the sink's storage; index file keys are read by `layout`. Throws `DecodeError`
 * for a malformed schema or index file key.
 */
export function classifyKey(key: string, layout: FolderLayout): LayoutKey {
  if (key === 'metadata') return { kind: 'metadata' };
  const parts = key.split('/');
  const name = parts[parts.length - 1]!;
  const inMeta = parts[parts.length - 2] === 'meta';
  if (inMeta && name.startsWith('schema_') && name.endsWith('.json')) {
    const parsed = parseSchemaFilePath(key);
    const ref: SchemaFileRef = { path: key, schema: parsed.schema, tableVersion: parsed.tableVersion, checksum: parsed.checksum };
    if (parsed.table !== undefined) ref.table = parsed.table;
    return { kind: 'schema', ref };
  }
  if (inMeta && name.endsWith('.index')) return { kind: 'index', folder: parseIndexPath(key, layout) };
  if (!inMeta && name.startsWith('CDC') && parts.length >= 4) return { kind: 'data', folderPath: parts.slice(0, -1).join('/'), name };
  return { kind: 'other' };
}

/**
 * `{schema}/{table}/{version}[/{partitionId}][/{date}]/meta/CDC[_{dispatcher}].index` parsed, the
 * levels after the version read by `layout`. Throws `DecodeError` naming the key.
 *
 * @example parseIndexPath('db/t/5/1093/meta/CDC.index', { dateSeparator: 'none', enablePartitionSeparator: true }) // partitionId '1093', date ''
 */
export function parseIndexPath(key: string, layout: FolderLayout): IndexFolder {
  const parts = key.split('/');
  const name = parts[parts.length - 1]!;
  const match = INDEX_NAME.exec(name);
  if (match === null) throw new DecodeError(key, `${JSON.stringify(name)} is not an index file name (CDC.index or CDC_{dispatcherId}.index)`);
  const levels = parts.slice(0, -2);
  if (levels.length < 3 || levels.length > 5) {
    throw new DecodeError(key, 'an index file path is {schema}/{table}/{tableVersion}[/{partitionId}][/{date}]/meta/CDC.index');
  }
  for (const level of levels) {
    const problem = pathNameProblem(level);
    if (problem !== undefined) throw new DecodeError(key, `path segment ${JSON.stringify(level)} ${problem}`);
  }
  const [schema, table, version, ...rest] = levels as [string, string, string, ...string[]];
  if (!DIGITS.test(version)) throw new DecodeError(key, `table version ${JSON.stringify(version)} is not a number`);
  const { partitionId, date } = parseFolderLevels(rest, layout, key);
  const folder: IndexFolder = { indexPath: key, folderPath: levels.join('/'), schema, table, tableVersion: BigInt(version), date };
  if (partitionId !== undefined) folder.partitionId = partitionId;
  if (match[1] !== undefined) folder.dispatcherId = match[1];
  return folder;
}

/** The key of data file `index` of a folder, with the width and extension of the index file's name. */
export function dataFileKey(folder: IndexFolder, indexFileName: string, index: number): string {
  const parsed = parseDataFileName(indexFileName, folder.indexPath);
  const digits = /([0-9]+)\.[A-Za-z0-9]+$/.exec(indexFileName)![1]!;
  const padded = String(index).padStart(digits.length, '0');
  const prefix = parsed.dispatcherId === undefined ? 'CDC' : `CDC_${parsed.dispatcherId}_`;
  return `${folder.folderPath}/${prefix}${padded}${parsed.extension}`;
}
