/**
 * Metrics of a progress tracker's paths (dispatchers, partitions, channels): how many have state
 * and how many idle ones are reduced to their checkpoint (ProgressTracker.park).
 */
import type { AnyRegistry } from './registry.ts';
import { checkLabels, instrumentsIn, type MetricLabels } from './instruments.ts';

const OWNER = 'pathMetrics';

export interface PathMetrics {
  /** Records the current counts. */
  readonly set: (counts: { readonly active: number; readonly parked: number }) => void;
}

/**
 * Gauge `progress_paths{state="active"|"idle"}` in `registry` under `labels` (which must not use
 * `state`).
 *
 * @example
 * const paths = pathMetrics(registry, { pipeline: 'cdc' });
 * paths.set(tracker.pathCounts);
 */
export function pathMetrics(registry: AnyRegistry, labels: MetricLabels): PathMetrics {
  const series = checkLabels(OWNER, labels, ['state']);
  const gauge = instrumentsIn(OWNER, registry, [...Object.keys(series), 'state']).gauge(
    'progress_paths',
    'Paths of the progress tracker (dispatchers, partitions) with state (active) and reduced to their checkpoint after idleness (idle).',
  );
  return {
    set: ({ active, parked }) => {
      gauge.set({ ...series, state: 'active' }, active);
      gauge.set({ ...series, state: 'idle' }, parked);
    },
  };
}
