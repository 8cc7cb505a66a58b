import { expect } from 'chai';
import { adaptiveBatchMetrics, createMetricsRegistry } from '../../lib/metrics/index.ts';
import type { AdaptiveBatchStats } from '../../operators/adaptiveBatch.ts';
import { histogramOf, valueOf } from './readMetrics.ts';

type Registry = ReturnType<typeof createMetricsRegistry>;

/** The non-histogram metrics of one pipeline, as [size, buffered, in flight, writes, retries, failures]. */
async function batchOf(registry: Registry, pipeline: string): Promise<(number | undefined)[]> {
  const labels = { pipeline };
  return [
    await valueOf(registry, 'sluice_batch_size_items', labels),
    await valueOf(registry, 'sluice_batch_buffered_items', labels),
    await valueOf(registry, 'sluice_batch_in_flight', labels),
    await valueOf(registry, 'sluice_batch_writes_total', labels),
    await valueOf(registry, 'sluice_batch_retries_total', labels),
    await valueOf(registry, 'sluice_batch_failures_total', labels),
  ];
}

/** The latency histogram of one pipeline, as [count, sum, count <= 0.1 s, count <= 0.25 s, count <= 0.5 s]. */
async function latencyOf(registry: Registry, pipeline: string): Promise<(number | undefined)[]> {
  const series = await histogramOf(registry, 'sluice_batch_write_latency_seconds', { pipeline });
  return [series.count, series.sum, series.buckets['0.1'], series.buckets['0.25'], series.buckets['0.5']];
}

function stats(fields: Partial<AdaptiveBatchStats>): AdaptiveBatchStats {
  return { size: 100, writes: 0, retries: 0, failures: 0, lastLatencyMs: 0, buffered: 0, inFlight: 0, ...fields };
}

describe('metrics: adaptiveBatchMetrics', () => {
  it('creates every series at 0, then follows a sequence of stats exactly', async () => {
    const registry = createMetricsRegistry();
    const onStats = adaptiveBatchMetrics(registry, { pipeline: 'influx' });
    expect(await batchOf(registry, 'influx')).to.deep.equal([0, 0, 0, 0, 0, 0]);
    expect(await latencyOf(registry, 'influx')).to.deep.equal([0, 0, 0, 0, 0]);

    onStats(stats({ size: 100, buffered: 40 }));
    expect(await batchOf(registry, 'influx')).to.deep.equal([100, 40, 0, 0, 0, 0]);
    onStats(stats({ size: 100, buffered: 0, inFlight: 1 }));
    expect(await batchOf(registry, 'influx')).to.deep.equal([100, 0, 1, 0, 0, 0]);
    // A failed attempt, then its retry.
    onStats(stats({ size: 100, failures: 1, inFlight: 1 }));
    onStats(stats({ size: 100, failures: 1, retries: 1, inFlight: 1 }));
    expect(await batchOf(registry, 'influx')).to.deep.equal([100, 0, 1, 0, 1, 1]);
    expect(await latencyOf(registry, 'influx')).to.deep.equal([0, 0, 0, 0, 0]);
    // The retry succeeded in 250 ms.
    onStats(stats({ size: 100, failures: 1, retries: 1, writes: 1, lastLatencyMs: 250 }));
    expect(await batchOf(registry, 'influx')).to.deep.equal([100, 0, 0, 1, 1, 1]);
    expect(await latencyOf(registry, 'influx')).to.deep.equal([1, 0.25, 0, 1, 1]);
    // Stats without a new write do not observe the last latency again.
    onStats(stats({ size: 70, failures: 1, retries: 1, writes: 1, lastLatencyMs: 250, buffered: 12 }));
    expect(await batchOf(registry, 'influx')).to.deep.equal([70, 12, 0, 1, 1, 1]);
    expect(await latencyOf(registry, 'influx')).to.deep.equal([1, 0.25, 0, 1, 1]);
    onStats(stats({ size: 84, failures: 1, retries: 1, writes: 2, lastLatencyMs: 62.5 }));
    expect(await batchOf(registry, 'influx')).to.deep.equal([84, 0, 0, 2, 1, 1]);
    expect(await latencyOf(registry, 'influx')).to.deep.equal([2, 0.3125, 1, 2, 2]);
  });

  it('observes the last latency once when the writes total jumps by several', async () => {
    const registry = createMetricsRegistry();
    const onStats = adaptiveBatchMetrics(registry, { pipeline: 'influx' });
    onStats(stats({ writes: 3, lastLatencyMs: 500 }));
    expect(await valueOf(registry, 'sluice_batch_writes_total', { pipeline: 'influx' })).to.equal(3);
    expect(await latencyOf(registry, 'influx')).to.deep.equal([1, 0.5, 0, 0, 1]);
  });

  it('takes totals that went down (a restart) as the new base, and observes the next write', async () => {
    const registry = createMetricsRegistry();
    const onStats = adaptiveBatchMetrics(registry, { pipeline: 'influx' });
    onStats(stats({ writes: 5, retries: 2, failures: 3, lastLatencyMs: 500 }));
    onStats(stats({ writes: 0, retries: 0, failures: 0, lastLatencyMs: 0 }));
    expect(await batchOf(registry, 'influx')).to.deep.equal([100, 0, 0, 5, 2, 3]);
    onStats(stats({ writes: 1, retries: 1, failures: 1, lastLatencyMs: 125 }));
    expect(await batchOf(registry, 'influx')).to.deep.equal([100, 0, 0, 6, 3, 4]);
    expect(await latencyOf(registry, 'influx')).to.deep.equal([2, 0.625, 0, 1, 2]);
  });

  it('skips odd input without throwing: a write with an odd latency is counted, not observed', async () => {
    const registry = createMetricsRegistry();
    const onStats = adaptiveBatchMetrics(registry, { pipeline: 'influx' });
    onStats(stats({ size: 50, buffered: 3, inFlight: 2, writes: 1, lastLatencyMs: 100 }));
    expect(() => onStats({ size: NaN, buffered: 'x', inFlight: null, writes: 2, retries: -1, failures: Infinity, lastLatencyMs: NaN } as never)).to.not.throw();
    expect(() => onStats(stats({ writes: 3, lastLatencyMs: -20 }))).to.not.throw();
    expect(() => onStats(undefined as never)).to.not.throw();
    expect(await batchOf(registry, 'influx')).to.deep.equal([100, 0, 0, 3, 0, 0]);
    expect(await latencyOf(registry, 'influx')).to.deep.equal([1, 0.1, 1, 1, 1]);
  });

  it('two pipelines share the metrics, each with its own series', async () => {
    const registry = createMetricsRegistry();
    const cpu = adaptiveBatchMetrics(registry, { pipeline: 'influx', measurement: 'cpu' });
    const mem = adaptiveBatchMetrics(registry, { pipeline: 'influx', measurement: 'mem' });
    cpu(stats({ size: 120, writes: 1, lastLatencyMs: 250 }));
    mem(stats({ size: 70, writes: 2, failures: 1, retries: 1, lastLatencyMs: 500 }));
    cpu(stats({ size: 144, writes: 2, lastLatencyMs: 250 }));
    const at = (measurement: string) => ({ pipeline: 'influx', measurement });
    expect(await valueOf(registry, 'sluice_batch_size_items', at('cpu'))).to.equal(144);
    expect(await valueOf(registry, 'sluice_batch_size_items', at('mem'))).to.equal(70);
    expect(await valueOf(registry, 'sluice_batch_writes_total', at('cpu'))).to.equal(2);
    expect(await valueOf(registry, 'sluice_batch_writes_total', at('mem'))).to.equal(2);
    expect(await valueOf(registry, 'sluice_batch_failures_total', at('cpu'))).to.equal(0);
    expect(await valueOf(registry, 'sluice_batch_failures_total', at('mem'))).to.equal(1);
    const cpuLatency = await histogramOf(registry, 'sluice_batch_write_latency_seconds', at('cpu'));
    const memLatency = await histogramOf(registry, 'sluice_batch_write_latency_seconds', at('mem'));
    expect([cpuLatency.count, cpuLatency.sum]).to.deep.equal([2, 0.5]);
    expect([memLatency.count, memLatency.sum]).to.deep.equal([1, 0.5]);
  });
});
