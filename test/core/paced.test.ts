import { expect } from 'chai';
import { Subject, take, toArray, firstValueFrom, lastValueFrom, tap } from 'rxjs';
import type { Acked } from '../../lib/core/ack.ts';
import { InvalidOptionError } from '../../lib/core/errors.ts';
import { fromPaced, mergePaced, type PullFunction } from '../../lib/core/paced.ts';
import { tick } from '../support/waiting.ts';

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
  it('one busy path cannot starve the others', async () => {
    const busy = (function* () {
      for (;;) yield 'busy';
    })();
    const quiet = numbers(0, 10);
    const firstFifty = await firstValueFrom(
      mergePaced<string | number>([busy, quiet]).pipe(
        tap((i) => i.ack.enqueued()),
        take(50),
        toArray(),
      ),
    );
    const quietSeen = firstFifty.filter((i) => typeof i.value === 'number').map((i) => i.value);
    expect(quietSeen).to.deep.equal([...Array(10).keys()]);
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
