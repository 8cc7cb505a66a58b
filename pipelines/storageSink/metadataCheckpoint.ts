/**
 * The sink's checkpoint stage: the one owner of the order of the root `metadata` checkpoint. The
 * sink reads the checkpoint already in the file once, before its first event (readStoredCheckpoint),
 * and hands it here; every later checkpoint goes through `advance`, which writes it (FileOutput's
 * plain `writeCheckpoint`, under BatchWriter's retries) only when it is above the one in the file.
 *
 * Invariant guarded here: the `metadata` checkpoint never goes backwards, across restarts too: the
 * first value written is above the one found in the file when the run started (with resume on or
 * off), each later one above the one before, and writes run one at a time in call order, so no
 * earlier value can land after a later one. Nothing is written before the stored checkpoint is known.
 * What is written is the caller's to vouch for: every event at or below it durable (DispatcherPositions).
 */

export class MetadataCheckpoint {
  readonly #write: (checkpointTs: bigint) => Promise<void>;
  /** The checkpoint in the file: found at start, or written since; undefined when there is none. */
  #inFile: bigint | undefined;
  #started = false;
  /** The greatest checkpoint this run has begun to write (undefined: none yet). */
  #claimed: bigint | undefined;
  /** The last write queued; the next one starts after it settles. */
  #tail: Promise<unknown> = Promise.resolve();

  /** `write` puts `{"checkpoint-ts":N}` in the `metadata` file (retried by the caller as it sees fit). */
  constructor(write: (checkpointTs: bigint) => Promise<void>) {
    this.#write = write;
  }

  /** The checkpoint found in the file when the run started (undefined: no file, or one to replace). Call once, before any event. */
  found(checkpointTs: bigint | undefined): void {
    if (this.#started) throw new Error('MetadataCheckpoint.found: the stored checkpoint is set once, before the first event');
    this.#started = true;
    this.#inFile = checkpointTs;
  }

  /**
   * The greatest checkpoint this run has begun to write, whether or not the write has landed yet
   * (undefined before the first): no event at or below it may come after it (EventAdmission).
   */
  get claimed(): bigint | undefined {
    return this.#claimed;
  }

  /**
   * Writes the checkpoint `next()` gives when it is above the one in the file; resolves with the
   * checkpoint written, or undefined when nothing was (none yet, not above, or the stored one not yet
   * known). One at a time: a call waits for the one before, and `next` is read when its turn comes,
   * so it sees the latest progress. A failed write rejects this call only; the file keeps its value.
   *
   * @example await checkpoint.advance(() => positions.checkpointTs) // 4351n, or undefined
   */
  advance(next: () => bigint | undefined): Promise<bigint | undefined> {
    const write = this.#tail.then(async () => {
      if (!this.#started) return undefined;
      const checkpointTs = next();
      if (checkpointTs === undefined || (this.#inFile !== undefined && checkpointTs <= this.#inFile)) return undefined;
      this.#claimed = checkpointTs;
      await this.#write(checkpointTs);
      this.#inFile = checkpointTs;
      return checkpointTs;
    });
    this.#tail = write.catch(() => undefined);
    return write;
  }
}
