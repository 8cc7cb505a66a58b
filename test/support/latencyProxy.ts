/**
 * A forwarding HTTP proxy whose answers take a set latency: `fixedMs + perKiBMs × body KiB` from the
 * moment the whole request body arrived. Unlike test/support/delayProxy.ts (delay, then forward), it
 * forwards at once and holds the server's answer until that moment, so the server's own time (which
 * grows when the machine is loaded) is absorbed by the delay instead of added to it: the latency a
 * writer sees is the formula's, as long as the server answers within it. The AIMD convergence test
 * depends on that: its expected size is computed from the formula.
 *
 * Invariant: nothing outlives `stop()`: the server, its connections, pending timers and the upstream
 * agent are closed by it.
 */
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface LatencyProxy {
  /** http://127.0.0.1:PORT */
  readonly endpoint: string;
  /** Requests whose server answer came after their latency had passed (the latency was then exceeded). */
  readonly late: number;
  stop(): Promise<void>;
}

export async function startLatencyProxy(target: string, latency: { fixedMs: number; perKiBMs: number }): Promise<LatencyProxy> {
  const targetUrl = new URL(target);
  const upstream = new Agent({ keepAlive: true });
  const timers = new Set<NodeJS.Timeout>();
  let late = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.once('end', () => {
      const body = Buffer.concat(chunks);
      const due = performance.now() + latency.fixedMs + (body.length / 1024) * latency.perKiBMs;
      const forwarded = httpRequest(
        { host: targetUrl.hostname, port: targetUrl.port, method: req.method, path: req.url, headers: req.headers, agent: upstream },
        (answer) => {
          const answered: Buffer[] = [];
          answer.on('data', (chunk: Buffer) => answered.push(chunk));
          answer.once('end', () => {
            const reply = (status: number, headers: IncomingHttpHeaders) => {
              res.writeHead(status, headers);
              res.end(Buffer.concat(answered));
            };
            const waitMs = due - performance.now();
            if (waitMs <= 0) {
              late++;
              reply(answer.statusCode ?? 502, answer.headers);
              return;
            }
            const timer = setTimeout(() => {
              timers.delete(timer);
              reply(answer.statusCode ?? 502, answer.headers);
            }, waitMs);
            timers.add(timer);
          });
        },
      );
      forwarded.once('error', () => req.socket.destroy());
      forwarded.end(body);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  let stopped: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get late() {
      return late;
    },
    stop: () =>
      (stopped ??= (async () => {
        for (const timer of timers) clearTimeout(timer);
        const closing = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        upstream.destroy();
        await closing;
      })()),
  };
}
