/**
 * MemoryStorage: an ExternalStorage in process memory, for tests and examples (`memory://name`), with a
 * hook to make the next calls of an operation fail.
 *
 * Invariant guarded here: stored objects are private copies. Bytes are copied in on put and out on
 * get, so a caller that reuses its buffers can never change what is stored or what another reader got;
 * keys are checked before anything else happens, as in every storage.
 */
import { checkNumber, InvalidOptionError } from '../core/errors.ts';
import { checkKey, checkPrefix, compareKeys } from './keys.ts';
import type { ExternalStorage, ListOptions } from './storage.ts';

/** The operations `failNext` can make fail. */
export type StorageOperation = 'put' | 'get' | 'list' | 'delete' | 'exists';

const OPERATIONS: readonly StorageOperation[] = ['put', 'get', 'list', 'delete', 'exists'];

export interface MemoryStorageOptions {
  /** Names the storage in its uri (`memory://name`) and messages: letters, digits, '.', '_', '-'. Default ''. */
  name?: string;
}

/**
 * An in-memory ExternalStorage: keys kept sorted in UTF-8 byte order, objects copied in and out.
 * Nothing is bounded but by the caller: every object put stays in memory until deleted or closed.
 *
 * @example
 * const storage = new MemoryStorage({ name: 'cdc' });
 * await storage.put('orders/CDC000001.csv', bytes);
 * storage.failNext('put', new Error('injected'), 2); // the next two puts reject with it
 */
export class MemoryStorage implements ExternalStorage {
  readonly uri: string;
  readonly #owner: string;
  readonly #objects = new Map<string, Uint8Array>();
  /** The keys of `#objects`, sorted by `compareKeys`. */
  readonly #keys: string[] = [];
  readonly #failures = new Map<StorageOperation, Error[]>();
  #closed = false;

  constructor(options: MemoryStorageOptions = {}) {
    const name = options.name ?? '';
    if (typeof name !== 'string' || !/^[A-Za-z0-9._-]*$/.test(name)) {
      throw new InvalidOptionError('MemoryStorage', 'name', name, "letters, digits, '.', '_' and '-'");
    }
    this.uri = `memory://${name}`;
    this.#owner = `MemoryStorage ${this.uri}`;
  }

  /**
   * Test hook: the next `times` calls of `operation` (with a valid key, on an open storage) reject with
   * `error` instead of doing anything. Calls queue up: failNext('put', a); failNext('put', b) fails
   * with a, then b. For `list`, the error comes from the first step of the iteration.
   */
  failNext(operation: StorageOperation, error: Error, times = 1): void {
    if (!OPERATIONS.includes(operation)) {
      throw new InvalidOptionError('MemoryStorage.failNext', 'operation', operation, `one of ${OPERATIONS.join(', ')}`);
    }
    if (!(error instanceof Error)) throw new InvalidOptionError('MemoryStorage.failNext', 'error', error, 'an Error');
    checkNumber('MemoryStorage.failNext', 'times', times, { min: 1, integer: true });
    const queued = this.#failures.get(operation) ?? [];
    for (let count = 0; count < times; count++) queued.push(error);
    this.#failures.set(operation, queued);
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    this.#start('put', key);
    const copy = new Uint8Array(data);
    if (!this.#objects.has(key)) this.#keys.splice(this.#firstIndexAtOrAbove(key), 0, key);
    this.#objects.set(key, copy);
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    this.#start('get', key);
    const stored = this.#objects.get(key);
    return stored === undefined ? undefined : new Uint8Array(stored);
  }

  async exists(key: string): Promise<boolean> {
    this.#start('exists', key);
    return this.#objects.has(key);
  }

  async delete(key: string): Promise<void> {
    this.#start('delete', key);
    if (this.#objects.delete(key)) this.#keys.splice(this.#firstIndexAtOrAbove(key), 1);
  }

  /**
   * Keys under `prefix` in UTF-8 byte order, found one at a time from the last key yielded, so keys put
   * or deleted during the iteration are seen or not according to where they sort, as with S3 pages.
   */
  async *list(prefix: string, options: ListOptions = {}): AsyncGenerator<string> {
    this.#checkOpen();
    checkPrefix(prefix, this.#owner);
    this.#injectedFailure('list');
    let after = options.startAfter;
    for (;;) {
      let index = this.#firstIndexAtOrAbove(prefix);
      if (after !== undefined) {
        index = Math.max(index, this.#firstIndexAtOrAbove(after));
        if (this.#keys[index] === after) index++;
      }
      const key = this.#keys[index];
      if (key === undefined || !key.startsWith(prefix)) return;
      yield key;
      after = key;
      this.#checkOpen();
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#objects.clear();
    this.#keys.length = 0;
    this.#failures.clear();
  }

  #start(operation: StorageOperation, key: string): void {
    this.#checkOpen();
    checkKey(key, this.#owner);
    this.#injectedFailure(operation);
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error(`${this.#owner} is closed; open a new storage to use it again`);
  }

  #injectedFailure(operation: StorageOperation): void {
    const error = this.#failures.get(operation)?.shift();
    if (error !== undefined) throw error;
  }

  /** Index of the first key that sorts at or above `key` (binary search). */
  #firstIndexAtOrAbove(key: string): number {
    let low = 0;
    let high = this.#keys.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (compareKeys(this.#keys[middle]!, key) < 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}
