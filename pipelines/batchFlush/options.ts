/**
 * The line-protocol sink's options: their types, defaults (named once, with units) and checks. A bad
 * option fails when the sink is created, naming the option and the value; nothing here does I/O.
 */
import type { SchedulerLike } from 'rxjs';
import { checkFunction, checkNumber, InvalidOptionError } from '../../lib/core/errors.ts';
import { checkRetryPolicy, type RetryPolicy } from '../../lib/core/retry.ts';
import {
  lineConverter,
  LineProtocolError,
  PRECISIONS,
  type LineConverterOptions,
  type Point,
  type Precision,
} from '../../lib/codec/lineProtocol.ts';
import type { AnyRegistry } from '../../lib/metrics/index.ts';
import type { ExternalStorage } from '../../lib/storage/storage.ts';
import type { InfluxAuth } from './lineWriter.ts';
import type { LineSinkStats } from './progress.ts';

/** Names the sink in option errors and record errors. */
export const OWNER = 'lineProtocolSink';

export interface LineSinkBatchOptions {
  /** Smallest batch, in lines. Default 100. */
  minSize?: number;
  /** Largest batch, in lines. Default 20000 (bigger batches barely help the server and cost memory). */
  maxSize?: number;
  /** First batch size, in lines. Default 5000. */
  initialSize?: number;
  /** A partial batch is written this long after its oldest line arrived (ms). Default 1000. */
  maxDelayMs?: number;
  /** Latency goal of one write; slower windows shrink the batch size (ms). Default 500. */
  targetLatencyMs?: number;
  /** Writes per AIMD window. Default 3. */
  adjustEvery?: number;
  /** Lines waiting for a write, at least maxSize. Default maxSize. */
  maxBuffered?: number;
  /**
   * Bytes of accepted lines not yet written (waiting, in flight, held), as a memory bound: beyond it
   * the wakes of Acked records are held until writes catch up. Measured in the arena that holds them
   * (UTF-8, with the newline, plus the unused tail of a 4 MiB chunk a line did not fit in). Give it room for
   * (maxInFlight + 1) × maxSize lines, or batches get cut by maxDelayMs instead. Default 32 MiB.
   */
  maxBufferedBytes?: number;
}

export interface LineSinkCheckpointOptions {
  /** A local folder for the checkpoint segments (a FileStorage). */
  dir?: string;
  /** Or a storage: a URI (file://, s3://, azure://, memory://) or an open ExternalStorage. */
  storage?: string | ExternalStorage;
  /** Key prefix of the segments in that storage. Default 'lines-checkpoint'. */
  prefix?: string;
  /** Unsaved lines are saved at least this often (ms); held wakes trigger a save at once. Default 1000. */
  everyMs?: number;
}

export interface LineProtocolSinkOptions<T> {
  /** http(s)://host:port of InfluxDB 1.x / OpenGemini; or a storage URI (file://, s3://...) to write .lp files instead. */
  url: string;
  /** Database (`db` of /write; the folder of the .lp files). */
  db: string;
  /** Unit of the timestamps. Default 'ms'. */
  precision?: Precision;
  retentionPolicy?: string;
  /** Basic auth (username/password) or a token (`Authorization: Token ...`). */
  auth?: InfluxAuth;
  /** Direct conversion: extractors for measurement, tags, fields, timestamp (the precision is the sink's). */
  lines?: Omit<LineConverterOptions<T>, 'precision'>;
  /** Point conversion: builds a Point per record (the compatibility path). */
  toPoint?: (record: T) => Point;
  /** Batch sizing (AIMD), in lines and ms. */
  batch?: LineSinkBatchOptions;
  /** Retries of a failed write (5xx, 429, network): maxRetries, minDelayMs, maxDelayMs, jitter. Default 5 / 100 ms / 10 s / 0.2. */
  retry?: Partial<RetryPolicy>;
  /** Writes in flight at once. Default 2. */
  maxInFlight?: number;
  /** Request bodies above this size are gzip-compressed (bytes; Infinity = never). Default 1 MiB. */
  gzipAboveBytes?: number;
  /** A request with no answer after this long is abandoned and retried (ms). Default 30000. */
  requestTimeoutMs?: number;
  /** The unflushed buffer's checkpoint; without one, a crash loses what was enqueued but not flushed. */
  checkpoint?: LineSinkCheckpointOptions;
  /**
   * Storage for lines the server refused (URI or ExternalStorage): each isolated set is stored as one
   * JSON-lines object `{prefix}/{run}-{n}.jsonl` before the records are flushed. Without it the
   * records' acks are failed (their lines are still reported on the output).
   */
  deadLetter?: string | ExternalStorage;
  /** Metrics of the sink and its adaptiveBatch in `registry`, label `pipeline`. */
  metrics?: { registry: AnyRegistry; pipeline: string };
  /** Stats after each change (same object, updated in place). */
  onStats?: (stats: Readonly<LineSinkStats>) => void;
  scheduler?: SchedulerLike;
}

export const LINE_SINK_DEFAULTS = Object.freeze({
  precision: 'ms' as Precision,
  minSize: 100,
  maxSize: 20_000,
  initialSize: 5000,
  maxDelayMs: 1000,
  targetLatencyMs: 500,
  adjustEvery: 3,
  /** maxBuffered = maxBufferedPerMaxSize × maxSize. */
  maxBufferedPerMaxSize: 1,
  maxBufferedBytes: 32 * 1024 * 1024,
  maxInFlight: 2,
  gzipAboveBytes: 1024 * 1024,
  requestTimeoutMs: 30_000,
  checkpointPrefix: 'lines-checkpoint',
  checkpointEveryMs: 1000,
  deadLetterPrefix: 'dead-letters',
});

/** The options checked, with their defaults filled in. */
export interface Settings<T> {
  url: string;
  db: string;
  precision: Precision;
  retentionPolicy: string | undefined;
  toLine: (record: T) => string;
  retry: RetryPolicy;
  maxInFlight: number;
  batch: Required<Omit<LineSinkBatchOptions, 'maxBuffered' | 'maxBufferedBytes'>> & { maxBuffered: number };
  maxBufferedBytes: number;
  gzipAboveBytes: number;
  requestTimeoutMs: number;
  everyMs: number;
}

const DB_NAME = /^[^\u0000-\u001f\u007f/\\]{1,255}$/;

/** The options checked (each error names the option and the value) with the defaults filled in. */
export function checkOptions<T>(options: LineProtocolSinkOptions<T>): Settings<T> {
  const D = LINE_SINK_DEFAULTS;
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError(OWNER, 'options', options, 'an object');
  const url = options.url;
  if (typeof url !== 'string' || !/^(https?|file|memory|s3|azure):\/\//i.test(url)) {
    throw new InvalidOptionError(OWNER, 'url', url, 'an http(s):// URL of InfluxDB 1.x / OpenGemini, or a storage URI (file://, memory://, s3://, azure://)');
  }
  if (/^https?:/i.test(url)) {
    try {
      new URL(url);
    } catch {
      throw new InvalidOptionError(OWNER, 'url', url, 'a valid http(s) URL');
    }
  }
  // The db names a folder of .lp files too: no separators or control characters.
  if (typeof options.db !== 'string' || !DB_NAME.test(options.db) || options.db === '.' || options.db === '..') {
    throw new InvalidOptionError(OWNER, 'db', options.db, 'a database name of 1..255 characters without control characters, / or \\');
  }
  const precision = options.precision ?? D.precision;
  if (!PRECISIONS.includes(precision)) throw new InvalidOptionError(OWNER, 'precision', precision, `one of ${PRECISIONS.join(', ')}`);
  if (options.retentionPolicy !== undefined && (typeof options.retentionPolicy !== 'string' || options.retentionPolicy === '')) {
    throw new InvalidOptionError(OWNER, 'retentionPolicy', options.retentionPolicy, 'a non-empty string');
  }
  const auth = options.auth as Record<string, unknown> | undefined;
  if (auth !== undefined) {
    const ok =
      typeof auth === 'object' &&
      auth !== null &&
      (typeof auth.token === 'string' ? auth.token !== '' : typeof auth.username === 'string' && typeof auth.password === 'string');
    if (!ok) throw new InvalidOptionError(OWNER, 'auth', '(hidden)', '{ username, password } or { token } with string values');
  }
  let toLine: (record: T) => string;
  if (options.lines !== undefined && options.toPoint !== undefined) {
    throw new InvalidOptionError(OWNER, 'toPoint', 'a function', 'absent when lines is given (choose one conversion path)');
  }
  if (options.lines !== undefined) {
    toLine = lineConverter<T>({ ...options.lines, precision });
  } else if (options.toPoint !== undefined) {
    const toPoint = checkFunction(OWNER, 'toPoint', options.toPoint);
    toLine = (record) => toPoint(record).toLineProtocol(precision);
  } else {
    toLine = (record) => {
      if (typeof record !== 'string' || record === '') {
        throw new LineProtocolError('without lines or toPoint the records must be non-empty line-protocol strings');
      }
      return record;
    };
  }
  const batch = options.batch ?? {};
  const minSize = checkNumber(OWNER, 'batch.minSize', batch.minSize ?? D.minSize, { min: 1, integer: true });
  const maxSize = checkNumber(OWNER, 'batch.maxSize', batch.maxSize ?? Math.max(minSize, D.maxSize), { min: minSize, integer: true });
  const initialSize = checkNumber(OWNER, 'batch.initialSize', batch.initialSize ?? Math.min(maxSize, Math.max(minSize, D.initialSize)), {
    min: minSize,
    max: maxSize,
    integer: true,
  });
  const everyMs = checkNumber(OWNER, 'checkpoint.everyMs', options.checkpoint?.everyMs ?? D.checkpointEveryMs, { min: 1 });
  if (options.checkpoint !== undefined) {
    const { dir, storage } = options.checkpoint;
    if ((dir === undefined) === (storage === undefined)) {
      throw new InvalidOptionError(OWNER, 'checkpoint', '{...}', 'an object with exactly one of dir (a folder) or storage (a URI or ExternalStorage)');
    }
    if (dir !== undefined && (typeof dir !== 'string' || !dir.startsWith('/'))) {
      throw new InvalidOptionError(OWNER, 'checkpoint.dir', dir, 'an absolute folder path');
    }
  }
  return {
    url,
    db: options.db,
    precision,
    retentionPolicy: options.retentionPolicy,
    toLine,
    retry: checkRetryPolicy(OWNER, options.retry),
    maxInFlight: checkNumber(OWNER, 'maxInFlight', options.maxInFlight ?? D.maxInFlight, { min: 1, integer: true }),
    batch: {
      minSize,
      maxSize,
      initialSize,
      maxDelayMs: checkNumber(OWNER, 'batch.maxDelayMs', batch.maxDelayMs ?? D.maxDelayMs, { min: 0, allowInfinity: true }),
      targetLatencyMs: checkNumber(OWNER, 'batch.targetLatencyMs', batch.targetLatencyMs ?? D.targetLatencyMs, { min: 1 }),
      adjustEvery: checkNumber(OWNER, 'batch.adjustEvery', batch.adjustEvery ?? D.adjustEvery, { min: 1, integer: true }),
      maxBuffered: checkNumber(OWNER, 'batch.maxBuffered', batch.maxBuffered ?? D.maxBufferedPerMaxSize * maxSize, { min: maxSize, integer: true }),
    },
    maxBufferedBytes: checkNumber(OWNER, 'batch.maxBufferedBytes', batch.maxBufferedBytes ?? D.maxBufferedBytes, { min: 1, integer: true, allowInfinity: true }),
    gzipAboveBytes: checkNumber(OWNER, 'gzipAboveBytes', options.gzipAboveBytes ?? D.gzipAboveBytes, { min: 0, allowInfinity: true }),
    requestTimeoutMs: checkNumber(OWNER, 'requestTimeoutMs', options.requestTimeoutMs ?? D.requestTimeoutMs, { min: 1 }),
    everyMs,
  };
}
