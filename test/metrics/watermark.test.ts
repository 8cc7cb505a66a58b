import { expect } from 'chai';
import { Subject } from 'rxjs';
import { createAck, type Acked } from '../../lib/core/ack.ts';
import { createMetricsRegistry, watermarkMetrics } from '../../lib/metrics/index.ts';
import { watermarkBackpressure, type WatermarkStats } from '../../operators/watermarkBackpressure.ts';
import { valueOf } from './readMetrics.ts';

type Registry = ReturnType<typeof createMetricsRegistry>;

/** Every watermark metric of one pipeline, as [usage, held, holding, suppressed, resumed]. */
async function watermarkOf(registry: Registry, pipeline: string): Promise<(number | undefined)[]> {
  const labels = { pipeline };
  return [
    await valueOf(registry, 'sluice_watermark_usage_bytes', labels),
    await valueOf(registry, 'sluice_held_wakes', labels),
    await valueOf(registry, 'sluice_watermark_holding', labels),
    await valueOf(registry, 'sluice_wake_suppressed_total', labels),
    await valueOf(registry, 'sluice_wake_resumed_total', labels),
  ];
}

const stats = (usageBytes: number, heldWakes: number, suppressedWakes: number, resumedWakes: number, holding: boolean): WatermarkStats => ({
  usageBytes,
  heldWakes,
  suppressedWakes,
  resumedWakes,
  holding,
});

describe('metrics: watermarkMetrics', () => {
  it('creates every series at 0, then follows a sequence of stats exactly', async () => {
    const registry = createMetricsRegistry();
    const onStats = watermarkMetrics(registry, { pipeline: 'cdc' });
    expect(await watermarkOf(registry, 'cdc')).to.deep.equal([0, 0, 0, 0, 0]);

    onStats(stats(100, 0, 0, 0, false));
    expect(await watermarkOf(registry, 'cdc')).to.deep.equal([100, 0, 0, 0, 0]);
    onStats(stats(300, 2, 2, 0, true));
    expect(await watermarkOf(registry, 'cdc')).to.deep.equal([300, 2, 1, 2, 0]);
    onStats(stats(320, 3, 3, 0, true));
    expect(await watermarkOf(registry, 'cdc')).to.deep.equal([320, 3, 1, 3, 0]);
    onStats(stats(50, 0, 3, 3, false));
    expect(await watermarkOf(registry, 'cdc')).to.deep.equal([50, 0, 0, 3, 3]);
    // Same totals again: counters do not move.
    onStats(stats(40, 0, 3, 3, false));
    expect(await watermarkOf(registry, 'cdc')).to.deep.equal([40, 0, 0, 3, 3]);
  });

  it('takes totals that went down (a restart) as the new base, never as a decrement', async () => {
    const registry = createMetricsRegistry();
    const onStats = watermarkMetrics(registry, { pipeline: 'cdc' });
    onStats(stats(0, 0, 10, 8, false));
    expect(await watermarkOf(registry, 'cdc')).to.deep.equal([0, 0, 0, 10, 8]);
    onStats(stats(5, 1, 1, 0, true));
    expect(await watermarkOf(registry, 'cdc')).to.deep.equal([5, 1, 1, 10, 8]);
    onStats(stats(0, 0, 4, 3, false));
    expect(await watermarkOf(registry, 'cdc')).to.deep.equal([0, 0, 0, 13, 11]);
  });

  it('skips odd input without throwing and keeps the last good values', async () => {
    const registry = createMetricsRegistry();
    const onStats = watermarkMetrics(registry, { pipeline: 'cdc' });
    onStats(stats(64, 1, 2, 1, true));
    const odd = { usageBytes: NaN, heldWakes: Infinity, suppressedWakes: 'x', resumedWakes: -5, holding: 'yes' };
    expect(() => onStats(odd as never)).to.not.throw();
    expect(() => onStats(null as never)).to.not.throw();
    expect(() => onStats(undefined as never)).to.not.throw();
    expect(() => onStats(7 as never)).to.not.throw();
    expect(await watermarkOf(registry, 'cdc')).to.deep.equal([64, 1, 1, 2, 1]);
    // A skipped negative total does not become the base either.
    onStats(stats(0, 0, 2, 3, false));
    expect(await watermarkOf(registry, 'cdc')).to.deep.equal([0, 0, 0, 2, 3]);
  });

  it('two pipelines share the metrics, each with its own series', async () => {
    const registry = createMetricsRegistry();
    const first = watermarkMetrics(registry, { pipeline: 'orders' });
    const second = watermarkMetrics(registry, { pipeline: 'users' });
    first(stats(10, 1, 1, 0, true));
    second(stats(20, 0, 5, 5, false));
    first(stats(12, 2, 2, 0, true));
    expect(await watermarkOf(registry, 'orders')).to.deep.equal([12, 2, 1, 2, 0]);
    expect(await watermarkOf(registry, 'users')).to.deep.equal([20, 0, 0, 5, 5]);
    expect(await registry.getSingleMetricAsString('sluice_wake_suppressed_total')).to.equal(
      [
        '# HELP sluice_wake_suppressed_total Wakes watermarkBackpressure held back because usage was above its high mark.',
        '# TYPE sluice_wake_suppressed_total counter',
        'sluice_wake_suppressed_total{pipeline="orders"} 2',
        'sluice_wake_suppressed_total{pipeline="users"} 5',
      ].join('\n'),
    );
  });

  it('records what the real operator reports', async () => {
    const registry = createMetricsRegistry();
    const binding = watermarkMetrics(registry, { pipeline: 'cdc' });
    let last: WatermarkStats | undefined;
    const input = new Subject<Acked<string>>();
    const emitted: Acked<string>[] = [];
    const wakes: string[] = [];
    input
      .pipe(
        watermarkBackpressure({
          highBytes: 10,
          lowBytes: 4,
          sizeOf: (value) => value.length,
          onStats: (s) => {
            last = { ...s };
            binding(s);
          },
        }),
      )
      .subscribe((item) => emitted.push(item));
    const send = (value: string) => input.next({ value, ack: createAck({ onEnqueued: () => wakes.push(value) }) });

    send('aaaaaa'); // 6 bytes
    send('bbbbbb'); // 12 bytes: above highBytes, holding
    emitted[0]!.ack.enqueued(); // wake arrives while holding: held, suppressed
    emitted[1]!.ack.enqueued(); // held, suppressed
    expect(wakes).to.deep.equal([]);
    expect(last).to.deep.equal({ usageBytes: 12, heldWakes: 2, suppressedWakes: 2, resumedWakes: 0, holding: true });
    expect(await watermarkOf(registry, 'cdc')).to.deep.equal([12, 2, 1, 2, 0]);

    emitted[0]!.ack.flushed(); // 6 bytes: still above lowBytes; its held wake is dropped (the flush implies it)
    expect(await watermarkOf(registry, 'cdc')).to.deep.equal([6, 1, 1, 2, 0]);
    send('cc'); // 8 bytes, still holding
    emitted[2]!.ack.enqueued();
    expect(await watermarkOf(registry, 'cdc')).to.deep.equal([8, 2, 1, 3, 0]);
    emitted[1]!.ack.flushed(); // 2 bytes <= lowBytes: the held wake of 'cc' is released
    expect(wakes).to.deep.equal(['aaaaaa', 'bbbbbb', 'cc']);
    expect(last).to.deep.equal({ usageBytes: 2, heldWakes: 0, suppressedWakes: 3, resumedWakes: 1, holding: false });
    expect(await watermarkOf(registry, 'cdc')).to.deep.equal([2, 0, 0, 3, 1]);
    input.complete();
  });
});
