/**
 * Paced sources: an async iterable, an iterable or a pull function becomes an `Observable<Acked<T>>`
 * that honours a window, the only backpressure upstream ever needs.
 *
 * Invariant guarded here: a path never has more than `window` items emitted and not yet enqueued,
 * its items are emitted in order, and no busy path starves another (ready paths take turns first
 * come, first served, a turn is at most `turn` items, and the emitting loop yields to the scheduler
 * every `burst` items so timers and I/O still run).
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
   * Items a path may emit in a row while each one is enqueued at once and its next one is ready at
   * once (a synchronous source), before the next ready path's turn. Default 16: a consumer keeps
   * state per path (a dispatcher's position, its key's count), and a thousand paths taking one item
   * each in turn find that state out of the CPU's caches every time (measured in the sink: about
   * 0.7 µs per row at 1000 dispatchers, against 0.1 at 10).
   */
  turn?: number;
  /**
   * Where yields are scheduled. Default: `setImmediate`, which lets timers and I/O run without the
   * at least 1 ms a zero-delay `asyncScheduler` timer waits (a thousand yields would idle a second).
   */
  scheduler?: SchedulerLike;
}

export const PACED_DEFAULTS = { window: 1, burst: 256, turn: 16 } as const;

/** What a path reads from, as one object: a thousand paths are read in turn, each from a cold cache. */
type Reader<T> = Iterator<T> | AsyncIterator<T> | { next: PullFunction<T>; return?: undefined };

function readerOf<T>(source: PacedSource<T>, index: number): Reader<T> {
  if (typeof source === 'function') return { next: source };
  if (source !== null && typeof source === 'object') {
    if (Symbol.asyncIterator in source) return source[Symbol.asyncIterator]();
    if (Symbol.iterator in source) return source[Symbol.iterator]();
  }
  throw new TypeError(`paced source #${index} is neither an async iterable, an iterable nor a pull function`);
}

function closeReader<T>(reader: Reader<T>): void {
  try {
    const result = reader.return?.();
    // A generator closing asynchronously may reject; nobody is listening any more.
    if (result && typeof (result as PromiseLike<unknown>).then === 'function') {
      (result as Promise<unknown>).then(undefined, () => {});
    }
  } catch {
    // The iterator failed while closing after unsubscribe: nothing can receive the error.
  }
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
  /** Requested for the next pull round, or its pull is under way (an async answer). */
  pulling = false;
  done = false;
  /** Its items waiting in the ready queue. */
  ready = 0;
  /** Woken while its own item was being emitted: its turn may go on. */
  again = false;
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
  const turn = checkNumber('fromPaced', 'turn', options.turn ?? PACED_DEFAULTS.turn, { min: 1, integer: true });
  const scheduler = options.scheduler ?? immediateYield;

  return new Observable<Acked<T>>((subscriber) => {
    const paths = sources.map((source, index) => new PacedPath(readerOf(source, index)));
    // Ready items as two parallel queues: no object per item.
    const readyPaths = new Queue<PacedPath<T>>();
    const readyValues = new Queue<T>();
    // Paths that may take their next item, pulled on one microtask per round (see pullRequested).
    const requested = new Queue<PacedPath<T>>();
    let pullScheduled = false;
    let open = paths.length;
    let emitting = false;
    /** The path whose item is being emitted. */
    let emittingPath: PacedPath<T> | undefined;
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
        path.ready++;
        readyPaths.push(path);
        readyValues.push(result.value);
        request(path);
      }
      emit();
    };

    /** Lets a path with room in its window take its next item on the coming pull round. */
    const request = (path: PacedPath<T>) => {
      if (path.pulling || path.done || path.inFlight >= window || subscriber.closed) return;
      if (path === emittingPath) {
        path.again = true;
        return;
      }
      path.pulling = true;
      requested.push(path);
      if (!pullScheduled) {
        pullScheduled = true;
        queueMicrotask(pullRequested);
      }
    };

    /**
     * Pulls the paths requested before this microtask, in order; later requests wait for the next.
     * A synchronous answer is emitted at once, so an item is made just before it is used, not a
     * round of a thousand paths earlier, by which time it would be out of the CPU's caches (and
     * copied by a collection); and every path, synchronous or not, answers on a microtask, so a
     * synchronous one cannot monopolise the emitting loop while other paths' answers are on their way.
     */
    const pullRequested = () => {
      for (let count = requested.length; count > 0 && !subscriber.closed; count--) {
        const path = requested.shift()!;
        let result: IteratorResult<T> | PromiseLike<IteratorResult<T>>;
        try {
          result = path.reader.next();
        } catch (error) {
          return fail(error);
        }
        if (typeof (result as PromiseLike<unknown>).then === 'function') {
          (result as PromiseLike<IteratorResult<T>>).then((r) => onResult(path, r), fail);
        } else {
          onResult(path, result as IteratorResult<T>);
        }
      }
      if (requested.length > 0 && !subscriber.closed) queueMicrotask(pullRequested);
      else pullScheduled = false;
    };

    /** The next item of a path on its turn, or undefined when the turn ends (async answer, done, failed). */
    const pullInTurn = (path: PacedPath<T>): IteratorYieldResult<T> | undefined => {
      let result: IteratorResult<T> | PromiseLike<IteratorResult<T>>;
      try {
        result = path.reader.next();
      } catch (error) {
        fail(error);
        return undefined;
      }
      if (typeof (result as PromiseLike<unknown>).then === 'function') {
        path.pulling = true;
        (result as PromiseLike<IteratorResult<T>>).then((r) => onResult(path, r), fail);
        return undefined;
      }
      if ((result as IteratorResult<T>).done) {
        path.done = true;
        open--;
        return undefined;
      }
      path.inFlight++;
      return result as IteratorYieldResult<T>;
    };

    // One handler for every ack: an item's wake lets its path pull the next one.
    const wake: AckHandler<PacedPath<T>> = {
      enqueued: (path) => {
        path.inFlight--;
        request(path);
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
          const path = readyPaths.shift()!;
          let value = readyValues.shift() as T;
          path.ready--;
          // The path's turn: while each item is enqueued at once, its next one is pulled and emitted
          // at once, as long as a synchronous answer comes and the turn and the burst last.
          for (let taken = 1; ; taken++) {
            sinceYield++;
            emittingPath = path;
            subscriber.next({ value, ack: bindAck(wake, path) });
            emittingPath = undefined;
            if (!path.again) break;
            path.again = false;
            if (taken >= turn || sinceYield >= burst || path.ready > 0 || subscriber.closed) {
              request(path);
              break;
            }
            const result = pullInTurn(path);
            if (result === undefined) break;
            value = result.value;
          }
        }
        if (open === 0 && readyPaths.length === 0) subscriber.complete();
      } finally {
        emitting = false;
        emittingPath = undefined;
      }
    };

    startAll(paths, request, subscriber);
    if (paths.length === 0) subscriber.complete();
    return () => {
      for (const path of paths) if (!path.done) closeReader(path.reader);
    };
  });
}

function startAll<T>(paths: PacedPath<T>[], request: (path: PacedPath<T>) => void, subscriber: Subscriber<Acked<T>>) {
  for (const path of paths) {
    if (subscriber.closed) return;
    request(path);
  }
}
