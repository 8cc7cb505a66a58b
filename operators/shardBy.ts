/**
 * shardBy: routes items by a stable hash of their key to one of N shards; each shard runs its
 * items one at a time in arrival order, shards run in parallel (per-key serial work, such as one
 * CDC dispatcher's encoding, without serialising unrelated keys).
 *
 * Invariant guarded here: per shard, the inner of an item is subscribed only after the inner of the
 * previous item of that shard completed. Only shards with work have state (the active set): a
 * shard's state is created with its first item and deleted as soon as nothing runs or waits in it,
 * and nothing ever iterates over all `shards`. Items waiting in shards never exceed `maxBuffered`.
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

export interface ShardByOptions<T, R> {
  /** Number of shards: a whole number >= 1. */
  shards: number;
  /** The key whose hash picks the shard; equal keys (by string form) share a shard. */
  keyOf: (value: T) => string | number;
  /** Maps an item and its shard to the inner whose values are emitted. */
  project: (value: T, shard: number) => ObservableInput<R>;
  /** Bound on items waiting behind a running item in their shard, over all shards. Default 10000. */
  maxBuffered?: number;
  /** Called synchronously after each change of the stats. */
  onStats?: (stats: Readonly<ShardStats>) => void;
}

export interface ShardStats {
  /** Shards with an item running or waiting. */
  activeShards: number;
  /** Items waiting behind a running item, over all shards. */
  buffered: number;
  /** Idle -> active transitions since subscribe. */
  activations: number;
}

export const SHARD_BY_DEFAULTS = { maxBuffered: 10_000 } as const;

const OWNER = 'shardBy';
const FNV_OFFSET_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * The shard of a key: FNV-1a 32-bit over the UTF-8 bytes of the key's string form, mod `shards`.
 * Stable across processes and versions (a number key hashes as its `String(key)`, so 7 and '7'
 * share a shard).
 *
 * @example
 * shardOf('dispatcher-3', 16) // the same shard on every run
 */
export function shardOf(key: string | number, shards: number): number {
  checkNumber('shardOf', 'shards', shards, { min: 1, integer: true });
  return hashKey(key) % shards;
}

/** FNV-1a 32-bit of the UTF-8 encoding of String(key), encoded on the fly (no allocation). */
function hashKey(key: string | number): number {
  const text = typeof key === 'string' ? key : String(key);
  let hash = FNV_OFFSET_BASIS;
  for (let i = 0; i < text.length; i++) {
    let code = text.charCodeAt(i);
    if (code < 0x80) {
      hash = Math.imul(hash ^ code, FNV_PRIME);
      continue;
    }
    if (code >= 0xd800 && code < 0xdc00 && i + 1 < text.length) {
      const low = text.charCodeAt(i + 1);
      if (low >= 0xdc00 && low < 0xe000) {
        code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
        i++;
      }
    }
    // A lone surrogate encodes as U+FFFD, as TextEncoder does.
    if (code >= 0xd800 && code < 0xe000) code = 0xfffd;
    if (code < 0x800) {
      hash = Math.imul(hash ^ (0xc0 | (code >> 6)), FNV_PRIME);
    } else if (code < 0x10000) {
      hash = Math.imul(hash ^ (0xe0 | (code >> 12)), FNV_PRIME);
      hash = Math.imul(hash ^ (0x80 | ((code >> 6) & 0x3f)), FNV_PRIME);
    } else {
      hash = Math.imul(hash ^ (0xf0 | (code >> 18)), FNV_PRIME);
      hash = Math.imul(hash ^ (0x80 | ((code >> 12) & 0x3f)), FNV_PRIME);
      hash = Math.imul(hash ^ (0x80 | ((code >> 6) & 0x3f)), FNV_PRIME);
    }
    hash = Math.imul(hash ^ (0x80 | (code & 0x3f)), FNV_PRIME);
  }
  return hash >>> 0;
}

/**
 * Routes each item by `shardOf(keyOf(item), shards)`; each shard subscribes to `project(item,
 * shard)` for one item at a time, in arrival order, and takes its next item when that inner
 * completed. Shards run in parallel; values are emitted as they arrive (order kept per shard,
 * shards interleave).
 *
 * Lossless while within `maxBuffered`: every item is projected once and every inner value emitted.
 * When an item must wait behind its shard's running item and `maxBuffered` items already wait, the
 * output fails with `BufferOverflowError`. With `Acked` items from paced sources the queue stays
 * small: each path sends its next item only after downstream called `enqueued()`, which this
 * operator leaves to downstream. Errors of the source, `keyOf`, `project` or an inner fail the
 * output at once; waiting items are dropped. Completes when the source completed and every shard
 * is idle. Unsubscribing tears down every running inner.
 *
 * @example
 * events$.pipe(shardBy({ shards: 16, keyOf: (e) => e.dispatcher, project: (e) => encode(e) }))
 *
 * @param options.shards number of shards (whole number >= 1); only shards with work cost anything.
 * @param options.keyOf the item's key (string or number).
 * @param options.project maps an item and its shard to an `ObservableInput`.
 * @param options.maxBuffered items waiting in shards, over all shards (count); default 10000.
 * @param options.onStats receives `{ activeShards, buffered, activations }` after each change.
 */
export function shardBy<T, R>(options: ShardByOptions<T, R>): OperatorFunction<T, R> {
  const settings: ShardSettings<T, R> = {
    shards: checkNumber(OWNER, 'shards', options.shards, { min: 1, integer: true }),
    keyOf: checkFunction(OWNER, 'keyOf', options.keyOf),
    project: checkFunction(OWNER, 'project', options.project),
    maxBuffered: checkNumber(OWNER, 'maxBuffered', options.maxBuffered ?? SHARD_BY_DEFAULTS.maxBuffered, {
      min: 1,
      integer: true,
    }),
    onStats: options.onStats === undefined ? undefined : checkFunction(OWNER, 'onStats', options.onStats),
  };
  return (source) =>
    new Observable<R>((subscriber) => {
      const run = new ShardRun(subscriber, settings);
      // Teardown and the source's subscriber belong to `subscriber` before the source starts, so
      // unsubscribing downstream stops even a synchronous source or inner in mid-emission.
      subscriber.add(() => run.teardown());
      subscribeLinked(source, run, (link) => subscriber.add(link));
    });
}

interface ShardSettings<T, R> {
  readonly shards: number;
  readonly keyOf: (value: T) => string | number;
  readonly project: (value: T, shard: number) => ObservableInput<R>;
  readonly maxBuffered: number;
  readonly onStats: ((stats: Readonly<ShardStats>) => void) | undefined;
}

/** What a shard reports its inner's notifications to. */
interface ShardOwner<T, R> {
  innerNext(value: R): void;
  innerComplete(shard: ActiveShard<T, R>): void;
  fail(error: unknown): void;
}

/**
 * An active shard: its waiting items and its running inner. It is the observer of each of its
 * inners in turn; a completed inner's subscriber is closed, so it never hears from an earlier one.
 */
class ActiveShard<T, R> implements Observer<R> {
  readonly owner: ShardOwner<T, R>;
  readonly shard: number;
  readonly waiting = new Queue<T>();
  running = false;
  /** True while `ShardRun.runShard` loops over this shard: an inner completing meanwhile leaves the next start to it. */
  looping = false;
  /** The running inner's subscriber, known before the inner starts so teardown can stop it mid-emission. */
  subscription: Subscription | null = null;

  constructor(owner: ShardOwner<T, R>, shard: number) {
    this.owner = owner;
    this.shard = shard;
  }

  subscribeInner(input: ObservableInput<R>): void {
    this.running = true;
    subscribeLinked(input, this, (link) => (this.subscription = link));
  }

  /** Ends the finished inner's subscription now, so its teardown runs before the next inner starts. */
  release(): void {
    this.running = false;
    const subscription = this.subscription;
    this.subscription = null;
    subscription?.unsubscribe();
  }

  next(value: R): void {
    this.owner.innerNext(value);
  }

  error(error: unknown): void {
    this.owner.fail(error);
  }

  complete(): void {
    this.owner.innerComplete(this);
  }
}

/** The state of one subscription: the source's observer and the active shards. */
class ShardRun<T, R> implements Observer<T>, ShardOwner<T, R> {
  private readonly subscriber: Subscriber<R>;
  private readonly settings: ShardSettings<T, R>;
  private readonly active = new Map<number, ActiveShard<T, R>>();
  private buffered = 0;
  private activations = 0;
  private sourceDone = false;

  constructor(subscriber: Subscriber<R>, settings: ShardSettings<T, R>) {
    this.subscriber = subscriber;
    this.settings = settings;
  }

  next(value: T): void {
    let shardIndex: number;
    try {
      shardIndex = hashKey(this.settings.keyOf(value)) % this.settings.shards;
    } catch (error) {
      this.subscriber.error(error);
      return;
    }
    const shard = this.active.get(shardIndex);
    if (shard === undefined) {
      const activated = new ActiveShard<T, R>(this, shardIndex);
      this.active.set(shardIndex, activated);
      this.activations++;
      this.reportStats();
      this.runShard(activated, value);
    } else if (this.buffered >= this.settings.maxBuffered) {
      this.subscriber.error(
        new BufferOverflowError(
          OWNER,
          'maxBuffered',
          this.settings.maxBuffered,
          `shard ${shardIndex} is busy and items arrive faster than shards complete them; raise maxBuffered or shards, or pace the source (Acked items from a paced source)`,
        ),
      );
    } else {
      shard.waiting.push(value);
      this.buffered++;
      this.reportStats();
    }
  }

  error(error: unknown): void {
    this.subscriber.error(error);
  }

  complete(): void {
    this.sourceDone = true;
    if (this.active.size === 0) this.subscriber.complete();
  }

  innerNext(value: R): void {
    if (!this.subscriber.closed) this.subscriber.next(value);
  }

  innerComplete(shard: ActiveShard<T, R>): void {
    if (this.subscriber.closed) return;
    shard.release();
    if (shard.looping) return;
    if (shard.waiting.length > 0) {
      this.runShard(shard, this.takeWaiting(shard));
    } else {
      this.deactivate(shard);
    }
  }

  fail(error: unknown): void {
    this.subscriber.error(error);
  }

  teardown(): void {
    for (const shard of this.active.values()) {
      shard.release();
      shard.waiting.clear();
    }
    this.active.clear();
    this.buffered = 0;
  }

  /**
   * Runs `value` in its shard, then each waiting item whose predecessor completed synchronously,
   * in a loop rather than by recursion (a long queue of synchronous inners must not grow the stack).
   */
  private runShard(shard: ActiveShard<T, R>, value: T): void {
    shard.looping = true;
    for (;;) {
      if (this.subscriber.closed) return;
      let input: ObservableInput<R>;
      try {
        input = this.settings.project(value, shard.shard);
      } catch (error) {
        this.subscriber.error(error);
        return;
      }
      shard.subscribeInner(input);
      if (shard.running || shard.waiting.length === 0) break;
      value = this.takeWaiting(shard);
    }
    shard.looping = false;
    if (!shard.running && !this.subscriber.closed) this.deactivate(shard);
  }

  private takeWaiting(shard: ActiveShard<T, R>): T {
    const value = shard.waiting.shift() as T;
    this.buffered--;
    this.reportStats();
    return value;
  }

  private deactivate(shard: ActiveShard<T, R>): void {
    this.active.delete(shard.shard);
    this.reportStats();
    if (this.sourceDone && this.active.size === 0 && !this.subscriber.closed) this.subscriber.complete();
  }

  private reportStats(): void {
    const onStats = this.settings.onStats;
    if (onStats === undefined) return;
    try {
      onStats({ activeShards: this.active.size, buffered: this.buffered, activations: this.activations });
    } catch (error) {
      this.subscriber.error(error);
    }
  }
}
