import { expect } from 'chai';
import { createMetricsRegistry, spoolMetrics } from '../../lib/metrics/index.ts';
import type { SpoolStats } from '../../operators/spool.ts';
import { valueOf } from './readMetrics.ts';

type Registry = ReturnType<typeof createMetricsRegistry>;

const GAUGES = ['memory_bytes', 'memory_items', 'index_bytes', 'disk_bytes', 'disk_items', 'segments', 'held_wakes', 'window_bytes', 'quota_hold'];
const COUNTERS = ['spilled_items_total', 'oversized_items_total'];

/** Every spool metric of one pipeline, by name without the `sluice_spool_` prefix. */
async function spoolOf(registry: Registry, pipeline: string): Promise<Record<string, number | undefined>> {
  const values: Record<string, number | undefined> = {};
  for (const name of [...GAUGES, ...COUNTERS]) values[name] = await valueOf(registry, `sluice_spool_${name}`, { pipeline });
  return values;
}

const IDLE: SpoolStats = {
  memoryBytes: 0,
  memoryItems: 0,
  indexBytes: 0,
  diskBytes: 0,
  diskItems: 0,
  segments: 0,
  heldWakes: 0,
  holdReason: null,
  windowBytes: 0,
  spilledItems: 0,
  oversizedItems: 0,
};

const ZERO = Object.fromEntries([...GAUGES, ...COUNTERS].map((name) => [name, 0]));

describe('metrics: spoolMetrics', () => {
  it('creates every series at 0, then follows a sequence of stats exactly', async () => {
    const registry = createMetricsRegistry();
    const onStats = spoolMetrics(registry, { pipeline: 'cdc' });
    expect(await spoolOf(registry, 'cdc')).to.deep.equal(ZERO);

    onStats({ ...IDLE, memoryBytes: 4096, memoryItems: 4, windowBytes: 1024 });
    expect(await spoolOf(registry, 'cdc')).to.deep.equal({ ...ZERO, memory_bytes: 4096, memory_items: 4, window_bytes: 1024 });

    // Over the quota: spills to disk and holds wakes.
    const spilling: SpoolStats = {
      memoryBytes: 65_536,
      memoryItems: 64,
      indexBytes: 11_520,
      diskBytes: 8192,
      diskItems: 8,
      segments: 1,
      heldWakes: 3,
      holdReason: 'quota',
      windowBytes: 32_768,
      spilledItems: 8,
      oversizedItems: 1,
    };
    onStats(spilling);
    expect(await spoolOf(registry, 'cdc')).to.deep.equal({
      memory_bytes: 65_536,
      memory_items: 64,
      index_bytes: 11_520,
      disk_bytes: 8192,
      disk_items: 8,
      segments: 1,
      held_wakes: 3,
      window_bytes: 32_768,
      quota_hold: 1,
      spilled_items_total: 8,
      oversized_items_total: 1,
    });

    onStats({ ...spilling, diskBytes: 16_384, diskItems: 16, segments: 2, spilledItems: 16, heldWakes: 5 });
    expect(await spoolOf(registry, 'cdc')).to.deep.equal({
      memory_bytes: 65_536,
      memory_items: 64,
      index_bytes: 11_520,
      disk_bytes: 16_384,
      disk_items: 16,
      segments: 2,
      held_wakes: 5,
      window_bytes: 32_768,
      quota_hold: 1,
      spilled_items_total: 16,
      oversized_items_total: 1,
    });

    // Drained: the hold is released, totals stay.
    onStats({ ...IDLE, spilledItems: 16, oversizedItems: 1 });
    expect(await spoolOf(registry, 'cdc')).to.deep.equal({ ...ZERO, spilled_items_total: 16, oversized_items_total: 1 });
  });

  it('takes totals that went down as the new base and skips odd input', async () => {
    const registry = createMetricsRegistry();
    const onStats = spoolMetrics(registry, { pipeline: 'cdc' });
    onStats({ ...IDLE, memoryBytes: 10, spilledItems: 30, oversizedItems: 2, holdReason: 'quota' });
    onStats({ ...IDLE, memoryBytes: 5, spilledItems: 4, oversizedItems: 0 }); // restarted
    expect(await spoolOf(registry, 'cdc')).to.deep.equal({ ...ZERO, memory_bytes: 5, spilled_items_total: 30, oversized_items_total: 2 });
    const odd = { ...IDLE, memoryBytes: NaN, diskBytes: Infinity, segments: '2', spilledItems: -1, oversizedItems: undefined, holdReason: 'quota' };
    expect(() => onStats(odd as never)).to.not.throw();
    expect(() => onStats(null as never)).to.not.throw();
    expect(await spoolOf(registry, 'cdc')).to.deep.equal({ ...ZERO, memory_bytes: 5, quota_hold: 1, spilled_items_total: 30, oversized_items_total: 2 });
    onStats({ ...IDLE, spilledItems: 10, oversizedItems: 1 });
    expect(await spoolOf(registry, 'cdc')).to.deep.equal({ ...ZERO, spilled_items_total: 36, oversized_items_total: 3 });
  });

  it('two pipelines share the metrics, each with its own series', async () => {
    const registry = createMetricsRegistry();
    const orders = spoolMetrics(registry, { pipeline: 'orders' });
    const users = spoolMetrics(registry, { pipeline: 'users' });
    orders({ ...IDLE, memoryBytes: 100, holdReason: 'quota', spilledItems: 2 });
    users({ ...IDLE, diskBytes: 200, segments: 3 });
    expect(await spoolOf(registry, 'orders')).to.deep.equal({ ...ZERO, memory_bytes: 100, quota_hold: 1, spilled_items_total: 2 });
    expect(await spoolOf(registry, 'users')).to.deep.equal({ ...ZERO, disk_bytes: 200, segments: 3 });
  });
});
