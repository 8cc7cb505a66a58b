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
  readonly position: bigint;
  /** Flushed (the ack's own stage is private). */
  done = false;
  /** Its path's state, which also names the path. */
  readonly state: PathProgress<P>;
  readonly inner: Ack;

  constructor(stages: AckHandler<Pending<P>>, position: bigint, state: PathProgress<P>, inner: Ack) {
    super(stages);
    this.position = position;
    this.state = state;
    this.inner = inner;
  }
}

class PathProgress<P> {
  readonly path: P;
  /** Tracked items from `head` on; slots before it are cleared (a flushed item is not retained). */
  readonly pending: (Pending<P> | undefined)[] = [];
  head = 0;
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

  /** The checkpoint as the state now implies it. */
  compute(): bigint | undefined {
    const oldest = this.pending[this.head];
    if (oldest) return oldest.position - 1n;
    return this.open ? this.highest! - 1n : this.highest;
  }

  /** Brings `checkpoint` up to date (it is kept only while someone watches changes) and returns it. */
  refresh(): bigint | undefined {
    const next = this.compute();
    if (next !== undefined) this.checkpoint = next;
    return this.checkpoint;
  }

  /**
   * Drops the flushed items at the front of the queue. A path that always has items in flight
   * never empties its queue, so the front is cut off once it is half the array (amortised O(1)).
   */
  dropFlushedFront(): void {
    const pending = this.pending;
    while (this.head < pending.length && pending[this.head]!.done) pending[this.head++] = undefined;
    if (this.head === pending.length) {
      pending.length = 0;
      this.head = 0;
    } else if (this.head >= 16 && this.head * 2 >= pending.length) {
      pending.splice(0, this.head);
      this.head = 0;
    }
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
 * Tracks items by position on their path and reports checkpoints as their acks are flushed.
 *
 * @example
 * const tracker = new ProgressTracker<string>();
 * const ack = tracker.track('dispatcher-1', 42n, item.ack); // forwards every stage to item.ack
 * tracker.checkpoint$('dispatcher-1').subscribe(ts => writeMetadata(ts));
 */
export class ProgressTracker<P = string> {
  private readonly sharedPositions: boolean;
  private readonly paths = new Map<P, PathProgress<P>>();
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
    const state = this.stateOf(path);
    const { highest } = state;
    // One comparison in the usual case, a position above the path's highest; and only the path's
    // own state is read (not its last item, which a path among a thousand has long left the cache).
    if (highest === undefined || position > highest) {
      state.highest = position;
      state.open = this.sharedPositions;
    } else if (state.head < state.pending.length ? position < highest : position < highest || !state.open) {
      // With items pending the checkpoint is below the oldest, so only going back is wrong; with none
      // it is the highest position (one below it while that position is open), which a new item must pass.
      throw new RangeError(
        state.head < state.pending.length
          ? `ProgressTracker: position ${position} on path ${String(path)} is below ${highest}, the highest tracked or advanced to; positions on a path must not go back`
          : `ProgressTracker: position ${position} on path ${String(path)} is at or below its checkpoint ${state.compute()}, already reported; give items growing positions`,
      );
    }
    state.lastEpoch = this.epoch;
    const entry = new Pending(this.stages, position, state, inner);
    state.pending.push(entry);
    this.update(path, state);
    return entry;
  }

  private readonly stages: AckHandler<Pending<P>> = {
    enqueued: (entry) => entry.inner.enqueued(),
    flushed: (entry) => {
      entry.done = true;
      const { state } = entry;
      if (state.pending[state.head] === entry) {
        state.dropFlushedFront();
        this.update(state.path, state);
      }
      entry.inner.flushed();
    },
    // A failed item stays unflushed: the checkpoint stops below it.
    failed: (entry, error) => entry.inner.failed(error),
  };

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
    if (this.paths.delete(path) || this.unpark(path) !== undefined) this.overallMayHaveMoved();
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
    if (state === undefined || state.head !== state.pending.length || state.highest === undefined) return false;
    // Its checkpoint, which it resumes from (complete: a new item must pass it).
    const checkpoint = state.compute()!;
    this.paths.delete(path);
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
    for (const state of this.paths.values()) {
      for (let i = state.head; i < state.pending.length; i++) if (!state.pending[i]!.done) count++;
    }
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

  private stateOf(path: P): PathProgress<P> {
    let state = this.paths.get(path);
    if (!state) {
      state = new PathProgress(path);
      const parked = this.unpark(path);
      if (parked !== undefined) state.highest = state.checkpoint = parked;
      this.paths.set(path, state);
    }
    return state;
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
    if (least === undefined || least === this.overallValue) return;
    this.overallValue = least;
    this.overallChanges.next(least);
  }
}
