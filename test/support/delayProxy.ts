/**
 * A forwarding HTTP proxy that answers each request late: `fixedMs + perKiBMs × body KiB` after the
 * whole body arrived, so a writer sees latency in proportion to its batch size (AIMD tests), or a
 * plain delay. Used in front of InfluxDB; `startFaultProxy` (services.ts) covers statuses and resets.
 *
 * Invariant: nothing outlives `stop()`: the server, its connections, pending timers and the upstream
 * agent are closed by it.
 */
import { Agent, createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface DelayProxy {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  /** Fixed part of the delay of every request (ms); may be changed while running. */
  fixedMs: number;
  /** Delay per KiB of request body (ms); may be changed while running. */
  perKiBMs: number;
  /** Body sizes (bytes) of the requests forwarded, in arrival order. */
  readonly bodyBytes: number[];
  stop(): Promise<void>;
}

export async function startDelayProxy(target: string, delays: { fixedMs?: number; perKiBMs?: number } = {}): Promise<DelayProxy> {
  const targetUrl = new URL(target);
  const upstream = new Agent({ keepAlive: true });
  const timers = new Set<NodeJS.Timeout>();
  const bodyBytes: number[] = [];
  const proxy = {
    endpoint: '',
    fixedMs: delays.fixedMs ?? 0,
    perKiBMs: delays.perKiBMs ?? 0,
    bodyBytes,
    stop: async () => {},
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.once('end', () => {
      const body = Buffer.concat(chunks);
      bodyBytes.push(body.length);
      const timer = setTimeout(() => {
        timers.delete(timer);
        const forwarded = httpRequest(
          { host: targetUrl.hostname, port: targetUrl.port, method: req.method, path: req.url, headers: req.headers, agent: upstream },
          (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          },
        );
        forwarded.once('error', () => req.socket.destroy());
        forwarded.end(body);
      }, proxy.fixedMs + (body.length / 1024) * proxy.perKiBMs);
      timers.add(timer);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  proxy.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let stopped: Promise<void> | undefined;
  proxy.stop = () =>
    (stopped ??= (async () => {
      for (const timer of timers) clearTimeout(timer);
      const closing = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      upstream.destroy();
      await closing;
    })());
  return proxy;
}
