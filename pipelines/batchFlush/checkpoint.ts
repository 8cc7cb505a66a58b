/**
 * The checkpoint of the line-protocol sink: the lines it accepted and has not yet flushed, kept on an
 * ExternalStorage as a run of immutable segment objects `{prefix}/{run}-{n}.json`. Each save puts one
 * segment holding the lines accepted since the previous save (written atomically by the storage:
 * whole or absent); a segment is deleted once every line in it has been flushed. So the live segments
 * always hold the unflushed buffer (pending and in-flight batches), and a save costs what is new, not
 * the whole buffer.
 *
 * Invariant guarded here: a line is in a durable segment from the moment `save` resolves for it
 * until the caller reports it flushed; segments are deleted strictly in order and only when wholly
 * flushed; `restore` returns the lines of every segment in the order they were accepted and refuses a
 * checkpoint written for another database, retention policy or precision (replaying it would put
 * points in the wrong place or at the wrong time).
 */
import { randomBytes } from 'node:crypto';
import type { Precision } from '../../lib/codec/lineProtocol.ts';
import { checkPrefix } from '../../lib/storage/keys.ts';
import type { ExternalStorage } from '../../lib/storage/storage.ts';

export const CHECKPOINT_FORMAT = 'sluice-lines-checkpoint';
export const CHECKPOINT_VERSION = 1;

/** What a checkpoint belongs to: restoring it into a sink that writes elsewhere is refused. */
export interface CheckpointIdentity {
  readonly db: string;
  readonly retentionPolicy: string | null;
  readonly precision: Precision;
}

interface SegmentFile extends CheckpointIdentity {
  format: string;
  version: number;
  lines: string[];
}

/** A checkpoint that cannot be used: unreadable, or written for another destination. */
export class CheckpointError extends Error {
  override readonly name = 'CheckpointError';
}

interface LiveSegment {
  readonly key: string;
  /** Sequence number of its last line. */
  readonly lastSeq: number;
  readonly count: number;
}

/** Segments of one sink on a storage. Not safe for two sinks on the same prefix at once. */
export class LineCheckpoint {
  readonly #storage: ExternalStorage;
  readonly #prefix: string;
  readonly #identity: CheckpointIdentity;
  readonly #run = `${Date.now().toString().padStart(15, '0')}-${randomBytes(4).toString('hex')}`;
  #segments = 0;
  readonly #live: LiveSegment[] = [];
  #savedLines = 0;

  constructor(storage: ExternalStorage, prefix: string, identity: CheckpointIdentity) {
    this.#storage = storage;
    this.#prefix = checkPrefix(prefix, 'lineProtocolSink checkpoint');
    this.#identity = identity;
  }

  get uri(): string {
    return `${this.#storage.uri}/${this.#prefix}`;
  }

  /** Lines held in live segments (an upper bound of the unflushed lines). */
  get savedLines(): number {
    return this.#savedLines;
  }

  get liveSegments(): number {
    return this.#live.length;
  }

  /**
   * Reads every segment left by earlier runs, in order, and returns their lines with the keys to drop
   * once the lines are saved again under this run (`adopt`).
   */
  async restore(): Promise<{ lines: string[]; keys: string[] }> {
    const keys: string[] = [];
    for await (const key of this.#storage.list(`${this.#prefix}/`)) {
      if (key.endsWith('.json')) keys.push(key);
    }
    // Run ids start with a zero-padded time and segment numbers are zero-padded: names sort in order.
    keys.sort();
    const lines: string[] = [];
    for (const key of keys) {
      const bytes = await this.#storage.get(key);
      if (bytes === undefined) continue;
      const segment = this.#parse(key, bytes);
      for (const line of segment.lines) lines.push(line);
    }
    return { lines, keys };
  }

  #parse(key: string, bytes: Uint8Array): SegmentFile {
    let parsed: SegmentFile;
    try {
      parsed = JSON.parse(Buffer.from(bytes).toString('utf8')) as SegmentFile;
    } catch (error) {
      throw new CheckpointError(`checkpoint segment ${this.#storage.uri}/${key} is not valid JSON: ${(error as Error).message}`);
    }
    if (parsed?.format !== CHECKPOINT_FORMAT || parsed.version !== CHECKPOINT_VERSION || !Array.isArray(parsed.lines)) {
      throw new CheckpointError(
        `checkpoint segment ${this.#storage.uri}/${key} is not a ${CHECKPOINT_FORMAT} v${CHECKPOINT_VERSION} segment; move it away or point the checkpoint elsewhere`,
      );
    }
    const own = this.#identity;
    for (const field of ['db', 'retentionPolicy', 'precision'] as const) {
      if ((parsed[field] ?? null) !== (own[field] ?? null)) {
        throw new CheckpointError(
          `checkpoint segment ${this.#storage.uri}/${key} was written for ${field} ${JSON.stringify(parsed[field])}, ` +
            `this sink writes ${field} ${JSON.stringify(own[field])}; restore it with a sink configured like the one that wrote it, or use another checkpoint location`,
        );
      }
    }
    if (!parsed.lines.every((line) => typeof line === 'string')) {
      throw new CheckpointError(`checkpoint segment ${this.#storage.uri}/${key} holds a line that is not a string`);
    }
    return parsed;
  }

  /** Saves `lines` (sequence numbers firstSeq, firstSeq+1, ...) as one new segment. */
  async save(lines: readonly string[], firstSeq: number): Promise<void> {
    if (lines.length === 0) return;
    const key = `${this.#prefix}/${this.#run}-${String(++this.#segments).padStart(10, '0')}.json`;
    const file: SegmentFile = { format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, ...this.#identity, lines: lines as string[] };
    await this.#storage.put(key, Buffer.from(JSON.stringify(file), 'utf8'));
    this.#live.push({ key, lastSeq: firstSeq + lines.length - 1, count: lines.length });
    this.#savedLines += lines.length;
  }

  /** Deletes, in order, the segments whose every line is at or below `flushedThrough`. */
  async release(flushedThrough: number): Promise<void> {
    while (this.#live.length > 0 && this.#live[0]!.lastSeq <= flushedThrough) {
      const segment = this.#live[0]!;
      await this.#storage.delete(segment.key);
      this.#live.shift();
      this.#savedLines -= segment.count;
    }
  }

  /** True when some live segment is wholly at or below `flushedThrough`. */
  releasable(flushedThrough: number): boolean {
    return this.#live.length > 0 && this.#live[0]!.lastSeq <= flushedThrough;
  }

  /** Deletes segments of earlier runs (after their lines were saved again by this run). */
  async drop(keys: readonly string[]): Promise<void> {
    for (const key of keys) await this.#storage.delete(key);
  }
}
