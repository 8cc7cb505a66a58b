import { expect } from 'chai';
import { createMetricsRegistry, MetricConflictError, pathMetrics } from '../../lib/metrics/index.ts';
import { valueOf } from './readMetrics.ts';

describe('metrics: pathMetrics', () => {
  it('sets progress_paths by state, per pipeline, sharing the gauge between pipelines', async () => {
    const registry = createMetricsRegistry();
    const cdc = pathMetrics(registry, { pipeline: 'cdc' });
    const other = pathMetrics(registry, { pipeline: 'other' });
    cdc.set({ active: 10, parked: 990 });
    other.set({ active: 3, parked: 0 });
    cdc.set({ active: 12, parked: 988 });
    expect(await valueOf(registry, 'sluice_progress_paths', { pipeline: 'cdc', state: 'active' })).to.equal(12);
    expect(await valueOf(registry, 'sluice_progress_paths', { pipeline: 'cdc', state: 'idle' })).to.equal(988);
    expect(await valueOf(registry, 'sluice_progress_paths', { pipeline: 'other', state: 'active' })).to.equal(3);
  });

  it('refuses a label named state, which it sets itself', () => {
    expect(() => pathMetrics(createMetricsRegistry(), { pipeline: 'cdc', state: 'x' })).to.throw(/state/);
  });

  it('refuses a registry where progress_paths has other labels', () => {
    const registry = createMetricsRegistry();
    pathMetrics(registry, { pipeline: 'cdc' });
    expect(() => pathMetrics(registry, { pipeline: 'cdc', shard: '1' })).to.throw(MetricConflictError);
  });
});
