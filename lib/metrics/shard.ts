/**
 * Metrics of `shardBy`: how many shards are busy and what waits behind them.
 *
 * Invariant guarded here: the callback never throws into the operator (odd stats are skipped) and
 * its counter only moves forward.
 */
import type { ShardStats } from '../../operators/shardBy.ts';
import { checkLabels, instrumentsIn, isStats, setGauge, TotalCounter, type MetricLabels } from './instruments.ts';
import type { AnyRegistry } from './registry.ts';

const OWNER = 'shardMetrics';

/**
 * Binds `shardBy` stats to metrics in `registry` under `labels`; returns the `onStats` callback to
 * pass to the operator.
 *
 * Gauges `shards_active`, `shard_buffered_items`; counter `shard_activations_total` (increase of
 * the stats' idle -> active total).
 *
 * @example
 * shardBy({ shards: 16, keyOf, project, onStats: shardMetrics(registry, { pipeline: 'cdc', stage: 'encode' }) })
 */
export function shardMetrics(registry: AnyRegistry, labels: MetricLabels): (stats: Readonly<ShardStats>) => void {
  const series = checkLabels(OWNER, labels);
  const metrics = instrumentsIn(OWNER, registry, Object.keys(series));
  const activeShards = metrics.gauge('shards_active', 'Shards of shardBy with an item running or waiting.');
  const bufferedItems = metrics.gauge('shard_buffered_items', 'Items waiting behind a running item, over all shards of shardBy.');
  const activations = new TotalCounter(
    metrics.counter('shard_activations_total', 'Idle to active transitions of shardBy shards.'),
    series,
  );
  for (const gauge of [activeShards, bufferedItems]) gauge.set(series, 0);

  return (stats) => {
    if (!isStats(stats)) return;
    setGauge(activeShards, series, stats.activeShards);
    setGauge(bufferedItems, series, stats.buffered);
    activations.advanceTo(stats.activations);
  };
}
