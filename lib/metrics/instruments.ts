/**
 * Shared plumbing of the stats bindings: label checks, get-or-create of a named metric in a
 * registry, and counters advanced from the running totals that operator stats carry.
 *
 * Invariant guarded here: a binding never throws on the data path (odd stats are skipped, a total
 * that goes down never decrements a counter); conflicts (a metric name already registered with
 * another type or other label names, bad labels) are reported when the binding is created.
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import { InvalidOptionError } from '../core/errors.ts';
import { metricPrefixOf, type AnyRegistry } from './registry.ts';

/** The labels of a binding's series: `pipeline` plus any others (same names for every binding of a kind). */
export type MetricLabels = { readonly pipeline: string } & Readonly<Record<string, string>>;

/** Histogram buckets of the sluice metrics, in the unit their names carry. */
export const METRIC_BUCKETS = {
  /** `ddl_drain_duration_seconds`: a drain waits for writes of its scope, up to minutes. */
  drainSeconds: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
  /** `batch_write_latency_seconds`: one writer call. */
  writeSeconds: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  /** `flush_duration_by_reason_seconds`: writing one data file and its index. */
  flushSeconds: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  /** `flush_file_size_bytes`: 1 KiB to 1 GiB by powers of 4 (small files stand out). */
  fileBytes: [1024, 4096, 16_384, 65_536, 262_144, 1_048_576, 4_194_304, 16_777_216, 67_108_864, 268_435_456, 1_073_741_824],
} as const;

/** A metric of that name exists in the registry with another type or other label names. */
export class MetricConflictError extends Error {
  override readonly name = 'MetricConflictError';
  readonly metric: string;

  constructor(owner: string, metric: string, problem: string) {
    super(`${owner}: metric ${metric} ${problem}`);
    this.metric = metric;
  }
}

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
// Prometheus reserves `__*`; histograms own `le`, summaries `quantile`.
const RESERVED_LABELS = new Set(['le', 'quantile']);

/**
 * Checks a binding's labels when it is created and returns them as a plain object: `pipeline` is
 * required, names are Prometheus label names, values strings, and none is one the binding adds.
 */
export function checkLabels(owner: string, labels: unknown, addedNames: readonly string[] = []): Record<string, string> {
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) {
    throw new InvalidOptionError(owner, 'labels', labels, 'an object of label names to string values, with pipeline');
  }
  const checked: Record<string, string> = {};
  for (const [name, value] of Object.entries(labels)) {
    if (!LABEL_NAME.test(name) || name.startsWith('__') || RESERVED_LABELS.has(name) || addedNames.includes(name)) {
      const taken = [...RESERVED_LABELS, ...addedNames].join(', ');
      const expected = `label names matching [a-zA-Z_][a-zA-Z0-9_]* other than __*, ${taken}`;
      throw new InvalidOptionError(owner, 'labels', labels, `${expected} (bad name ${JSON.stringify(name)})`);
    }
    if (typeof value !== 'string') {
      throw new InvalidOptionError(owner, 'labels', labels, `string values (label ${name} is not a string)`);
    }
    checked[name] = value;
  }
  if (checked['pipeline'] === undefined || checked['pipeline'] === '') {
    throw new InvalidOptionError(owner, 'labels', labels, 'an object with a non-empty pipeline label');
  }
  return checked;
}

/** Get-or-create of the metrics of one binding, with the registry's prefix and the binding's label names. */
export interface Instruments {
  gauge(name: string, help: string): Gauge;
  counter(name: string, help: string): Counter;
  histogram(name: string, help: string, buckets: readonly number[]): Histogram;
}

/**
 * The metrics of a binding named `owner` in `registry`: each call returns the metric registered
 * under the prefixed name, creating it on first use, so bindings of several pipelines share it.
 */
export function instrumentsIn(owner: string, registry: AnyRegistry, labelNames: readonly string[]): Instruments {
  const prefix = metricPrefixOf(registry);
  const registers = [registry];
  return {
    gauge: (name, help) =>
      existing(owner, registry, prefix + name, Gauge, labelNames) ??
      new Gauge({ name: prefix + name, help, labelNames, registers }),
    counter: (name, help) =>
      existing(owner, registry, prefix + name, Counter, labelNames) ??
      new Counter({ name: prefix + name, help, labelNames, registers }),
    histogram: (name, help, buckets) =>
      existing(owner, registry, prefix + name, Histogram, labelNames) ??
      new Histogram({ name: prefix + name, help, labelNames, buckets: [...buckets], registers }),
  };
}

type MetricClass<M> = (abstract new (...args: never[]) => M) & { readonly name: string };

/** The registered metric of that name when it has the same type and label names; undefined when none. */
function existing<M>(
  owner: string,
  registry: AnyRegistry,
  name: string,
  kind: MetricClass<M>,
  labelNames: readonly string[],
): M | undefined {
  const metric: unknown = registry.getSingleMetric(name);
  if (metric === undefined) return undefined;
  if (!(metric instanceof kind)) {
    throw new MetricConflictError(owner, name, `is already registered, but not as a ${kind.name}`);
  }
  // prom-client keeps the label names on the metric; its typings do not show them.
  const registered = [...((metric as { labelNames?: readonly string[] }).labelNames ?? [])].sort();
  const wanted = [...labelNames].sort();
  if (registered.join(',') !== wanted.join(',')) {
    throw new MetricConflictError(
      owner,
      name,
      `is already registered with labels [${registered.join(', ')}], this binding uses [${wanted.join(', ')}]`,
    );
  }
  return metric;
}

/** A stats field as a metric value: finite numbers only (anything else leaves the metric as it was). */
export function finite(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** Sets a gauge series to a finite value; skips anything else. */
export function setGauge(gauge: Gauge, labels: Record<string, string>, value: unknown): void {
  if (finite(value)) gauge.set(labels, value);
}

/**
 * A counter series driven by the running total a stats object carries: advances by the increase
 * since the previous total. A total that went down (the operator restarted, or two subscriptions
 * share the callback) is taken as the new base, never as a decrement; a total that is not a finite
 * number >= 0 is skipped.
 */
export class TotalCounter {
  readonly #counter: Counter;
  readonly #labels: Record<string, string>;
  #previous = 0;

  constructor(counter: Counter, labels: Record<string, string>) {
    this.#counter = counter;
    this.#labels = labels;
    // Creates the series at 0 so rate() works from the first scrape.
    counter.inc(labels, 0);
  }

  /** Advances to `total`; returns the increase counted (0 when none or when the total was odd). */
  advanceTo(total: unknown): number {
    if (!finite(total) || total < 0) return 0;
    const increase = total - this.#previous;
    this.#previous = total;
    if (increase <= 0) return 0;
    this.#counter.inc(this.#labels, increase);
    return increase;
  }
}

/** Reads a stats argument defensively: a binding must not throw on the operator's data path. */
export function isStats(stats: unknown): stats is Record<string, unknown> {
  return typeof stats === 'object' && stats !== null;
}
