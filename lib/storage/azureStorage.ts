/**
 * AzureStorage: ExternalStorage over @azure/storage-blob, block blobs in one container under one
 * prefix (Azure Storage, or the azurite emulator).
 *
 * Invariant guarded here: a blob is either absent or holds exactly the bytes put. A put is one Put
 * Blob, or blocks staged under IDs unique to this put and made visible at once by Put Block List;
 * a get is one download whose length is checked. Retries (one policy, `withRetries`; the SDK's own
 * are off) cover throttling, 5xx, timeouts and dropped connections, never other 4xx.
 */
import { randomBytes } from 'node:crypto';
import { AnonymousCredential, BlobServiceClient, ContainerClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import type { StoragePipelineOptions } from '@azure/storage-blob';
import { checkFunction, checkNumber } from '../core/errors.ts';
import { checkRetryPolicy, withRetries } from '../core/retry.ts';
import type { RetryInfo, RetryPolicy } from '../core/retry.ts';
import { checkKey, checkPrefix, joinKey } from './keys.ts';
import type { ExternalStorage, ListOptions, RemoteStorageOptions } from './storage.ts';
import { StorageRootMissingError } from './transient.ts';
import type { AzureLocation } from './uri.ts';

const MIB = 1024 * 1024;
/** Azure's most blocks per blob and largest block. */
const MAX_BLOCKS = 50_000;
const MAX_BLOCK_BYTES = 4000 * MIB;

export interface AzureStorageOptions extends RemoteStorageOptions {
  /** Bodies larger than this many bytes go up as staged blocks + commit; smaller ones as one Put Blob. */
  multipartThresholdBytes?: number;
  /** Size of each staged block in bytes (raised when the blob would need > 50 000 blocks). */
  blockSizeBytes?: number;
  /** Blocks of one blob staged at the same time. */
  blockConcurrency?: number;
  /** Blobs per List Blobs page (1..5000): how much of a listing is held in memory at once. */
  listPageSize?: number;
  /** Longest one request may take before the attempt fails as a timeout (ms). */
  requestTimeoutMs?: number;
  /**
   * Where AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY, are read
   * (default process.env). Credentials never come from the URI.
   */
  env?: Record<string, string | undefined>;
}

export const AZURE_STORAGE_DEFAULTS = Object.freeze({
  multipartThresholdBytes: 8 * MIB,
  blockSizeBytes: 8 * MIB,
  blockConcurrency: 4,
  listPageSize: 1000,
  requestTimeoutMs: 120_000,
});

/** A request Azure refused for a reason retrying cannot fix (auth, no such container, bad request). */
export class AzureStorageError extends Error {
  override readonly name = 'AzureStorageError';
  readonly operation: string;
  readonly container: string;
  /** The blob name in the container (storage prefix included), or the listing prefix. */
  readonly key: string;
  /** HTTP status of the response, when there was one. */
  readonly statusCode: number | undefined;
  /** Azure's error code (x-ms-error-code), e.g. ContainerNotFound, AuthorizationFailure. */
  readonly errorCode: string | undefined;
  /** Never worth another attempt: the storage retried what could pass before this was made. */
  readonly transient = false;

  constructor(operation: string, container: string, key: string, cause: unknown) {
    const statusCode = statusOf(cause);
    const errorCode = errorCodeOf(cause);
    const hint = azureHint(statusCode, errorCode, container);
    super(
      `AzureStorage: ${operation} azure://${container}/${key} failed` +
        `${statusCode === undefined ? '' : ` with HTTP ${statusCode}`}${errorCode === undefined ? '' : ` (${errorCode})`}: ` +
        describeError(cause) + (hint === undefined ? '' : `; ${hint}`),
      { cause },
    );
    this.operation = operation;
    this.container = container;
    this.key = key;
    this.statusCode = statusCode;
    this.errorCode = errorCode;
  }
}

/** What a person can do about a refusal, by status and Azure error code. */
function azureHint(statusCode: number | undefined, errorCode: string | undefined, container: string): string | undefined {
  if (errorCode === 'ContainerNotFound') return `the container ${container} does not exist: create it or fix the URI`;
  if (statusCode === 401 || statusCode === 403) {
    return `Azure refused the credentials: check AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY, and that they may use container ${container}`;
  }
  if (statusCode === 400) return 'Azure refused the request as malformed (a blob or container name it does not accept): check the URI';
  return undefined;
}

/**
 * Blobs in one container under one prefix. Keys are relative to the prefix.
 *
 * Lossless: a put either commits whole or throws (staged blocks that were never committed are
 * discarded by Azure after a week). Not lossless: two concurrent puts of one key leave whichever
 * committed last. Listing order is Azure's: UTF-16 code units (JavaScript string order), which differs
 * from UTF-8 byte order only when a character above U+FFFF meets one in U+E000..U+FFFF; `startAfter`
 * follows that same order. Azure's flat listing has no start-after, so it skips the earlier keys of
 * the prefix client-side: resuming deep into a huge prefix still reads its pages.
 *
 * @example
 * // AZURE_STORAGE_CONNECTION_STRING=... in the environment
 * const storage = new AzureStorage({ scheme: 'azure', container: 'cdc', prefix: 'tenant-1' });
 * await storage.put('orders/CDC000001.csv', bytes);
 */
export class AzureStorage implements ExternalStorage {
  readonly uri: string;
  readonly container: string;
  /** The storage prefix ('' for the whole container). */
  readonly prefix: string;
  /** The SDK client of the container (e.g. to create it in tests). */
  readonly containerClient: ContainerClient;
  readonly #retryPolicy: RetryPolicy;
  readonly #onRetry: ((info: RetryInfo) => void) | undefined;
  readonly #multipartThresholdBytes: number;
  readonly #blockSizeBytes: number;
  readonly #blockConcurrency: number;
  readonly #listPageSize: number;
  readonly #requestTimeoutMs: number;
  #closed = false;

  constructor(location: AzureLocation, options: AzureStorageOptions = {}) {
    const owner = 'AzureStorage';
    this.#retryPolicy = checkRetryPolicy(owner, options.retry);
    this.#onRetry = options.onRetry === undefined ? undefined : checkFunction(owner, 'onRetry', options.onRetry);
    const settings = { ...AZURE_STORAGE_DEFAULTS, ...dropUndefined(options) };
    this.#multipartThresholdBytes = checkNumber(owner, 'multipartThresholdBytes', settings.multipartThresholdBytes, { min: 0, integer: true });
    this.#blockSizeBytes = checkNumber(owner, 'blockSizeBytes', settings.blockSizeBytes, { min: 1, max: MAX_BLOCK_BYTES, integer: true });
    this.#blockConcurrency = checkNumber(owner, 'blockConcurrency', settings.blockConcurrency, { min: 1, integer: true });
    this.#listPageSize = checkNumber(owner, 'listPageSize', settings.listPageSize, { min: 1, max: 5000, integer: true });
    this.#requestTimeoutMs = checkNumber(owner, 'requestTimeoutMs', settings.requestTimeoutMs, { min: 1 });

    this.container = location.container;
    this.prefix = location.prefix;
    this.uri = options.uri ?? locationUri(location);
    this.containerClient = containerClientFor(location, options.env ?? process.env, this.uri);
  }

  /** One Put Blob up to `multipartThresholdBytes`; above it, staged blocks and one Put Block List. */
  async put(key: string, data: Uint8Array): Promise<void> {
    const blobName = this.#blobName('put', key);
    const blob = this.containerClient.getBlockBlobClient(blobName);
    if (data.byteLength <= this.#multipartThresholdBytes) {
      await this.#request('put', blobName, (abortSignal) => blob.upload(data, data.byteLength, { abortSignal }));
      return;
    }
    const blockSize = Math.max(this.#blockSizeBytes, Math.ceil(data.byteLength / MAX_BLOCKS));
    const blockCount = Math.ceil(data.byteLength / blockSize);
    // IDs unique to this put, all of one length (Azure requires that), so a concurrent put of the
    // same key can never commit our blocks or we theirs.
    const nonce = randomBytes(12).toString('hex');
    const blockIds = Array.from({ length: blockCount }, (_, index) =>
      Buffer.from(`${nonce}-${String(index).padStart(6, '0')}`).toString('base64'),
    );
    let nextBlock = 0;
    const stageBlocks = async () => {
      while (nextBlock < blockCount) {
        const index = nextBlock++;
        const body = data.subarray(index * blockSize, Math.min(data.byteLength, (index + 1) * blockSize));
        await this.#request(`put (stage block ${index + 1} of ${blockCount})`, blobName, (abortSignal) =>
          blob.stageBlock(blockIds[index]!, body, body.byteLength, { abortSignal }),
        );
      }
    };
    // A failing worker stops the others at their next block; allSettled waits for those in flight.
    const workers = Array.from({ length: Math.min(this.#blockConcurrency, blockCount) }, () =>
      stageBlocks().catch((error: unknown) => {
        nextBlock = blockCount;
        throw error;
      }),
    );
    const failed = (await Promise.allSettled(workers)).find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
    await this.#request('put (commit block list)', blobName, (abortSignal) => blob.commitBlockList(blockIds, { abortSignal }));
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const blobName = this.#blobName('get', key);
    const blob = this.containerClient.getBlobClient(blobName);
    return this.#request('get', blobName, async (abortSignal) => {
      let response;
      try {
        // No SDK-side resume of a broken body: the whole get is retried, from one consistent response.
        response = await blob.download(0, undefined, { abortSignal, maxRetryRequests: 0 });
      } catch (error) {
        if (errorCodeOf(error) === 'BlobNotFound') return undefined;
        throw error;
      }
      const body = response.readableStreamBody;
      if (body === undefined) throw new Error('the response has no body');
      const chunks: Buffer[] = [];
      for await (const chunk of body) chunks.push(chunk as Buffer);
      const bytes = Buffer.concat(chunks);
      if (response.contentLength !== undefined && bytes.byteLength !== response.contentLength) {
        throw new TruncatedBodyError(bytes.byteLength, response.contentLength);
      }
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    });
  }

  async exists(key: string): Promise<boolean> {
    const blobName = this.#blobName('exists', key);
    const blob = this.containerClient.getBlobClient(blobName);
    return this.#request('exists', blobName, async (abortSignal) => {
      try {
        await blob.getProperties({ abortSignal });
        return true;
      } catch (error) {
        // A missing container is an error to report, not a missing blob.
        if (errorCodeOf(error) === 'BlobNotFound') return false;
        throw error;
      }
    });
  }

  /** Delete Blob; a blob that is not there (BlobNotFound) counts as deleted. */
  async delete(key: string): Promise<void> {
    const blobName = this.#blobName('delete', key);
    const blob = this.containerClient.getBlobClient(blobName);
    await this.#request('delete', blobName, (abortSignal) => blob.deleteIfExists({ abortSignal }));
  }

  /**
   * List Blobs page by page (`listPageSize` blobs at a time), keys relative to the storage prefix, in
   * Azure's order (UTF-16 code units), `startAfter` compared in that order.
   */
  async *list(prefix: string, options: ListOptions = {}): AsyncIterable<string> {
    this.#checkOpen('list');
    const listPrefix = joinKey(this.prefix, checkPrefix(prefix, 'AzureStorage'), 'AzureStorage');
    const rootLength = joinKey(this.prefix, '').length;
    const startAfter = options.startAfter === undefined ? undefined : joinKey(this.prefix, checkPrefix(options.startAfter, 'AzureStorage'), 'AzureStorage');
    // Nothing under the prefix can sort after startAfter when startAfter is past every key with that prefix.
    if (startAfter !== undefined && startAfter > listPrefix && !startAfter.startsWith(listPrefix)) return;
    let continuationToken: string | undefined;
    do {
      const token = continuationToken;
      const page = await this.#request('list', listPrefix, async (abortSignal) => {
        const pages = this.containerClient
          .listBlobsFlat({ prefix: listPrefix, abortSignal })
          .byPage({ maxPageSize: this.#listPageSize, ...(token === undefined ? {} : { continuationToken: token }) });
        const next = await pages.next();
        return next.done ? undefined : next.value;
      });
      if (page === undefined) return;
      for (const item of page.segment.blobItems) {
        if (startAfter === undefined || item.name > startAfter) yield item.name.slice(rootLength);
      }
      continuationToken = page.continuationToken || undefined;
    } while (continuationToken !== undefined);
  }

  /** Marks the storage closed (the SDK keeps no per-client connections to release). Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
  }

  /** Checks a key and returns it under the storage prefix. */
  #blobName(operation: string, key: string): string {
    this.#checkOpen(operation);
    return joinKey(this.prefix, checkKey(key, 'AzureStorage'), 'AzureStorage');
  }

  /**
   * Lists one blob of the prefix (a reader needs that permission anyway; Get Container Properties
   * needs more with a SAS): `StorageRootMissingError` when the container is not there,
   * `AzureStorageError` when Azure refuses.
   */
  async checkRoot(): Promise<void> {
    this.#checkOpen('check');
    const listPrefix = joinKey(this.prefix, '', 'AzureStorage');
    try {
      await this.#request('list (to check the container)', listPrefix, (abortSignal) =>
        this.containerClient.listBlobsFlat({ prefix: listPrefix, abortSignal }).byPage({ maxPageSize: 1 }).next(),
      );
    } catch (error) {
      if (error instanceof AzureStorageError && (error.errorCode === 'ContainerNotFound' || error.statusCode === 404)) {
        throw new StorageRootMissingError(this.uri, `the container ${this.container}`, 'create it or fix the URI (and its endpoint)', error);
      }
      throw error;
    }
  }

  #checkOpen(operation: string): void {
    if (this.#closed) throw new Error(`AzureStorage: cannot ${operation}: ${this.uri} is closed`);
  }

  /**
   * Runs one request under the retry policy, each attempt with its own timeout; a refusal becomes an
   * AzureStorageError naming container, blob and operation.
   */
  async #request<T>(operation: string, blobName: string, run: (abortSignal: AbortSignal) => Promise<T>): Promise<T> {
    try {
      return await withRetries(
        `AzureStorage: ${operation} azure://${this.container}/${blobName}`,
        () => run(AbortSignal.timeout(this.#requestTimeoutMs)),
        {
          policy: this.#retryPolicy,
          isRetryable: isRetryableAzureError,
          ...(this.#onRetry ? { onRetry: this.#onRetry } : {}),
        },
      );
    } catch (error) {
      if (nameOf(error) === 'RetriesExhaustedError') throw error;
      throw new AzureStorageError(operation, this.container, blobName, error);
    }
  }
}

/** The container client for a location, with credentials from `env` and the SDK's retries turned off. */
function containerClientFor(location: AzureLocation, env: Record<string, string | undefined>, uri: string): ContainerClient {
  // One retry policy, ours: the SDK's own retries would multiply with it and hide attempts from onRetry.
  const pipelineOptions: StoragePipelineOptions = { retryOptions: { maxTries: 1 } };
  const connectionString = env.AZURE_STORAGE_CONNECTION_STRING;
  if (connectionString && location.endpoint === undefined) {
    return BlobServiceClient.fromConnectionString(connectionString, pipelineOptions).getContainerClient(location.container);
  }
  let account = env.AZURE_STORAGE_ACCOUNT;
  let key = env.AZURE_STORAGE_KEY;
  if (connectionString) {
    const settings = parseConnectionString(connectionString);
    account = settings.get('accountname');
    key = settings.get('accountkey');
    const sas = settings.get('sharedaccesssignature');
    if (sas !== undefined && location.endpoint !== undefined) {
      const url = `${location.endpoint.replace(/\/+$/, '')}/${encodeURIComponent(location.container)}?${sas.replace(/^\?/, '')}`;
      return new ContainerClient(url, new AnonymousCredential(), pipelineOptions);
    }
  }
  if (!account || !key) {
    throw new Error(
      `AzureStorage: no credentials for ${uri}: set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY`,
    );
  }
  const endpoint = (location.endpoint ?? `https://${account}.blob.core.windows.net`).replace(/\/+$/, '');
  const credential = new StorageSharedKeyCredential(account, key);
  return new BlobServiceClient(endpoint, credential, pipelineOptions).getContainerClient(location.container);
}

/** `Name=value;...` with case-insensitive names; a value may contain '=' (base64 keys do). */
function parseConnectionString(connectionString: string): Map<string, string> {
  const settings = new Map<string, string>();
  for (const part of connectionString.split(';')) {
    const equals = part.indexOf('=');
    if (equals > 0) settings.set(part.slice(0, equals).trim().toLowerCase(), part.slice(equals + 1).trim());
  }
  return settings;
}

/** A body that ended before its Content-Length: the connection dropped mid-read (retryable). */
class TruncatedBodyError extends Error {
  override readonly name = 'TruncatedBodyError';
  constructor(received: number, expected: number) {
    super(`the body ended after ${received} of ${expected} bytes`);
  }
}

/** Socket-level failures: the request may not have reached Azure, or its answer was lost. */
const RETRYABLE_NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ERR_STREAM_PREMATURE_CLOSE',
  'REQUEST_SEND_ERROR',
]);

/** Throttling (429, 503 ServerBusy), 5xx, timeouts and dropped connections; never another 4xx. */
export function isRetryableAzureError(error: unknown): boolean {
  const name = nameOf(error);
  // Our per-attempt timeout aborts the request (no caller signal is ever passed to the SDK).
  if (name === 'AbortError' || name === 'TimeoutError' || name === 'TruncatedBodyError') return true;
  const status = statusOf(error);
  if (status !== undefined) return status >= 500 || status === 429;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && RETRYABLE_NETWORK_CODES.has(code)) return true;
  const message = (error as { message?: unknown } | null)?.message;
  // A response cut off mid-XML parses as an unclosed tag.
  if (code === 'PARSE_ERROR' && typeof message === 'string' && message.includes('Unclosed root tag')) return true;
  return typeof message === 'string' && /socket hang up|ECONNRESET|ECONNREFUSED/.test(message);
}

function nameOf(error: unknown): string | undefined {
  const name = (error as { name?: unknown } | null)?.name;
  return typeof name === 'string' ? name : undefined;
}

function statusOf(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' && status > 0 ? status : undefined;
}

function errorCodeOf(error: unknown): string | undefined {
  const details = (error as { details?: { errorCode?: unknown } } | null)?.details;
  const code = details?.errorCode;
  return typeof code === 'string' ? code : undefined;
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message.split('\n')[0]}` : String(error);
}

function dropUndefined<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>;
}

/** azure://container/prefix?endpoint=..., in the form parseStorageUri reads. */
function locationUri(location: AzureLocation): string {
  const search = location.endpoint === undefined ? '' : `?endpoint=${escapeUriPart(location.endpoint)}`;
  return `azure://${location.container}/${escapeUriPart(location.prefix)}${search}`;
}

/** Escapes only what would change how a URI parses ('%', '?', '#', '&'), keeping it readable. */
function escapeUriPart(text: string): string {
  return text.replace(/[%?#&]/g, encodeURIComponent);
}
