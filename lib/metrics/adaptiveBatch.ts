/**
 * Metrics of `adaptiveBatch`: the batch size AIMD settles on, the writer's latency, retries and
 * failures, and what waits.
 *
 * Invariant guarded here: the callback never throws into the operator (odd stats are skipped) and
 * its counters only move forward.
 */
import type { AdaptiveBatchStats } from '../../operators/adaptiveBatch.ts';
import {
  checkLabels,
  finite,
  instrumentsIn,
  isStats,
  METRIC_BUCKETS,
  setGauge,
  TotalCounter,
  type MetricLabels,
} from './instruments.ts';
import type { AnyRegistry } from './registry.ts';

const OWNER = 'adaptiveBatchMetrics';

/**
 * Binds `adaptiveBatch` stats to metrics in `registry` under `labels`; returns the `onStats`
 * callback to pass to the operator.
 *
 * Gauges `batch_size_items`, `batch_buffered_items`, `batch_in_flight` (batches); counters
 * `batch_writes_total`, `batch_retries_total`, `batch_failures_total` (increase of the stats'
 * totals); histogram `batch_write_latency_seconds` (buckets METRIC_BUCKETS.writeSeconds), one
 * observation of `lastLatencyMs` each time the writes total goes up (the operator reports after
 * every write, so that is every write's latency).
 *
 * @example
 * adaptiveBatch({ write, ..., onStats: adaptiveBatchMetrics(registry, { pipeline: 'influx' }) })
 */
export function adaptiveBatchMetrics(
  registry: AnyRegistry,
  labels: MetricLabels,
): (stats: Readonly<AdaptiveBatchStats>) => void {
  const series = checkLabels(OWNER, labels);
  const metrics = instrumentsIn(OWNER, registry, Object.keys(series));
  const sizeItems = metrics.gauge('batch_size_items', 'Target batch size adaptiveBatch currently cuts, in items.');
  const bufferedItems = metrics.gauge('batch_buffered_items', 'Items in adaptiveBatch waiting for a write.');
  const inFlight = metrics.gauge(
    'batch_in_flight',
    'Batches adaptiveBatch took and has not yet emitted (writing, backing off, or waiting for an earlier batch).',
  );
  const writes = new TotalCounter(metrics.counter('batch_writes_total', 'Successful writes of adaptiveBatch.'), series);
  const retries = new TotalCounter(
    metrics.counter('batch_retries_total', 'Retries adaptiveBatch started after a failed write attempt.'),
    series,
  );
  const failures = new TotalCounter(metrics.counter('batch_failures_total', 'Failed write attempts of adaptiveBatch.'), series);
  const writeSeconds = metrics.histogram(
    'batch_write_latency_seconds',
    'Latency of successful adaptiveBatch writes.',
    METRIC_BUCKETS.writeSeconds,
  );
  writeSeconds.zero(series);
  for (const gauge of [sizeItems, bufferedItems, inFlight]) gauge.set(series, 0);

  return (stats) => {
    if (!isStats(stats)) return;
    setGauge(sizeItems, series, stats.size);
    setGauge(bufferedItems, series, stats.buffered);
    setGauge(inFlight, series, stats.inFlight);
    retries.advanceTo(stats.retries);
    failures.advanceTo(stats.failures);
    if (writes.advanceTo(stats.writes) > 0 && finite(stats.lastLatencyMs) && stats.lastLatencyMs >= 0) {
      writeSeconds.observe(series, stats.lastLatencyMs / 1000);
    }
  };
}
