/**
 * Metrics of a writer: flushes by reason (is throughput paced by the interval or by size?), the
 * size of the files it writes, and retries by operation (seed 000, section 8).
 *
 * Invariant guarded here: recording never throws into the writer (odd values are skipped).
 */
import { checkLabels, finite, instrumentsIn, METRIC_BUCKETS, type MetricLabels } from './instruments.ts';
import type { AnyRegistry } from './registry.ts';

const OWNER = 'flushMetrics';

/** Recorders a writer calls itself. */
export interface FlushMetrics {
  /** Records one flush: its reason (size, interval, barrier, complete, quota...), duration in ms, file size in bytes. */
  readonly observe: (reason: string, durationMs: number, bytes: number) => void;
  /** Records one retry of `operation` (put, index, commit...). */
  readonly retry: (operation: string) => void;
}

/**
 * Writer metrics in `registry` under `labels` (which must not use `reason` or `operation`).
 *
 * Counter `flush_tasks_total{reason}`; histograms `flush_duration_by_reason_seconds{reason}`
 * (buckets METRIC_BUCKETS.flushSeconds) and `flush_file_size_bytes{reason}` (METRIC_BUCKETS.fileBytes);
 * counter `retries_total{operation}`. A flush with an odd duration or size is still counted, without
 * that observation.
 *
 * @example
 * const flushes = flushMetrics(registry, { pipeline: 'cdc' });
 * flushes.observe(batch.reason, elapsedMs, file.byteLength);
 */
export function flushMetrics(registry: AnyRegistry, labels: MetricLabels): FlushMetrics {
  const series = checkLabels(OWNER, labels, ['reason', 'operation']);
  const names = Object.keys(series);
  const byReason = instrumentsIn(OWNER, registry, [...names, 'reason']);
  const tasks = byReason.counter('flush_tasks_total', 'Flushes of the writer, by the reason their batch was cut.');
  const durationSeconds = byReason.histogram(
    'flush_duration_by_reason_seconds',
    'Time to flush one batch (data file and index), by reason.',
    METRIC_BUCKETS.flushSeconds,
  );
  const fileBytes = byReason.histogram(
    'flush_file_size_bytes',
    'Size of the data files the writer flushed, by reason.',
    METRIC_BUCKETS.fileBytes,
  );
  const byOperation = instrumentsIn(OWNER, registry, [...names, 'operation']);
  const retries = byOperation.counter('retries_total', 'Retries of writer operations, by operation.');

  return {
    observe: (reason, durationMs, bytes) => {
      if (typeof reason !== 'string') return;
      const labelsOfReason = { ...series, reason };
      tasks.inc(labelsOfReason);
      if (finite(durationMs) && durationMs >= 0) durationSeconds.observe(labelsOfReason, durationMs / 1000);
      if (finite(bytes) && bytes >= 0) fileBytes.observe(labelsOfReason, bytes);
    },
    retry: (operation) => {
      if (typeof operation !== 'string') return;
      retries.inc({ ...series, operation });
    },
  };
}
