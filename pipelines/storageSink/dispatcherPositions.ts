/**
 * The sink's progress per dispatcher: each event is tracked at its commit ts until durable; the
 * `metadata` checkpoint is the least dispatcher checkpoint. Dispatchers idle for a while are reduced
 * to their checkpoint.
 *
 * Rows are admitted, not tracked with an ack each: a dispatcher's rows become durable in the order
 * they came (drainBarrier keeps each dispatcher's order, the spool and batchBy are first in first
 * out, and batches are written one after another), so the writer reports each durable row by its
 * dispatcher alone and the tracker keeps only positions (see ProgressTracker.admit). A DDL keeps its
 * own path and ack, and so does a rejected event while its dead letter is being stored (holdRejected).
 *
 * Invariants guarded here: the checkpoint reaches a commit ts only once every event of it on every
 * dispatcher is durable and a later one was seen (the rows of one transaction share a commit ts, and
 * more of them may still come: ProgressTracker's shared positions); an idle dispatcher's checkpoint
 * still counts (events carry no resolved ts); a dispatcher back from idleness continues above it.
 * So a `metadata` checkpoint N says every event at or below N is durable, and a rerun on the same
 * input skips exactly those (resumeFrom).
 */
import { noopAck, type Ack } from '../../lib/core/ack.ts';
import { ProgressTracker } from '../../lib/core/progress.ts';

const DDL_PATH = 'ddl@';
const REJECTED_PATH = 'rejected@';

export class DispatcherPositions {
  private readonly tracker = new ProgressTracker<string>({ sharedPositions: true });
  /** The greatest commit ts of any event, which completion resolves every dispatcher to. */
  private greatest: bigint | undefined;
  /** completeAll was called: nothing more comes. */
  private completed = false;

  /**
   * A resumed run: everything at or below `checkpointTs` is durable already (the `metadata` file
   * says so) and no event at or below it is admitted (the sink skips them). So every dispatcher's
   * checkpoint stays at or above it, and completion with no event admitted reaches it.
   */
  resumeFrom(checkpointTs: bigint): void {
    if (this.greatest === undefined || checkpointTs > this.greatest) this.greatest = checkpointTs;
  }

  /** Admits a row of `dispatcherId` at `commitTs`; `rowDurable` reports it once it is durable. */
  admitRow(dispatcherId: string, commitTs: bigint): void {
    if (this.greatest === undefined || commitTs > this.greatest) this.greatest = commitTs;
    this.tracker.admit(dispatcherId, commitTs);
  }

  /** The oldest row admitted on `dispatcherId` and not yet reported is durable. */
  rowDurable(dispatcherId: string): void {
    this.tracker.durable(dispatcherId);
  }

  /**
   * Tracks a DDL as a path of its own (`line` makes it unique), forgotten once durable, so it
   * holds the checkpoint only while it is on its way.
   */
  trackDdl(commitTs: bigint, line: number, ack: Ack): Ack {
    return this.trackAlone(`${DDL_PATH}${commitTs}#${line}`, commitTs, ack);
  }

  /**
   * Holds the checkpoint below a rejected event at `commitTs` (the `line`th event) until the returned
   * ack is flushed (its dead letter is durable), as a path of its own like a DDL's; never flushed (the
   * store failed), it keeps the checkpoint below it. Once released, completion may reach its commit ts,
   * so a rerun skips it rather than storing it again.
   */
  holdRejected(commitTs: bigint, line: number): Ack {
    return this.trackAlone(`${REJECTED_PATH}${commitTs}#${line}`, commitTs, noopAck());
  }

  /** An event on a path of its own at `commitTs`, forgotten once flushed. */
  private trackAlone(path: string, commitTs: bigint, ack: Ack): Ack {
    if (this.greatest === undefined || commitTs > this.greatest) this.greatest = commitTs;
    const tracked = this.tracker.track(path, commitTs, ack);
    return {
      enqueued: () => tracked.enqueued(),
      flushed: () => {
        tracked.flushed();
        this.tracker.remove(path);
      },
      failed: (error) => tracked.failed(error),
    };
  }

  /** The commit ts everything at or below which is durable, or undefined before any event. */
  get checkpointTs(): bigint | undefined {
    // Complete with no path left (only DDLs came, each forgotten once durable): all is durable.
    const overall = this.tracker.overall ?? (this.completed ? this.greatest : undefined);
    return overall === undefined || overall < 0n ? undefined : overall;
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
    this.completed = true;
    if (this.greatest === undefined) return;
    const dispatchers = [...this.tracker.highestPositions()].filter(([path]) => !path.startsWith(DDL_PATH) && !path.startsWith(REJECTED_PATH));
    for (const [path] of dispatchers) this.tracker.advance(path, this.greatest);
  }

  /**
   * One sweep: dispatchers with no event in the last `idleSweeps` sweeps and every row durable are
   * reduced to their checkpoint (ProgressTracker.parkIdle: one look at each dispatcher with state,
   * none at those already reduced).
   */
  reclaimIdle(idleSweeps: number): void {
    this.tracker.parkIdle(idleSweeps);
  }
}
