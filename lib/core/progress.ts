/**
 * ProgressTracker: turns flushed acks back into checkpoints, per path and overall.
 *
 * A path's checkpoint is the greatest position P such that every item tracked on that path at or
 * below P has been flushed: the position just below the oldest unflushed item, or, with nothing
 * unflushed, the highest position tracked or advanced to. Invariant guarded here: a checkpoint never
 * reaches an unflushed item and never moves backwards. That needs positions that do not go back
 * (checked), and no new item at or below a checkpoint already reported (checked: an error, since
 * accepting it would let a restart skip it).
 *
 * With `sharedPositions`, several items may share a position (the rows of one transaction at one
 * commit ts), so a position is complete only once a higher one or `advance` says so: with nothing
 * unflushed, the checkpoint is one below the highest item position until then.
 *
 * Items come with an ack each (`track`: flushed in any order) or, on paths whose items become
 * durable in the order they came, without one (`admit`, then `durable`). Either way a path keeps
 * its items' positions in a ring of int64 slots, so items that wait long for durability are not
 * objects the collector must copy.
 */
import { Observable, Subject } from 'rxjs';
import { noopAck, StateAck, type Ack, type AckHandler } from './ack.ts';

/** A checkpoint change: the path's new checkpoint position. */
export interface CheckpointChange<P> {
  readonly path: P;
  readonly position: bigint;
}

/** A tracked item, which is also the ack that reports it: one object per item. */
class Pending<P> extends StateAck<Pending<P>> {
  /** Its path's state, which also names the path. */
  readonly state: PathProgress<P>;
  /** Its item number on the path (its position is kept by the path). */
  readonly item: number;
  readonly inner: Ack;

  constructor(stages: AckHandler<Pending<P>>, state: PathProgress<P>, item: number, inner: Ack) {
    super(stages);
    this.state = state;
    this.item = item;
    this.inner = inner;
  }
}

/** Ring slots a path starts with. */
const MIN_SLOTS = 16;
/**
 * A path's rings beyond this many slots go back to MIN_SLOTS once it is empty (a path that had a
 * burst in flight); smaller ones stay, as a path empties and refills with every batch written.
 */
const KEPT_SLOTS = 256;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

class PathProgress<P> {
  readonly path: P;
  /**
   * The positions of items `head` to `tail - 1` (item numbers, counted per path), and whether each
   * is flushed, in rings of `mask + 1` slots: no object and no bigint kept per item, so items that
   * wait long for durability cost the collector nothing (a flushed item's slot is not retained).
   */
  positions = new BigInt64Array(MIN_SLOTS);
  flushed = new Uint8Array(MIN_SLOTS);
  mask = MIN_SLOTS - 1;
  head = 0;
  tail = 0;
  /** Its items come through `admit` and `durable` rather than acks (decided while it is empty). */
  ordered = false;
  /** Highest position tracked or advanced to; undefined before the first. */
  highest: bigint | undefined;
  /**
   * With shared positions: more items may still come at `highest` (it came from an item, not from
   * `advance` or a parked checkpoint). Always false otherwise.
   */
  open = false;
  checkpoint: bigint | undefined;
  /** The tracker's epoch when the path last tracked an item (see parkIdle). */
  lastEpoch = 0;

  constructor(path: P) {
    this.path = path;
  }

  get empty(): boolean {
    return this.head === this.tail;
  }

  /** Adds an item at `position` (which `add` checked fits an int64 slot); returns its item number. */
  push(position: bigint): number {
    if (this.tail - this.head > this.mask) this.resize(2 * (this.mask + 1));
    const item = this.tail++;
    this.positions[item & this.mask] = position;
    this.flushed[item & this.mask] = 0;
    return item;
  }

  /** Marks item `item` flushed; drops the flushed items at the front when it was the oldest. */
  flush(item: number): boolean {
    this.flushed[item & this.mask] = 1;
    if (item !== this.head) return false;
    do this.head++;
    while (this.head < this.tail && this.flushed[this.head & this.mask] === 1);
    this.settleIfEmpty();
    return true;
  }

  /** Drops the `count` oldest items, flushed in the order they came (`durable`). */
  dropOldest(count: number): void {
    this.head += count;
    this.settleIfEmpty();
  }

  /** The checkpoint as the state now implies it. */
  compute(): bigint | undefined {
    if (this.head < this.tail) return this.positions[this.head & this.mask]! - 1n;
    return this.open ? this.highest! - 1n : this.highest;
  }

  /** Brings `checkpoint` up to date (it is kept only while someone watches changes) and returns it. */
  refresh(): bigint | undefined {
    const next = this.compute();
    if (next !== undefined) this.checkpoint = next;
    return this.checkpoint;
  }

  /** Items not yet flushed. */
  unflushed(): number {
    let count = 0;
    for (let item = this.head; item < this.tail; item++) if (this.flushed[item & this.mask] === 0) count++;
    return count;
  }

  /**
   * Emptied: item numbers start again at 0 (no ack of an earlier item can still report, every one
   * having settled), and rings grown for a burst go back to their first size (see KEPT_SLOTS).
   */
  private settleIfEmpty(): void {
    if (this.head !== this.tail) return;
    this.head = this.tail = 0;
    if (this.mask >= KEPT_SLOTS) this.resize(MIN_SLOTS);
  }

  private resize(slots: number): void {
    const positions = new BigInt64Array(slots);
    const flushed = new Uint8Array(slots);
    const mask = slots - 1;
    for (let item = this.head; item < this.tail; item++) {
      positions[item & mask] = this.positions[item & this.mask]!;
      flushed[item & mask] = this.flushed[item & this.mask]!;
    }
    this.positions = positions;
    this.flushed = flushed;
    this.mask = mask;
  }
}

export interface ProgressTrackerOptions {
  /**
   * Items may share a position (rows of one transaction at one commit ts): a path's checkpoint stays
   * one below its highest item position until a higher position or `advance` completes it. Default false.
   */
  sharedPositions?: boolean;
}

/**
 * Tracks items by position on their path and reports checkpoints as they become durable (their acks
 * flushed, or `durable` reported).
 *
 * @example
 * const tracker = new ProgressTracker<string>();
 * const ack = tracker.track('dispatcher-1', 42n, item.ack); // forwards every stage to item.ack
 * tracker.checkpoint$('dispatcher-1').subscribe(ts => writeMetadata(ts));
 * // A path whose items a single writer makes durable in order: no ack per item.
 * tracker.admit('partition-0', offset);
 * tracker.durable('partition-0'); // once the oldest admitted item of partition-0 is written
 */
export class ProgressTracker<P = string> {
  private readonly sharedPositions: boolean;
  private readonly paths = new Map<P, PathProgress<P>>();
  /** The path looked up last, and its state: items come in runs of one path (turns). */
  private lastPath: P | undefined;
  private lastState: PathProgress<P> | undefined;
  /** Idle paths reduced to their checkpoint (see park), and the least of them (undefined: recompute). */
  private readonly parked = new Map<P, bigint>();
  private parkedLeast: bigint | undefined;
  private parkedLeastStale = false;
  private readonly changes = new Subject<CheckpointChange<P>>();
  private readonly overallChanges = new Subject<bigint>();
  private overallValue: bigint | undefined;
  /**
   * The overall minimum may have moved. It is recomputed (over every path) when read, or at once
   * while someone watches overall$: a flush per item must not cost a pass over a thousand paths.
   */
  private overallStale = false;
  /** Advanced by parkIdle; each path remembers the epoch of its last item. */
  private epoch = 0;

  constructor(options: ProgressTrackerOptions = {}) {
    this.sharedPositions = options.sharedPositions === true;
  }

  /**
   * Registers an item at `position` on `path` and returns the ack that reports it: its `flushed()`
   * marks the item durable, and every stage is forwarded to `inner` when given.
   * Throws when `position` is below the last tracked one, or at or below the reported checkpoint.
   */
  track(path: P, position: bigint, inner: Ack = noopAck()): Ack {
    const state = this.add(path, position, false);
    const entry = new Pending(this.stages, state, state.push(position), inner);
    this.update(path, state);
    return entry;
  }

  /**
   * Registers an item at `position` on `path` without an ack, for a path whose items become durable
   * in the order they were admitted (a single writer, first in first out): report each with
   * `durable(path)`. Nothing is kept per item but its position in the path's ring, where `track`
   * keeps an ack object too. A path takes items either way, not both at once.
   * Throws as `track` does.
   */
  admit(path: P, position: bigint): void {
    const state = this.add(path, position, true);
    state.push(position);
    this.update(path, state);
  }

  /**
   * The `count` oldest items admitted on `path` are durable. Throws when the path has fewer admitted
   * items that are not yet durable: a writer reporting more than it was given is a bug to stop at.
   */
  durable(path: P, count = 1): void {
    const state = this.find(path);
    const waiting = state === undefined || !state.ordered ? 0 : state.tail - state.head;
    if (!(count >= 1 && count <= waiting)) {
      throw new RangeError(`ProgressTracker: path ${String(path)}: ${count} reported durable, but ${waiting} admitted items are waiting`);
    }
    state!.dropOldest(count);
    this.update(path, state!);
  }

  private readonly stages: AckHandler<Pending<P>> = {
    enqueued: (entry) => entry.inner.enqueued(),
    flushed: (entry) => {
      const { state } = entry;
      if (state.flush(entry.item)) this.update(state.path, state);
      entry.inner.flushed();
    },
    // A failed item stays unflushed: the checkpoint stops below it.
    failed: (entry, error) => entry.inner.failed(error),
  };

  /** The checks and bookkeeping of an item added at `position`; returns its path's state. */
  private add(path: P, position: bigint, ordered: boolean): PathProgress<P> {
    const state = this.stateOf(path);
    if (state.ordered !== ordered && !state.empty) {
      throw new Error(`ProgressTracker: path ${String(path)} has items ${state.ordered ? 'admitted' : 'tracked with acks'} in flight; a path takes items one way at a time`);
    }
    const { highest } = state;
    // One comparison in the usual case, a position above the path's highest; and only the path's
    // own state is read (not its last item, which a path among a thousand has long left the cache).
    if (highest === undefined || position > highest) {
      if (position > INT64_MAX || position < INT64_MIN) {
        throw new RangeError(`ProgressTracker: position ${position} on path ${String(path)} is outside the signed 64-bit range positions are kept in`);
      }
      state.highest = position;
      state.open = this.sharedPositions;
    } else if (!state.empty ? position < highest : position < highest || !state.open) {
      // With items pending the checkpoint is below the oldest, so only going back is wrong; with none
      // it is the highest position (one below it while that position is open), which a new item must pass.
      throw new RangeError(
        !state.empty
          ? `ProgressTracker: position ${position} on path ${String(path)} is below ${highest}, the highest tracked or advanced to; positions on a path must not go back`
          : `ProgressTracker: position ${position} on path ${String(path)} is at or below its checkpoint ${state.compute()}, already reported; give items growing positions`,
      );
    }
    state.ordered = ordered;
    state.lastEpoch = this.epoch;
    return state;
  }

  /**
   * Declares that no item at or below `position` will be tracked on `path` (a resolved position),
   * so an idle path does not hold the overall checkpoint back.
   */
  advance(path: P, position: bigint): void {
    const state = this.stateOf(path);
    if (state.highest === undefined || position >= state.highest) {
      state.highest = position;
      state.open = false;
    }
    this.update(path, state);
  }

  /** Forgets a closed path: it no longer counts toward the overall checkpoint. */
  remove(path: P): void {
    if (this.forget(path) || this.unpark(path) !== undefined) this.overallMayHaveMoved();
  }

  /**
   * Starts a new epoch and parks (see park) every path that tracked no item in the last
   * `idleEpochs` epochs and has every item flushed; returns how many. Call it periodically (each
   * call is one epoch): the work is one look at each path with state, never at parked ones.
   */
  parkIdle(idleEpochs: number): number {
    const epoch = ++this.epoch;
    let parked = 0;
    // Deleting the entry being visited is safe while iterating a Map.
    for (const [path, state] of this.paths) if (epoch - state.lastEpoch > idleEpochs && this.park(path)) parked++;
    return parked;
  }

  /**
   * Reduces an idle path to its checkpoint: its state is dropped, but the checkpoint still counts
   * toward the overall one (without a resolved position the path may yet send an item just above
   * it), and tracking on the path again resumes from it. Only a path with every item flushed is
   * parked; returns whether it was.
   */
  park(path: P): boolean {
    const state = this.paths.get(path);
    if (state === undefined || !state.empty || state.highest === undefined) return false;
    // Its checkpoint, which it resumes from (complete: a new item must pass it).
    const checkpoint = state.compute()!;
    this.forget(path);
    this.parked.set(path, checkpoint);
    if (!this.parkedLeastStale && (this.parkedLeast === undefined || checkpoint < this.parkedLeast)) this.parkedLeast = checkpoint;
    return true;
  }

  /** Paths with state, and paths parked (reduced to their checkpoint). */
  get pathCounts(): { active: number; parked: number } {
    return { active: this.paths.size, parked: this.parked.size };
  }

  /** Every known path with its highest position, when it has one (a parked path: its checkpoint). */
  *highestPositions(): IterableIterator<[P, bigint]> {
    for (const [path, state] of this.paths) if (state.highest !== undefined) yield [path, state.highest];
    yield* this.parked;
  }

  /** The highest position tracked or advanced to on `path` (parked: its checkpoint), or undefined. */
  highest(path: P): bigint | undefined {
    return this.paths.get(path)?.highest ?? this.parked.get(path);
  }

  /** The path's checkpoint, or undefined before anything was tracked or advanced on it. */
  checkpoint(path: P): bigint | undefined {
    const state = this.paths.get(path);
    return state === undefined ? this.parked.get(path) : state.refresh();
  }

  /** The least checkpoint over all known paths, or undefined when there is none. */
  get overall(): bigint | undefined {
    this.refreshOverall();
    return this.overallValue;
  }

  /** Items tracked and not yet flushed, over all paths. */
  get unflushed(): number {
    let count = 0;
    for (const state of this.paths.values()) count += state.unflushed();
    return count;
  }

  /** The path's checkpoint now (when known), then each time it moves. */
  checkpoint$(path: P): Observable<bigint> {
    return new Observable<bigint>((subscriber) => {
      const current = this.checkpoint(path);
      if (current !== undefined) subscriber.next(current);
      return this.changes.subscribe((change) => {
        if (change.path === path) subscriber.next(change.position);
      });
    });
  }

  /** Every checkpoint change of every path. */
  get changes$(): Observable<CheckpointChange<P>> {
    return this.changes.asObservable();
  }

  /** The overall checkpoint now (when known), then each time it moves. */
  get overall$(): Observable<bigint> {
    return new Observable<bigint>((subscriber) => {
      this.refreshOverall();
      if (this.overallValue !== undefined) subscriber.next(this.overallValue);
      return this.overallChanges.subscribe(subscriber);
    });
  }

  private find(path: P): PathProgress<P> | undefined {
    return path === this.lastPath && this.lastState !== undefined ? this.lastState : this.paths.get(path);
  }

  private stateOf(path: P): PathProgress<P> {
    let state = this.find(path);
    if (!state) {
      state = new PathProgress(path);
      const parked = this.unpark(path);
      if (parked !== undefined) state.highest = state.checkpoint = parked;
      this.paths.set(path, state);
    }
    this.lastPath = path;
    this.lastState = state;
    return state;
  }

  /** Drops a path's state; false when it had none. */
  private forget(path: P): boolean {
    if (path === this.lastPath) this.lastState = undefined;
    return this.paths.delete(path);
  }

  /** Takes a path out of the parked set; its checkpoint, or undefined when it was not parked. */
  private unpark(path: P): bigint | undefined {
    const parked = this.parked.get(path);
    if (parked === undefined) return undefined;
    this.parked.delete(path);
    if (parked === this.parkedLeast) this.parkedLeastStale = true;
    return parked;
  }

  /** The least parked checkpoint; recomputed over the parked set only after the least one left it. */
  private leastParked(): bigint | undefined {
    if (this.parkedLeastStale) {
      this.parkedLeastStale = false;
      this.parkedLeast = undefined;
      for (const checkpoint of this.parked.values()) {
        if (this.parkedLeast === undefined || checkpoint < this.parkedLeast) this.parkedLeast = checkpoint;
      }
    }
    return this.parked.size === 0 ? undefined : this.parkedLeast;
  }

  /**
   * A path's items or highest position changed. Nobody watching: the checkpoints are worked out
   * when read (a bigint and a pass per change would cost more than the rest of tracking).
   */
  private update(path: P, state: PathProgress<P>): void {
    if (!this.changes.observed && !this.overallChanges.observed) {
      this.overallStale = true;
      return;
    }
    const next = state.compute();
    if (next === undefined || next === state.checkpoint) return;
    const previous = state.checkpoint;
    state.checkpoint = next;
    this.changes.next({ path, position: next });
    // The overall minimum can only change when this path was (or now is) the minimum.
    if (this.overallStale || previous === undefined || previous === this.overallValue || next < (this.overallValue ?? next + 1n)) {
      this.overallMayHaveMoved();
    }
  }

  private overallMayHaveMoved(): void {
    this.overallStale = true;
    if (this.overallChanges.observed) this.refreshOverall();
  }

  private refreshOverall(): void {
    if (!this.overallStale) return;
    this.overallStale = false;
    let least = this.leastParked();
    for (const state of this.paths.values()) {
      const checkpoint = state.refresh();
      if (checkpoint !== undefined && (least === undefined || checkpoint < least)) least = checkpoint;
    }
    if (least === this.overallValue) return;
    // Undefined once no path is left (all removed): nothing to report, and no stale value either.
    this.overallValue = least;
    if (least !== undefined) this.overallChanges.next(least);
  }
}
