import { expect } from 'chai';
import { Counter, Gauge } from 'prom-client';
import { InvalidOptionError } from '../../lib/core/errors.ts';
import {
  adaptiveBatchMetrics,
  createMetricsRegistry,
  drainBarrierMetrics,
  flushMetrics,
  MetricConflictError,
  shardMetrics,
  spoolMetrics,
  watermarkMetrics,
} from '../../lib/metrics/index.ts';
import { valueOf } from './readMetrics.ts';

const NAMES = 'label names matching [a-zA-Z_][a-zA-Z0-9_]* other than __*, le, quantile';

describe('metrics: binding labels and name conflicts', () => {
  const invalid: [string, unknown, string][] = [
    ['no labels', undefined, 'watermarkMetrics: option labels must be an object of label names to string values, with pipeline, got undefined'],
    ['an array', ['p'], 'watermarkMetrics: option labels must be an object of label names to string values, with pipeline, got ["p"]'],
    ['no pipeline label', { table: 't' }, 'watermarkMetrics: option labels must be an object with a non-empty pipeline label, got {"table":"t"}'],
    ['an empty pipeline label', { pipeline: '' }, 'watermarkMetrics: option labels must be an object with a non-empty pipeline label, got {"pipeline":""}'],
    ['a label name with a dash', { pipeline: 'p', 'data-set': 'x' }, `watermarkMetrics: option labels must be ${NAMES} (bad name "data-set"), got {"pipeline":"p","data-set":"x"}`],
    ['a reserved __ label', { pipeline: 'p', __name: 'x' }, `watermarkMetrics: option labels must be ${NAMES} (bad name "__name"), got {"pipeline":"p","__name":"x"}`],
    ['the histogram label le', { pipeline: 'p', le: '1' }, `watermarkMetrics: option labels must be ${NAMES} (bad name "le"), got {"pipeline":"p","le":"1"}`],
    ['a number value', { pipeline: 'p', shard: 3 }, 'watermarkMetrics: option labels must be string values (label shard is not a string), got {"pipeline":"p","shard":3}'],
  ];
  for (const [name, labels, message] of invalid) {
    it(`rejects ${name} when the binding is created`, () => {
      expect(() => watermarkMetrics(createMetricsRegistry(), labels as never))
        .to.throw(InvalidOptionError)
        .with.property('message', message);
    });
  }

  it('flushMetrics rejects the reason and operation labels it adds itself', () => {
    const registry = createMetricsRegistry();
    expect(() => flushMetrics(registry, { pipeline: 'p', reason: 'size' }))
      .to.throw(InvalidOptionError)
      .with.property('message', `flushMetrics: option labels must be ${NAMES}, reason, operation (bad name "reason"), got {"pipeline":"p","reason":"size"}`);
    expect(() => flushMetrics(registry, { pipeline: 'p', operation: 'put' }))
      .to.throw(InvalidOptionError)
      .with.property('message', `flushMetrics: option labels must be ${NAMES}, reason, operation (bad name "operation"), got {"pipeline":"p","operation":"put"}`);
  });

  it('keeps extra labels next to pipeline on every series', async () => {
    const registry = createMetricsRegistry();
    shardMetrics(registry, { pipeline: 'cdc', stage: 'encode' })({ activeShards: 3, buffered: 7, activations: 9 });
    shardMetrics(registry, { pipeline: 'cdc', stage: 'write' })({ activeShards: 1, buffered: 0, activations: 2 });
    expect(await valueOf(registry, 'sluice_shards_active', { pipeline: 'cdc', stage: 'encode' })).to.equal(3);
    expect(await valueOf(registry, 'sluice_shard_buffered_items', { pipeline: 'cdc', stage: 'encode' })).to.equal(7);
    expect(await valueOf(registry, 'sluice_shard_activations_total', { pipeline: 'cdc', stage: 'encode' })).to.equal(9);
    expect(await valueOf(registry, 'sluice_shards_active', { pipeline: 'cdc', stage: 'write' })).to.equal(1);
    expect(await valueOf(registry, 'sluice_shard_activations_total', { pipeline: 'cdc', stage: 'write' })).to.equal(2);
    expect(await valueOf(registry, 'sluice_shards_active', { pipeline: 'cdc' })).to.equal(undefined);
  });

  it('rejects a binding whose label names differ from the registered metric', () => {
    const registry = createMetricsRegistry();
    watermarkMetrics(registry, { pipeline: 'a' });
    expect(() => watermarkMetrics(registry, { pipeline: 'b', table: 't' }))
      .to.throw(MetricConflictError)
      .with.property(
        'message',
        'watermarkMetrics: metric sluice_watermark_usage_bytes is already registered with labels [pipeline], this binding uses [pipeline, table]',
      );
  });

  it('accepts the same label names in another order', async () => {
    const registry = createMetricsRegistry();
    shardMetrics(registry, { pipeline: 'a', stage: 's' })({ activeShards: 1, buffered: 0, activations: 0 });
    shardMetrics(registry, { stage: 't', pipeline: 'b' })({ activeShards: 2, buffered: 0, activations: 0 });
    expect(await valueOf(registry, 'sluice_shards_active', { pipeline: 'a', stage: 's' })).to.equal(1);
    expect(await valueOf(registry, 'sluice_shards_active', { pipeline: 'b', stage: 't' })).to.equal(2);
  });

  it('rejects a binding whose metric name is taken by another metric type', () => {
    const registry = createMetricsRegistry();
    new Counter({ name: 'sluice_held_wakes', help: 'someone else', labelNames: ['pipeline'], registers: [registry] });
    expect(() => watermarkMetrics(registry, { pipeline: 'a' }))
      .to.throw(MetricConflictError)
      .with.property('message', 'watermarkMetrics: metric sluice_held_wakes is already registered, but not as a Gauge');
  });

  it('reuses a metric of the same name, type and labels created outside the bindings', async () => {
    const registry = createMetricsRegistry();
    const own = new Gauge({ name: 'sluice_spool_segments', help: 'made by hand', labelNames: ['pipeline'], registers: [registry] });
    own.set({ pipeline: 'manual' }, 42);
    spoolMetrics(registry, { pipeline: 'a' });
    expect(await valueOf(registry, 'sluice_spool_segments', { pipeline: 'manual' })).to.equal(42);
    expect(await valueOf(registry, 'sluice_spool_segments', { pipeline: 'a' })).to.equal(0);
  });

  it('every binding can be created twice in one registry (two pipelines)', async () => {
    const registry = createMetricsRegistry();
    for (const pipeline of ['a', 'b']) {
      watermarkMetrics(registry, { pipeline });
      drainBarrierMetrics(registry, { pipeline });
      adaptiveBatchMetrics(registry, { pipeline });
      shardMetrics(registry, { pipeline });
      spoolMetrics(registry, { pipeline });
      flushMetrics(registry, { pipeline });
    }
    const metrics = await registry.getMetricsAsJSON();
    expect(metrics.length).to.equal(35);
    for (const metric of metrics) {
      const pipelines = new Set(metric.values.map((sample) => sample.labels['pipeline']));
      // The flush metrics get their series with the first flush of a reason or retry of an operation.
      const expected = /^sluice_(flush_|retries_)/.test(metric.name) ? [] : ['a', 'b'];
      expect([...pipelines].sort(), metric.name).to.deep.equal(expected);
    }
    expect(await valueOf(registry, 'sluice_watermark_usage_bytes', { pipeline: 'b' })).to.equal(0);
    expect(await valueOf(registry, 'sluice_batch_writes_total', { pipeline: 'a' })).to.equal(0);
  });
});
