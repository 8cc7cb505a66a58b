/**
 * Retries and stalls as metrics (issue 14): `sluice replay` counts its retries through an outage by
 * service and operation and shows when the stall going on began; `sluice lines` shows when the write
 * being retried first failed (its retries are adaptiveBatch's `batch_retries_total`). The bindings
 * alone, then the flows after a forced retry.
 */
import { expect } from 'chai';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { lastValueFrom, map, toArray } from 'rxjs';
import { fromPaced } from '../../lib/core/paced.ts';
import { createMetricsRegistry, lineProtocolSinkMetrics, storageConsumerMetrics } from '../../lib/metrics/index.ts';
import { MemoryStorage } from '../../lib/storage/memoryStorage.ts';
import { lineProtocolSink } from '../../pipelines/batchFlush/lineProtocolSink.ts';
import { retryKindOf, storageConsumer } from '../../pipelines/storageConsumer/storageConsumer.ts';
import { valueOf } from './readMetrics.ts';

const stats = { pointsWritten: 0, batches: 0, requests: 0, bytesSent: 0, retryableErrors: 0, rejectedWrites: 0, deadLetters: 0, checkpointSaves: 0, checkpointLines: 0, heldWakes: 0, restoredLines: 0 };

describe('metrics of retries and stalls', () => {
  it('storageConsumerMetrics: replay_retries_total{service,operation}; replay_stalled_since_seconds from the first retry until a success', async () => {
    const registry = createMetricsRegistry();
    const metrics = storageConsumerMetrics(registry, { pipeline: 'replay' });
    const at = (labels: Record<string, string>) => valueOf(registry, 'sluice_replay_retries_total', { pipeline: 'replay', ...labels });
    const since = () => valueOf(registry, 'sluice_replay_stalled_since_seconds', { pipeline: 'replay' });
    expect(await since()).to.equal(0);

    const before = Date.now();
    metrics.retry('mysql', 'apply', 2000);
    const first = (await since())!;
    expect(first).to.be.within((before - 2000) / 1000, (Date.now() - 2000) / 1000);
    metrics.retry('mysql', 'apply', 5000); // the same stall goes on: its start stays
    metrics.retry('storage', 'get', 0);
    expect(await since()).to.equal(first);
    expect(await at({ service: 'mysql', operation: 'apply' })).to.equal(2);
    expect(await at({ service: 'storage', operation: 'get' })).to.equal(1);

    metrics.dataFile(3, 0, 1);
    expect(await since()).to.equal(0);
    metrics.retry('mysql', 'ddl', 0);
    expect(await since()).to.be.above(0);
    metrics.round(true, 1, 1);
    expect(await since()).to.equal(0);
    metrics.retry(undefined as unknown as string, 'x', 1); // odd values are skipped
    expect(await since()).to.equal(0);
  });

  it('lineProtocolSinkMetrics: lines_stalled_since_seconds follows stalledSinceMs (0 when none)', async () => {
    const registry = createMetricsRegistry();
    const bound = lineProtocolSinkMetrics(registry, { pipeline: 'lines' });
    const since = () => valueOf(registry, 'sluice_lines_stalled_since_seconds', { pipeline: 'lines' });
    expect(await since()).to.equal(0);
    bound({ ...stats, stalledSinceMs: 1_700_000_000_500 });
    expect(await since()).to.equal(1_700_000_000.5);
    bound({ ...stats, stalledSinceMs: 0 });
    expect(await since()).to.equal(0);
  });

  it('retryKindOf: a short label, never a path', () => {
    expect(retryKindOf('apply db/t/100/CDC000001.csv')).to.equal('apply');
    expect(retryKindOf('apply the DDL of db/t/100/schema.json')).to.equal('ddl');
    expect(retryKindOf('create the checkpoint table sluice.checkpoints')).to.equal('checkpoint');
    expect(retryKindOf('read the checkpoint table sluice.checkpoints')).to.equal('checkpoint');
    expect(retryKindOf('get')).to.equal('get');
    expect(retryKindOf('/odd')).to.equal('other');
  });

  it('storageConsumer: a MySQL that refuses connections counts retries and shows the stall in the registry', async () => {
    // A port nobody listens on: every connection is refused (ECONNREFUSED), a transient failure.
    const probe: Server = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    const registry = createMetricsRegistry();
    const started = Date.now();
    const events = await lastValueFrom(
      storageConsumer({ from: new MemoryStorage(), to: `mysql://root@127.0.0.1:${port}/`, once: true, retryForMs: 300, retry: { minDelayMs: 10, maxDelayMs: 50 }, metrics: { registry, pipeline: 'replay' } }).pipe(toArray()),
    ).then(
      () => [],
      (error: Error) => [error],
    );
    expect(events[0]?.message).to.contain('ECONNREFUSED');
    const retries = (await valueOf(registry, 'sluice_replay_retries_total', { pipeline: 'replay', service: 'mysql', operation: 'checkpoint' }))!;
    expect(retries).to.be.at.least(1);
    expect(await valueOf(registry, 'sluice_replay_stalled_since_seconds', { pipeline: 'replay' })).to.be.within(started / 1000 - 1, Date.now() / 1000);
  });

  it('lineProtocolSink: a 503 then success: lines_stalled_since_seconds set while retrying, 0 after; batch_retries_total counts the retries', async () => {
    let requests = 0;
    const server = createHttpServer((req, res) => {
      req.resume();
      req.on('end', () => {
        requests++;
        res.writeHead(requests <= 2 ? 503 : 204, { 'content-type': 'application/json' });
        res.end(requests <= 2 ? JSON.stringify({ error: 'overloaded' }) : '');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const registry = createMetricsRegistry();
      const since = () => valueOf(registry, 'sluice_lines_stalled_since_seconds', { pipeline: 'lines' });
      const seenWhileRetrying: Array<Promise<number | undefined>> = [];
      const started = Date.now();
      await lastValueFrom(
        fromPaced(['m v=1i 1', 'm v=2i 2', 'm v=3i 3']).pipe(
          lineProtocolSink<string>({
            url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
            db: 'd',
            retry: { maxRetries: Infinity, maxElapsedMs: 10_000, minDelayMs: 5, maxDelayMs: 20, jitter: 0 },
            metrics: { registry, pipeline: 'lines' },
          }),
          map((event) => {
            if (event.kind === 'retrying') seenWhileRetrying.push(since());
            return event;
          }),
        ),
        { defaultValue: undefined },
      );
      const whileRetrying = await Promise.all(seenWhileRetrying);
      expect(whileRetrying).to.have.length(2);
      for (const value of whileRetrying) expect(value).to.be.within(started / 1000 - 1, Date.now() / 1000);
      expect(await since()).to.equal(0);
      expect(await valueOf(registry, 'sluice_batch_retries_total', { pipeline: 'lines' })).to.equal(2);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
