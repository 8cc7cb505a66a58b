/**
 * The storage sink's options: their types, defaults and checks (each error names the option and the
 * value), and what it reports as it goes.
 */
import { asyncScheduler, type SchedulerLike } from 'rxjs';
import { checkNumber, InvalidOptionError } from '../../lib/core/errors.ts';
import { checkRetryPolicy, type RetryPolicy } from '../../lib/core/retry.ts';
import type { ChangeEvent, DateSeparator, InvalidChangeEventError, TableDef } from '../../lib/codec/index.ts';
import { checkCanalJsonOptions, CANAL_JSON_DEFAULTS, type CanalJsonDialect } from '../../lib/codec/canalJson.ts';
import { checkCsvOptions, CSV_DEFAULTS, type CsvDialect, type CsvOptions } from '../../lib/codec/csv.ts';
import type { AnyRegistry } from '../../lib/metrics/index.ts';
import type { ExternalStorage } from '../../lib/storage/storage.ts';
import type { BatchReason } from '../../operators/batchBy.ts';
import type { RowProtocol } from './encoder.ts';

export interface StorageSinkOptions {
  storage: ExternalStorage;
  /** Row format: 'csv' (files `.csv`) or 'canal-json' (`.json`). Default 'csv'. */
  protocol?: RowProtocol;
  /** A data file is cut this long after its first row at the latest (ms, >= 100). Default 5000. */
  flushIntervalMs?: number;
  /** A data file is cut at this size (bytes). Default 64 MiB. */
  fileSizeBytes?: number;
  /**
   * The date level of data folders ('none', 'year', 'month', 'day'). Default 'day'. There is no
   * partition level: change events carry no physical partition id, so a partitioned table's rows go
   * to its table folder (as TiCDC with enable-partition-separator=false); a consumer reads this
   * sink's output with any enable-partition-separator setting.
   */
  dateSeparator?: DateSeparator;
  fileIndexWidth?: number;
  /**
   * csv only: TiCDC's csv settings (delimiter, quote, terminator, nullString, includeCommitTs,
   * binaryEncodingMethod, outputOldValue, outputHandleKey, outputFieldHeader; see CsvOptions), with
   * TiCDC's defaults except `includeCommitTs`, which defaults to true (a departure: a consumer needs
   * the commit ts to skip rows it already applied when a sink reruns; false gives TiCDC's default bytes).
   */
  csv?: CsvOptions;
  /**
   * canal-json only. `enableTidbExtension`: write `_tidb: {"commitTs": N}` in every row (TiCDC's
   * `enable-tidb-extension`, `--enable-tidb-extension[=false]`). Default true, a departure from
   * TiCDC's false: without the commit ts a consumer cannot tell a row it applied from a new one, and
   * applies files in order only. false gives TiCDC's default bytes.
   * `terminator`: ends each row (TiCDC's sink `terminator`, which applies to canal-json as to csv,
   * `--terminator`; csv's is `csv.terminator`). One or more control characters (U+0000..U+001F, such
   * as '\n'), which a row never holds raw, so any of them reads back. Default '\r\n', TiCDC's.
   */
  canalJson?: { enableTidbExtension?: boolean; terminator?: string };
  /**
   * A table's rows come from several dispatchers (TiCDC's table across nodes): each dispatcher gets
   * its own data files `CDC_{dispatcherId}_{index}` and index file `meta/CDC_{dispatcherId}.index`,
   * so every file stream keeps one dispatcher's commit order. Without it (the default) rows of a table
   * share its files in arrival order, which is right when each table has one dispatcher at a time;
   * rows of several interleave their commit ts there, and a consumer that skips rows by commit ts
   * (as storageConsumer does) may skip some. Default false.
   */
  tableAcrossDispatchers?: boolean;
  /** Definitions of tables whose rows come before (or without) a DDL; their version is the start ts. */
  tables?: readonly TableDef[];
  /**
   * Memory for rows accepted and not yet durable, by estimate (their encoded size plus the state
   * each holds while in flight, ~1 KiB). Wakes are held above 0.8 of it and released at 0.6; above
   * 0.4 the open batch is written at once (reason `quota`) instead of waiting for the interval.
   * Default 64 MiB.
   */
  memoryQuotaBytes?: number;
  /** The spool: its own folder (default a fresh temp folder) and quotas (bytes). */
  spool?: { dir?: string; memoryBytes?: number; diskQuotaBytes?: number; segmentBytes?: number };
  /**
   * A dispatcher sending nothing for this long, with every row durable, has its state reclaimed
   * down to its checkpoint (which still holds the metadata checkpoint: rows carry no resolved ts).
   * Checked every checkpointIntervalMs. Default 30000.
   */
  dispatcherIdleMs?: number;
  /** The `metadata` checkpoint is rewritten at most this often (ms). Default 2000. */
  checkpointIntervalMs?: number;
  /**
   * Resume from the storage's own `metadata` checkpoint N, as TiCDC resumes a changefeed from its
   * checkpoint-ts: every event at or below N is already durable there, so it is skipped (counted and
   * reported as `skipped`, never written again), and the checkpoint only moves on from N. A skipped
   * DDL still teaches the sink its table definition (rows above N need it); its schema file exists
   * and is not written again. Without a `metadata` file every event is written. false: write every
   * event again, into new files after the existing ones (a consumer then applies them again); the
   * checkpoint still never goes below N (a `metadata` file that is no checkpoint is then replaced). Default true.
   * Exact under the input contract the sink enforces (onBadEvent): no event comes at or below a
   * checkpoint already written, i.e. each dispatcher in commit order and no dispatcher starting below
   * the others' last commit ts (what TiCDC's resolved ts guarantees; the events carry none). Every
   * checkpoint written, periodic or at a stop, is then one no later event goes below, and a rerun on
   * the same input loses nothing. An input breaking it is refused as a bad event in any run that
   * reads the offending event, a rerun too (skipped events are held to it), but a checkpoint written
   * by a run killed before reading it already covers it.
   */
  resume?: boolean;
  /**
   * An event the sink cannot take (malformed, a row before its table's DDL, columns or values that do
   * not fit its table definition, NULL in a NOT NULL column, a commit ts going back on its
   * dispatcher, or a commit ts at or below a checkpoint this run already wrote), as an
   * `InvalidChangeEventError` naming it: 'skip' drops it (acknowledged) and goes
   * on; 'stop' (the default without this option) stops taking events there, makes what came before
   * durable, writes the checkpoint, then errors with it. A promise of either (storing the event
   * somewhere first) lets events go on meanwhile, but the checkpoint stays below the event's commit ts
   * until it resolves 'skip'; 'stop' or a rejection stops the input at once and errors with the
   * event's error or the rejection's. Events at or below the checkpoint resumed from are skipped
   * unchecked (a DDL still defines its table).
   */
  onBadEvent?: (error: InvalidChangeEventError, event: ChangeEvent) => 'skip' | 'stop' | PromiseLike<'skip' | 'stop'>;
  /** Where an event came from, for messages (e.g. `line 17`); `index` counts events from 1. Default `event #<index>`. */
  eventPosition?: (event: ChangeEvent, index: number) => string;
  /**
   * Retries of the storage's reads and writes (data, index, schema files, the `metadata` checkpoint)
   * after transient failures; a permanent one fails at once. `maxElapsedMs` is a time budget for an
   * outage (`{ maxRetries: Infinity, maxElapsedMs: 600_000 }`: ride out 10 minutes); a 'stall' report
   * is emitted before each retry's backoff. The storages retry transient failures too: give them
   * `retry: { maxRetries: 0 }` (openStorage) to make this the one budget.
   */
  retry?: Partial<RetryPolicy>;
  /**
   * Metrics in `registry` under the label `pipeline`: watermark, drain (ddl_drain_duration_seconds),
   * spool gauges, and per data file flush_tasks_total / flush_duration_by_reason_seconds /
   * flush_file_size_bytes by batch reason, plus retries_total{operation="write"} and
   * progress_paths{state} (dispatchers active and idle). Default none.
   */
  metrics?: { registry: AnyRegistry; pipeline: string };
  scheduler?: SchedulerLike;
}

/** What the sink reports as it goes. */
export type SinkProgress =
  | { readonly kind: 'data'; readonly path: string; readonly rows: number; readonly bytes: number; readonly reason: BatchReason }
  | { readonly kind: 'schema'; readonly path: string; readonly commitTs: bigint }
  | {
      /**
       * Events at or below the resumed checkpoint `upToTs`, skipped: durable from an earlier run. `events`
       * is the total so far, reported when a run of skipped events ends and at the end of the input.
       */
      readonly kind: 'skipped';
      readonly events: number;
      readonly upToTs: bigint;
    }
  | {
      /**
       * A read or write of the storage failed transiently and is retried after `delayMs`: `attempt`
       * (1 after the first failure) `elapsedMs` after the operation first failed, within the retry
       * policy's `maxElapsedMs` (`retryForMs`, Infinity without one). Nothing is lost: the operation goes on.
       */
      readonly kind: 'stall';
      /** The storage's URI, without credentials. */
      readonly target: string;
      /** What is retried: "storageSink: data file of shop.orders", "storageSink: metadata checkpoint". */
      readonly operation: string;
      readonly attempt: number;
      readonly elapsedMs: number;
      readonly delayMs: number;
      readonly retryForMs: number;
      /** The failure of the attempt that just failed. */
      readonly error: unknown;
    }
  | {
      readonly kind: 'checkpoint';
      readonly checkpointTs: bigint;
      /** Dispatchers with state, and idle ones reduced to their checkpoint (see dispatcherIdleMs). */
      readonly dispatchers: { readonly active: number; readonly idle: number };
    };

const MiB = 1024 * 1024;

export const STORAGE_SINK_DEFAULTS = Object.freeze({
  protocol: 'csv' as RowProtocol,
  /** TiCDC's csv defaults, but with the commit ts column (see StorageSinkOptions.csv). */
  csv: Object.freeze({ ...CSV_DEFAULTS, includeCommitTs: true }) as CsvDialect,
  /** The TiDB extension on (TiCDC: off), TiCDC's terminator CRLF (see StorageSinkOptions.canalJson). */
  canalJson: CANAL_JSON_DEFAULTS,
  resume: true,
  flushIntervalMs: 5000,
  fileSizeBytes: 64 * MiB,
  checkpointIntervalMs: 2000,
  dispatcherIdleMs: 30_000,
  spoolMemoryBytes: 64 * MiB,
  spoolDiskQuotaBytes: 10 * 1024 * MiB,
  memoryQuotaBytes: 64 * MiB,
  /** Wakes are held above this share of the quota (memory, or spool memory + disk), released at the low share. */
  highWatermark: 0.8,
  lowWatermark: 0.6,
  /** Above this share of the quota the open batch is written at once (reason `quota`). */
  cutWatermark: 0.4,
});

const OWNER = 'storageSink';

export interface SinkSettings {
  storage: ExternalStorage;
  protocol: RowProtocol;
  /** The csv dialect, checked, defaults filled in; undefined with canal-json. */
  csv: CsvDialect | undefined;
  /** The canal-json settings, checked, defaults filled in; undefined with csv. */
  canalJson: CanalJsonDialect | undefined;
  resume: boolean;
  flushIntervalMs: number;
  fileSizeBytes: number;
  memoryQuotaBytes: number;
  checkpointIntervalMs: number;
  dispatcherIdleMs: number;
  retry: RetryPolicy;
  metrics: StorageSinkOptions['metrics'];
  scheduler: SchedulerLike;
}

export function checkOptions(options: StorageSinkOptions): SinkSettings {
  const storage = options.storage;
  if (storage === null || typeof storage !== 'object' || typeof storage.put !== 'function') {
    throw new InvalidOptionError(OWNER, 'storage', storage, 'an ExternalStorage (see openStorage)');
  }
  const protocol = options.protocol ?? STORAGE_SINK_DEFAULTS.protocol;
  if (protocol !== 'csv' && protocol !== 'canal-json') throw new InvalidOptionError(OWNER, 'protocol', protocol, "'csv' or 'canal-json'");
  if (options.tableAcrossDispatchers !== undefined && typeof options.tableAcrossDispatchers !== 'boolean') {
    throw new InvalidOptionError(OWNER, 'tableAcrossDispatchers', options.tableAcrossDispatchers, 'a boolean');
  }
  if (options.resume !== undefined && typeof options.resume !== 'boolean') throw new InvalidOptionError(OWNER, 'resume', options.resume, 'a boolean');
  if (options.csv !== undefined && protocol !== 'csv') throw new InvalidOptionError(OWNER, 'csv', options.csv, `absent with protocol '${protocol}'`);
  const csv = protocol === 'csv' ? checkCsvOptions(OWNER, options.csv, STORAGE_SINK_DEFAULTS.csv) : undefined;
  if (options.canalJson !== undefined && protocol !== 'canal-json') throw new InvalidOptionError(OWNER, 'canalJson', options.canalJson, `absent with protocol '${protocol}'`);
  const canalJson = protocol === 'canal-json' ? checkCanalJsonOptions(OWNER, options.canalJson, STORAGE_SINK_DEFAULTS.canalJson) : undefined;
  const metrics = options.metrics;
  if (
    metrics !== undefined &&
    (metrics === null || typeof metrics !== 'object' || typeof metrics.registry?.getMetricsAsJSON !== 'function' ||
      typeof metrics.pipeline !== 'string' || metrics.pipeline === '')
  ) {
    throw new InvalidOptionError(OWNER, 'metrics', metrics, 'an object { registry: a prom-client Registry (createMetricsRegistry), pipeline: a non-empty string }');
  }
  return {
    storage,
    protocol,
    csv,
    canalJson,
    resume: options.resume ?? STORAGE_SINK_DEFAULTS.resume,
    flushIntervalMs: checkNumber(OWNER, 'flushIntervalMs', options.flushIntervalMs ?? STORAGE_SINK_DEFAULTS.flushIntervalMs, { min: 100 }),
    fileSizeBytes: checkNumber(OWNER, 'fileSizeBytes', options.fileSizeBytes ?? STORAGE_SINK_DEFAULTS.fileSizeBytes, { min: 1, integer: true }),
    memoryQuotaBytes: checkNumber(OWNER, 'memoryQuotaBytes', options.memoryQuotaBytes ?? STORAGE_SINK_DEFAULTS.memoryQuotaBytes, { min: 1, integer: true }),
    checkpointIntervalMs: checkNumber(
      OWNER,
      'checkpointIntervalMs',
      options.checkpointIntervalMs ?? STORAGE_SINK_DEFAULTS.checkpointIntervalMs,
      { min: 1 },
    ),
    dispatcherIdleMs: checkNumber(OWNER, 'dispatcherIdleMs', options.dispatcherIdleMs ?? STORAGE_SINK_DEFAULTS.dispatcherIdleMs, { min: 0 }),
    retry: checkRetryPolicy(OWNER, options.retry),
    metrics,
    scheduler: options.scheduler ?? asyncScheduler,
  };
}
