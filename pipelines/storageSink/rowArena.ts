/**
 * Encoded rows kept as UTF-8 bytes in shared chunks off the V8 heap, from the encode stage until
 * their data file is written.
 *
 * Why: tens of thousands of rows wait for their file, and every young-generation collection copies
 * what is still alive, twice before it is promoted. A row's text was a third of what each row kept
 * on the heap (~224 of ~670 bytes, measured in a heap snapshot of the sink bench); as bytes in a
 * chunk it is a pointer and an offset. A chunk is freed by the collector once no row refers to it;
 * rows are written in order, so chunks go in order too.
 *
 * Invariant guarded here: the bytes of a row are exactly the UTF-8 of its encoded text, and a data
 * file is its rows' bytes one after another.
 */
import type { EncodedRow } from './encoder.ts';
import type { RowItem } from './sinkItems.ts';

/** Chunk size: room for about a thousand rows of 200 bytes. */
const CHUNK_BYTES = 256 * 1024;
/** A row above this takes a buffer of its own, so a big row does not waste the rest of a chunk. */
const OWN_BUFFER_BYTES = CHUNK_BYTES / 8;
/** The longest UTF-8 character: what a text longer than its stated length may write past it. */
const SLACK_BYTES = 4;

export class RowArena {
  private chunk = Buffer.allocUnsafeSlow(CHUNK_BYTES);
  private used = 0;

  /**
   * The row item of an encoded row, its text copied into the arena. Throws a RangeError when the
   * text's UTF-8 is not `bytes` long.
   */
  rowOf(encoded: EncodedRow): RowItem {
    const { text, bytes } = encoded;
    let chunk: Buffer;
    let offset: number;
    if (bytes > OWN_BUFFER_BYTES) {
      chunk = Buffer.allocUnsafeSlow(bytes + SLACK_BYTES);
      offset = 0;
    } else {
      if (this.used + bytes + SLACK_BYTES > CHUNK_BYTES) {
        this.chunk = Buffer.allocUnsafeSlow(CHUNK_BYTES);
        this.used = 0;
      }
      chunk = this.chunk;
      offset = this.used;
      this.used += bytes;
    }
    // Room for one character more: a text longer than `bytes` writes into it and is caught.
    const written = chunk.write(text, offset, bytes + SLACK_BYTES, 'utf8');
    if (written !== bytes) throw new RangeError(`RowArena: a row's text is ${written > bytes ? 'at least ' : ''}${written} bytes of UTF-8 where ${bytes} were given`);
    return { kind: 'row', folder: encoded.folder, dispatcherId: encoded.dispatcherId, chunk, offset, bytes };
  }
}

/** The text of a row item (for tests and errors; the writer copies bytes). */
export function rowText(row: RowItem): string {
  return row.chunk.toString('utf8', row.offset, row.offset + row.bytes);
}

/**
 * A data file of `rows`, one after another, after `header` when given (csv's output-field-header
 * line); `byteLength` is the sum of the rows' bytes. Rows that lie next to each other in a chunk
 * (consecutive rows of one file usually do) are copied in one go.
 */
export function rowsFileBytes(rows: readonly RowItem[], byteLength: number, header?: Uint8Array): Buffer {
  const headerLength = header === undefined ? 0 : header.byteLength;
  const total = headerLength + byteLength;
  const file = Buffer.allocUnsafe(total);
  if (header !== undefined) file.set(header, 0);
  let at = headerLength;
  let i = 0;
  while (i < rows.length) {
    const { chunk, offset } = rows[i]!;
    let end = offset + rows[i]!.bytes;
    for (i++; i < rows.length && rows[i]!.chunk === chunk && rows[i]!.offset === end; i++) end += rows[i]!.bytes;
    if (at + end - offset > total) throw new RangeError(`rowsFileBytes: the rows are more than the ${byteLength} bytes given`);
    at += chunk.copy(file, at, offset, end);
  }
  if (at !== total) throw new RangeError(`rowsFileBytes: the rows are ${at - headerLength} bytes, not the ${byteLength} given`);
  return file;
}
