import { expect } from 'chai';
import { Gauge } from 'prom-client';
import { InvalidOptionError } from '../../lib/core/errors.ts';
import { createMetricsRegistry, serveMetrics, shardMetrics, type MetricsServer } from '../../lib/metrics/index.ts';
import { rejectionOf } from '../support/waiting.ts';

const PROMETHEUS_TEXT = 'text/plain; version=0.0.4; charset=utf-8';

/** How many TCP servers and sockets this process holds open. */
function tcpHandles(): { servers: number; sockets: number } {
  const resources = process.getActiveResourcesInfo();
  return {
    servers: resources.filter((name) => name === 'TCPServerWrap').length,
    sockets: resources.filter((name) => name === 'TCPSocketWrap').length,
  };
}

/** Polls until the TCP handle counts are back to `baseline` (libuv closes handles a tick later), at most 1 s. */
async function handlesBackTo(baseline: { servers: number; sockets: number }): Promise<{ servers: number; sockets: number }> {
  const deadline = Date.now() + 1000;
  let now = tcpHandles();
  while ((now.servers !== baseline.servers || now.sockets !== baseline.sockets) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    now = tcpHandles();
  }
  return now;
}


/** Resolves to 'settled' or, after `ms`, to 'timed out'. */
function within(promise: Promise<unknown>, ms: number): Promise<'settled' | 'timed out'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timed out'>((resolve) => (timer = setTimeout(() => resolve('timed out'), ms)));
  return Promise.race([promise.then(() => 'settled' as const), timeout]).finally(() => clearTimeout(timer));
}

describe('metrics: serveMetrics', () => {
  let server: MetricsServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('serves GET /metrics on loopback with the registry text and content type', async () => {
    const registry = createMetricsRegistry();
    shardMetrics(registry, { pipeline: 'cdc' })({ activeShards: 3, buffered: 7, activations: 11 });
    server = await serveMetrics(registry);

    expect(server.url).to.match(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect(new URL(server.url).port).to.not.equal('0');
    const response = await fetch(server.url);
    expect(response.status).to.equal(200);
    expect(response.headers.get('content-type')).to.equal(PROMETHEUS_TEXT);
    const text = await response.text();
    expect(text).to.equal(await registry.metrics());
    expect(text.split('\n').filter((line) => !line.startsWith('#') && line !== '')).to.deep.equal([
      'sluice_shards_active{pipeline="cdc"} 3',
      'sluice_shard_buffered_items{pipeline="cdc"} 7',
      'sluice_shard_activations_total{pipeline="cdc"} 11',
    ]);
  });

  it('serves the current values on every scrape, also with a query string, and answers HEAD without a body', async () => {
    const registry = createMetricsRegistry();
    const onStats = shardMetrics(registry, { pipeline: 'cdc' });
    server = await serveMetrics(registry);
    onStats({ activeShards: 1, buffered: 0, activations: 1 });
    expect(await (await fetch(server.url)).text()).to.include('\nsluice_shards_active{pipeline="cdc"} 1\n');
    onStats({ activeShards: 2, buffered: 0, activations: 2 });
    expect(await (await fetch(`${server.url}?debug=1`)).text()).to.include('\nsluice_shards_active{pipeline="cdc"} 2\n');
    const head = await fetch(server.url, { method: 'HEAD' });
    expect([head.status, head.headers.get('content-type'), await head.text()]).to.deep.equal([200, PROMETHEUS_TEXT, '']);
  });

  it('answers 404 to every other path and method', async () => {
    server = await serveMetrics(createMetricsRegistry());
    const base = new URL(server.url);
    const requests: [string, string][] = [
      ['GET', '/'],
      ['GET', '/metrics/'],
      ['GET', '/metricsx'],
      ['GET', '/favicon.ico'],
      ['POST', '/metrics'],
      ['DELETE', '/metrics'],
    ];
    for (const [method, path] of requests) {
      const response = await fetch(new URL(path, base), { method });
      expect([method, path, response.status, response.headers.get('content-type'), await response.text()]).to.deep.equal([
        method,
        path,
        404,
        'text/plain; charset=utf-8',
        'not found; metrics are at GET /metrics\n',
      ]);
    }
  });

  it('answers 500 with the message when a collection fails', async () => {
    const registry = createMetricsRegistry();
    new Gauge({
      name: 'sluice_broken',
      help: 'a collect that throws',
      registers: [registry],
      collect() {
        throw new Error('disk gone');
      },
    });
    server = await serveMetrics(registry);
    const response = await fetch(server.url);
    expect([response.status, await response.text()]).to.deep.equal([500, 'metrics collection failed: Error: disk gone\n']);
  });

  it('close() ends a kept-alive connection at once, stops listening, and leaves no TCP handle', async () => {
    const baseline = tcpHandles();
    const running = await serveMetrics(createMetricsRegistry());
    // Global fetch keeps its connection alive after the response.
    const response = await fetch(running.url);
    expect([response.status, await response.text()]).to.deep.equal([200, '\n']);
    expect(tcpHandles().servers).to.equal(baseline.servers + 1);

    expect(await within(running.close(), 1000)).to.equal('settled');
    expect(await handlesBackTo(baseline)).to.deep.equal(baseline);
    const refused = (await rejectionOf(fetch(running.url))) as { cause?: { code?: string } };
    expect(refused.cause?.code).to.equal('ECONNREFUSED');
    // Closing again is harmless.
    expect(await within(running.close(), 1000)).to.equal('settled');
  });

  it('close() during a scrape lets the scrape finish, then closes its connection', async () => {
    const baseline = tcpHandles();
    const registry = createMetricsRegistry();
    let releaseCollect: () => void = () => {};
    let collecting: () => void = () => {};
    const collectStarted = new Promise<void>((resolve) => (collecting = resolve));
    new Gauge({
      name: 'sluice_slow',
      help: 'a collect that waits',
      registers: [registry],
      async collect() {
        collecting();
        await new Promise<void>((resolve) => (releaseCollect = resolve));
        this.set(5);
      },
    });
    const running = await serveMetrics(registry);
    const scrape = fetch(running.url);
    await collectStarted;
    const closed = running.close();
    releaseCollect();
    const response = await scrape;
    expect([response.status, response.headers.get('connection'), await response.text()]).to.deep.equal([
      200,
      'close',
      '# HELP sluice_slow a collect that waits\n# TYPE sluice_slow gauge\nsluice_slow 5\n',
    ]);
    expect(await within(closed, 1000)).to.equal('settled');
    expect(await handlesBackTo(baseline)).to.deep.equal(baseline);
  });

  it('binds the given port and fails with EADDRINUSE when it is taken', async () => {
    server = await serveMetrics(createMetricsRegistry());
    const port = Number(new URL(server.url).port);
    const error = (await rejectionOf(serveMetrics(createMetricsRegistry(), { port }))) as NodeJS.ErrnoException & { port?: number };
    expect([error.code, error.port]).to.deep.equal(['EADDRINUSE', port]);
  });

  const invalid: [string, object, string][] = [
    ['a negative port', { port: -1 }, 'serveMetrics: option port must be an integer in [0, 65535], got -1'],
    ['a port above 65535', { port: 70_000 }, 'serveMetrics: option port must be an integer in [0, 65535], got 70000'],
    ['a fractional port', { port: 80.5 }, 'serveMetrics: option port must be an integer in [0, 65535], got 80.5'],
    ['an empty host', { host: '' }, 'serveMetrics: option host must be a non-empty host name or address, got ""'],
  ];
  for (const [name, options, message] of invalid) {
    it(`rejects ${name}`, async () => {
      const error = await rejectionOf(serveMetrics(createMetricsRegistry(), options));
      expect(error).to.be.instanceOf(InvalidOptionError).with.property('message', message);
    });
  }
});
