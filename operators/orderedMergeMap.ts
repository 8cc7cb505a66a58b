/**
 * orderedMergeMap: mergeMap's parallelism with concatMap's output order, for work such as parallel
 * encoding whose results must stay in input order.
 *
 * Invariant guarded here: a value of the inner for input i is emitted only after every value of
 * the inners for inputs 0..i-1 and after those inners completed; never more than `concurrency`
 * inners are subscribed at once; inputs waiting to start plus early notifications held for later
 * inners (their values, and their completion when they finish before their turn) never exceed
 * `maxBuffered`.
 */
import {
  Observable,
  type ObservableInput,
  type Observer,
  type OperatorFunction,
  type Subscriber,
  type Subscription,
} from 'rxjs';
import { BufferOverflowError, checkFunction, checkNumber } from '../lib/core/errors.ts';
import { Queue } from '../lib/core/queue.ts';
import { subscribeLinked } from '../lib/core/subscribeLinked.ts';

export interface OrderedMergeMapOptions<T, R> {
  /** Maps an input (and its 0-based input index) to the inner whose values are emitted in its place. */
  project: (value: T, index: number) => ObservableInput<R>;
  /** Inners subscribed at once: a whole number >= 1. */
  concurrency: number;
  /**
   * Bound on inputs waiting to start plus notifications of later inners held until their turn (each
   * value, and the completion of an inner that finished early). Default 10000.
   */
  maxBuffered?: number;
}

export const ORDERED_MERGE_MAP_DEFAULTS = { maxBuffered: 10_000 } as const;

const OWNER = 'orderedMergeMap';

/**
 * Maps each input to an inner observable, runs up to `concurrency` inners at once (an inner that
 * completes frees its place at once, as in mergeMap) and emits their values in input order: the
 * first unfinished inner (the head) emits straight through, later inners' values are held until
 * every earlier inner completed, then flushed in order.
 *
 * Lossless while within `maxBuffered`: every value of every inner is emitted, once, in input order.
 * When a new input has to wait, or an early value or early completion has to be held, and
 * `maxBuffered` of them are already held, the output fails with `BufferOverflowError` (plain values
 * cannot be paced). With
 * `Acked` items from paced sources the queue stays small: each path sends its next item only after
 * downstream called `enqueued()`, which this operator leaves to downstream. An error of the source,
 * of `project` or of an inner fails the output at once; held values are dropped.
 * Completes when the source completed and every inner completed and was flushed.
 *
 * @example
 * rows$.pipe(orderedMergeMap({ project: (row) => encode(row), concurrency: 8 })) // encoded rows, in row order
 *
 * @param options.project maps an input and its index to an `ObservableInput` (an array is emitted synchronously).
 * @param options.concurrency inners subscribed at once (whole number >= 1).
 * @param options.maxBuffered waiting inputs + held early values and completions (count); default 10000.
 */
export function orderedMergeMap<T, R>(options: OrderedMergeMapOptions<T, R>): OperatorFunction<T, R> {
  const project = checkFunction(OWNER, 'project', options.project);
  const concurrency = checkNumber(OWNER, 'concurrency', options.concurrency, { min: 1, integer: true });
  const maxBuffered = checkNumber(OWNER, 'maxBuffered', options.maxBuffered ?? ORDERED_MERGE_MAP_DEFAULTS.maxBuffered, {
    min: 1,
    integer: true,
  });
  return (source) =>
    new Observable<R>((subscriber) => {
      const run = new OrderedMergeRun(subscriber, project, concurrency, maxBuffered);
      // Teardown and the source's subscriber belong to `subscriber` before the source starts, so
      // unsubscribing downstream stops even a synchronous source or inner in mid-emission.
      subscriber.add(() => run.teardown());
      subscribeLinked(source, run, (link) => subscriber.add(link));
    });
}

/**
 * One inner's place in input order. Slot objects are reused once their inner is flushed (no
 * per-input allocation on the fast path); each is the observer of its current inner. A completed
 * inner's subscriber is closed, so a reused slot never hears from its previous inner.
 */
class InnerSlot<R> implements Observer<R> {
  readonly run: SlotOwner<R>;
  /** Values that arrived while an earlier inner was still running. */
  readonly held: R[] = [];
  done = false;
  /** It completed before its turn: its completion counts as one held notification. */
  heldCompletion = false;
  /** The running inner's subscriber, known before the inner starts so teardown can stop it mid-emission. */
  subscription: Subscription | null = null;

  constructor(run: SlotOwner<R>) {
    this.run = run;
  }

  subscribeInner(input: ObservableInput<R>): void {
    subscribeLinked(input, this, (link) => (this.subscription = link));
  }

  /** Ends the finished inner's subscription now, so its teardown runs before the next inner starts. */
  release(): void {
    const subscription = this.subscription;
    this.subscription = null;
    subscription?.unsubscribe();
  }

  next(value: R): void {
    this.run.innerNext(this, value);
  }

  error(error: unknown): void {
    this.run.fail(error);
  }

  complete(): void {
    this.run.innerComplete(this);
  }
}

/** What a slot reports its inner's notifications to. */
interface SlotOwner<R> {
  innerNext(slot: InnerSlot<R>, value: R): void;
  innerComplete(slot: InnerSlot<R>): void;
  fail(error: unknown): void;
}

/** The state of one subscription: the source's observer, and a ring of active slots in input order. */
class OrderedMergeRun<T, R> implements Observer<T>, SlotOwner<R> {
  private readonly subscriber: Subscriber<R>;
  private readonly project: (value: T, index: number) => ObservableInput<R>;
  private readonly concurrency: number;
  private readonly maxBuffered: number;
  /** Ring of slots; positions start .. start+size-1 (mod length) are in use, the head first. */
  private slots: InnerSlot<R>[] = [];
  private start = 0;
  private size = 0;
  /** Inners subscribed and not yet completed. */
  private running = 0;
  /** Inputs that arrived while `concurrency` inners were running. */
  private readonly waiting = new Queue<T>();
  /** Notifications held in slots (values and early completions), over all slots. */
  private held = 0;
  private index = 0;
  private sourceDone = false;
  private draining = false;

  constructor(
    subscriber: Subscriber<R>,
    project: (value: T, index: number) => ObservableInput<R>,
    concurrency: number,
    maxBuffered: number,
  ) {
    this.subscriber = subscriber;
    this.project = project;
    this.concurrency = concurrency;
    this.maxBuffered = maxBuffered;
  }

  next(value: T): void {
    // Outside a drain a free place means nothing waits; inside one, keep input order via the queue.
    if (this.running < this.concurrency && !this.draining) {
      this.startInner(value);
    } else if (this.reserve()) {
      this.waiting.push(value);
      this.drain();
    }
  }

  error(error: unknown): void {
    this.subscriber.error(error);
  }

  complete(): void {
    this.sourceDone = true;
    if (!this.draining) this.completeIfDone();
  }

  innerNext(slot: InnerSlot<R>, value: R): void {
    if (this.subscriber.closed) return;
    // The head emits straight through unless it still has held values being flushed ahead of it.
    if (slot === this.slots[this.start] && slot.held.length === 0) {
      this.subscriber.next(value);
    } else if (this.reserve()) {
      slot.held.push(value);
      this.held++;
    }
  }

  innerComplete(slot: InnerSlot<R>): void {
    if (this.subscriber.closed) return;
    slot.done = true;
    slot.release();
    this.running--;
    if (slot !== this.slots[this.start]) {
      if (!this.reserve()) return;
      slot.heldCompletion = true;
      this.held++;
    }
    this.drain();
  }

  fail(error: unknown): void {
    this.subscriber.error(error);
  }

  teardown(): void {
    for (let k = 0, i = this.start; k < this.size; k++) {
      const slot = this.slots[i]!;
      slot.release();
      slot.held.length = 0;
      if (++i === this.slots.length) i = 0;
    }
    this.size = 0;
    this.running = 0;
    this.held = 0;
    this.waiting.clear();
  }

  /** True when one more waiting input or held value fits; otherwise fails the output. */
  private reserve(): boolean {
    if (this.waiting.length + this.held < this.maxBuffered) return true;
    this.subscriber.error(
      new BufferOverflowError(
        OWNER,
        'maxBuffered',
        this.maxBuffered,
        'inputs arrive faster than the head inner completes; raise maxBuffered or concurrency, or pace the source (Acked items from a paced source)',
      ),
    );
    return false;
  }

  private startInner(value: T): void {
    let input: ObservableInput<R>;
    try {
      input = this.project(value, this.index++);
    } catch (error) {
      this.subscriber.error(error);
      return;
    }
    const slot = this.acquireSlot();
    this.running++;
    if (Array.isArray(input)) {
      // Fast path: what from(array) would do, without an Observable and a subscriber per input.
      for (let i = 0; i < input.length && !this.subscriber.closed; i++) this.innerNext(slot, input[i] as R);
      this.innerComplete(slot);
      return;
    }
    slot.subscribeInner(input);
  }

  /** Takes the next slot of the ring (growing it when full) and resets it. */
  private acquireSlot(): InnerSlot<R> {
    if (this.size === this.slots.length) this.grow();
    let i = this.start + this.size;
    if (i >= this.slots.length) i -= this.slots.length;
    const slot = this.slots[i]!;
    slot.done = false;
    slot.heldCompletion = false;
    this.size++;
    return slot;
  }

  private grow(): void {
    // In use: at most `concurrency` running inners plus completed ones awaiting their turn (held).
    const capacity = Math.max(4, this.slots.length * 2);
    const grown: InnerSlot<R>[] = [];
    for (let k = 0, i = this.start; k < this.size; k++) {
      grown.push(this.slots[i]!);
      if (++i === this.slots.length) i = 0;
    }
    while (grown.length < capacity) grown.push(new InnerSlot<R>(this));
    this.slots = grown;
    this.start = 0;
  }

  /**
   * Moves past completed heads, flushing each next head's held values, and starts waiting inputs
   * while fewer than `concurrency` inners run. Re-entrant calls (from values emitted here) leave
   * the work to this loop.
   */
  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    while (!this.subscriber.closed) {
      const head = this.size > 0 ? this.slots[this.start]! : undefined;
      if (head !== undefined && head.held.length > 0) {
        this.flush(head);
      } else if (head !== undefined && head.done) {
        if (head.heldCompletion) this.held--;
        if (++this.start === this.slots.length) this.start = 0;
        this.size--;
      } else if (this.running < this.concurrency && this.waiting.length > 0) {
        this.startInner(this.waiting.shift()!);
      } else {
        break;
      }
    }
    this.draining = false;
    this.completeIfDone();
  }

  /** Emits the head's held values; values it gets meanwhile are appended and emitted in turn. */
  private flush(head: InnerSlot<R>): void {
    const held = head.held;
    for (let i = 0; i < held.length && !this.subscriber.closed; i++) {
      const value = held[i] as R;
      held[i] = undefined as R;
      this.held--;
      this.subscriber.next(value);
    }
    held.length = 0;
  }

  private completeIfDone(): void {
    if (this.sourceDone && this.size === 0 && this.waiting.length === 0 && !this.subscriber.closed) {
      this.subscriber.complete();
    }
  }
}
