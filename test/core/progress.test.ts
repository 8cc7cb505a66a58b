import { expect } from 'chai';
import fc from 'fast-check';
import { createAck, type Ack } from '../../lib/core/ack.ts';
import { ProgressTracker } from '../../lib/core/progress.ts';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** A full garbage collection, without starting node with --expose-gc. */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

describe('ProgressTracker', () => {
  describe('park (idle paths reduced to their checkpoint)', () => {
    it('parks only a path with every item flushed; its checkpoint still holds the overall one back', () => {
      const tracker = new ProgressTracker<string>();
      const a = tracker.track('a', 10n);
      tracker.track('b', 50n).flushed();
      expect(tracker.park('a')).to.equal(false, 'a has an unflushed item');
      expect(tracker.park('b')).to.equal(true);
      expect(tracker.park('missing')).to.equal(false);
      expect(tracker.pathCounts).to.deep.equal({ active: 1, parked: 1 });
      a.flushed();
      tracker.track('a', 100n).flushed();
      expect(tracker.overall).to.equal(50n, 'the parked path still counts');
      expect(tracker.checkpoint('b')).to.equal(50n);
      expect(tracker.highest('b')).to.equal(50n);
    });

    it('tracking on a parked path resumes from its checkpoint: a position at or below it is refused', () => {
      const tracker = new ProgressTracker<string>();
      tracker.track('p', 7n).flushed();
      tracker.park('p');
      expect(() => tracker.track('p', 7n)).to.throw(RangeError, 'at or below its checkpoint 7');
      const next = tracker.track('p', 8n);
      expect(tracker.pathCounts).to.deep.equal({ active: 1, parked: 0 });
      expect(tracker.overall).to.equal(7n);
      next.flushed();
      expect(tracker.overall).to.equal(8n);
    });

    it('keeps the least parked checkpoint as paths park, wake up and are removed', () => {
      const tracker = new ProgressTracker<string>();
      for (const [path, position] of [['x', 30n], ['y', 10n], ['z', 20n]] as const) {
        tracker.track(path, position).flushed();
        tracker.park(path);
      }
      expect(tracker.overall).to.equal(10n);
      tracker.track('y', 40n).flushed(); // y wakes up: the least parked is now z
      expect(tracker.overall).to.equal(20n);
      tracker.remove('z');
      expect(tracker.overall).to.equal(30n);
      tracker.remove('x');
      expect(tracker.overall).to.equal(40n);
    });

    it('parkIdle parks the paths with no item for more than idleEpochs epochs and nothing in flight', () => {
      const tracker = new ProgressTracker<string>();
      tracker.track('quiet', 1n).flushed();
      const busy = tracker.track('busy', 1n);
      tracker.track('back', 1n).flushed();
      expect(tracker.parkIdle(1)).to.equal(0, 'one epoch: nothing idle for more than one yet');
      tracker.track('back', 2n).flushed();
      expect(tracker.parkIdle(1)).to.equal(1, 'quiet only: busy has an item in flight, back tracked in the last epoch');
      expect(tracker.pathCounts).to.deep.equal({ active: 2, parked: 1 });
      expect(tracker.checkpoint('quiet')).to.equal(1n);
      busy.flushed();
      expect(tracker.parkIdle(1)).to.equal(2);
      expect(tracker.pathCounts).to.deep.equal({ active: 0, parked: 3 });
      expect(tracker.overall).to.equal(1n);
    });

    it('property: parking idle paths never changes the overall checkpoint', () => {
      fc.assert(
        fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 4 }), fc.boolean(), fc.boolean()), { maxLength: 60 }), (steps) => {
          const plain = new ProgressTracker<number>();
          const parking = new ProgressTracker<number>();
          const next = [1n, 1n, 1n, 1n, 1n];
          const open: [Ack, Ack][] = [];
          for (const [path, flushOldest, park] of steps) {
            const position = next[path]!;
            next[path] = position + 1n;
            open.push([plain.track(path, position), parking.track(path, position)]);
            if (flushOldest) {
              const [a, b] = open.shift()!;
              a.flushed();
              b.flushed();
            }
            if (park) for (let p = 0; p < 5; p++) parking.park(p);
            expect(parking.overall).to.equal(plain.overall);
          }
        }),
        { numRuns: 300 },
      );
    });
  });

  it('does not retain a flushed item while its path always has a later item in flight', async () => {
    const tracker = new ProgressTracker<string>();
    // The inner acks of flushed items must become garbage: the tracker keeps no reference.
    const refs: WeakRef<Ack>[] = [];
    let previous = tracker.track('p', 1n, createAck());
    for (let position = 2n; position <= 40n; position++) {
      const inner = createAck();
      refs.push(new WeakRef(inner));
      const next = tracker.track('p', position, inner);
      previous.flushed();
      previous = next;
    }
    expect(tracker.checkpoint('p')).to.equal(39n);
    await new Promise((resolve) => setImmediate(resolve));
    collectGarbage();
    const retained = refs.slice(0, -1).filter((ref) => ref.deref() !== undefined).length;
    expect(retained).to.equal(0, 'flushed items behind the head are released');
  });

  it('early wake does not advance the checkpoint', () => {
    const tracker = new ProgressTracker<string>();
    const seen: bigint[] = [];
    tracker.checkpoint$('d1').subscribe((position) => seen.push(position));
    const first = tracker.track('d1', 10n);
    const second = tracker.track('d1', 20n);
    first.enqueued();
    second.enqueued();
    expect(tracker.checkpoint('d1')).to.equal(9n);
    first.flushed();
    expect(tracker.checkpoint('d1')).to.equal(19n);
    second.flushed();
    expect(tracker.checkpoint('d1')).to.equal(20n);
    expect(seen).to.deep.equal([9n, 19n, 20n]);
  });

  it('waits for the oldest item when flushes come out of order', () => {
    const tracker = new ProgressTracker<string>();
    const acks = [1n, 2n, 3n].map((p) => tracker.track('p', p));
    acks[2]!.flushed();
    acks[1]!.flushed();
    expect(tracker.checkpoint('p')).to.equal(0n);
    acks[0]!.flushed();
    expect(tracker.checkpoint('p')).to.equal(3n);
  });

  it('items at the same position all count before the checkpoint reaches it', () => {
    const tracker = new ProgressTracker<string>();
    const a = tracker.track('p', 5n);
    const b = tracker.track('p', 5n);
    a.flushed();
    expect(tracker.checkpoint('p')).to.equal(4n);
    b.flushed();
    expect(tracker.checkpoint('p')).to.equal(5n);
  });

  it('with shared positions, items share a position, which completes only with a higher one or advance, parked or not', () => {
    const tracker = new ProgressTracker<string>({ sharedPositions: true });
    tracker.track('a', 10n).flushed();
    tracker.track('a', 10n).flushed(); // the same position again, with nothing in flight
    expect(tracker.checkpoint('a')).to.equal(9n);
    const late = tracker.track('a', 10n);
    tracker.track('a', 12n).flushed();
    expect(tracker.checkpoint('a')).to.equal(9n, 'an item at 10 is in flight');
    late.flushed();
    expect(tracker.checkpoint('a')).to.equal(11n);
    expect(() => tracker.track('a', 11n)).to.throw(RangeError, 'position 11 on path a is at or below its checkpoint 11');
    // Parked, it keeps its checkpoint; back, it takes the open position again, not the one below.
    expect(tracker.park('a')).to.equal(true);
    expect(tracker.overall).to.equal(11n);
    expect(() => tracker.track('a', 11n)).to.throw(RangeError, 'at or below its checkpoint 11');
    tracker.track('a', 12n).flushed();
    expect(tracker.checkpoint('a')).to.equal(11n);
    tracker.advance('a', 12n);
    expect(tracker.checkpoint('a')).to.equal(12n);
    expect(() => tracker.track('a', 12n)).to.throw(RangeError, 'at or below its checkpoint 12');
  });

  it('forwards every stage to the inner ack', () => {
    const log: string[] = [];
    const inner = createAck({
      onEnqueued: () => log.push('enqueued'),
      onFlushed: () => log.push('flushed'),
      onFailed: () => log.push('failed'),
    });
    const tracker = new ProgressTracker<string>();
    tracker.track('p', 1n, inner).flushed();
    const other = createAck({ onFailed: (e) => log.push(`other failed: ${String(e)}`) });
    tracker.track('p', 2n, other).failed('boom');
    expect(log).to.deep.equal(['enqueued', 'flushed', 'other failed: boom']);
    expect(tracker.checkpoint('p')).to.equal(1n, 'a failed item holds the checkpoint below it');
  });

  it('rejects positions that go back or fall at or below a reported checkpoint', () => {
    const tracker = new ProgressTracker<string>();
    tracker.track('p', 5n);
    expect(() => tracker.track('p', 4n)).to.throw(RangeError, /position 4 on path p is below 5, the highest tracked or advanced to/);
    const done = new ProgressTracker<string>();
    done.track('q', 5n).flushed();
    expect(() => done.track('q', 5n)).to.throw(RangeError, /at or below its checkpoint 5/);
    // advance() promised nothing at or below 9 comes, items pending or not.
    tracker.advance('p', 9n);
    expect(() => tracker.track('p', 7n)).to.throw(RangeError, /position 7 on path p is below 9, the highest tracked or advanced to/);
    expect(tracker.checkpoint('p')).to.equal(4n);
  });

  it('the overall checkpoint is the least over paths; advance() frees an idle path', () => {
    const tracker = new ProgressTracker<string>();
    const overall: bigint[] = [];
    tracker.overall$.subscribe((p) => overall.push(p));
    tracker.track('a', 100n).flushed();
    const b = tracker.track('b', 200n);
    expect(tracker.overall).to.equal(100n);
    tracker.advance('a', 300n);
    expect(tracker.overall).to.equal(199n);
    b.flushed();
    expect(tracker.overall).to.equal(200n);
    tracker.remove('b');
    expect(tracker.overall).to.equal(300n);
    tracker.remove('a');
    expect(tracker.overall).to.equal(undefined, 'no path left');
    expect(overall).to.deep.equal([99n, 100n, 199n, 200n, 300n]);
  });

  describe('admit and durable (items durable in the order they came, no ack per item)', () => {
    it('property: gives the checkpoints of track with acks flushed oldest first, parking included', () => {
      const command = fc.oneof(
        fc.record({ kind: fc.constant('add' as const), path: fc.integer({ min: 0, max: 3 }), step: fc.integer({ min: 0, max: 2 }), times: fc.integer({ min: 1, max: 40 }) }),
        fc.record({ kind: fc.constant('durable' as const), path: fc.integer({ min: 0, max: 3 }), count: fc.integer({ min: 1, max: 40 }) }),
        fc.record({ kind: fc.constant('park' as const), path: fc.integer({ min: 0, max: 3 }) }),
      );
      fc.assert(
        fc.property(fc.array(command, { maxLength: 80 }), fc.boolean(), (commands, sharedPositions) => {
          const ordered = new ProgressTracker<number>({ sharedPositions });
          const acked = new ProgressTracker<number>({ sharedPositions });
          const acks = new Map<number, Ack[]>();
          const last = new Map<number, bigint>();
          for (const c of commands) {
            if (c.kind === 'add') {
              const checkpoint = acked.checkpoint(c.path);
              let position = (last.get(c.path) ?? 0n) + BigInt(c.step);
              if (checkpoint !== undefined && position <= checkpoint) position = checkpoint + 1n;
              last.set(c.path, position);
              for (let i = 0; i < c.times; i++) {
                ordered.admit(c.path, position);
                acks.set(c.path, [...(acks.get(c.path) ?? []), acked.track(c.path, position)]);
              }
            } else if (c.kind === 'durable') {
              const waiting = acks.get(c.path) ?? [];
              const count = Math.min(c.count, waiting.length);
              if (count === 0) {
                expect(() => ordered.durable(c.path)).to.throw(RangeError, `path ${c.path}: 1 reported durable, but 0 admitted items are waiting`);
                continue;
              }
              ordered.durable(c.path, count);
              for (const ack of waiting.splice(0, count)) ack.flushed();
            } else {
              expect(ordered.park(c.path)).to.equal(acked.park(c.path));
            }
            for (let path = 0; path < 4; path++) expect(ordered.checkpoint(path)).to.equal(acked.checkpoint(path));
            expect(ordered.overall).to.equal(acked.overall);
            expect(ordered.pathCounts).to.deep.equal(acked.pathCounts);
          }
        }),
        { numRuns: 300 },
      );
    });

    it('keeps thousands of items in flight on one path, and a path that emptied starts afresh', () => {
      const tracker = new ProgressTracker<string>();
      for (let position = 1n; position <= 5000n; position++) tracker.admit('p', position);
      expect(tracker.unflushed).to.equal(5000);
      tracker.durable('p', 4999);
      expect(tracker.checkpoint('p')).to.equal(4999n);
      tracker.durable('p');
      expect(tracker.checkpoint('p')).to.equal(5000n);
      tracker.admit('p', 5001n);
      tracker.admit('p', 5002n);
      tracker.durable('p');
      expect(tracker.checkpoint('p')).to.equal(5001n);
    });

    it('a path takes items one way at a time: admitted or tracked with acks, switching once it is empty', () => {
      const tracker = new ProgressTracker<string>();
      const ack = tracker.track('p', 1n);
      expect(() => tracker.admit('p', 2n)).to.throw(Error, 'path p has items tracked with acks in flight');
      expect(() => tracker.durable('p')).to.throw(RangeError, 'path p: 1 reported durable, but 0 admitted items are waiting');
      ack.flushed();
      tracker.admit('p', 2n);
      expect(() => tracker.track('p', 3n)).to.throw(Error, 'path p has items admitted in flight');
      tracker.durable('p');
      tracker.track('p', 3n).flushed();
      expect(tracker.checkpoint('p')).to.equal(3n);
      expect(() => tracker.durable('nowhere')).to.throw(RangeError, 'path nowhere: 1 reported durable');
    });

    it('refuses positions outside the signed 64-bit range, before anything is kept', () => {
      const tracker = new ProgressTracker<string>();
      expect(() => tracker.admit('p', 2n ** 63n)).to.throw(RangeError, 'outside the signed 64-bit range');
      expect(() => tracker.track('p', -(2n ** 63n) - 1n)).to.throw(RangeError, 'outside the signed 64-bit range');
      expect(tracker.checkpoint('p')).to.equal(undefined);
      tracker.admit('p', 2n ** 63n - 1n);
      tracker.durable('p');
      expect(tracker.checkpoint('p')).to.equal(2n ** 63n - 1n);
    });
  });

  it('property: flushes in any order over many items in flight (rings that grow and shrink) keep the checkpoint below the oldest unflushed', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3000 }), fc.array(fc.nat(), { minLength: 1, maxLength: 50 }), (count, picks) => {
        const tracker = new ProgressTracker<string>();
        const open = Array.from({ length: count }, (_, i) => ({ position: BigInt(i + 1), ack: tracker.track('p', BigInt(i + 1)) }));
        for (const pick of picks) {
          if (open.length === 0) break;
          // Flush a run of up to a tenth of what is open, from a random place.
          const start = pick % open.length;
          for (const { ack } of open.splice(start, 1 + (pick % Math.max(1, Math.floor(open.length / 10))))) ack.flushed();
          const oldest = open.reduce((least, item) => (item.position < least ? item.position : least), BigInt(count) + 1n);
          expect(tracker.checkpoint('p')).to.equal(oldest - 1n);
        }
        for (const { ack } of open.splice(0)) ack.flushed();
        expect(tracker.checkpoint('p')).to.equal(BigInt(count));
      }),
      { numRuns: 100 },
    );
  });

  it('property: a checkpoint never reaches an unflushed item and reaches the end once all are flushed (with and without shared positions)', () => {
    const command = fc.oneof(
      fc.record({ kind: fc.constant('track' as const), path: fc.integer({ min: 0, max: 3 }), step: fc.integer({ min: 0, max: 3 }) }),
      fc.record({ kind: fc.constant('flush' as const), pick: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(command, { maxLength: 120 }), fc.boolean(), (commands, sharedPositions) => {
        const tracker = new ProgressTracker<number>({ sharedPositions });
        // The same items on a tracker someone watches: checkpoints worked out at each change, not
        // when read; both must agree at every step.
        const watched = new ProgressTracker<number>({ sharedPositions });
        let watchedOverall: bigint | undefined;
        const watchedByPath = new Map<number, bigint>();
        watched.overall$.subscribe((position) => (watchedOverall = position));
        watched.changes$.subscribe(({ path, position }) => watchedByPath.set(path, position));
        const last = new Map<number, bigint>();
        const unflushed: Array<{ path: number; position: bigint; ack: Ack; watchedAck: Ack }> = [];
        const all: Array<{ path: number; ack: Ack }> = [];
        const check = () => {
          for (const item of unflushed) {
            const checkpoint = tracker.checkpoint(item.path);
            if (checkpoint !== undefined) expect(checkpoint < item.position).to.equal(true);
            if (tracker.overall !== undefined) expect(tracker.overall < item.position).to.equal(true);
          }
          expect(watchedOverall).to.equal(tracker.overall);
          for (const [path, position] of last) {
            expect(watchedByPath.get(path)).to.equal(tracker.checkpoint(path));
            // Shared: more items may come at the highest position, so it is never complete by itself.
            if (sharedPositions) expect(tracker.checkpoint(path)! < position).to.equal(true);
          }
        };
        for (const c of commands) {
          if (c.kind === 'track') {
            const previous = last.get(c.path) ?? 0n;
            const checkpoint = tracker.checkpoint(c.path);
            let position = previous + BigInt(c.step);
            if (checkpoint !== undefined && position <= checkpoint) position = checkpoint + 1n;
            last.set(c.path, position);
            const ack = tracker.track(c.path, position);
            unflushed.push({ path: c.path, position, ack, watchedAck: watched.track(c.path, position) });
            all.push({ path: c.path, ack });
          } else if (unflushed.length > 0) {
            const [item] = unflushed.splice(c.pick % unflushed.length, 1);
            item!.ack.flushed();
            item!.watchedAck.flushed();
          }
          check();
        }
        for (const item of unflushed.splice(0)) item.ack.flushed();
        for (const [path, position] of last) {
          expect(tracker.checkpoint(path)).to.equal(sharedPositions ? position - 1n : position);
          tracker.advance(path, position);
          expect(tracker.checkpoint(path)).to.equal(position);
        }
      }),
      { numRuns: 300 },
    );
  });
});
