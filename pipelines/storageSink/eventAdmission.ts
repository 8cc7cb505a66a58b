/**
 * The storage sink's admission check: each event, in input order, against what the sink knows at
 * that point of the input, before anything downstream sees it: the event is well formed, a row's
 * table version has a definition (from a DDL before it, or registered), its columns are exactly that
 * definition's with values its column types take and no NULL in a NOT NULL column, its commit ts
 * does not go below its dispatcher's last one, and it is not below the commit-ts floor (below).
 *
 * The commit-ts floor is the least of the dispatchers' last commit ts so far. Events carry no
 * resolved ts, so the sink may write any checkpoint up to the floor minus one at any time
 * (DispatcherPositions), and a rerun skips every event at or below the checkpoint it finds. An event
 * below the floor may thus come after a checkpoint that covers it, and be skipped on a rerun though
 * never written: it is refused instead, in every run alike (the check depends on the input only, not
 * on when checkpoints happened to be written). An input that keeps each dispatcher in commit order
 * and starts no dispatcher below the floor makes every checkpoint the sink writes safe: periodic, at
 * a stop, or at the end.
 *
 * Also refused, for what the floor cannot see (a resumed run does not hold the checkpoint at the
 * dispatchers whose events it skipped): an event at or below a checkpoint this run has already
 * written or is writing (`checkpointWritten`).
 *
 * Invariant guarded here: an event that passes is one the encoder writes and a consumer (replay)
 * applies; an event that fails changes nothing here (its DDL defines no table, its commit ts moves
 * no dispatcher), so the events after it are judged as if it never came, and the error names where
 * it came from (its input line) and what is wrong.
 */
import { changeEventProblem, InvalidChangeEventError, type ChangeEvent, type TableDef } from '../../lib/codec/changeEvent.ts';
import { TableRegistry, UnknownTableVersionError } from './tableRegistry.ts';

/** The input contract that keeps every checkpoint safe, as bad-event messages state it. */
const CONTRACT =
  "every event must come after the checkpoints written before it (each dispatcher in commit order, and no dispatcher starting below the others' checkpoint)";

/** Where an event came from, for messages: its 1-based `index` in the input, or its input line. */
export type EventPosition = (event: ChangeEvent, index: number) => string;

/**
 * The definitions as the input defines them, in input order: the sink's writer applies a DDL only
 * once the rows before it are drained, and the rows after it must be checked before that.
 *
 * @example
 * const admission = new EventAdmission((event, index) => `event #${index}`);
 * const error = admission.check(event, 17); // undefined, or what is wrong with it
 */
export class EventAdmission {
  readonly #tables = new TableRegistry();
  /** Each dispatcher's last admitted commit ts, in a box updated in place (dispatchers are few). */
  readonly #lastCommitTs = new Map<string, { ts: bigint }>();
  readonly #where: EventPosition;
  readonly #checkpointWritten: () => bigint | undefined;
  /** The least last commit ts over the dispatchers (the floor), and one dispatcher at it. */
  #floor: { ts: bigint; dispatcherId: string } | undefined;

  /** `checkpointWritten`: the greatest checkpoint this run has written or begun to write, if any. */
  constructor(where: EventPosition, checkpointWritten: () => bigint | undefined = () => undefined) {
    this.#where = where;
    this.#checkpointWritten = checkpointWritten;
  }

  /** A table first seen without DDL (the sink's `tables` option). */
  register(def: TableDef): void {
    this.#tables.register(def);
  }

  /**
   * Checks `event`, the `index`th of the input, and, when it passes, records what it changes (a DDL's
   * table, a row's commit ts); returns the `InvalidChangeEventError` that says what is wrong and
   * where, or undefined. A row of an unknown table version has the `UnknownTableVersionError` as its
   * error's `cause`.
   */
  check(event: ChangeEvent, index: number): InvalidChangeEventError | undefined {
    const problem = changeEventProblem(event);
    if (problem !== undefined) return new InvalidChangeEventError(event, this.#where(event, index), problem);
    if (event.kind === 'ddl') {
      const belowFloor = this.#floorProblem(event);
      if (belowFloor !== undefined) return new InvalidChangeEventError(event, this.#where(event, index), belowFloor);
      this.#tables.apply(event);
      return undefined;
    }
    let rowProblem: string | undefined;
    try {
      rowProblem = this.#tables.rowProblem(event);
    } catch (error) {
      if (!(error instanceof UnknownTableVersionError)) throw error;
      const rejected = new InvalidChangeEventError(event, this.#where(event, index), `a row before its table's DDL: ${error.message}`);
      rejected.cause = error;
      return rejected;
    }
    if (rowProblem !== undefined) return new InvalidChangeEventError(event, this.#where(event, index), rowProblem);
    const last = this.#lastCommitTs.get(event.dispatcherId);
    const belowFloor = last !== undefined && event.commitTs < last.ts ? undefined : this.#floorProblem(event);
    if (belowFloor !== undefined) return new InvalidChangeEventError(event, this.#where(event, index), belowFloor);
    if (last === undefined) {
      this.#lastCommitTs.set(event.dispatcherId, { ts: event.commitTs });
      // Not below the floor (checked above), so a new dispatcher moves it only when it is the first.
      this.#floor ??= { ts: event.commitTs, dispatcherId: event.dispatcherId };
    } else if (event.commitTs < last.ts) {
      return new InvalidChangeEventError(
        event,
        this.#where(event, index),
        `commitTs ${event.commitTs} goes back below ${last.ts}, the last commit ts of dispatcher ${event.dispatcherId}; a dispatcher's events come in commit order`,
      );
    } else {
      last.ts = event.commitTs;
      if (this.#floor !== undefined && this.#floor.dispatcherId === event.dispatcherId && event.commitTs > this.#floor.ts) this.#raiseFloor();
    }
    return undefined;
  }

  /**
   * An event the sink skips on resume (at or below the checkpoint resumed from): dealt with by an
   * earlier run, so not checked again, but still held to the floor, which it counts toward. One
   * below the floor broke the contract, so the run that wrote the checkpoint may never have read it
   * (it stopped, or was killed, before it): refused, as `check` would, rather than skipped unseen.
   * (Against the floor only: this run does not hold its own checkpoints at the dispatchers it skips.)
   */
  checkSkipped(event: ChangeEvent, index: number): InvalidChangeEventError | undefined {
    if (typeof event.commitTs !== 'bigint' || (event.kind === 'row' && typeof event.dispatcherId !== 'string')) return undefined;
    const belowFloor = this.#floorProblem(event, false);
    if (belowFloor !== undefined) return new InvalidChangeEventError(event, this.#where(event, index), belowFloor);
    if (event.kind !== 'row') return undefined;
    const last = this.#lastCommitTs.get(event.dispatcherId);
    if (last === undefined) {
      this.#lastCommitTs.set(event.dispatcherId, { ts: event.commitTs });
      this.#floor ??= { ts: event.commitTs, dispatcherId: event.dispatcherId };
    } else if (event.commitTs > last.ts) {
      last.ts = event.commitTs;
      if (this.#floor !== undefined && this.#floor.dispatcherId === event.dispatcherId && event.commitTs > this.#floor.ts) this.#raiseFloor();
    }
    return undefined;
  }

  /**
   * What is wrong when `event` (a row, or a DDL) is at or below a checkpoint written in this run,
   * or below the floor: a checkpoint at the floor minus one may be written before it, and covers it.
   */
  #floorProblem(event: ChangeEvent, againstWritten = true): string | undefined {
    const what = event.kind === 'row' ? `of dispatcher ${event.dispatcherId}` : 'of the DDL';
    const written = againstWritten ? this.#checkpointWritten() : undefined;
    if (written !== undefined && event.commitTs <= written) {
      return `commit ts ${event.commitTs} ${what} is at or below the checkpoint ${written} already written: ${CONTRACT}`;
    }
    const floor = this.#floor;
    if (floor === undefined || event.commitTs >= floor.ts) return undefined;
    return (
      `commit ts ${event.commitTs} ${what} is at or below the checkpoint ${floor.ts - 1n} the sink may already have written ` +
      `(dispatcher ${floor.dispatcherId} is at ${floor.ts}, the least of the dispatchers' last commit ts before it): ` +
      CONTRACT
    );
  }

  /** The dispatcher at the floor moved up: the floor is the least last commit ts again (one look at each dispatcher, only when the one at it moves). */
  #raiseFloor(): void {
    let least: { ts: bigint; dispatcherId: string } | undefined;
    for (const [dispatcherId, { ts }] of this.#lastCommitTs) if (least === undefined || ts < least.ts) least = { ts, dispatcherId };
    this.#floor = least;
  }
}
