/**
 * The metrics registry of a pipeline: a prom-client `Registry` of its own, never prom-client's global
 * one, so tests and several pipelines in one process cannot collide; it remembers the prefix its
 * metric names carry.
 *
 * Invariant guarded here: nothing in lib/metrics registers into the global registry.
 */
import { collectDefaultMetrics, Registry, type RegistryContentType } from 'prom-client';
import { InvalidOptionError } from '../core/errors.ts';

export interface MetricsRegistryOptions {
  /** Prepended to every sluice metric name: a valid Prometheus name start, or ''. */
  prefix?: string;
  /**
   * Also expose prom-client's process and Node.js metrics (`process_cpu_seconds_total`,
   * `nodejs_heap_size_used_bytes`, ...), under their standard unprefixed names so stock dashboards
   * find them. Collected on scrape.
   */
  defaultMetrics?: boolean;
}

export const METRICS_REGISTRY_DEFAULTS = { prefix: 'sluice_', defaultMetrics: false } as const;

/** Any prom-client registry, Prometheus or OpenMetrics content type. */
export type AnyRegistry = Registry<RegistryContentType>;

const OWNER = 'createMetricsRegistry';
const PREFIX_PATTERN = /^(?:[a-zA-Z_:][a-zA-Z0-9_:]*)?$/;

// Keyed by registry so the prefix goes wherever the registry goes, and dies with it.
const prefixes = new WeakMap<AnyRegistry, string>();

/**
 * Creates a fresh prom-client registry for one pipeline (or one test).
 *
 * @example
 * const registry = createMetricsRegistry({ defaultMetrics: true });
 * const { url, close } = await serveMetrics(registry);
 *
 * Options: `prefix` (default 'sluice_'), `defaultMetrics` (default false).
 */
export function createMetricsRegistry(options: MetricsRegistryOptions = {}): Registry {
  const prefix = options.prefix ?? METRICS_REGISTRY_DEFAULTS.prefix;
  if (typeof prefix !== 'string' || !PREFIX_PATTERN.test(prefix)) {
    throw new InvalidOptionError(OWNER, 'prefix', prefix, 'a string matching [a-zA-Z_:][a-zA-Z0-9_:]* or empty');
  }
  const defaultMetrics = options.defaultMetrics ?? METRICS_REGISTRY_DEFAULTS.defaultMetrics;
  if (typeof defaultMetrics !== 'boolean') {
    throw new InvalidOptionError(OWNER, 'defaultMetrics', defaultMetrics, 'a boolean');
  }
  const registry = new Registry();
  prefixes.set(registry, prefix);
  if (defaultMetrics) collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * The prefix of the sluice metric names in `registry`: the one given to `createMetricsRegistry`, or
 * the default prefix for a registry made elsewhere.
 */
export function metricPrefixOf(registry: AnyRegistry): string {
  return prefixes.get(registry) ?? METRICS_REGISTRY_DEFAULTS.prefix;
}
