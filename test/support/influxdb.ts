/**
 * A throwaway InfluxDB 1.x for tests and benchmarks (SERVICES.md): `influxd run -config FILE` with
 * meta, data and WAL under a fresh temp dir, every bind address on 127.0.0.1 and ports chosen at run
 * time, reporting off; stopped by the PID we spawned. `INFLUX_URL` set means: use that server instead.
 *
 * Invariant: nothing outlives the test run. One server is shared by the suites that ask for it
 * (`sharedInfluxDb`, stopped by the root `after` hook below); suites stay independent by each writing
 * into a database of its own (`freshInfluxDatabase`).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const INFLUXD = '/usr/bin/influxd';

export interface InfluxDbService {
  /** http://127.0.0.1:PORT */
  url: string;
  /** The influxd process we started (undefined for an INFLUX_URL server): benches read its CPU time. */
  pid?: number | undefined;
  stop(): Promise<void>;
}

/** A port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.listen(0, '127.0.0.1', resolve).once('error', reject));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function config(dir: string, httpPort: number, rpcPort: number): string {
  // Only what a test needs; everything else that listens is switched off or bound to loopback.
  return `reporting-disabled = true
bind-address = "127.0.0.1:${rpcPort}"

[meta]
  dir = "${join(dir, 'meta')}"

[data]
  dir = "${join(dir, 'data')}"
  wal-dir = "${join(dir, 'wal')}"
  query-log-enabled = false
  trace-logging-enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:${httpPort}"
  log-enabled = false
  max-body-size = 0

[logging]
  level = "warn"

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false
`;
}

/** Starts an influxd of its own; rejects with its output when it does not answer /ping in time. */
export async function startInfluxDb(timeoutMs = 20_000): Promise<InfluxDbService> {
  if (!existsSync(INFLUXD)) throw new Error(`${INFLUXD} not found (apt-get install -y influxdb)`);
  const dir = mkdtempSync(join(tmpdir(), 'sluice-influxd-'));
  const [httpPort, rpcPort] = [await freePort(), await freePort()];
  const configFile = join(dir, 'influxdb.conf');
  writeFileSync(configFile, config(dir, httpPort, rpcPort));
  const child = spawn(INFLUXD, ['run', '-config', configFile], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, INFLUXDB_REPORTING_DISABLED: 'true' } });
  let output = '';
  // Keep draining both pipes so influxd never blocks on a full pipe.
  child.stdout.on('data', (chunk: Buffer) => void (output = (output + chunk.toString()).slice(-4000)));
  child.stderr.on('data', (chunk: Buffer) => void (output = (output + chunk.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    })());
  const url = `http://127.0.0.1:${httpPort}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new Error(`influxd exited before answering (code ${child.exitCode}, signal ${child.signalCode}); its output:\n${output.trim()}`);
    }
    try {
      const response = await fetch(`${url}/ping`);
      if (response.status === 204) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`influxd did not answer ${url}/ping within ${timeoutMs} ms; its output:\n${output.trim()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { url, pid: child.pid, stop };
}

let shared: Promise<InfluxDbService> | undefined;

/**
 * The server the tests share: `INFLUX_URL` when set, else one started on first use and stopped by the
 * root `after` hook. A failed start is remembered, so every suite skips (or fails under CI) alike.
 */
export function sharedInfluxDb(): Promise<InfluxDbService> {
  if (process.env.INFLUX_URL) return Promise.resolve({ url: process.env.INFLUX_URL.replace(/\/$/, ''), stop: async () => {} });
  shared ??= startInfluxDb();
  return shared;
}

/** Runs an InfluxQL statement with POST /query (CREATE, DROP); fails with the server's message. */
export async function influxCommand(url: string, statement: string): Promise<void> {
  const response = await fetch(`${url}/query`, { method: 'POST', body: new URLSearchParams({ q: statement }) });
  const body = (await response.json()) as { error?: string; results?: { error?: string }[] };
  const error = body.error ?? body.results?.find((r) => r.error)?.error;
  if (!response.ok || error) throw new Error(`influx ${statement}: ${response.status} ${error ?? ''}`);
}

let databases = 0;

/** A database name no other test of this run uses, created on `url`'s server. */
export async function freshInfluxDatabase(url: string, label = 't'): Promise<string> {
  const name = `sluice_${label}_${process.pid}_${++databases}`;
  await influxCommand(url, `DROP DATABASE "${name}"`);
  await influxCommand(url, `CREATE DATABASE "${name}"`);
  return name;
}

/** One series of a query result. */
export interface InfluxSeries {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values: unknown[][];
}

/** Runs a SELECT / SHOW on `db` (epoch ms timestamps unless told) and returns its series. */
export async function influxQuery(url: string, db: string, query: string, epoch = 'ms'): Promise<InfluxSeries[]> {
  const params = new URLSearchParams({ db, q: query, epoch });
  const response = await fetch(`${url}/query?${params}`);
  const body = (await response.json()) as { error?: string; results?: { error?: string; series?: InfluxSeries[] }[] };
  const error = body.error ?? body.results?.find((r) => r.error)?.error;
  if (!response.ok || error) throw new Error(`influx query ${query}: ${response.status} ${error ?? ''}`);
  return body.results?.flatMap((r) => r.series ?? []) ?? [];
}

/** Root hook (mocha runs it once after every test file): stops the shared server if one started. */
if (typeof after === 'function') {
  after(async function () {
    this.timeout(20_000);
    if (shared === undefined) return;
    const service = await shared.catch(() => undefined);
    shared = undefined;
    await service?.stop();
  });
}
