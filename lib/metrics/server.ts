/**
 * The `/metrics` endpoint: a node:http server that Prometheus scrapes.
 *
 * Invariant guarded here: it binds loopback unless told otherwise, and `close()` leaves no socket or
 * server handle behind (a process that only served metrics exits after it).
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkNumber, InvalidOptionError } from '../core/errors.ts';
import type { AnyRegistry } from './registry.ts';

export interface ServeMetricsOptions {
  /** TCP port; 0 picks a free one (read it from `url`). */
  port?: number;
  /** Interface to bind; loopback by default so metrics are not exposed by accident. */
  host?: string;
}

export const SERVE_METRICS_DEFAULTS = { port: 0, host: '127.0.0.1' } as const;

/** A listening endpoint. */
export interface MetricsServer {
  /** The scrape URL, e.g. `http://127.0.0.1:39123/metrics`. */
  readonly url: string;
  /** Stops listening and closes every connection; resolves once the server is closed. */
  close(): Promise<void>;
}

const OWNER = 'serveMetrics';
const METRICS_PATH = '/metrics';

/**
 * Serves `registry` at `GET /metrics` (`HEAD` too) with the registry's content type; every other
 * path or method gets 404, a collection that fails gets 500 with its message.
 *
 * @example
 * const server = await serveMetrics(registry, { port: 9464 });
 * console.log(`scrape ${server.url}`);
 * await server.close();
 *
 * Options: `port` (default 0: any free port), `host` (default '127.0.0.1').
 */
export async function serveMetrics(registry: AnyRegistry, options: ServeMetricsOptions = {}): Promise<MetricsServer> {
  const port = checkNumber(OWNER, 'port', options.port ?? SERVE_METRICS_DEFAULTS.port, { min: 0, max: 65_535, integer: true });
  const host = options.host ?? SERVE_METRICS_DEFAULTS.host;
  if (typeof host !== 'string' || host === '') {
    throw new InvalidOptionError(OWNER, 'host', host, 'a non-empty host name or address');
  }

  let closing = false;
  const server = createServer((request, response) => {
    const path = (request.url ?? '').split('?', 1)[0];
    if (path !== METRICS_PATH || (request.method !== 'GET' && request.method !== 'HEAD')) {
      reply(response, 404, 'text/plain; charset=utf-8', `not found; metrics are at GET ${METRICS_PATH}\n`);
      return;
    }
    registry.metrics().then(
      (text) => reply(response, 200, registry.contentType, request.method === 'HEAD' ? '' : text),
      (error: unknown) => reply(response, 500, 'text/plain; charset=utf-8', `metrics collection failed: ${String(error)}\n`),
    );
  });

  // A keep-alive connection (global fetch keeps one) would hold close() open: server.close() ends
  // the idle ones, and once closing, every answer still in progress closes its connection.
  const reply = (response: ServerResponse, status: number, contentType: string, body: string) => {
    if (response.destroyed) return;
    response.statusCode = status;
    response.setHeader('Content-Type', contentType);
    if (closing) response.setHeader('Connection', 'close');
    response.end(body);
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });

  const address = server.address() as AddressInfo;
  const hostInUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closed: Promise<void> | undefined;
  return {
    url: `http://${hostInUrl}:${address.port}${METRICS_PATH}`,
    close: () => {
      closed ??= new Promise<void>((resolve, reject) => {
        closing = true;
        server.close((error) => (error ? reject(error) : resolve()));
      });
      return closed;
    },
  };
}
