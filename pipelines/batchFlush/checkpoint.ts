/**
 * The checkpoint of the line-protocol sink: the lines it accepted and has not yet flushed, kept on an
 * ExternalStorage as a run of immutable segment objects `{prefix}/{run}-{n}.ckpt` (v1: `.json`). Each save puts one
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
/**
 * Version 2: a JSON header line, then the lines themselves joined by '\n' (a line holding a newline,
 * possible in a string field, is written JSON-quoted and its index listed in `quoted`). Version 1 (one
 * JSON document with a `lines` array) is still read. JSON-quoting every line cost more CPU than the
 * rest of a save, and the lines are already text.
 */
export const CHECKPOINT_VERSION = 2;
const SEGMENT_SUFFIX = '.ckpt';
const V1_SEGMENT_SUFFIX = '.json';

/** What a checkpoint belongs to: restoring it into a sink that writes elsewhere is refused. */
export interface CheckpointIdentity {
  readonly db: string;
  readonly retentionPolicy: string | null;
  readonly precision: Precision;
}

interface SegmentHeader extends CheckpointIdentity {
  format: string;
  version: number;
  /** Version 1: the lines. Version 2: how many lines follow the header. */
  lines: string[] | number;
  /** Version 2: indexes of the lines written JSON-quoted (they hold a newline). */
  quoted?: number[];
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
  /** The put resolved (until then the segment may not be deleted). */
  durable: boolean;
}

/**
 * Segments of one sink on a storage. Not safe for two sinks on the same prefix at once. Saves may run
 * concurrently (each is its own object); segments are listed in the order `save` was called.
 */
/** Runs started in this process, for the order of their segment names. */
let runsStarted = 0;

export class LineCheckpoint {
  readonly #storage: ExternalStorage;
  readonly #prefix: string;
  readonly #identity: CheckpointIdentity;
  // Time, then a count of the runs this process started (two may start within one millisecond),
  // then randomness against other processes: later runs sort after earlier ones.
  readonly #run = `${Date.now().toString().padStart(15, '0')}-${String(runsStarted++).padStart(6, '0')}-${randomBytes(4).toString('hex')}`;
  #segments = 0;
  readonly #live: LiveSegment[] = [];
  #savedLines = 0;
  #releasing: Promise<void> = Promise.resolve();

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
      if (key.endsWith(SEGMENT_SUFFIX) || key.endsWith(V1_SEGMENT_SUFFIX)) keys.push(key);
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

  #parse(key: string, bytes: Uint8Array): { lines: string[] } {
    const where = `checkpoint segment ${this.#storage.uri}/${key}`;
    const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
    // Version 1 is one JSON document without a raw newline; version 2 starts with a header line.
    const headerEnd = text.indexOf('\n');
    let parsed: SegmentHeader;
    try {
      parsed = JSON.parse(headerEnd < 0 ? text : text.slice(0, headerEnd)) as SegmentHeader;
    } catch (error) {
      throw new CheckpointError(`${where} does not start with a valid JSON header: ${(error as Error).message}`);
    }
    const v1 = parsed?.version === 1 && Array.isArray(parsed.lines);
    const v2 = parsed?.version === CHECKPOINT_VERSION && Number.isSafeInteger(parsed.lines) && (parsed.quoted === undefined || Array.isArray(parsed.quoted));
    if (parsed?.format !== CHECKPOINT_FORMAT || !(v1 || v2)) {
      throw new CheckpointError(`${where} is not a ${CHECKPOINT_FORMAT} v1 or v${CHECKPOINT_VERSION} segment; move it away or point the checkpoint elsewhere`);
    }
    const own = this.#identity;
    for (const field of ['db', 'retentionPolicy', 'precision'] as const) {
      if ((parsed[field] ?? null) !== (own[field] ?? null)) {
        throw new CheckpointError(
          `${where} was written for ${field} ${JSON.stringify(parsed[field])}, ` +
            `this sink writes ${field} ${JSON.stringify(own[field])}; restore it with a sink configured like the one that wrote it, or use another checkpoint location`,
        );
      }
    }
    if (v1) {
      const lines = parsed.lines as unknown[];
      if (!lines.every((line) => typeof line === 'string')) throw new CheckpointError(`${where} holds a line that is not a string`);
      return { lines: lines as string[] };
    }
    const count = parsed.lines as number;
    const lines = headerEnd < 0 ? [] : text.slice(headerEnd + 1).split('\n');
    if (lines.length !== count) throw new CheckpointError(`${where} holds ${lines.length} lines, its header says ${count} (a truncated or edited file)`);
    for (const index of parsed.quoted ?? []) {
      let line: unknown;
      try {
        line = JSON.parse(lines[index] ?? '');
      } catch {
        line = undefined;
      }
      if (typeof line !== 'string') throw new CheckpointError(`${where}: line ${index + 2} is listed as quoted but is not a JSON string`);
      lines[index] = line;
    }
    return { lines };
  }

  /** Saves `lines` (sequence numbers firstSeq, firstSeq+1, ...) as one new segment. */
  async save(lines: readonly string[], firstSeq: number): Promise<void> {
    if (lines.length === 0) return;
    let quoted: number[] | undefined;
    let body = lines;
    for (let index = 0; index < lines.length; index++) {
      if (!lines[index]!.includes('\n')) continue;
      if (quoted === undefined) {
        quoted = [];
        body = lines.slice();
      }
      quoted.push(index);
      (body as string[])[index] = JSON.stringify(lines[index]);
    }
    await this.saveBody([Buffer.from(body.join('\n'), 'utf8')], lines.length, quoted, firstSeq);
  }

  /**
   * Saves `count` lines (sequence numbers firstSeq, ...) given as the UTF-8 body of a v2 segment:
   * `parts` concatenated are the lines joined by '\n', those at the `quoted` indexes JSON-quoted.
   * The parts are copied before this returns (the caller may reuse their memory).
   */
  async saveBody(parts: readonly Buffer[], count: number, quoted: number[] | undefined, firstSeq: number): Promise<void> {
    if (count === 0) return;
    const key = `${this.#prefix}/${this.#run}-${String(++this.#segments).padStart(10, '0')}${SEGMENT_SUFFIX}`;
    const header: SegmentHeader = { format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, ...this.#identity, lines: count, ...(quoted ? { quoted } : {}) };
    const data = Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`, 'utf8'), ...parts]);
    // Listed before the put, so concurrent saves keep their order; deleted only once durable.
    const segment: LiveSegment = { key, lastSeq: firstSeq + count - 1, count, durable: false };
    this.#live.push(segment);
    this.#savedLines += count;
    try {
      await this.#storage.put(key, data);
    } catch (error) {
      // Not written: drop it from the list (a later release must not wait for it forever).
      this.#live.splice(this.#live.indexOf(segment), 1);
      this.#savedLines -= count;
      throw error;
    }
    segment.durable = true;
  }

  /**
   * Deletes, in order, the durable segments whose every line is at or below `flushedThrough`. Calls
   * run one after another (two would delete the same segment).
   */
  release(flushedThrough: number): Promise<void> {
    const run = async () => {
      while (this.releasable(flushedThrough)) {
        const segment = this.#live[0]!;
        await this.#storage.delete(segment.key);
        this.#live.shift();
        this.#savedLines -= segment.count;
      }
    };
    const next = this.#releasing.then(run);
    this.#releasing = next.catch(() => undefined);
    return next;
  }

  /** True when the oldest live segment is durable and wholly at or below `flushedThrough`. */
  releasable(flushedThrough: number): boolean {
    return this.#live.length > 0 && this.#live[0]!.durable && this.#live[0]!.lastSeq <= flushedThrough;
  }

  /** Deletes segments of earlier runs (after their lines were saved again by this run). */
  async drop(keys: readonly string[]): Promise<void> {
    for (const key of keys) await this.#storage.delete(key);
  }
}
