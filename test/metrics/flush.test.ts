import { expect } from 'chai';
import { createMetricsRegistry, flushMetrics } from '../../lib/metrics/index.ts';
import { histogramOf, valueOf } from './readMetrics.ts';

const KIB = 1024;
const MIB = 1024 * KIB;

describe('metrics: flushMetrics', () => {
  it('counts flushes by reason and observes their duration and file size', async () => {
    const registry = createMetricsRegistry();
    const flushes = flushMetrics(registry, { pipeline: 'cdc' });
    expect(await registry.getSingleMetricAsString('sluice_flush_tasks_total')).to.equal(
      '# HELP sluice_flush_tasks_total Flushes of the writer, by the reason their batch was cut.\n# TYPE sluice_flush_tasks_total counter',
    );

    flushes.observe('size', 250, 64 * MIB);
    flushes.observe('interval', 500, 3 * KIB);
    flushes.observe('interval', 125, KIB);
    flushes.observe('quota', 2000, 16 * MIB);

    const at = (reason: string) => ({ pipeline: 'cdc', reason });
    expect(await valueOf(registry, 'sluice_flush_tasks_total', at('size'))).to.equal(1);
    expect(await valueOf(registry, 'sluice_flush_tasks_total', at('interval'))).to.equal(2);
    expect(await valueOf(registry, 'sluice_flush_tasks_total', at('quota'))).to.equal(1);
    expect(await valueOf(registry, 'sluice_flush_tasks_total', at('barrier'))).to.equal(undefined);

    expect(await histogramOf(registry, 'sluice_flush_duration_by_reason_seconds', at('interval'))).to.deep.equal({
      buckets: {
        '0.005': 0, '0.01': 0, '0.025': 0, '0.05': 0, '0.1': 0, '0.25': 1, '0.5': 2, '1': 2, '2.5': 2,
        '5': 2, '10': 2, '30': 2, '60': 2, '+Inf': 2,
      },
      sum: 0.625,
      count: 2,
    });
    expect(await histogramOf(registry, 'sluice_flush_file_size_bytes', at('interval'))).to.deep.equal({
      buckets: {
        '1024': 1, '4096': 2, '16384': 2, '65536': 2, '262144': 2, '1048576': 2, '4194304': 2, '16777216': 2,
        '67108864': 2, '268435456': 2, '1073741824': 2, '+Inf': 2,
      },
      sum: 4 * KIB,
      count: 2,
    });
    const size = await histogramOf(registry, 'sluice_flush_file_size_bytes', at('size'));
    expect([size.count, size.sum, size.buckets['16777216'], size.buckets['67108864']]).to.deep.equal([1, 64 * MIB, 0, 1]);
    const quota = await histogramOf(registry, 'sluice_flush_duration_by_reason_seconds', at('quota'));
    expect([quota.count, quota.sum, quota.buckets['1'], quota.buckets['2.5']]).to.deep.equal([1, 2, 0, 1]);
  });

  it('counts retries by operation', async () => {
    const registry = createMetricsRegistry();
    const flushes = flushMetrics(registry, { pipeline: 'cdc' });
    flushes.retry('put');
    flushes.retry('put');
    flushes.retry('index');
    expect(await registry.getSingleMetricAsString('sluice_retries_total')).to.equal(
      [
        '# HELP sluice_retries_total Retries of writer operations, by operation.',
        '# TYPE sluice_retries_total counter',
        'sluice_retries_total{pipeline="cdc",operation="put"} 2',
        'sluice_retries_total{pipeline="cdc",operation="index"} 1',
      ].join('\n'),
    );
  });

  it('counts a flush with an odd duration or size without that observation, and never throws', async () => {
    const registry = createMetricsRegistry();
    const flushes = flushMetrics(registry, { pipeline: 'cdc' });
    expect(() => flushes.observe('size', NaN, -1)).to.not.throw();
    expect(() => flushes.observe('size', -5, Infinity)).to.not.throw();
    expect(() => flushes.observe('size', 100, 'big' as never)).to.not.throw();
    expect(() => flushes.observe(undefined as never, 1, 1)).to.not.throw();
    expect(() => flushes.retry(42 as never)).to.not.throw();
    const at = { pipeline: 'cdc', reason: 'size' };
    expect(await valueOf(registry, 'sluice_flush_tasks_total', at)).to.equal(3);
    const duration = await histogramOf(registry, 'sluice_flush_duration_by_reason_seconds', at);
    const fileSize = await histogramOf(registry, 'sluice_flush_file_size_bytes', at);
    expect([duration.count, duration.sum]).to.deep.equal([1, 0.1]);
    expect([fileSize.count, fileSize.sum]).to.deep.equal([undefined, undefined]);
    expect((await registry.getMetricsAsJSON()).find((metric) => metric.name === 'sluice_retries_total')?.values).to.deep.equal([]);
  });

  it('two pipelines share the metrics, each with its own series', async () => {
    const registry = createMetricsRegistry();
    const orders = flushMetrics(registry, { pipeline: 'orders', storage: 'file' });
    const users = flushMetrics(registry, { pipeline: 'users', storage: 's3' });
    expect(() => flushMetrics(registry, { pipeline: 'x' })).to.throw(
      'flushMetrics: metric sluice_flush_tasks_total is already registered with labels [pipeline, reason, storage], this binding uses [pipeline, reason]',
    );
    orders.observe('size', 500, KIB);
    users.observe('size', 250, KIB);
    users.observe('size', 250, KIB);
    users.retry('put');
    expect(await valueOf(registry, 'sluice_flush_tasks_total', { pipeline: 'orders', storage: 'file', reason: 'size' })).to.equal(1);
    expect(await valueOf(registry, 'sluice_flush_tasks_total', { pipeline: 'users', storage: 's3', reason: 'size' })).to.equal(2);
    expect(await valueOf(registry, 'sluice_flush_duration_by_reason_seconds_sum', { pipeline: 'users', storage: 's3', reason: 'size' })).to.equal(0.5);
    expect(await valueOf(registry, 'sluice_retries_total', { pipeline: 'users', storage: 's3', operation: 'put' })).to.equal(1);
    expect(await valueOf(registry, 'sluice_retries_total', { pipeline: 'orders', storage: 'file', operation: 'put' })).to.equal(undefined);
  });
});
