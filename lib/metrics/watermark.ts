/**
 * Metrics of `watermarkBackpressure`: bytes in flight below it and the wakes it holds back.
 *
 * Invariant guarded here: the callback never throws into the operator (odd stats are skipped) and
 * its counters only move forward.
 */
import type { WatermarkStats } from '../../operators/watermarkBackpressure.ts';
import { checkLabels, instrumentsIn, isStats, setGauge, TotalCounter, type MetricLabels } from './instruments.ts';
import type { AnyRegistry } from './registry.ts';

const OWNER = 'watermarkMetrics';

/**
 * Binds `watermarkBackpressure` stats to metrics in `registry` under `labels`; returns the
 * `onStats` callback to pass to the operator. Several pipelines share the metrics by label values.
 *
 * Gauges `watermark_usage_bytes`, `held_wakes`, `watermark_holding` (1 while holding, else 0);
 * counters `wake_suppressed_total`, `wake_resumed_total`, advanced by the increase of the totals
 * the stats carry (a total that goes down, as after a restart, is taken as the new base).
 *
 * @example
 * watermarkBackpressure({ highBytes, lowBytes, sizeOf, onStats: watermarkMetrics(registry, { pipeline: 'cdc' }) })
 */
export function watermarkMetrics(registry: AnyRegistry, labels: MetricLabels): (stats: Readonly<WatermarkStats>) => void {
  const series = checkLabels(OWNER, labels);
  const metrics = instrumentsIn(OWNER, registry, Object.keys(series));
  const usageBytes = metrics.gauge(
    'watermark_usage_bytes',
    'Bytes passed watermarkBackpressure and not yet flushed or failed.',
  );
  const heldWakes = metrics.gauge(
    'held_wakes',
    'Wakes (enqueued signals) watermarkBackpressure withholds from upstream right now.',
  );
  const holding = metrics.gauge(
    'watermark_holding',
    '1 while watermarkBackpressure holds wakes (from above highBytes until back at lowBytes), else 0.',
  );
  const suppressedWakes = new TotalCounter(
    metrics.counter('wake_suppressed_total', 'Wakes watermarkBackpressure held back because usage was above its high mark.'),
    series,
  );
  const resumedWakes = new TotalCounter(
    metrics.counter('wake_resumed_total', 'Held wakes watermarkBackpressure released when usage fell to its low mark.'),
    series,
  );
  for (const gauge of [usageBytes, heldWakes, holding]) gauge.set(series, 0);

  return (stats) => {
    if (!isStats(stats)) return;
    setGauge(usageBytes, series, stats.usageBytes);
    setGauge(heldWakes, series, stats.heldWakes);
    if (typeof stats.holding === 'boolean') holding.set(series, stats.holding ? 1 : 0);
    suppressedWakes.advanceTo(stats.suppressedWakes);
    resumedWakes.advanceTo(stats.resumedWakes);
  };
}
