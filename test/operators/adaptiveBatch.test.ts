import { expect } from 'chai';
import fc from 'fast-check';
import {
  catchError,
  map,
  Observable,
  of,
  range,
  Subject,
  take,
  throwError,
  timer,
  VirtualAction,
  VirtualTimeScheduler,
  type SchedulerLike,
} from 'rxjs';
import { createAck, type Acked } from '../../lib/core/ack.ts';
import { BufferOverflowError, InvalidOptionError } from '../../lib/core/errors.ts';
import {
  adaptiveBatch,
  AimdSizer,
  BatchWriteError,
  type AdaptiveBatchOptions,
  type AdaptiveBatchStats,
  type AimdSettings,
  type WrittenBatch,
} from '../../operators/adaptiveBatch.ts';
import { testScheduler } from '../support/marbles.ts';
import { recordingScheduler } from '../support/recording.ts';

/** A writer that takes `latencyMs` and answers the joined items. */
const joinAfter = (latencyMs: number) => (items: string[]) => timer(latencyMs).pipe(map(() => items.join('')));

const written = (items: string[], size: number, latencyMs = 2, attempts = 1): WrittenBatch<string, string> => ({
  items,
  result: items.join(''),
  latencyMs,
  attempts,
  size,
});

/** Fixed-size batches (min = max = initial) so marble tests are about cutting, not sizing. */
const fixed = (size: number) => ({ minSize: size, maxSize: size, initialSize: size });


/** Acked items whose ack stages are recorded as [frame, stage, name]. */
function ackRecorder(now: () => number) {
  const events: [number, string, string][] = [];
  const item = (name: string): Acked<string> => ({
    value: name,
    ack: createAck({
      onEnqueued: () => events.push([now(), 'enqueued', name]),
      onFlushed: () => events.push([now(), 'flushed', name]),
      onFailed: (error) => events.push([now(), `failed: ${(error as Error).message}`, name]),
    }),
  });
  return { events, item };
}

describe('adaptiveBatch', () => {
  describe('marbles', () => {
    it('never emits nothing and writes nothing', () => {
      const calls: string[][] = [];
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold<string>('-');
        const write = (items: string[]) => (calls.push(items), joinAfter(2)(items));
        expectObservable(source.pipe(adaptiveBatch({ write, ...fixed(2), maxDelayMs: 5 }))).toBe('-');
        expectSubscriptions(source.subscriptions).toBe('^');
      });
      expect(calls).to.deep.equal([]);
    });

    it('empty completes at once', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold<string>('|');
        expectObservable(source.pipe(adaptiveBatch({ write: joinAfter(2), ...fixed(2) }))).toBe('|');
        expectSubscriptions(source.subscriptions).toBe('(^!)');
      });
    });

    it('one item is written on complete, and the output completes after the write', () => {
      testScheduler().run(({ cold, expectObservable }) => {
        expectObservable(cold('a|').pipe(adaptiveBatch({ write: joinAfter(2), ...fixed(2) }))).toBe('---(x|)', {
          x: written(['a'], 2),
        });
      });
    });

    it('many items are cut at the batch size and written in order', () => {
      testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
        const source = hot('-a-b-c-d-|');
        const expected = '  -----x---(y|)';
        expectObservable(source.pipe(adaptiveBatch({ write: joinAfter(2), ...fixed(2) }))).toBe(expected, {
          x: written(['a', 'b'], 2),
          y: written(['c', 'd'], 2),
        });
        expectSubscriptions(source.subscriptions).toBe('^--------!');
      });
    });

    it('complete flushes the partial batch', () => {
      testScheduler().run(({ hot, expectObservable }) => {
        const source = hot('-a-b-c-|');
        const expected = '  -----x---(y|)';
        expectObservable(source.pipe(adaptiveBatch({ write: joinAfter(2), ...fixed(2) }))).toBe(expected, {
          x: written(['a', 'b'], 2),
          y: written(['c'], 2),
        });
      });
    });

    it('cuts a partial batch maxDelayMs after its oldest item, and writes nothing while idle', () => {
      const calls: number[] = [];
      const ts = testScheduler();
      ts.run(({ hot, expectObservable }) => {
        const source = hot('-a-b------c-------|');
        const expected = '  --------x--------y|';
        const write = (items: string[]) => (calls.push(ts.now()), joinAfter(2)(items));
        expectObservable(source.pipe(adaptiveBatch({ write, ...fixed(10), maxDelayMs: 5 }))).toBe(expected, {
          x: written(['a', 'b'], 10),
          y: written(['c'], 10),
        });
      });
      expect(calls).to.deep.equal([6, 15]);
    });

    it('writes an overdue item as soon as a write slot frees', () => {
      const calls: number[] = [];
      const ts = testScheduler();
      ts.run(({ hot, expectObservable }) => {
        // [a, b] is written 3..13; c is due at 8 but the only slot is busy until 13.
        const source = hot('-a-b-c----------------|');
        const expected = '  -------------x---------(y|)';
        const write = (items: string[]) => (calls.push(ts.now()), joinAfter(10)(items));
        expectObservable(source.pipe(adaptiveBatch({ write, ...fixed(2), maxDelayMs: 3 }))).toBe(expected, {
          x: written(['a', 'b'], 2, 10),
          y: written(['c'], 2, 10),
        });
      });
      expect(calls).to.deep.equal([3, 13]);
    });

    it('forwards a source error and writes nothing more', () => {
      const calls: string[][] = [];
      testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
        const source = hot('-a-b-#');
        const write = (items: string[]) => (calls.push(items), joinAfter(2)(items));
        expectObservable(source.pipe(adaptiveBatch({ write, ...fixed(5) }))).toBe('-----#');
        expectSubscriptions(source.subscriptions).toBe('^----!');
      });
      expect(calls).to.deep.equal([]);
    });

    it('a source error cancels the running write', () => {
      testScheduler().run(({ hot, cold, expectObservable, expectSubscriptions }) => {
        const source = hot('-a-b-#');
        const writeResult = cold('----------(r|)');
        expectObservable(source.pipe(adaptiveBatch({ write: () => writeResult, ...fixed(2) }))).toBe('-----#');
        expectSubscriptions(writeResult.subscriptions).toBe('---^-!');
      });
    });

    it('works on an infinite source with take', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold('-a-b-c-d-e-f-g-h-');
        const result = source.pipe(adaptiveBatch({ write: joinAfter(1), ...fixed(2) }), take(2));
        expectObservable(result).toBe('----x---(y|)', { x: written(['a', 'b'], 2, 1), y: written(['c', 'd'], 2, 1) });
        expectSubscriptions(source.subscriptions).toBe('^-------!');
      });
    });

    it('early unsubscribe cancels the running write and the cut timer', () => {
      const ts = testScheduler();
      const { scheduler, actions } = recordingScheduler(ts);
      ts.run(({ hot, cold, expectObservable, expectSubscriptions }) => {
        const source = hot('-a-b-c-d-e-|');
        const unsub = '     ------!';
        const writeResult = cold('----------(r|)');
        const result = source.pipe(adaptiveBatch({ write: () => writeResult, ...fixed(2), maxInFlight: 2, maxDelayMs: 4, scheduler }));
        expectObservable(result, unsub).toBe('-');
        expectSubscriptions(source.subscriptions).toBe('^-----!');
        expectSubscriptions(writeResult.subscriptions).toBe('---^--!');
      });
      // a's timer (1, due 5) was cancelled by the cut at 3; c's (5, due 9) by the unsubscribe at 6.
      expect(actions).to.deep.equal([
        { scheduledAt: 1, delay: 4 },
        { scheduledAt: 5, delay: 4 },
      ]);
    });

    it('early unsubscribe cancels a pending retry', () => {
      const ts = testScheduler();
      const { scheduler, actions } = recordingScheduler(ts);
      const calls: number[] = [];
      ts.run(({ hot, expectObservable }) => {
        const source = hot('-a-b-|');
        const write = () => (calls.push(ts.now()), throwError(() => new Error('down')));
        const result = source.pipe(adaptiveBatch({ write, ...fixed(2), minBackoffMs: 10, jitter: 0, scheduler }));
        expectObservable(result, '------!').toBe('-');
      });
      expect(calls).to.deep.equal([3]);
      // Neither a's cut timer (maxDelayMs 1000, cancelled by the cut at 3) nor the retry (due at 13) ran.
      expect(actions).to.deep.equal([
        { scheduledAt: 1, delay: 1000 },
        { scheduledAt: 3, delay: 10 },
      ]);
    });

    it('a write that throws synchronously is a failed attempt: past maxRetries the output errors', () => {
      testScheduler().run(({ hot, expectObservable }) => {
        const cause = new Error('boom');
        const write = () => {
          throw cause;
        };
        const result = hot('-a-b-|').pipe(adaptiveBatch({ write, ...fixed(2), maxRetries: 0 }));
        expectObservable(result).toBe('---#', undefined, new BatchWriteError(1, 2, cause));
      });
    });

    it('a write that throws synchronously is retried with the same items', () => {
      const calls: [number, string[], number][] = [];
      const ts = testScheduler();
      ts.run(({ hot, expectObservable }) => {
        const write = (items: string[], attempt: number) => {
          calls.push([ts.now(), items, attempt]);
          if (attempt === 1) throw new Error('boom');
          return joinAfter(2)(items);
        };
        const result = hot('-a-b-|').pipe(adaptiveBatch({ write, ...fixed(2), minBackoffMs: 4, jitter: 0 }));
        expectObservable(result).toBe('---------(x|)', { x: written(['a', 'b'], 2, 2, 2) });
      });
      expect(calls).to.deep.equal([
        [3, ['a', 'b'], 1],
        [7, ['a', 'b'], 2],
      ]);
    });

    it('a throwing onStats errors the output', () => {
      testScheduler().run(({ hot, expectObservable }) => {
        const onStats = (stats: Readonly<AdaptiveBatchStats>) => {
          if (stats.buffered === 2) throw new Error('stats sink down');
        };
        const result = hot('-a-b-c-|').pipe(adaptiveBatch({ write: joinAfter(2), ...fixed(3), onStats }));
        expectObservable(result).toBe('---#', undefined, new Error('stats sink down'));
      });
    });

    it('a random() outside [0, 1] errors the output when a retry is planned', () => {
      testScheduler().run(({ hot, expectObservable }) => {
        const write = () => throwError(() => new Error('down'));
        const result = hot('-a-|').pipe(adaptiveBatch({ write, ...fixed(1), random: () => 2 }));
        expectObservable(result).toBe(
          '-#',
          undefined,
          new RangeError('adaptiveBatch: random() returned 2; it must return numbers in [0, 1]'),
        );
      });
    });
  });

  describe('retries', () => {
    it('backs off exponentially with jitter from the injected random, on exact virtual frames', () => {
      const calls: [number, number][] = [];
      const randoms = [0, 1, 0.5, 0.75];
      const ts = testScheduler();
      ts.run(({ hot, cold, expectObservable }) => {
        const failing = cold('--#', undefined, new Error('503'));
        const succeeding = cold('--(r|)', { r: 'ok' });
        const write = (_items: string[], attempt: number) => (calls.push([ts.now(), attempt]), attempt < 5 ? failing : succeeding);
        const result = hot('-a-|').pipe(
          adaptiveBatch({ write, ...fixed(1), maxRetries: 4, minBackoffMs: 10, maxBackoffMs: 50, jitter: 0.5, random: () => randoms.shift()! }),
        );
        expectObservable(result).toBe('149ms (x|)', { x: { items: ['a'], result: 'ok', latencyMs: 2, attempts: 5, size: 1 } });
      });
      // backoff(attempt) = min(50, 10 * 2^(attempt-1)) * (1 + 0.5 * (2r - 1)), rounded:
      // 10 * 0.5 = 5, 20 * 1.5 = 30, 40 * 1 = 40, 50 * 1.25 = 62.5 -> 63; each failure 2 ms after its start.
      expect(calls).to.deep.equal([
        [1, 1],
        [8, 2],
        [40, 3],
        [82, 4],
        [147, 5],
      ]);
      expect(randoms).to.deep.equal([]);
    });

    it('past maxRetries errors naming attempts, batch size and last cause, and fails the members acks', () => {
      const ts = testScheduler();
      const { events, item } = ackRecorder(() => ts.now());
      let caught: unknown;
      ts.run(({ hot, expectObservable }) => {
        let attempts = 0;
        const write = () => throwError(() => new Error(`HTTP 503 #${++attempts}`));
        const source = hot('-a-b-|', { a: item('a'), b: item('b') });
        const result = source.pipe(
          adaptiveBatch({ write, ...fixed(2), maxRetries: 2, minBackoffMs: 10, jitter: 0 }),
          map((batch) => batch.items.length),
          catchError((error: unknown) => ((caught = error), of('E'))),
        );
        // attempts at 3, 13 (backoff 10) and 33 (backoff 20)
        expectObservable(result).toBe('33ms (E|)');
      });
      expect(caught).to.be.instanceOf(BatchWriteError);
      const error = caught as BatchWriteError;
      expect(error.message).to.equal('adaptiveBatch: write of a batch of 2 items failed after 3 attempts; last cause: HTTP 503 #3');
      expect((error.cause as Error).message).to.equal('HTTP 503 #3');
      expect(error.attempts).to.equal(3);
      expect(error.batchSize).to.equal(2);
      const failure = `failed: ${error.message}`;
      expect(events).to.deep.equal([
        [1, 'enqueued', 'a'],
        [3, 'enqueued', 'b'],
        [33, failure, 'a'],
        [33, failure, 'b'],
      ]);
    });

    it('reports writes, retries, failures and latency in stats', () => {
      const snapshots: AdaptiveBatchStats[] = [];
      testScheduler().run(({ hot, expectObservable }) => {
        let calls = 0;
        const write = (items: string[]) => (++calls === 2 ? throwError(() => new Error('flaky')) : joinAfter(3)(items));
        const result = hot('-a-b-c-d-|').pipe(
          adaptiveBatch({ write, ...fixed(2), minBackoffMs: 4, jitter: 0, onStats: (stats) => snapshots.push({ ...stats }) }),
        );
        // [a,b] 3..6; [c,d] fails at 7, retried at 11, written at 14.
        expectObservable(result).toBe('------x-------(y|)', {
          x: written(['a', 'b'], 2, 3),
          y: written(['c', 'd'], 2, 3, 2),
        });
      });
      expect(snapshots[snapshots.length - 1]).to.deep.equal({
        size: 2,
        writes: 2,
        retries: 1,
        failures: 1,
        lastLatencyMs: 3,
        buffered: 0,
        inFlight: 0,
      });
      expect(snapshots.map((s) => s.buffered)).to.include.members([1]);
      expect(Math.max(...snapshots.map((s) => s.inFlight))).to.equal(1);
    });
  });

  describe('order and concurrency', () => {
    it('emits in input order and flushes acks in input order with maxInFlight 3 and writes completing out of order', () => {
      const ts = testScheduler();
      const { events, item } = ackRecorder(() => ts.now());
      const starts: [number, string][] = [];
      ts.run(({ hot, expectObservable }) => {
        const latency: Record<string, number> = { a: 30, b: 10, c: 20 };
        const write = (items: Acked<string>[]) => {
          const name = items[0]!.value;
          starts.push([ts.now(), name]);
          return timer(latency[name]!).pipe(map(() => name));
        };
        const source = hot('-a-b-c-|', { a: item('a'), b: item('b'), c: item('c') });
        const result = source.pipe(
          adaptiveBatch({ write, ...fixed(1), maxInFlight: 3 }),
          map((batch) => `${batch.result}:${batch.latencyMs}`),
        );
        expectObservable(result).toBe('31ms (xyz|)', { x: 'a:30', y: 'b:10', z: 'c:20' });
      });
      expect(starts).to.deep.equal([
        [1, 'a'],
        [3, 'b'],
        [5, 'c'],
      ]);
      expect(events.filter(([, stage]) => stage === 'flushed')).to.deep.equal([
        [31, 'flushed', 'a'],
        [31, 'flushed', 'b'],
        [31, 'flushed', 'c'],
      ]);
    });

    it('a batch done but waiting for an earlier one still holds its slot', () => {
      const starts: [number, string][] = [];
      const ts = testScheduler();
      ts.run(({ hot, expectObservable }) => {
        const latency: Record<string, number> = { a: 30, b: 10, c: 20 };
        const write = (items: string[]) => {
          starts.push([ts.now(), items[0]!]);
          return timer(latency[items[0]!]!).pipe(map(() => items[0]!));
        };
        const result = hot('-a-b-c-|').pipe(adaptiveBatch({ write, ...fixed(1), maxInFlight: 2 }), map((batch) => batch.result));
        expectObservable(result).toBe('31ms (xy) 16ms (z|)', { x: 'a', y: 'b', z: 'c' });
      });
      expect(starts).to.deep.equal([
        [1, 'a'],
        [3, 'b'],
        [31, 'c'],
      ]);
    });
  });

  describe('acked items and maxBuffered', () => {
    it('flushes members only after a successful write', () => {
      const ts = testScheduler();
      const { events, item } = ackRecorder(() => ts.now());
      ts.run(({ hot, expectObservable }) => {
        const write = (items: Acked<string>[], attempt: number) =>
          attempt === 1 ? throwError(() => new Error('down')) : timer(2).pipe(map(() => items.length));
        const source = hot('-a-b-|', { a: item('a'), b: item('b') });
        const result = source.pipe(adaptiveBatch({ write, ...fixed(2), minBackoffMs: 5, jitter: 0 }), map((batch) => batch.result));
        // attempt 1 fails at 3, attempt 2 at 8, written at 10
        expectObservable(result).toBe('----------(x|)', { x: 2 });
      });
      expect(events).to.deep.equal([
        [1, 'enqueued', 'a'],
        [3, 'enqueued', 'b'],
        [10, 'flushed', 'a'],
        [10, 'flushed', 'b'],
      ]);
    });

    it('withholds enqueued() beyond maxBuffered and releases it in order as writes take items', () => {
      const ts = testScheduler();
      const { events, item } = ackRecorder(() => ts.now());
      ts.run(({ hot, expectObservable }) => {
        const values = Object.fromEntries('abcdef'.split('').map((name) => [name, item(name)]));
        const source = hot('-abcdef-|', values);
        const write = (items: Acked<string>[]) => timer(10).pipe(map(() => items.map((member) => member.value).join('')));
        const result = source.pipe(adaptiveBatch({ write, ...fixed(2), maxBuffered: 2 }), map((batch) => batch.result));
        expectObservable(result).toBe('12ms x 9ms y 9ms (z|)', { x: 'ab', y: 'cd', z: 'ef' });
      });
      expect(events).to.deep.equal([
        [1, 'enqueued', 'a'],
        [2, 'enqueued', 'b'],
        [3, 'enqueued', 'c'],
        [4, 'enqueued', 'd'],
        // e and f arrive at 5 and 6 with 2 items already waiting: their wakes are held until [c, d] is taken.
        [12, 'flushed', 'a'],
        [12, 'flushed', 'b'],
        [12, 'enqueued', 'e'],
        [12, 'enqueued', 'f'],
        [22, 'flushed', 'c'],
        [22, 'flushed', 'd'],
        [32, 'flushed', 'e'],
        [32, 'flushed', 'f'],
      ]);
    });

    it('fails with BufferOverflowError naming maxBuffered when plain values overflow it', () => {
      testScheduler().run(({ hot, expectObservable }) => {
        const result = hot('-abcde-|').pipe(adaptiveBatch({ write: joinAfter(10), ...fixed(2), maxBuffered: 2 }));
        expectObservable(result).toBe(
          '-----#',
          undefined,
          new BufferOverflowError(
            'adaptiveBatch',
            'maxBuffered',
            2,
            'the writer falls behind; pace the source with Acked items or raise maxBuffered',
          ),
        );
      });
    });
  });

  describe('AIMD through the operator', () => {
    /** Runs a sync source through adaptiveBatch on virtual time and returns the first `count` written batches. */
    function runWrites<R>(options: AdaptiveBatchOptions<number, R>, count: number, items = 20_000): WrittenBatch<number, R>[] {
      const out: WrittenBatch<number, R>[] = [];
      testScheduler().run(() => {
        range(0, items)
          .pipe(adaptiveBatch({ maxBuffered: items, maxDelayMs: Infinity, ...options }), take(count))
          .subscribe((batch) => out.push(batch));
      });
      return out;
    }

    it('grows ×1.2 per window while writes are fast', () => {
      const out = runWrites({ write: () => timer(1), initialSize: 10, maxSize: 1000, adjustEvery: 1, targetLatencyMs: 100 }, 7);
      expect(out.map((batch) => batch.size)).to.deep.equal([10, 12, 15, 18, 22, 27, 33]);
      expect(out.map((batch) => batch.items.length)).to.deep.equal([10, 12, 15, 18, 22, 27, 33]);
      expect(out.flatMap((batch) => batch.items)).to.deep.equal([...Array(137).keys()]);
    });

    it('evaluates every adjustEvery writes', () => {
      const out = runWrites({ write: () => timer(1), initialSize: 10, maxSize: 1000, adjustEvery: 3, targetLatencyMs: 100 }, 7);
      expect(out.map((batch) => batch.size)).to.deep.equal([10, 10, 10, 12, 12, 12, 15]);
    });

    it('shrinks ×0.7 per slow window, never below minSize', () => {
      const slow = { write: () => timer(200), initialSize: 100, minSize: 10, maxSize: 1000, adjustEvery: 1, targetLatencyMs: 100 };
      const out = runWrites(slow, 9);
      expect(out.map((batch) => batch.size)).to.deep.equal([100, 70, 49, 34, 23, 16, 11, 10, 10]);
    });

    it('grows up to maxSize and stays there', () => {
      const out = runWrites({ write: () => timer(1), initialSize: 900, maxSize: 1000, adjustEvery: 1, targetLatencyMs: 100 }, 3);
      expect(out.map((batch) => batch.size)).to.deep.equal([900, 1000, 1000]);
    });

    it('shrinks ×0.7 at once on a failed write, and again when the failed window closes', () => {
      let calls = 0;
      const write = () => (++calls === 1 ? throwError(() => new Error('down')) : timer(1));
      const out = runWrites(
        { write, initialSize: 100, maxSize: 1000, adjustEvery: 2, targetLatencyMs: 100, minBackoffMs: 1, jitter: 0 },
        5,
      );
      // The retry of the first batch (cut at 100) does not count for the window of size 70.
      expect(out.map((batch) => [batch.size, batch.attempts])).to.deep.equal([
        [100, 2],
        [70, 1],
        [49, 1],
        [49, 1],
        [59, 1],
      ]);
    });

    it('converges to the largest size that meets the target latency and stays there', () => {
      const windows = 35;
      const adjustEvery = 5;
      const scheduler = new VirtualTimeScheduler(VirtualAction, Infinity);
      const out: WrittenBatch<number, unknown>[] = [];
      range(0, 200_000)
        .pipe(
          adaptiveBatch({
            write: (items) => timer(5 + 0.1 * items.length, scheduler),
            initialSize: 300,
            minSize: 10,
            maxSize: 5000,
            adjustEvery,
            targetLatencyMs: 95,
            maxDelayMs: Infinity,
            maxBuffered: 200_000,
            scheduler,
          }),
          take(windows * adjustEvery),
        )
        .subscribe((batch) => out.push(batch));
      scheduler.flush();
      expect(out).to.have.length(windows * adjustEvery);
      const sizes = Array.from({ length: windows }, (_, w) => out[w * adjustEvery]!.size);
      // Every write of a window has the window's size.
      out.forEach((batch, i) => expect(batch.size).to.equal(sizes[Math.floor(i / adjustEvery)]));
      const inRange = (size: number) => size >= 855 && size <= 900;
      // The first window from which every window stays in range.
      let firstIn = windows;
      while (firstIn > 0 && inRange(sizes[firstIn - 1]!)) firstIn--;
      expect(firstIn, `sizes per window: ${sizes.join(',')}`).to.be.within(0, 19);
      for (let w = firstIn; w < windows; w++) expect(sizes[w], `window ${w}`).to.be.within(855, 900);
      for (const batch of out.slice(firstIn * adjustEvery)) expect(batch.latencyMs).to.be.at.most(95);
      expect(windows - firstIn).to.be.at.least(15);
    });
  });

  describe('AimdSizer', () => {
    const settings = (overrides: Partial<AimdSettings> = {}): AimdSettings => ({
      minSize: 10,
      maxSize: 5000,
      initialSize: 100,
      targetLatencyMs: 100,
      adjustEvery: 1,
      growFactor: 1.2,
      shrinkFactor: 0.7,
      probeAfterWindows: 30,
      ...overrides,
    });

    /** Feeds `windows` windows of writes whose latency is `latencyOf(size)`; returns the size of each window. */
    function drive(sizer: AimdSizer, windows: number, latencyOf: (size: number, window: number) => number, adjustEvery = 1): number[] {
      const sizes: number[] = [];
      for (let w = 0; w < windows; w++) {
        const size = sizer.size;
        sizes.push(size);
        for (let i = 0; i < adjustEvery; i++) sizer.recordSuccess(latencyOf(size, w), size);
      }
      return sizes;
    }

    it('records a ceiling on a miss, recovers straight to good, bisects below the ceiling and settles', () => {
      const sizer = new AimdSizer(settings({ initialSize: 600 }));
      const sizes = drive(sizer, 14, (size) => (size <= 930 ? 50 : 150));
      expect(sizes).to.deep.equal([600, 720, 864, 1037, 725, 870, 953, 667, 870, 911, 911, 911, 911, 911]);
    });

    it('probes above a settled size after probeAfterWindows good windows and finds a faster writer', () => {
      const sizer = new AimdSizer(settings({ initialSize: 600, probeAfterWindows: 3 }));
      // Up to window 12 sizes <= 930 meet the target; from then on sizes <= 1500 do.
      const sizes = drive(sizer, 17, (size, w) => (size <= (w < 12 ? 930 : 1500) ? 50 : 150));
      expect(sizes).to.deep.equal([600, 720, 864, 1037, 725, 870, 953, 667, 870, 911, 911, 911, 1094, 1313, 1576, 1103, 1324]);
    });

    it('forgets good when a size below it misses (the writer became slower)', () => {
      const sizer = new AimdSizer(settings({ initialSize: 500 }));
      const sizes = drive(sizer, 8, (size, w) => (size <= (w < 2 ? 1000 : 300) ? 50 : 150));
      // 500, 600 good; then only <= 300 is: 720 misses (ceiling 720, good 600 forgotten) -> 504 misses -> 352 misses
      // -> 246 good -> 296 good -> bisect toward the ceiling 352.
      expect(sizes).to.deep.equal([500, 600, 720, 504, 352, 246, 296, 324]);
    });

    it('shrinks at once on a failure and again when the failed window closes', () => {
      const sizer = new AimdSizer(settings({ initialSize: 1000, adjustEvery: 3 }));
      sizer.recordSuccess(10, 1000);
      expect(sizer.size).to.equal(1000);
      sizer.recordFailure();
      expect(sizer.size).to.equal(700);
      sizer.recordSuccess(10, 700);
      expect(sizer.size).to.equal(490);
    });

    it('ignores successes of batches cut at another size', () => {
      const sizer = new AimdSizer(settings({ initialSize: 100, adjustEvery: 2 }));
      sizer.recordSuccess(10, 100);
      sizer.recordSuccess(10, 83);
      expect(sizer.size).to.equal(100);
      sizer.recordSuccess(10, 100);
      expect(sizer.size).to.equal(120);
    });

    it('stays within [minSize, maxSize] under any sequence of outcomes', () => {
      fc.assert(
        fc.property(
          fc.record({
            minSize: fc.integer({ min: 1, max: 50 }),
            span: fc.integer({ min: 0, max: 500 }),
            adjustEvery: fc.integer({ min: 1, max: 4 }),
          }),
          fc.array(fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 300 })), { maxLength: 200 }),
          ({ minSize, span, adjustEvery }, outcomes) => {
            const maxSize = minSize + span;
            const sizer = new AimdSizer(settings({ minSize, maxSize, initialSize: minSize, adjustEvery, probeAfterWindows: 3 }));
            for (const latency of outcomes) {
              if (latency < 0) sizer.recordFailure();
              else sizer.recordSuccess(latency, sizer.size);
              expect(sizer.size).to.be.within(minSize, maxSize);
              expect(Number.isInteger(sizer.size)).to.equal(true);
            }
          },
        ),
        { numRuns: 200 },
      );
    });
  });

  describe('properties', () => {
    it('writes every item once, emits and flushes in input order, wakes within maxBuffered, whatever the timing and failures', () => {
      const arrival = fc.integer({ min: 0, max: 5 });
      const attemptOutcome = fc.record({ latency: fc.integer({ min: 0, max: 20 }), fails: fc.boolean() });
      fc.assert(
        fc.property(
          fc.array(arrival, { maxLength: 60 }),
          fc.array(attemptOutcome, { minLength: 1, maxLength: 40 }),
          fc.record({
            maxInFlight: fc.integer({ min: 1, max: 4 }),
            minSize: fc.integer({ min: 1, max: 3 }),
            extra: fc.integer({ min: 0, max: 6 }),
            bufferedExtra: fc.integer({ min: 0, max: 5 }),
            adjustEvery: fc.integer({ min: 1, max: 3 }),
            maxDelayMs: fc.oneof(fc.integer({ min: 0, max: 15 }), fc.constant(Infinity)),
          }),
          (gaps, outcomes, options) => {
            const scheduler = new VirtualTimeScheduler(VirtualAction, Infinity);
            const maxSize = options.minSize + options.extra;
            const maxBuffered = maxSize + options.bufferedExtra;
            const log: string[] = [];
            let taken = 0;
            let woken = 0;
            let flushedCount = 0;
            const items: Acked<number>[] = gaps.map((_, id) => ({
              value: id,
              ack: createAck({
                onEnqueued: () => {
                  // Wakes come in input order and only for items within maxBuffered of the write front.
                  expect(id).to.equal(woken++);
                  expect(id - taken).to.be.below(maxBuffered);
                },
                onFlushed: () => {
                  expect(id).to.equal(flushedCount++);
                },
                onFailed: () => log.push(`failed ${id}`),
              }),
            }));
            const source = new Subject<Acked<number>>();
            let at = 0;
            items.forEach((item, id) => {
              at += gaps[id]!;
              scheduler.schedule(() => source.next(item), at);
            });
            scheduler.schedule(() => source.complete(), at + 1);
            let call = 0;
            const firstAttempts: number[][] = [];
            const write = (batch: Acked<number>[], attempt: number) => {
              if (attempt === 1) {
                taken += batch.length;
                firstAttempts.push(batch.map((item) => item.value));
              }
              const outcome = outcomes[call++ % outcomes.length]!;
              // Fail at most twice per batch so the retries always end.
              return timer(outcome.latency, scheduler).pipe(
                map(() => {
                  if (outcome.fails && attempt < 3) throw new Error('flaky');
                  return batch.length;
                }),
              );
            };
            const out: WrittenBatch<Acked<number>, number>[] = [];
            let completed = false;
            source
              .pipe(
                adaptiveBatch({
                  write,
                  minSize: options.minSize,
                  maxSize,
                  initialSize: maxSize,
                  maxInFlight: options.maxInFlight,
                  maxBuffered,
                  adjustEvery: options.adjustEvery,
                  maxDelayMs: options.maxDelayMs,
                  targetLatencyMs: 10,
                  minBackoffMs: 1,
                  maxBackoffMs: 4,
                  maxRetries: 2,
                  scheduler,
                }),
              )
              .subscribe({
                next: (batch) => out.push(batch),
                error: (error) => log.push(String(error)),
                complete: () => (completed = true),
              });
            scheduler.flush();

            expect(log).to.deep.equal([]);
            expect(completed).to.equal(true);
            const ids = items.map((item) => item.value);
            expect(out.flatMap((batch) => batch.items.map((item) => item.value))).to.deep.equal(ids);
            expect(out.map((batch) => batch.items.map((item) => item.value))).to.deep.equal(firstAttempts);
            expect(woken).to.equal(items.length);
            expect(flushedCount).to.equal(items.length);
            for (const batch of out) {
              expect(batch.items.length).to.be.within(1, batch.size);
              expect(batch.size).to.be.within(options.minSize, maxSize);
              expect(batch.result).to.equal(batch.items.length);
            }
          },
        ),
        { numRuns: 200 },
      );
    });
  });

  describe('paced sources', () => {
    /**
     * A paced path that answers synchronously: it keeps at most `window` items un-woken and sends the
     * next one from inside the wake, so the operator is re-entered while it releases wakes.
     */
    function syncPaced(count: number, window: number, onWake: (value: number) => void): Observable<Acked<number>> {
      return new Observable<Acked<number>>((subscriber) => {
        let nextValue = 0;
        let unwoken = 0;
        const send = () => {
          while (unwoken < window && nextValue < count && !subscriber.closed) {
            const value = nextValue++;
            unwoken++;
            subscriber.next({
              value,
              ack: createAck({
                onEnqueued: () => {
                  onWake(value);
                  unwoken--;
                  send();
                },
              }),
            });
          }
          if (nextValue === count) subscriber.complete();
        };
        send();
      });
    }

    it('wakes in input order and within maxBuffered when wakes re-enter it synchronously', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 40 }),
          fc.record({
            window: fc.integer({ min: 1, max: 6 }),
            size: fc.integer({ min: 1, max: 4 }),
            bufferedExtra: fc.integer({ min: 0, max: 3 }),
            maxInFlight: fc.integer({ min: 1, max: 3 }),
          }),
          fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 1, maxLength: 20 }),
          (count, options, latencies) => {
            const scheduler = new VirtualTimeScheduler(VirtualAction, Infinity);
            const maxBuffered = options.size + options.bufferedExtra;
            const wakes: number[] = [];
            let taken = 0;
            let call = 0;
            const source = syncPaced(count, options.window, (value) => {
              wakes.push(value);
              expect(value - taken, `wake of ${value}`).to.be.below(maxBuffered);
            });
            const out: number[][] = [];
            let failure: unknown;
            let completed = false;
            source
              .pipe(
                adaptiveBatch({
                  write: (items: Acked<number>[]) => {
                    taken += items.length;
                    return timer(latencies[call++ % latencies.length]!, scheduler);
                  },
                  ...fixed(options.size),
                  maxInFlight: options.maxInFlight,
                  maxBuffered,
                  maxDelayMs: 5,
                  scheduler,
                }),
              )
              .subscribe({
                next: (batch) => out.push(batch.items.map((item) => item.value)),
                error: (error) => (failure = error),
                complete: () => (completed = true),
              });
            scheduler.flush();
            expect(failure).to.equal(undefined);
            expect(completed).to.equal(true);
            const ids = [...Array(count).keys()];
            expect(wakes).to.deep.equal(ids);
            expect(out.flat()).to.deep.equal(ids);
          },
        ),
        { numRuns: 200 },
      );
    });

    it('cuts when its timer fires even if the clock reads a hair before the deadline', () => {
      // Real timers may fire slightly before the clock reaches the deadline; that must not re-arm forever.
      const inner = new VirtualTimeScheduler(VirtualAction, Infinity);
      let scheduled = 0;
      const early: SchedulerLike = {
        now: () => inner.now(),
        schedule(work: any, delay?: number, state?: any) {
          if (++scheduled > 50) throw new Error('timer re-armed in a loop');
          return inner.schedule(work, Math.max(0, (delay ?? 0) - 1), state);
        },
      };
      const source = new Subject<string>();
      const out: string[][] = [];
      let failure: unknown;
      source
        .pipe(adaptiveBatch({ write: (items) => of(items.length), ...fixed(10), maxDelayMs: 5, scheduler: early }))
        .subscribe({ next: (batch) => out.push(batch.items), error: (error) => (failure = error) });
      inner.schedule(() => source.next('a'), 1);
      inner.flush();
      expect(failure).to.equal(undefined);
      expect(out).to.deep.equal([['a']]);
      expect(inner.now()).to.equal(5);
    });
  });

  describe('options', () => {
    const write = () => timer(1);
    const invalid: [string, Partial<AdaptiveBatchOptions<unknown, unknown>>, string][] = [
      ['write', { write: undefined }, 'adaptiveBatch: option write must be a function, got undefined'],
      ['minSize', { minSize: 0 }, 'adaptiveBatch: option minSize must be an integer >= 1, got 0'],
      ['minSize', { minSize: NaN }, 'adaptiveBatch: option minSize must be an integer >= 1, got NaN'],
      ['maxSize', { minSize: 10, maxSize: 5 }, 'adaptiveBatch: option maxSize must be an integer >= 10, got 5'],
      ['initialSize', { minSize: 10, maxSize: 20, initialSize: 25 }, 'adaptiveBatch: option initialSize must be an integer in [10, 20], got 25'],
      ['initialSize', { initialSize: 2.5 }, 'adaptiveBatch: option initialSize must be an integer in [1, 10000], got 2.5'],
      ['maxDelayMs', { maxDelayMs: -1 }, 'adaptiveBatch: option maxDelayMs must be a number >= 0 (or Infinity), got -1'],
      ['targetLatencyMs', { targetLatencyMs: 0 }, 'adaptiveBatch: option targetLatencyMs must be a finite number > 0, got 0'],
      ['targetLatencyMs', { targetLatencyMs: NaN }, 'adaptiveBatch: option targetLatencyMs must be a finite number > 0, got NaN'],
      ['adjustEvery', { adjustEvery: 0 }, 'adaptiveBatch: option adjustEvery must be an integer >= 1, got 0'],
      ['growFactor', { growFactor: 1 }, 'adaptiveBatch: option growFactor must be a finite number > 1, got 1'],
      ['shrinkFactor', { shrinkFactor: 1 }, 'adaptiveBatch: option shrinkFactor must be a number in (0, 1), got 1'],
      ['shrinkFactor', { shrinkFactor: 0 }, 'adaptiveBatch: option shrinkFactor must be a number in (0, 1), got 0'],
      ['probeAfterWindows', { probeAfterWindows: 0 }, 'adaptiveBatch: option probeAfterWindows must be an integer >= 1 (or Infinity), got 0'],
      ['maxRetries', { maxRetries: -1 }, 'adaptiveBatch: option maxRetries must be an integer >= 0 (or Infinity), got -1'],
      ['minBackoffMs', { minBackoffMs: -5 }, 'adaptiveBatch: option minBackoffMs must be a number >= 0, got -5'],
      ['maxBackoffMs', { minBackoffMs: 500, maxBackoffMs: 100 }, 'adaptiveBatch: option maxBackoffMs must be a number >= 500, got 100'],
      ['jitter', { jitter: 1.5 }, 'adaptiveBatch: option jitter must be a number in [0, 1], got 1.5'],
      ['random', { random: 0.5 as never }, 'adaptiveBatch: option random must be a function, got 0.5'],
      ['maxInFlight', { maxInFlight: 0 }, 'adaptiveBatch: option maxInFlight must be an integer >= 1, got 0'],
      ['maxInFlight', { maxInFlight: 1.5 }, 'adaptiveBatch: option maxInFlight must be an integer >= 1, got 1.5'],
      ['maxBuffered', { maxSize: 100, maxBuffered: 99 }, 'adaptiveBatch: option maxBuffered must be an integer >= 100, got 99'],
      ['onStats', { onStats: 'log' as never }, 'adaptiveBatch: option onStats must be a function, got "log"'],
    ];
    for (const [option, options, message] of invalid) {
      it(`rejects ${option} ${message.slice(message.indexOf('got') + 4)} at creation`, () => {
        let thrown: unknown;
        try {
          adaptiveBatch({ write, ...options } as AdaptiveBatchOptions<unknown, unknown>);
        } catch (error) {
          thrown = error;
        }
        expect(thrown).to.be.instanceOf(InvalidOptionError);
        expect((thrown as InvalidOptionError).option).to.equal(option);
        expect((thrown as Error).message).to.equal(message);
      });
    }

    it('defaults: initial 1000 clamped into [minSize, maxSize]', () => {
      const sizes: number[] = [];
      const sizeOf = (options: Partial<AdaptiveBatchOptions<number, unknown>>) => {
        const subject = new Subject<number>();
        const subscription = subject.pipe(adaptiveBatch({ write, onStats: (stats) => sizes.push(stats.size), ...options })).subscribe();
        subject.next(1);
        subscription.unsubscribe();
        return sizes.pop();
      };
      expect(sizeOf({})).to.equal(1000);
      expect(sizeOf({ maxSize: 500 })).to.equal(500);
      expect(sizeOf({ minSize: 2000 })).to.equal(2000);
    });
  });
});
