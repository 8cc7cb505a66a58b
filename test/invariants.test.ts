/**
 * The two-stage ack invariants across operators chained the way the flows chain them:
 * paced paths -> ProgressTracker -> watermarkBackpressure -> drainBarrier -> early wake ("accepted")
 * -> batchBy -> a writer that makes batches durable in any order.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { map, tap, VirtualTimeScheduler, type Subscription } from 'rxjs';
import { fromPaced, mergePaced } from '../lib/core/paced.ts';
import { ProgressTracker } from '../lib/core/progress.ts';
import { batchBy, type Batch } from '../operators/batchBy.ts';
import { drainBarrier } from '../operators/drainBarrier.ts';
import { watermarkBackpressure } from '../operators/watermarkBackpressure.ts';
import type { Acked } from '../lib/core/ack.ts';

const settle = () => new Promise((resolve) => setImmediate(resolve));

interface Event {
  readonly path: number;
  readonly seq: number;
  /** Present on a barrier: the paths it drains. */
  readonly scope?: readonly number[];
  readonly marker?: true;
}

const id = (e: Event) => `${e.path}:${e.seq}`;

describe('two-stage ack invariants', () => {
  it('early wake does not advance the checkpoint', async () => {
    const pulled: number[] = [];
    async function* source() {
      for (let seq = 1; seq <= 5; seq++) {
        pulled.push(seq);
        yield seq;
      }
    }
    const tracker = new ProgressTracker<string>();
    const accepted: Acked<number>[] = [];
    fromPaced(source())
      .pipe(
        map(({ value, ack }) => ({ value, ack: tracker.track('p', BigInt(value), ack) })),
        tap((item) => item.ack.enqueued()), // held by the pipeline: wake the path now
      )
      .subscribe((item) => accepted.push(item));
    for (let i = 0; i < 10; i++) await settle();
    expect(pulled).to.deep.equal([1, 2, 3, 4, 5], 'every wake came before any flush');
    expect(tracker.checkpoint('p')).to.equal(0n, 'nothing is durable yet');
    accepted[1]!.ack.flushed();
    expect(tracker.checkpoint('p')).to.equal(0n, 'item 1 is not durable, so item 2 cannot count');
    accepted[0]!.ack.flushed();
    expect(tracker.checkpoint('p')).to.equal(2n);
  });

  it('property: nothing lost or duplicated, per-path order kept, barriers drain, checkpoints stay behind durable data', async () => {
    const PATHS = 3;
    const script = fc.array(
      fc.record({
        path: fc.integer({ min: 0, max: PATHS - 1 }),
        barrier: fc.option(fc.subarray([0, 1, 2], { minLength: 1 }), { freq: 6 }),
      }),
      { minLength: 1, maxLength: 30 },
    );
    const flushPicks = fc.array(fc.nat(), { minLength: 60, maxLength: 60 });

    await fc.assert(
      fc.asyncProperty(script, flushPicks, async (steps, picks) => {
        const perPath: Event[][] = Array.from({ length: PATHS }, () => []);
        for (const step of steps) {
          const events = perPath[step.path]!;
          const seq = events.length + 1;
          const scope = step.barrier ? [...new Set([step.path, ...step.barrier])] : undefined;
          events.push(scope ? { path: step.path, seq, scope } : { path: step.path, seq });
        }
        const total = steps.length;
        const clock = new VirtualTimeScheduler();
        const tracker = new ProgressTracker<number>();
        const unflushed = new Map<string, Event>();
        const flushed = new Set<string>();
        const arrivedAtWriter: Event[] = [];
        const pendingBatches: Batch<Acked<Event>>[] = [];
        const failures: string[] = [];

        const onWriterArrival = (event: Event) => {
          if (event.marker) return;
          if (event.scope) {
            // A barrier reaches the writer only after every earlier in-scope event is durable.
            for (const earlier of arrivedAtWriter.concat([...unflushed.values()])) {
              if (event.scope.includes(earlier.path) && !flushed.has(id(earlier)) && precedes(earlier, event)) {
                failures.push(`barrier ${id(event)} reached the writer before ${id(earlier)} was flushed`);
              }
            }
          }
          for (const earlier of arrivedAtWriter) {
            if (earlier.scope && earlier.scope.includes(event.path) && !flushed.has(id(earlier)) && precedes(earlier, event)) {
              failures.push(`${id(event)} reached the writer before barrier ${id(earlier)} was flushed`);
            }
          }
          arrivedAtWriter.push(event);
        };
        // Input order across paths, as the merged source emitted it.
        const emittedOrder: string[] = [];
        const precedes = (a: Event, b: Event) => emittedOrder.indexOf(id(a)) < emittedOrder.indexOf(id(b));

        const subscription: Subscription = mergePaced(perPath.map((events) => events.slice()))
          .pipe(
            tap(({ value }) => {
              emittedOrder.push(id(value));
              unflushed.set(id(value), value);
            }),
            map(({ value, ack }) => ({
              value,
              ack: tracker.track(value.path, BigInt(value.seq), {
                enqueued: () => ack.enqueued(),
                flushed: () => {
                  unflushed.delete(id(value));
                  flushed.add(id(value));
                  ack.flushed();
                },
                failed: (e) => ack.failed(e),
              }),
            })),
            watermarkBackpressure<Event>({ highBytes: 4, lowBytes: 2, sizeOf: () => 1 }),
            drainBarrier<Event, number>({
              isBarrier: (e) => e.scope !== undefined,
              scopeOf: (e) => e.scope!,
              keyOf: (e) => e.path,
              marker: (e) => ({ path: e.path, seq: -e.seq, marker: true }),
            }),
            tap((item) => item.ack.enqueued()),
            tap(({ value }) => onWriterArrival(value)),
            batchBy<Acked<Event>>({
              maxItems: 3,
              maxDelayMs: 10,
              isBarrier: ({ value }) => value.scope !== undefined || value.marker === true,
              scheduler: clock,
            }),
          )
          .subscribe({ next: (batch) => pendingBatches.push(batch), error: (e) => failures.push(String(e)) });

        const checkCheckpoints = () => {
          for (const event of unflushed.values()) {
            const checkpoint = tracker.checkpoint(event.path);
            if (checkpoint !== undefined && checkpoint >= BigInt(event.seq)) {
              failures.push(`checkpoint ${checkpoint} of path ${event.path} reached unflushed ${id(event)}`);
            }
          }
        };

        for (let round = 0; round < 200 && flushed.size < total; round++) {
          await settle();
          clock.flush(); // let batchBy's interval cut a partial batch
          if (pendingBatches.length > 0) {
            const pick = picks[round % picks.length]! % pendingBatches.length;
            const [batch] = pendingBatches.splice(pick, 1);
            batch!.ack.flushed(); // durable, in any order
          }
          checkCheckpoints();
        }
        subscription.unsubscribe();

        expect(failures, failures.join('; ')).to.deep.equal([]);
        expect(flushed.size).to.equal(total, 'every event was written and flushed');
        const written = arrivedAtWriter.map(id);
        expect(new Set(written).size).to.equal(written.length, 'no event reached the writer twice');
        for (let path = 0; path < PATHS; path++) {
          const order = arrivedAtWriter.filter((e) => e.path === path).map((e) => e.seq);
          expect(order).to.deep.equal(perPath[path]!.map((e) => e.seq), `order of path ${path}`);
          const last = perPath[path]!.length;
          if (last > 0) expect(tracker.checkpoint(path)).to.equal(BigInt(last));
        }
      }),
      { numRuns: 200 },
    );
  });
});
