/**
 * Metrics of `drainBarrier`: how long barriers (DDL) wait for their scope to drain, and what is held.
 *
 * Invariant guarded here: the callbacks never throw into the operator (odd stats and durations are
 * skipped).
 */
import type { DrainBarrierStats } from '../../operators/drainBarrier.ts';
import { checkLabels, finite, instrumentsIn, isStats, METRIC_BUCKETS, setGauge, type MetricLabels } from './instruments.ts';
import type { AnyRegistry } from './registry.ts';

const OWNER = 'drainBarrierMetrics';

/** The two callbacks to spread into `drainBarrier`'s options. */
export interface DrainBarrierMetrics {
  readonly onStats: (stats: Readonly<DrainBarrierStats>) => void;
  /** Observes one barrier's wait from arrival to emission (`durationMs`, in ms). */
  readonly onDrained: (event: { readonly durationMs: number }) => void;
}

/**
 * Binds `drainBarrier` stats and drain durations to metrics in `registry` under `labels`.
 *
 * Histogram `ddl_drain_duration_seconds` (buckets METRIC_BUCKETS.drainSeconds); gauges
 * `drain_waiting_barriers`, `drain_active_barriers` (emitted, not yet flushed), `drain_held_items`,
 * `drain_in_flight_items`.
 *
 * @example
 * drainBarrier({ isBarrier, scopeOf, keyOf, ...drainBarrierMetrics(registry, { pipeline: 'cdc' }) })
 */
export function drainBarrierMetrics(registry: AnyRegistry, labels: MetricLabels): DrainBarrierMetrics {
  const series = checkLabels(OWNER, labels);
  const metrics = instrumentsIn(OWNER, registry, Object.keys(series));
  const drainSeconds = metrics.histogram(
    'ddl_drain_duration_seconds',
    'Time a barrier (DDL) waited in drainBarrier for every earlier item of its scope to be flushed.',
    METRIC_BUCKETS.drainSeconds,
  );
  const waitingBarriers = metrics.gauge('drain_waiting_barriers', 'Barriers in drainBarrier waiting for their scope to drain.');
  const activeBarriers = metrics.gauge(
    'drain_active_barriers',
    'Barriers drainBarrier emitted and not yet flushed (holding later items of their scope).',
  );
  const heldItems = metrics.gauge('drain_held_items', 'Items drainBarrier holds behind a barrier of their scope.');
  const inFlightItems = metrics.gauge('drain_in_flight_items', 'Items drainBarrier emitted and not yet flushed.');
  drainSeconds.zero(series);
  for (const gauge of [waitingBarriers, activeBarriers, heldItems, inFlightItems]) gauge.set(series, 0);

  return {
    onStats: (stats) => {
      if (!isStats(stats)) return;
      setGauge(waitingBarriers, series, stats.waitingBarriers);
      setGauge(activeBarriers, series, stats.activeBarriers);
      setGauge(heldItems, series, stats.heldItems);
      setGauge(inFlightItems, series, stats.inFlight);
    },
    onDrained: (event) => {
      const durationMs = isStats(event) ? event.durationMs : undefined;
      if (finite(durationMs) && durationMs >= 0) drainSeconds.observe(series, durationMs / 1000);
    },
  };
}
