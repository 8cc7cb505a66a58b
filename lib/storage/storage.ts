/**
 * ExternalStorage: the one interface every flow writes files through (local disk, S3, Azure Blob,
 * memory for tests).
 *
 * Invariant guarded here (by every implementation): a reader never sees half an object; put is
 * atomic, get returns exactly the bytes put, and keys are validated relative paths, so a name that
 * becomes a path can never climb out of the storage root.
 */
import type { RetryInfo, RetryPolicy } from '../core/retry.ts';

/** Options every remote storage (S3, Azure Blob) takes. */
export interface RemoteStorageOptions {
  /** Retry policy for every request (partial: the rest from DEFAULT_RETRY_POLICY). */
  retry?: Partial<RetryPolicy>;
  /** Called before each retry's backoff, for logs and metrics. */
  onRetry?: (info: RetryInfo) => void;
  /** The URI reported as `uri` (credentials already removed); default one built from the location. */
  uri?: string;
}

export interface ListOptions {
  /** Only keys that sort after this one (to resume a listing). */
  startAfter?: string;
}

export interface ExternalStorage {
  /** The URI this storage was opened from, without credentials. */
  readonly uri: string;
  /** Writes the whole object atomically: readers see the old object or the new one, never half. */
  put(key: string, data: Uint8Array): Promise<void>;
  /** The object's bytes exactly as put, or undefined when there is no such object. */
  get(key: string): Promise<Uint8Array | undefined>;
  exists(key: string): Promise<boolean>;
  /** Removes the object; removing one that does not exist is not an error. */
  delete(key: string): Promise<void>;
  /**
   * Keys that start with `prefix`, in the storage's ascending order, fetched page by page underneath
   * so a large listing never sits in memory whole. The order is UTF-8 byte order (file, memory, S3),
   * except on Azure Blob, which lists in UTF-16 code-unit order (the two differ only when a
   * character above U+FFFF meets one in U+E000..U+FFFF); `startAfter` follows the same order, so a
   * resumed listing continues exactly after the key it names.
   */
  list(prefix: string, options?: ListOptions): AsyncIterable<string>;
  /**
   * Rejects with `StorageRootMissingError` when the folder, bucket or container the storage lives in
   * does not exist (a reader would find nothing), with the storage's own error when it cannot be
   * reached or read. Optional: a storage without it (memory, a test double) always exists.
   */
  checkRoot?(): Promise<void>;
  /** Releases clients and handles. */
  close(): Promise<void>;
}
