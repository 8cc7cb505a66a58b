/**
 * Writes one batch of lines, its bytes straight from the arena, and isolates the lines the server
 * refused (400/413/422) by halving the batch until each refused line stands alone: the other lines
 * land, the refused ones become dead letters. It never retries the whole batch (adaptiveBatch does)
 * and never settles an ack: it only says which lines were refused.
 */
import { withRetries, type RetryPolicy } from '../../lib/core/retry.ts';
import { seqOf, type Item } from './ackedEntry.ts';
import type { DeadLetterStore, Letter } from './deadLetters.ts';
import type { LineArena } from './lineArena.ts';
import { LineWriteError, type LineWriter, type WriteOutcome } from './lineWriter.ts';
import { OWNER } from './options.ts';
import type { LineSinkStats } from './progress.ts';

export interface BatchResult {
  requests: number;
  /** Sequence numbers of the refused lines (their letters are in `LineBatchWriter.letters`). */
  letters: number[];
}

/** What a batch write uses; the writer and the dead-letter store are opened once the sink has started. */
export interface LineBatchWriterParts {
  arena: LineArena;
  stats: LineSinkStats;
  retry: RetryPolicy;
  writer(): LineWriter;
  deadLetters(): DeadLetterStore | undefined;
}

export class LineBatchWriter {
  /** Refused lines of batches being written or emitted, by sequence number. */
  readonly letters = new Map<number, Letter>();
  readonly #parts: LineBatchWriterParts;

  constructor(parts: LineBatchWriterParts) {
    this.#parts = parts;
  }

  /** Writes a batch (its bytes straight from the arena); on a rejection, halves it until each refused line stands alone. */
  async write(items: Item[]): Promise<BatchResult> {
    const { arena } = this.#parts;
    // adaptiveBatch takes items in order, so a batch is a run of consecutive lines.
    const firstSeq = seqOf(items[0]!);
    const lastSeq = seqOf(items[items.length - 1]!);
    if (lastSeq - firstSeq + 1 !== items.length) throw new Error(`${OWNER}: internal error: a batch of ${items.length} items spans lines ${firstSeq}..${lastSeq}`);
    let requests = 1;
    const first = await this.#countedWrite(arena.body(firstSeq, lastSeq));
    const refused: number[] = [];
    if (!first.ok) {
      const lines = arena.lines(firstSeq, lastSeq);
      const found: Letter[] = [];
      const isolate = async (low: number, high: number, rejection: { status: number; message: string }): Promise<void> => {
        if (high - low === 1) {
          const letter: Letter = { line: lines[low]!, ...rejection, stored: undefined };
          found.push(letter);
          refused.push(firstSeq + low);
          this.letters.set(firstSeq + low, letter);
          return;
        }
        const middle = (low + high) >>> 1;
        for (const [from, to] of [
          [low, middle],
          [middle, high],
        ] as const) {
          requests++;
          const outcome = await this.#writeRetried(lines.slice(from, to));
          if (!outcome.ok) await isolate(from, to, outcome);
        }
      };
      await isolate(0, lines.length, first);
      const stored = await this.#storeLetters(found);
      for (const letter of found) letter.stored = stored;
    }
    return { requests, letters: refused };
  }

  async #storeLetters(refused: Letter[]): Promise<string | undefined> {
    const deadLetters = this.#parts.deadLetters();
    if (deadLetters === undefined) return undefined;
    return deadLetters.store(refused);
  }

  /** A sub-request of an isolation, retried on its own so a 503 there does not restart the isolation. */
  #writeRetried(lines: readonly string[] | Buffer): Promise<WriteOutcome> {
    return withRetries(`POST /write to ${this.#parts.writer().target}`, () => this.#countedWrite(lines), {
      policy: this.#parts.retry,
      isRetryable: (error) => error instanceof LineWriteError && error.retryable,
    });
  }

  async #countedWrite(lines: readonly string[] | Buffer): Promise<WriteOutcome> {
    const { stats } = this.#parts;
    stats.requests++;
    try {
      const outcome = await this.#parts.writer().write(lines);
      if (!outcome.ok) stats.rejectedWrites++;
      return outcome;
    } catch (error) {
      if (error instanceof LineWriteError && error.retryable) stats.retryableErrors++;
      throw error;
    }
  }
}
