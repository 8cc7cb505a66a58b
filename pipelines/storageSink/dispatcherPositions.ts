/**
 * The sink's progress per dispatcher: each event gets a position (its commit ts, then its place among
 * the events of that ts), tracked until durable; the `metadata` checkpoint is the least of them.
 * Dispatchers idle for a while are reduced to their checkpoint.
 *
 * Invariants guarded here: the checkpoint reaches a commit ts only once every event of it on every
 * dispatcher is durable; an idle dispatcher's checkpoint still counts (events carry no resolved
 * ts); a dispatcher back from idleness continues after its last position.
 */
import type { Ack } from '../../lib/core/ack.ts';
import { ProgressTracker } from '../../lib/core/progress.ts';

/** Events of one commit ts on one dispatcher get consecutive positions below the next ts. */
const SEQUENCE_BITS = 20n;
const SEQUENCE_MASK = (1n << SEQUENCE_BITS) - 1n;
const MAX_SEQUENCE = Number(SEQUENCE_MASK);
const DDL_PATH = 'ddl@';

interface PathSequence {
  commitTs: bigint;
  next: number;
  /** The reclaim sweep in which the path was last seen. */
  sweep: number;
}

export class DispatcherPositions {
  private readonly tracker = new ProgressTracker<string>();
  /** Per active path: the last commit ts, the next sequence at it, the sweep it was last seen in. */
  private readonly sequences = new Map<string, PathSequence>();
  /** Active paths, least recently seen first (moved to the back at most once per sweep). */
  private readonly seen = new Map<string, PathSequence>();
  private sweep = 0;
  private readonly owner: string;

  constructor(owner: string) {
    this.owner = owner;
  }

  /** Tracks a row of `dispatcherId` at `commitTs`; the returned ack reports its durability. */
  trackRow(dispatcherId: string, commitTs: bigint, ack: Ack): Ack {
    return this.track(dispatcherId, commitTs, ack);
  }

  /**
   * Tracks a DDL as a path of its own (`line` makes it unique), forgotten once durable, so it
   * holds the checkpoint only while it is on its way.
   */
  trackDdl(commitTs: bigint, line: number, ack: Ack): Ack {
    const path = `${DDL_PATH}${commitTs}#${line}`;
    const tracked = this.track(path, commitTs, ack);
    return {
      enqueued: () => tracked.enqueued(),
      flushed: () => {
        tracked.flushed();
        this.tracker.remove(path);
        this.sequences.delete(path);
        this.seen.delete(path);
      },
      failed: (error) => tracked.failed(error),
    };
  }

  /** The commit ts everything at or below which is durable, or undefined before any event. */
  get checkpointTs(): bigint | undefined {
    const overall = this.tracker.overall;
    if (overall === undefined) return undefined;
    const ts = ((overall + 1n) >> SEQUENCE_BITS) - 1n;
    return ts < 0n ? undefined : ts;
  }

  /** Dispatchers with state, and idle ones reduced to their checkpoint. */
  get counts(): { active: number; idle: number } {
    const { active, parked } = this.tracker.pathCounts;
    return { active, idle: parked };
  }

  /**
   * The input is done: nothing more comes on any dispatcher, so each is resolved up to the greatest
   * commit ts seen and the checkpoint reaches it once every row is durable.
   */
  completeAll(): void {
    const dispatchers = [...this.tracker.highestPositions()].filter(([path]) => !path.startsWith(DDL_PATH));
    let last = -1n;
    for (const [, highest] of dispatchers) if (highest > last) last = highest;
    for (const [path] of dispatchers) this.tracker.advance(path, last | SEQUENCE_MASK);
  }

  /**
   * One sweep: dispatchers not seen in the last `idleSweeps` sweeps, with every row durable, are
   * reduced to their checkpoint (ProgressTracker.park). The work is proportional to the dispatchers
   * seen since the last sweep plus those reclaimed, never to all of them.
   */
  reclaimIdle(idleSweeps: number): void {
    const sweep = ++this.sweep;
    for (const [path, last] of this.seen) {
      if (last.sweep > sweep - 1 - idleSweeps) break;
      this.seen.delete(path);
      if (this.tracker.park(path)) {
        this.sequences.delete(path);
      } else {
        // Rows still in flight: looked at again after another idle period (at the back now, so
        // this loop stops when it gets there).
        last.sweep = sweep - 1;
        this.seen.set(path, last);
      }
    }
  }

  private track(path: string, commitTs: bigint, ack: Ack): Ack {
    let last = this.sequences.get(path);
    if (last === undefined) {
      // New, or back from idleness: continue after its highest position when at the same ts.
      const highest = this.tracker.highest(path);
      const next = highest !== undefined && highest >> SEQUENCE_BITS === commitTs ? Number(highest & SEQUENCE_MASK) + 1 : 0;
      this.sequences.set(path, (last = { commitTs, next, sweep: -1 }));
    } else if (last.commitTs !== commitTs) {
      last.commitTs = commitTs;
      last.next = 0;
    }
    if (last.sweep !== this.sweep) {
      last.sweep = this.sweep;
      this.seen.delete(path);
      this.seen.set(path, last);
    }
    const sequence = last.next++;
    if (sequence > MAX_SEQUENCE) {
      throw new RangeError(`${this.owner}: more than ${MAX_SEQUENCE + 1} events at commit ts ${commitTs} on dispatcher ${path}`);
    }
    // The usual case, one event per commit ts on a dispatcher, costs one bigint.
    const base = commitTs << SEQUENCE_BITS;
    return this.tracker.track(path, sequence === 0 ? base : base | BigInt(sequence), ack);
  }
}
