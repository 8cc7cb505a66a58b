/**
 * The order of one round's work (FORMATS.md, storage consumer order): for each (table, version) the
 * schema file's DDL first, then the data files from the last applied index + 1 (the first file is
 * 1, as TiCDC numbers them) to the index file's value. Sort keys, as TiCDC's consumer
 * (pingcap/ticdc pkg/cloudstorage/path_key.go `CompareDMLPathKey`): table version, then the DDL
 * before its DML, then partition (none first), then date folder, then table (then stream and file
 * index). Each partition (and dispatcher) is a stream of its own, with its own position.
 *
 * Invariant guarded here: a data file is planned only after the DDL of its own table version (applied
 * before, or earlier in the same plan), and never at or below its stream's applied position; a DDL
 * is planned only above the table's applied DDL version. Pure: no I/O.
 */
import { FIRST_FILE_INDEX } from '../../lib/codec/layout.ts';
import { comparePositions, type Position } from './checkpointStore.ts';
import type { IndexedFolder } from './discovery.ts';
import { dataFileKey, tableKeyOf, type IndexFolder, type SchemaFileRef } from './pathKey.ts';

export type WorkItem =
  | { kind: 'ddl'; tableKey: string; tableVersion: bigint; ref: SchemaFileRef }
  | { kind: 'data'; tableKey: string; tableVersion: bigint; date: string; stream: string; fileIndex: number; path: string; folder: IndexFolder };

/** What the plan needs to know of a table's applied state. */
export interface AppliedState {
  /** The table's (or database's, for table '') applied DDL version. */
  ddlVersion(tableKey: string): bigint | undefined;
  /** A data stream's applied position. */
  position(tableKey: string, stream: string): Position | undefined;
}

/** The stream of a folder: '' for a plain one, else partition and dispatcher. */
export function streamOf(folder: IndexFolder): string {
  if (folder.partitionId === undefined && folder.dispatcherId === undefined) return '';
  return `${folder.partitionId ?? ''}/${folder.dispatcherId ?? ''}`;
}

export interface RoundPlan {
  items: WorkItem[];
  /** Folders whose version has no schema file yet (held back with everything after it in their table). */
  missingSchema: IndexFolder[];
}

/** Is a data folder finished with (every file of it applied, as far as positions tell)? */
export function folderDone(folder: IndexFolder, state: AppliedState): boolean {
  const key = tableKeyOf(folder.schema, folder.table);
  const ddl = state.ddlVersion(key);
  // A later DDL of the table was applied: the sink wrote it only after this version's rows, and the
  // consumer applied it only after them.
  if (ddl !== undefined && folder.tableVersion < ddl) return true;
  const position = state.position(key, streamOf(folder));
  if (position === undefined) return false;
  return folder.tableVersion < position.tableVersion || (folder.tableVersion === position.tableVersion && folder.date < position.date);
}

/**
 * Has data file `fileIndex` of a folder been applied (the folder done, or its stream's position at or
 * past that file)? Tells whether a file 0 of an old sluice layout was applied by the consumer that
 * read it (which read from 0), so refusing it now would stop a replay that lost nothing.
 */
export function fileApplied(folder: IndexFolder, fileIndex: number, state: AppliedState): boolean {
  if (folderDone(folder, state)) return true;
  const position = state.position(tableKeyOf(folder.schema, folder.table), streamOf(folder));
  return position !== undefined && comparePositions({ tableVersion: folder.tableVersion, date: folder.date, fileIndex }, position) <= 0;
}

export function schemaFileDone(ref: SchemaFileRef, state: AppliedState): boolean {
  const applied = state.ddlVersion(tableKeyOf(ref.schema, ref.table));
  // The applied version's own file stays known: its columns decode that version's data files.
  return applied !== undefined && ref.tableVersion < applied;
}

export function planRound(schemaFiles: readonly SchemaFileRef[], folders: readonly IndexedFolder[], state: AppliedState): RoundPlan {
  const items: WorkItem[] = [];
  const versionsWithSchema = new Map<string, Set<bigint>>();
  for (const ref of schemaFiles) {
    const key = tableKeyOf(ref.schema, ref.table);
    let versions = versionsWithSchema.get(key);
    if (!versions) versionsWithSchema.set(key, (versions = new Set()));
    versions.add(ref.tableVersion);
    const applied = state.ddlVersion(key);
    if (applied === undefined || ref.tableVersion > applied) items.push({ kind: 'ddl', tableKey: key, tableVersion: ref.tableVersion, ref });
  }
  const missingSchema: IndexFolder[] = [];
  /** Per table, the lowest version whose data cannot go yet: nothing of that table at or after it runs. */
  const holdFrom = new Map<string, bigint>();
  for (const { folder, newestName, newestIndex } of folders) {
    const key = tableKeyOf(folder.schema, folder.table);
    if (folderDone(folder, state)) continue;
    const stream = streamOf(folder);
    const ddl = state.ddlVersion(key);
    const known = versionsWithSchema.get(key)?.has(folder.tableVersion) === true;
    if (!known && !(ddl !== undefined && ddl === folder.tableVersion)) {
      missingSchema.push(folder);
      const held = holdFrom.get(key);
      if (held === undefined || folder.tableVersion < held) holdFrom.set(key, folder.tableVersion);
      continue;
    }
    const position = state.position(key, stream);
    let first = FIRST_FILE_INDEX;
    if (position !== undefined && comparePositions({ tableVersion: folder.tableVersion, date: folder.date, fileIndex: FIRST_FILE_INDEX }, position) <= 0) {
      first = position.fileIndex + 1;
    }
    for (let index = first; index <= newestIndex; index++) {
      items.push({
        kind: 'data',
        tableKey: key,
        tableVersion: folder.tableVersion,
        date: folder.date,
        stream,
        fileIndex: index,
        path: dataFileKey(folder, newestName, index),
        folder,
      });
    }
  }
  const kept = holdFrom.size === 0 ? items : items.filter((item) => {
    const held = holdFrom.get(item.tableKey);
    return held === undefined || item.tableVersion < held;
  });
  kept.sort(compareItems);
  return { items: kept, missingSchema };
}

function compareItems(a: WorkItem, b: WorkItem): number {
  if (a.tableVersion !== b.tableVersion) return a.tableVersion < b.tableVersion ? -1 : 1;
  if (a.kind !== b.kind) return a.kind === 'ddl' ? -1 : 1;
  const partition = comparePartitions(a.kind === 'data' ? a.folder.partitionId : undefined, b.kind === 'data' ? b.folder.partitionId : undefined);
  if (partition !== 0) return partition;
  const dateA = a.kind === 'data' ? a.date : '';
  const dateB = b.kind === 'data' ? b.date : '';
  if (dateA !== dateB) return dateA < dateB ? -1 : 1;
  if (a.tableKey !== b.tableKey) return a.tableKey < b.tableKey ? -1 : 1;
  if (a.kind === 'data' && b.kind === 'data') {
    if (a.stream !== b.stream) return a.stream < b.stream ? -1 : 1;
    return a.fileIndex - b.fileIndex;
  }
  return 0;
}

/** Orders partition ids (decimal, no leading zeros) by number; no partition first, as TiCDC's 0. */
function comparePartitions(a: string | undefined, b: string | undefined): number {
  if (a === b) return 0;
  if (a === undefined) return -1;
  if (b === undefined) return 1;
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : 1;
}
