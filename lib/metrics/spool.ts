/**
 * Metrics of `spool`: what it holds in memory and on disk, the emitted-but-unflushed window, and
 * whether its quota holds wakes back.
 *
 * Invariant guarded here: the callback never throws into the operator (odd stats are skipped) and
 * its counters only move forward.
 */
import { checkLabels, instrumentsIn, isStats, setGauge, TotalCounter, type MetricLabels } from './instruments.ts';
import type { SpoolStats } from '../../operators/spool.ts';
import type { AnyRegistry } from './registry.ts';

const OWNER = 'spoolMetrics';

/**
 * Binds `spool` stats to metrics in `registry` under `labels`; returns the callback that takes
 * each stats value (the operator's `onStats`, or a subscriber of its stats stream).
 *
 * Gauges `spool_memory_bytes`, `spool_memory_items`, `spool_index_bytes`, `spool_disk_bytes`, `spool_disk_items`,
 * `spool_segments`, `spool_held_wakes`, `spool_window_bytes`, `spool_quota_hold` (1 while
 * holdReason is 'quota', else 0); counters `spool_spilled_items_total`,
 * `spool_oversized_items_total` (increase of the stats' totals).
 *
 * @example
 * spooled.stats$.subscribe(spoolMetrics(registry, { pipeline: 'cdc' }));
 */
export function spoolMetrics(registry: AnyRegistry, labels: MetricLabels): (stats: Readonly<SpoolStats>) => void {
  const series = checkLabels(OWNER, labels);
  const metrics = instrumentsIn(OWNER, registry, Object.keys(series));
  const memoryBytes = metrics.gauge('spool_memory_bytes', 'Bytes waiting in the spool memory tier.');
  const memoryItems = metrics.gauge('spool_memory_items', 'Items waiting in the spool memory tier.');
  const indexBytes = metrics.gauge('spool_index_bytes', 'Estimated memory of the bookkeeping of items queued in the spool.');
  const diskBytes = metrics.gauge('spool_disk_bytes', 'Bytes of the spool disk segment files.');
  const diskItems = metrics.gauge('spool_disk_items', 'Items waiting in the spool disk segments.');
  const segments = metrics.gauge('spool_segments', 'Disk segment files of the spool.');
  const heldWakes = metrics.gauge('spool_held_wakes', 'Wakes (enqueued signals) the spool withholds from upstream right now.');
  const windowBytes = metrics.gauge('spool_window_bytes', 'Bytes the spool emitted downstream that are not yet flushed.');
  const quotaHold = metrics.gauge(
    'spool_quota_hold',
    '1 while the spool holds wakes because its quota is used up (holdReason quota), else 0.',
  );
  const spilledItems = new TotalCounter(
    metrics.counter('spool_spilled_items_total', 'Items the spool spilled to disk.'),
    series,
  );
  const oversizedItems = new TotalCounter(
    metrics.counter('spool_oversized_items_total', 'Items too large for the spool quota, passed straight through.'),
    series,
  );
  for (const gauge of [memoryBytes, memoryItems, indexBytes, diskBytes, diskItems, segments, heldWakes, windowBytes, quotaHold]) {
    gauge.set(series, 0);
  }

  return (stats) => {
    if (!isStats(stats)) return;
    setGauge(memoryBytes, series, stats.memoryBytes);
    setGauge(memoryItems, series, stats.memoryItems);
    setGauge(indexBytes, series, stats.indexBytes);
    setGauge(diskBytes, series, stats.diskBytes);
    setGauge(diskItems, series, stats.diskItems);
    setGauge(segments, series, stats.segments);
    setGauge(heldWakes, series, stats.heldWakes);
    setGauge(windowBytes, series, stats.windowBytes);
    quotaHold.set(series, stats.holdReason === 'quota' ? 1 : 0);
    spilledItems.advanceTo(stats.spilledItems);
    oversizedItems.advanceTo(stats.oversizedItems);
  };
}
