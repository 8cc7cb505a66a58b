/**
 * The storage sink's file output: the only code that writes the sink's files (data files, their index
 * files, schema files and the root `metadata` checkpoint), in the order that keeps the storage
 * consumer safe.
 *
 * Invariants guarded here: a data file is durable before the index file that names it is written, and
 * the call resolves only after both (so `flushed()` can never come early); an index file only ever
 * names a data file that exists and never goes backwards; a data file that a consumer may have read
 * (at or below an index file's value) is never overwritten. The `metadata` checkpoint is written as
 * given: its order (never backwards, one write at a time) is the sink's checkpoint stage's
 * (MetadataCheckpoint). The index file is the truth: per-folder counters held in memory are a cache of it, rebuilt
 * from it after a cold start, after an idle folder's state was reclaimed, and after any failure.
 * A folder's first data file is numbered 1 (`FIRST_FILE_INDEX`), as TiCDC's generator numbers them
 * (pingcap/ticdc pkg/cloudstorage/generator.go: the counter starts at 0 and is incremented before a
 * name is made) and as its consumer reads them (1..N); so does each new date folder.
 *
 * Partitions: change events carry no physical partition id, so this sink never writes a
 * `{partitionId}` folder level (what TiCDC writes for a partitioned table with its default
 * enable-partition-separator=true); a partitioned table's rows go to the table's folder.
 */
import { LRUCache } from 'lru-cache';
import { performance } from 'node:perf_hooks';
import { checkFunction, checkNumber, InvalidOptionError } from '../../lib/core/errors.ts';
import { DecodeError, type DdlEvent, type TableDef } from '../../lib/codec/changeEvent.ts';
import {
  checkFileIndexWidth,
  dataFileName,
  dataFolderPath,
  FIRST_FILE_INDEX,
  formatIndexFile,
  indexFilePath,
  LAYOUT_DEFAULTS,
  metadataFile,
  parseIndexFile,
  type DataFolder,
} from '../../lib/codec/layout.ts';
import { encodeSchemaFile } from '../../lib/codec/schemaFile.ts';
import type { ExternalStorage } from '../../lib/storage/storage.ts';
import { isTransientStorageError } from '../../lib/storage/transient.ts';

const OWNER = 'FileOutput';
const UTF8 = new TextEncoder();
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/** The root checkpoint file of the storage sink. */
export const METADATA_FILE_PATH = 'metadata';

/** One durable write, reported through `onWrite` for metrics and logs. */
export interface FileWriteEvent {
  kind: 'data' | 'index' | 'schema' | 'metadata';
  /** The key written, relative to the storage's root. */
  path: string;
  bytes: number;
  /** Time of the put, on the `now` clock (ms). */
  durationMs: number;
}

export interface FileOutputOptions {
  storage: ExternalStorage;
  /** '.csv' or '.json' (canal-json): the data files' extension. */
  extension: '.csv' | '.json';
  /** Digits of the zero-padded data file index, 6..20 (TiCDC's file-index-width). */
  fileIndexWidth?: number;
  /** A folder's counter state is reclaimed after this many ms without a write (integer >= 1). */
  idleStateMs?: number;
  /** Most idle folders whose counter state is remembered (least recently used forgotten first). */
  maxFolders?: number;
  /** Clock for idleness and write durations, in ms. Default `performance.now` (monotonic). */
  now?: () => number;
  /** Called after each durable write (a data file's two events once both its puts succeeded). */
  onWrite?: (event: FileWriteEvent) => void;
}

export const FILE_OUTPUT_DEFAULTS = Object.freeze({
  fileIndexWidth: LAYOUT_DEFAULTS.fileIndexWidth,
  /** 10 minutes. */
  idleStateMs: 600_000,
  maxFolders: 10_000,
});

/** A write or read that failed: names the storage URI, the operation and the path. */
export class FileOutputError extends Error {
  override readonly name = 'FileOutputError';
  readonly storageUri: string;
  /** What was being done: 'write data file', 'read index file', 'number data file'... */
  readonly operation: string;
  readonly path: string;
  /** Whether calling again may succeed: the storage's failure was transient (isTransientStorageError); a bad index file is not. */
  readonly transient: boolean;

  constructor(storageUri: string, operation: string, path: string, reason: string, cause?: unknown, transient = false) {
    super(`${OWNER} ${storageUri}: cannot ${operation} "${path}": ${reason}`, cause === undefined ? undefined : { cause });
    this.storageUri = storageUri;
    this.operation = operation;
    this.path = path;
    this.transient = transient;
  }
}

/** The counter of one (data folder, dispatcher). */
interface FolderState {
  /** The next data file index, or undefined when it must be rebuilt from the index file. */
  next: number | undefined;
  /**
   * An index this output chose for a write that then failed: its data file is absent or holds that
   * failed attempt, and was never named by an index file, so no consumer read it. It is reused when
   * the index file still stands just below it, instead of skipping past it.
   */
  reusable: number | undefined;
  /** The last write queued on this folder; the next one starts after it settles. */
  tail: Promise<unknown>;
  /** Writes queued or running; the state is reclaimable only at 0. */
  pending: number;
}

interface DataFileTarget {
  folderPath: string;
  indexPath: string;
  dispatcherId: string | undefined;
}

function describeCause(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/**
 * Writes the storage sink's files. Lossless: a call resolves only when its files are durable, and a
 * rejected call leaves every folder consistent, so the caller may simply call again (the storages
 * retry transient failures themselves; this class adds no retry loop). Writes to one data folder (and
 * dispatcher) run one at a time in call order; different folders run in parallel. Queued calls hold
 * only their own bytes: how many there are is the caller's bound. Counter state is kept for at most
 * `maxFolders` idle folders (plus the folders with a write queued or running) and dropped after
 * `idleStateMs` without a write; dropped state costs one index file read on the next write.
 * It must be the only writer of its folders: a retry may rewrite the never-indexed data file of its
 * own failed attempt (the index file still stands just below it), which another writer could own.
 *
 * @example
 * const output = new FileOutput({ storage, extension: '.csv', fileIndexWidth: 6 });
 * const { path } = await output.writeDataFile({ schema: 'shop', table: 'orders', tableVersion: 4350n, date: '2024-05-01' }, bytes);
 * // path === 'shop/orders/4350/2024-05-01/CDC000001.csv'; meta/CDC.index now holds 'CDC000001.csv\n'
 * batch.ack.flushed();
 */
export class FileOutput {
  readonly #storage: ExternalStorage;
  readonly #extension: '.csv' | '.json';
  readonly #fileIndexWidth: number;
  readonly #idleStateMs: number;
  readonly #now: () => number;
  readonly #onWrite: ((event: FileWriteEvent) => void) | undefined;
  /** Folders with a write queued or running, by index file path: never reclaimed. */
  readonly #active = new Map<string, FolderState>();
  /** Idle folders, by index file path: forgotten when idle too long or least recently used. */
  readonly #idle: LRUCache<string, FolderState>;
  #lastPurgeAt: number;

  constructor(options: FileOutputOptions) {
    if (typeof options !== 'object' || options === null) throw new InvalidOptionError(OWNER, 'options', options, 'an object');
    const { storage, extension } = options;
    const isStorage =
      typeof storage === 'object' &&
      storage !== null &&
      ['put', 'get', 'exists'].every((method) => typeof (storage as unknown as Record<string, unknown>)[method] === 'function');
    if (!isStorage) throw new InvalidOptionError(OWNER, 'storage', storage, 'an ExternalStorage (put, get, exists)');
    if (extension !== '.csv' && extension !== '.json') throw new InvalidOptionError(OWNER, 'extension', extension, "'.csv' or '.json'");
    this.#storage = storage;
    this.#extension = extension;
    this.#fileIndexWidth = checkFileIndexWidth(OWNER, options.fileIndexWidth ?? FILE_OUTPUT_DEFAULTS.fileIndexWidth);
    this.#idleStateMs = checkNumber(OWNER, 'idleStateMs', options.idleStateMs ?? FILE_OUTPUT_DEFAULTS.idleStateMs, { min: 1, integer: true });
    const maxFolders = checkNumber(OWNER, 'maxFolders', options.maxFolders ?? FILE_OUTPUT_DEFAULTS.maxFolders, { min: 1, integer: true });
    this.#now = options.now === undefined ? () => performance.now() : checkFunction(OWNER, 'now', options.now);
    this.#onWrite = options.onWrite === undefined ? undefined : checkFunction(OWNER, 'onWrite', options.onWrite);
    // ttlResolution 0: read the clock on every check, so an injected clock takes effect at once. The
    // clock is shifted to start at 1: lru-cache takes an entry set at time 0 for one without a ttl.
    const startedAt = this.#now();
    const now = this.#now;
    this.#idle = new LRUCache({ max: maxFolders, ttl: this.#idleStateMs, ttlResolution: 0, perf: { now: () => now() - startedAt + 1 } });
    this.#lastPurgeAt = startedAt;
  }

  /**
   * Writes `bytes` as the next data file of `folder` (of `dispatcherId`'s files when given: then
   * `CDC_{dispatcherId}_{index}` and `meta/CDC_{dispatcherId}.index`), then its index file; resolves
   * after both are durable. Rejects with `InvalidOptionError` for a bad folder or dispatcher id (before
   * any I/O) and `FileOutputError` when a read or write fails or the index outgrows `fileIndexWidth`.
   */
  async writeDataFile(folder: DataFolder, bytes: Uint8Array, dispatcherId?: string): Promise<{ path: string; index: number }> {
    if (typeof folder !== 'object' || folder === null) throw new InvalidOptionError(`${OWNER}.writeDataFile`, 'folder', folder, 'a DataFolder');
    const folderPath = dataFolderPath(folder, `${OWNER}.writeDataFile`);
    const indexPath = indexFilePath(dispatcherId === undefined ? folder : { ...folder, dispatcherId });
    if (!(bytes instanceof Uint8Array)) throw new InvalidOptionError(`${OWNER}.writeDataFile`, 'bytes', bytes, 'a Uint8Array');
    this.#purgeWhenDue();
    const state = this.#acquire(indexPath);
    const write = state.tail.then(() => this.#writeData(state, { folderPath, indexPath, dispatcherId }, bytes));
    state.tail = write.catch(() => undefined);
    try {
      return await write;
    } finally {
      this.#release(indexPath, state);
    }
  }

  /**
   * Writes a DDL's schema file (table-level, or database-level when it has no table definition), or
   * the schema file of a table first seen without DDL. Rewriting one is harmless: the name fixes the
   * table version and the columns.
   */
  async writeSchemaFile(ddl: DdlEvent | TableDef): Promise<{ path: string }> {
    const { path, text } = encodeSchemaFile(ddl);
    await this.#put('schema', 'write schema file', path, UTF8.encode(text));
    return { path };
  }

  /**
   * Rewrites the root `metadata` file with `{"checkpoint-ts":N}`, as given: a plain write. Call it
   * only when everything at or below `checkpointTs` is durable, one call at a time, never with a value
   * below the file's (the sink's MetadataCheckpoint sees to both). Rejects with `InvalidOptionError`
   * for a value that is not a checkpoint (before any I/O), `FileOutputError` when the put fails.
   */
  async writeCheckpoint(checkpointTs: bigint): Promise<void> {
    await this.#put('metadata', 'write metadata file', METADATA_FILE_PATH, UTF8.encode(metadataFile(checkpointTs)));
  }

  /** Folders whose counter state is held: those with a write queued or running, and the idle ones not yet reclaimed. */
  get heldFolders(): number {
    this.#idle.purgeStale();
    this.#lastPurgeAt = this.#now();
    return this.#active.size + this.#idle.size;
  }

  /** Frees reclaimed states' memory at most once per idle period (purgeStale walks every entry). */
  #purgeWhenDue(): void {
    if (this.#now() - this.#lastPurgeAt < this.#idleStateMs) return;
    this.#idle.purgeStale();
    this.#lastPurgeAt = this.#now();
  }

  #acquire(key: string): FolderState {
    let state = this.#active.get(key);
    if (state === undefined) {
      state = this.#idle.get(key) ?? { next: undefined, reusable: undefined, tail: Promise.resolve(), pending: 0 };
      this.#idle.delete(key);
      this.#active.set(key, state);
    }
    state.pending++;
    return state;
  }

  #release(key: string, state: FolderState): void {
    if (--state.pending > 0) return;
    this.#active.delete(key);
    this.#idle.set(key, state); // restarts its idle time
  }

  /** One data file and its index file; runs alone on its folder. Any failure drops the counter. */
  async #writeData(state: FolderState, target: DataFileTarget, bytes: Uint8Array): Promise<{ path: string; index: number }> {
    const index = state.next ?? (await this.#resumeIndex(state, target));
    const name = this.#dataFileName(target, index);
    const path = `${target.folderPath}/${name}`;
    const indexBytes = UTF8.encode(formatIndexFile(name));
    state.next = undefined;
    state.reusable = index;
    const data = await this.#timed('write data file', path, () => this.#storage.put(path, bytes));
    const written = await this.#timed('write index file', target.indexPath, () => this.#storage.put(target.indexPath, indexBytes));
    state.next = index + 1;
    state.reusable = undefined;
    this.#report({ kind: 'data', path, bytes: bytes.byteLength, durationMs: data.durationMs });
    this.#report({ kind: 'index', path: target.indexPath, bytes: indexBytes.byteLength, durationMs: written.durationMs });
    return { path, index };
  }

  /**
   * The next index of a folder from its index file (`FIRST_FILE_INDEX`, 1, without one), moved past
   * data files that already exist (written before a crash, never indexed) unless it is this output's
   * own failed one.
   */
  async #resumeIndex(state: FolderState, target: DataFileTarget): Promise<number> {
    const { indexPath } = target;
    const { result: raw } = await this.#timed('read index file', indexPath, () => this.#storage.get(indexPath));
    let next = FIRST_FILE_INDEX;
    if (raw !== undefined) {
      let parsed;
      try {
        parsed = parseIndexFile(STRICT_UTF8.decode(raw), indexPath);
      } catch (error) {
        const reason = error instanceof DecodeError ? error.problem : describeCause(error);
        throw new FileOutputError(this.#storage.uri, 'read index file', indexPath, `it is not an index file (${reason}); restore it or remove the folder's data`, error);
      }
      if (parsed.dispatcherId !== target.dispatcherId) {
        const expected = target.dispatcherId === undefined ? 'no dispatcher' : `dispatcher ${JSON.stringify(target.dispatcherId)}`;
        throw new FileOutputError(this.#storage.uri, 'read index file', indexPath, `it names ${JSON.stringify(parsed.name)}, not a data file of ${expected}`);
      }
      next = parsed.index + 1;
    }
    if (state.reusable === next) return next;
    for (;;) {
      const path = `${target.folderPath}/${this.#dataFileName(target, next)}`;
      const { result: found } = await this.#timed('check data file', path, () => this.#storage.exists(path));
      if (!found) return next;
      next++;
    }
  }

  #dataFileName(target: DataFileTarget, index: number): string {
    if (String(index).length > this.#fileIndexWidth) {
      throw new FileOutputError(
        this.#storage.uri,
        'number the next data file in',
        target.folderPath,
        `index ${index} does not fit fileIndexWidth ${this.#fileIndexWidth} (largest ${'9'.repeat(this.#fileIndexWidth)}); raise fileIndexWidth or start a new date folder`,
      );
    }
    return dataFileName({ index, extension: this.#extension, dispatcherId: target.dispatcherId, fileIndexWidth: this.#fileIndexWidth }, OWNER);
  }

  async #put(kind: FileWriteEvent['kind'], operation: string, path: string, bytes: Uint8Array): Promise<void> {
    const { durationMs } = await this.#timed(operation, path, () => this.#storage.put(path, bytes));
    this.#report({ kind, path, bytes: bytes.byteLength, durationMs });
  }

  /** Runs one storage call, timed; its error becomes a FileOutputError naming `operation` and `path`. */
  async #timed<T>(operation: string, path: string, call: () => Promise<T>): Promise<{ result: T; durationMs: number }> {
    const startedAt = this.#now();
    try {
      const result = await call();
      return { result, durationMs: this.#now() - startedAt };
    } catch (error) {
      throw new FileOutputError(this.#storage.uri, operation, path, describeCause(error), error, isTransientStorageError(error));
    }
  }

  /** A throwing `onWrite` rejects the call after its files are durable and the counter moved on. */
  #report(event: FileWriteEvent): void {
    if (this.#onWrite === undefined) return;
    try {
      this.#onWrite(event);
    } catch (error) {
      throw new FileOutputError(this.#storage.uri, 'report (onWrite threw) the write of', event.path, describeCause(error), error);
    }
  }
}
