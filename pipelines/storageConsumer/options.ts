/**
 * The storage consumer's options: their types, defaults (named once, with units) and checks. A bad
 * option (a bad MySQL URI too) fails when the flow is created, naming the option; the password of a
 * URI never appears in an error.
 */
import { asyncScheduler, type SchedulerLike } from 'rxjs';
import type { Pool } from 'mysql2/promise';
import { checkCsvOptions, CSV_DEFAULTS, type CsvDialect, type CsvOptions } from '../../lib/codec/csv.ts';
import { checkDateSeparator, LAYOUT_DEFAULTS, type DateSeparator } from '../../lib/codec/layout.ts';
import { checkNumber, InvalidOptionError } from '../../lib/core/errors.ts';
import { checkRetryPolicy, type RetryPolicy } from '../../lib/core/retry.ts';
import { storageConsumerMetrics, type AnyRegistry, type StorageConsumerMetrics } from '../../lib/metrics/index.ts';
import { parseMysqlUri, redactMysqlUri } from '../../lib/mysql/uri.ts';
import type { ExternalStorage } from '../../lib/storage/storage.ts';

/** Names the consumer in option errors. */
export const OWNER = 'storageConsumer';

export interface StorageConsumerOptions {
  /** The sink's storage: a URI (file://, s3://, azure://, memory://) or an open ExternalStorage (not closed by the consumer). */
  from: string | ExternalStorage;
  /** MySQL: `mysql://user:pass@host:port/` or a mysql2/promise Pool (not closed by the consumer). */
  to: string | Pool;
  /** Pause between rounds (ms). Default 2000. */
  intervalMs?: number;
  /** Run one round, then complete. Default false. */
  once?: boolean;
  /**
   * The sink's csv settings (delimiter, quote, terminator, nullString, includeCommitTs,
   * binaryEncodingMethod, outputOldValue, outputHandleKey, outputFieldHeader; see CsvOptions): they
   * must be the sink's. Default TiCDC's, except `includeCommitTs` true, as sluice's sink writes (a
   * TiCDC changefeed's default files need `includeCommitTs: false`).
   */
  csv?: CsvOptions;
  /**
   * The sink's date-separator: whether (and how) data folders end in a date level. Default 'day', as
   * TiCDC. It must be the sink's: folder levels are read by it, never guessed.
   */
  dateSeparator?: DateSeparator;
  /**
   * The sink's enable-partition-separator: a partitioned table's data folders have a `{partitionId}`
   * level (each partition replayed as a stream of its own). Default true, as TiCDC.
   */
  enablePartitionSeparator?: boolean;
  /** Database of the checkpoint table `replay_checkpoint`. Default 'sluice_replay'. */
  checkpointDatabase?: string;
  /** Names this consumer's rows in the checkpoint table (several consumers may share it). Default: the storage URI. */
  consumerId?: string;
  /** List the storage at least this often even when the sink's checkpoint did not move (ms). Default 60000. */
  relistIntervalMs?: number;
  /** Data files read and decoded ahead of those being applied. Default 4. */
  prefetchFiles?: number;
  /** ...and at most this many bytes of them (the files being applied not counted). Default 64 MiB. */
  prefetchBytes?: number;
  /**
   * Files (of different tables) applied at once, each in its own transaction on its own connection;
   * DDLs keep their order among themselves. Default 2. A URI `to` opens this many connections.
   */
  applyConcurrency?: number;
  /** Rows per multi-row statement. Default 1000. */
  maxRowsPerStatement?: number;
  /** Bytes of SQL per statement (keep under the server's max_allowed_packet). Default 4 MiB. */
  maxStatementBytes?: number;
  /** A table's decoding state (columns, statement parts) is released after this long without files (ms). Default 600000. */
  idleStateMs?: number;
  /**
   * How long a MySQL outage is ridden out (ms): an operation that fails with a transient error
   * (connection refused or reset, server gone away, deadlock, lock wait timeout) is retried whole
   * with backoff until this long after its first failure, with a 'stall' event before each retry;
   * then the consumer fails with the cause. 0 fails at the first such error. Default 600000 (10 min).
   * A `from` URI (s3://, azure://) gets the same budget for its requests' transient failures.
   */
  retryForMs?: number;
  /** Backoff of those retries: minDelayMs, maxDelayMs, jitter (the budget is retryForMs). Default 100 ms doubling to 5 s, ±20 %. */
  retry?: Partial<Pick<RetryPolicy, 'minDelayMs' | 'maxDelayMs' | 'jitter' | 'random'>>;
  /** Metrics under the label `pipeline` (see storageConsumerMetrics). Default none. */
  metrics?: { registry: AnyRegistry; pipeline: string };
  scheduler?: SchedulerLike;
}

export const STORAGE_CONSUMER_DEFAULTS = Object.freeze({
  intervalMs: 2000,
  checkpointDatabase: 'sluice_replay',
  relistIntervalMs: 60_000,
  prefetchFiles: 4,
  prefetchBytes: 64 * 1024 * 1024,
  applyConcurrency: 2,
  maxRowsPerStatement: 1000,
  maxStatementBytes: 4 * 1024 * 1024,
  idleStateMs: 600_000,
  indexReadConcurrency: 16,
  /** 10 minutes. */
  retryForMs: 600_000,
  retry: Object.freeze({ minDelayMs: 100, maxDelayMs: 5000, jitter: 0.2 }),
  /** TiCDC's csv defaults with the commit ts column, as sluice's sink writes by default. */
  csv: Object.freeze({ ...CSV_DEFAULTS, includeCommitTs: true }) as CsvDialect,
  dateSeparator: LAYOUT_DEFAULTS.dateSeparator,
  enablePartitionSeparator: LAYOUT_DEFAULTS.enablePartitionSeparator,
});

/** The options checked, with their defaults filled in (and the metrics bound). */
export interface Settings {
  intervalMs: number;
  once: boolean;
  csv: CsvDialect;
  dateSeparator: DateSeparator;
  enablePartitionSeparator: boolean;
  checkpointDatabase: string;
  relistIntervalMs: number;
  prefetchFiles: number;
  prefetchBytes: number;
  applyConcurrency: number;
  maxRowsPerStatement: number;
  maxStatementBytes: number;
  idleStateMs: number;
  /** Retries through an outage (MySQL, and s3/azure requests): the backoff, maxRetries Infinity, maxElapsedMs = retryForMs. */
  outageRetry: RetryPolicy;
  metrics: StorageConsumerMetrics | undefined;
  scheduler: SchedulerLike;
}

/** The options checked (each error names the option and the value) with the defaults filled in. */
export function checkOptions(options: StorageConsumerOptions): Settings {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError(OWNER, 'options', options, 'an object');
  const { from, to } = options;
  if (!(typeof from === 'string' && from !== '') && !(typeof from === 'object' && from !== null && typeof (from as ExternalStorage).list === 'function')) {
    throw new InvalidOptionError(OWNER, 'from', from, 'a storage URI or an ExternalStorage');
  }
  if (!(typeof to === 'string' && to !== '') && !(typeof to === 'object' && to !== null && typeof (to as Pool).getConnection === 'function')) {
    throw new InvalidOptionError(OWNER, 'to', typeof to === 'string' ? redactMysqlUri(to) : to, 'a mysql:// URI or a mysql2/promise Pool');
  }
  // A bad URI fails here, when the flow is created, not at subscribe.
  if (typeof to === 'string') parseMysqlUri(to);
  const d = STORAGE_CONSUMER_DEFAULTS;
  const database = options.checkpointDatabase ?? d.checkpointDatabase;
  if (typeof database !== 'string' || !/^[A-Za-z0-9_$]{1,64}$/.test(database)) {
    throw new InvalidOptionError(OWNER, 'checkpointDatabase', database, 'a database name of 1..64 letters, digits, _ or $');
  }
  if (options.consumerId !== undefined && (typeof options.consumerId !== 'string' || options.consumerId === '' || options.consumerId.length > 191)) {
    throw new InvalidOptionError(OWNER, 'consumerId', options.consumerId, 'a string of 1..191 characters');
  }
  const csv = checkCsvOptions(OWNER, options.csv, d.csv);
  const enablePartitionSeparator = options.enablePartitionSeparator ?? d.enablePartitionSeparator;
  if (typeof enablePartitionSeparator !== 'boolean') throw new InvalidOptionError(OWNER, 'enablePartitionSeparator', enablePartitionSeparator, 'a boolean');
  const metrics = options.metrics;
  if (metrics !== undefined && (typeof metrics !== 'object' || metrics === null || typeof metrics.registry?.getMetricsAsJSON !== 'function' || typeof metrics.pipeline !== 'string' || metrics.pipeline === '')) {
    throw new InvalidOptionError(OWNER, 'metrics', metrics, 'an object { registry: a prom-client Registry, pipeline: a non-empty string }');
  }
  const retryForMs = checkNumber(OWNER, 'retryForMs', options.retryForMs ?? d.retryForMs, { min: 0, allowInfinity: true });
  const retry = options.retry ?? {};
  for (const name of ['maxRetries', 'maxElapsedMs']) {
    if (typeof retry === 'object' && retry !== null && name in retry) throw new InvalidOptionError(OWNER, `retry.${name}`, (retry as Record<string, unknown>)[name], 'absent: MySQL retries are bounded in time, by retryForMs');
  }
  const outageRetry = checkRetryPolicy(OWNER, { ...d.retry, ...(retry as object), maxRetries: Infinity, maxElapsedMs: retryForMs });
  return {
    intervalMs: checkNumber(OWNER, 'intervalMs', options.intervalMs ?? d.intervalMs, { min: 0 }),
    once: options.once === true,
    csv,
    dateSeparator: checkDateSeparator(OWNER, 'dateSeparator', options.dateSeparator ?? d.dateSeparator),
    enablePartitionSeparator,
    checkpointDatabase: database,
    relistIntervalMs: checkNumber(OWNER, 'relistIntervalMs', options.relistIntervalMs ?? d.relistIntervalMs, { min: 0 }),
    prefetchFiles: checkNumber(OWNER, 'prefetchFiles', options.prefetchFiles ?? d.prefetchFiles, { min: 0, max: 1024, integer: true }),
    prefetchBytes: checkNumber(OWNER, 'prefetchBytes', options.prefetchBytes ?? d.prefetchBytes, { min: 0, integer: true }),
    applyConcurrency: checkNumber(OWNER, 'applyConcurrency', options.applyConcurrency ?? d.applyConcurrency, { min: 1, max: 64, integer: true }),
    maxRowsPerStatement: checkNumber(OWNER, 'maxRowsPerStatement', options.maxRowsPerStatement ?? d.maxRowsPerStatement, { min: 1, integer: true }),
    maxStatementBytes: checkNumber(OWNER, 'maxStatementBytes', options.maxStatementBytes ?? d.maxStatementBytes, { min: 1024, integer: true }),
    idleStateMs: checkNumber(OWNER, 'idleStateMs', options.idleStateMs ?? d.idleStateMs, { min: 1 }),
    outageRetry,
    metrics: metrics === undefined ? undefined : storageConsumerMetrics(metrics.registry, { pipeline: metrics.pipeline }),
    scheduler: options.scheduler ?? asyncScheduler,
  };
}
