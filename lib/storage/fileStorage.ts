/**
 * FileStorage: an ExternalStorage in a folder on local disk (`file:///abs/path`), one file per key,
 * '/' in a key making sub-folders.
 *
 * Invariants guarded here: a reader never sees half a file: put writes a temp file (`.tmp-` + random)
 * in the target's folder, fsyncs it, renames it over the target and fsyncs the folder, so after a crash
 * the key holds the old bytes or the new ones, and a leftover temp file is never listed or read. A key
 * never resolves outside the root: keys are checked, and the joined path is checked again.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { InvalidOptionError } from '../core/errors.ts';
import { checkKey, checkPrefix, compareKeys, InvalidKeyError, keyProblem } from './keys.ts';
import type { ExternalStorage, ListOptions } from './storage.ts';
import { StorageRootMissingError } from './transient.ts';

/** Names of files being written start with this; a key whose last segment does is refused. */
export const TEMP_FILE_PREFIX = '.tmp-';

/**
 * A file system call that failed: names the storage, the operation, the key, the file and what to do.
 * `transient` says whether trying again can help (too many open files, a busy or interrupted call);
 * disk full, read-only, permission, a file or folder in the way are permanent.
 */
export class FileStorageError extends Error {
  override readonly name = 'FileStorageError';
  readonly operation: string;
  readonly key: string;
  readonly path: string;
  /** The Node error code (ENOSPC, EACCES...), when there is one. */
  readonly code: string | undefined;
  /** True when another attempt may succeed (see TRANSIENT_FILE_CODES); false for a condition that needs a person. */
  readonly transient: boolean;

  constructor(owner: string, operation: string, key: string, path: string, cause: unknown, hint?: string) {
    const code = errorCode(cause);
    const reason = cause instanceof Error ? cause.message : String(cause);
    const advice = hint ?? (code === undefined ? undefined : HINTS[code]);
    super(`${owner}: cannot ${operation} "${key}" (${path}): ${reason}${advice === undefined ? '' : `; ${advice}`}`, { cause });
    this.operation = operation;
    this.key = key;
    this.path = path;
    this.code = code;
    this.transient = code === undefined || TRANSIENT_FILE_CODES.has(code);
  }
}

/** Codes of file system failures that pass by themselves; every other code is permanent. */
const TRANSIENT_FILE_CODES: ReadonlySet<string> = new Set(['EMFILE', 'ENFILE', 'EAGAIN', 'EBUSY', 'EINTR', 'ETIMEDOUT', 'EIO', 'ESTALE']);

const HINTS: Record<string, string> = {
  ENOSPC: 'the disk is full: free space or move the storage root',
  EDQUOT: 'the disk quota is exhausted: free space or raise the quota',
  EACCES: 'permission denied: let this process read and write the storage root',
  EPERM: 'operation not permitted: let this process read and write the storage root',
  EROFS: 'the file system is read-only: choose a writable storage root',
  ENAMETOOLONG: 'a segment of the key is longer than the file system allows (usually 255 bytes per name)',
  EMFILE: 'too many open files: raise the limit (ulimit -n) or lower the concurrency',
  EISDIR: 'a folder stands where a file must be: remove or move it',
  ENOTDIR: 'a file stands where a folder must be: remove or move it, or choose another storage root',
  EEXIST: 'a file stands where a folder must be: remove or move it, or choose another storage root',
};

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** No object under this path: missing, a folder, below a file, or a name too long to exist here. */
const NOT_AN_OBJECT = new Set(['ENOENT', 'ENOTDIR', 'EISDIR', 'ENAMETOOLONG']);

/**
 * An ExternalStorage in the folder `root` (absolute; created on the first put). Writes are atomic
 * and durable when put resolves (temp file + fsync + rename + folder fsync); listings walk the folders
 * one at a time in UTF-8 byte order, so memory holds one folder's names per level, not the tree.
 * Limits of a file system: a key cannot be both an object and a folder of other keys ("a" and
 * "a/b"), each segment is limited to the file system's name length (usually 255 bytes), and a
 * key's last segment may not start with '.tmp-'. Folders are left in place when their keys are deleted.
 * Do not change a buffer while its put is running.
 *
 * @example
 * const storage = new FileStorage('/srv/sluice/cdc');
 * await storage.put('orders/CDC000001.csv', bytes); // /srv/sluice/cdc/orders/CDC000001.csv
 */
export class FileStorage implements ExternalStorage {
  readonly uri: string;
  /** The absolute, normalised root folder. */
  readonly root: string;
  readonly #owner: string;
  readonly #rootWithSeparator: string;
  #closed = false;

  constructor(root: string) {
    if (typeof root !== 'string' || !isAbsolute(root)) {
      throw new InvalidOptionError('FileStorage', 'root', root, 'an absolute folder path (a relative one would depend on the working directory)');
    }
    this.root = resolve(root);
    this.#rootWithSeparator = this.root.endsWith(sep) ? this.root : this.root + sep;
    this.uri = pathToFileURL(this.root).href;
    this.#owner = `FileStorage ${this.uri}`;
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    const path = this.#pathOf(key);
    const folder = dirname(path);
    const tempPath = join(folder, `${TEMP_FILE_PREFIX}${randomBytes(12).toString('hex')}`);
    let created: string | undefined;
    try {
      created = await mkdir(folder, { recursive: true });
    } catch (error) {
      const objectInTheWay = errorCode(error) === 'ENOTDIR' || errorCode(error) === 'EEXIST';
      throw this.#error('put', key, path, error, objectInTheWay ? await this.#fileInTheWay(folder, key) : undefined);
    }
    try {
      const file = await open(tempPath, 'wx');
      try {
        // One write call, not writeFile's 512 KiB chunks: each await is a turn of the event loop,
        // and a busy loop makes every turn a wait.
        for (let offset = 0; offset < data.byteLength; ) {
          const { bytesWritten } = await file.write(data, offset, data.byteLength - offset, offset);
          offset += bytesWritten;
        }
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(tempPath, path);
    } catch (error) {
      await rm(tempPath, { force: true }).catch(() => undefined); // a leftover temp file is never listed or read
      const folderInTheWay = errorCode(error) === 'EISDIR' || errorCode(error) === 'ENOTEMPTY' || errorCode(error) === 'EEXIST';
      throw this.#error('put', key, path, error, folderInTheWay ? `"${key}" is a folder of other keys, and a file storage cannot hold a key that also prefixes others` : undefined);
    }
    try {
      for (const changed of foldersToSync(folder, created)) await syncFolder(changed);
    } catch (error) {
      throw this.#error('put', key, path, error);
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const path = this.#pathOf(key);
    try {
      return await readFile(path);
    } catch (error) {
      if (NOT_AN_OBJECT.has(errorCode(error)!)) return undefined;
      throw this.#error('get', key, path, error);
    }
  }

  async exists(key: string): Promise<boolean> {
    const path = this.#pathOf(key);
    try {
      return (await stat(path)).isFile();
    } catch (error) {
      if (NOT_AN_OBJECT.has(errorCode(error)!)) return false;
      throw this.#error('check', key, path, error);
    }
  }

  async delete(key: string): Promise<void> {
    const path = this.#pathOf(key);
    try {
      await unlink(path);
    } catch (error) {
      if (NOT_AN_OBJECT.has(errorCode(error)!)) return;
      // macOS says EPERM where Linux says EISDIR: a folder is not an object, so there is nothing to delete.
      if (errorCode(error) === 'EPERM' && (await isFolder(path))) return;
      throw this.#error('delete', key, path, error);
    }
  }

  /**
   * Keys under `prefix` in UTF-8 byte order: walks the folders depth first, each folder's entries
   * sorted with a folder sorting as its name + '/', and yields each key as it is found. Skips temp
   * files, symbolic links and names that are not valid keys.
   */
  async *list(prefix: string, options: ListOptions = {}): AsyncGenerator<string> {
    this.#checkOpen();
    checkPrefix(prefix, this.#owner);
    const slash = prefix.lastIndexOf('/');
    yield* this.#walk(prefix.slice(0, slash + 1), prefix.slice(slash + 1), options.startAfter);
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  /** Rejects with `StorageRootMissingError` when the root folder is not there, `FileStorageError` when it is not a folder or cannot be read. */
  async checkRoot(): Promise<void> {
    this.#checkOpen();
    let found;
    try {
      found = await stat(this.root);
    } catch (error) {
      if (errorCode(error) === 'ENOENT') {
        throw new StorageRootMissingError(this.uri, `the folder ${this.root}`, 'check the path (a sink creates it on its first write)', error);
      }
      throw this.#error('open', '', this.root, error);
    }
    if (!found.isDirectory()) {
      throw this.#error('open', '', this.root, Object.assign(new Error('not a folder'), { code: 'ENOTDIR' }), `${this.root} is a file where the storage's folder must be: give the folder the sink wrote to`);
    }
    try {
      await readdir(this.root);
    } catch (error) {
      throw this.#error('list', '', this.root, error);
    }
  }

  /** The hint for a folder that cannot be made because a file stands on its path: which file, and what to do. */
  async #fileInTheWay(folder: string, key: string): Promise<string> {
    let blocker: string | undefined;
    for (let current = folder; dirname(current) !== current; current = dirname(current)) {
      try {
        if (!(await lstat(current)).isDirectory()) blocker = current;
      } catch {
        // not there (yet): look further up
      }
    }
    if (blocker !== undefined && blocker.startsWith(this.#rootWithSeparator)) {
      return `a key above "${key}" is an object, and a file storage cannot hold a key under another key ("a" and "a/b")`;
    }
    return `${blocker ?? 'a file on the path'} is a file where a folder must be: remove or move it, or choose another storage root`;
  }

  /** Keys in the folder `folderKey` ('' or ending in '/') whose next segment starts with `namePrefix`. */
  async *#walk(folderKey: string, namePrefix: string, startAfter: string | undefined): AsyncGenerator<string> {
    this.#checkOpen();
    const folder = join(this.root, ...folderKey.split('/'));
    let entries;
    try {
      entries = await readdir(folder, { withFileTypes: true });
    } catch (error) {
      if (NOT_AN_OBJECT.has(errorCode(error)!)) return; // no such folder, so no keys under it
      throw this.#error('list', folderKey, folder, error);
    }
    const children: { key: string; isFolder: boolean }[] = [];
    for (const entry of entries) {
      if (!entry.name.startsWith(namePrefix)) continue;
      if (entry.isDirectory()) {
        if (keyProblem(entry.name) === undefined) children.push({ key: `${folderKey}${entry.name}/`, isFolder: true });
      } else if (entry.isFile() && !entry.name.startsWith(TEMP_FILE_PREFIX)) {
        const key = folderKey + entry.name;
        if (keyProblem(key) === undefined) children.push({ key, isFolder: false });
      }
    }
    children.sort((a, b) => compareKeys(a.key, b.key));
    for (const child of children) {
      if (!child.isFolder) {
        if (startAfter === undefined || compareKeys(child.key, startAfter) > 0) yield child.key;
      } else if (startAfter === undefined || startAfter.startsWith(child.key) || compareKeys(startAfter, child.key) < 0) {
        // Every key in the folder starts with child.key: skipped whole when startAfter sorts past them all.
        yield* this.#walk(child.key, '', startAfter);
      }
    }
  }

  /** Checks the storage is open and the key valid, and returns its file, proven to be inside the root. */
  #pathOf(key: string): string {
    this.#checkOpen();
    checkKey(key, this.#owner);
    const name = key.slice(key.lastIndexOf('/') + 1);
    if (name.startsWith(TEMP_FILE_PREFIX)) {
      throw new InvalidKeyError(this.#owner, key, 'reserved-name', `ends in a name starting with '${TEMP_FILE_PREFIX}', which a file storage keeps for files being written`);
    }
    const path = join(this.root, ...key.split('/'));
    if (!path.startsWith(this.#rootWithSeparator)) throw new InvalidKeyError(this.#owner, key, 'outside-root', `resolves to ${path}, outside ${this.root}`);
    return path;
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error(`${this.#owner} is closed; open a new storage to use it again`);
  }

  #error(operation: string, key: string, path: string, cause: unknown, hint?: string): FileStorageError {
    return new FileStorageError(this.#owner, operation, key, path, cause, hint);
  }
}

/**
 * The folders whose entries a put changed, deepest first: the target's folder, and when mkdir made
 * folders (`created` is the topmost one it made), every folder from there up to the one that held it.
 */
function foldersToSync(folder: string, created: string | undefined): string[] {
  const folders = [folder];
  if (created === undefined) return folders;
  const top = dirname(created);
  for (let current = folder; current !== top && dirname(current) !== current; ) {
    current = dirname(current);
    folders.push(current);
  }
  return folders;
}

async function syncFolder(folder: string): Promise<void> {
  const handle = await open(folder, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function isFolder(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isDirectory();
  } catch {
    return false;
  }
}
