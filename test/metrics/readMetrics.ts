/** Reads exact metric values out of a registry, for assertions. */
import type { Registry, RegistryContentType } from 'prom-client';

type AnyRegistry = Registry<RegistryContentType>;
type Labels = Record<string, string>;

function sameLabels(actual: Record<string, unknown>, expected: Labels): boolean {
  const keys = Object.keys(actual);
  return keys.length === Object.keys(expected).length && keys.every((key) => key in expected && String(actual[key]) === expected[key]);
}

/** The value of the sample `name` (a gauge, a counter, or a histogram's `_sum`/`_count`) with exactly `labels`. */
export async function valueOf(registry: AnyRegistry, name: string, labels: Labels): Promise<number | undefined> {
  for (const metric of await registry.getMetricsAsJSON()) {
    for (const sample of metric.values) {
      const sampleName = (sample as { metricName?: string }).metricName ?? metric.name;
      if (sampleName === name && sameLabels(sample.labels, labels)) return sample.value;
    }
  }
  return undefined;
}

/** A histogram series: cumulative count per upper bound (`+Inf` last), sum and count. */
export interface HistogramSeries {
  buckets: Record<string, number>;
  sum: number | undefined;
  count: number | undefined;
}

export async function histogramOf(registry: AnyRegistry, name: string, labels: Labels): Promise<HistogramSeries> {
  const buckets: Record<string, number> = {};
  const metric = (await registry.getMetricsAsJSON()).find((candidate) => candidate.name === name);
  for (const sample of metric?.values ?? []) {
    const { le, ...rest } = sample.labels as Record<string, unknown>;
    if ((sample as { metricName?: string }).metricName === `${name}_bucket` && sameLabels(rest, labels)) {
      buckets[String(le)] = sample.value;
    }
  }
  return {
    buckets,
    sum: await valueOf(registry, `${name}_sum`, labels),
    count: await valueOf(registry, `${name}_count`, labels),
  };
}

/** The names of every metric in the registry, sorted. */
export async function metricNames(registry: AnyRegistry): Promise<string[]> {
  return (await registry.getMetricsAsJSON()).map((metric) => metric.name).sort();
}
