/**
 * Metrics of the line-protocol sink (pipelines/batchFlush): points and batches written, requests and
 * bytes sent, write errors by kind, dead letters, and the checkpoint (saves, lines held, wakes waiting
 * for it). The batch size, write latency histogram and retries come from `adaptiveBatchMetrics`,
 * which the sink binds next to this one.
 *
 * Invariant guarded here: the callback never throws into the sink (odd stats are skipped) and its
 * counters only move forward.
 */
import { checkLabels, finite, instrumentsIn, isStats, setGauge, TotalCounter, type MetricLabels } from './instruments.ts';
import type { AnyRegistry } from './registry.ts';

const OWNER = 'lineProtocolSinkMetrics';

/** The running totals and levels the sink reports (its `LineSinkStats`). */
export interface LineSinkStatsLike {
  pointsWritten: number;
  batches: number;
  requests: number;
  bytesSent: number;
  /** Attempts that failed with a retryable error (5xx, 429, network, timeout). */
  retryableErrors: number;
  /** Requests the server refused as bad points (400/413/422), which start an isolation. */
  rejectedWrites: number;
  deadLetters: number;
  checkpointSaves: number;
  /** Lines held in live checkpoint segments. */
  checkpointLines: number;
  /** Wakes (enqueued) held until a checkpoint covers their record. */
  heldWakes: number;
  restoredLines: number;
  /** Unix ms at which the batch being retried first failed; 0 (or absent) when no write is being retried. */
  stalledSinceMs?: number;
}

/**
 * Binds the sink's stats to metrics in `registry` under `labels`; returns the callback the sink calls.
 *
 * Counters `lines_points_written_total`, `lines_batches_total`, `lines_requests_total`,
 * `lines_sent_bytes_total`, `lines_write_errors_total{kind="retryable"|"rejected"}`,
 * `lines_dead_letters_total`, `lines_checkpoint_saves_total`, `lines_restored_total`; gauges
 * `lines_checkpoint_lines`, `lines_held_wakes`, `lines_stalled_since_seconds` (Unix time the batch
 * being retried first failed, 0 when none; the retries themselves are `batch_retries_total`).
 *
 * @example
 * lineProtocolSink({ ..., metrics: { registry, pipeline: 'influx' } }) // binds this and adaptiveBatchMetrics
 */
export function lineProtocolSinkMetrics(registry: AnyRegistry, labels: MetricLabels): (stats: Readonly<LineSinkStatsLike>) => void {
  const series = checkLabels(OWNER, labels, ['kind']);
  const metrics = instrumentsIn(OWNER, registry, Object.keys(series));
  const byKind = instrumentsIn(OWNER, registry, [...Object.keys(series), 'kind']);
  const counter = (name: string, help: string) => new TotalCounter(metrics.counter(name, help), series);
  const points = counter('lines_points_written_total', 'Points the line-protocol sink got a success answer for.');
  const batches = counter('lines_batches_total', 'Batches the line-protocol sink wrote (bad lines isolated included).');
  const requests = counter('lines_requests_total', 'Write requests the line-protocol sink sent.');
  const bytes = counter('lines_sent_bytes_total', 'Bytes of request bodies the line-protocol sink sent (after compression).');
  const deadLetters = counter('lines_dead_letters_total', 'Lines the server refused, isolated and sent to the dead-letter output.');
  const saves = counter('lines_checkpoint_saves_total', 'Checkpoint segments the line-protocol sink saved.');
  const restored = counter('lines_restored_total', 'Lines restored from a checkpoint at start and written first.');
  const errors = byKind.counter('lines_write_errors_total', 'Failed write requests of the line-protocol sink, by kind (retryable or rejected).');
  const retryable = new TotalCounter(errors, { ...series, kind: 'retryable' });
  const rejected = new TotalCounter(errors, { ...series, kind: 'rejected' });
  const checkpointLines = metrics.gauge('lines_checkpoint_lines', 'Lines held in live checkpoint segments of the line-protocol sink.');
  const heldWakes = metrics.gauge('lines_held_wakes', 'Records whose wake (enqueued) waits for a checkpoint to cover them.');
  const stalledSince = metrics.gauge('lines_stalled_since_seconds', 'Unix time at which the write being retried first failed; 0 when no write is being retried.');
  checkpointLines.set(series, 0);
  heldWakes.set(series, 0);
  stalledSince.set(series, 0);

  return (stats) => {
    if (!isStats(stats)) return;
    points.advanceTo(stats.pointsWritten);
    batches.advanceTo(stats.batches);
    requests.advanceTo(stats.requests);
    bytes.advanceTo(stats.bytesSent);
    deadLetters.advanceTo(stats.deadLetters);
    saves.advanceTo(stats.checkpointSaves);
    restored.advanceTo(stats.restoredLines);
    retryable.advanceTo(stats.retryableErrors);
    rejected.advanceTo(stats.rejectedWrites);
    if (finite(stats.checkpointLines)) setGauge(checkpointLines, series, stats.checkpointLines);
    if (finite(stats.heldWakes)) setGauge(heldWakes, series, stats.heldWakes);
    if (finite(stats.stalledSinceMs) && stats.stalledSinceMs >= 0) setGauge(stalledSince, series, stats.stalledSinceMs / 1000);
  };
}
