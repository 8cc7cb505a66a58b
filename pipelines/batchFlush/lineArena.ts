/**
 * LineArena: the sink's accepted lines as UTF-8 bytes in large off-heap Buffers, numbered 1, 2, ...
 * in acceptance order. A line is encoded once, when accepted; the body of a write and the body of a
 * checkpoint segment are then slices of the same bytes (no join, no re-encode), and a waiting line
 * costs the JS heap nothing (a string living until its batch is written is copied by every scavenge
 * on the way and then promoted: that GC was the sink's largest cost per record).
 *
 * Invariant guarded here: the bytes of every line after `releasedThrough` stay unchanged until
 * `release` passes it; a line never straddles two chunks; `body(first, last)` is exactly those lines
 * joined by '\n'. Memory: the chunks holding unreleased lines (plus at most one partly used chunk),
 * and 8 bytes of offset per unreleased line; the owner bounds how many lines stay unreleased.
 */

/** Chunk size: large enough that most batches are one slice, small enough to be freed soon. */
const CHUNK_BYTES = 4 * 1024 * 1024;
const NEWLINE = 0x0a;

type Utf8Writer = (buffer: Buffer, text: string, offset: number) => number;
/**
 * `buffer.write(text, offset)` parses its optional arguments on every call (a third of an append);
 * Node's own `utf8Write`, which it ends in, is used directly where present.
 */
const utf8Write: Utf8Writer =
  typeof (Buffer.prototype as { utf8Write?: unknown }).utf8Write === 'function'
    ? (buffer, text, offset) => (buffer as Buffer & { utf8Write(text: string, offset: number): number }).utf8Write(text, offset)
    : (buffer, text, offset) => buffer.write(text, offset, 'utf8');

interface Chunk {
  readonly buffer: Buffer;
  /** Global offset of the chunk's byte 0 (offsets grow across chunks; the unused tail of a chunk is skipped). */
  readonly base: number;
  /** Bytes used. */
  used: number;
}

export class LineArena {
  readonly #chunks: Chunk[] = [];
  /** Global end offset (after its '\n') of line `seq`, at ends[(seq - 1) & mask]. */
  #ends = new Float64Array(1024);
  #mask = 1023;
  #lastSeq = 0;
  #releasedThrough = 0;
  /** End offset of the last released line (the start of the first unreleased one). */
  #releasedEnd = 0;
  /** Lines holding a '\n' (possible in string fields): seq -> line, for the checkpoint's quoting. */
  readonly #multiline = new Map<number, string>();
  #bytes = 0;

  /** Sequence number of the last line appended. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Bytes of the lines appended so far (each counted with its '\n'). */
  get appendedBytes(): number {
    return this.#bytes;
  }

  /** Appends `line` and returns its sequence number. */
  append(line: string): number {
    const seq = this.#lastSeq + 1;
    if (seq - this.#releasedThrough > this.#ends.length) this.#grow();
    // Room for the worst case (3 bytes per UTF-16 unit) + '\n', so a line never straddles chunks.
    const room = line.length * 3 + 1;
    let chunk = this.#chunks[this.#chunks.length - 1];
    if (chunk === undefined || chunk.used + room > chunk.buffer.length) {
      const base = chunk === undefined ? this.#releasedEnd : chunk.base + chunk.buffer.length;
      chunk = { buffer: Buffer.allocUnsafeSlow(Math.max(CHUNK_BYTES, room)), base, used: 0 };
      this.#chunks.push(chunk);
    }
    const written = utf8Write(chunk.buffer, line, chunk.used);
    chunk.buffer[chunk.used + written] = NEWLINE;
    chunk.used += written + 1;
    this.#bytes += written + 1;
    this.#ends[(seq - 1) & this.#mask] = chunk.base + chunk.used;
    if (line.indexOf('\n') !== -1) this.#multiline.set(seq, line);
    this.#lastSeq = seq;
    return seq;
  }

  /** Global end offset of line `seq` (unreleased), after its '\n': bytes up to it are this minus an earlier end. */
  endOf(seq: number): number {
    return this.#ends[(seq - 1) & this.#mask]!;
  }

  /** Global start offset of line `seq` (unreleased, or the one after the last). */
  startOf(seq: number): number {
    return seq - 1 === this.#releasedThrough ? this.#releasedEnd : this.endOf(seq - 1);
  }

  /** Lines first..last (unreleased), joined by '\n', as one Buffer (a view of the arena when it is in one chunk). */
  body(first: number, last: number): Buffer {
    this.#check(first, last);
    return this.#slices(this.startOf(first), this.endOf(last) - 1);
  }

  /** Line `seq` (unreleased) as a string. */
  line(seq: number): string {
    return this.body(seq, seq).toString('utf8');
  }

  /** Lines first..last (unreleased) as strings. */
  lines(first: number, last: number): string[] {
    const lines: string[] = [];
    for (let seq = first; seq <= last; seq++) lines.push(this.line(seq));
    return lines;
  }

  /**
   * Lines first..last as a checkpoint segment body (v2): joined by '\n', a line holding a '\n'
   * written JSON-quoted; `quoted` lists those lines' indexes in the segment.
   */
  segment(first: number, last: number): { parts: Buffer[]; quoted: number[] | undefined } {
    this.#check(first, last);
    let quoted: number[] | undefined;
    const parts: Buffer[] = [];
    let from = this.startOf(first);
    if (this.#multiline.size > 0) {
      for (let seq = first; seq <= last; seq++) {
        const line = this.#multiline.get(seq);
        if (line === undefined) continue;
        (quoted ??= []).push(seq - first);
        const start = this.startOf(seq);
        if (start > from) parts.push(this.#slices(from, start));
        parts.push(Buffer.from(seq === last ? JSON.stringify(line) : `${JSON.stringify(line)}\n`, 'utf8'));
        from = this.endOf(seq);
      }
    }
    const end = this.endOf(last) - 1;
    if (end > from) parts.push(this.#slices(from, end));
    return { parts, quoted };
  }

  /** Frees the bytes of every line up to `seq` (they will not be read again). */
  release(seq: number): void {
    if (seq <= this.#releasedThrough) return;
    if (seq > this.#lastSeq) throw new RangeError(`LineArena: cannot release line ${seq}, the last is ${this.#lastSeq}`);
    this.#releasedEnd = this.endOf(seq);
    if (this.#multiline.size > 0) for (const key of this.#multiline.keys()) if (key <= seq) this.#multiline.delete(key);
    this.#releasedThrough = seq;
    // Chunks wholly before the first unreleased byte go (the last chunk stays to be filled).
    let drop = 0;
    while (drop < this.#chunks.length - 1 && this.#chunks[drop]!.base + this.#chunks[drop]!.used <= this.#releasedEnd) drop++;
    if (drop > 0) this.#chunks.splice(0, drop);
  }

  /** Bytes held in chunks (used or not). */
  get heldBytes(): number {
    let total = 0;
    for (const chunk of this.#chunks) total += chunk.buffer.length;
    return total;
  }

  #check(first: number, last: number): void {
    if (!(first > this.#releasedThrough && first <= last && last <= this.#lastSeq)) {
      throw new RangeError(`LineArena: lines ${first}..${last} are not held (held: ${this.#releasedThrough + 1}..${this.#lastSeq})`);
    }
  }

  /** The bytes [from, to) (global offsets), skipping the unused tails of chunks. */
  #slices(from: number, to: number): Buffer {
    const parts: Buffer[] = [];
    let total = 0;
    for (const chunk of this.#chunks) {
      const start = Math.max(from, chunk.base);
      const end = Math.min(to, chunk.base + chunk.used);
      if (end <= start) continue;
      parts.push(chunk.buffer.subarray(start - chunk.base, end - chunk.base));
      total += end - start;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, total);
  }

  #grow(): void {
    const size = this.#ends.length * 2;
    const ends = new Float64Array(size);
    for (let seq = this.#releasedThrough + 1; seq <= this.#lastSeq; seq++) ends[(seq - 1) & (size - 1)] = this.endOf(seq);
    this.#ends = ends;
    this.#mask = size - 1;
  }
}
