import { expect } from 'chai';
import { Counter, register as globalRegistry, Registry } from 'prom-client';
import { InvalidOptionError } from '../../lib/core/errors.ts';
import { createMetricsRegistry, metricPrefixOf, shardMetrics } from '../../lib/metrics/index.ts';
import { metricNames, valueOf } from './readMetrics.ts';

describe('metrics: createMetricsRegistry', () => {
  it('returns a fresh registry each call, never the global one', async () => {
    const first = createMetricsRegistry();
    const second = createMetricsRegistry();
    expect(first).to.be.instanceOf(Registry);
    expect(first).to.not.equal(globalRegistry);
    expect(first).to.not.equal(second);
    const globalBefore = await metricNames(globalRegistry);

    shardMetrics(first, { pipeline: 'p' })({ activeShards: 2, buffered: 5, activations: 3 });

    expect(await metricNames(first)).to.deep.equal(['sluice_shard_activations_total', 'sluice_shard_buffered_items', 'sluice_shards_active']);
    expect(await metricNames(second)).to.deep.equal([]);
    expect(await metricNames(globalRegistry)).to.deep.equal(globalBefore);
  });

  it('prefixes every metric name with sluice_ by default', async () => {
    const registry = createMetricsRegistry();
    shardMetrics(registry, { pipeline: 'p' })({ activeShards: 1, buffered: 0, activations: 1 });
    expect(metricPrefixOf(registry)).to.equal('sluice_');
    expect(await valueOf(registry, 'sluice_shards_active', { pipeline: 'p' })).to.equal(1);
  });

  it('honours a custom prefix and an empty one', async () => {
    const custom = createMetricsRegistry({ prefix: 'etl:cdc_' });
    const bare = createMetricsRegistry({ prefix: '' });
    shardMetrics(custom, { pipeline: 'p' })({ activeShards: 4, buffered: 0, activations: 4 });
    shardMetrics(bare, { pipeline: 'p' })({ activeShards: 5, buffered: 0, activations: 5 });

    expect(metricPrefixOf(custom)).to.equal('etl:cdc_');
    expect(await metricNames(custom)).to.deep.equal(['etl:cdc_shard_activations_total', 'etl:cdc_shard_buffered_items', 'etl:cdc_shards_active']);
    expect(await valueOf(custom, 'etl:cdc_shards_active', { pipeline: 'p' })).to.equal(4);
    expect(metricPrefixOf(bare)).to.equal('');
    expect(await metricNames(bare)).to.deep.equal(['shard_activations_total', 'shard_buffered_items', 'shards_active']);
    expect(await valueOf(bare, 'shards_active', { pipeline: 'p' })).to.equal(5);
  });

  it('uses the default prefix for a registry made elsewhere', async () => {
    const registry = new Registry();
    shardMetrics(registry, { pipeline: 'p' })({ activeShards: 3, buffered: 0, activations: 3 });
    expect(metricPrefixOf(registry)).to.equal('sluice_');
    expect(await valueOf(registry, 'sluice_shards_active', { pipeline: 'p' })).to.equal(3);
  });

  const invalid: [string, object, string][] = [
    ['a prefix starting with a digit', { prefix: '9x_' }, 'createMetricsRegistry: option prefix must be a string matching [a-zA-Z_:][a-zA-Z0-9_:]* or empty, got "9x_"'],
    ['a prefix with a dash', { prefix: 'my-app_' }, 'createMetricsRegistry: option prefix must be a string matching [a-zA-Z_:][a-zA-Z0-9_:]* or empty, got "my-app_"'],
    ['a prefix that is not a string', { prefix: 3 }, 'createMetricsRegistry: option prefix must be a string matching [a-zA-Z_:][a-zA-Z0-9_:]* or empty, got 3'],
    ['defaultMetrics that is not a boolean', { defaultMetrics: 'yes' }, 'createMetricsRegistry: option defaultMetrics must be a boolean, got "yes"'],
  ];
  for (const [name, options, message] of invalid) {
    it(`rejects ${name}`, () => {
      expect(() => createMetricsRegistry(options as never))
        .to.throw(InvalidOptionError)
        .with.property('message', message);
    });
  }

  it('has no metrics at all without defaultMetrics', async () => {
    expect(await metricNames(createMetricsRegistry())).to.deep.equal([]);
    expect(await metricNames(createMetricsRegistry({ defaultMetrics: false }))).to.deep.equal([]);
  });

  it('adds the process and Node.js metrics, unprefixed, with defaultMetrics', async () => {
    const registry = createMetricsRegistry({ defaultMetrics: true });
    const names = await metricNames(registry);
    expect(names).to.include.members([
      'process_cpu_seconds_total',
      'process_start_time_seconds',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_seconds',
      'nodejs_version_info',
    ]);
    expect(names.filter((name) => name.startsWith('sluice_'))).to.deep.equal([]);
    expect(await valueOf(registry, 'nodejs_version_info', {
      version: process.version,
      major: String(process.versions.node.split('.')[0]),
      minor: String(process.versions.node.split('.')[1]),
      patch: String(process.versions.node.split('.')[2]),
    })).to.equal(1);
    // A second registry with default metrics does not collide with the first.
    const other = createMetricsRegistry({ defaultMetrics: true });
    expect(await metricNames(other)).to.deep.equal(names);
    // Sluice metrics and default metrics live side by side.
    const counter = new Counter({ name: 'sluice_probe_total', help: 'probe', registers: [registry] });
    counter.inc(2);
    expect(await valueOf(registry, 'sluice_probe_total', {})).to.equal(2);
  });
});
