/**
 * watermarkBackpressure: bounds the bytes that passed this point and are not yet durable by
 * withholding wakes (`enqueued()`) from upstream while that usage is high, with hysteresis.
 *
 * Invariant guarded here: a wake is forwarded upstream only while not holding (holding turns on as
 * soon as usage exceeds `highBytes` and off only once it falls to `lowBytes`), every held wake is
 * released once usage is at or below `lowBytes`, and `flushed()` / `failed()` are never delayed.
 */
import { Observable, type MonoTypeOperatorFunction } from 'rxjs';
import { StateAck, type Ack, type AckHandler, type Acked } from '../lib/core/ack.ts';
import { checkFunction, checkNumber, InvalidOptionError } from '../lib/core/errors.ts';
import { subscribeLinked } from '../lib/core/subscribeLinked.ts';

const OWNER = 'watermarkBackpressure';

export interface WatermarkBackpressureOptions<T> {
  /** Bytes passed and not yet flushed above which downstream wakes are held back. Finite, > 0. */
  highBytes: number;
  /** Bytes at or below which held wakes are released. Finite, in [0, highBytes]. */
  lowBytes: number;
  /** Bytes an item counts for; must return a finite number >= 0. */
  sizeOf: (value: T) => number;
  /** Called synchronously after each change of the stats, with the same object updated in place (copy it to keep it). */
  onStats?: (stats: Readonly<WatermarkStats>) => void;
}

export interface WatermarkStats {
  /** Bytes of items passed and not yet flushed or failed. */
  usageBytes: number;
  /** Wakes withheld from upstream right now. */
  heldWakes: number;
  /** Wakes that arrived while holding (each was held, even if its flush came right after). */
  suppressedWakes: number;
  /** Held wakes forwarded upstream when usage fell to the low mark. */
  resumedWakes: number;
  /** True from usage > highBytes until usage <= lowBytes. */
  holding: boolean;
}

/**
 * One item's state below the watermark: its upstream ack and its bytes. Also the ack it travels
 * with and, while its wake is withheld, its place in the held set (one per item, so items sharing
 * an ack object are held apart). One object per item, no closure.
 */
class HeldWake extends StateAck<HeldWake> {
  readonly upstream: Ack;
  readonly size: number;

  constructor(stages: AckHandler<HeldWake>, upstream: Ack, size: number) {
    super(stages);
    this.upstream = upstream;
    this.size = size;
  }
}

/**
 * Paces upstream by the bytes in flight below it: holds back the `enqueued()` signals it forwards
 * while usage is above `highBytes` and releases them all, in order, when usage falls to `lowBytes`.
 *
 * Lossless: every item passes at once and unchanged (only its ack is wrapped); `flushed()` and
 * `failed()` are forwarded immediately, and a flush of an item whose wake is held forwards the flush
 * (which implies the wake) and drops the held entry. The held wakes are bounded by the items passed
 * and not yet flushed; paced sources send no more while their wakes are held, so usage overshoots
 * `highBytes` by at most one window of items per path.
 *
 * @example
 * changes$.pipe(
 *   watermarkBackpressure({ highBytes: 64 << 20, lowBytes: 32 << 20, sizeOf: (c) => c.bytes }),
 *   drainBarrier({ ... }),
 * );
 *
 * Options: `highBytes` and `lowBytes` in bytes (lowBytes <= highBytes), `sizeOf` (bytes),
 * `onStats` (usage in bytes, wake counters).
 */
export function watermarkBackpressure<T>(options: WatermarkBackpressureOptions<T>): MonoTypeOperatorFunction<Acked<T>> {
  const highBytes = options.highBytes;
  if (typeof highBytes !== 'number' || !Number.isFinite(highBytes) || highBytes <= 0) {
    throw new InvalidOptionError(OWNER, 'highBytes', highBytes, 'a finite number > 0');
  }
  const lowBytes = checkNumber(OWNER, 'lowBytes', options.lowBytes, { min: 0 });
  if (lowBytes > highBytes) {
    throw new InvalidOptionError(OWNER, 'lowBytes', lowBytes, `a number <= highBytes (${highBytes})`);
  }
  const sizeOf = checkFunction(OWNER, 'sizeOf', options.sizeOf);
  const onStats = options.onStats === undefined ? undefined : checkFunction(OWNER, 'onStats', options.onStats);

  return (source) =>
    new Observable<Acked<T>>((subscriber) => {
      let usageBytes = 0;
      let holding = false;
      let suppressedWakes = 0;
      let resumedWakes = 0;
      // A Set keeps insertion order (release order) and drops a flushed entry in O(1).
      const held = new Set<HeldWake>();

      // One object per subscription, updated in place: a report per item must not allocate.
      const stats: WatermarkStats = { usageBytes: 0, heldWakes: 0, suppressedWakes: 0, resumedWakes: 0, holding: false };
      const report = () => {
        if (!onStats) return;
        stats.usageBytes = usageBytes;
        stats.heldWakes = held.size;
        stats.suppressedWakes = suppressedWakes;
        stats.resumedWakes = resumedWakes;
        stats.holding = holding;
        try {
          onStats(stats);
        } catch (error) {
          subscriber.error(error);
        }
      };

      const settle = (wake: HeldWake) => {
        // A flush implies the wake: the held entry is dropped, not resumed.
        if (held.size > 0) held.delete(wake);
        usageBytes -= wake.size;
        if (holding && usageBytes <= lowBytes) holding = false;
        report();
      };

      // Stops if a released wake makes upstream send enough to hold again: the rest stay held.
      const release = () => {
        while (!holding && held.size > 0) {
          const wake = held.values().next().value!;
          held.delete(wake);
          resumedWakes++;
          report();
          wake.upstream.enqueued();
        }
      };

      /** The stages of every ack passed down; the context is the item's wake. */
      const stages: AckHandler<HeldWake> = {
        enqueued: (wake) => {
          if (!holding) return wake.upstream.enqueued();
          held.add(wake);
          suppressedWakes++;
          report();
        },
        flushed: (wake) => {
          settle(wake);
          wake.upstream.flushed();
          release();
        },
        failed: (wake, error) => {
          settle(wake);
          wake.upstream.failed(error);
          release();
        },
      };

      const observer = {
        next: (item: Acked<T>) => {
          let size: number;
          try {
            size = sizeOf(item.value);
          } catch (error) {
            subscriber.error(error);
            return;
          }
          if (typeof size !== 'number' || !Number.isFinite(size) || size < 0) {
            subscriber.error(new RangeError(`${OWNER}: sizeOf returned ${String(size)}; it must return a finite number of bytes >= 0`));
            return;
          }
          usageBytes += size;
          if (usageBytes > highBytes) holding = true;
          report();
          subscriber.next({ value: item.value, ack: new HeldWake(stages, item.ack, size) });
        },
        error: (error: unknown) => subscriber.error(error),
        complete: () => subscriber.complete(),
      };
      // No teardown of the ack state: items already emitted (and still downstream after a
      // completion) keep their accounting, and their acks still reach upstream under the same rules.
      subscribeLinked(source, observer, (link) => subscriber.add(link));
    });
}
