/**
 * A TCP proxy in front of a server that is not HTTP (MariaDB), with outages on demand: refused
 * connections (nothing listens: ECONNREFUSED), connections reset as soon as they open, and the open
 * connections cut. `startFaultProxy` (services.ts) does the same for HTTP services, per request.
 *
 * Invariant: nothing outlives `stop()`: the listener and every connection (both sides) are closed.
 * The port stays the same across `refuse()` and `forward()`, so a client keeps its URL.
 */
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export type TcpFaultMode = 'forward' | 'refuse' | 'reset';

export interface TcpFaultProxy {
  /** The proxy's port on 127.0.0.1. */
  readonly port: number;
  readonly mode: TcpFaultMode;
  /** Connections accepted so far (forwarded or reset). */
  readonly accepted: number;
  /** Connections reset by the proxy so far (`reset` mode and `cut`). */
  readonly resets: number;
  /**
   * 'forward': pass connections through; 'refuse': stop listening (new connections get
   * ECONNREFUSED) and cut the open ones; 'reset': accept and reset every new connection.
   */
  setMode(mode: TcpFaultMode): Promise<void>;
  /** Resets every open connection now (the client sees ECONNRESET / connection lost). */
  cut(): void;
  stop(): Promise<void>;
}

/** Starts the proxy on 127.0.0.1, port 0, forwarding to `host:port`; `initial` is its first mode. */
export async function startTcpFaultProxy(target: { host: string; port: number }, initial: TcpFaultMode = 'forward'): Promise<TcpFaultProxy> {
  const open = new Set<Socket>();
  let mode: TcpFaultMode = initial === 'refuse' ? 'forward' : initial;
  let accepted = 0;
  let resets = 0;
  let port = 0;
  let listening = false;

  const reset = (socket: Socket) => {
    resets++;
    socket.resetAndDestroy();
  };
  const server: Server = createServer((client) => {
    accepted++;
    if (mode !== 'forward') {
      reset(client);
      return;
    }
    const upstream = createConnection({ host: target.host, port: target.port });
    open.add(client);
    open.add(upstream);
    const close = () => {
      open.delete(client);
      open.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        port = (server.address() as AddressInfo).port;
        listening = true;
        resolve();
      });
    });
  const unlisten = () =>
    new Promise<void>((resolve) => {
      listening = false;
      server.close(() => resolve());
      cut();
    });
  const cut = () => {
    for (const socket of open) {
      open.delete(socket);
      reset(socket);
    }
  };

  await listen();
  if (initial === 'refuse') {
    await unlisten();
    mode = 'refuse';
  }
  let stopped: Promise<void> | undefined;
  return {
    get port() {
      return port;
    },
    get mode() {
      return mode;
    },
    get accepted() {
      return accepted;
    },
    get resets() {
      return resets;
    },
    async setMode(next) {
      if (next === 'refuse') {
        mode = next;
        if (listening) await unlisten();
        return;
      }
      mode = next;
      if (!listening) await listen();
      if (next === 'reset') cut();
    },
    cut,
    stop: () =>
      (stopped ??= (async () => {
        mode = 'refuse';
        if (listening) await unlisten();
        cut();
      })()),
  };
}
