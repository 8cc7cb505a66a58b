import { expect } from 'chai';
import fc from 'fast-check';
import {
  concat,
  concatMap,
  defer,
  finalize,
  from,
  NEVER,
  type Observable,
  of,
  range,
  lastValueFrom,
  Subject,
  take,
  toArray,
} from 'rxjs';
import { BufferOverflowError, InvalidOptionError } from '../../lib/core/errors.ts';
import { orderedMergeMap } from '../../operators/orderedMergeMap.ts';
import { testScheduler } from '../support/marbles.ts';

/** A generator of 0, 1, 2, ... (stopping at a million, so a failing test ends) that counts its pulls. */
function counting() {
  let pulled = 0;
  let closed = false;
  function* values() {
    try {
      while (pulled < 1_000_000) yield pulled++;
    } finally {
      closed = true;
    }
  }
  return { values, pulled: () => pulled, closed: () => closed };
}

describe('orderedMergeMap', () => {
  describe('marbles', () => {
    it('never: emits nothing and stays subscribed', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold('-');
        const result = source.pipe(orderedMergeMap({ project: (x: string) => of(x), concurrency: 2 }));
        expectObservable(result).toBe('-');
        expectSubscriptions(source.subscriptions).toBe('^');
      });
    });

    it('empty: completes at once', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold('|');
        const result = source.pipe(orderedMergeMap({ project: (x: string) => of(x), concurrency: 2 }));
        expectObservable(result).toBe('|');
        expectSubscriptions(source.subscriptions).toBe('(^!)');
      });
    });

    it('one: emits the inner values, completes when the inner completes after the source', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold('-a|');
        const inner = cold('--x|');
        const result = source.pipe(orderedMergeMap({ project: () => inner, concurrency: 2 }));
        expectObservable(result).toBe('---x|');
        expectSubscriptions(source.subscriptions).toBe('^-!');
        expectSubscriptions(inner.subscriptions).toBe('-^--!');
      });
    });

    it('many: runs inners in parallel and emits in input order, holding early values', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold('-a-b-c-|');
        const inners = {
          a: cold('------1|'),
          b: cold('-2|'),
          c: cold('---(3|)'),
        };
        const result = source.pipe(orderedMergeMap({ project: (x: string) => inners[x as keyof typeof inners], concurrency: 2 }));
        // b finishes at 5, but its value waits for a (done at 8); c starts at 5 as b no longer runs.
        expectObservable(result).toBe('-------1(23|)');
        expectSubscriptions(inners.a.subscriptions).toBe('-^------!');
        expectSubscriptions(inners.b.subscriptions).toBe('---^-!');
        expectSubscriptions(inners.c.subscriptions).toBe('-----^--!');
      });
    });

    it('subscribes at most `concurrency` inners; an input waits until one completes', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold('abc|');
        const inners = {
          a: cold('----1|'),
          b: cold('-2|'),
          c: cold('-3|'),
        };
        const result = source.pipe(orderedMergeMap({ project: (x: string) => inners[x as keyof typeof inners], concurrency: 2 }));
        expectObservable(result).toBe('----1(23|)');
        expectSubscriptions(inners.a.subscriptions).toBe('^----!');
        expectSubscriptions(inners.b.subscriptions).toBe('-^-!');
        // c starts when b completes (frame 3), not when it arrives (frame 2).
        expectSubscriptions(inners.c.subscriptions).toBe('---^-!');
      });
    });

    it('concurrency 1 behaves as concatMap', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold('ab|');
        const a = cold('--1|');
        const b = cold('(2|)');
        const result = source.pipe(orderedMergeMap({ project: (x: string) => (x === 'a' ? a : b), concurrency: 1 }));
        expectObservable(result).toBe('--1(2|)');
        expectSubscriptions(a.subscriptions).toBe('^--!');
        expectSubscriptions(b.subscriptions).toBe('---(^!)');
      });
    });

    it('source error: errors at once and unsubscribes running inners', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold('-a-#');
        const inner = cold('-----x|');
        const result = source.pipe(orderedMergeMap({ project: () => inner, concurrency: 2 }));
        expectObservable(result).toBe('---#');
        expectSubscriptions(inner.subscriptions).toBe('-^-!');
      });
    });

    it('inner error: errors at once, drops held values and unsubscribes the other inners', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold('ab');
        const a = cold('------1|');
        const b = cold('-2-#');
        const result = source.pipe(orderedMergeMap({ project: (x: string) => (x === 'a' ? a : b), concurrency: 2 }));
        expectObservable(result).toBe('----#');
        expectSubscriptions(source.subscriptions).toBe('^---!');
        expectSubscriptions(a.subscriptions).toBe('^---!');
        expectSubscriptions(b.subscriptions).toBe('-^--!');
      });
    });

    it('infinite source + take: completes after n values and unsubscribes source and inners', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold('-a-b-c-d-e-f-g-h-');
        const inner = cold('--x|');
        const result = source.pipe(
          orderedMergeMap({ project: () => inner, concurrency: 3 }),
          take(2),
        );
        expectObservable(result).toBe('---x-(x|)');
        expectSubscriptions(source.subscriptions).toBe('^----!');
        // The third input arrives at 5 just before the second value completes take.
        expectSubscriptions(inner.subscriptions).toBe(['-^--!', '---^-!', '-----(^!)']);
      });
    });

    it('early unsubscribe: unsubscribes the source and every running inner; waiting inputs never start', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold('-a-b-c-d|');
        const inners = {
          a: cold('----1|'),
          b: cold('-------2|'),
          c: cold('-3|'),
          d: cold('-4|'),
        };
        let projected = '';
        const result = source.pipe(
          orderedMergeMap({
            project: (x: string) => {
              projected += x;
              return inners[x as keyof typeof inners];
            },
            concurrency: 2,
          }),
        );
        expectObservable(result, '--------!').toBe('-----1--');
        expectSubscriptions(source.subscriptions).toBe('^-------!');
        expectSubscriptions(inners.a.subscriptions).toBe('-^----!');
        expectSubscriptions(inners.b.subscriptions).toBe('---^----!');
        // c starts when a completes (frame 6); d arrives at 7 and waits behind b and c.
        expectSubscriptions(inners.c.subscriptions).toBe('------^-!');
        expectSubscriptions(inners.d.subscriptions).toBe([]);
      });
    });

    it('a throwing project errors with its error and unsubscribes the rest', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold('-a-b-c|');
        const inner = cold('------x|');
        const boom = new Error('cannot encode b');
        const result = source.pipe(
          orderedMergeMap({
            project: (x: string) => {
              if (x === 'b') throw boom;
              return inner;
            },
            concurrency: 2,
          }),
        );
        expectObservable(result).toBe('---#', undefined, boom);
        expectSubscriptions(source.subscriptions).toBe('^--!');
        expectSubscriptions(inner.subscriptions).toBe('-^-!');
      });
    });

    it('passes the input index to project', () => {
      testScheduler().run(({ cold, expectObservable }) => {
        const source = cold('-a-b-c|');
        const result = source.pipe(orderedMergeMap({ project: (x: string, i: number) => of(`${x}${i}`), concurrency: 2 }));
        expectObservable(result).toBe('-a-b-c|', { a: 'a0', b: 'b1', c: 'c2' });
      });
    });
  });

  describe('synchronous inners (fast path)', () => {
    it('gives concatMap output for arrays and of()', () => {
      const viaArrays: number[] = [];
      const viaOf: number[] = [];
      const expected: number[] = [];
      range(0, 1000)
        .pipe(orderedMergeMap({ project: (x: number) => [x * 2, x * 2 + 1], concurrency: 8 }))
        .subscribe((v) => viaArrays.push(v));
      range(0, 1000)
        .pipe(orderedMergeMap({ project: (x: number) => of(x * 2, x * 2 + 1), concurrency: 8 }))
        .subscribe((v) => viaOf.push(v));
      range(0, 1000)
        .pipe(concatMap((x) => [x * 2, x * 2 + 1]))
        .subscribe((v) => expected.push(v));
      expect(viaArrays).to.deep.equal(expected);
      expect(viaOf).to.deep.equal(expected);
    });

    it('keeps input order when downstream feeds the source re-entrantly', () => {
      const source = new Subject<number>();
      const out: number[] = [];
      source.pipe(orderedMergeMap({ project: (x: number) => [x, x + 0.5], concurrency: 2 })).subscribe((v) => {
        out.push(v);
        // Each whole value re-enters the source with the next input while its inner is still emitting.
        if (Number.isInteger(v) && v < 3) source.next(v + 1);
      });
      source.next(0);
      expect(out).to.deep.equal([0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5]);
    });

    it('stops a synchronous (practically infinite) inner when downstream has taken enough', () => {
      const generator = counting();
      const out: number[] = [];
      of('a')
        .pipe(orderedMergeMap({ project: () => generator.values(), concurrency: 2 }), take(3))
        .subscribe((v) => out.push(v));
      expect(out).to.deep.equal([0, 1, 2]);
      expect(generator.pulled()).to.equal(3);
      expect(generator.closed()).to.equal(true);
    });

    it('stops a synchronous (practically infinite) source when downstream has taken enough', () => {
      const generator = counting();
      const out: number[] = [];
      from(generator.values())
        .pipe(orderedMergeMap({ project: (x: number) => [x], concurrency: 2 }), take(3))
        .subscribe((v) => out.push(v));
      expect(out).to.deep.equal([0, 1, 2]);
      expect(generator.pulled()).to.equal(3);
      expect(generator.closed()).to.equal(true);
    });

    it('stops a synchronous array inner when downstream unsubscribes mid-array', () => {
      const seen: number[] = [];
      let projected = 0;
      of(1, 2)
        .pipe(
          orderedMergeMap({
            project: (x: number) => {
              projected++;
              return [x * 10, x * 10 + 1, x * 10 + 2];
            },
            concurrency: 2,
          }),
          take(2),
        )
        .subscribe((v) => seen.push(v));
      expect(seen).to.deep.equal([10, 11]);
      expect(projected).to.equal(1);
    });
  });

  describe('bounds', () => {
    it('fails with BufferOverflowError naming maxBuffered when waiting inputs overflow', () => {
      let error: unknown;
      let projected = 0;
      of('a', 'b', 'c', 'd')
        .pipe(
          orderedMergeMap({
            project: () => {
              projected++;
              return NEVER;
            },
            concurrency: 1,
            maxBuffered: 2,
          }),
        )
        .subscribe({ error: (e) => (error = e) });
      expect(error).to.be.instanceOf(BufferOverflowError);
      expect((error as Error).message).to.equal(
        'orderedMergeMap: buffer full (maxBuffered = 2); inputs arrive faster than the head inner completes; raise maxBuffered or concurrency, or pace the source (Acked items from a paced source)',
      );
      expect(projected).to.equal(1);
    });

    it('fails with BufferOverflowError when early values of later inners overflow', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold('ab');
        const head = cold('-----1|');
        const early = cold('-234|');
        const result = source.pipe(
          orderedMergeMap({ project: (x: string) => (x === 'a' ? head : early), concurrency: 2, maxBuffered: 2 }),
        );
        // 2 and 3 are held (2 of 2); 4 at frame 4 does not fit.
        expectObservable(result).toBe(
          '----#',
          undefined,
          new BufferOverflowError(
            'orderedMergeMap',
            'maxBuffered',
            2,
            'inputs arrive faster than the head inner completes; raise maxBuffered or concurrency, or pace the source (Acked items from a paced source)',
          ),
        );
        expectSubscriptions(head.subscriptions).toBe('^---!');
        expectSubscriptions(early.subscriptions).toBe('-^--!');
      });
    });

    it('counts an inner that completed before its turn as one held notification', () => {
      testScheduler().run(({ cold, expectObservable }) => {
        const source = cold('abc');
        const head = cold('-----1|');
        const empty = cold('-|');
        const result = source.pipe(
          orderedMergeMap({ project: (x: string) => (x === 'a' ? head : empty), concurrency: 3, maxBuffered: 1 }),
        );
        // b's completion (frame 2) is held; c's (frame 3) overflows.
        expectObservable(result).toBe('---#', undefined, new BufferOverflowError(
          'orderedMergeMap',
          'maxBuffered',
          1,
          'inputs arrive faster than the head inner completes; raise maxBuffered or concurrency, or pace the source (Acked items from a paced source)',
        ));
      });
    });

    it('within maxBuffered: held values and completions are released as the head completes', () => {
      testScheduler().run(({ cold, expectObservable }) => {
        const source = cold('abc|');
        const inners = { a: cold('----1|'), b: cold('2|'), c: cold('|') };
        const result = source.pipe(
          orderedMergeMap({ project: (x: string) => inners[x as keyof typeof inners], concurrency: 3, maxBuffered: 3 }),
        );
        expectObservable(result).toBe('----1(2|)');
      });
    });
  });

  describe('options', () => {
    const project = (x: number) => of(x);
    const cases: [string, Record<string, unknown>, string][] = [
      ['concurrency 0', { project, concurrency: 0 }, 'orderedMergeMap: option concurrency must be an integer >= 1, got 0'],
      ['concurrency NaN', { project, concurrency: NaN }, 'orderedMergeMap: option concurrency must be an integer >= 1, got NaN'],
      ['concurrency -2', { project, concurrency: -2 }, 'orderedMergeMap: option concurrency must be an integer >= 1, got -2'],
      ['concurrency 1.5', { project, concurrency: 1.5 }, 'orderedMergeMap: option concurrency must be an integer >= 1, got 1.5'],
      ['concurrency missing', { project }, 'orderedMergeMap: option concurrency must be an integer >= 1, got undefined'],
      ['maxBuffered 0', { project, concurrency: 1, maxBuffered: 0 }, 'orderedMergeMap: option maxBuffered must be an integer >= 1, got 0'],
      ['project missing', { concurrency: 1 }, 'orderedMergeMap: option project must be a function, got undefined'],
    ];
    for (const [name, options, message] of cases) {
      it(`rejects ${name} when the operator is created`, () => {
        expect(() => orderedMergeMap(options as never))
          .to.throw(InvalidOptionError, message);
      });
    }
  });

  describe('properties', () => {
    it('with random inner timings: output equals concatMap output, at most `concurrency` inners run at once', () => {
      const innerArb = fc.record({
        startDelay: fc.nat({ max: 5 }),
        gaps: fc.array(fc.nat({ max: 4 }), { maxLength: 4 }),
        tail: fc.nat({ max: 5 }),
      });
      fc.assert(
        fc.property(
          fc.array(fc.record({ gap: fc.nat({ max: 3 }), inner: innerArb }), { maxLength: 25 }),
          fc.integer({ min: 1, max: 5 }),
          (inputs, concurrency) => {
            testScheduler().run(({ cold, flush }) => {
              const sourceMarble = inputs.map((input) => '-'.repeat(input.gap) + 'x').join('') + '|';
              const values = inputs.map((_, i) => i);
              let sent = 0;
              const source = cold(sourceMarble).pipe(
                // Each 'x' stands for the next input index.
                concatMap(() => of(values[sent++]!)),
              );
              const innerOf = (i: number): Observable<string> => {
                const { startDelay, gaps, tail } = inputs[i]!.inner;
                const marble =
                  '-'.repeat(startDelay) + gaps.map((gap, k) => '-'.repeat(gap) + 'abcd'[k]).join('') + '-'.repeat(tail) + '|';
                return cold(marble, { a: `${i}:0`, b: `${i}:1`, c: `${i}:2`, d: `${i}:3` });
              };
              let running = 0;
              let maxRunning = 0;
              const counted = (i: number) =>
                defer(() => {
                  running++;
                  maxRunning = Math.max(maxRunning, running);
                  return innerOf(i).pipe(finalize(() => running--));
                });
              const expected = inputs.flatMap((input, i) => input.inner.gaps.map((_, k) => `${i}:${k}`));
              const out: string[] = [];
              let completed = false;
              source.pipe(orderedMergeMap({ project: counted, concurrency })).subscribe({
                next: (v) => out.push(v),
                complete: () => (completed = true),
              });
              flush();
              expect(out).to.deep.equal(expected);
              expect(completed).to.equal(true);
              expect(running).to.equal(0);
              expect(maxRunning).to.be.at.most(concurrency);
            });
          },
        ),
        { numRuns: 300 },
      );
    });

    it('with random async completion order (fc.scheduler): output equals concatMap output', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.scheduler(),
          fc.array(fc.nat({ max: 3 }), { maxLength: 20 }),
          fc.integer({ min: 1, max: 6 }),
          async (s, valueCounts, concurrency) => {
            let running = 0;
            let maxRunning = 0;
            const project = (count: number, i: number) =>
              defer(() => {
                running++;
                maxRunning = Math.max(maxRunning, running);
                const steps = Array.from({ length: count }, (_, k) =>
                  defer(() => s.schedule(Promise.resolve(`${i}:${k}`), `inner ${i} value ${k}`)),
                );
                return concat(...steps, defer(() => s.schedule(Promise.resolve(), `inner ${i} complete`)).pipe(
                  concatMap(() => []),
                ));
              }).pipe(finalize(() => running--));
            const done = lastValueFrom(of(...valueCounts).pipe(orderedMergeMap({ project, concurrency }), toArray()));
            await s.waitAll();
            const out = await done;
            const expected = valueCounts.flatMap((count, i) => Array.from({ length: count }, (_, k) => `${i}:${k}`));
            expect(out).to.deep.equal(expected);
            expect(maxRunning).to.be.at.most(concurrency);
            expect(running).to.equal(0);
          },
        ),
        { numRuns: 200 },
      );
    });
  });

  it('errors from a rejected promise inner', async () => {
    const boom = new Error('inner rejected');
    let error: unknown;
    await new Promise<void>((resolve) => {
      of(1, 2)
        .pipe(orderedMergeMap({ project: (x: number) => (x === 2 ? Promise.reject(boom) : Promise.resolve(x)), concurrency: 2 }))
        .subscribe({ error: (e) => { error = e; resolve(); }, complete: () => resolve() });
    });
    expect(error).to.equal(boom);
  });

  it('errors when project returns something that is not an ObservableInput', () => {
    let error: unknown;
    of(1)
      .pipe(orderedMergeMap({ project: () => 42 as never, concurrency: 1 }))
      .subscribe({ error: (e) => (error = e) });
    expect(error).to.be.instanceOf(TypeError);
  });
});
