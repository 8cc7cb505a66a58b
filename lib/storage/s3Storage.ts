/**
 * S3Storage: ExternalStorage over @aws-sdk/client-s3, for AWS S3 and any S3-compatible endpoint
 * (MinIO, s3rver, Ceph).
 *
 * Invariant guarded here: an object is either absent or holds exactly the bytes put. Puts are one
 * PutObject or a multipart upload that only becomes visible on CompleteMultipartUpload (aborted on
 * failure); checksums are computed only when required, because the SDK's default checksum mode
 * stores stream bodies with aws-chunked framing inside the object on some S3-compatible servers;
 * reads are checked against Content-Length. Retries (one policy, `withRetries`) cover throttling,
 * 5xx, timeouts and dropped connections, never other 4xx.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import type { CompletedPart, S3ClientConfig } from '@aws-sdk/client-s3';
import { checkFunction, checkNumber } from '../core/errors.ts';
import { checkRetryPolicy, withRetries } from '../core/retry.ts';
import type { RetryInfo, RetryPolicy } from '../core/retry.ts';
import { checkKey, checkPrefix, joinKey } from './keys.ts';
import type { ExternalStorage, ListOptions, RemoteStorageOptions } from './storage.ts';
import { StorageRootMissingError } from './transient.ts';
import type { S3Location } from './uri.ts';

const MIB = 1024 * 1024;
/** S3's smallest part (every part but the last) and its most parts per upload. */
const MIN_PART_BYTES = 5 * MIB;
const MAX_PARTS = 10_000;

export interface S3StorageOptions extends RemoteStorageOptions {
  /** Bodies larger than this many bytes go up as a multipart upload; smaller ones as one PutObject. */
  multipartThresholdBytes?: number;
  /** Size of each multipart part in bytes (>= 5 MiB; raised when the object would need > 10 000 parts). */
  partSizeBytes?: number;
  /** Parts of one object uploaded at the same time. */
  partConcurrency?: number;
  /** Keys per ListObjects page (1..1000): how much of a listing is held in memory at once. */
  listPageSize?: number;
  /** Time to establish a connection before the attempt fails as a timeout (ms). */
  connectTimeoutMs?: number;
  /** Inactivity on an open connection before the attempt fails as a timeout (ms). */
  socketTimeoutMs?: number;
  /**
   * Where AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and AWS_REGION are read
   * (default process.env). Without an access key there, the SDK's default chain applies (profiles,
   * instance roles). Credentials never come from the URI.
   */
  env?: Record<string, string | undefined>;
}

export const S3_STORAGE_DEFAULTS = Object.freeze({
  multipartThresholdBytes: 8 * MIB,
  partSizeBytes: 8 * MIB,
  partConcurrency: 4,
  listPageSize: 1000,
  connectTimeoutMs: 5_000,
  socketTimeoutMs: 60_000,
});

/** A request S3 refused for a reason retrying cannot fix (access denied, no such bucket, bad request). */
export class S3StorageError extends Error {
  override readonly name = 'S3StorageError';
  readonly operation: string;
  readonly bucket: string;
  /** The object key in the bucket (storage prefix included), or the listing prefix. */
  readonly key: string;
  /** HTTP status of the response, when there was one. */
  readonly statusCode: number | undefined;
  /** Never worth another attempt: the storage retried what could pass before this was made. */
  readonly transient = false;

  constructor(operation: string, bucket: string, key: string, cause: unknown) {
    const statusCode = statusOf(cause);
    const hint = s3Hint(statusCode, nameOf(cause), bucket);
    super(
      `S3Storage: ${operation} s3://${bucket}/${key} failed` +
        `${statusCode === undefined ? '' : ` with HTTP ${statusCode}`}: ${describeError(cause)}${hint === undefined ? '' : `; ${hint}`}`,
      { cause },
    );
    this.operation = operation;
    this.bucket = bucket;
    this.key = key;
    this.statusCode = statusCode;
  }
}

/** What a person can do about a refusal, by status and S3 error name. */
function s3Hint(statusCode: number | undefined, name: string | undefined, bucket: string): string | undefined {
  if (name === 'NoSuchBucket') return `the bucket ${bucket} does not exist: create it or fix the URI`;
  if (statusCode === 401 || statusCode === 403) {
    return `S3 refused the credentials: check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) and that they may use bucket ${bucket}`;
  }
  if (statusCode === 400) return 'S3 refused the request as malformed (a key, bucket name or region it does not accept): check the URI';
  return undefined;
}

/**
 * Files in one bucket under one prefix. Keys are relative to the prefix; the storage is closed with
 * `close()`, which destroys the client's connections.
 *
 * Lossless: a put either completes whole or throws (an interrupted multipart upload is aborted; if
 * even the abort fails, a lifecycle rule for incomplete uploads reclaims its parts). Not lossless:
 * two concurrent puts of one key leave whichever S3 completed last.
 *
 * @example
 * const storage = new S3Storage(
 *   { scheme: 's3', bucket: 'cdc', prefix: 'tenant-1', region: 'eu-west-1', forcePathStyle: false },
 *   { multipartThresholdBytes: 16 * 1024 * 1024, retry: { maxRetries: 8 } },
 * );
 * await storage.put('orders/CDC000001.csv', bytes);
 */
export class S3Storage implements ExternalStorage {
  readonly uri: string;
  readonly bucket: string;
  /** The storage prefix ('' for the whole bucket). */
  readonly prefix: string;
  /** The SDK client (to add middleware, e.g. to count commands). */
  readonly client: S3Client;
  readonly #retryPolicy: RetryPolicy;
  readonly #onRetry: ((info: RetryInfo) => void) | undefined;
  readonly #multipartThresholdBytes: number;
  readonly #partSizeBytes: number;
  readonly #partConcurrency: number;
  readonly #listPageSize: number;
  #closed = false;

  constructor(location: S3Location, options: S3StorageOptions = {}) {
    const owner = 'S3Storage';
    this.#retryPolicy = checkRetryPolicy(owner, options.retry);
    this.#onRetry = options.onRetry === undefined ? undefined : checkFunction(owner, 'onRetry', options.onRetry);
    const settings = { ...S3_STORAGE_DEFAULTS, ...dropUndefined(options) };
    this.#multipartThresholdBytes = checkNumber(owner, 'multipartThresholdBytes', settings.multipartThresholdBytes, { min: 0, integer: true });
    this.#partSizeBytes = checkNumber(owner, 'partSizeBytes', settings.partSizeBytes, { min: MIN_PART_BYTES, integer: true });
    this.#partConcurrency = checkNumber(owner, 'partConcurrency', settings.partConcurrency, { min: 1, integer: true });
    this.#listPageSize = checkNumber(owner, 'listPageSize', settings.listPageSize, { min: 1, max: 1000, integer: true });
    const connectTimeoutMs = checkNumber(owner, 'connectTimeoutMs', settings.connectTimeoutMs, { min: 1 });
    const socketTimeoutMs = checkNumber(owner, 'socketTimeoutMs', settings.socketTimeoutMs, { min: 1 });

    this.bucket = location.bucket;
    this.prefix = location.prefix;
    this.uri = options.uri ?? locationUri(location);
    const env = options.env ?? process.env;
    const config: S3ClientConfig = {
      region: location.region ?? env.AWS_REGION ?? 'us-east-1',
      forcePathStyle: location.forcePathStyle,
      // The default (WHEN_SUPPORTED) frames bodies as aws-chunked, which S3-compatible servers
      // such as s3rver store verbatim inside the object.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // One retry policy, ours: the SDK's own retries would multiply with it and hide attempts from onRetry.
      maxAttempts: 1,
      requestHandler: { connectionTimeout: connectTimeoutMs, socketTimeout: socketTimeoutMs },
    };
    if (location.endpoint !== undefined) config.endpoint = location.endpoint;
    if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
      config.credentials = {
        accessKeyId: env.AWS_ACCESS_KEY_ID,
        secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
        ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
      };
    }
    this.client = new S3Client(config);
  }

  /** One PutObject up to `multipartThresholdBytes`, a multipart upload above it. */
  async put(key: string, data: Uint8Array): Promise<void> {
    const objectKey = this.#objectKey('put', key);
    if (data.byteLength <= this.#multipartThresholdBytes) {
      await this.#request('put', objectKey, () =>
        this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: objectKey, Body: data, ContentLength: data.byteLength })),
      );
      return;
    }
    await this.#putMultipart(objectKey, data);
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const objectKey = this.#objectKey('get', key);
    return this.#request('get', objectKey, async () => {
      let response;
      try {
        response = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: objectKey }));
      } catch (error) {
        if (nameOf(error) === 'NoSuchKey') return undefined;
        throw error;
      }
      if (response.Body === undefined) throw new Error('the response has no body');
      const bytes = await response.Body.transformToByteArray();
      if (response.ContentLength !== undefined && bytes.byteLength !== response.ContentLength) {
        throw new TruncatedBodyError(bytes.byteLength, response.ContentLength);
      }
      return bytes;
    });
  }

  async exists(key: string): Promise<boolean> {
    const objectKey = this.#objectKey('exists', key);
    return this.#request('exists', objectKey, async () => {
      try {
        await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: objectKey }));
        return true;
      } catch (error) {
        // HEAD responses have no body, so a missing key is only a 404 (named NotFound by the SDK).
        if (statusOf(error) === 404) return false;
        throw error;
      }
    });
  }

  /** DeleteObject, which S3 answers with 204 whether or not the key existed. */
  async delete(key: string): Promise<void> {
    const objectKey = this.#objectKey('delete', key);
    await this.#request('delete', objectKey, () => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: objectKey })));
  }

  /**
   * Lists page by page (`listPageSize` keys at a time), keys relative to the storage prefix, each
   * page starting after the last key of the one before. This is ListObjects (V1) with Marker rather
   * than ListObjectsV2: same keys, same order on S3, but s3rver answers every truncated V2 page with
   * InternalError (its continuation tokens are DES-encrypted, which OpenSSL 3 refuses).
   */
  async *list(prefix: string, options: ListOptions = {}): AsyncIterable<string> {
    this.#checkOpen('list');
    const listPrefix = joinKey(this.prefix, checkPrefix(prefix, 'S3Storage'), 'S3Storage');
    const rootLength = joinKey(this.prefix, '').length;
    let marker = options.startAfter === undefined ? '' : joinKey(this.prefix, checkPrefix(options.startAfter, 'S3Storage'), 'S3Storage');
    for (;;) {
      const after = marker;
      const page = await this.#request('list', listPrefix, () =>
        this.client.send(
          new ListObjectsCommand({ Bucket: this.bucket, Prefix: listPrefix, MaxKeys: this.#listPageSize, ...(after === '' ? {} : { Marker: after }) }),
        ),
      );
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined) continue;
        marker = object.Key;
        yield object.Key.slice(rootLength);
      }
      if (!page.IsTruncated || marker === after) return;
    }
  }

  /**
   * Lists one key of the prefix (a reader needs that permission anyway, HeadBucket another one):
   * `StorageRootMissingError` when the bucket is not there, `S3StorageError` when S3 refuses (credentials).
   */
  async checkRoot(): Promise<void> {
    this.#checkOpen('check');
    const listPrefix = joinKey(this.prefix, '', 'S3Storage');
    try {
      await this.#request('list (to check the bucket)', listPrefix, () => this.client.send(new ListObjectsCommand({ Bucket: this.bucket, Prefix: listPrefix, MaxKeys: 1 })));
    } catch (error) {
      if (error instanceof S3StorageError && (error.statusCode === 404 || nameOf(error.cause) === 'NoSuchBucket' || nameOf(error.cause) === 'NotFound')) {
        throw new StorageRootMissingError(this.uri, `the bucket ${this.bucket}`, 'create it or fix the URI (and its endpoint)', error);
      }
      throw error;
    }
  }

  /** Destroys the client and its connections; later calls fail. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.client.destroy();
  }

  /** Creates the upload, sends the parts (each retried on its own), completes; aborts on any failure. */
  async #putMultipart(objectKey: string, data: Uint8Array): Promise<void> {
    const created = await this.#request('put (create multipart upload)', objectKey, () =>
      this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: objectKey })),
    );
    const uploadId = created.UploadId;
    if (uploadId === undefined) {
      throw new S3StorageError('put (create multipart upload)', this.bucket, objectKey, new Error('the response has no UploadId'));
    }
    try {
      const partSize = Math.max(this.#partSizeBytes, Math.ceil(data.byteLength / MAX_PARTS));
      const partCount = Math.ceil(data.byteLength / partSize);
      const parts: CompletedPart[] = new Array(partCount);
      let nextPart = 0;
      const uploadParts = async () => {
        while (nextPart < partCount) {
          const index = nextPart++;
          const body = data.subarray(index * partSize, Math.min(data.byteLength, (index + 1) * partSize));
          const { ETag } = await this.#request(`put (upload part ${index + 1} of ${partCount})`, objectKey, () =>
            this.client.send(
              new UploadPartCommand({ Bucket: this.bucket, Key: objectKey, UploadId: uploadId, PartNumber: index + 1, Body: body, ContentLength: body.byteLength }),
            ),
          );
          parts[index] = { ETag, PartNumber: index + 1 };
        }
      };
      // A failing worker stops the others at their next part; allSettled waits so no part races the abort.
      const workers = Array.from({ length: Math.min(this.#partConcurrency, partCount) }, () =>
        uploadParts().catch((error: unknown) => {
          nextPart = partCount;
          throw error;
        }),
      );
      const results = await Promise.allSettled(workers);
      const failed = results.find((result) => result.status === 'rejected');
      if (failed) throw failed.reason;
      await this.#request('put (complete multipart upload)', objectKey, () =>
        this.client.send(
          new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: objectKey, UploadId: uploadId, MultipartUpload: { Parts: parts } }),
        ),
      );
    } catch (error) {
      // Best effort: the original error is the one to report.
      await this.client
        .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: objectKey, UploadId: uploadId }))
        .catch(() => undefined);
      throw error;
    }
  }

  /** Checks a key and returns it under the storage prefix. */
  #objectKey(operation: string, key: string): string {
    this.#checkOpen(operation);
    return joinKey(this.prefix, checkKey(key, 'S3Storage'), 'S3Storage');
  }

  #checkOpen(operation: string): void {
    if (this.#closed) throw new Error(`S3Storage: cannot ${operation}: ${this.uri} is closed`);
  }

  /** Runs one request under the retry policy; a refusal becomes an S3StorageError naming bucket, key and operation. */
  async #request<T>(operation: string, objectKey: string, run: () => Promise<T>): Promise<T> {
    try {
      return await withRetries(`S3Storage: ${operation} s3://${this.bucket}/${objectKey}`, run, {
        policy: this.#retryPolicy,
        isRetryable: isRetryableS3Error,
        ...(this.#onRetry ? { onRetry: this.#onRetry } : {}),
      });
    } catch (error) {
      if (nameOf(error) === 'RetriesExhaustedError') throw error;
      throw new S3StorageError(operation, this.bucket, objectKey, error);
    }
  }
}

/** A body that ended before its Content-Length: the connection dropped mid-read (retryable). */
class TruncatedBodyError extends Error {
  override readonly name = 'TruncatedBodyError';
  constructor(received: number, expected: number) {
    super(`the body ended after ${received} of ${expected} bytes`);
  }
}

/** Error names S3 (and the SDK) give to conditions that pass: throttling, overload, timeouts. */
const RETRYABLE_NAMES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestThrottled',
  'TooManyRequestsException',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  'InternalError',
  'ServiceUnavailable',
  'TruncatedBodyError',
]);

/** Socket-level failures: the request may not have reached S3, or its answer was lost. */
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
]);

/** True for a socket-level failure: a code in RETRYABLE_NETWORK_CODES or Node's "socket hang up". */
function isNetworkError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && RETRYABLE_NETWORK_CODES.has(code)) return true;
  const message = (error as { message?: unknown } | null)?.message;
  return typeof message === 'string' && /socket hang up|ECONNRESET|ECONNREFUSED/.test(message);
}

/** Throttling (429, SlowDown), 5xx, timeouts and dropped connections; never another 4xx. */
export function isRetryableS3Error(error: unknown): boolean {
  if (RETRYABLE_NAMES.has(nameOf(error) ?? '')) return true;
  const status = statusOf(error);
  if (status !== undefined) return status >= 500 || status === 429;
  return isNetworkError(error);
}

function nameOf(error: unknown): string | undefined {
  const name = (error as { name?: unknown } | null)?.name;
  return typeof name === 'string' ? name : undefined;
}

function statusOf(error: unknown): number | undefined {
  const status = (error as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function dropUndefined<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>;
}

/** s3://bucket/prefix with the parameters that change where requests go, in the form parseStorageUri reads. */
function locationUri(location: S3Location): string {
  const query: string[] = [];
  if (location.endpoint !== undefined) query.push(`endpoint=${escapeUriPart(location.endpoint)}`);
  if (location.region !== undefined) query.push(`region=${location.region}`);
  if (location.forcePathStyle !== (location.endpoint !== undefined)) query.push(`force-path-style=${location.forcePathStyle}`);
  return `s3://${location.bucket}/${escapeUriPart(location.prefix)}${query.length === 0 ? '' : `?${query.join('&')}`}`;
}

/** Escapes only what would change how a URI parses ('%', '?', '#', '&'), keeping it readable. */
function escapeUriPart(text: string): string {
  return text.replace(/[%?#&]/g, encodeURIComponent);
}
