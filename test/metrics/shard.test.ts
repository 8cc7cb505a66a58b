import { expect } from 'chai';
import { Subject } from 'rxjs';
import { createMetricsRegistry, shardMetrics } from '../../lib/metrics/index.ts';
import { shardBy, type ShardStats } from '../../operators/shardBy.ts';
import { valueOf } from './readMetrics.ts';

type Registry = ReturnType<typeof createMetricsRegistry>;

/** The shard metrics of one pipeline, as [active, buffered, activations]. */
async function shardsOf(registry: Registry, labels: Record<string, string>): Promise<(number | undefined)[]> {
  return [
    await valueOf(registry, 'sluice_shards_active', labels),
    await valueOf(registry, 'sluice_shard_buffered_items', labels),
    await valueOf(registry, 'sluice_shard_activations_total', labels),
  ];
}

const stats = (activeShards: number, buffered: number, activations: number): ShardStats => ({ activeShards, buffered, activations });

describe('metrics: shardMetrics', () => {
  it('creates every series at 0, then follows a sequence of stats exactly', async () => {
    const registry = createMetricsRegistry();
    const onStats = shardMetrics(registry, { pipeline: 'cdc' });
    const labels = { pipeline: 'cdc' };
    expect(await shardsOf(registry, labels)).to.deep.equal([0, 0, 0]);
    onStats(stats(1, 0, 1));
    expect(await shardsOf(registry, labels)).to.deep.equal([1, 0, 1]);
    onStats(stats(2, 5, 2));
    expect(await shardsOf(registry, labels)).to.deep.equal([2, 5, 2]);
    onStats(stats(1, 1, 2));
    expect(await shardsOf(registry, labels)).to.deep.equal([1, 1, 2]);
    onStats(stats(0, 0, 2));
    expect(await shardsOf(registry, labels)).to.deep.equal([0, 0, 2]);
    onStats(stats(3, 0, 5));
    expect(await shardsOf(registry, labels)).to.deep.equal([3, 0, 5]);
  });

  it('takes an activations total that went down as the new base and skips odd input', async () => {
    const registry = createMetricsRegistry();
    const onStats = shardMetrics(registry, { pipeline: 'cdc' });
    const labels = { pipeline: 'cdc' };
    onStats(stats(2, 4, 7));
    onStats(stats(1, 0, 1)); // restarted
    expect(await shardsOf(registry, labels)).to.deep.equal([1, 0, 7]);
    expect(() => onStats({ activeShards: NaN, buffered: '3', activations: -2 } as never)).to.not.throw();
    expect(() => onStats(null as never)).to.not.throw();
    expect(await shardsOf(registry, labels)).to.deep.equal([1, 0, 7]);
    onStats(stats(2, 0, 3));
    expect(await shardsOf(registry, labels)).to.deep.equal([2, 0, 9]);
  });

  it('two pipelines share the metrics, each with its own series', async () => {
    const registry = createMetricsRegistry();
    const orders = shardMetrics(registry, { pipeline: 'orders' });
    const users = shardMetrics(registry, { pipeline: 'users' });
    orders(stats(4, 10, 4));
    users(stats(1, 0, 1));
    orders(stats(3, 8, 4));
    expect(await shardsOf(registry, { pipeline: 'orders' })).to.deep.equal([3, 8, 4]);
    expect(await shardsOf(registry, { pipeline: 'users' })).to.deep.equal([1, 0, 1]);
  });

  it('records what the real operator reports', async () => {
    const registry = createMetricsRegistry();
    const labels = { pipeline: 'cdc' };
    const input = new Subject<string>();
    const inners = new Map<string, Subject<string>>();
    const out: string[] = [];
    input
      .pipe(
        shardBy({
          shards: 2,
          keyOf: (value: string) => value[0]!, // 'a' and 'b' fall on different shards of 2
          project: (value: string) => {
            const inner = new Subject<string>();
            inners.set(value, inner);
            return inner;
          },
          onStats: shardMetrics(registry, labels),
        }),
      )
      .subscribe((value) => out.push(value));
    const finish = (value: string) => {
      inners.get(value)!.next(value);
      inners.get(value)!.complete();
    };

    input.next('a1');
    input.next('b1');
    input.next('a2'); // waits behind a1
    expect(await shardsOf(registry, labels)).to.deep.equal([2, 1, 2]);
    finish('a1');
    expect(await shardsOf(registry, labels)).to.deep.equal([2, 0, 2]);
    finish('a2');
    expect(await shardsOf(registry, labels)).to.deep.equal([1, 0, 2]);
    finish('b1');
    expect(await shardsOf(registry, labels)).to.deep.equal([0, 0, 2]);
    input.next('a3');
    expect(await shardsOf(registry, labels)).to.deep.equal([1, 0, 3]);
    finish('a3');
    input.complete();
    expect(out).to.deep.equal(['a1', 'a2', 'b1', 'a3']);
    expect(await shardsOf(registry, labels)).to.deep.equal([0, 0, 3]);
  });
});
