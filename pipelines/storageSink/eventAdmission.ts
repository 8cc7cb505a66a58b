/**
 * The storage sink's admission check: each event, in input order, against what the sink knows at
 * that point of the input, before anything downstream sees it: the event is well formed, a row's
 * table version has a definition (from a DDL before it, or registered), its columns are exactly that
 * definition's with values its column types take and no NULL in a NOT NULL column, its commit ts
 * does not go below its dispatcher's last one, and it is not at or below a checkpoint this run has
 * already written or begun to write (`checkpointWritten`).
 *
 * Events carry no resolved ts: the sink's checkpoint is the least over the dispatchers it has seen,
 * so an event of a dispatcher not seen yet may come below a checkpoint already written. Written to
 * the files it would be, but a rerun resuming from that checkpoint would skip it: it is refused
 * instead, naming its line. A stricter rule (no dispatcher starting below the others' last commit ts)
 * would also refuse what paced sources merge in turns, the way inputs are composed; so what a run
 * stopped or killed before reading such an event cannot see stays a documented limit.
 *
 * Invariant guarded here: an event that passes is one the encoder writes and a consumer (replay)
 * applies; an event that fails changes nothing here (its DDL defines no table, its commit ts moves
 * no dispatcher), so the events after it are judged as if it never came, and the error names where
 * it came from (its input line) and what is wrong.
 */
import { changeEventProblem, InvalidChangeEventError, type ChangeEvent, type TableDef } from '../../lib/codec/changeEvent.ts';
import { TableRegistry, UnknownTableVersionError } from './tableRegistry.ts';

/** The input contract that keeps every checkpoint safe, as bad-event messages state it. */
const CONTRACT = 'every event must come after the checkpoints written before it (each dispatcher in commit order, and no dispatcher starting below a checkpoint already written)';

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
      const covered = this.#writtenProblem(event);
      if (covered !== undefined) return new InvalidChangeEventError(event, this.#where(event, index), covered);
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
    const covered = last !== undefined && event.commitTs < last.ts ? undefined : this.#writtenProblem(event);
    if (covered !== undefined) return new InvalidChangeEventError(event, this.#where(event, index), covered);
    if (last === undefined) {
      this.#lastCommitTs.set(event.dispatcherId, { ts: event.commitTs });
    } else if (event.commitTs < last.ts) {
      return new InvalidChangeEventError(
        event,
        this.#where(event, index),
        `commitTs ${event.commitTs} goes back below ${last.ts}, the last commit ts of dispatcher ${event.dispatcherId}; a dispatcher's events come in commit order`,
      );
    } else {
      last.ts = event.commitTs;
    }
    return undefined;
  }

  /** What is wrong when `event` (a row, or a DDL) is at or below a checkpoint this run has written. */
  #writtenProblem(event: ChangeEvent): string | undefined {
    const written = this.#checkpointWritten();
    if (written === undefined || event.commitTs > written) return undefined;
    const what = event.kind === 'row' ? `of dispatcher ${event.dispatcherId}` : 'of the DDL';
    return `commit ts ${event.commitTs} ${what} is at or below the checkpoint ${written} already written: ${CONTRACT}`;
  }
}
