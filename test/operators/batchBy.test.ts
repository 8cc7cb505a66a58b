import { expect } from 'chai';
import fc from 'fast-check';
import { map, take, Subject, VirtualAction, VirtualTimeScheduler } from 'rxjs';
import { createAck, noopAck, type Acked } from '../../lib/core/ack.ts';
import { InvalidOptionError } from '../../lib/core/errors.ts';
import { batchBy, type Batch, type BatchReason } from '../../operators/batchBy.ts';
import { testScheduler } from '../support/marbles.ts';
import { recordingScheduler } from '../support/recording.ts';

/** A batch as plain data, for marble comparison. */
const plain = map(<T>(batch: Batch<T>) => ({ items: batch.items, bytes: batch.bytes, reason: batch.reason }));

const batch = <T>(reason: BatchReason, items: T[], bytes = 0) => ({ items, bytes, reason });


describe('batchBy', () => {
  describe('marbles', () => {
    it('never emits nothing and keeps the subscription', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold('-');
        expectObservable(source.pipe(batchBy({ maxItems: 2, maxDelayMs: 3 }), plain)).toBe('-');
        expectSubscriptions(source.subscriptions).toBe('^');
      });
    });

    it('empty completes without a batch', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold('|');
        expectObservable(source.pipe(batchBy({ maxItems: 2 }), plain)).toBe('|');
        expectSubscriptions(source.subscriptions).toBe('(^!)');
      });
    });

    it('one item is emitted as the final partial batch on complete', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold('a|');
        expectObservable(source.pipe(batchBy({ maxItems: 3 }), plain)).toBe('-(x|)', {
          x: batch('complete', ['a']),
        });
        expectSubscriptions(source.subscriptions).toBe('^!');
      });
    });

    it('many items are cut by maxItems, the rest emitted on complete', () => {
      testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
        const source = hot('-a-b-c-d-e-|');
        const expected = '   ---x---y---(z|)';
        expectObservable(source.pipe(batchBy({ maxItems: 2 }), plain)).toBe(expected, {
          x: batch('size', ['a', 'b']),
          y: batch('size', ['c', 'd']),
          z: batch('complete', ['e']),
        });
        expectSubscriptions(source.subscriptions).toBe('^----------!');
      });
    });

    it('maxItems 1 emits every item alone', () => {
      testScheduler().run(({ cold, expectObservable }) => {
        expectObservable(cold('-a-b|').pipe(batchBy({ maxItems: 1 }), plain)).toBe('-x-y|', {
          x: batch('size', ['a']),
          y: batch('size', ['b']),
        });
      });
    });

    it('cuts maxDelayMs after the batch first item, and emits nothing while idle', () => {
      testScheduler().run(({ hot, expectObservable }) => {
        const source = hot('-a-b------c---------|');
        const expected = '  ------x--------y----|';
        expectObservable(source.pipe(batchBy({ maxItems: 10, maxDelayMs: 5 }), plain)).toBe(expected, {
          x: batch('interval', ['a', 'b']),
          y: batch('interval', ['c']),
        });
      });
    });

    it('restarts the timer from the first item of each batch after a size cut', () => {
      testScheduler().run(({ hot, expectObservable }) => {
        // The first timer (from a at 1, due at 6) is cancelled by the size cut at 2;
        // c's batch is due 5 ms after c, at 10.
        const source = hot('-ab--c-------|');
        const expected = '  --x-------y--|';
        expectObservable(source.pipe(batchBy({ maxItems: 2, maxDelayMs: 5 }), plain)).toBe(expected, {
          x: batch('size', ['a', 'b']),
          y: batch('interval', ['c']),
        });
      });
    });

    it('maxDelayMs 0 cuts in the same frame, after the items of that frame', () => {
      testScheduler().run(({ hot, expectObservable }) => {
        const source = hot('-(ab)-c-|');
        const expected = '  -x----y-|';
        expectObservable(source.pipe(batchBy({ maxItems: 10, maxDelayMs: 0 }), plain)).toBe(expected, {
          x: batch('interval', ['a', 'b']),
          y: batch('interval', ['c']),
        });
      });
    });

    it('a barrier joins the open batch as its last member and cuts it at once', () => {
      testScheduler().run(({ hot, expectObservable }) => {
        const source = hot('-a-b-B-c-B-|');
        const expected = '  -----x---y-|';
        const result = source.pipe(batchBy({ maxItems: 10, isBarrier: (item) => item === 'B' }), plain);
        expectObservable(result).toBe(expected, {
          x: batch('barrier', ['a', 'b', 'B']),
          y: batch('barrier', ['c', 'B']),
        });
      });
    });

    it('a barrier that would overflow maxBytes first cuts the open batch, then goes alone', () => {
      testScheduler().run(({ hot, expectObservable }) => {
        const sizes: Record<string, number> = { a: 6, B: 5 };
        const source = hot('-a-B---|');
        const expected = '  ---(xy)|';
        const result = source.pipe(batchBy({ maxBytes: 10, sizeOf: (item) => sizes[item]!, isBarrier: (item) => item === 'B' }), plain);
        expectObservable(result).toBe(expected, {
          x: batch('size', ['a'], 6),
          y: batch('barrier', ['B'], 5),
        });
      });
    });

    it('emits the last partial batch on complete and cancels its timer', () => {
      const ts = testScheduler();
      const { scheduler, actions } = recordingScheduler(ts);
      ts.run(({ hot, expectObservable }) => {
        const source = hot('-a-b-|');
        const expected = '  -----(x|)';
        expectObservable(source.pipe(batchBy({ maxItems: 10, maxDelayMs: 9, scheduler }), plain)).toBe(expected, {
          x: batch('complete', ['a', 'b']),
        });
      });
      // The timer of [a, b] was due at 10; completion at 5 cancelled it.
      expect(actions).to.deep.equal([{ scheduledAt: 1, delay: 9 }]);
    });

    it('forwards an error and drops the open batch', () => {
      testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
        const source = hot('-a-b-#');
        expectObservable(source.pipe(batchBy({ maxItems: 10, maxDelayMs: 20 }), plain)).toBe('-----#');
        expectSubscriptions(source.subscriptions).toBe('^----!');
      });
    });

    it('works on an infinite source with take', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold('-a-b-c-d-e-f-g-h-');
        expectObservable(source.pipe(batchBy({ maxItems: 2 }), take(2), plain)).toBe('---x---(y|)', {
          x: batch('size', ['a', 'b']),
          y: batch('size', ['c', 'd']),
        });
        expectSubscriptions(source.subscriptions).toBe('^------!');
      });
    });

    it('early unsubscribe releases the source and cancels the pending timer', () => {
      const ts = testScheduler();
      const { scheduler, actions } = recordingScheduler(ts);
      ts.run(({ hot, expectObservable, expectSubscriptions }) => {
        const source = hot('-a-b-c-d-e-|');
        const unsub = '     ------!';
        expectObservable(source.pipe(batchBy({ maxItems: 10, maxDelayMs: 8, scheduler }), plain), unsub).toBe('-');
        expectSubscriptions(source.subscriptions).toBe('^-----!');
      });
      // One timer, scheduled by a at frame 1 for frame 9, after the unsubscribe at 6: it never ran.
      expect(actions).to.deep.equal([{ scheduledAt: 1, delay: 8 }]);
    });

    it('routes a throwing sizeOf to the error channel and unsubscribes the source', () => {
      testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
        const source = hot('-a-b-c-|');
        const sizeOf = (item: string) => {
          if (item === 'b') throw new Error('bad size');
          return 1;
        };
        expectObservable(source.pipe(batchBy({ maxBytes: 10, sizeOf }), plain)).toBe('---#', undefined, new Error('bad size'));
        expectSubscriptions(source.subscriptions).toBe('^--!');
      });
    });

    it('routes a throwing isBarrier to the error channel and unsubscribes the source', () => {
      testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
        const source = hot('-a-b-c-|');
        const isBarrier = (item: string) => {
          if (item === 'c') throw new Error('bad barrier');
          return false;
        };
        expectObservable(source.pipe(batchBy({ maxItems: 10, isBarrier }), plain)).toBe('-----#', undefined, new Error('bad barrier'));
        expectSubscriptions(source.subscriptions).toBe('^----!');
      });
    });

    it('errors when sizeOf returns a size that is not a finite number > 0', () => {
      for (const bad of [0, -1, NaN, Infinity]) {
        testScheduler().run(({ cold, expectObservable }) => {
          const result = cold('-a-b|').pipe(batchBy({ maxBytes: 10, sizeOf: (item) => (item === 'b' ? bad : 1) }), plain);
          expectObservable(result).toBe(
            '---#',
            undefined,
            new RangeError(`batchBy: sizeOf returned ${bad} for item #1; sizes must be finite numbers > 0`),
          );
        });
      }
    });
  });

  describe('cut$ (quota)', () => {
    it('cuts the open batch when cut$ emits, and ignores an emission while the batch is empty', () => {
      testScheduler().run(({ hot, expectObservable }) => {
        const source = hot('-a-b---c-|');
        const cut = hot('   x---x-y----');
        const expected = '  ----q----(r|)';
        expectObservable(source.pipe(batchBy({ maxItems: 10, cut$: cut }), plain)).toBe(expected, {
          q: batch('quota', ['a', 'b']),
          r: batch('complete', ['c']),
        });
      });
    });

    it('a quota cut restarts the interval timer from the next batch first item', () => {
      testScheduler().run(({ hot, expectObservable }) => {
        const source = hot('-a-b-----c|');
        const cut = hot('   ---x');
        const expected = '  ---q------(r|)';
        expectObservable(source.pipe(batchBy({ maxItems: 10, maxDelayMs: 4, cut$: cut }), plain)).toBe(expected, {
          q: batch('quota', ['a', 'b']),
          r: batch('complete', ['c']),
        });
      });
    });

    it('an error of cut$ errors the output', () => {
      testScheduler().run(({ hot, expectObservable }) => {
        const source = hot('-a-b-|');
        const cut = hot('   --#', undefined, new Error('quota source failed'));
        expectObservable(source.pipe(batchBy({ maxItems: 10, cut$: cut }), plain)).toBe('--#', undefined, new Error('quota source failed'));
      });
    });

    it('unsubscribes cut$ with the output', () => {
      testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
        const source = hot('-a-b-|');
        const cut = hot('   -----');
        expectObservable(source.pipe(batchBy({ maxItems: 10, cut$: cut }), plain), '^--!').toBe('---');
        expectSubscriptions(cut.subscriptions).toBe('^--!');
      });
    });
  });

  describe('maxBytes', () => {
    it('cuts before an item that would push the batch above maxBytes', () => {
      testScheduler().run(({ hot, expectObservable }) => {
        const sizes: Record<string, number> = { a: 4, b: 4, c: 3, d: 2, e: 1 };
        // a+b = 8, c would make 11 > 10: [a,b] is cut when c arrives; c+d+e = 6 stays open.
        const source = hot('-a-b-c-d-e-|');
        const expected = '  -----x-----(y|)';
        expectObservable(source.pipe(batchBy({ maxBytes: 10, sizeOf: (item) => sizes[item]! }), plain)).toBe(expected, {
          x: batch('size', ['a', 'b'], 8),
          y: batch('complete', ['c', 'd', 'e'], 6),
        });
      });
    });

    it('cuts at once when the batch reaches maxBytes exactly', () => {
      testScheduler().run(({ hot, expectObservable }) => {
        const sizes: Record<string, number> = { a: 4, b: 6, c: 1 };
        const source = hot('-a-b-c-|');
        const expected = '  ---x---(y|)';
        expectObservable(source.pipe(batchBy({ maxBytes: 10, sizeOf: (item) => sizes[item]! }), plain)).toBe(expected, {
          x: batch('size', ['a', 'b'], 10),
          y: batch('complete', ['c'], 1),
        });
      });
    });

    it('emits an oversized item alone and at once, after cutting the open batch', () => {
      testScheduler().run(({ hot, expectObservable }) => {
        const sizes: Record<string, number> = { a: 3, B: 25, c: 2 };
        const source = hot('-a-B-c-|');
        const expected = '  ---(xy)(z|)';
        expectObservable(source.pipe(batchBy({ maxBytes: 10, sizeOf: (item) => sizes[item]! }), plain)).toBe(expected, {
          x: batch('size', ['a'], 3),
          y: batch('size', ['B'], 25),
          z: batch('complete', ['c'], 2),
        });
      });
    });

    it('reports bytes from sizeOf even when only maxItems bounds the batch', () => {
      testScheduler().run(({ cold, expectObservable }) => {
        const source = cold('-a-b-|', { a: 'a', b: 'bb' });
        expectObservable(source.pipe(batchBy({ maxItems: 2, sizeOf: (item) => item.length }), plain)).toBe('---x-|', {
          x: batch('size', ['a', 'bb'], 3),
        });
      });
    });

    it('reports 0 bytes when there is no sizeOf', () => {
      testScheduler().run(({ cold, expectObservable }) => {
        expectObservable(cold('ab|').pipe(batchBy({ maxItems: 5 }), plain)).toBe('--(x|)', { x: batch('complete', ['a', 'b'], 0) });
      });
    });
  });

  describe('combined ack', () => {
    it('batch.ack.flushed() flushes each Acked member exactly once, in order, when called', () => {
      const ts = testScheduler();
      const calls: [number, string, string][] = [];
      const item = (name: string): Acked<string> => ({
        value: name,
        ack: createAck({
          onEnqueued: () => calls.push([ts.now(), 'enqueued', name]),
          onFlushed: () => calls.push([ts.now(), 'flushed', name]),
        }),
      });
      ts.run(({ hot, expectObservable }) => {
        const source = hot('-a-b-c-|', { a: item('a'), b: item('b'), c: item('c') });
        const batches = source.pipe(
          batchBy({ maxItems: 2 }),
          map((batch) => {
            batch.ack.flushed();
            batch.ack.flushed(); // idempotent: members are flushed once
            return batch.items.map((member) => member.value).join('');
          }),
        );
        expectObservable(batches).toBe('---x---(y|)', { x: 'ab', y: 'c' });
      });
      // ackAll wakes every member before flushing them (flushed implies enqueued).
      expect(calls).to.deep.equal([
        [3, 'enqueued', 'a'],
        [3, 'enqueued', 'b'],
        [3, 'flushed', 'a'],
        [3, 'flushed', 'b'],
        [7, 'enqueued', 'c'],
        [7, 'flushed', 'c'],
      ]);
    });

    it('skips plain members and gives plain batches the no-op ack', () => {
      const flushed: string[] = [];
      const acked: Acked<string> = { value: 'x', ack: createAck({ onFlushed: () => flushed.push('x') }) };
      const seen: Batch<unknown>[] = [];
      const subject = new Subject<unknown>();
      subject.pipe(batchBy({ maxItems: 3 })).subscribe((b) => seen.push(b));
      subject.next(1);
      subject.next(acked);
      subject.next('plain');
      subject.next(2);
      subject.complete();
      expect(seen.map((b) => b.items)).to.deep.equal([[1, acked, 'plain'], [2]]);
      // A single Acked member: the batch ack is that member's ack.
      expect(seen[0]!.ack).to.equal(acked.ack);
      seen[0]!.ack.flushed();
      expect(flushed).to.deep.equal(['x']);
      expect(seen[1]!.ack).to.equal(noopAck());
    });

    it('builds the combined ack only on first access, then caches it', () => {
      let reads = 0;
      const ack = createAck();
      const member = {
        value: 1,
        get ack() {
          reads++;
          return ack;
        },
      };
      const seen: Batch<typeof member>[] = [];
      const subject = new Subject<typeof member>();
      subject.pipe(batchBy({ maxItems: 2 })).subscribe((b) => seen.push(b));
      subject.next(member);
      subject.next(member);
      expect(reads).to.equal(0);
      const first = seen[0]!.ack;
      const readsAfterFirst = reads;
      expect(readsAfterFirst).to.be.greaterThan(0);
      expect(seen[0]!.ack).to.equal(first);
      expect(reads).to.equal(readsAfterFirst);
    });
  });

  describe('properties', () => {
    type Command = { kind: 'item'; size: number; barrier: boolean } | { kind: 'wait'; ms: number };

    const commandArb: fc.Arbitrary<Command> = fc.oneof(
      {
        weight: 4,
        arbitrary: fc.record({
          kind: fc.constant('item' as const),
          size: fc.integer({ min: 1, max: 30 }),
          barrier: fc.integer({ min: 0, max: 9 }).map((n) => n < 2),
        }),
      },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 1, max: 15 }) }) },
    );

    const optionsArb = fc
      .record({
        maxItems: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.constant(Infinity)),
        maxBytes: fc.oneof(fc.integer({ min: 1, max: 40 }), fc.constant(Infinity)),
        maxDelayMs: fc.oneof(fc.integer({ min: 0, max: 20 }), fc.constant(Infinity)),
        barriers: fc.boolean(),
      })
      .filter((o) => o.maxItems !== Infinity || o.maxBytes !== Infinity);

    it('loses, duplicates and reorders nothing, emits no empty batch, and cuts exactly as specified', () => {
      fc.assert(
        fc.property(fc.array(commandArb, { maxLength: 60 }), optionsArb, (commands, options) => {
          const scheduler = new VirtualTimeScheduler(VirtualAction, Infinity);
          const source = new Subject<{ id: number; size: number; barrier: boolean; at: number }>();
          const input: { id: number; size: number; barrier: boolean; at: number }[] = [];
          let at = 0;
          for (const command of commands) {
            if (command.kind === 'wait') {
              at += command.ms;
              continue;
            }
            const item = { id: input.length, size: command.size, barrier: options.barriers && command.barrier, at };
            input.push(item);
            scheduler.schedule(() => source.next(item), at);
          }
          const endAt = at + 1;
          scheduler.schedule(() => source.complete(), endAt);

          const out: { batch: Batch<(typeof input)[number]>; at: number }[] = [];
          let completedAt = -1;
          source
            .pipe(
              batchBy({
                maxItems: options.maxItems,
                maxBytes: options.maxBytes,
                sizeOf: (item) => item.size,
                maxDelayMs: options.maxDelayMs,
                isBarrier: (item) => item.barrier,
                scheduler,
              }),
            )
            .subscribe({ next: (b) => out.push({ batch: b, at: scheduler.now() }), complete: () => (completedAt = scheduler.now()) });
          scheduler.flush();

          expect(completedAt).to.equal(endAt);
          expect(out.flatMap((o) => o.batch.items.map((item) => item.id))).to.deep.equal(input.map((item) => item.id));
          out.forEach(({ batch: b, at: emittedAt }, index) => {
            const items = b.items;
            const first = items[0]!;
            const last = items[items.length - 1]!;
            const bytes = items.reduce((sum, item) => sum + item.size, 0);
            const next = input[last.id + 1];
            expect(items.length).to.be.greaterThan(0);
            expect(items.length).to.be.at.most(options.maxItems);
            expect(b.bytes).to.equal(bytes);
            if (items.length > 1) expect(bytes).to.be.at.most(options.maxBytes);
            // Only the last member may be a barrier, and then the batch is a barrier batch.
            expect(items.slice(0, -1).some((item) => item.barrier)).to.equal(false);
            expect(b.reason === 'barrier').to.equal(last.barrier);
            // A batch never outlives its delay, nor holds an item that arrived after it was due.
            expect(emittedAt - first.at).to.be.at.most(options.maxDelayMs);
            switch (b.reason) {
              case 'size': {
                const full = items.length === options.maxItems || bytes >= options.maxBytes;
                const nextWouldOverflow = next !== undefined && bytes + next.size > options.maxBytes && next.at === emittedAt;
                expect(full || nextWouldOverflow, `size cut of batch ${index}`).to.equal(true);
                expect(emittedAt).to.equal(full ? last.at : next!.at);
                break;
              }
              case 'interval':
                expect(emittedAt).to.equal(first.at + options.maxDelayMs);
                expect(items.length).to.be.below(options.maxItems);
                expect(bytes).to.be.below(options.maxBytes);
                // Not cut late: the next item, if any, came after the deadline (one arriving in the
                // deadline's frame, before the timer, would have joined or cut by size).
                if (next) expect(next.at).to.be.above(emittedAt);
                break;
              case 'barrier':
                expect(emittedAt).to.equal(last.at);
                break;
              case 'complete':
                expect(index).to.equal(out.length - 1);
                expect(emittedAt).to.equal(endAt);
                break;
            }
            // A batch that was not full when cut by time or completion was not cut too early by size.
            if (b.reason !== 'size' && b.reason !== 'barrier') {
              expect(items.length < options.maxItems && bytes < options.maxBytes).to.equal(true);
            }
          });
        }),
        { numRuns: 300 },
      );
    });
  });

  describe('options', () => {
    const invalid: [string, object, string][] = [
      ['maxItems', { maxItems: 0 }, 'batchBy: option maxItems must be an integer >= 1 (or Infinity), got 0'],
      ['maxItems', { maxItems: 2.5 }, 'batchBy: option maxItems must be an integer >= 1 (or Infinity), got 2.5'],
      ['maxItems', { maxItems: NaN }, 'batchBy: option maxItems must be an integer >= 1 (or Infinity), got NaN'],
      ['maxItems', {}, 'batchBy: option maxItems must be finite when maxBytes is Infinity (a batch needs a bound), got Infinity'],
      ['maxBytes', { maxBytes: 0, sizeOf: () => 1 }, 'batchBy: option maxBytes must be a number >= 1 (or Infinity), got 0'],
      ['maxBytes', { maxBytes: -5, sizeOf: () => 1 }, 'batchBy: option maxBytes must be a number >= 1 (or Infinity), got -5'],
      ['sizeOf', { maxBytes: 100 }, 'batchBy: option sizeOf must be a function, got undefined'],
      ['sizeOf', { maxItems: 3, sizeOf: 42 }, 'batchBy: option sizeOf must be a function, got 42'],
      ['maxDelayMs', { maxItems: 3, maxDelayMs: -1 }, 'batchBy: option maxDelayMs must be a number >= 0 (or Infinity), got -1'],
      ['maxDelayMs', { maxItems: 3, maxDelayMs: NaN }, 'batchBy: option maxDelayMs must be a number >= 0 (or Infinity), got NaN'],
      ['isBarrier', { maxItems: 3, isBarrier: 'yes' }, 'batchBy: option isBarrier must be a function, got "yes"'],
      ['cut$', { maxItems: 3, cut$: 5 }, 'batchBy: option cut$ must be an Observable, got 5'],
    ];
    for (const [option, options, message] of invalid) {
      it(`rejects ${option} ${message.slice(message.indexOf("got") + 4)} at creation`, () => {
        let thrown: unknown;
        try {
          batchBy(options as never);
        } catch (error) {
          thrown = error;
        }
        expect(thrown).to.be.instanceOf(InvalidOptionError);
        expect((thrown as InvalidOptionError).option).to.equal(option);
        expect((thrown as Error).message).to.equal(message);
      });
    }
  });
});
