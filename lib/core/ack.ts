/**
 * The two-stage ack: every item that must not be lost travels with an `Ack`.
 *
 * Stage 1, `enqueued()`, is the wake: the pipeline holds the item and its path may send the next
 * one. Stage 2, `flushed()`, is durability: only a durable write may call it, and only flushed items
 * may move a checkpoint. Invariant guarded here: every call is idempotent, `flushed()` implies
 * `enqueued()`, and a settled ack (flushed or failed) never changes again.
 */

export interface Ack {
  /** Stage 1, the wake: the pipeline holds the item; its path may send the next one. */
  enqueued(): void;
  /** Stage 2, durable: written at the destination; implies `enqueued()`. */
  flushed(): void;
  /** The item could not be made durable; the checkpoint must not pass it. */
  failed(error: unknown): void;
}

/** An item that must not be lost, with the ack that reports its progress back to its source. */
export interface Acked<T> {
  readonly value: T;
  readonly ack: Ack;
}

/** Callbacks of `createAck`; each fires at most once, `onEnqueued` always before `onFlushed`. */
export interface AckHandlers {
  onEnqueued?: () => void;
  onFlushed?: () => void;
  onFailed?: (error: unknown) => void;
}

/**
 * Stage handlers shared by many acks, each ack passing its own context: the allocation-free form of
 * `createAck` for hot paths, where a closure per item would cost memory for as long as the item lives.
 */
export interface AckHandler<C> {
  enqueued?(context: C): void;
  flushed?(context: C): void;
  failed?(context: C, error: unknown): void;
}

const PENDING = 0;
const ENQUEUED = 1;
const SETTLED = 2;

class OnceAck<C> implements Ack {
  private state = PENDING;
  // Dropped once settled, so a settled ack keeps nothing alive.
  private handler: AckHandler<C> | undefined;
  private context: C | undefined;

  constructor(handler: AckHandler<C>, context: C) {
    this.handler = handler;
    this.context = context;
  }

  enqueued(): void {
    if (this.state !== PENDING) return;
    this.state = ENQUEUED;
    this.handler!.enqueued?.(this.context as C);
  }

  flushed(): void {
    if (this.state === SETTLED) return;
    this.enqueued();
    const handler = this.handler;
    const context = this.context as C;
    this.settle();
    handler?.flushed?.(context);
  }

  failed(error: unknown): void {
    if (this.state === SETTLED) return;
    const handler = this.handler;
    const context = this.context as C;
    this.settle();
    handler?.failed?.(context, error);
  }

  private settle(): void {
    this.state = SETTLED;
    this.handler = undefined;
    this.context = undefined;
  }
}

/**
 * An ack that is its item's own state: a stage subclasses it with the fields it keeps per item and
 * passes its shared handler, which each stage calls with the ack itself, at most once, `enqueued`
 * before `flushed` (which implies it). One object per item and stage where `bindAck` makes two; the
 * subclass's fields stay as long as the ack is referenced.
 *
 * @example
 * class Wake extends StateAck<Wake> { upstream: Ack; constructor(stages: AckHandler<Wake>, upstream: Ack) { super(stages); this.upstream = upstream; } }
 * subscriber.next({ value, ack: new Wake(stages, item.ack) });
 */
export class StateAck<S extends StateAck<S>> implements Ack {
  #state = PENDING;
  #handler: AckHandler<S> | undefined;

  constructor(handler: AckHandler<S>) {
    this.#handler = handler;
  }

  enqueued(): void {
    if (this.#state !== PENDING) return;
    this.#state = ENQUEUED;
    this.#handler!.enqueued?.(this as unknown as S);
  }

  flushed(): void {
    if (this.#state === SETTLED) return;
    this.enqueued();
    const handler = this.#handler;
    this.#state = SETTLED;
    this.#handler = undefined;
    handler?.flushed?.(this as unknown as S);
  }

  failed(error: unknown): void {
    if (this.#state === SETTLED) return;
    const handler = this.#handler;
    this.#state = SETTLED;
    this.#handler = undefined;
    handler?.failed?.(this as unknown as S, error);
  }
}

/**
 * Makes an ack whose stages call `handler` with `context`, each at most once, `enqueued` before
 * `flushed` (which implies it). One handler serves every item; the context is the item's own state.
 *
 * @example
 * const wake: AckHandler<Path> = { enqueued: (path) => path.pullNext() };
 * subscriber.next({ value, ack: bindAck(wake, path) });
 */
export function bindAck<C>(handler: AckHandler<C>, context: C): Ack {
  return new OnceAck(handler, context);
}

const CALLBACKS: AckHandler<AckHandlers> = {
  enqueued: (handlers) => handlers.onEnqueued?.(),
  flushed: (handlers) => handlers.onFlushed?.(),
  failed: (handlers, error) => handlers.onFailed?.(error),
};

/**
 * Makes an ack whose stages call the given handlers, each at most once.
 *
 * @example
 * const ack = createAck({ onEnqueued: wakePath, onFlushed: () => tracker.flush(position) });
 */
export function createAck(handlers: AckHandlers = {}): Ack {
  return new OnceAck(CALLBACKS, handlers);
}

const NOOP_ACK: Ack = Object.freeze({
  enqueued() {},
  flushed() {},
  failed() {},
});

/** An ack that does nothing: for items whose durability nobody tracks. */
export function noopAck(): Ack {
  return NOOP_ACK;
}

/**
 * Combines acks: each stage of the result calls that stage on every member, in order.
 * A batch's `flushed()` flushes each member. An empty list gives an ack that does nothing.
 */
export function ackAll(acks: readonly Ack[]): Ack {
  if (acks.length === 0) return NOOP_ACK;
  if (acks.length === 1) return acks[0]!;
  const members = acks.slice();
  return createAck({
    onEnqueued: () => {
      for (const ack of members) ack.enqueued();
    },
    onFlushed: () => {
      for (const ack of members) ack.flushed();
    },
    onFailed: (error) => {
      for (const ack of members) ack.failed(error);
    },
  });
}

/** Pairs a value with an ack (a fresh no-op one when none is given). */
export function acked<T>(value: T, ack: Ack = NOOP_ACK): Acked<T> {
  return { value, ack };
}

/** True when `item` has the shape of an `Acked` (a `value` and an `ack` with the three stages). */
export function isAcked(item: unknown): item is Acked<unknown> {
  if (typeof item !== 'object' || item === null || !('ack' in item) || !('value' in item)) return false;
  const ack = (item as { ack: unknown }).ack;
  return (
    typeof ack === 'object' &&
    ack !== null &&
    typeof (ack as Ack).enqueued === 'function' &&
    typeof (ack as Ack).flushed === 'function' &&
    typeof (ack as Ack).failed === 'function'
  );
}
