import { expect } from 'chai';
import { Observable, take, toArray, firstValueFrom, map } from 'rxjs';
import { createAck } from '../../lib/core/ack.ts';
import { subscribeLinked } from '../../lib/core/subscribeLinked.ts';
import { batchBy } from '../../operators/batchBy.ts';
import { drainBarrier } from '../../operators/drainBarrier.ts';
import { watermarkBackpressure } from '../../operators/watermarkBackpressure.ts';
import { adaptiveBatch } from '../../operators/adaptiveBatch.ts';

/** A synchronous source that never ends unless its subscriber closes. */
function endless(): Observable<number> {
  return new Observable<number>((subscriber) => {
    for (let i = 0; !subscriber.closed; i++) subscriber.next(i);
  });
}

describe('subscribeLinked', () => {
  it('hands over the subscription before the first value, so the owner can stop a synchronous source', () => {
    const seen: number[] = [];
    let link: { unsubscribe(): void } | undefined;
    subscribeLinked(endless(), { next: (v) => (seen.push(v), v === 2 && link!.unsubscribe()) }, (l) => (link = l));
    expect(seen).to.deep.equal([0, 1, 2]);
  });

  it('routes a non-observable input to error', () => {
    let caught: unknown;
    subscribeLinked(42 as never, { error: (e) => (caught = e) }, () => {});
    expect(caught).to.be.instanceOf(TypeError);
  });

  describe('every ack-aware operator stops an endless synchronous source', () => {
    const items = () => endless().pipe(map((value) => ({ value, ack: createAck() })));
    const cases = {
      batchBy: () => endless().pipe(batchBy({ maxItems: 2 })),
      watermarkBackpressure: () => items().pipe(watermarkBackpressure({ highBytes: 10, lowBytes: 5, sizeOf: () => 1 })),
      drainBarrier: () => items().pipe(drainBarrier({ isBarrier: () => false, scopeOf: () => 'all', keyOf: () => 0 })),
      adaptiveBatch: () => endless().pipe(adaptiveBatch({ write: (xs) => [xs.length], initialSize: 2, minSize: 1, maxSize: 2, maxBuffered: 1e9 })),
    };
    for (const [name, make] of Object.entries(cases)) {
      it(name, async () => {
        const out = await firstValueFrom((make() as Observable<unknown>).pipe(take(3), toArray()));
        expect(out).to.have.length(3);
      });
    }
  });
});
