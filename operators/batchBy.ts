/**
 * batchBy: groups a stream into batches cut by item count, bytes, a delay from the batch's first
 * item, or a barrier item; the last partial batch is emitted on complete.
 *
 * Invariant guarded here: every item is emitted exactly once, in input order, in exactly one
 * non-empty batch; the open batch never holds more than `maxItems` items nor more than `maxBytes`
 * bytes (a single item larger than `maxBytes` travels alone), so the buffer is bounded by the limits.
 */
import { asyncScheduler, isObservable, Observable, type OperatorFunction, type SchedulerLike, type Subscription } from 'rxjs';
import { ackAll, isAcked, type Ack } from '../lib/core/ack.ts';
import { checkFunction, checkNumber, InvalidOptionError } from '../lib/core/errors.ts';
import { subscribeLinked } from '../lib/core/subscribeLinked.ts';

/** Why a batch was cut. */
export type BatchReason = 'size' | 'interval' | 'barrier' | 'quota' | 'complete';

/** A cut batch: its items in input order, their total `sizeOf` bytes, and their combined ack. */
export interface Batch<T> {
  readonly items: T[];
  /** Sum of `sizeOf(item)`; 0 when no `sizeOf` was given. */
  readonly bytes: number;
  readonly reason: BatchReason;
  /** The combined ack of the members that are `Acked` (a no-op ack when there are none). */
  readonly ack: Ack;
}

export interface BatchByOptions<T> {
  /** Cut when the batch holds this many items. Default Infinity (then maxBytes must be finite). */
  maxItems?: number;
  /** Cut so a batch holds at most this many bytes by `sizeOf`. Default Infinity. */
  maxBytes?: number;
  /** Bytes of one item, a finite number > 0. Required when maxBytes is finite. */
  sizeOf?: (item: T) => number;
  /** Cut this many ms after the batch's first item. Default Infinity (no timer). */
  maxDelayMs?: number;
  /** A barrier item closes the batch it joins, which is emitted at once. */
  isBarrier?: (item: T) => boolean;
  /**
   * Each emission cuts the open batch at once (reason `quota`), when it holds anything: how a
   * memory quota upstream gets its items written instead of waiting for the interval.
   */
  cut$?: Observable<unknown>;
  /** Where the delay timer runs. Default `asyncScheduler`. */
  scheduler?: SchedulerLike;
}

export const BATCH_BY_DEFAULTS = { maxItems: Infinity, maxBytes: Infinity, maxDelayMs: Infinity } as const;

const OWNER = 'batchBy';

/** A batch whose combined ack is built on first access, so batching plain values costs nothing. */
class CutBatch<T> implements Batch<T> {
  readonly items: T[];
  readonly bytes: number;
  readonly reason: BatchReason;
  private combined: Ack | undefined;

  constructor(items: T[], bytes: number, reason: BatchReason) {
    this.items = items;
    this.bytes = bytes;
    this.reason = reason;
  }

  get ack(): Ack {
    if (this.combined === undefined) {
      const acks: Ack[] = [];
      for (const item of this.items) if (isAcked(item)) acks.push(item.ack);
      this.combined = ackAll(acks);
    }
    return this.combined;
  }
}

/**
 * Groups items into batches cut by count, bytes, delay from the first item, or a barrier item.
 *
 * Lossless on complete (the last partial batch is emitted with reason `complete`); on error the
 * open batch is dropped and the error forwarded. Never emits an empty batch, so an idle stream emits
 * nothing. Cuts: `size` when the batch reaches `maxItems`, or when the next item would push it above
 * `maxBytes` (the batch is emitted first and the item starts the next one; an item that alone
 * reaches `maxBytes` is emitted at once); `interval` `maxDelayMs` after the batch's first item;
 * `barrier` when `isBarrier(item)` (the item is the batch's last member); `quota` when `cut$`
 * emits (nothing happens when the batch is empty). The buffer is bounded by
 * `maxItems` / `maxBytes`: it cannot fill up, it is cut instead. `batch.ack` combines the members'
 * acks (`ackAll`), built on first access. A throwing `sizeOf` / `isBarrier`, or a size that is not a
 * finite number > 0, errors the output.
 *
 * @example
 * rows$.pipe(batchBy({ maxBytes: 64 << 20, sizeOf: (row) => row.bytes, maxDelayMs: 5000, isBarrier: (row) => row.ddl }))
 *
 * @param options maxItems (items), maxBytes (bytes, needs sizeOf), maxDelayMs (ms, >= 0 or
 *   Infinity), isBarrier, cut$, scheduler. At least one of maxItems / maxBytes must be finite.
 */
export function batchBy<T>(options: BatchByOptions<T>): OperatorFunction<T, Batch<T>> {
  const maxItems = checkNumber(OWNER, 'maxItems', options.maxItems ?? BATCH_BY_DEFAULTS.maxItems, {
    min: 1,
    integer: true,
    allowInfinity: true,
  });
  const maxBytes = checkNumber(OWNER, 'maxBytes', options.maxBytes ?? BATCH_BY_DEFAULTS.maxBytes, {
    min: 1,
    allowInfinity: true,
  });
  const maxDelayMs = checkNumber(OWNER, 'maxDelayMs', options.maxDelayMs ?? BATCH_BY_DEFAULTS.maxDelayMs, {
    min: 0,
    allowInfinity: true,
  });
  if (maxItems === Infinity && maxBytes === Infinity) {
    throw new InvalidOptionError(OWNER, 'maxItems', maxItems, 'finite when maxBytes is Infinity (a batch needs a bound)');
  }
  const sizeOf = maxBytes === Infinity && options.sizeOf === undefined ? undefined : checkFunction(OWNER, 'sizeOf', options.sizeOf);
  const isBarrier = options.isBarrier === undefined ? undefined : checkFunction(OWNER, 'isBarrier', options.isBarrier);
  const timed = maxDelayMs !== Infinity;
  const scheduler = options.scheduler ?? asyncScheduler;
  const cut$ = options.cut$;
  if (cut$ !== undefined && !isObservable(cut$)) throw new InvalidOptionError(OWNER, 'cut$', cut$, 'an Observable');

  return (source) =>
    new Observable<Batch<T>>((subscriber) => {
      let items: T[] = [];
      let bytes = 0;
      let timer: Subscription | undefined;
      /** Index of the next item, for error messages. */
      let index = 0;

      const cancelTimer = () => {
        if (timer === undefined) return;
        timer.unsubscribe();
        subscriber.remove(timer);
        timer = undefined;
      };

      const emit = (reason: BatchReason) => {
        const batch = new CutBatch(items, bytes, reason);
        items = [];
        bytes = 0;
        if (timed) cancelTimer();
        subscriber.next(batch);
      };

      const startTimer = () => {
        timer = scheduler.schedule(() => {
          // Ran: drop it from the subscriber's finalizers too (emit cancels nothing now).
          subscriber.remove(timer!);
          timer = undefined;
          emit('interval');
        }, maxDelayMs);
        subscriber.add(timer);
      };

      const observer = {
        next: (item: T) => {
          let size = 0;
          let barrier = false;
          try {
            if (sizeOf !== undefined) size = checkedSize(sizeOf(item), index);
            if (isBarrier !== undefined) barrier = isBarrier(item);
          } catch (error) {
            subscriber.error(error);
            return;
          }
          index++;
          if (bytes + size > maxBytes && items.length > 0) emit('size');
          items.push(item);
          bytes += size;
          if (timed && items.length === 1) startTimer();
          if (barrier) emit('barrier');
          else if (items.length >= maxItems || bytes >= maxBytes) emit('size');
        },
        error: (error: unknown) => {
          items = [];
          subscriber.error(error);
        },
        complete: () => {
          if (items.length > 0) emit('complete');
          subscriber.complete();
        },
      };
      if (cut$ !== undefined) {
        subscriber.add(
          cut$.subscribe({
            next: () => {
              if (items.length > 0) emit('quota');
            },
            error: (error: unknown) => subscriber.error(error),
          }),
        );
      }
      subscribeLinked(source, observer, (link) => subscriber.add(link));

      return () => {
        cancelTimer();
        items = [];
      };
    });
}

function checkedSize(size: number, index: number): number {
  if (size > 0 && size < Infinity) return size;
  throw new RangeError(`${OWNER}: sizeOf returned ${String(size)} for item #${index}; sizes must be finite numbers > 0`);
}
