/**
 * The storage API: one `ExternalStorage` interface, opened from a URI (`file://`, `memory://`, `s3://`,
 * `azure://`) by `openStorage`, plus the parts a caller needs by name.
 *
 * Invariant guarded here: a URI chooses the storage and where it lives, never its credentials (they
 * come from the environment), and every storage opened reports its URI without credentials.
 */
import type { RetryInfo, RetryPolicy } from '../core/retry.ts';
import { AzureStorage } from './azureStorage.ts';
import type { AzureStorageOptions } from './azureStorage.ts';
import { FileStorage } from './fileStorage.ts';
import { MemoryStorage } from './memoryStorage.ts';
import { S3Storage } from './s3Storage.ts';
import type { S3StorageOptions } from './s3Storage.ts';
import type { ExternalStorage } from './storage.ts';
import { parseStorageUri, redactUri } from './uri.ts';

export type { ExternalStorage, ListOptions, RemoteStorageOptions } from './storage.ts';
export { FileStorage, FileStorageError } from './fileStorage.ts';
export { MemoryStorage, type MemoryStorageOptions } from './memoryStorage.ts';
export { S3Storage, S3StorageError, S3_STORAGE_DEFAULTS, type S3StorageOptions } from './s3Storage.ts';
export { AzureStorage, AzureStorageError, AZURE_STORAGE_DEFAULTS, type AzureStorageOptions } from './azureStorage.ts';
export { parseStorageUri, redactUri, InvalidStorageUriError, type StorageLocation } from './uri.ts';
export { checkKey, joinKey, InvalidKeyError } from './keys.ts';
export { isTransientStorageError, StorageRootMissingError } from './transient.ts';

export interface OpenStorageOptions {
  /** Retry policy of s3:// and azure:// requests (partial: the rest from DEFAULT_RETRY_POLICY). */
  retry?: Partial<RetryPolicy>;
  /** Called before each retry's backoff of an s3:// or azure:// request. */
  onRetry?: (info: RetryInfo) => void;
  /** Where credentials are read (AWS_* for s3://, AZURE_STORAGE_* for azure://); default process.env. */
  env?: Record<string, string | undefined>;
  /** Further S3Storage options (thresholds, part size, timeouts); `retry`/`onRetry` here win over the ones above. */
  s3?: Omit<S3StorageOptions, 'env' | 'uri'>;
  /** Further AzureStorage options (thresholds, block size, timeouts); `retry`/`onRetry` here win over the ones above. */
  azure?: Omit<AzureStorageOptions, 'env' | 'uri'>;
}

/**
 * Opens the storage a URI names. Rejects with the parser's `InvalidStorageUriError` (naming the
 * redacted URI and the fix) for a URI it cannot use, and with the adapter's error for missing
 * credentials. Nothing is contacted yet: a missing bucket or container shows on the first call (`checkRoot` asks).
 * Every `memory://name` open gives a new, empty storage (nothing is shared between opens).
 *
 * @example
 * const storage = await openStorage('s3://cdc/tenant-1?endpoint=http://127.0.0.1:9000', {
 *   retry: { maxRetries: 8 },
 *   s3: { multipartThresholdBytes: 16 * 1024 * 1024 },
 * });
 * try {
 *   await storage.put('orders/CDC000001.csv', bytes);
 * } finally {
 *   await storage.close();
 * }
 */
export async function openStorage(uri: string, options: OpenStorageOptions = {}): Promise<ExternalStorage> {
  const location = parseStorageUri(uri);
  // Undefined options mean "the default" in the adapters, so a missing per-scheme one falls through.
  const adapterOptions = <T extends { retry?: Partial<RetryPolicy>; onRetry?: (info: RetryInfo) => void }>(own: T | undefined) => ({
    ...own,
    retry: own?.retry ?? options.retry,
    onRetry: own?.onRetry ?? options.onRetry,
    env: options.env,
    uri: redactUri(uri),
  });
  switch (location.scheme) {
    case 'file':
      return new FileStorage(location.root);
    case 'memory':
      return new MemoryStorage({ name: location.name });
    case 's3':
      return new S3Storage(location, adapterOptions(options.s3));
    case 'azure':
      return new AzureStorage(location, adapterOptions(options.azure));
  }
}
