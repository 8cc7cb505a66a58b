/**
 * SegmentStore: the spool's disk tier. Records are appended to numbered segment files in one folder
 * and found again by the pointer `append` returns, never by scanning.
 *
 * Invariants guarded here: a record reads back byte for byte as appended, or the read fails with a
 * `CorruptRecordError` (every record carries its length and a CRC32); a segment file is deleted as
 * soon as every record in it is released and it is no longer the one being appended to; the store
 * deletes nothing outside its folder and never wipes a folder it did not mark as a spool folder; an fd
 * is never closed while an fs request still uses it (Node: undefined behaviour, the number can be
 * reused by another file), and no fd outlives `close()` by more than the request in flight.
 */
import { closeSync, lstatSync, mkdirSync, openSync, read, readdirSync, rmSync, unlinkSync, write, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { crc32 } from 'node:zlib';
import { checkFunction, checkNumber, InvalidOptionError } from './errors.ts';
import { Queue } from './queue.ts';

/** Where a record lives: its segment number, the byte offset of its header, its payload bytes. */
export interface DiskPointer {
  readonly segment: number;
  readonly offset: number;
  /** Payload bytes (the record takes `RECORD_HEADER_BYTES` more on disk). */
  readonly length: number;
}

export interface SegmentStoreOptions<K> {
  /** The spool folder, an absolute path: created if missing, wiped at open, removed at close. */
  dir: string;
  /** A segment rotates before it would grow past this many bytes (integer >= 64); a larger record gets a segment of its own. */
  segmentBytes: number;
  /** Who owns the store, for messages. Default 'spool'. */
  owner?: string;
  /**
   * Called once per record, in append order over all segments, with the token given to `append`,
   * once the record's bytes are in the file, or with an error naming the file when the write
   * failed or the store was closed first. One callback for the store, so appends make no closures.
   */
  onWritten: (token: K, error?: Error) => void;
}

export interface SegmentStoreStats {
  /** Bytes of the segment files on disk, counting appended records whose write is still on its way. */
  readonly diskBytes: number;
  /** Records appended and not released. */
  readonly diskRecords: number;
  /** Segment files on disk. */
  readonly segments: number;
  /** Bytes appended whose write has not finished: the store holds copies of them meanwhile. */
  readonly unwrittenBytes: number;
  /** Positioned reads issued so far (a batch of contiguous records takes one). */
  readonly reads: number;
  /** File descriptors held, including a deleted segment's until its last request returns. */
  readonly openFiles: number;
}

export const SEGMENT_STORE_DEFAULTS = { owner: 'spool' } as const;

/** Bytes of a record's header: u32 BE payload length, u32 BE CRC32 (IEEE) of the payload. */
export const RECORD_HEADER_BYTES = 8;

/** The file that marks a folder as a spool folder, which the store may wipe. */
export const SPOOL_MARKER_FILE = '.sluice-spool';

/** Records are written in buffers of this many bytes (reused), one write in flight per segment. */
export const WRITE_BUFFER_BYTES = 1024 * 1024;
/** Write buffers kept for reuse. */
const SPARE_WRITE_BUFFERS = 2;
/** Contiguous records are read together up to this many bytes (one larger record is read alone). */
const MAX_READ_BYTES = 8 * 1024 * 1024;
const MAX_PAYLOAD_BYTES = 0xffff_ffff;
const MARKER_TEXT = 'This folder belongs to a sluice spool: it is wiped when the spool starts and removed when it stops.\n';

/** A record whose bytes on disk are not what was appended: names the file, the offset and the problem. */
export class CorruptRecordError extends Error {
  override readonly name = 'CorruptRecordError';
  readonly file: string;
  readonly offset: number;

  constructor(owner: string, file: string, offset: number, problem: string) {
    super(`${owner}: corrupt record in ${file} at byte offset ${offset}: ${problem}`);
    this.file = file;
    this.offset = offset;
  }
}

/** `segment-00000042.spool` */
export function segmentFileName(segment: number): string {
  return `segment-${String(segment).padStart(8, '0')}.spool`;
}

interface UnwrittenRecord<K> {
  readonly segment: Segment;
  /** Offset just past the record: it is in the file once `segment.written` reaches it. */
  readonly end: number;
  readonly token: K;
}

/** Payloads of one future write, in file order; with their headers the records take `bytes`. */
interface PendingWrite {
  /** Records (header and payload copy) laid out as they go into the file. */
  readonly buffer: Buffer;
  bytes: number;
}

interface WriteWaiter {
  readonly end: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/** Pointers that are contiguous in one segment and in the list, read with one positioned read. */
interface ReadGroup {
  readonly segment: Segment;
  readonly start: number;
  end: number;
  /** Index of the group's first pointer in the list given to `read`. */
  readonly first: number;
  count: number;
}

class Segment {
  readonly number: number;
  readonly file: string;
  readonly fd: number;
  /** Bytes reserved: the offset the next record gets. */
  size = 0;
  /** Bytes in the file: every record ending at or below this is written. */
  written = 0;
  /**
   * Header offsets of the records appended, in order (records are contiguous, so each one's length
   * follows from the next offset), and one bit per record once released: about 8 bytes a record.
   */
  readonly offsets: number[] = [];
  releasedBits = new Uint8Array(64);
  /** Records appended and not released. */
  live = 0;
  /** Appended bytes not yet handed to a write, cut at WRITE_BUFFER_BYTES. */
  readonly pendingWrites = new Queue<PendingWrite>();
  /** The pending write that new appends join, while it is under WRITE_BUFFER_BYTES. */
  filling: PendingWrite | undefined;
  writing = false;
  flushScheduled = false;
  /** Reads waiting for bytes that are not written yet. */
  waiters: WriteWaiter[] = [];
  /** Requests using `fd`: the write in flight and reads (also while they wait for a write). */
  requests = 0;
  onDisk = true;
  fdOpen = true;
  failure: Error | undefined;

  constructor(number: number, file: string, fd: number) {
    this.number = number;
    this.file = file;
    this.fd = fd;
  }
}

/**
 * Append-only segment files in one folder, for records that wait on disk until they are flushed
 * downstream. Lossless while open: every appended record can be read back until it is released;
 * nothing survives `close()` (the spool is not a durability boundary: no fsync, folder removed).
 *
 * Appends are synchronous reservations: the pointer is known at once, the record (header and a
 * copy of the payload) goes into a write buffer, and the appends of one synchronous job are flushed
 * on a microtask with one write per segment (buffers of about 4 MiB, reused); one write is in flight
 * per segment and the next is issued as soon as it returns, so what arrives meanwhile joins it. `onWritten` reports each record, in append order
 * over all segments, once its bytes are in the file. A read of a record still on its way waits for
 * its write (it is not served from memory, so every read goes through the checksum).
 *
 * Memory: a copy of each record until it is written (`stats.unwrittenBytes`, bounded by what the
 * caller appends before its writes report; the caller's payload is free once append returns), and
 * about 8 bytes per live record. Disk: what the caller appends and does not release
 * (`stats.diskBytes`), one fd per segment file.
 *
 * @example
 * const store = new SegmentStore({ dir: '/var/spool/sluice/cdc', segmentBytes: 64 << 20 });
 * store.open();
 * const pointer = store.append(bytes, (error) => error ? fail(error) : ack.enqueued());
 * const [again] = await store.read([pointer]);
 * store.release(pointer); // flushed downstream; its segment goes once all its records have
 * store.close();
 */
export class SegmentStore<K = unknown> {
  private readonly dir: string;
  private readonly segmentBytes: number;
  private readonly owner: string;
  /** Segments on disk, by number. */
  private readonly segments = new Map<number, Segment>();
  /** Segments whose fd is open (a deleted one stays here until its last request returns). */
  private readonly withFd = new Set<Segment>();
  /** Records whose `onWritten` is due, in append order over all segments. */
  private readonly unwritten = new Queue<UnwrittenRecord<K>>();
  private readonly onWritten: (token: K, error?: Error) => void;
  private readonly spareBuffers: Buffer[] = [];
  private active: Segment | undefined;
  private nextSegment = 0;
  private diskBytes = 0;
  private diskRecords = 0;
  private unwrittenBytes = 0;
  private reads = 0;
  private opened = false;
  private closed = false;

  constructor(options: SegmentStoreOptions<K>) {
    const owner = options.owner ?? SEGMENT_STORE_DEFAULTS.owner;
    const dir: unknown = options.dir;
    if (typeof dir !== 'string' || dir === '' || !isAbsolute(dir) || /[\u0000-\u001f\u007f]/.test(dir)) {
      throw new InvalidOptionError(owner, 'dir', dir, 'an absolute path without control characters');
    }
    this.owner = owner;
    this.dir = dir;
    this.segmentBytes = checkNumber(owner, 'segmentBytes', options.segmentBytes, { min: 64, integer: true });
    this.onWritten = checkFunction(owner, 'onWritten', options.onWritten);
  }

  /**
   * Prepares the folder: creates it, or wipes it when it holds the spool marker. Refuses a folder
   * that is not empty and has no marker (it is not a spool folder), and a symbolic link.
   * Opens no file; the first segment is created by the first append.
   */
  open(): void {
    if (this.closed) throw new Error(`${this.owner}: the segment store in ${this.dir} is closed; create a new one`);
    if (this.opened) throw new Error(`${this.owner}: the segment store in ${this.dir} is already open`);
    prepareFolder(this.dir, this.owner);
    this.opened = true;
  }

  /**
   * Reserves room for `payload` in the active segment (rotating it when the record would not fit)
   * and returns its pointer at once. `onWritten` is called, in append order, once the bytes are in
   * the file, or with an error naming the file when the write failed or the store was closed first.
   * Throws when the store is not open, for a payload that is not a Uint8Array, or when a new segment
   * file cannot be created.
   */
  append(payload: Uint8Array, token: K): DiskPointer {
    this.checkUsable('append to');
    // A codec may hand over anything: a wrong type must not reach the size bookkeeping.
    if (!(payload instanceof Uint8Array)) {
      throw new TypeError(`${this.owner}: append takes a Uint8Array payload, got ${payload === null ? 'null' : typeof payload}`);
    }
    const length = payload.byteLength;
    if (length > MAX_PAYLOAD_BYTES) {
      throw new RangeError(`${this.owner}: a record of ${length} bytes is over the ${MAX_PAYLOAD_BYTES}-byte limit of a segment record`);
    }
    const recordBytes = RECORD_HEADER_BYTES + length;
    let segment = this.active;
    // Segments are created by an append, so the active one always holds a record: a record larger
    // than segmentBytes fills a fresh segment alone.
    if (segment === undefined || segment.failure !== undefined || segment.size + recordBytes > this.segmentBytes) {
      segment = this.rotate();
    }
    const offset = segment.size;
    segment.size += recordBytes;
    segment.offsets.push(offset);
    if (segment.offsets.length > segment.releasedBits.length * 8) {
      const grown = new Uint8Array(segment.releasedBits.length * 2);
      grown.set(segment.releasedBits);
      segment.releasedBits = grown;
    }
    segment.live++;
    this.diskBytes += recordBytes;
    this.diskRecords++;
    this.unwrittenBytes += recordBytes;
    this.unwritten.push({ segment, end: segment.size, token });

    let pending = segment.filling;
    if (pending === undefined || pending.bytes + recordBytes > pending.buffer.length) {
      pending = { buffer: this.writeBuffer(recordBytes), bytes: 0 };
      segment.pendingWrites.push(pending);
      segment.filling = pending;
    }
    // Copied at once: the caller's buffer dies young (no external memory waits for a full GC) and
    // may be reused as soon as append returns.
    const at = pending.bytes;
    pending.buffer.writeUInt32BE(length, at);
    pending.buffer.writeUInt32BE(crc32(payload), at + 4);
    pending.buffer.set(payload, at + RECORD_HEADER_BYTES);
    pending.bytes += recordBytes;
    if (pending.bytes >= pending.buffer.length) segment.filling = undefined;
    this.scheduleWrite(segment);
    return { segment: segment.number, offset, length };
  }

  /**
   * Reads records back, resolving their payloads in the order given. Pointers contiguous in one
   * segment (in list order) share one positioned read of up to 8 MiB. Each record's header is checked
   * against its pointer and its CRC32 against its payload: a mismatch or a short file rejects with a
   * `CorruptRecordError`. A record still being written is read once its write is done.
   * Rejects at once for a pointer that was released or never appended, and when the store is closed.
   * The payloads are views into shared read buffers: copy one that you keep for long.
   */
  async read(pointers: readonly DiskPointer[]): Promise<Uint8Array[]> {
    this.checkUsable('read from');
    const groups = this.groupReads(pointers);
    const payloads = new Array<Uint8Array>(pointers.length);
    // Counted before any await, so no fd is closed under a read waiting for its write.
    for (const group of groups) group.segment.requests++;
    await Promise.all(groups.map((group) => this.readGroup(group, pointers, payloads)));
    return payloads;
  }

  /**
   * The record was flushed downstream: forget it, and delete its segment file when this was the
   * segment's last live record and the segment is not the active one. Does nothing once closed.
   * Throws for a pointer that is not live (released already, or never appended).
   */
  release(pointer: DiskPointer): void {
    if (this.closed) return;
    const { segment, index } = this.liveRecordOf(pointer, 'release');
    segment.releasedBits[index >> 3]! |= 1 << (index & 7);
    segment.live--;
    this.diskRecords--;
    if (segment.live === 0 && segment !== this.active) this.deleteSegment(segment);
  }

  get stats(): SegmentStoreStats {
    return {
      diskBytes: this.diskBytes,
      diskRecords: this.diskRecords,
      segments: this.segments.size,
      unwrittenBytes: this.unwrittenBytes,
      reads: this.reads,
      openFiles: this.withFd.size,
    };
  }

  /**
   * Closes every fd (one still used by a request in flight is closed when that request returns),
   * removes the folder, and calls every pending `onWritten` with an error saying the store was
   * closed; reads waiting for a write reject. Idempotent. Later appends throw, later reads reject,
   * later releases do nothing.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const closedError = new Error(`${this.owner}: the segment store in ${this.dir} was closed before the record was written`);
    const due = this.unwritten.drain();
    for (const segment of this.withFd) {
      segment.pendingWrites.clear();
      segment.filling = undefined;
      const waiters = segment.waiters;
      segment.waiters = [];
      for (const waiter of waiters) waiter.reject(closedError);
      this.closeFdIfIdle(segment);
    }
    this.segments.clear();
    this.active = undefined;
    this.diskBytes = 0;
    this.diskRecords = 0;
    this.unwrittenBytes = 0;
    let removeError: Error | undefined;
    if (this.opened) {
      try {
        rmSync(this.dir, { recursive: true, force: true });
      } catch (error) {
        removeError = new Error(`${this.owner}: could not remove the spool folder ${this.dir}: ${messageOf(error)}`, { cause: error });
      }
    }
    this.report(due, closedError);
    if (removeError) throw removeError;
  }

  private checkUsable(action: string): void {
    if (this.closed) throw new Error(`${this.owner}: cannot ${action} the segment store in ${this.dir}: it is closed`);
    if (!this.opened) throw new Error(`${this.owner}: cannot ${action} the segment store in ${this.dir}: call open() first`);
  }

  private rotate(): Segment {
    const number = this.nextSegment;
    const file = join(this.dir, segmentFileName(number));
    let fd: number;
    try {
      // Exclusive create: never reuses (or follows) something that appeared in the folder.
      fd = openSync(file, 'wx+');
    } catch (error) {
      throw new Error(`${this.owner}: cannot create segment file ${file}: ${messageOf(error)}`, { cause: error });
    }
    this.nextSegment++;
    const segment = new Segment(number, file, fd);
    this.segments.set(number, segment);
    this.withFd.add(segment);
    const previous = this.active;
    this.active = segment;
    if (previous !== undefined && previous.live === 0) this.deleteSegment(previous);
    return segment;
  }

  private deleteSegment(segment: Segment): void {
    this.segments.delete(segment.number);
    segment.onDisk = false;
    this.diskBytes -= segment.size;
    try {
      unlinkSync(segment.file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new Error(`${this.owner}: could not delete released segment file ${segment.file}: ${messageOf(error)}`, { cause: error });
      }
    } finally {
      // Writes still pending go to the unlinked file (their callbacks stay in order); the fd goes after them.
      this.closeFdIfIdle(segment);
    }
  }

  /** Closes the fd once nothing uses it and nothing more will: the store is closed, or the file is gone and written out. */
  private closeFdIfIdle(segment: Segment): void {
    if (!segment.fdOpen || segment.requests > 0) return;
    if (!this.closed && (segment.onDisk || segment.pendingWrites.length > 0)) return;
    segment.fdOpen = false;
    this.withFd.delete(segment);
    closeSync(segment.fd);
  }

  private scheduleWrite(segment: Segment): void {
    if (segment.writing || segment.flushScheduled) return;
    segment.flushScheduled = true;
    // Once the current job is done, so every append it makes joins one write.
    queueMicrotask(() => {
      segment.flushScheduled = false;
      this.write(segment);
    });
  }

  private write(segment: Segment): void {
    if (this.closed || segment.writing || segment.failure !== undefined) return;
    const pending = segment.pendingWrites.shift();
    if (pending === undefined) return;
    if (pending === segment.filling) segment.filling = undefined;
    const position = segment.written;
    segment.writing = true;
    segment.requests++;
    write(segment.fd, pending.buffer, 0, pending.bytes, position, (error, bytesWritten) => {
      segment.writing = false;
      segment.requests--;
      this.closeFdIfIdle(segment);
      this.recycle(pending.buffer);
      if (this.closed) return;
      if (error === null && bytesWritten !== pending.bytes) {
        error = Object.assign(new Error(`short write: ${bytesWritten} of ${pending.bytes} bytes (disk full?)`), { code: 'ESHORTWRITE' });
      }
      if (error !== null) {
        this.failSegment(segment, error, position);
      } else {
        segment.written += bytesWritten;
        this.unwrittenBytes -= bytesWritten;
        // Keep the file busy before running callbacks.
        this.write(segment);
        this.wakeReaders(segment);
      }
      this.settleWritten();
    });
  }

  /** A buffer for the next write: a recycled one of the usual size, or a new one large enough. */
  private writeBuffer(recordBytes: number): Buffer {
    const usual = Math.min(WRITE_BUFFER_BYTES, this.segmentBytes);
    if (recordBytes <= usual && this.spareBuffers.length > 0) return this.spareBuffers.pop()!;
    return Buffer.allocUnsafeSlow(Math.max(usual, recordBytes));
  }

  /** Keeps a few write buffers of the usual size for reuse, so steady writing allocates nothing. */
  private recycle(buffer: Buffer): void {
    if (buffer.length === Math.min(WRITE_BUFFER_BYTES, this.segmentBytes) && this.spareBuffers.length < SPARE_WRITE_BUFFERS) {
      this.spareBuffers.push(buffer);
    }
  }

  private failSegment(segment: Segment, cause: Error, position: number): void {
    const failure = new Error(
      `${this.owner}: write to ${segment.file} at byte offset ${position} failed: ${cause.message}`,
      { cause },
    );
    segment.failure = failure;
    this.unwrittenBytes -= segment.size - segment.written;
    segment.pendingWrites.clear();
    segment.filling = undefined;
    const waiters = segment.waiters;
    segment.waiters = [];
    for (const waiter of waiters) waiter.reject(failure);
    this.closeFdIfIdle(segment);
  }

  private wakeReaders(segment: Segment): void {
    if (segment.waiters.length === 0) return;
    const waiting: WriteWaiter[] = [];
    for (const waiter of segment.waiters) {
      if (waiter.end <= segment.written) waiter.resolve();
      else waiting.push(waiter);
    }
    segment.waiters = waiting;
  }

  /** Calls `onWritten` for records at the head of the append order whose write has ended. */
  private settleWritten(): void {
    const due: UnwrittenRecord<K>[] = [];
    for (let record = this.unwritten.peek(); record !== undefined; record = this.unwritten.peek()) {
      if (record.end > record.segment.written && record.segment.failure === undefined) break;
      due.push(this.unwritten.shift()!);
    }
    this.report(due);
  }

  /**
   * Calls `onWritten` for each record (with `error`, else its segment's failure if any); one that
   * throws does not stop the others, and the first error is rethrown afterwards, outside the store's
   * bookkeeping, as an uncaught error (like any throwing fs callback).
   */
  private report(records: readonly UnwrittenRecord<K>[], error?: Error): void {
    let failed = false;
    let first: unknown;
    for (const record of records) {
      const cause = error ?? (record.end <= record.segment.written ? undefined : record.segment.failure);
      try {
        this.onWritten(record.token, cause);
      } catch (thrown) {
        if (!failed) first = thrown;
        failed = true;
      }
    }
    if (failed) {
      queueMicrotask(() => {
        throw first;
      });
    }
  }

  /** Checks every pointer and cuts the list into runs that are contiguous on disk. */
  private groupReads(pointers: readonly DiskPointer[]): ReadGroup[] {
    const groups: ReadGroup[] = [];
    let group: ReadGroup | undefined;
    for (let i = 0; i < pointers.length; i++) {
      const pointer = pointers[i]!;
      const { segment } = this.liveRecordOf(pointer, 'read');
      const end = pointer.offset + RECORD_HEADER_BYTES + pointer.length;
      if (
        group !== undefined &&
        group.segment === segment &&
        group.end === pointer.offset &&
        end - group.start <= MAX_READ_BYTES
      ) {
        group.end = end;
        group.count++;
      } else {
        group = { segment, start: pointer.offset, end, first: i, count: 1 };
        groups.push(group);
      }
    }
    return groups;
  }

  /** The segment and index of a live record, or an error saying why the pointer is not one. */
  private liveRecordOf(pointer: DiskPointer, action: string): { segment: Segment; index: number } {
    const segment = typeof pointer === 'object' && pointer !== null ? this.segments.get(pointer.segment) : undefined;
    const index = segment === undefined ? -1 : indexOf(segment.offsets, pointer.offset);
    if (segment === undefined || index < 0 || (segment.releasedBits[index >> 3]! & (1 << (index & 7))) !== 0) {
      throw new Error(
        `${this.owner}: cannot ${action} record ${describePointer(pointer)} in ${this.dir}: it is not live (released already, or never appended here)`,
      );
    }
    const end = index + 1 < segment.offsets.length ? segment.offsets[index + 1]! : segment.size;
    const length = end - pointer.offset - RECORD_HEADER_BYTES;
    if (length !== pointer.length) {
      throw new Error(
        `${this.owner}: cannot ${action} record ${describePointer(pointer)} in ${this.dir}: the record appended there has ${length} payload bytes`,
      );
    }
    return { segment, index };
  }

  private async readGroup(group: ReadGroup, pointers: readonly DiskPointer[], payloads: Uint8Array[]): Promise<void> {
    const { segment } = group;
    try {
      if (segment.written < group.end) {
        if (segment.failure !== undefined) throw segment.failure;
        await new Promise<void>((resolve, reject) => segment.waiters.push({ end: group.end, resolve, reject }));
      }
      if (this.closed) throw new Error(`${this.owner}: cannot read from the segment store in ${this.dir}: it was closed`);
      const buffer = Buffer.allocUnsafe(group.end - group.start);
      const filled = await this.readAt(segment, buffer, group.start);
      for (let i = group.first; i < group.first + group.count; i++) {
        payloads[i] = this.checkedPayload(segment, buffer, filled, group.start, pointers[i]!);
      }
    } finally {
      segment.requests--;
      this.closeFdIfIdle(segment);
    }
  }

  /** Fills `buffer` from `position` until it is full or the file ends; resolves the bytes read. */
  private readAt(segment: Segment, buffer: Buffer, position: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const next = (filled: number) => {
        this.reads++;
        read(segment.fd, buffer, filled, buffer.length - filled, position + filled, (error, bytesRead) => {
          if (error) return reject(new Error(`${this.owner}: read of ${segment.file} at byte offset ${position + filled} failed: ${error.message}`, { cause: error }));
          const total = filled + bytesRead;
          if (bytesRead === 0 || total === buffer.length) resolve(total);
          else next(total);
        });
      };
      next(0);
    });
  }

  private checkedPayload(segment: Segment, buffer: Buffer, filled: number, start: number, pointer: DiskPointer): Uint8Array {
    const at = pointer.offset - start;
    const corrupt = (problem: string) => new CorruptRecordError(this.owner, segment.file, pointer.offset, problem);
    // A read that came back short stopped at the end of the file.
    const fileEnd = filled > 0 ? `at byte ${start + filled}` : `at or before byte ${start}`;
    if (at + RECORD_HEADER_BYTES > filled) {
      throw corrupt(`truncated: the file ends ${fileEnd}, short of the record's ${RECORD_HEADER_BYTES}-byte header`);
    }
    const length = buffer.readUInt32BE(at);
    if (length !== pointer.length) {
      throw corrupt(`length mismatch: the header says ${length} payload bytes, the pointer ${pointer.length}`);
    }
    const payloadStart = at + RECORD_HEADER_BYTES;
    if (payloadStart + length > filled) {
      throw corrupt(`truncated: the file ends ${fileEnd}, short of the record's ${length}-byte payload`);
    }
    const payload = buffer.subarray(payloadStart, payloadStart + length);
    const stored = buffer.readUInt32BE(at + 4);
    const computed = crc32(payload);
    if (stored !== computed) {
      throw corrupt(`bad checksum: the header has CRC32 ${hex(stored)}, the payload's is ${hex(computed)}`);
    }
    return payload;
  }
}

/** Creates the folder, or wipes it when it is a spool folder; refuses anything else. */
function prepareFolder(dir: string, owner: string): void {
  const marker = join(dir, SPOOL_MARKER_FILE);
  const info = lstatSync(dir, { throwIfNoEntry: false });
  if (info === undefined) {
    mkdirSync(dir, { recursive: true });
  } else if (info.isSymbolicLink()) {
    throw new Error(`${owner}: refuses to use ${dir} as a spool folder: it is a symbolic link; set the dir option to the real folder's path`);
  } else if (!info.isDirectory()) {
    throw new Error(`${owner}: cannot use ${dir} as a spool folder: it is not a folder; set the dir option to a new or empty folder`);
  } else {
    const entries = readdirSync(dir);
    const marked = lstatSync(marker, { throwIfNoEntry: false })?.isFile() === true;
    if (entries.length > 0 && !marked) {
      throw new Error(
        `${owner}: refuses to wipe ${dir}: it is not empty and has no ${SPOOL_MARKER_FILE} marker, so it is not a spool folder; ` +
          `set the dir option to a new or empty folder (the spool deletes its contents at start and the folder at stop)`,
      );
    }
    // rmSync removes a symbolic link itself, never what it points to.
    for (const entry of entries) if (entry !== SPOOL_MARKER_FILE) rmSync(join(dir, entry), { recursive: true, force: true });
    if (marked) return;
  }
  writeFileSync(marker, MARKER_TEXT, { flag: 'wx' });
}

/** Binary search of a sorted array: the index of `value`, or -1. */
function indexOf(sorted: readonly number[], value: number): number {
  let low = 0;
  let high = sorted.length - 1;
  while (low <= high) {
    const middle = (low + high) >>> 1;
    const at = sorted[middle]!;
    if (at === value) return middle;
    if (at < value) low = middle + 1;
    else high = middle - 1;
  }
  return -1;
}

function describePointer(pointer: DiskPointer): string {
  if (pointer === null || typeof pointer !== 'object') return String(pointer);
  return `{ segment: ${pointer.segment}, offset: ${pointer.offset}, length: ${pointer.length} }`;
}

function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
