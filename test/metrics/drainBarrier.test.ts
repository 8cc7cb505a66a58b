import { expect } from 'chai';
import { Subject, VirtualTimeScheduler } from 'rxjs';
import { noopAck, type Acked } from '../../lib/core/ack.ts';
import { createMetricsRegistry, drainBarrierMetrics } from '../../lib/metrics/index.ts';
import { drainBarrier, type DrainBarrierStats } from '../../operators/drainBarrier.ts';
import { histogramOf, valueOf } from './readMetrics.ts';

type Registry = ReturnType<typeof createMetricsRegistry>;

/** The drain gauges of one pipeline, as [waiting barriers, active barriers, held items, in flight items]. */
async function gaugesOf(registry: Registry, pipeline: string): Promise<(number | undefined)[]> {
  const labels = { pipeline };
  return [
    await valueOf(registry, 'sluice_drain_waiting_barriers', labels),
    await valueOf(registry, 'sluice_drain_active_barriers', labels),
    await valueOf(registry, 'sluice_drain_held_items', labels),
    await valueOf(registry, 'sluice_drain_in_flight_items', labels),
  ];
}

const stats = (waitingBarriers: number, activeBarriers: number, heldItems: number, inFlight: number): DrainBarrierStats => ({
  waitingBarriers,
  activeBarriers,
  heldItems,
  inFlight,
});

const ZERO_BUCKETS = {
  '0.005': 0, '0.01': 0, '0.025': 0, '0.05': 0, '0.1': 0, '0.25': 0, '0.5': 0, '1': 0, '2.5': 0,
  '5': 0, '10': 0, '30': 0, '60': 0, '120': 0, '300': 0, '+Inf': 0,
};

describe('metrics: drainBarrierMetrics', () => {
  it('creates every series at 0, then follows a sequence of stats exactly', async () => {
    const registry = createMetricsRegistry();
    const { onStats } = drainBarrierMetrics(registry, { pipeline: 'cdc' });
    expect(await gaugesOf(registry, 'cdc')).to.deep.equal([0, 0, 0, 0]);
    expect(await histogramOf(registry, 'sluice_ddl_drain_duration_seconds', { pipeline: 'cdc' })).to.deep.equal({
      buckets: ZERO_BUCKETS,
      sum: 0,
      count: 0,
    });

    onStats(stats(0, 0, 0, 3));
    expect(await gaugesOf(registry, 'cdc')).to.deep.equal([0, 0, 0, 3]);
    onStats(stats(1, 0, 4, 3));
    expect(await gaugesOf(registry, 'cdc')).to.deep.equal([1, 0, 4, 3]);
    onStats(stats(0, 1, 4, 0));
    expect(await gaugesOf(registry, 'cdc')).to.deep.equal([0, 1, 4, 0]);
    onStats(stats(0, 0, 0, 4));
    expect(await gaugesOf(registry, 'cdc')).to.deep.equal([0, 0, 0, 4]);
  });

  it('observes drain durations in seconds', async () => {
    const registry = createMetricsRegistry();
    const { onDrained } = drainBarrierMetrics(registry, { pipeline: 'cdc' });
    onDrained({ durationMs: 0 });
    onDrained({ durationMs: 250 });
    onDrained({ durationMs: 1500 });
    onDrained({ durationMs: 400_000 });
    expect(await histogramOf(registry, 'sluice_ddl_drain_duration_seconds', { pipeline: 'cdc' })).to.deep.equal({
      buckets: {
        '0.005': 1, '0.01': 1, '0.025': 1, '0.05': 1, '0.1': 1, '0.25': 2, '0.5': 2, '1': 2, '2.5': 3,
        '5': 3, '10': 3, '30': 3, '60': 3, '120': 3, '300': 3, '+Inf': 4,
      },
      sum: 401.75,
      count: 4,
    });
  });

  it('skips odd input without throwing', async () => {
    const registry = createMetricsRegistry();
    const { onStats, onDrained } = drainBarrierMetrics(registry, { pipeline: 'cdc' });
    onStats(stats(2, 1, 3, 4));
    expect(() => onStats({ waitingBarriers: NaN, activeBarriers: '1', heldItems: undefined, inFlight: -Infinity } as never)).to.not.throw();
    expect(() => onStats(null as never)).to.not.throw();
    for (const odd of [{ durationMs: -1 }, { durationMs: NaN }, { durationMs: Infinity }, {}, null, undefined]) {
      expect(() => onDrained(odd as never)).to.not.throw();
    }
    expect(await gaugesOf(registry, 'cdc')).to.deep.equal([2, 1, 3, 4]);
    const drains = await histogramOf(registry, 'sluice_ddl_drain_duration_seconds', { pipeline: 'cdc' });
    expect([drains.count, drains.sum]).to.deep.equal([0, 0]);
  });

  it('two pipelines share the metrics, each with its own series', async () => {
    const registry = createMetricsRegistry();
    const orders = drainBarrierMetrics(registry, { pipeline: 'orders' });
    const users = drainBarrierMetrics(registry, { pipeline: 'users' });
    orders.onStats(stats(1, 0, 2, 3));
    users.onStats(stats(0, 1, 0, 7));
    orders.onDrained({ durationMs: 500 });
    users.onDrained({ durationMs: 2000 });
    users.onDrained({ durationMs: 4000 });
    expect(await gaugesOf(registry, 'orders')).to.deep.equal([1, 0, 2, 3]);
    expect(await gaugesOf(registry, 'users')).to.deep.equal([0, 1, 0, 7]);
    const ordersDrains = await histogramOf(registry, 'sluice_ddl_drain_duration_seconds', { pipeline: 'orders' });
    const usersDrains = await histogramOf(registry, 'sluice_ddl_drain_duration_seconds', { pipeline: 'users' });
    expect([ordersDrains.count, ordersDrains.sum, ordersDrains.buckets['0.5']]).to.deep.equal([1, 0.5, 1]);
    expect([usersDrains.count, usersDrains.sum, usersDrains.buckets['2.5'], usersDrains.buckets['5']]).to.deep.equal([2, 6, 1, 2]);
  });

  it('records what the real operator reports, spread into its options', async () => {
    const registry = createMetricsRegistry();
    const clock = new VirtualTimeScheduler();
    const input = new Subject<Acked<{ id: string; key?: string; ddl?: boolean }>>();
    const emitted: Acked<{ id: string }>[] = [];
    input
      .pipe(
        drainBarrier({
          isBarrier: (change) => change.ddl === true,
          scopeOf: () => ['t1'],
          keyOf: (change) => change.key ?? '',
          scheduler: clock,
          ...drainBarrierMetrics(registry, { pipeline: 'cdc' }),
        }),
      )
      .subscribe((item) => emitted.push(item));

    input.next({ value: { id: 'r1', key: 't1' }, ack: noopAck() });
    input.next({ value: { id: 'ddl', ddl: true }, ack: noopAck() });
    input.next({ value: { id: 'r2', key: 't1' }, ack: noopAck() });
    expect(emitted.map((item) => item.value.id)).to.deep.equal(['r1']);
    expect(await gaugesOf(registry, 'cdc')).to.deep.equal([1, 0, 1, 1]);

    clock.frame = 1500;
    emitted[0]!.ack.flushed(); // the scope drained: the DDL goes out after 1.5 s
    expect(emitted.map((item) => item.value.id)).to.deep.equal(['r1', 'ddl']);
    expect(await gaugesOf(registry, 'cdc')).to.deep.equal([0, 1, 1, 0]);
    const drains = await histogramOf(registry, 'sluice_ddl_drain_duration_seconds', { pipeline: 'cdc' });
    expect([drains.count, drains.sum, drains.buckets['1'], drains.buckets['2.5']]).to.deep.equal([1, 1.5, 0, 1]);

    emitted[1]!.ack.flushed();
    expect(emitted.map((item) => item.value.id)).to.deep.equal(['r1', 'ddl', 'r2']);
    expect(await gaugesOf(registry, 'cdc')).to.deep.equal([0, 0, 0, 1]);
    input.complete();
  });
});
