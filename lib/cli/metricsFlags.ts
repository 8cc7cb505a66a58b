/**
 * `--metrics-port` and `--metrics-host`, the same on every command: while the command runs, its flow's
 * Prometheus metrics are served at `http://<host>:<port>/metrics`; the endpoint closes at exit.
 *
 * Invariant guarded here: a bad value or an endpoint that cannot listen is a `UsageError` naming the
 * flag (exit 2, before anything is read or written); the endpoint binds loopback unless told otherwise.
 */
import { createMetricsRegistry, serveMetrics, SERVE_METRICS_DEFAULTS, type MetricsServer } from '../metrics/index.ts';
import type { AnyRegistry } from '../metrics/registry.ts';
import { UsageError } from './commandLine.ts';

/** The flags, as `parseFlags` takes them: spread into a command's flags. */
export const METRICS_FLAGS = {
  'metrics-port': { type: 'string' },
  'metrics-host': { type: 'string' },
} as const;

/** Where to serve the metrics. */
export interface MetricsEndpointOptions {
  /** TCP port; 0 picks a free one (printed on stderr). */
  port: number;
  /** Interface to bind; default 127.0.0.1. */
  host: string;
}

/** The usage lines of the flags, their descriptions starting at `column` (as the command's others do). */
export function metricsFlagsUsage(column: number): string {
  const line = (flag: string, text: string) => `  ${flag.padEnd(column - 3)} ${text}`;
  return [
    line('--metrics-port <N>', 'serve Prometheus metrics at http://<host>:<N>/metrics while running; 0 picks a free port'),
    line('', '(the address is printed on stderr; metric names in docs/metrics.md)'),
    line('--metrics-host <host>', `the interface the metrics endpoint binds (default ${SERVE_METRICS_DEFAULTS.host})`),
  ].join('\n');
}

/** The endpoint `values` ask for, or undefined without `--metrics-port`; a bad value is a `UsageError`. */
export function metricsEndpointFromFlags(values: { 'metrics-port'?: string | undefined; 'metrics-host'?: string | undefined }): MetricsEndpointOptions | undefined {
  const port = values['metrics-port'];
  const host = values['metrics-host'];
  if (port === undefined) {
    if (host !== undefined) throw new UsageError('--metrics-host needs --metrics-port: the port to serve the metrics on');
    return undefined;
  }
  const number = /^\d{1,5}$/.test(port) ? Number(port) : NaN;
  if (!(number >= 0 && number <= 65_535)) throw new UsageError(`--metrics-port must be a whole number from 0 to 65535 (0 picks a free port), got ${JSON.stringify(port)}`);
  if (host === '') throw new UsageError('--metrics-host must not be empty: an interface address such as 127.0.0.1 or 0.0.0.0');
  return { port: number, host: host ?? SERVE_METRICS_DEFAULTS.host };
}

/** A registry served while a command runs. */
export interface MetricsEndpoint {
  readonly registry: AnyRegistry;
  readonly server: MetricsServer;
}

/**
 * Creates a registry (with the process and Node.js metrics) and serves it at `options`; a port that
 * cannot be bound is a `UsageError` naming `--metrics-port`.
 */
export async function startMetricsEndpoint(options: MetricsEndpointOptions): Promise<MetricsEndpoint> {
  const registry = createMetricsRegistry({ defaultMetrics: true });
  try {
    return { registry, server: await serveMetrics(registry, { port: options.port, host: options.host }) };
  } catch (error) {
    throw new UsageError(`--metrics-port ${options.port} --metrics-host ${options.host}: cannot listen: ${(error as Error).message}`);
  }
}
