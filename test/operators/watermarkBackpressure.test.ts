import { expect } from 'chai';
import fc from 'fast-check';
import { map, Subject, take, tap } from 'rxjs';
import type { Ack, Acked } from '../../lib/core/ack.ts';
import { InvalidOptionError } from '../../lib/core/errors.ts';
import { watermarkBackpressure, type WatermarkStats } from '../../operators/watermarkBackpressure.ts';
import { testScheduler } from '../support/marbles.ts';
import { recordingAck } from '../support/recording.ts';


describe('watermarkBackpressure', () => {
  describe('options', () => {
    const sizeOf = () => 1;
    const cases: [string, object, string][] = [
      ['zero highBytes', { highBytes: 0, lowBytes: 0, sizeOf }, 'watermarkBackpressure: option highBytes must be a finite number > 0, got 0'],
      ['negative highBytes', { highBytes: -1, lowBytes: 0, sizeOf }, 'watermarkBackpressure: option highBytes must be a finite number > 0, got -1'],
      ['infinite highBytes', { highBytes: Infinity, lowBytes: 0, sizeOf }, 'watermarkBackpressure: option highBytes must be a finite number > 0, got Infinity'],
      ['NaN lowBytes', { highBytes: 10, lowBytes: NaN, sizeOf }, 'watermarkBackpressure: option lowBytes must be a number >= 0, got NaN'],
      ['negative lowBytes', { highBytes: 10, lowBytes: -1, sizeOf }, 'watermarkBackpressure: option lowBytes must be a number >= 0, got -1'],
      ['lowBytes above highBytes', { highBytes: 10, lowBytes: 11, sizeOf }, 'watermarkBackpressure: option lowBytes must be a number <= highBytes (10), got 11'],
      ['missing sizeOf', { highBytes: 10, lowBytes: 5 }, 'watermarkBackpressure: option sizeOf must be a function, got undefined'],
      ['onStats not a function', { highBytes: 10, lowBytes: 5, sizeOf, onStats: 3 }, 'watermarkBackpressure: option onStats must be a function, got 3'],
    ];
    for (const [name, options, message] of cases) {
      it(`rejects ${name} when created`, () => {
        expect(() => watermarkBackpressure(options as never))
          .to.throw(InvalidOptionError)
          .with.property('message', message);
      });
    }

    it('accepts lowBytes equal to highBytes and lowBytes 0', () => {
      expect(watermarkBackpressure({ highBytes: 10, lowBytes: 10, sizeOf })).to.be.a('function');
      expect(watermarkBackpressure({ highBytes: 10, lowBytes: 0, sizeOf })).to.be.a('function');
    });
  });

  describe('marbles', () => {
    const sizeOf = (value: string) => value.length;

    it('never: emits nothing and forwards no ack', () => {
      const scheduler = testScheduler();
      const log: string[] = [];
      scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold<string>('-');
        const result = source.pipe(
          map((value) => ({ value, ack: recordingAck(value, log) })),
          watermarkBackpressure({ highBytes: 10, lowBytes: 5, sizeOf }),
          map((item) => item.value),
        );
        expectObservable(result).toBe('-');
        expectSubscriptions(source.subscriptions).toBe('^');
      });
      expect(log).to.deep.equal([]);
    });

    it('empty: completes at once', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold<Acked<string>>('|');
        expectObservable(source.pipe(watermarkBackpressure({ highBytes: 10, lowBytes: 5, sizeOf }))).toBe('|');
        expectSubscriptions(source.subscriptions).toBe('(^!)');
      });
    });

    it('one: passes the item and forwards its wake and flush', () => {
      const scheduler = testScheduler();
      const log: string[] = [];
      scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold<string>('-a|');
        const result = source.pipe(
          map((value) => ({ value, ack: recordingAck(value, log, () => scheduler.now()) })),
          watermarkBackpressure({ highBytes: 10, lowBytes: 5, sizeOf }),
          tap((item) => {
            item.ack.enqueued();
            scheduler.schedule(() => item.ack.flushed(), 2);
          }),
          map((item) => item.value),
        );
        expectObservable(result).toBe('-a|');
        expectSubscriptions(source.subscriptions).toBe('^-!');
      });
      expect(log).to.deep.equal(['1 a enqueued', '3 a flushed']);
    });

    it('many: holds wakes above the high mark and releases them at the low mark, on virtual time', () => {
      const scheduler = testScheduler();
      const log: string[] = [];
      const stats: WatermarkStats[] = [];
      scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
        // Each item counts 4 bytes; the writer takes it at once and makes it durable 4 frames later.
        const source = cold<string>('-a-b-c-d-|', { a: 'aaaa', b: 'bbbb', c: 'cccc', d: 'dddd' });
        const result = source.pipe(
          map((value) => ({ value, ack: recordingAck(value[0]!, log, () => scheduler.now()) })),
          watermarkBackpressure({ highBytes: 8, lowBytes: 4, sizeOf, onStats: (s) => stats.push({ ...s }) }),
          tap((item) => {
            item.ack.enqueued();
            scheduler.schedule(() => item.ack.flushed(), 4);
          }),
          map((item) => item.value[0]),
        );
        expectObservable(result).toBe('-a-b-c-d-|');
        expectSubscriptions(source.subscriptions).toBe('^--------!');
      });
      // c takes usage to 12 > 8: its wake and d's are held; a and b flushing leave 8 (> 4, still
      // holding); c's flush drops its own held wake (a flush implies it) and brings usage to 4: d resumes.
      expect(log).to.deep.equal([
        '1 a enqueued',
        '3 b enqueued',
        '5 a flushed',
        '7 b flushed',
        '9 c flushed',
        '9 d enqueued',
        '11 d flushed',
      ]);
      expect(stats.at(-1)).to.deep.equal({ usageBytes: 0, heldWakes: 0, suppressedWakes: 2, resumedWakes: 1, holding: false });
      expect(stats.map((s) => s.usageBytes)).to.deep.equal([4, 8, 12, 12, 8, 12, 12, 8, 4, 4, 0]);
    });

    it('error: forwards the source error', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold<string>('-a-#', undefined, new Error('source broke'));
        const result = source.pipe(
          map((value) => ({ value, ack: recordingAck(value, []) })),
          watermarkBackpressure({ highBytes: 10, lowBytes: 5, sizeOf }),
          map((item) => item.value),
        );
        expectObservable(result).toBe('-a-#', undefined, new Error('source broke'));
        expectSubscriptions(source.subscriptions).toBe('^--!');
      });
    });

    it('infinite + take: unsubscribes from the source when take completes', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold<string>('-a-b-c-d-e-f-g-');
        const result = source.pipe(
          map((value) => ({ value, ack: recordingAck(value, []) })),
          watermarkBackpressure({ highBytes: 10, lowBytes: 5, sizeOf }),
          map((item) => item.value),
          take(3),
        );
        expectObservable(result).toBe('-a-b-(c|)');
        expectSubscriptions(source.subscriptions).toBe('^----!');
      });
    });

    it('early unsubscribe: stops at the unsubscription frame; acks already out keep working', () => {
      const scheduler = testScheduler();
      const log: string[] = [];
      const acks: Ack[] = [];
      scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold<string>('-a-b-c-d-|', { a: 'aaaa', b: 'bbbb', c: 'cccc', d: 'dddd' });
        const result = source.pipe(
          map((value) => ({ value, ack: recordingAck(value[0]!, log, () => scheduler.now()) })),
          watermarkBackpressure({ highBytes: 4, lowBytes: 0, sizeOf }),
          tap((item) => {
            item.ack.enqueued();
            acks.push(item.ack);
          }),
          map((item) => item.value[0]),
        );
        expectObservable(result, '^----!').toBe('-a-b-');
        expectSubscriptions(source.subscriptions).toBe('^----!');
      });
      // b's wake was held (usage 8 > 4); after teardown the flushes still reach upstream at once.
      expect(log).to.deep.equal(['1 a enqueued']);
      for (const ack of acks) ack.flushed();
      expect(log).to.deep.equal(['1 a enqueued', '5 a flushed', '5 b flushed']);
    });

    it('a throwing sizeOf errors the output and unsubscribes the source', () => {
      const failure = new Error('cannot size b');
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold<string>('-a-b-c-|');
        const result = source.pipe(
          map((value) => ({ value, ack: recordingAck(value, []) })),
          watermarkBackpressure({
            highBytes: 10,
            lowBytes: 5,
            sizeOf: (value: string) => {
              if (value === 'b') throw failure;
              return 1;
            },
          }),
          map((item) => item.value),
        );
        expectObservable(result).toBe('-a-#', undefined, failure);
        expectSubscriptions(source.subscriptions).toBe('^--!');
      });
    });

    it('a sizeOf returning a negative or NaN size errors the output with a RangeError', () => {
      for (const bad of [-1, NaN]) {
        testScheduler().run(({ cold, expectObservable }) => {
          const result = cold<string>('-a-|').pipe(
            map((value) => ({ value, ack: recordingAck(value, []) })),
            watermarkBackpressure({ highBytes: 10, lowBytes: 5, sizeOf: () => bad }),
          );
          expectObservable(result).toBe(
            '-#',
            undefined,
            new RangeError(`watermarkBackpressure: sizeOf returned ${bad}; it must return a finite number of bytes >= 0`),
          );
        });
      }
    });

    it('a throwing onStats errors the output', () => {
      const failure = new Error('metrics down');
      testScheduler().run(({ cold, expectObservable }) => {
        const result = cold<string>('-a-|').pipe(
          map((value) => ({ value, ack: recordingAck(value, []) })),
          watermarkBackpressure({
            highBytes: 10,
            lowBytes: 5,
            sizeOf,
            onStats: () => {
              throw failure;
            },
          }),
        );
        expectObservable(result).toBe('-#', undefined, failure);
      });
    });
  });

  describe('hysteresis', () => {
    /** Pushes items through a Subject; `emitted` is what downstream received, by id. */
    function harness(options: { highBytes: number; lowBytes: number }) {
      const log: string[] = [];
      const stats: WatermarkStats[] = [];
      const input = new Subject<Acked<{ id: string; bytes: number }>>();
      const emitted = new Map<string, Ack>();
      input
        .pipe(watermarkBackpressure({ ...options, sizeOf: (v) => v.bytes, onStats: (s) => stats.push({ ...s }) }))
        .subscribe((item) => emitted.set(item.value.id, item.ack));
      const send = (id: string, bytes: number) => input.next({ value: { id, bytes }, ack: recordingAck(id, log) });
      const last = () => stats.at(-1);
      return { log, stats, emitted, send, last, input };
    }

    it('watermark suppresses wake and resumes at the low mark', () => {
      const { log, emitted, send, last } = harness({ highBytes: 100, lowBytes: 40 });

      send('a', 50);
      emitted.get('a')!.enqueued();
      expect(log).to.deep.equal(['a enqueued']);
      send('b', 50); // usage 100: at the high mark, not above it
      emitted.get('b')!.enqueued();
      expect(log).to.deep.equal(['a enqueued', 'b enqueued']);
      expect(last()).to.deep.equal({ usageBytes: 100, heldWakes: 0, suppressedWakes: 0, resumedWakes: 0, holding: false });

      send('c', 10); // 110 > 100: holding
      expect(last()!.holding).to.equal(true);
      expect([...emitted.keys()]).to.deep.equal(['a', 'b', 'c']); // items still pass at once
      emitted.get('c')!.enqueued();
      send('d', 10);
      emitted.get('d')!.enqueued();
      send('e', 10);
      emitted.get('e')!.enqueued();
      expect(log).to.deep.equal(['a enqueued', 'b enqueued']);
      expect(last()).to.deep.equal({ usageBytes: 130, heldWakes: 3, suppressedWakes: 3, resumedWakes: 0, holding: true });

      emitted.get('a')!.flushed(); // 80: below high but above low, still holding; the flush is not delayed
      expect(log).to.deep.equal(['a enqueued', 'b enqueued', 'a flushed']);
      expect(last()).to.deep.equal({ usageBytes: 80, heldWakes: 3, suppressedWakes: 3, resumedWakes: 0, holding: true });

      emitted.get('b')!.flushed(); // 30 <= 40: every held wake released, in the order held
      expect(log).to.deep.equal([
        'a enqueued',
        'b enqueued',
        'a flushed',
        'b flushed',
        'c enqueued',
        'd enqueued',
        'e enqueued',
      ]);
      expect(last()).to.deep.equal({ usageBytes: 30, heldWakes: 0, suppressedWakes: 3, resumedWakes: 3, holding: false });

      send('f', 10); // not holding: its wake goes straight up
      emitted.get('f')!.enqueued();
      expect(log.at(-1)).to.equal('f enqueued');
    });

    it('a flush of an item whose wake is held forwards the flush at once and drops the held wake', () => {
      const { log, emitted, send, last } = harness({ highBytes: 10, lowBytes: 0 });
      send('a', 8);
      send('b', 8); // 16 > 10
      emitted.get('a')!.enqueued();
      emitted.get('b')!.enqueued();
      expect(log).to.deep.equal([]);
      emitted.get('b')!.flushed(); // 8: still holding, b's flush goes up anyway
      expect(log).to.deep.equal(['b flushed']);
      expect(last()).to.deep.equal({ usageBytes: 8, heldWakes: 1, suppressedWakes: 2, resumedWakes: 0, holding: true });
      emitted.get('a')!.flushed(); // 0 <= 0: a's own held wake is dropped, not resumed
      expect(log).to.deep.equal(['b flushed', 'a flushed']);
      expect(last()).to.deep.equal({ usageBytes: 0, heldWakes: 0, suppressedWakes: 2, resumedWakes: 0, holding: false });
    });

    it('a failed ack releases its bytes and is forwarded at once', () => {
      const { log, emitted, send, last } = harness({ highBytes: 10, lowBytes: 5 });
      send('a', 12);
      send('b', 1);
      emitted.get('b')!.enqueued();
      emitted.get('a')!.failed('disk full');
      expect(log).to.deep.equal(['a failed disk full', 'b enqueued']);
      expect(last()).to.deep.equal({ usageBytes: 1, heldWakes: 0, suppressedWakes: 1, resumedWakes: 1, holding: false });
    });

    it('a released wake that makes upstream send past the high mark again leaves the rest held', () => {
      const log: string[] = [];
      const stats: WatermarkStats[] = [];
      const input = new Subject<Acked<{ id: string; bytes: number }>>();
      const emitted = new Map<string, Ack>();
      const send = (id: string, bytes: number, onWake?: () => void) =>
        input.next({
          value: { id, bytes },
          ack: {
            enqueued: () => {
              log.push(`${id} enqueued`);
              onWake?.();
            },
            flushed: () => void log.push(`${id} flushed`),
            failed: () => void log.push(`${id} failed`),
          },
        });
      input
        .pipe(watermarkBackpressure({ highBytes: 10, lowBytes: 2, sizeOf: (v) => v.bytes, onStats: (s) => stats.push({ ...s }) }))
        .subscribe((item) => {
          emitted.set(item.value.id, item.ack);
          item.ack.enqueued(); // a writer that takes every item at once
        });
      send('big', 20); // 20 > 10: holding
      // p1's path sends a big item as soon as it wakes, synchronously, inside the release loop.
      send('p1', 1, () => send('x', 20));
      send('q1', 1);
      expect(log).to.deep.equal([]);
      expect(stats.at(-1)).to.deep.equal({ usageBytes: 22, heldWakes: 3, suppressedWakes: 3, resumedWakes: 0, holding: true });

      emitted.get('big')!.flushed(); // 2 <= 2: release p1, whose path sends x (22 > 10 again): q1 stays held
      expect(log).to.deep.equal(['big flushed', 'p1 enqueued']);
      expect(stats.at(-1)).to.deep.equal({ usageBytes: 22, heldWakes: 2, suppressedWakes: 4, resumedWakes: 1, holding: true });

      emitted.get('x')!.flushed(); // 2 <= 2: q1 resumes; x's own held wake is dropped with its flush
      expect(log).to.deep.equal(['big flushed', 'p1 enqueued', 'x flushed', 'q1 enqueued']);
      expect(stats.at(-1)).to.deep.equal({ usageBytes: 2, heldWakes: 0, suppressedWakes: 4, resumedWakes: 2, holding: false });
    });
  });
  describe('properties', () => {
    type Command =
      | { kind: 'send'; path: number; size: number }
      | { kind: 'enqueue'; pick: number }
      | { kind: 'flush'; pick: number };

    const command: fc.Arbitrary<Command> = fc.oneof(
      fc.record({ kind: fc.constant('send' as const), path: fc.nat(3), size: fc.integer({ min: 0, max: 40 }) }),
      fc.record({ kind: fc.constant('enqueue' as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant('flush' as const), pick: fc.nat() }),
    );

    interface Tracked {
      readonly id: number;
      readonly path: number;
      readonly size: number;
      down: Ack | undefined;
      emitted: number;
      downEnqueued: boolean;
      downFlushed: boolean;
      upEnqueued: number;
      upFlushed: number;
      upFailed: number;
    }

    it('forwards a wake only while not holding, releases held wakes at the low mark, loses nothing', () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 0, max: 100 }), fc.array(command, { maxLength: 100, size: 'max' }), (a, b, commands) => {
          const highBytes = Math.max(a, b);
          const lowBytes = Math.min(a, b);
          const items: Tracked[] = [];
          const lastOfPath: (Tracked | undefined)[] = [undefined, undefined, undefined, undefined];
          // The model: what the operator must be doing.
          let usage = 0;
          let holding = false;
          let suppressed = 0;
          let resumed = 0;
          let stats: WatermarkStats | undefined;

          const woke = (item: Tracked) => item.upEnqueued + item.upFlushed > 0;
          const pathReady = (path: number) => lastOfPath[path] === undefined || woke(lastOfPath[path]!);
          const heldNow = () => items.filter((i) => i.downEnqueued && !i.downFlushed && !woke(i)).length;

          const input = new Subject<Acked<{ id: number; size: number }>>();
          input
            .pipe(watermarkBackpressure({ highBytes, lowBytes, sizeOf: (v) => v.size, onStats: (s) => (stats = { ...s }) }))
            .subscribe((out) => {
              const item = items[out.value.id]!;
              item.down = out.ack;
              item.emitted++;
              usage += item.size;
              if (usage > highBytes) holding = true;
            });

          const send = (path: number, size: number) => {
            const item: Tracked = {
              id: items.length,
              path,
              size,
              down: undefined,
              emitted: 0,
              downEnqueued: false,
              downFlushed: false,
              upEnqueued: 0,
              upFlushed: 0,
              upFailed: 0,
            };
            items.push(item);
            lastOfPath[path] = item;
            const ack: Ack = {
              enqueued: () => {
                // The invariant: a wake goes up only while not holding, so never above highBytes.
                expect(holding, `wake of #${item.id} forwarded while holding`).to.equal(false);
                expect(usage).to.be.at.most(highBytes);
                expect(item.upFlushed, `wake of #${item.id} after its flush`).to.equal(0);
                item.upEnqueued++;
              },
              flushed: () => void item.upFlushed++,
              failed: () => void item.upFailed++,
            };
            input.next({ value: { id: item.id, size }, ack });
            expect(item.emitted, 'an item passes at once').to.equal(1);
          };

          const flush = (item: Tracked) => {
            if (!item.downEnqueued && holding) suppressed++; // flushed() implies enqueued(), which is held first
            item.downEnqueued = true;
            item.downFlushed = true;
            usage -= item.size;
            if (holding && usage <= lowBytes) {
              holding = false;
              resumed += heldNow();
            }
            item.down!.flushed();
            expect(item.upFlushed, 'a flush is forwarded at once').to.equal(1);
          };

          for (const cmd of commands) {
            if (cmd.kind === 'send') {
              if (pathReady(cmd.path)) send(cmd.path, cmd.size); // window 1
            } else if (cmd.kind === 'enqueue') {
              const candidates = items.filter((i) => !i.downEnqueued && !i.downFlushed);
              if (candidates.length > 0) {
                const item = candidates[cmd.pick % candidates.length]!;
                item.downEnqueued = true;
                if (holding) suppressed++;
                item.down!.enqueued();
                expect(item.upEnqueued).to.equal(holding ? 0 : 1);
              }
            } else {
              const candidates = items.filter((i) => !i.downFlushed);
              if (candidates.length > 0) flush(candidates[cmd.pick % candidates.length]!);
            }

            if (items.length > 0) {
              expect(stats).to.deep.equal({ usageBytes: usage, heldWakes: heldNow(), suppressedWakes: suppressed, resumedWakes: resumed, holding });
            }
            // Every held wake is released once usage is at or below the low mark.
            if (usage <= lowBytes) expect(heldNow()).to.equal(0);
            // A path waits only for its item to be taken downstream, or while the operator holds.
            for (let path = 0; path < lastOfPath.length; path++) {
              if (!pathReady(path)) expect(!lastOfPath[path]!.downEnqueued || holding, `path ${path} stalled`).to.equal(true);
            }
          }

          // Flush everything, in a shuffled-but-deterministic order (newest first).
          for (const item of items.filter((i) => !i.downFlushed).reverse()) flush(item);
          for (const item of items) {
            expect(item.emitted).to.equal(1);
            expect(item.upFlushed).to.equal(1);
            expect(item.upEnqueued).to.be.at.most(1);
            expect(item.upFailed).to.equal(0);
          }
          for (let path = 0; path < lastOfPath.length; path++) expect(pathReady(path), `path ${path} stalled`).to.equal(true);
          if (items.length > 0) {
            expect(stats).to.deep.equal({ usageBytes: 0, heldWakes: 0, suppressedWakes: suppressed, resumedWakes: resumed, holding: false });
          }
        }),
        { numRuns: 300 },
      );
    });
  });
});
