/**
 * `<flow>_bad_records_total`: input lines a command could not read and skipped or dead-lettered
 * (`--bad-records skip|dead-letter:<path>`), e.g. `sluice_lines_bad_records_total{pipeline="lines"}`.
 *
 * Invariant guarded here: the counter is registered once per registry and only moves forward; it
 * starts at 0, so a dashboard sees it before the first bad line.
 */
import { Counter } from 'prom-client';
import { metricPrefixOf, type AnyRegistry } from './registry.ts';

/**
 * Registers the counter of `flow` (`lines`, `sink`) in `metrics.registry`; returns the function that
 * counts one bad line.
 *
 * @example const countBad = badRecordsMetric({ registry, pipeline: 'lines' }, 'lines'); countBad();
 */
export function badRecordsMetric(metrics: { registry: AnyRegistry; pipeline: string }, flow: string): () => void {
  const counter = new Counter({
    name: `${metricPrefixOf(metrics.registry)}${flow}_bad_records_total`,
    help: 'Input lines that could not be read and were skipped or dead-lettered (--bad-records)',
    labelNames: ['pipeline'],
    registers: [metrics.registry],
  });
  const labels = { pipeline: metrics.pipeline };
  counter.inc(labels, 0);
  return () => counter.inc(labels);
}
