/**
 * adaptiveBatch: batches items for a writer it calls itself, sizes the batches by AIMD from the
 * writer's latency and errors, and retries failed writes with exponential backoff and jitter.
 *
 * Invariant guarded here: an item's ack is flushed only after a write holding it completed, and
 * results leave in input order; a failed batch is retried with the same items, never split, dropped
 * or reordered, and past the retry limit the output fails instead of skipping it. Memory is bounded:
 * `maxBuffered` items wait for a write (plus what paced sources already sent while their wake was
 * withheld) and at most `maxInFlight` batches are being written or waiting to be emitted.
 */
import {
  asyncScheduler,
  from,
  Observable,
  type ObservableInput,
  type OperatorFunction,
  type SchedulerLike,
  type Subscription,
} from 'rxjs';
import { isAcked, type Ack } from '../lib/core/ack.ts';
import { BufferOverflowError, checkFunction, checkNumber, InvalidOptionError } from '../lib/core/errors.ts';
import { Queue } from '../lib/core/queue.ts';
import { subscribeLinked } from '../lib/core/subscribeLinked.ts';

export interface AdaptiveBatchOptions<T, R> {
  /**
   * Writes one batch: completion is success (its last value is kept as the result), an error or a
   * throw is a failed attempt. `attempt` counts from 1.
   */
  write: (items: T[], attempt: number) => ObservableInput<R>;
  /** Smallest batch size, in items. Default 1. */
  minSize?: number;
  /** Largest batch size, in items. Default 10000. */
  maxSize?: number;
  /** First batch size, in items. Default 1000, clamped into [minSize, maxSize]. */
  initialSize?: number;
  /** Cut a partial batch this many ms after its oldest item arrived. Default 1000; Infinity = never. */
  maxDelayMs?: number;
  /** Latency goal of one write, in ms. Default 1000. */
  targetLatencyMs?: number;
  /** Evaluate the size after every this many completed writes (a window). Default 5. */
  adjustEvery?: number;
  /** Multiplicative growth after a good window, > 1. Default 1.2. */
  growFactor?: number;
  /** Multiplicative shrink after a slow or failed window, and on each failed write, in (0, 1). Default 0.7. */
  shrinkFactor?: number;
  /** Consecutive good windows at the settled size before probing above it again. Default 30. */
  probeAfterWindows?: number;
  /** Retries of a failed write before the output fails (Infinity = retry forever). Default 5. */
  maxRetries?: number;
  /** Backoff before the first retry, in ms; doubles per retry. Default 100. */
  minBackoffMs?: number;
  /** Upper bound of the backoff before jitter, in ms. Default 10000. */
  maxBackoffMs?: number;
  /** Backoff is scaled by a factor in [1 - jitter, 1 + jitter]; jitter in [0, 1]. Default 0.2. */
  jitter?: number;
  /** Random numbers in [0, 1] for the jitter. Default Math.random. */
  random?: () => number;
  /** Writes running (or backing off, or done and waiting for an earlier one) at once. Default 1. */
  maxInFlight?: number;
  /** Items held waiting for a write, at least maxSize. Default 4 × maxSize. */
  maxBuffered?: number;
  /** Where timers, backoff and latency are measured. Default `asyncScheduler`. */
  scheduler?: SchedulerLike;
  /** Called synchronously after each change with the same object, updated in place (copy it to keep it). */
  onStats?: (stats: Readonly<AdaptiveBatchStats>) => void;
}

export interface AdaptiveBatchStats {
  /** Current target batch size, in items. */
  size: number;
  /** Successful writes. */
  writes: number;
  /** Retries started after a failed attempt. */
  retries: number;
  /** Failed attempts. */
  failures: number;
  /** Latency of the last successful write, in ms (0 before the first). */
  lastLatencyMs: number;
  /** Items waiting for a write. */
  buffered: number;
  /** Batches taken and not yet emitted (being written, backing off, or waiting for an earlier batch). */
  inFlight: number;
}

/** A batch the writer accepted, emitted in input order. */
export interface WrittenBatch<T, R> {
  readonly items: T[];
  /** The write's last value, undefined when it completed without one. */
  readonly result: R | undefined;
  /** Duration of the successful attempt, in ms. */
  readonly latencyMs: number;
  /** Attempts made, 1 when the first one succeeded. */
  readonly attempts: number;
  /** The target size when the batch was cut, in items. */
  readonly size: number;
}

export const ADAPTIVE_BATCH_DEFAULTS = {
  minSize: 1,
  maxSize: 10_000,
  /** Clamped into [minSize, maxSize]. */
  initialSize: 1000,
  maxDelayMs: 1000,
  targetLatencyMs: 1000,
  adjustEvery: 5,
  growFactor: 1.2,
  shrinkFactor: 0.7,
  probeAfterWindows: 30,
  maxRetries: 5,
  minBackoffMs: 100,
  maxBackoffMs: 10_000,
  jitter: 0.2,
  maxInFlight: 1,
  /** maxBuffered = maxBufferedPerMaxSize × maxSize. */
  maxBufferedPerMaxSize: 4,
} as const;

const OWNER = 'adaptiveBatch';

/** The output's error once a batch failed more than maxRetries times; `cause` is the last failure. */
export class BatchWriteError extends Error {
  override readonly name = 'BatchWriteError';
  readonly attempts: number;
  readonly batchSize: number;

  constructor(attempts: number, batchSize: number, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    const tries = attempts === 1 ? '1 attempt' : `${attempts} attempts`;
    super(`${OWNER}: write of a batch of ${batchSize} items failed after ${tries}; last cause: ${reason}`, { cause });
    this.attempts = attempts;
    this.batchSize = batchSize;
  }
}

/** Settings of `AimdSizer`, all required and already valid (adaptiveBatch checks them). */
export interface AimdSettings {
  minSize: number;
  maxSize: number;
  initialSize: number;
  targetLatencyMs: number;
  adjustEvery: number;
  growFactor: number;
  shrinkFactor: number;
  probeAfterWindows: number;
}

/**
 * The batch-size policy of adaptiveBatch, pure (no time, no I/O): fed with write outcomes, it
 * evaluates a window every `adjustEvery` completed writes.
 *
 * - A window with any failure, or whose average latency of successful writes is above the target,
 *   shrinks: size = max(min, floor(size × shrink)). A latency miss also records `ceiling`, the
 *   smallest size known to miss the target (and forgets `good` if it is not below it).
 * - Otherwise the window is good: `good` becomes the largest size known to meet the target, and the
 *   size grows to min(max, ceil(size × grow)) but never below `good` (after a shrink it recovers
 *   straight to it); a step that would reach `ceiling` bisects instead:
 *   floor((max(size, good) + ceiling) / 2).
 * - When ceiling - good <= max(1, 5% of good) the size has settled at `good` and stays there.
 *   After `probeAfterWindows` consecutive good windows while settled the ceiling is forgotten, so a
 *   writer that became faster is found again (one probe window may then miss).
 * - A good window at or above the ceiling also forgets it (the writer became faster).
 * - Each failed write shrinks the size at once as well, and marks the window as failed.
 * - Successes of batches cut at another size than the current one (in flight across a change) do
 *   not count, so a window measures exactly one size.
 */
export class AimdSizer {
  private current: number;
  private ceiling = Infinity;
  private good = 0;
  private settledWindows = 0;
  private completed = 0;
  private successes = 0;
  private latencySumMs = 0;
  private failed = false;
  private readonly settings: AimdSettings;

  constructor(settings: AimdSettings) {
    this.settings = settings;
    this.current = settings.initialSize;
  }

  /** The target batch size, in items. */
  get size(): number {
    return this.current;
  }

  /** A write of a batch cut at `sizeAtCut` succeeded after `latencyMs`. */
  recordSuccess(latencyMs: number, sizeAtCut: number): void {
    if (sizeAtCut !== this.current) return;
    this.successes++;
    this.latencySumMs += latencyMs;
    this.completeWrite();
  }

  /** A write attempt failed: shrink at once, and the window counts as failed. */
  recordFailure(): void {
    this.failed = true;
    this.settledWindows = 0;
    this.shrink();
    this.completeWrite();
  }

  private completeWrite(): void {
    if (++this.completed < this.settings.adjustEvery) return;
    const failed = this.failed;
    const averageMs = this.latencySumMs / this.successes;
    this.completed = 0;
    this.successes = 0;
    this.latencySumMs = 0;
    this.failed = false;
    if (failed) {
      this.shrink();
    } else if (averageMs > this.settings.targetLatencyMs) {
      this.ceiling = Math.min(this.ceiling, this.current);
      if (this.good >= this.ceiling) this.good = 0;
      this.settledWindows = 0;
      this.shrink();
    } else {
      this.grow();
    }
  }

  private shrink(): void {
    this.current = Math.max(this.settings.minSize, floorSize(this.current * this.settings.shrinkFactor));
  }

  private grow(): void {
    const { minSize, maxSize, growFactor, probeAfterWindows } = this.settings;
    if (this.current >= this.ceiling) this.ceiling = Infinity;
    this.good = Math.max(this.good, this.current);
    if (this.ceiling - this.good <= Math.max(1, this.good * 0.05)) {
      if (++this.settledWindows < probeAfterWindows) {
        this.current = this.good;
        return;
      }
      this.ceiling = Infinity;
    }
    this.settledWindows = 0;
    let next = Math.max(Math.min(maxSize, ceilSize(this.current * growFactor)), this.good);
    if (next >= this.ceiling) next = Math.floor((Math.max(this.current, this.good) + this.ceiling) / 2);
    this.current = Math.min(maxSize, Math.max(minSize, next));
  }
}

// Sizes times factors land a hair off whole numbers (700 × 0.7 = 489.99999999999994): round those first.
const floorSize = (size: number) => Math.floor(size + 1e-9);
const ceilSize = (size: number) => Math.ceil(size - 1e-9);

interface PendingWrite<T, R> {
  readonly items: T[];
  readonly size: number;
  attempts: number;
  done: boolean;
  result: R | undefined;
  latencyMs: number;
}

interface WithheldWake {
  /** The item's index in input order. */
  readonly seq: number;
  readonly ack: Ack;
}

/**
 * Batches items, writes each batch with `write`, and emits the written batches in input order,
 * sizing batches by AIMD and retrying failures.
 *
 * Sizing (`AimdSizer`): every `adjustEvery` completed writes, a window with a failure or an average
 * latency above `targetLatencyMs` shrinks the size ×shrinkFactor (a latency miss also remembers the
 * size as a ceiling); a good window grows it ×growFactor, never below the largest size known to be
 * good, bisecting toward the ceiling instead of jumping past it, and settles at that good size once
 * it is within 5% of the ceiling. After `probeAfterWindows` settled windows the ceiling is forgotten
 * so a writer that became faster is found again. Each failed write also shrinks the size at once.
 *
 * Lossless: every item is written exactly once as part of a successful write, or the output fails.
 * A failed attempt (error or throw) shrinks the size at once and retries the same items after
 * min(maxBackoffMs, minBackoffMs × 2^(attempt-1)) × a jitter factor in [1 - jitter, 1 + jitter],
 * rounded to whole ms; after maxRetries retries the output errors with `BatchWriteError` (attempts,
 * batch size, last cause) and the batch members' acks get `failed`. Items still buffered or in other
 * writes are then neither flushed nor failed (the checkpoint stays below them).
 * Cuts: when `size` items wait and a write slot is free, when the oldest waiting item is
 * `maxDelayMs` old (as soon as a slot is free), and on complete (everything, then completes after
 * the last write). Acked items: `enqueued()` on accept while fewer than `maxBuffered` items wait;
 * beyond that the wake is withheld and released in order as writes take items (the source waits);
 * `flushed()` after the write succeeded, in input order. Plain values beyond `maxBuffered` fail the
 * output with `BufferOverflowError`. Teardown cancels running writes, backoffs and timers.
 *
 * @example
 * lines$.pipe(adaptiveBatch({ write: (lines) => postLines(lines.join('\n')), targetLatencyMs: 500, maxInFlight: 2 }))
 *
 * @param options write; sizes in items (minSize, maxSize, initialSize, maxBuffered); times in ms
 *   (maxDelayMs, targetLatencyMs, minBackoffMs, maxBackoffMs); adjustEvery (writes per window),
 *   growFactor, shrinkFactor, probeAfterWindows (windows), maxRetries, jitter, random, maxInFlight
 *   (batches), scheduler, onStats. Defaults in ADAPTIVE_BATCH_DEFAULTS.
 */
export function adaptiveBatch<T, R>(options: AdaptiveBatchOptions<T, R>): OperatorFunction<T, WrittenBatch<T, R>> {
  const D = ADAPTIVE_BATCH_DEFAULTS;
  const write = checkFunction(OWNER, 'write', options.write);
  const minSize = checkNumber(OWNER, 'minSize', options.minSize ?? D.minSize, { min: 1, integer: true });
  const maxSize = checkNumber(OWNER, 'maxSize', options.maxSize ?? D.maxSize, { min: minSize, integer: true });
  const initialSize = checkNumber(OWNER, 'initialSize', options.initialSize ?? Math.min(maxSize, Math.max(minSize, D.initialSize)), {
    min: minSize,
    max: maxSize,
    integer: true,
  });
  const maxDelayMs = checkNumber(OWNER, 'maxDelayMs', options.maxDelayMs ?? D.maxDelayMs, { min: 0, allowInfinity: true });
  const targetLatencyMs = checkOpen('targetLatencyMs', options.targetLatencyMs ?? D.targetLatencyMs, 0, Infinity, 'a finite number > 0');
  const adjustEvery = checkNumber(OWNER, 'adjustEvery', options.adjustEvery ?? D.adjustEvery, { min: 1, integer: true });
  const growFactor = checkOpen('growFactor', options.growFactor ?? D.growFactor, 1, Infinity, 'a finite number > 1');
  const shrinkFactor = checkOpen('shrinkFactor', options.shrinkFactor ?? D.shrinkFactor, 0, 1, 'a number in (0, 1)');
  const probeAfterWindows = checkNumber(OWNER, 'probeAfterWindows', options.probeAfterWindows ?? D.probeAfterWindows, {
    min: 1,
    integer: true,
    allowInfinity: true,
  });
  const maxRetries = checkNumber(OWNER, 'maxRetries', options.maxRetries ?? D.maxRetries, { min: 0, integer: true, allowInfinity: true });
  const minBackoffMs = checkNumber(OWNER, 'minBackoffMs', options.minBackoffMs ?? D.minBackoffMs, { min: 0 });
  const maxBackoffMs = checkNumber(OWNER, 'maxBackoffMs', options.maxBackoffMs ?? Math.max(minBackoffMs, D.maxBackoffMs), {
    min: minBackoffMs,
  });
  const jitter = checkNumber(OWNER, 'jitter', options.jitter ?? D.jitter, { min: 0, max: 1 });
  const random = checkFunction(OWNER, 'random', options.random ?? Math.random);
  const maxInFlight = checkNumber(OWNER, 'maxInFlight', options.maxInFlight ?? D.maxInFlight, { min: 1, integer: true });
  const maxBuffered = checkNumber(OWNER, 'maxBuffered', options.maxBuffered ?? D.maxBufferedPerMaxSize * maxSize, {
    min: maxSize,
    integer: true,
  });
  const onStats = options.onStats === undefined ? undefined : checkFunction(OWNER, 'onStats', options.onStats);
  const scheduler = options.scheduler ?? asyncScheduler;
  const timed = maxDelayMs !== Infinity;
  const settings: AimdSettings = {
    minSize,
    maxSize,
    initialSize,
    targetLatencyMs,
    adjustEvery,
    growFactor,
    shrinkFactor,
    probeAfterWindows,
  };

  const backoffMs = (attempt: number): number => {
    const r = random();
    if (!(r >= 0 && r <= 1)) throw new RangeError(`${OWNER}: random() returned ${String(r)}; it must return numbers in [0, 1]`);
    const base = Math.min(maxBackoffMs, minBackoffMs * 2 ** (attempt - 1));
    return Math.round(base * (1 + jitter * (2 * r - 1)));
  };

  return (source) =>
    new Observable<WrittenBatch<T, R>>((subscriber) => {
      const sizer = new AimdSizer(settings);
      const stats: AdaptiveBatchStats = {
        size: sizer.size,
        writes: 0,
        retries: 0,
        failures: 0,
        lastLatencyMs: 0,
        buffered: 0,
        inFlight: 0,
      };
      // Items waiting for a write live in pending[head..]; arrivals[i] is pending[i]'s arrival time.
      let pending: T[] = [];
      let arrivals: number[] = [];
      let head = 0;
      /** Items taken from the buffer into writes so far. */
      let taken = 0;
      const withheld = new Queue<WithheldWake>();
      /** Batches taken and not yet emitted, in input order. */
      const writes = new Queue<PendingWrite<T, R>>();
      let sourceDone = false;
      let timer: Subscription | undefined;
      /** Input index of the oldest waiting item the timer is armed for, -1 when none. */
      let timerSeq = -1;
      /** Waiting items up to this input index are past maxDelayMs (set when the timer fires). */
      let overdueThrough = -1;
      let settling = false;
      let settleAgain = false;
      /**
       * The clock as read by the accept being settled (NaN otherwise): that synchronous settle reuses
       * it instead of reading the clock again, one read per item instead of two.
       */
      let acceptedAt = NaN;

      const fail = (error: unknown) => subscriber.error(error);

      /** Runs `body`, routing a throw of user code (write, acks, random, onStats) to the output. */
      const guarded = (body: () => void) => {
        if (subscriber.closed) return;
        try {
          body();
        } catch (error) {
          fail(error);
        }
      };

      /** Schedules `work` on the scheduler, tied to the subscription so teardown cancels it. */
      const schedule = (work: () => void, delayMs: number): Subscription => {
        let action: Subscription | undefined;
        action = scheduler.schedule(() => {
          if (action !== undefined) subscriber.remove(action);
          guarded(work);
        }, delayMs);
        if (!action.closed) subscriber.add(action);
        return action;
      };

      const bufferedCount = () => pending.length - head;

      const take = (count: number): T[] => {
        const items = pending.slice(head, head + count);
        head += count;
        taken += count;
        if (head === pending.length) {
          pending = [];
          arrivals = [];
          head = 0;
        } else if (head >= 1024 && head * 2 >= pending.length) {
          pending = pending.slice(head);
          if (timed) arrivals = arrivals.slice(head);
          head = 0;
        }
        return items;
      };

      /** Wakes withheld items, in order, that are now within maxBuffered of the write front (or taken). */
      const releaseWakes = () => {
        while (withheld.length > 0 && withheld.peek()!.seq - taken < maxBuffered) withheld.shift()!.ack.enqueued();
      };

      const attempt = (batch: PendingWrite<T, R>) => {
        batch.attempts++;
        const startedAt = scheduler.now();
        let finished = false;
        let result: R | undefined;
        let running: Subscription | undefined;
        const finish = () => {
          finished = true;
          if (running !== undefined) subscriber.remove(running);
        };
        let input: Observable<R>;
        try {
          input = from(write(batch.items, batch.attempts));
        } catch (error) {
          onFailure(batch, error);
          return;
        }
        running = input.subscribe({
          next: (value) => {
            result = value;
          },
          error: (error) => {
            finish();
            guarded(() => onFailure(batch, error));
          },
          complete: () => {
            finish();
            guarded(() => onSuccess(batch, result, scheduler.now() - startedAt));
          },
        });
        if (!finished) subscriber.add(running);
      };

      const onSuccess = (batch: PendingWrite<T, R>, result: R | undefined, latencyMs: number) => {
        batch.done = true;
        batch.result = result;
        batch.latencyMs = latencyMs;
        stats.writes++;
        stats.lastLatencyMs = latencyMs;
        sizer.recordSuccess(latencyMs, batch.size);
        settle();
      };

      const onFailure = (batch: PendingWrite<T, R>, cause: unknown) => {
        stats.failures++;
        sizer.recordFailure();
        if (batch.attempts > maxRetries) {
          const error = new BatchWriteError(batch.attempts, batch.items.length, cause);
          for (const item of batch.items) if (isAcked(item)) item.ack.failed(error);
          fail(error);
          return;
        }
        stats.retries++;
        schedule(() => attempt(batch), backoffMs(batch.attempts));
        settle();
      };

      const startWrites = () => {
        while (writes.length < maxInFlight && bufferedCount() > 0) {
          const size = sizer.size;
          const due =
            bufferedCount() >= size ||
            sourceDone ||
            (timed && (taken <= overdueThrough || (acceptedAt === acceptedAt ? acceptedAt : scheduler.now()) - arrivals[head]! >= maxDelayMs));
          if (!due) return;
          const batch: PendingWrite<T, R> = {
            items: take(Math.min(size, bufferedCount())),
            size,
            attempts: 0,
            done: false,
            result: undefined,
            latencyMs: 0,
          };
          writes.push(batch);
          attempt(batch);
          if (subscriber.closed) return;
          releaseWakes();
        }
      };

      /** Emits the done batches at the front, in input order; true when it emitted any (slots freed). */
      const emitWritten = (): boolean => {
        let emitted = false;
        while (writes.length > 0 && writes.peek()!.done) {
          emitted = true;
          const batch = writes.shift()!;
          for (const item of batch.items) if (isAcked(item)) item.ack.flushed();
          subscriber.next({
            items: batch.items,
            result: batch.result,
            latencyMs: batch.latencyMs,
            attempts: batch.attempts,
            size: batch.size,
          });
          if (subscriber.closed) break;
        }
        return emitted;
      };

      /** Arms the cut timer for the oldest waiting item, only while a slot is free to write it. */
      const armTimer = () => {
        // The oldest waiting item's input index is `taken`.
        const seq = bufferedCount() > 0 && writes.length < maxInFlight ? taken : -1;
        if (seq === timerSeq) return;
        if (timer !== undefined) {
          timer.unsubscribe();
          subscriber.remove(timer);
          timer = undefined;
        }
        timerSeq = seq;
        if (seq < 0) return;
        timer = schedule(() => {
          timer = undefined;
          timerSeq = -1;
          overdueThrough = seq;
          settle();
        }, arrivals[head]! + maxDelayMs - scheduler.now());
      };

      /** Brings everything up to date after any event; re-entrant calls are folded into the running one. */
      const settle = () => {
        if (settling) {
          settleAgain = true;
          return;
        }
        settling = true;
        try {
          do {
            settleAgain = false;
            // Emitting frees slots, which may start writes, which may finish synchronously.
            do {
              startWrites();
            } while (!subscriber.closed && emitWritten());
            if (subscriber.closed) return;
            if (timed) armTimer();
            if (onStats !== undefined) {
              stats.size = sizer.size;
              stats.buffered = bufferedCount();
              stats.inFlight = writes.length;
              onStats(stats);
            }
            if (sourceDone && bufferedCount() === 0 && writes.length === 0) {
              subscriber.complete();
              return;
            }
          } while (settleAgain && !subscriber.closed);
        } finally {
          settling = false;
        }
      };

      const accept = (item: T) => {
        const position = bufferedCount();
        const acked = isAcked(item);
        if (!acked && position >= maxBuffered) {
          const hint = 'the writer falls behind; pace the source with Acked items or raise maxBuffered';
          fail(new BufferOverflowError(OWNER, 'maxBuffered', maxBuffered, hint));
          return;
        }
        pending.push(item);
        if (timed) arrivals.push(scheduler.now());
        if (acked) {
          // Pushed before the wake: a wake may make the source send its next item synchronously.
          if (withheld.length === 0 && position < maxBuffered) item.ack.enqueued();
          else withheld.push({ seq: taken + position, ack: item.ack });
        }
        if (!timed || settling) {
          settle();
          return;
        }
        // The wake above may have run a nested accept: the arrival just pushed is still the clock's
        // latest reading only when it is the last one.
        acceptedAt = arrivals.length > 0 ? arrivals[arrivals.length - 1]! : NaN;
        try {
          settle();
        } finally {
          acceptedAt = NaN;
        }
      };

      const observer = {
        next: (item: T) => guarded(() => accept(item)),
        error: fail,
        complete: () =>
          guarded(() => {
            sourceDone = true;
            settle();
          }),
      };
      subscribeLinked(source, observer, (link) => subscriber.add(link));

      return () => {
        pending = [];
        arrivals = [];
        withheld.clear();
        writes.clear();
      };
    });
}

/** Checks low < value < high (bounds excluded); NaN fails. */
function checkOpen(name: string, value: unknown, low: number, high: number, expected: string): number {
  if (typeof value !== 'number' || !(value > low && value < high)) throw new InvalidOptionError(OWNER, name, value, expected);
  return value;
}
