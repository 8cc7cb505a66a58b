import { expect } from 'chai';
import fc from 'fast-check';
import { concat, defer, finalize, from, ignoreElements, map, NEVER, of, Subject, take } from 'rxjs';
import { BufferOverflowError, InvalidOptionError } from '../../lib/core/errors.ts';
import { shardBy, shardOf, type ShardStats } from '../../operators/shardBy.ts';
import { testScheduler } from '../support/marbles.ts';

/** FNV-1a 32-bit over the UTF-8 bytes of a string, written out independently of the operator. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    hash = (hash ^ byte) >>> 0;
    hash = Number((BigInt(hash) * 0x01000193n) % 0x100000000n);
  }
  return hash;
}

// Keys of the marble tests, on different shards of 2 (checked in the first test).
const keyOf = (item: string) => item[0]!;

describe('shardBy', () => {
  describe('shardOf', () => {
    it('marble keys: a and b fall on different shards of 2', () => {
      expect(shardOf('a', 2)).to.equal(0);
      expect(shardOf('b', 2)).to.equal(1);
    });

    it('is FNV-1a 32-bit of the UTF-8 string form, mod shards (fixed vectors)', () => {
      // Published FNV-1a 32-bit vectors.
      expect(shardOf('', 2 ** 32)).to.equal(0x811c9dc5);
      expect(shardOf('a', 2 ** 32)).to.equal(0xe40c292c);
      expect(shardOf('foobar', 2 ** 32)).to.equal(0xbf9cf968);
      const keys: (string | number)[] = ['', 'a', 'foobar', 'dispatcher-7', 'db.table', 'héllo', '日本', '😀', 42, -1.5];
      for (const key of keys) {
        for (const shards of [1, 2, 7, 16, 1000, 2 ** 32]) {
          expect(shardOf(key, shards), `${String(key)} over ${shards}`).to.equal(fnv1a(String(key)) % shards);
        }
      }
      // A number key hashes as its string form.
      expect(shardOf(42, 1000)).to.equal(shardOf('42', 1000));
    });

    it('spreads 10000 keys over 16 shards within ±25% of the mean', () => {
      const counts = new Array<number>(16).fill(0);
      for (let i = 0; i < 10_000; i++) counts[shardOf(`key-${i}`, 16)]!++;
      const mean = 10_000 / 16;
      for (const count of counts) {
        expect(count).to.be.within(mean * 0.75, mean * 1.25);
      }
    });

    it('rejects a shard count that is not an integer >= 1', () => {
      expect(() => shardOf('a', 0)).to.throw(InvalidOptionError, 'shardOf: option shards must be an integer >= 1, got 0');
      expect(() => shardOf('a', NaN)).to.throw(InvalidOptionError, 'got NaN');
    });
  });

  describe('marbles', () => {
    it('never: emits nothing and stays subscribed', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold<string>('-');
        const result = source.pipe(shardBy({ shards: 2, keyOf, project: (x) => of(x) }));
        expectObservable(result).toBe('-');
        expectSubscriptions(source.subscriptions).toBe('^');
      });
    });

    it('empty: completes at once', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold<string>('|');
        const result = source.pipe(shardBy({ shards: 2, keyOf, project: (x) => of(x) }));
        expectObservable(result).toBe('|');
        expectSubscriptions(source.subscriptions).toBe('(^!)');
      });
    });

    it('one: emits the inner values and completes when the shard is idle', () => {
      const shards: number[] = [];
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold('-x|', { x: 'a1' });
        const inner = cold('--1|');
        const result = source.pipe(
          shardBy({
            shards: 2,
            keyOf,
            project: (_, shard) => {
              shards.push(shard);
              return inner;
            },
          }),
        );
        expectObservable(result).toBe('---1|');
        expectSubscriptions(source.subscriptions).toBe('^-!');
        expectSubscriptions(inner.subscriptions).toBe('-^--!');
      });
      expect(shards).to.deep.equal([0]);
    });

    it('many: serialises items within a shard, runs shards in parallel', () => {
      const stats: ShardStats[] = [];
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold('-xyz---|', { x: 'a1', y: 'a2', z: 'b1' });
        const inners = { a1: cold('--1|'), a2: cold('-2|'), b1: cold('-3--|') };
        const result = source.pipe(
          shardBy({
            shards: 2,
            keyOf,
            project: (item) => inners[item as keyof typeof inners],
            onStats: (s) => stats.push({ ...s }),
          }),
        );
        expectObservable(result).toBe('---132-|');
        // a2 waits for a1 (shard 0) although it arrived at 2; b1 (shard 1) starts at once.
        expectSubscriptions(inners.a1.subscriptions).toBe('-^--!');
        expectSubscriptions(inners.a2.subscriptions).toBe('----^-!');
        expectSubscriptions(inners.b1.subscriptions).toBe('---^---!');
      });
      expect(stats).to.deep.equal([
        { activeShards: 1, buffered: 0, activations: 1 }, // a1 activates shard 0
        { activeShards: 1, buffered: 1, activations: 1 }, // a2 waits
        { activeShards: 2, buffered: 1, activations: 2 }, // b1 activates shard 1
        { activeShards: 2, buffered: 0, activations: 2 }, // a1 done, a2 starts
        { activeShards: 1, buffered: 0, activations: 2 }, // a2 done: shard 0 idle
        { activeShards: 0, buffered: 0, activations: 2 }, // b1 done: shard 1 idle
      ]);
    });

    it('a shard that went idle is activated again by its next item', () => {
      const stats: ShardStats[] = [];
      testScheduler().run(({ cold, expectObservable }) => {
        const source = cold('-x---y|', { x: 'a1', y: 'a2' });
        const result = source.pipe(
          shardBy({ shards: 2, keyOf, project: (item) => cold('-v|', { v: item }), onStats: (s) => stats.push({ ...s }) }),
        );
        expectObservable(result).toBe('--x---y|', { x: 'a1', y: 'a2' });
      });
      expect(stats.map((s) => s.activations)).to.deep.equal([1, 1, 2, 2]);
      expect(stats.map((s) => s.activeShards)).to.deep.equal([1, 0, 1, 0]);
    });

    it('source error: errors at once and unsubscribes every running inner', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold('-xy-#', { x: 'a1', y: 'b1' });
        const inner = cold('------1|');
        const result = source.pipe(shardBy({ shards: 2, keyOf, project: () => inner }));
        expectObservable(result).toBe('----#');
        expectSubscriptions(inner.subscriptions).toBe(['-^--!', '--^-!']);
      });
    });

    it('inner error: errors at once, unsubscribes the other shards and drops waiting items', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold('xyz', { x: 'a1', y: 'a2', z: 'b1' });
        const inners = { a1: cold('------1|'), a2: cold('2|'), b1: cold('---#') };
        const result = source.pipe(shardBy({ shards: 2, keyOf, project: (item) => inners[item as keyof typeof inners] }));
        expectObservable(result).toBe('-----#');
        expectSubscriptions(source.subscriptions).toBe('^----!');
        expectSubscriptions(inners.a1.subscriptions).toBe('^----!');
        expectSubscriptions(inners.a2.subscriptions).toBe([]);
        expectSubscriptions(inners.b1.subscriptions).toBe('--^--!');
      });
    });

    it('infinite source + take: completes after n values and unsubscribes source and inners', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold('-x-y-x-y-x-y-x-y-', { x: 'a', y: 'b' });
        const inner = cold('--1|');
        const result = source.pipe(shardBy({ shards: 2, keyOf, project: () => inner }), take(2));
        expectObservable(result).toBe('---1-(1|)');
        expectSubscriptions(source.subscriptions).toBe('^----!');
        // The third item (key a, frame 5) starts on the idle shard 0 just before take completes.
        expectSubscriptions(inner.subscriptions).toBe(['-^--!', '---^-!', '-----(^!)']);
      });
    });

    it('early unsubscribe: unsubscribes the source and every running inner', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold('-xyz----|', { x: 'a1', y: 'b1', z: 'a2' });
        const inners = { a1: cold('----1|'), b1: cold('-------2|'), a2: cold('-3|') };
        const result = source.pipe(shardBy({ shards: 2, keyOf, project: (item) => inners[item as keyof typeof inners] }));
        expectObservable(result, '-------!').toBe('-----1-');
        expectSubscriptions(source.subscriptions).toBe('^------!');
        expectSubscriptions(inners.a1.subscriptions).toBe('-^----!');
        expectSubscriptions(inners.b1.subscriptions).toBe('--^----!');
        expectSubscriptions(inners.a2.subscriptions).toBe('------^!');
      });
    });

    it('a throwing keyOf errors with its error and unsubscribes the rest', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold('-xy|', { x: 'a1', y: '?' });
        const inner = cold('-----1|');
        const boom = new Error('no key for ?');
        const result = source.pipe(
          shardBy({
            shards: 2,
            keyOf: (item: string) => {
              if (item === '?') throw boom;
              return keyOf(item);
            },
            project: () => inner,
          }),
        );
        expectObservable(result).toBe('--#', undefined, boom);
        expectSubscriptions(source.subscriptions).toBe('^-!');
        expectSubscriptions(inner.subscriptions).toBe('-^!');
      });
    });

    it('a throwing project errors with its error and unsubscribes the rest', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold('-xy|', { x: 'a1', y: 'b1' });
        const inner = cold('-----1|');
        const boom = new Error('cannot encode b1');
        const result = source.pipe(
          shardBy({
            shards: 2,
            keyOf,
            project: (item) => {
              if (item === 'b1') throw boom;
              return inner;
            },
          }),
        );
        expectObservable(result).toBe('--#', undefined, boom);
        expectSubscriptions(source.subscriptions).toBe('^-!');
        expectSubscriptions(inner.subscriptions).toBe('-^!');
      });
    });
  });

  describe('bounds and teardown', () => {
    it('a throwing onStats errors the output and unsubscribes the running inner', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold('-xy|', { x: 'a1', y: 'a2' });
        const inner = cold('-----1|');
        const boom = new Error('stats sink down');
        const result = source.pipe(
          shardBy({
            shards: 2,
            keyOf,
            project: () => inner,
            // The first report (activation) passes; the second (a2 waiting) throws.
            onStats: (stats) => {
              if (stats.buffered > 0) throw boom;
            },
          }),
        );
        expectObservable(result).toBe('--#', undefined, boom);
        expectSubscriptions(inner.subscriptions).toBe('-^!');
      });
    });


    it('fails with BufferOverflowError naming maxBuffered when waiting items overflow', () => {
      let error: unknown;
      let projected = 0;
      of('a1', 'a2', 'a3', 'a4')
        .pipe(
          shardBy({
            shards: 2,
            keyOf,
            project: () => {
              projected++;
              return NEVER;
            },
            maxBuffered: 2,
          }),
        )
        .subscribe({ error: (e) => (error = e) });
      expect(error).to.be.instanceOf(BufferOverflowError);
      expect((error as Error).message).to.equal(
        'shardBy: buffer full (maxBuffered = 2); shard 0 is busy and items arrive faster than shards complete them; raise maxBuffered or shards, or pace the source (Acked items from a paced source)',
      );
      expect(projected).to.equal(1);
    });

    it('runs a long queue of synchronous inners in a loop, not by recursion', () => {
      const gate = new Subject<void>();
      const out: number[] = [];
      let completed = false;
      const items = Array.from({ length: 50_000 }, (_, i) => i);
      // The first inner waits for the gate; the rest queue up behind it, then complete synchronously.
      from(items)
        .pipe(
          shardBy({
            shards: 4,
            keyOf: () => 'same',
            project: (i) => (i === 0 ? concat(gate.pipe(take(1), ignoreElements()), of(i)) : of(i)),
            maxBuffered: 50_000,
          }),
        )
        .subscribe({ next: (v) => out.push(v), complete: () => (completed = true) });
      expect(out).to.deep.equal([]);
      gate.next();
      expect(out).to.deep.equal(items);
      expect(completed).to.equal(true);
    });

    it('stops a synchronous (practically infinite) source when downstream has taken enough', () => {
      let pulled = 0;
      function* items() {
        while (pulled < 1_000_000) yield `k${pulled++}`;
      }
      const out: string[] = [];
      from(items())
        .pipe(shardBy({ shards: 8, keyOf: (item) => item, project: (item) => [item] }), take(3))
        .subscribe((v) => out.push(v));
      expect(out).to.deep.equal(['k0', 'k1', 'k2']);
      expect(pulled).to.equal(3);
    });
  });

  describe('options', () => {
    const project = (x: string) => of(x);
    const cases: [string, Record<string, unknown>, string][] = [
      ['shards 0', { shards: 0, keyOf, project }, 'shardBy: option shards must be an integer >= 1, got 0'],
      ['shards NaN', { shards: NaN, keyOf, project }, 'shardBy: option shards must be an integer >= 1, got NaN'],
      ['shards -4', { shards: -4, keyOf, project }, 'shardBy: option shards must be an integer >= 1, got -4'],
      ['shards 2.5', { shards: 2.5, keyOf, project }, 'shardBy: option shards must be an integer >= 1, got 2.5'],
      ['keyOf missing', { shards: 2, project }, 'shardBy: option keyOf must be a function, got undefined'],
      ['project missing', { shards: 2, keyOf }, 'shardBy: option project must be a function, got undefined'],
      ['maxBuffered 0', { shards: 2, keyOf, project, maxBuffered: 0 }, 'shardBy: option maxBuffered must be an integer >= 1, got 0'],
      ['onStats not a function', { shards: 2, keyOf, project, onStats: 1 }, 'shardBy: option onStats must be a function, got 1'],
    ];
    for (const [name, options, message] of cases) {
      it(`rejects ${name} when the operator is created`, () => {
        expect(() => shardBy(options as never)).to.throw(InvalidOptionError, message);
      });
    }
  });

  describe('properties', () => {
    it('per key, output order is input order; nothing lost or duplicated; one inner at a time per shard', () => {
      const itemArb = fc.record({
        key: fc.integer({ min: 0, max: 5 }),
        gap: fc.nat({ max: 3 }),
        innerDelays: fc.array(fc.nat({ max: 4 }), { minLength: 0, maxLength: 3 }),
        tail: fc.nat({ max: 4 }),
      });
      fc.assert(
        fc.property(fc.array(itemArb, { maxLength: 30 }), fc.integer({ min: 1, max: 8 }), (items, shards) => {
          testScheduler().run(({ cold, flush }) => {
            const sourceMarble = items.map((item) => '-'.repeat(item.gap) + 'x').join('') + '|';
            let arrived = 0;
            // Each 'x' stands for the next item's index.
            const source = cold(sourceMarble).pipe(map(() => arrived++));
            const running = new Map<number, number>();
            let overlap = false;
            let keyOfCalls = 0;
            const out: string[] = [];
            let completed = false;
            source
              .pipe(
                shardBy({
                  shards,
                  keyOf: (index) => {
                    keyOfCalls++;
                    return items[index]!.key;
                  },
                  project: (index, shard) => {
                    const { innerDelays, tail } = items[index]!;
                    const marble = innerDelays.map((d, k) => '-'.repeat(d) + 'abc'[k]).join('') + '-'.repeat(tail) + '|';
                    return defer(() => {
                      const now = (running.get(shard) ?? 0) + 1;
                      running.set(shard, now);
                      if (now > 1) overlap = true;
                      return cold(marble, { a: `${index}:0`, b: `${index}:1`, c: `${index}:2` });
                    }).pipe(finalize(() => running.set(shard, running.get(shard)! - 1)));
                  },
                }),
              )
              .subscribe({ next: (v) => out.push(v), complete: () => (completed = true) });
            flush();
            expect(completed).to.equal(true);
            expect(overlap).to.equal(false);
            expect(keyOfCalls).to.equal(items.length);
            const expected = items.flatMap((item, i) => item.innerDelays.map((_, k) => `${i}:${k}`));
            expect([...out].sort()).to.deep.equal([...expected].sort());
            for (let key = 0; key <= 5; key++) {
              const ofKey = (v: string) => items[Number(v.split(':')[0])]!.key === key;
              expect(out.filter(ofKey), `key ${key}`).to.deep.equal(expected.filter(ofKey));
            }
          });
        }),
        { numRuns: 300 },
      );
    });
  });

  describe('active set', () => {
    const TEN_KEYS = (() => {
      // Ten keys on ten different shards of 1000, so each burst activates exactly ten shards.
      const keys: string[] = [];
      const used = new Set<number>();
      for (let i = 0; keys.length < 10; i++) {
        const shard = shardOf(`key-${i}`, 1000);
        if (!used.has(shard)) {
          used.add(shard);
          keys.push(`key-${i}`);
        }
      }
      return keys;
    })();

    it('only active shards are scheduled (1000 keys, 10 active: work proportional to the 10)', () => {
      const bursts = 20;
      const perKeyPerBurst = 50;
      const source = new Subject<{ key: string; seq: number }>();
      const release = new Subject<void>();
      let keyOfCalls = 0;
      let projectCalls = 0;
      let maxActive = 0;
      let last: ShardStats | undefined;
      const outputs: { key: string; seq: number }[] = [];
      source
        .pipe(
          shardBy({
            shards: 1000,
            keyOf: (item) => {
              keyOfCalls++;
              return item.key;
            },
            // Each inner emits its item, then waits for the next release.
            project: (item) => {
              projectCalls++;
              return concat(of(item), release.pipe(take(1), ignoreElements()));
            },
            onStats: (stats) => {
              maxActive = Math.max(maxActive, stats.activeShards);
              last = stats;
            },
          }),
        )
        .subscribe((item) => outputs.push(item));

      const activationsAfterBurst: number[] = [];
      let seq = 0;
      for (let burst = 0; burst < bursts; burst++) {
        for (let n = 0; n < perKeyPerBurst; n++) for (const key of TEN_KEYS) source.next({ key, seq: seq++ });
        expect(last).to.deep.equal({ activeShards: 10, buffered: 10 * (perKeyPerBurst - 1), activations: 10 * (burst + 1) });
        // Each release completes the running inner of every active shard, which starts its next item.
        for (let n = 0; n < perKeyPerBurst; n++) release.next();
        expect(last!.activeShards).to.equal(0);
        activationsAfterBurst.push(last!.activations);
      }
      const items = bursts * perKeyPerBurst * 10;
      expect(maxActive).to.equal(10);
      // One activation per active key per burst: proportional to the 10 keys, not to the 1000 shards.
      expect(activationsAfterBurst).to.deep.equal(Array.from({ length: bursts }, (_, b) => 10 * (b + 1)));
      expect(keyOfCalls).to.equal(items);
      expect(projectCalls).to.equal(items);
      expect(outputs.length).to.equal(items);
      for (const key of TEN_KEYS) {
        const seqs = outputs.filter((o) => o.key === key).map((o) => o.seq);
        expect(seqs).to.deep.equal([...seqs].sort((x, y) => x - y));
      }

      // Cost: 1000 shards must cost about what 10 do (no O(shards) work per activation or item).
      // Synchronous inners: every item activates and idles its shard, the worst case for activation cost.
      const keys = Array.from({ length: 100_000 }, (_, i) => TEN_KEYS[i % 10]!);
      const timeRun = (shards: number, count: number) => {
        const input = keys.slice(0, count);
        const start = process.hrtime.bigint();
        let seen = 0;
        from(input)
          .pipe(shardBy({ shards, keyOf: (key) => key, project: (key) => [key] }))
          .subscribe(() => seen++);
        const elapsed = Number(process.hrtime.bigint() - start);
        expect(seen).to.equal(count);
        return elapsed;
      };
      timeRun(1000, 20_000); // warm-up
      timeRun(10, 20_000);
      let best1000 = Infinity;
      let best10 = Infinity;
      for (let round = 0; round < 3; round++) {
        best1000 = Math.min(best1000, timeRun(1000, 100_000));
        best10 = Math.min(best10, timeRun(10, 100_000));
      }
      expect(best1000).to.be.below(best10 * 3);
    });
  });
});
