import { expect } from 'chai';
import fc from 'fast-check';
import { Subject, take, toArray, firstValueFrom, lastValueFrom, tap } from 'rxjs';
import type { Acked } from '../../lib/core/ack.ts';
import { InvalidOptionError } from '../../lib/core/errors.ts';
import { fromPaced, mergePaced, type PullFunction } from '../../lib/core/paced.ts';
import { tick } from '../support/waiting.ts';

async function* numbersOf<T>(values: readonly T[]) {
  for (const value of values) yield value;
}

async function* numbers(from: number, count: number, pulled?: number[]) {
  for (let i = from; i < from + count; i++) {
    pulled?.push(i);
    yield i;
  }
}

describe('fromPaced', () => {
  it('pulls the next item only after the previous one was enqueued (window 1)', async () => {
    const pulled: number[] = [];
    const emitted: Acked<number>[] = [];
    const done = new Subject<void>();
    fromPaced(numbers(0, 3, pulled)).subscribe({ next: (item) => emitted.push(item), complete: () => done.next() });
    await tick();
    expect(emitted.map((i) => i.value)).to.deep.equal([0]);
    expect(pulled).to.deep.equal([0]);
    emitted[0]!.ack.flushed(); // flushed implies enqueued
    await tick();
    expect(emitted.map((i) => i.value)).to.deep.equal([0, 1]);
    emitted[1]!.ack.enqueued();
    await tick();
    expect(pulled).to.deep.equal([0, 1, 2]);
  });

  it('keeps at most `window` items waiting for enqueued()', async () => {
    const emitted: Acked<number>[] = [];
    fromPaced(numbers(0, 100), { window: 4 }).subscribe((item) => emitted.push(item));
    await tick();
    expect(emitted).to.have.length(4);
    emitted[2]!.ack.enqueued();
    await tick();
    expect(emitted).to.have.length(5);
  });

  it('completes after the last item, and runs to the end when acks wake at once', async () => {
    const values = await lastValueFrom(
      fromPaced(numbers(0, 500)).pipe(
        tap((item) => item.ack.enqueued()),
        toArray(),
      ),
    );
    expect(values.map((i) => i.value)).to.deep.equal([...Array(500).keys()]);
  });

  it('accepts a pull function that answers synchronously or not', async () => {
    let n = 0;
    const pull: PullFunction<number> = () => (n < 3 ? (n % 2 ? Promise.resolve({ done: false, value: n++ }) : { done: false, value: n++ }) : { done: true, value: undefined });
    const values = await lastValueFrom(fromPaced(pull).pipe(tap((i) => i.ack.enqueued()), toArray()));
    expect(values.map((i) => i.value)).to.deep.equal([0, 1, 2]);
  });

  it('an iterable works too, and a source that fails errors the stream', async () => {
    const values = await lastValueFrom(fromPaced([7, 8]).pipe(tap((i) => i.ack.enqueued()), toArray()));
    expect(values.map((i) => i.value)).to.deep.equal([7, 8]);
    async function* broken() {
      yield 1;
      throw new Error('disk gone');
    }
    const failing = lastValueFrom(fromPaced(broken()).pipe(tap((i) => i.ack.enqueued())));
    let caught: unknown;
    await failing.catch((e: unknown) => (caught = e));
    expect(caught).to.be.instanceOf(Error).with.property('message', 'disk gone');
  });

  it('closes the iterator on unsubscribe', async () => {
    let closed = false;
    async function* endless() {
      try {
        for (let i = 0; ; i++) yield i;
      } finally {
        closed = true;
      }
    }
    await firstValueFrom(fromPaced(endless()).pipe(tap((i) => i.ack.enqueued()), take(3), toArray()));
    await tick();
    expect(closed).to.equal(true);
  });

  it('rejects a window below 1, naming it', () => {
    expect(() => fromPaced([1], { window: 0 })).to.throw(InvalidOptionError, /fromPaced: option window must be an integer >= 1, got 0/);
    expect(() => fromPaced([1], { window: Number.NaN })).to.throw(InvalidOptionError, /window/);
  });
});

describe('mergePaced', () => {
  it('one busy path cannot starve the others: it takes turns of at most `turn` items', async () => {
    const busy = (function* () {
      for (;;) yield 'busy';
    })();
    const quiet = numbers(0, 10);
    const firstHundred = await firstValueFrom(
      mergePaced<string | number>([busy, quiet], { turn: 4 }).pipe(
        tap((i) => i.ack.enqueued()),
        take(100),
        toArray(),
      ),
    );
    const values = firstHundred.map((i) => i.value);
    expect(values.filter((v) => typeof v === 'number')).to.deep.equal([...Array(10).keys()]);
    // The async path answers a couple of pull rounds later; meanwhile the busy one takes a turn a round.
    const busyRuns = values.join(' ').split(/\d+/).slice(0, 10).map((run) => run.trim().split(' ').filter(Boolean).length);
    expect(Math.max(...busyRuns)).to.be.at.most(3 * 4);
  });

  it('a path enqueued at once goes on for its turn, then the next ready path takes its own', async () => {
    const a = Array.from({ length: 40 }, (_, i) => `a${i + 1}`);
    const b = Array.from({ length: 40 }, (_, i) => `b${i + 1}`);
    const values = (await lastValueFrom(mergePaced<string>([a, b], { turn: 16 }).pipe(tap((i) => i.ack.enqueued()), toArray()))).map((i) => i.value);
    expect(values).to.deep.equal([...a.slice(0, 16), ...b.slice(0, 16), ...a.slice(16, 32), ...b.slice(16, 32), ...a.slice(32), ...b.slice(32)]);
  });

  it('a path woken later waits for its place, however short its turn so far', async () => {
    const emitted: Acked<string>[] = [];
    mergePaced<string>([['a1', 'a2'], ['b1', 'b2']], { turn: 16 }).subscribe((i) => emitted.push(i));
    await tick();
    expect(emitted.map((i) => i.value)).to.deep.equal(['a1', 'b1']);
    emitted[0]!.ack.enqueued();
    emitted[1]!.ack.enqueued();
    await tick();
    expect(emitted.map((i) => i.value)).to.deep.equal(['a1', 'b1', 'a2', 'b2']);
  });

  it('keeps each path in order and within its window, whatever the window, turn, burst and wakes (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ items: fc.integer({ min: 0, max: 12 }), async: fc.boolean() }), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 16 }),
        async (specs, window, turn, burst, wakeAtOnce) => {
          const sources = specs.map(({ items, async }, p) => {
            const values = Array.from({ length: items }, (_, i) => ({ path: p, i }));
            return async ? numbersOf(values) : values;
          });
          const waiting = specs.map(() => 0);
          const seen = specs.map(() => [] as number[]);
          const later: (() => void)[] = [];
          let n = 0;
          let done = false;
          await new Promise<void>((resolve, reject) => {
            mergePaced(sources, { window, turn, burst }).subscribe({
              next: (item) => {
                const { path, i } = item.value;
                seen[path]!.push(i);
                waiting[path]!++;
                if (waiting[path]! > window) reject(new Error(`path ${path} has ${waiting[path]} items waiting, window ${window}`));
                const wake = () => {
                  waiting[path]!--;
                  item.ack.enqueued();
                };
                if (wakeAtOnce[n++ % wakeAtOnce.length]) wake();
                else later.push(wake);
              },
              error: reject,
              complete: () => {
                done = true;
                resolve();
              },
            });
            // Late wakes, one batch per macrotask, until the stream is done.
            const release = () => {
              for (const wake of later.splice(0)) wake();
              if (!done) setImmediate(release);
            };
            setImmediate(release);
          });
          specs.forEach(({ items }, p) => expect(seen[p]).to.deep.equal([...Array(items).keys()], `path ${p}`));
        },
      ),
      { numRuns: 150 },
    );
  });

  it('a busy path yields to timers every burst', async () => {
    const busy = (function* () {
      for (;;) yield 1;
    })();
    let timerFired = false;
    setTimeout(() => (timerFired = true), 0);
    // Due before the first yield, so it must run at that yield (after the first burst of 100).
    for (const dueAt = Date.now() + 3; Date.now() < dueAt; );
    let seenWhenTimerFired = -1;
    let count = 0;
    await firstValueFrom(
      mergePaced([busy], { burst: 100 }).pipe(
        tap((i) => {
          count++;
          if (timerFired && seenWhenTimerFired < 0) seenWhenTimerFired = count;
          i.ack.enqueued();
        }),
        take(5000),
        toArray(),
      ),
    );
    expect(timerFired).to.equal(true);
    expect(seenWhenTimerFired).to.be.within(1, 200);
  });

  it('yields without idling: a hundred bursts do not wait a timer tick each', async () => {
    // asyncScheduler's zero-delay timer waits at least 1 ms per yield: 100 yields would take >= 100 ms.
    const started = performance.now();
    const items = await firstValueFrom(
      mergePaced([Array.from({ length: 1000 }, (_, i) => i)], { burst: 10 }).pipe(
        tap((i) => i.ack.enqueued()),
        toArray(),
      ),
    );
    expect(items).to.have.length(1000);
    expect(performance.now() - started).to.be.below(60);
  });

  it('each path keeps its own window', async () => {
    const emitted: Acked<string>[] = [];
    mergePaced<string>([['a1', 'a2'], ['b1', 'b2']]).subscribe((i) => emitted.push(i));
    await tick();
    expect(emitted.map((i) => i.value)).to.deep.equal(['a1', 'b1']);
    emitted[1]!.ack.enqueued();
    await tick();
    expect(emitted.map((i) => i.value)).to.deep.equal(['a1', 'b1', 'b2']);
  });
});
