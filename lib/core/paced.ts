/**
 * Paced sources: an async iterable, an iterable or a pull function becomes an `Observable<Acked<T>>`
 * that honours a window, the only backpressure upstream ever needs.
 *
 * Invariant guarded here: a path never has more than `window` items emitted and not yet enqueued,
 * and no busy path starves another (ready items are emitted first come, first served, and the
 * emitting loop yields to the scheduler every `burst` items so timers and I/O still run).
 */
import { Observable, Subscription, type SchedulerLike, type Subscriber } from 'rxjs';
import { bindAck, type AckHandler, type Acked } from './ack.ts';
import { checkNumber } from './errors.ts';
import { Queue } from './queue.ts';

/** Pulls the next item; `{ done: true }` ends the path. May answer synchronously. */
export type PullFunction<T> = () => IteratorResult<T> | PromiseLike<IteratorResult<T>>;

/** What a path reads from. */
export type PacedSource<T> = AsyncIterable<T> | Iterable<T> | PullFunction<T>;

export interface PacedOptions {
  /** Items a path may have emitted and not yet enqueued. Default 1. */
  window?: number;
  /**
   * Items emitted in one go before yielding to the scheduler. Default 256: every step of a file
   * write (open, write, sync, rename) waits for a yield, so a long burst makes writes slow enough
   * to fill the memory quota while they run (measured in the sink: 1000 gave ~120 ms per data and
   * index file pair, 256 gave ~45 ms; a yield costs about a microsecond).
   */
  burst?: number;
  /**
   * Where yields are scheduled. Default: `setImmediate`, which lets timers and I/O run without the
   * at least 1 ms a zero-delay `asyncScheduler` timer waits (a thousand yields would idle a second).
   */
  scheduler?: SchedulerLike;
}

export const PACED_DEFAULTS = { window: 1, burst: 256 } as const;

interface Reader<T> {
  next(): IteratorResult<T> | PromiseLike<IteratorResult<T>>;
  close(): void;
}

function readerOf<T>(source: PacedSource<T>, index: number): Reader<T> {
  if (typeof source === 'function') return { next: source, close() {} };
  if (source !== null && typeof source === 'object') {
    if (Symbol.asyncIterator in source) return iteratorReader(source[Symbol.asyncIterator]());
    if (Symbol.iterator in source) return iteratorReader(source[Symbol.iterator]());
  }
  throw new TypeError(`paced source #${index} is neither an async iterable, an iterable nor a pull function`);
}

function iteratorReader<T>(iterator: Iterator<T> | AsyncIterator<T>): Reader<T> {
  return {
    next: () => iterator.next(),
    close() {
      try {
        const result = iterator.return?.();
        // A generator closing asynchronously may reject; nobody is listening any more.
        if (result && typeof (result as PromiseLike<unknown>).then === 'function') {
          (result as Promise<unknown>).then(undefined, () => {});
        }
      } catch {
        // The iterator failed while closing after unsubscribe: nothing can receive the error.
      }
    },
  };
}

/** The default yield: the next turn of the event loop, after pending I/O and due timers. */
const immediateYield = {
  now: () => Date.now(),
  schedule(work: () => void): Subscription {
    const handle = setImmediate(work);
    return new Subscription(() => clearImmediate(handle));
  },
} as SchedulerLike;

class PacedPath<T> {
  /** Items pulled and not yet enqueued downstream: never more than the window. */
  inFlight = 0;
  pulling = false;
  done = false;
  /** A synchronous answer waiting for its microtask. */
  answer: IteratorResult<T> | undefined;
  readonly reader: Reader<T>;
  constructor(reader: Reader<T>) {
    this.reader = reader;
  }
}

/**
 * One path as a paced source: emits `Acked<T>` and pulls the next item only while fewer than
 * `window` emitted items are waiting for `enqueued()`.
 *
 * Lossless: every pulled item is emitted; nothing is buffered beyond one pulled item per path.
 *
 * @example
 * fromPaced(readLines(file), { window: 1 }).pipe(...).subscribe();
 */
export function fromPaced<T>(source: PacedSource<T>, options: PacedOptions = {}): Observable<Acked<T>> {
  return mergePaced([source], options);
}

/**
 * Many paths merged fairly: each path keeps its own window; ready items are emitted in the order
 * they became ready, so a path that is always ready cannot starve the others.
 * Completes when every path is done; errors when any path fails.
 */
export function mergePaced<T>(sources: readonly PacedSource<T>[], options: PacedOptions = {}): Observable<Acked<T>> {
  const window = checkNumber('fromPaced', 'window', options.window ?? PACED_DEFAULTS.window, { min: 1, integer: true });
  const burst = checkNumber('fromPaced', 'burst', options.burst ?? PACED_DEFAULTS.burst, { min: 1, integer: true });
  const scheduler = options.scheduler ?? immediateYield;

  return new Observable<Acked<T>>((subscriber) => {
    const paths = sources.map((source, index) => new PacedPath(readerOf(source, index)));
    // Ready items as two parallel queues: no object per item.
    const readyPaths = new Queue<PacedPath<T>>();
    const readyValues = new Queue<T>();
    // Synchronous answers, delivered on one microtask per round (see pull).
    const answered = new Queue<PacedPath<T>>();
    let answering = false;
    let open = paths.length;
    let emitting = false;
    let yieldScheduled = false;
    let sinceYield = 0;

    const fail = (error: unknown) => subscriber.error(error);

    const onResult = (path: PacedPath<T>, result: IteratorResult<T>) => {
      path.pulling = false;
      if (subscriber.closed) return;
      if (result.done) {
        path.done = true;
        open--;
      } else {
        path.inFlight++;
        readyPaths.push(path);
        readyValues.push(result.value);
        pull(path);
      }
      emit();
    };

    const pull = (path: PacedPath<T>) => {
      if (path.pulling || path.done || path.inFlight >= window || subscriber.closed) return;
      path.pulling = true;
      let result: IteratorResult<T> | PromiseLike<IteratorResult<T>>;
      try {
        result = path.reader.next();
      } catch (error) {
        return fail(error);
      }
      if (typeof (result as PromiseLike<unknown>).then === 'function') {
        (result as PromiseLike<IteratorResult<T>>).then((r) => onResult(path, r), fail);
      } else {
        // Answer on a microtask like an async source would, so a synchronous path cannot
        // monopolise the emitting loop while other paths' answers are on their way.
        path.answer = result as IteratorResult<T>;
        answered.push(path);
        if (!answering) {
          answering = true;
          queueMicrotask(deliverAnswers);
        }
      }
    };

    /** The answers queued before this microtask, in order; later ones wait for the next. */
    const deliverAnswers = () => {
      for (let count = answered.length; count > 0; count--) {
        const path = answered.shift()!;
        const answer = path.answer!;
        path.answer = undefined;
        onResult(path, answer);
      }
      if (answered.length > 0) queueMicrotask(deliverAnswers);
      else answering = false;
    };

    // One handler for every ack: an item's wake lets its path pull the next one.
    const wake: AckHandler<PacedPath<T>> = {
      enqueued: (path) => {
        path.inFlight--;
        pull(path);
      },
    };

    const emit = () => {
      if (emitting || yieldScheduled) return;
      emitting = true;
      try {
        while (readyPaths.length > 0 && !subscriber.closed) {
          if (sinceYield >= burst) {
            yieldScheduled = true;
            const resume = scheduler.schedule(() => {
              subscriber.remove(resume);
              yieldScheduled = false;
              sinceYield = 0;
              emit();
            });
            subscriber.add(resume);
            return;
          }
          sinceYield++;
          const path = readyPaths.shift()!;
          const value = readyValues.shift() as T;
          subscriber.next({ value, ack: bindAck(wake, path) });
        }
        if (open === 0 && readyPaths.length === 0) subscriber.complete();
      } finally {
        emitting = false;
      }
    };

    startAll(paths, pull, subscriber);
    if (paths.length === 0) subscriber.complete();
    return () => {
      for (const path of paths) if (!path.done) path.reader.close();
    };
  });
}

function startAll<T>(paths: PacedPath<T>[], pull: (path: PacedPath<T>) => void, subscriber: Subscriber<Acked<T>>) {
  for (const path of paths) {
    if (subscriber.closed) return;
    pull(path);
  }
}
