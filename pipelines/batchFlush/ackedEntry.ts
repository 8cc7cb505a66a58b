/**
 * What the sink carries per line through adaptiveBatch: a bare sequence number for a plain value, one
 * `AckedEntry` for an Acked record. It must stay one small object per record at most: a record lives
 * until its batch is written, so anything more per record on the heap is paid again in GC.
 */
import type { Ack, Acked } from '../../lib/core/ack.ts';

/**
 * What adaptiveBatch carries per line: the line's sequence number in the arena for a plain value (no
 * object at all), an `AckedEntry` for an Acked record.
 */
export type Item = number | AckedEntry;

export const seqOf = (item: Item): number => (typeof item === 'number' ? item : item.seq);

const PENDING = 0;
const ENQUEUED = 1;
const SETTLED = 2;

/**
 * The line of an Acked record, which is its own `Acked` and `Ack` (value and ack are itself): one
 * small object per record carries the line's number, the source's ack and the stage state, where a
 * wrapper, a bound ack and an entry cost three (and GC time, as they live until the batch is written). Stages behave as
 * `bindAck`'s: each once, `flushed` implies `enqueued`, a settled ack never changes.
 */
export class AckedEntry implements Acked<AckedEntry>, Ack {
  /** The line's sequence number in the arena (its bytes live there, not here). */
  readonly seq: number;
  readonly source: Ack;
  readonly #stages: EntryStages;
  #state = PENDING;

  constructor(seq: number, source: Ack, stages: EntryStages) {
    this.seq = seq;
    this.source = source;
    this.#stages = stages;
  }

  get value(): AckedEntry {
    return this;
  }

  get ack(): Ack {
    return this;
  }

  enqueued(): void {
    if (this.#state !== PENDING) return;
    this.#state = ENQUEUED;
    this.#stages.enqueued(this);
  }

  flushed(): void {
    if (this.#state === SETTLED) return;
    this.enqueued();
    this.#state = SETTLED;
    this.#stages.flushed(this);
  }

  failed(error: unknown): void {
    if (this.#state === SETTLED) return;
    this.#state = SETTLED;
    this.#stages.failed(this, error);
  }
}

/** What the sink does at each stage of a record's line. */
export interface EntryStages {
  enqueued(entry: AckedEntry): void;
  flushed(entry: AckedEntry): void;
  failed(entry: AckedEntry, error: unknown): void;
}
