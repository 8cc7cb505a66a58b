/**
 * drainBarrier: orders barrier items (a DDL at commit ts T) against the items of their scope by
 * durability, not by emission: under early wake, "emitted" no longer means "written".
 *
 * Invariant guarded here: a barrier is emitted only after every earlier item (and earlier
 * overlapping barrier) of its scope was flushed downstream, no later item of its scope is emitted
 * before the barrier itself was flushed, per-key order never changes, and items outside every
 * waiting scope are never held.
 */
import { asyncScheduler, Observable, type MonoTypeOperatorFunction, type SchedulerLike } from 'rxjs';
import { createAck, noopAck, StateAck, type Ack, type AckHandler, type Acked } from '../lib/core/ack.ts';
import { checkFunction, InvalidOptionError } from '../lib/core/errors.ts';
import { Queue } from '../lib/core/queue.ts';
import { subscribeLinked } from '../lib/core/subscribeLinked.ts';

const OWNER = 'drainBarrier';

/** The keys a barrier drains (dispatchers, tables), or every key. */
export type DrainScope<K> = readonly K[] | 'all';

export interface DrainBarrierOptions<T, K> {
  /** True for a barrier item (a DDL at commit ts T). */
  isBarrier: (value: T) => boolean;
  /** The keys a barrier drains, or 'all'. */
  scopeOf: (barrier: T) => DrainScope<K>;
  /** The key of an ordinary item (its dispatcher or table). */
  keyOf: (value: T) => K;
  /**
   * Makes a drain marker for a barrier that has to wait: the marker is emitted (with a no-op ack, not
   * awaited, not counted) as soon as every earlier item of the barrier's scope has been emitted, right
   * after the last of them, so downstream batching (batchBy's isBarrier) cuts and flushes them now
   * instead of at its next interval. At most one marker per barrier.
   */
  marker?: (barrier: T) => T;
  /** Clock for drain durations (`now()` in ms). Default `asyncScheduler`. */
  scheduler?: SchedulerLike;
  /** Called when a barrier is emitted, with the ms from its arrival to its emission. */
  onDrained?: (event: { barrier: T; durationMs: number }) => void;
  /** Called synchronously after each change of the stats. */
  onStats?: (stats: Readonly<DrainBarrierStats>) => void;
}

export interface DrainBarrierStats {
  /** Barriers arrived and not yet emitted (draining their scope). */
  waitingBarriers: number;
  /** Ordinary items arrived and not yet emitted (behind a barrier or an earlier held item). */
  heldItems: number;
  /** Ordinary items emitted and not yet flushed. */
  inFlight: number;
  /** Barriers emitted and not yet flushed (holding later items of their scope). */
  activeBarriers: number;
}

/** A scope as a set; 'all' covers every key. */
type ScopeSet<K> = ReadonlySet<K> | 'all';

interface HeldItem<T, K> {
  readonly kind: 'item';
  readonly item: Acked<T>;
  readonly key: K;
}

interface HeldBarrier<T, K> {
  readonly kind: 'barrier';
  readonly item: Acked<T>;
  readonly scope: ScopeSet<K>;
  readonly arrivedAt: number;
  emitted: boolean;
  /** Its drain marker went out (after the last earlier item of its scope was emitted). */
  marked: boolean;
}

type HeldEntry<T, K> = HeldItem<T, K> | HeldBarrier<T, K>;

/** Emitted, unflushed items of one key: a counter shared by them, so a flush needs no lookup. */
interface KeyCount<K> {
  readonly key: K;
  n: number;
}

/** An item emitted and not yet flushed; also the ack it travels with (one object, no closure). */
class InFlightItem<K> extends StateAck<InFlightItem<K>> {
  readonly upstream: Ack;
  /** Its key's counter, which also names the key. */
  readonly count: KeyCount<K>;

  constructor(stages: AckHandler<InFlightItem<K>>, upstream: Ack, count: KeyCount<K>) {
    super(stages);
    this.upstream = upstream;
    this.count = count;
  }
}

/** Keys as a Set (blocked by held entries) or a count Map (active barriers, in-flight items) keeps them. */
interface KeyCover<K> {
  readonly has: (key: K) => boolean;
  readonly size: number;
}

/** True when some key of `scope` is covered (`all` covers every key). */
function touches<K>(scope: ScopeSet<K>, coversAll: boolean, keys: KeyCover<K>): boolean {
  if (scope === 'all') return coversAll || keys.size > 0;
  if (coversAll) return scope.size > 0;
  for (const key of scope) if (keys.has(key)) return true;
  return false;
}

function toScopeSet<K>(scope: DrainScope<K>): ScopeSet<K> {
  if (scope === 'all') return 'all';
  if (Array.isArray(scope)) return new Set(scope);
  throw new TypeError(`${OWNER}: scopeOf returned ${String(scope)}; it must return an array of keys or 'all'`);
}

function describeScope<K>(scope: ScopeSet<K>): string {
  if (scope === 'all') return 'every key';
  const keys = [...scope].map(String);
  const more = keys.length > 10 ? `, … (${keys.length - 10} more)` : '';
  return `keys [${keys.slice(0, 10).join(', ')}${more}]`;
}

function increment<K>(counts: Map<K, number>, key: K): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

function decrement<K>(counts: Map<K, number>, key: K): void {
  const count = counts.get(key)! - 1;
  if (count === 0) counts.delete(key);
  else counts.set(key, count);
}

/**
 * Holds each barrier until every earlier item of its scope has been flushed downstream, emits it,
 * then holds the later items of its scope until the barrier itself has been flushed.
 *
 * Lossless and order-keeping per key: every item is emitted exactly once; only items behind a
 * waiting barrier (or behind an earlier held item of their key) wait, others flow past. Held items
 * wait with their acks untouched, so their paths stay paused: the held FIFO is bounded by what paced
 * sources already sent (one window per path); an unpaced source can grow it without bound.
 * Completion waits until every held entry was emitted, so a downstream that flushes only on
 * completion needs `marker` (or a max delay) to let a waiting barrier drain.
 * A failed ack of an emitted item or barrier is forwarded upstream and errors the output: the
 * barriers of its scope could never drain, and the checkpoint must not move past it.
 *
 * @example
 * events$.pipe(
 *   drainBarrier({
 *     isBarrier: (e) => e.kind === 'ddl',
 *     scopeOf: (ddl) => ddl.dispatchers,
 *     keyOf: (e) => e.dispatcher,
 *     marker: (ddl) => ({ kind: 'drain-marker', commitTs: ddl.commitTs }),
 *     onDrained: ({ durationMs }) => ddlDrainSeconds.observe(durationMs / 1000),
 *   }),
 * );
 *
 * Options: `isBarrier`, `scopeOf` (keys or 'all'), `keyOf`, `marker`, `scheduler` (clock, ms),
 * `onDrained` (durationMs), `onStats` (counts).
 */
export function drainBarrier<T, K>(options: DrainBarrierOptions<T, K>): MonoTypeOperatorFunction<Acked<T>> {
  const isBarrier = checkFunction(OWNER, 'isBarrier', options.isBarrier);
  const scopeOf = checkFunction(OWNER, 'scopeOf', options.scopeOf);
  const keyOf = checkFunction(OWNER, 'keyOf', options.keyOf);
  const marker = options.marker === undefined ? undefined : checkFunction(OWNER, 'marker', options.marker);
  const onDrained = options.onDrained === undefined ? undefined : checkFunction(OWNER, 'onDrained', options.onDrained);
  const onStats = options.onStats === undefined ? undefined : checkFunction(OWNER, 'onStats', options.onStats);
  const scheduler = options.scheduler ?? asyncScheduler;
  if (typeof scheduler.now !== 'function') {
    throw new InvalidOptionError(OWNER, 'scheduler', scheduler, 'a SchedulerLike (with now())');
  }

  return (source) =>
    new Observable<Acked<T>>((subscriber) => {
      /** Emitted, unflushed ordinary items per key (keys at zero are deleted). */
      const inFlightByKey = new Map<K, KeyCount<K>>();
      let inFlight = 0;
      /** Emitted, unflushed barriers: how many cover each key, and how many cover all. */
      const activeByKey = new Map<K, number>();
      let activeAll = 0;
      let activeBarriers = 0;
      /** Arrived, not yet emitted, in arrival order. */
      let held: HeldEntry<T, K>[] = [];
      let heldBarriers = 0;
      /** Decided, not yet delivered: keeps decision order when emissions re-enter. */
      const outbox = new Queue<Acked<T>>();
      /** The drain report of each barrier in the outbox, delivered with it. */
      const drainedOf = new Map<Acked<T>, { barrier: T; durationMs: number }>();
      let draining = false;
      let sourceDone = false;
      let reported: DrainBarrierStats | undefined;

      const activeCovers = (key: K) => activeAll > 0 || (activeByKey.size > 0 && activeByKey.has(key));

      const activate = (scope: ScopeSet<K>) => {
        activeBarriers++;
        if (scope === 'all') activeAll++;
        else for (const key of scope) increment(activeByKey, key);
      };

      const deactivate = (scope: ScopeSet<K>) => {
        activeBarriers--;
        if (scope === 'all') activeAll--;
        else for (const key of scope) decrement(activeByKey, key);
      };

      const fail = (message: string, cause: unknown) => subscriber.error(new Error(message, { cause }));

      /** The stages of every passed item's ack. Its context holds the upstream ack and key, never the value. */
      const itemStages: AckHandler<InFlightItem<K>> = {
        enqueued: ({ upstream }) => upstream.enqueued(),
        flushed: ({ upstream, count }) => {
          if (--count.n === 0) inFlightByKey.delete(count.key);
          inFlight--;
          upstream.flushed();
          scan();
          drain();
        },
        failed: ({ upstream, count: { key } }, error) => {
          upstream.failed(error);
          fail(`${OWNER}: an item with key ${String(key)} failed downstream; barriers whose scope includes ${String(key)} cannot drain`, error);
        },
      };

      const passItem = (item: Acked<T>, key: K) => {
        let count = inFlightByKey.get(key);
        if (count === undefined) inFlightByKey.set(key, (count = { key, n: 0 }));
        count.n++;
        inFlight++;
        outbox.push({ value: item.value, ack: new InFlightItem(itemStages, item.ack, count) });
      };

      const passBarrier = (entry: HeldBarrier<T, K>) => {
        const { item, scope } = entry;
        const upstream = item.ack;
        entry.emitted = true;
        activate(scope);
        const ack = createAck({
          onEnqueued: () => upstream.enqueued(),
          onFlushed: () => {
            deactivate(scope);
            upstream.flushed();
            scan();
            drain();
          },
          onFailed: (error) => {
            upstream.failed(error);
            fail(`${OWNER}: a barrier over ${describeScope(scope)} failed downstream; later items in its scope cannot pass it`, error);
          },
        });
        const outgoing = { value: item.value, ack };
        drainedOf.set(outgoing, { barrier: item.value, durationMs: scheduler.now() - entry.arrivedAt });
        outbox.push(outgoing);
      };

      // Pure decision pass over the held FIFO (never calls out): moves every entry that may go now
      // to the outbox, in order, while collecting the keys blocked by entries still held earlier;
      // barriers that now wait only for emitted items are noted for their marker.
      const scan = () => {
        if (held.length === 0) return;
        let blockedAll = false;
        const blockedKeys = new Set<K>();
        const kept: HeldEntry<T, K>[] = [];
        for (const entry of held) {
          if (entry.kind === 'item') {
            if (!blockedAll && !blockedKeys.has(entry.key) && !activeCovers(entry.key)) {
              passItem(entry.item, entry.key);
              continue;
            }
            // A held item holds the later items of its key: per-key order never changes.
            blockedKeys.add(entry.key);
          } else {
            const { scope } = entry;
            if (
              !touches(scope, blockedAll, blockedKeys) &&
              !touches(scope, activeAll > 0, activeByKey) &&
              !touches(scope, false, inFlightByKey)
            ) {
              heldBarriers--;
              passBarrier(entry);
              continue;
            }
            // Waiting only for items already emitted: send the marker after them, once.
            if (
              marker &&
              !entry.marked &&
              !touches(scope, blockedAll, blockedKeys) &&
              !touches(scope, activeAll > 0, activeByKey)
            ) {
              entry.marked = true;
              markers.push(entry);
            }
            if (scope === 'all') blockedAll = true;
            else for (const key of scope) blockedKeys.add(key);
          }
          kept.push(entry);
        }
        held = kept;
      };

      /** Barriers whose marker is due, in order (noted by scan, sent by sendMarkers). */
      const markers: HeldBarrier<T, K>[] = [];
      const sendMarkers = () => {
        for (const entry of markers.splice(0)) {
          let value: T;
          try {
            value = marker!(entry.item.value);
          } catch (error) {
            subscriber.error(error);
            return;
          }
          outbox.push({ value, ack: noopAck() });
        }
      };

      const reportStats = () => {
        if (!onStats) return;
        const stats = { waitingBarriers: heldBarriers, heldItems: held.length - heldBarriers, inFlight, activeBarriers };
        if (
          reported &&
          reported.waitingBarriers === stats.waitingBarriers &&
          reported.heldItems === stats.heldItems &&
          reported.inFlight === stats.inFlight &&
          reported.activeBarriers === stats.activeBarriers
        ) {
          return;
        }
        reported = stats;
        try {
          onStats(stats);
        } catch (error) {
          subscriber.error(error);
        }
      };

      // Delivers the outbox in decision order; a re-entrant call leaves it to the outer loop.
      const drain = () => {
        // Markers noted by the last scan go after the items it let through (a running loop sends them).
        if (markers.length > 0) sendMarkers();
        if (draining) return;
        draining = true;
        try {
          while (outbox.length > 0 && !subscriber.closed) {
            const item = outbox.shift()!;
            // Only barriers have a report; most items pass while there is none to look up.
            const drained = drainedOf.size === 0 ? undefined : drainedOf.get(item);
            if (drained) drainedOf.delete(item);
            if (drained && onDrained) {
              try {
                onDrained(drained);
              } catch (error) {
                subscriber.error(error);
                return;
              }
            }
            subscriber.next(item);
          }
        } finally {
          draining = false;
        }
        if (subscriber.closed) return;
        reportStats();
        if (sourceDone && held.length === 0 && outbox.length === 0) subscriber.complete();
      };

      const arrive = (item: Acked<T>) => {
        let barrier: boolean;
        let key: K | undefined;
        let scope: ScopeSet<K> | undefined;
        try {
          barrier = isBarrier(item.value);
          if (barrier) scope = toScopeSet(scopeOf(item.value));
          else key = keyOf(item.value);
        } catch (error) {
          subscriber.error(error);
          return;
        }
        if (!barrier && held.length === 0 && !activeCovers(key as K)) {
          // The usual case, nothing held and no barrier over its key: passed without a held entry.
          passItem(item, key as K);
        } else {
          held.push(
            barrier
              ? { kind: 'barrier', item, scope: scope!, arrivedAt: scheduler.now(), emitted: false, marked: false }
              : { kind: 'item', item, key: key as K },
          );
          if (barrier) heldBarriers++;
          scan();
        }
        drain();
      };

      const observer = {
        next: arrive,
        error: (error: unknown) => subscriber.error(error),
        complete: () => {
          sourceDone = true;
          drain();
        },
      };
      subscribeLinked(source, observer, (link) => subscriber.add(link));

      return () => {
        held = [];
        heldBarriers = 0;
        outbox.clear();
        drainedOf.clear();
      };
    });
}
