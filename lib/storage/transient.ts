/**
 * Which storage failures are worth another attempt: the one rule every retry loop above a storage
 * follows (the sink's writes and its checkpoint read), and the error a storage throws when the place
 * it names (folder, bucket, container) is not there.
 *
 * Invariant guarded here: a failure that a storage marked permanent (`transient: false`: disk full, a
 * read-only file system, no permission, a file where a folder must be, a refused credential or name)
 * is never retried, wherever it sits in a chain of causes; what no storage classified (a storage of a
 * caller's own, a plain Error) stays retryable, as it was before storages classified anything.
 */

/** Errors that are permanent by their type, whether or not they carry a `transient` flag. */
const PERMANENT_NAMES: ReadonlySet<string> = new Set(['InvalidKeyError', 'InvalidOptionError', 'InvalidStorageUriError', 'StorageRootMissingError']);

/**
 * False when `error`, or an error in its `cause` chain, is marked permanent (`transient === false`, or
 * one of the permanent types); true when the first marked one is transient or none is marked.
 *
 * @example
 * await withRetries(`put ${key}`, () => storage.put(key, bytes), { policy, isRetryable: isTransientStorageError });
 */
export function isTransientStorageError(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 16 && typeof current === 'object' && current !== null; depth++) {
    const transient = (current as { transient?: unknown }).transient;
    if (typeof transient === 'boolean') return transient;
    const name = (current as { name?: unknown }).name;
    if (typeof name === 'string' && PERMANENT_NAMES.has(name)) return false;
    current = (current as { cause?: unknown }).cause;
  }
  return true;
}

/** The folder, bucket or container a storage URI names does not exist: nothing can be read from it. */
export class StorageRootMissingError extends Error {
  override readonly name = 'StorageRootMissingError';
  readonly transient = false;
  /** The storage's URI, without credentials. */
  readonly uri: string;

  constructor(uri: string, what: string, hint: string, cause?: unknown) {
    super(`${uri}: ${what} does not exist; ${hint}`, cause === undefined ? undefined : { cause });
    this.uri = uri;
  }
}
