/**
 * Metrics of the storage consumer (replay into MySQL): files and rows applied, transactions, apply
 * duration, lag behind the sink's checkpoint, discovery listings and errors, and the retries through
 * an outage (by service and operation) with when the stall going on began.
 *
 * Invariant guarded here: recording never throws into the consumer (odd values are skipped) and
 * counters only move forward.
 */
import { checkLabels, finite, instrumentsIn, METRIC_BUCKETS, type MetricLabels } from './instruments.ts';
import type { AnyRegistry } from './registry.ts';

const OWNER = 'storageConsumerMetrics';

export interface StorageConsumerMetrics {
  /** One data file applied in one transaction: rows applied and skipped (already applied), duration in ms. */
  readonly dataFile: (rows: number, skipped: number, durationMs: number) => void;
  /** One schema file's DDL applied, duration in ms. */
  readonly ddl: (durationMs: number) => void;
  /** One discovery round: whether it listed, and the storage keys listed. */
  readonly round: (listed: boolean, keysListed: number, indexReads: number) => void;
  /** Lag behind the sink's checkpoint, in ms. */
  readonly lag: (lagMs: number) => void;
  /** An error that stopped the consumer, by stage (discover, decode, apply, ddl). */
  readonly error: (stage: string) => void;
  /**
   * One retry after a transient failure (a 'stall' event): `service` mysql or storage, `operation` a
   * short kind (apply, ddl, checkpoint; get, list...), `elapsedMs` since the operation first failed.
   */
  readonly retry: (service: string, operation: string, elapsedMs: number) => void;
}

/**
 * Counters `replay_files_applied_total{kind}` (data, schema), `replay_rows_applied_total`,
 * `replay_rows_skipped_total`, `replay_transactions_total`, `replay_rounds_total{listed}`,
 * `replay_keys_listed_total`, `replay_index_reads_total`, `replay_errors_total{stage}`,
 * `replay_retries_total{service,operation}`; histogram `replay_apply_duration_seconds{kind}`
 * (METRIC_BUCKETS.flushSeconds); gauges `replay_lag_seconds` and `replay_stalled_since_seconds` (Unix
 * time the operation being retried first failed; 0 again once a file, a DDL or a round succeeds).
 *
 * @example
 * const metrics = storageConsumerMetrics(registry, { pipeline: 'replay' });
 * metrics.dataFile(rows, skipped, elapsedMs);
 */
export function storageConsumerMetrics(registry: AnyRegistry, labels: MetricLabels): StorageConsumerMetrics {
  const series = checkLabels(OWNER, labels, ['kind', 'stage', 'listed', 'service', 'operation']);
  const names = Object.keys(series);
  const plain = instrumentsIn(OWNER, registry, names);
  const byKind = instrumentsIn(OWNER, registry, [...names, 'kind']);
  const files = byKind.counter('replay_files_applied_total', 'Files the consumer applied to MySQL, by kind (data, schema).');
  const duration = byKind.histogram('replay_apply_duration_seconds', 'Time to apply one file (its transaction, or its DDL), by kind.', METRIC_BUCKETS.flushSeconds);
  const rows = plain.counter('replay_rows_applied_total', 'Rows the consumer applied to MySQL.');
  const skipped = plain.counter('replay_rows_skipped_total', 'Rows skipped because a commit ts below them was already applied.');
  const transactions = plain.counter('replay_transactions_total', 'MySQL transactions the consumer committed (rows with their checkpoint).');
  const keysListed = plain.counter('replay_keys_listed_total', 'Storage keys the consumer listed while discovering files.');
  const indexReads = plain.counter('replay_index_reads_total', 'Index files the consumer read.');
  const lag = plain.gauge('replay_lag_seconds', "How far the applied rows are behind the sink's checkpoint, in seconds.");
  const rounds = instrumentsIn(OWNER, registry, [...names, 'listed']).counter('replay_rounds_total', 'Discovery rounds, by whether they listed the storage.');
  const errors = instrumentsIn(OWNER, registry, [...names, 'stage']).counter('replay_errors_total', 'Errors that stopped the consumer, by stage.');
  const retries = instrumentsIn(OWNER, registry, [...names, 'service', 'operation']).counter('replay_retries_total', 'Retries after a transient failure (MySQL or storage outage), by service and operation.');
  const stalledSince = plain.gauge('replay_stalled_since_seconds', 'Unix time at which the operation being retried first failed; 0 when nothing is being retried.');
  for (const counter of [rows, skipped, transactions, keysListed, indexReads]) counter.inc(series, 0);
  lag.set(series, 0);
  let stalled = false;
  stalledSince.set(series, 0);
  /** Something succeeded: no stall goes on. */
  const unstall = () => {
    if (!stalled) return;
    stalled = false;
    stalledSince.set(series, 0);
  };
  const seconds = (ms: number) => (finite(ms) && ms >= 0 ? ms / 1000 : undefined);

  return {
    dataFile: (applied, skip, durationMs) => {
      unstall();
      files.inc({ ...series, kind: 'data' });
      transactions.inc(series);
      if (finite(applied) && applied >= 0) rows.inc(series, applied);
      if (finite(skip) && skip >= 0) skipped.inc(series, skip);
      const s = seconds(durationMs);
      if (s !== undefined) duration.observe({ ...series, kind: 'data' }, s);
    },
    ddl: (durationMs) => {
      unstall();
      files.inc({ ...series, kind: 'schema' });
      const s = seconds(durationMs);
      if (s !== undefined) duration.observe({ ...series, kind: 'schema' }, s);
    },
    round: (listed, keys, reads) => {
      unstall();
      rounds.inc({ ...series, listed: listed ? 'true' : 'false' });
      if (finite(keys) && keys >= 0) keysListed.inc(series, keys);
      if (finite(reads) && reads >= 0) indexReads.inc(series, reads);
    },
    lag: (lagMs) => {
      const s = seconds(lagMs);
      if (s !== undefined) lag.set(series, s);
    },
    error: (stage) => {
      if (typeof stage === 'string') errors.inc({ ...series, stage });
    },
    retry: (service, operation, elapsedMs) => {
      if (typeof service !== 'string' || typeof operation !== 'string') return;
      retries.inc({ ...series, service, operation });
      if (!stalled && finite(elapsedMs) && elapsedMs >= 0) {
        stalled = true;
        stalledSince.set(series, (Date.now() - elapsedMs) / 1000);
      }
    },
  };
}
