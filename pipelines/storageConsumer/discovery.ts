/**
 * Discovery of the sink's schema files and index files, incrementally (seed 000, P2).
 *
 * A round reads the root `metadata` checkpoint and every live index file. It lists the storage only
 * on the first round, when the sink's checkpoint moved (something new may have been written), or
 * after `relistIntervalMs`; a round that finds nothing new therefore reads only index and metadata
 * files. A listing never walks the data files: at the first data file of a folder it resumes after
 * the folder's last possible data file name (`startAfter`), so its cost follows the number of
 * folders and schema files, not of data files, and every listing is paged by the storage.
 *
 * Invariants guarded here: index files are read after the listing that found the schema files, and
 * a table with a new schema file has its data folders listed again after it was seen, so a schema
 * file (written by the sink only once every earlier row of its table is durable) is never acted on
 * with an index file older than it. A malformed schema or index file key fails the round, and so
 * does a data file numbered 0 (named by an index file, or the first data file a listing meets in a
 * folder) that the consumer has not applied: TiCDC numbers a folder's files from 1 and its consumer
 * reads 1..N, as this one does, so a file 0 (written by a sluice sink before it numbered from 1)
 * would otherwise be lost in silence. A file 0 that an earlier consumer applied (it read from 0; its
 * stream's position is at or past the file, or the folder is done) loses nothing and passes, so a
 * consumer upgraded on a layout it already replayed goes on with the files after it.
 */
import { DecodeError } from '../../lib/codec/changeEvent.ts';
import { FIRST_FILE_INDEX, parseIndexFile, parseMetadataFile, type FolderLayout } from '../../lib/codec/layout.ts';
import type { ExternalStorage } from '../../lib/storage/storage.ts';
import { classifyKey, tableKeyOf, type IndexFolder, type SchemaFileRef } from './pathKey.ts';

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Sorts after every data file name of a folder (CDC + digits or `_`) and before `meta/`. */
const PAST_DATA_FILES = 'CDC~';

export interface DiscoveryOptions {
  /** List again at least this often even when the sink's checkpoint did not move (ms). */
  relistIntervalMs: number;
  /** Index files read at once. */
  readConcurrency: number;
  now: () => number;
  /** The sink's date-separator and enable-partition-separator: how data folders are read. */
  layout: FolderLayout;
}

/** A data file name numbered 0 (at least 6 digits, all zeros); group 1: its dispatcher, if any. */
const FILE_ZERO = /^CDC(?:_(.+)_)?0{6,}\.[A-Za-z0-9]+$/;

/** The error for a data file numbered 0 that was never applied, which a TiCDC consumer never reads. */
function fileZeroError(where: string, name: string): DecodeError {
  return new DecodeError(
    where,
    `${JSON.stringify(name)} is numbered 0, but TiCDC numbers a folder's data files from ${FIRST_FILE_INDEX} and its consumers (sluice replay too) ` +
      `read ${FIRST_FILE_INDEX}..N, so file 0 would never be replayed, and no earlier replay into this database applied it. ` +
      'This layout was written by a sluice sink from before it numbered from 1. To replay it, either rename the data files of each such folder ' +
      'one number up, highest first (CDC000001.csv to CDC000002.csv, then CDC000000.csv to CDC000001.csv), and write the new highest name into ' +
      'its meta/CDC*.index; or write the changes again with the current sink (sluice sink) into an empty location and replay that',
  );
}

/** Which stream of a folder a data file 0 or an index file belongs to: the folder and the dispatcher. */
function streamKey(folderPath: string, dispatcherId: string | undefined): string {
  return `${folderPath}\n${dispatcherId ?? ''}`;
}

/** A live data folder and the newest data file its index file names. */
export interface IndexedFolder {
  folder: IndexFolder;
  /** The index file's data file name (e.g. CDC000012.csv). */
  newestName: string;
  newestIndex: number;
}

export interface DiscoveryRound {
  /** The sink's checkpoint from `metadata`, when there is one. */
  sinkCheckpointTs: bigint | undefined;
  /** Whether this round listed the storage. */
  listed: boolean;
  /** Known schema files not yet done, by table key. */
  schemaFiles: SchemaFileRef[];
  /** Live folders with their index file's value. */
  folders: IndexedFolder[];
  /** Storage calls of this round, for tests and metrics. */
  calls: { lists: number; keysListed: number; indexReads: number; metadataReads: number };
}

/** What the consumer has finished with: discovery stops reading those. */
export interface DoneFilter {
  schemaFileDone(ref: SchemaFileRef): boolean;
  folderDone(folder: IndexFolder): boolean;
  /** Whether data file `fileIndex` of the folder was applied (its stream's position at or past it). */
  fileApplied(folder: IndexFolder, fileIndex: number): boolean;
}

export class Discovery {
  readonly #storage: ExternalStorage;
  readonly #options: DiscoveryOptions;
  readonly #schemaFiles = new Map<string, SchemaFileRef>();
  readonly #folders = new Map<string, IndexFolder>();
  /** Data files numbered 0 a listing met, by `streamKey`, until their folder is known applied. */
  readonly #filesZero = new Map<string, string>();
  #lastSinkTs: bigint | undefined | null = null;
  #lastListAt = -Infinity;

  constructor(storage: ExternalStorage, options: DiscoveryOptions) {
    this.#storage = storage;
    this.#options = options;
  }

  /** The next round lists the storage whatever the sink's checkpoint says. */
  relistNextRound(): void {
    this.#lastListAt = -Infinity;
  }

  /** Known schema files and folders held (bounded by live tables: done ones are forgotten each round). */
  get held(): { schemaFiles: number; folders: number } {
    return { schemaFiles: this.#schemaFiles.size, folders: this.#folders.size };
  }

  async round(done: DoneFilter): Promise<DiscoveryRound> {
    const calls = { lists: 0, keysListed: 0, indexReads: 0, metadataReads: 1 };
    const sinkCheckpointTs = await this.#readMetadata();
    const now = this.#options.now();
    const listed = this.#lastSinkTs === null || sinkCheckpointTs !== this.#lastSinkTs || now - this.#lastListAt >= this.#options.relistIntervalMs;
    if (listed) {
      const newTables = await this.#list('', calls);
      // Folders created while the first listing ran past them, before a schema file it then saw.
      for (const table of newTables) if (!table.endsWith('/')) await this.#list(`${table}/`, calls);
      this.#lastSinkTs = sinkCheckpointTs;
      this.#lastListAt = now;
    }
    for (const [path, ref] of this.#schemaFiles) if (done.schemaFileDone(ref)) this.#schemaFiles.delete(path);
    for (const [path, folder] of this.#folders) {
      if (!done.folderDone(folder)) continue;
      this.#folders.delete(path);
      this.#filesZero.delete(streamKey(folder.folderPath, folder.dispatcherId));
    }

    const folders = await this.#readIndexFiles([...this.#folders.values()], done, calls);
    const schemaFiles = [...this.#schemaFiles.values()];
    return { sinkCheckpointTs, listed, schemaFiles, folders, calls };
  }

  async #readMetadata(): Promise<bigint | undefined> {
    const raw = await this.#storage.get('metadata');
    if (raw === undefined) return undefined;
    return parseMetadataFile(decodeUtf8(raw, 'metadata'), 'metadata');
  }

  /** Lists `prefix` skipping data files; returns the table keys that got a new schema file. */
  async #list(prefix: string, calls: DiscoveryRound['calls']): Promise<Set<string>> {
    const newTables = new Set<string>();
    let startAfter: string | undefined;
    for (;;) {
      calls.lists++;
      let resumeAfter: string | undefined;
      for await (const key of this.#storage.list(prefix, startAfter === undefined ? {} : { startAfter })) {
        calls.keysListed++;
        const classified = classifyKey(key, this.#options.layout);
        if (classified.kind === 'schema') {
          if (!this.#schemaFiles.has(key)) {
            this.#schemaFiles.set(key, classified.ref);
            newTables.add(tableKeyOf(classified.ref.schema, classified.ref.table));
          }
        } else if (classified.kind === 'index') {
          this.#folders.set(key, classified.folder);
        } else if (classified.kind === 'data') {
          // The first data file met in a folder is its lowest name: file 0 when there is one. Whether
          // it was applied is known once the folder's index file is (it is listed after the data).
          const zero = FILE_ZERO.exec(classified.name);
          if (zero !== null) this.#filesZero.set(streamKey(classified.folderPath, zero[1]), key);
          const next = `${classified.folderPath}/${PAST_DATA_FILES}`;
          if (next > key) {
            resumeAfter = next;
            break;
          }
        }
      }
      if (resumeAfter === undefined) return newTables;
      startAfter = resumeAfter;
    }
  }

  async #readIndexFiles(folders: IndexFolder[], done: DoneFilter, calls: DiscoveryRound['calls']): Promise<IndexedFolder[]> {
    const results: IndexedFolder[] = [];
    let next = 0;
    const worker = async () => {
      while (next < folders.length) {
        const folder = folders[next++]!;
        calls.indexReads++;
        const raw = await this.#storage.get(folder.indexPath);
        if (raw === undefined) continue; // removed since the listing: nothing to read there
        const parsed = parseIndexFile(decodeUtf8(raw, folder.indexPath), folder.indexPath);
        if (parsed.dispatcherId !== folder.dispatcherId) {
          throw new DecodeError(folder.indexPath, `the index file names ${JSON.stringify(parsed.name)}, a data file of another dispatcher`);
        }
        this.#checkFileZero(folder, parsed.index < FIRST_FILE_INDEX ? parsed.name : undefined, done);
        results.push({ folder, newestName: parsed.name, newestIndex: parsed.index });
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#options.readConcurrency, folders.length) }, worker));
    return results;
  }

  /**
   * Throws for a data file 0 of `folder`'s stream (met by a listing, or `indexedName` when its index
   * file names one) that was not applied; forgets one that was.
   */
  #checkFileZero(folder: IndexFolder, indexedName: string | undefined, done: DoneFilter): void {
    const stream = streamKey(folder.folderPath, folder.dispatcherId);
    const listedKey = this.#filesZero.get(stream);
    if (listedKey === undefined && indexedName === undefined) return;
    if (done.fileApplied(folder, 0)) {
      this.#filesZero.delete(stream);
      return;
    }
    if (listedKey !== undefined) throw fileZeroError(listedKey, listedKey.slice(listedKey.lastIndexOf('/') + 1));
    throw fileZeroError(folder.indexPath, indexedName!);
  }
}

function decodeUtf8(bytes: Uint8Array, where: string): string {
  try {
    return STRICT_UTF8.decode(bytes);
  } catch {
    throw new DecodeError(where, 'the file is not valid UTF-8');
  }
}
