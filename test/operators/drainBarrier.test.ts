import { expect } from 'chai';
import fc from 'fast-check';
import { map, Subject, take, tap, VirtualTimeScheduler } from 'rxjs';
import type { Ack, Acked } from '../../lib/core/ack.ts';
import { InvalidOptionError } from '../../lib/core/errors.ts';
import { drainBarrier, type DrainBarrierStats, type DrainScope } from '../../operators/drainBarrier.ts';
import { testScheduler } from '../support/marbles.ts';
import { recordingAck } from '../support/recording.ts';


/** Marble values: lowercase letters are items keyed by `keys` (default 'k'), uppercase are barriers. */
function letterOptions(scopes: Record<string, DrainScope<string>> = {}, keys: Record<string, string> = {}) {
  return {
    isBarrier: (value: string) => value === value.toUpperCase(),
    scopeOf: (barrier: string) => scopes[barrier] ?? ('all' as const),
    keyOf: (value: string) => keys[value] ?? 'k',
  };
}

describe('drainBarrier', () => {
  describe('options', () => {
    const base = { isBarrier: () => false, scopeOf: () => 'all' as const, keyOf: () => 'k' };
    const cases: [string, object, string][] = [
      ['missing isBarrier', { ...base, isBarrier: undefined }, 'drainBarrier: option isBarrier must be a function, got undefined'],
      ['missing scopeOf', { ...base, scopeOf: undefined }, 'drainBarrier: option scopeOf must be a function, got undefined'],
      ['keyOf not a function', { ...base, keyOf: 'dispatcher' }, 'drainBarrier: option keyOf must be a function, got "dispatcher"'],
      ['marker not a function', { ...base, marker: {} }, 'drainBarrier: option marker must be a function, got {}'],
      ['onDrained not a function', { ...base, onDrained: 1 }, 'drainBarrier: option onDrained must be a function, got 1'],
      ['onStats not a function', { ...base, onStats: true }, 'drainBarrier: option onStats must be a function, got true'],
      ['a scheduler without now()', { ...base, scheduler: {} }, 'drainBarrier: option scheduler must be a SchedulerLike (with now()), got {}'],
    ];
    for (const [name, options, message] of cases) {
      it(`rejects ${name} when created`, () => {
        expect(() => drainBarrier(options as never))
          .to.throw(InvalidOptionError)
          .with.property('message', message);
      });
    }
  });

  describe('marbles', () => {
    it('never: emits nothing', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold<Acked<string>>('-');
        expectObservable(source.pipe(drainBarrier(letterOptions()))).toBe('-');
        expectSubscriptions(source.subscriptions).toBe('^');
      });
    });

    it('empty: completes at once', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold<Acked<string>>('|');
        expectObservable(source.pipe(drainBarrier(letterOptions()))).toBe('|');
        expectSubscriptions(source.subscriptions).toBe('(^!)');
      });
    });

    it('one: passes the item and forwards its acks', () => {
      const scheduler = testScheduler();
      const log: string[] = [];
      scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold<string>('-a|');
        const result = source.pipe(
          map((value) => ({ value, ack: recordingAck(value, log, () => scheduler.now()) })),
          drainBarrier(letterOptions()),
          tap((item) => {
            item.ack.enqueued();
            scheduler.schedule(() => item.ack.flushed(), 3);
          }),
          map((item) => item.value),
        );
        expectObservable(result).toBe('-a|');
        expectSubscriptions(source.subscriptions).toBe('^-!');
      });
      expect(log).to.deep.equal(['1 a enqueued', '4 a flushed']);
    });

    it('many without barriers: a pass-through that forwards every ack', () => {
      const scheduler = testScheduler();
      const log: string[] = [];
      const stats: DrainBarrierStats[] = [];
      scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold<string>('-a-b-c-|');
        const result = source.pipe(
          map((value) => ({ value, ack: recordingAck(value, log, () => scheduler.now()) })),
          drainBarrier({ ...letterOptions({}, { a: 'k1', b: 'k2', c: 'k1' }), onStats: (s) => stats.push({ ...s }) }),
          tap((item) => {
            item.ack.enqueued();
            scheduler.schedule(() => item.ack.flushed(), 1);
          }),
          map((item) => item.value),
        );
        expectObservable(result).toBe('-a-b-c-|');
        expectSubscriptions(source.subscriptions).toBe('^------!');
      });
      expect(log).to.deep.equal(['1 a enqueued', '2 a flushed', '3 b enqueued', '4 b flushed', '5 c enqueued', '6 c flushed']);
      const inFlightOnly = (inFlight: number) => ({ waitingBarriers: 0, heldItems: 0, inFlight, activeBarriers: 0 });
      expect(stats).to.deep.equal([1, 0, 1, 0, 1, 0].map(inFlightOnly));
    });

    it('reports the drain duration on virtual time and holds later items until the barrier is flushed', () => {
      const scheduler = testScheduler();
      const log: string[] = [];
      const drained: { barrier: string; durationMs: number }[] = [];
      scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
        // The writer makes each item durable 3 frames after it receives it.
        const source = cold<string>('-a-b-D-c-|');
        const result = source.pipe(
          map((value) => ({ value, ack: recordingAck(value, log, () => scheduler.now()) })),
          drainBarrier({ ...letterOptions(), scheduler, onDrained: (event) => drained.push(event) }),
          tap((item) => {
            item.ack.enqueued();
            scheduler.schedule(() => item.ack.flushed(), 3);
          }),
          map((item) => item.value),
        );
        // D arrives at 5 with b in flight until 6; c arrives at 7 and waits for D's flush at 9.
        expectObservable(result).toBe('-a-b--D--(c|)');
        expectSubscriptions(source.subscriptions).toBe('^--------!');
      });
      expect(drained).to.deep.equal([{ barrier: 'D', durationMs: 1 }]);
      expect(log).to.deep.equal([
        '1 a enqueued',
        '3 b enqueued',
        '4 a flushed',
        '6 b flushed',
        '6 D enqueued',
        '9 D flushed',
        '9 c enqueued',
        '12 c flushed',
      ]);
    });

    it('emits the drain marker at the barrier frame when the barrier must wait', () => {
      const scheduler = testScheduler();
      scheduler.run(({ cold, expectObservable }) => {
        const source = cold<string>('-a-b-D-c-|');
        const result = source.pipe(
          map((value) => ({ value, ack: recordingAck(value, []) })),
          drainBarrier({ ...letterOptions(), marker: (barrier) => `marker ${barrier}` }),
          tap((item) => scheduler.schedule(() => item.ack.flushed(), 3)),
          map((item) => item.value),
        );
        expectObservable(result).toBe('-a-b-mD--(c|)', { a: 'a', b: 'b', m: 'marker D', D: 'D', c: 'c' });
      });
    });

    it('sends no marker for a barrier that can go at once', () => {
      testScheduler().run(({ cold, expectObservable }) => {
        const result = cold<string>('-a-D-|').pipe(
          map((value) => ({ value, ack: recordingAck(value, []) })),
          drainBarrier({ ...letterOptions({ D: ['other'] }), marker: (barrier) => `marker ${barrier}` }),
          map((item) => item.value),
        );
        expectObservable(result).toBe('-a-D-|');
      });
    });

    it('completes only after every held entry was emitted', () => {
      const scheduler = testScheduler();
      scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold<string>('-a-D|');
        const result = source.pipe(
          map((value) => ({ value, ack: recordingAck(value, []) })),
          drainBarrier(letterOptions()),
          tap((item) => scheduler.schedule(() => item.ack.flushed(), 5)),
          map((item) => item.value),
        );
        expectObservable(result).toBe('-a----(D|)');
        expectSubscriptions(source.subscriptions).toBe('^---!');
      });
    });

    it('error: forwards the source error at once, even with a barrier held', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold<string>('-a-D-#', undefined, new Error('source broke'));
        const result = source.pipe(
          map((value) => ({ value, ack: recordingAck(value, []) })),
          drainBarrier(letterOptions()),
          map((item) => item.value),
        );
        expectObservable(result).toBe('-a---#', undefined, new Error('source broke'));
        expectSubscriptions(source.subscriptions).toBe('^----!');
      });
    });

    it('infinite + take: unsubscribes from the source when take completes', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold<string>('-a-b-c-d-e-f-g-');
        const result = source.pipe(
          map((value) => ({ value, ack: recordingAck(value, []) })),
          drainBarrier(letterOptions()),
          map((item) => item.value),
          take(2),
        );
        expectObservable(result).toBe('-a-(b|)');
        expectSubscriptions(source.subscriptions).toBe('^--!');
      });
    });

    it('early unsubscribe: stops at the unsubscription frame with a barrier held, and leaves held acks untouched', () => {
      const scheduler = testScheduler();
      const log: string[] = [];
      scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold<string>('-a-D-b-|');
        const result = source.pipe(
          map((value) => ({ value, ack: recordingAck(value, log, () => scheduler.now()) })),
          drainBarrier(letterOptions()),
          tap((item) => item.ack.enqueued()),
          map((item) => item.value),
        );
        expectObservable(result, '^----!').toBe('-a---');
        expectSubscriptions(source.subscriptions).toBe('^----!');
      });
      expect(log).to.deep.equal(['1 a enqueued']);
    });

    // keyOf is asked about ordinary items only, so it throws on c, behind the held barrier B.
    const throwingCases = [
      ['isBarrier', 'B', '-a-#', '^--!'],
      ['scopeOf', 'B', '-a-#', '^--!'],
      ['keyOf', 'c', '-a---#', '^----!'],
    ] as const;
    for (const [callback, trigger, expected, subscription] of throwingCases) {
      it(`a throwing ${callback} errors the output and unsubscribes the source`, () => {
        const failure = new Error(`${callback} broke`);
        testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
          const source = cold<string>('-a-B-c-|');
          const options = letterOptions();
          const throwing = {
            ...options,
            [callback]: (value: string) => {
              if (value === trigger) throw failure;
              return options[callback](value);
            },
          };
          const result = source.pipe(
            map((value) => ({ value, ack: recordingAck(value, []) })),
            drainBarrier(throwing),
            map((item) => item.value),
          );
          expectObservable(result).toBe(expected, undefined, failure);
          expectSubscriptions(source.subscriptions).toBe(subscription);
        });
      });
    }

    it('a throwing marker errors the output', () => {
      const failure = new Error('marker broke');
      testScheduler().run(({ cold, expectObservable }) => {
        // a stays in flight, so D must wait and a marker is made for it.
        const result = cold<string>('-a-D-|').pipe(
          map((value) => ({ value, ack: recordingAck(value, []) })),
          drainBarrier({
            ...letterOptions(),
            marker: () => {
              throw failure;
            },
          }),
          map((item) => item.value),
        );
        expectObservable(result).toBe('-a-#', undefined, failure);
      });
    });

    it('a throwing onDrained errors the output', () => {
      const failure = new Error('onDrained broke');
      testScheduler().run(({ cold, expectObservable }) => {
        // The writer flushes at once, so D drains on arrival and onDrained runs then.
        const result = cold<string>('-a-D-|').pipe(
          map((value) => ({ value, ack: recordingAck(value, []) })),
          drainBarrier({
            ...letterOptions(),
            onDrained: () => {
              throw failure;
            },
          }),
          tap((item) => item.ack.flushed()),
          map((item) => item.value),
        );
        expectObservable(result).toBe('-a-#', undefined, failure);
      });
    });

    it('a scopeOf that returns neither keys nor "all" errors the output with a TypeError', () => {
      testScheduler().run(({ cold, expectObservable }) => {
        const result = cold<string>('-D-|').pipe(
          map((value) => ({ value, ack: recordingAck(value, []) })),
          drainBarrier({ ...letterOptions(), scopeOf: () => 'k1' as never }),
        );
        expectObservable(result).toBe(
          '-#',
          undefined,
          new TypeError(`drainBarrier: scopeOf returned k1; it must return an array of keys or 'all'`),
        );
      });
    });
  });

  describe('draining', () => {
    interface Change {
      readonly id: string;
      /** An ordinary item's dispatcher or table. */
      readonly key?: string;
      /** A barrier's scope. */
      readonly scope?: DrainScope<string>;
      /** Set on drain markers: the barrier it announces. */
      readonly markerOf?: string;
    }

    const changeOptions = {
      isBarrier: (change: Change) => change.scope !== undefined,
      scopeOf: (change: Change) => change.scope!,
      keyOf: (change: Change) => change.key!,
    };
    const markerOf = (ddl: Change): Change => ({ id: `marker(${ddl.id})`, markerOf: ddl.id });

    /** Drives the operator through a Subject; `onEmit` is the downstream stage. */
    function harness(extra: { marker?: (barrier: Change) => Change } = {}, onEmit: (item: Acked<Change>) => void = () => {}) {
      const log: string[] = [];
      const clock = new VirtualTimeScheduler();
      const out: string[] = [];
      const acks = new Map<string, Ack>();
      const stats: DrainBarrierStats[] = [];
      const drained: { barrier: string; durationMs: number }[] = [];
      const errors: unknown[] = [];
      let completed = false;
      const input = new Subject<Acked<Change>>();
      input
        .pipe(
          drainBarrier({
            ...changeOptions,
            ...extra,
            scheduler: clock,
            onDrained: ({ barrier, durationMs }) => drained.push({ barrier: barrier.id, durationMs }),
            onStats: (s) => stats.push({ ...s }),
          }),
        )
        .subscribe({
          next: (item) => {
            out.push(item.value.id);
            acks.set(item.value.id, item.ack);
            onEmit(item);
          },
          error: (error) => errors.push(error),
          complete: () => (completed = true),
        });
      return {
        log,
        clock,
        out,
        acks,
        drained,
        errors,
        input,
        completed: () => completed,
        stats: () => stats.at(-1),
        item: (id: string, key: string) => input.next({ value: { id, key }, ack: recordingAck(id, log) }),
        barrier: (id: string, scope: DrainScope<string>) => input.next({ value: { id, scope }, ack: recordingAck(id, log) }),
      };
    }

    it('a barrier drains items still queued upstream of the writer', () => {
      for (const withMarker of [false, true]) {
        // The writer's queue: items emitted and woken early, still waiting to be written.
        const writerQueue = new Map<string, Ack>();
        const h = harness(withMarker ? { marker: markerOf } : {}, (item) => {
          item.ack.enqueued();
          writerQueue.set(item.value.id, item.ack);
        });
        const marker = withMarker ? ['marker(ddl)'] : [];

        h.item('a1', 't1');
        h.item('a2', 't1');
        expect(h.log).to.deep.equal(['a1 enqueued', 'a2 enqueued']); // early wake: t1's path moves on
        h.clock.frame = 10;
        h.barrier('ddl', ['t1']);
        // Not written yet: the barrier waits; the marker (when asked for) goes out at once.
        expect(h.out).to.deep.equal(['a1', 'a2', ...marker]);
        expect(h.stats()).to.deep.equal({ waitingBarriers: 1, heldItems: 0, inFlight: 2, activeBarriers: 0 });

        h.clock.frame = 15;
        writerQueue.get('a1')!.flushed();
        expect(h.out).to.deep.equal(['a1', 'a2', ...marker]);
        h.clock.frame = 25;
        writerQueue.get('a2')!.flushed(); // the last earlier t1 item is durable: the barrier goes
        expect(h.out).to.deep.equal(['a1', 'a2', ...marker, 'ddl']);
        expect(h.drained).to.deep.equal([{ barrier: 'ddl', durationMs: 15 }]);
        expect(h.log).to.deep.equal(['a1 enqueued', 'a2 enqueued', 'a1 flushed', 'a2 flushed', 'ddl enqueued']);
        expect(h.stats()).to.deep.equal({ waitingBarriers: 0, heldItems: 0, inFlight: 0, activeBarriers: 1 });

        // A later t1 item waits for the barrier itself, with its ack untouched (its path stays paused);
        // t2 is outside the scope and flows.
        h.item('a3', 't1');
        h.item('b1', 't2');
        expect(h.out).to.deep.equal(['a1', 'a2', ...marker, 'ddl', 'b1']);
        expect(h.log).to.not.include('a3 enqueued');
        writerQueue.get('ddl')!.flushed();
        expect(h.out).to.deep.equal(['a1', 'a2', ...marker, 'ddl', 'b1', 'a3']);
        expect(h.log.slice(-3)).to.deep.equal(['b1 enqueued', 'ddl flushed', 'a3 enqueued']);
        expect(h.errors).to.deep.equal([]);
      }
    });

    it('a marker waits for the items it drains: held behind an earlier barrier, they go out first', () => {
      const h = harness({ marker: markerOf });
      h.barrier('create', 'all'); // goes at once, holds everything after it until flushed
      h.item('a1', 'a');
      h.item('b1', 'b');
      h.barrier('alter', ['a', 'b']); // must wait for a1 and b1, which are still held
      expect(h.out).to.deep.equal(['create'], 'no marker yet: it would pass before a1 and b1');
      h.acks.get('create')!.flushed();
      expect(h.out).to.deep.equal(['create', 'a1', 'b1', 'marker(alter)'], 'the marker follows the last item it drains');
      h.acks.get('a1')!.flushed();
      h.acks.get('b1')!.flushed();
      expect(h.out).to.deep.equal(['create', 'a1', 'b1', 'marker(alter)', 'alter']);
    });

    it('a drain marker lets a batching writer cut now, so the barrier drains in the same call', () => {
      // A writer that buffers items and writes (then flushes) its buffer when it sees a marker.
      const buffer: Acked<Change>[] = [];
      const h = harness({ marker: markerOf }, (item) => {
        item.ack.enqueued();
        if (item.value.markerOf === undefined) return void buffer.push(item);
        for (const buffered of buffer.splice(0)) buffered.ack.flushed();
      });
      h.item('a1', 't1');
      h.item('a2', 't1');
      h.clock.frame = 4;
      h.barrier('ddl', ['t1']);
      expect(h.out).to.deep.equal(['a1', 'a2', 'marker(ddl)', 'ddl']);
      expect(h.drained).to.deep.equal([{ barrier: 'ddl', durationMs: 0 }]);
    });

    it('a barrier across several dispatchers waits for all of them', () => {
      const h = harness({}, (item) => item.ack.enqueued());
      h.item('x1', 'd1');
      h.item('x2', 'd2');
      h.item('x3', 'd3');
      h.clock.frame = 100;
      h.barrier('ddl', ['d1', 'd2', 'd3']);
      expect(h.out).to.deep.equal(['x1', 'x2', 'x3']);
      h.item('y1', 'd4'); // outside the scope: flows while the barrier waits
      expect(h.out).to.deep.equal(['x1', 'x2', 'x3', 'y1']);

      h.acks.get('x1')!.flushed();
      h.acks.get('x2')!.flushed();
      expect(h.out).to.deep.equal(['x1', 'x2', 'x3', 'y1']);
      expect(h.stats()).to.deep.equal({ waitingBarriers: 1, heldItems: 0, inFlight: 2, activeBarriers: 0 });
      h.item('y2', 'd4');
      expect(h.out).to.deep.equal(['x1', 'x2', 'x3', 'y1', 'y2']);

      h.clock.frame = 107;
      h.acks.get('x3')!.flushed(); // every dispatcher of the scope drained
      expect(h.out).to.deep.equal(['x1', 'x2', 'x3', 'y1', 'y2', 'ddl']);
      expect(h.drained).to.deep.equal([{ barrier: 'ddl', durationMs: 7 }]);

      h.item('z1', 'd1'); // later, in scope: held until the barrier is flushed
      h.item('w1', 'd2');
      h.item('y3', 'd4'); // flows past the held ones
      expect(h.out).to.deep.equal(['x1', 'x2', 'x3', 'y1', 'y2', 'ddl', 'y3']);
      expect(h.stats()).to.deep.equal({ waitingBarriers: 0, heldItems: 2, inFlight: 3, activeBarriers: 1 });
      expect(h.log).to.not.include('z1 enqueued');

      h.acks.get('ddl')!.flushed();
      expect(h.out).to.deep.equal(['x1', 'x2', 'x3', 'y1', 'y2', 'ddl', 'y3', 'z1', 'w1']);
      expect(h.log.slice(-3)).to.deep.equal(['ddl flushed', 'z1 enqueued', 'w1 enqueued']);
      expect(h.stats()).to.deep.equal({ waitingBarriers: 0, heldItems: 0, inFlight: 5, activeBarriers: 0 });
    });

    it('barriers with overlapping scopes keep their order; a disjoint one does not wait', () => {
      const h = harness();
      h.item('x', 'k1');
      h.barrier('B1', ['k1', 'k2']);
      h.barrier('B2', ['k2', 'k3']); // nothing of k2/k3 in flight, but B1 is earlier and overlaps
      h.barrier('B3', ['k4']);
      h.item('y', 'k3'); // behind the held B2
      h.item('z', 'k5');
      expect(h.out).to.deep.equal(['x', 'B3', 'z']);
      h.acks.get('x')!.flushed();
      expect(h.out).to.deep.equal(['x', 'B3', 'z', 'B1']);
      h.acks.get('B1')!.flushed();
      expect(h.out).to.deep.equal(['x', 'B3', 'z', 'B1', 'B2']);
      h.acks.get('B2')!.flushed();
      expect(h.out).to.deep.equal(['x', 'B3', 'z', 'B1', 'B2', 'y']);
    });

    it("an 'all' barrier waits for every key and holds every later item, keys never seen included", () => {
      const h = harness();
      h.item('a', 'k1');
      h.item('b', 'k2');
      h.barrier('ALL', 'all');
      h.barrier('EMPTY', []); // drains nothing: goes at once
      h.acks.get('a')!.flushed();
      expect(h.out).to.deep.equal(['a', 'b', 'EMPTY']);
      h.acks.get('b')!.flushed();
      expect(h.out).to.deep.equal(['a', 'b', 'EMPTY', 'ALL']);
      h.item('c', 'new-key');
      expect(h.out).to.deep.equal(['a', 'b', 'EMPTY', 'ALL']);
      h.acks.get('ALL')!.flushed();
      expect(h.out).to.deep.equal(['a', 'b', 'EMPTY', 'ALL', 'c']);
    });

    it('a failed item errors the output naming its key, with the cause, and forwards the failure', () => {
      const h = harness();
      const cause = new Error('PUT 503');
      h.item('a', 't1');
      h.barrier('ddl', ['t1']);
      h.acks.get('a')!.failed(cause);
      expect(h.log).to.deep.equal([`a failed ${String(cause)}`]);
      expect(h.errors).to.have.length(1);
      const error = h.errors[0] as Error;
      expect(error.message).to.equal('drainBarrier: an item with key t1 failed downstream; barriers whose scope includes t1 cannot drain');
      expect(error.cause).to.equal(cause);
      expect(h.out).to.deep.equal(['a']);
    });

    it('a failed barrier errors the output naming its scope, with the cause', () => {
      const h = harness();
      const cause = new Error('schema write refused');
      h.barrier('ddl', ['t1', 't2']);
      h.acks.get('ddl')!.failed(cause);
      expect(h.log).to.deep.equal([`ddl failed ${String(cause)}`]);
      const error = h.errors[0] as Error;
      expect(error.message).to.equal('drainBarrier: a barrier over keys [t1, t2] failed downstream; later items in its scope cannot pass it');
      expect(error.cause).to.equal(cause);
    });

    it('acks of emitted items still reach upstream after the output is gone', () => {
      const h = harness();
      h.item('a', 't1');
      h.input.complete();
      expect(h.completed()).to.equal(true);
      h.acks.get('a')!.flushed();
      expect(h.log).to.deep.equal(['a enqueued', 'a flushed']);
    });
  });
  describe('properties', () => {
    const KEYS = [0, 1, 2, 3];
    const PATHS = 4;
    type Scope = readonly number[] | 'all';
    type Command =
      | { kind: 'item'; path: number; key: number }
      | { kind: 'barrier'; path: number; scope: Scope }
      | { kind: 'enqueue'; pick: number }
      | { kind: 'flush'; pick: number };

    const command: fc.Arbitrary<Command> = fc.oneof(
      { weight: 4, arbitrary: fc.record({ kind: fc.constant('item' as const), path: fc.nat(PATHS - 1), key: fc.constantFrom(...KEYS) }) },
      {
        weight: 2,
        arbitrary: fc.record({
          kind: fc.constant('barrier' as const),
          path: fc.nat(PATHS - 1),
          scope: fc.oneof(fc.constant('all' as const), fc.subarray(KEYS)),
        }),
      },
      { weight: 4, arbitrary: fc.record({ kind: fc.constant('enqueue' as const), pick: fc.nat() }) },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant('flush' as const), pick: fc.nat() }) },
    );

    interface Entry {
      readonly id: number;
      readonly path: number;
      readonly key: number | undefined;
      readonly scope: Scope | undefined;
      readonly arrivedAt: number;
      down: Ack | undefined;
      emitted: number;
      downEnqueued: boolean;
      downFlushed: boolean;
      markers: number;
      upEnqueued: number;
      upFlushed: number;
      upFailed: number;
    }

    interface Value {
      readonly id: number;
      readonly key?: number;
      readonly scope?: Scope;
      readonly markerOf?: number;
    }

    const keysOf = (entry: Entry): readonly number[] =>
      entry.scope === undefined ? [entry.key!] : entry.scope === 'all' ? KEYS : entry.scope;
    /** True when the earlier entry `e` is in the scope of `x`, or `x` is in the scope of `e`. */
    const related = (e: Entry, x: Entry) => keysOf(e).some((key) => keysOf(x).includes(key));

    it('never emits a barrier before its scope drained nor an in-scope item before the barrier flushed, keeps per-key order, holds nothing out of scope, and loses nothing', () => {
      fc.assert(
        fc.property(fc.array(command, { maxLength: 100, size: 'max' }), fc.boolean(), (commands, withMarker) => {
          const entries: Entry[] = [];
          const lastOfPath: (Entry | undefined)[] = new Array(PATHS).fill(undefined);
          const clock = new VirtualTimeScheduler();
          const drained: { id: number; durationMs: number }[] = [];
          let stats: DrainBarrierStats | undefined;
          let completed = false;
          const errors: unknown[] = [];

          const woke = (entry: Entry) => entry.upEnqueued + entry.upFlushed > 0;
          const pathReady = (path: number) => lastOfPath[path] === undefined || woke(lastOfPath[path]!);

          const input = new Subject<Acked<Value>>();
          input
            .pipe(
              drainBarrier<Value, number>({
                isBarrier: (v) => v.scope !== undefined,
                scopeOf: (v) => v.scope!,
                keyOf: (v) => v.key!,
                marker: withMarker ? (v) => ({ id: -1, markerOf: v.id }) : undefined,
                scheduler: clock,
                onDrained: ({ barrier, durationMs }) => drained.push({ id: barrier.id, durationMs }),
                onStats: (s) => (stats = { ...s }),
              }),
            )
            .subscribe({
              // rxjs would report a throw here asynchronously: keep it for the command's check.
              next: (out) => {
                try {
                  if (out.value.markerOf !== undefined) {
                    const barrier = entries[out.value.markerOf]!;
                    barrier.markers++;
                    expect(barrier.markers, `one marker for barrier #${barrier.id}`).to.equal(1);
                    // The marker follows every earlier item of the barrier's scope.
                    for (const e of entries.slice(0, barrier.id)) {
                      if (related(e, barrier)) expect(e.emitted, `marker of #${barrier.id} before #${e.id} went out`).to.equal(1);
                    }
                    return;
                  }
                  const x = entries[out.value.id]!;
                  x.down = out.ack;
                  x.emitted++;
                  expect(x.emitted, `#${x.id} emitted twice`).to.equal(1);
                  for (const e of entries.slice(0, x.id)) {
                    if (!related(e, x)) continue;
                    if (x.scope !== undefined) {
                      // (1) a barrier goes only after every earlier in-scope item and barrier was flushed
                      expect(e.downFlushed, `barrier #${x.id} emitted before #${e.id} was flushed`).to.equal(true);
                    } else if (e.scope !== undefined) {
                      // (2) no later in-scope item before the barrier itself was flushed
                      expect(e.downFlushed, `#${x.id} emitted before barrier #${e.id} was flushed`).to.equal(true);
                    } else {
                      // (3) per-key order
                      expect(e.emitted, `#${x.id} emitted before #${e.id} of the same key`).to.equal(1);
                    }
                  }
                  if (x.scope !== undefined) {
                    expect(drained.at(-1)).to.deep.equal({ id: x.id, durationMs: clock.frame - x.arrivedAt });
                  }
                } catch (error) {
                  errors.push(error);
                }
              },
              error: (error) => errors.push(error),
              complete: () => (completed = true),
            });

          const send = (path: number, key: number | undefined, scope: Scope | undefined) => {
            const entry: Entry = {
              id: entries.length,
              path,
              key,
              scope,
              arrivedAt: clock.frame,
              down: undefined,
              emitted: 0,
              downEnqueued: false,
              downFlushed: false,
              markers: 0,
              upEnqueued: 0,
              upFlushed: 0,
              upFailed: 0,
            };
            entries.push(entry);
            lastOfPath[path] = entry;
            const ack: Ack = {
              enqueued: () => void entry.upEnqueued++,
              flushed: () => void entry.upFlushed++,
              failed: () => void entry.upFailed++,
            };
            input.next({ value: scope === undefined ? { id: entry.id, key } : { id: entry.id, scope }, ack });
            // The marker goes out at once exactly when the barrier waits only for items already out:
            // nothing earlier of its scope is held, and no earlier barrier of its scope is unflushed.
            if (scope !== undefined) {
              const earlier = entries.slice(0, entry.id).filter((e) => related(e, entry));
              const heldBefore = earlier.some((e) => e.emitted === 0);
              const barrierBefore = earlier.some((e) => e.scope !== undefined && !e.downFlushed);
              const due = withMarker && entry.emitted === 0 && !heldBefore && !barrierBefore;
              expect(entry.markers).to.equal(due ? 1 : 0);
            }
          };

          const flush = (entry: Entry) => {
            entry.downEnqueued = true;
            entry.downFlushed = true;
            entry.down!.flushed();
            expect(entry.upFlushed, 'a flush is forwarded at once').to.equal(1);
          };

          const checkHeld = () => {
            for (const x of entries) {
              if (x.emitted === 1) continue;
              // (4) held only with a reason: an earlier related entry still held, an active barrier
              // over its key, or (for a barrier) an earlier related item or barrier not yet flushed.
              const reason = entries.slice(0, x.id).some((e) => {
                if (!related(e, x)) return false;
                if (x.scope !== undefined || e.scope !== undefined) return !e.downFlushed;
                return e.emitted === 0;
              });
              expect(reason, `#${x.id} held without a reason`).to.equal(true);
            }
            const count = (f: (e: Entry) => boolean) => entries.filter(f).length;
            if (entries.length > 0) {
              expect(stats).to.deep.equal({
                waitingBarriers: count((e) => e.scope !== undefined && e.emitted === 0),
                heldItems: count((e) => e.scope === undefined && e.emitted === 0),
                inFlight: count((e) => e.scope === undefined && e.emitted === 1 && !e.downFlushed),
                activeBarriers: count((e) => e.scope !== undefined && e.emitted === 1 && !e.downFlushed),
              });
            }
          };

          for (const [index, cmd] of commands.entries()) {
            clock.frame = index;
            if (cmd.kind === 'item' || cmd.kind === 'barrier') {
              // Window 1: a path sends its next entry only once the previous one woke.
              if (pathReady(cmd.path)) send(cmd.path, cmd.kind === 'item' ? cmd.key : undefined, cmd.kind === 'barrier' ? cmd.scope : undefined);
            } else {
              const candidates = entries.filter((e) => e.emitted === 1 && !e.downFlushed && (cmd.kind === 'flush' || !e.downEnqueued));
              const picked = candidates[cmd.pick % Math.max(1, candidates.length)];
              if (picked && cmd.kind === 'flush') flush(picked);
              if (picked && cmd.kind === 'enqueue') {
                picked.downEnqueued = true;
                picked.down!.enqueued();
                expect(picked.upEnqueued, 'a wake is forwarded at once').to.equal(1);
              }
            }
            if (errors.length > 0) throw errors[0];
            checkHeld();
          }

          // (5) Flushing everything drains everything.
          clock.frame = commands.length;
          for (let pending = entries.filter((e) => e.emitted === 1 && !e.downFlushed); pending.length > 0; ) {
            for (const entry of pending) flush(entry);
            pending = entries.filter((e) => e.emitted === 1 && !e.downFlushed);
          }
          if (errors.length > 0) throw errors[0];
          checkHeld();
          for (const entry of entries) {
            expect(entry.emitted, `#${entry.id} not emitted`).to.equal(1);
            expect(entry.upFlushed).to.equal(1);
            expect(entry.upEnqueued).to.be.at.most(1);
            expect(entry.upFailed).to.equal(0);
          }
          for (let path = 0; path < PATHS; path++) expect(pathReady(path), `path ${path} stalled`).to.equal(true);
          expect(drained.map((d) => d.id).sort((a, b) => a - b)).to.deep.equal(entries.filter((e) => e.scope !== undefined).map((e) => e.id));
          input.complete();
          expect(completed).to.equal(true);
        }),
        { numRuns: 300 },
      );
    });
  });
});
