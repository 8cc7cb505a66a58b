/**
 * spool: a bounded memory tier that spills to disk segments, so accepting an item never blocks
 * and memory stays within its quota, while emission keeps input order.
 *
 * Invariants guarded here: every accepted item is emitted exactly once, in input order, whether it
 * waited in memory or on disk; `enqueued()` is called only once the item is stored (in memory, or
 * written to a segment), never while the disk quota is exhausted; bytes emitted and not yet flushed
 * stay under `windowBytes` (one item may exceed it alone, when nothing else is out); a segment file
 * is deleted only when every record in it was flushed downstream. The spool is never a durability
 * boundary: it calls `enqueued()`, never `flushed()`.
 */
import { BehaviorSubject, Observable, type MonoTypeOperatorFunction } from 'rxjs';
import { isAbsolute } from 'node:path';
import { bindAck, type Ack, type AckHandler, type Acked } from '../lib/core/ack.ts';
import { checkFunction, checkNumber, InvalidOptionError } from '../lib/core/errors.ts';
import { Queue } from '../lib/core/queue.ts';
import { RECORD_HEADER_BYTES, SegmentStore, type DiskPointer } from '../lib/core/segmentStore.ts';
import { subscribeLinked } from '../lib/core/subscribeLinked.ts';

/** Turns values into bytes for the disk tier and back. */
export interface SpoolCodec<T> {
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

export interface SpoolOptions<T> {
  /** The spool's own folder (absolute): wiped at start and removed at teardown. */
  dir: string;
  /**
   * Bytes held in memory: values in the memory tier plus an estimated 160 B of bookkeeping per queued
   * item (spilled ones too). A value that does not fit spills to disk, and as the bookkeeping grows
   * the newest values in memory move to disk. Default 0.2 × diskQuotaBytes.
   */
  memoryBytes?: number;
  /** Bytes of segment files on disk; beyond it wakes are held (reason `quota`). Default 10 GiB. */
  diskQuotaBytes?: number;
  /** A segment file rotates at this size. Default 64 MiB. */
  segmentBytes?: number;
  /** Bytes emitted downstream and not yet flushed. Default 64 MiB. */
  windowBytes?: number;
  /** Bytes of read-back prepared ahead of emission, in batched positioned reads. Default 1 MiB. */
  readAheadBytes?: number;
  /** Needed unless values are Uint8Array (Buffers). */
  codec?: SpoolCodec<T>;
  /** Bytes a value holds in memory. Default: its byteLength, or the length of its encoding. */
  sizeOf?: (value: T) => number;
}

export interface SpoolStats {
  /** Bytes and items waiting in the memory tier (not counting quota-held items). */
  memoryBytes: number;
  memoryItems: number;
  /** Estimated memory of the queued items' bookkeeping (160 B each), charged to memoryBytes too. */
  indexBytes: number;
  /** Bytes of segment files on disk, and items waiting there. */
  diskBytes: number;
  diskItems: number;
  segments: number;
  /** Wakes held because the disk quota is exhausted, and why (null when none). */
  heldWakes: number;
  holdReason: 'quota' | null;
  /** Bytes emitted and not yet flushed. */
  windowBytes: number;
  /** Totals: items spilled to disk, items larger than the whole quota passed straight through. */
  spilledItems: number;
  oversizedItems: number;
}

/** The operator, with its stats as an Observable (current value first, coalesced per tick). */
export interface SpoolOperator<T> extends MonoTypeOperatorFunction<Acked<T>> {
  readonly stats$: Observable<SpoolStats>;
}

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

export const SPOOL_DEFAULTS = {
  diskQuotaBytes: 10 * GiB,
  memoryShareOfQuota: 0.2,
  segmentBytes: 64 * MiB,
  windowBytes: 64 * MiB,
  readAheadBytes: 1 * MiB,
} as const;

const OWNER = 'spool';

/**
 * What one queued item costs in memory besides its value (its entry, the upstream ack it keeps,
 * its slots in the queue and the segment index; measured at about 152 B on Node 20). It is charged
 * to `memoryBytes`, so a spool with many small items spilled keeps fewer values in memory instead
 * of growing past its quota.
 */
const ENTRY_BYTES = 160;

/** Items looked at for one read-ahead batch, so tiny or in-memory items cannot make it scan far. */
const MAX_READ_AHEAD_ITEMS = 4096;

/** Folders of live spools in this process: two spools wiping one folder would destroy each other. */
const foldersInUse = new Set<string>();

/** Where a queued item waits; `emitted` once it left (its entry lives on as its ack's context). */
type Tier = 'memory' | 'disk' | 'held' | 'oversized' | 'emitted';

/**
 * One accepted item, from arrival until it is flushed downstream; also the context of its emitted
 * ack and its token in the segment store, so a spilled item costs no closure (a few dozen bytes).
 */
class Entry<T> implements DiskPointer {
  readonly ack: Ack;
  readonly bytes: number;
  tier: Tier = 'memory';
  /** The value while it is in memory (or once read back from disk). */
  value: T | undefined;
  /** Where its record is, once spilled (segment -1: never spilled). */
  segment = -1;
  offset = 0;
  length = 0;

  constructor(ack: Ack, bytes: number, value: T) {
    this.ack = ack;
    this.bytes = bytes;
    this.value = value;
  }

  /** Keeps the record's place, not the pointer object: a spilled item should cost a few dozen bytes. */
  spilledTo(pointer: DiskPointer): void {
    this.segment = pointer.segment;
    this.offset = pointer.offset;
    this.length = pointer.length;
  }
}

/**
 * Accepts every item at once into a memory tier up to `memoryBytes`, beyond it into append-only
 * disk segments, and emits them downstream in input order while the bytes emitted and not yet
 * flushed stay under `windowBytes`.
 *
 * Memory: values in memory plus an estimated 160 B per queued item stay within `memoryBytes`; the
 * newest values move to disk as spilled items' bookkeeping grows. Past that (when the bookkeeping
 * alone needs more), it grows with the disk: at most diskQuotaBytes / record size items.
 *
 * Lossless: nothing is dropped; a full disk quota holds the wakes of further items (their paths
 * stop) until flushes free a segment or the memory tier, and those items wait in memory meanwhile,
 * so memory beyond `memoryBytes` is bounded by what paced sources already sent. An item larger than
 * the whole disk quota that does not fit in memory passes straight through (in order), its wake
 * left to downstream. A corrupted record (bad checksum, truncated segment) errors the output with
 * the segment file and offset; it is never emitted.
 *
 * @example
 * const spooled = spool<Uint8Array>({ dir: '/var/lib/app/spool', memoryBytes: 64 << 20, windowBytes: 64 << 20 });
 * encoded$.pipe(spooled, batchBy({ maxBytes: 64 << 20, sizeOf: (i) => i.value.byteLength }), writeFiles);
 * spooled.stats$.subscribe((s) => console.log(s.memoryBytes, s.diskBytes));
 *
 * Options: `dir` (absolute), `memoryBytes`, `diskQuotaBytes`, `segmentBytes`, `windowBytes`,
 * `readAheadBytes` (all bytes), `codec`, `sizeOf` (bytes). A spool folder serves one subscription
 * at a time.
 */
export function spool<T>(options: SpoolOptions<T>): SpoolOperator<T> {
  const settings = checkOptions(options);
  const stats$ = new BehaviorSubject<SpoolStats>(emptyStats());

  const operator = (source: Observable<Acked<T>>) =>
    new Observable<Acked<T>>((subscriber) => {
      const { dir, memoryBytes, diskQuotaBytes, windowBytes, readAheadBytes, codec, sizeOf } = settings;
      if (foldersInUse.has(dir)) {
        subscriber.error(new Error(`${OWNER}: folder ${dir} is already in use by another spool; give each spool its own folder`));
        return;
      }
      const pending = new Queue<Entry<T>>();
      /** Entries placed in the memory tier, oldest first; emitted or evicted ones are skipped lazily. */
      const inMemory = new Queue<Entry<T>>();
      /** Entries whose wake is held (disk quota), oldest first; emitted ones are skipped lazily. */
      const held = new Queue<Entry<T>>();
      let memoryUsed = 0;
      let memoryItems = 0;
      let diskItems = 0;
      let heldWakes = 0;
      let windowUsed = 0;
      let spilledItems = 0;
      let oversizedItems = 0;
      let index = 0;
      let reading = false;
      let sourceDone = false;
      let closed = false;
      let statsDue = false;

      const store = new SegmentStore<Entry<T>>({
        dir,
        segmentBytes: settings.segmentBytes,
        owner: OWNER,
        onWritten: (entry, error) => {
          if (error) return fail(error);
          if (!closed) entry.ack.enqueued();
        },
      });
      try {
        store.open();
      } catch (error) {
        subscriber.error(error);
        return;
      }
      foldersInUse.add(dir);

      const publishStats = () => {
        statsDue = false;
        if (closed) return;
        const disk = store.stats;
        stats$.next({
          memoryBytes: memoryUsed,
          memoryItems,
          indexBytes: indexBytes(),
          diskBytes: disk.diskBytes,
          diskItems,
          segments: disk.segments,
          heldWakes,
          holdReason: heldWakes > 0 ? 'quota' : null,
          windowBytes: windowUsed,
          spilledItems,
          oversizedItems,
        });
      };
      const reportStats = () => {
        if (statsDue) return;
        statsDue = true;
        queueMicrotask(publishStats);
      };

      const fail = (error: unknown) => {
        if (!closed) subscriber.error(error);
      };

      // Without a codec, values are bytes (checked as they arrive).
      const encode = (value: T): Uint8Array => (codec ? codec.encode(value) : (value as Uint8Array));

      /** The estimated memory of the queued items themselves (entries, acks, index), values aside. */
      const indexBytes = () => pending.length * ENTRY_BYTES;

      /** Room on disk for `recordBytes` more, counting what is on its way to the files. */
      const diskHasRoom = (recordBytes: number) => store.stats.diskBytes + recordBytes <= diskQuotaBytes;

      /** Stores an entry in memory, on disk, or holds it (quota); wakes its path once stored. */
      const place = (entry: Entry<T>, value: T): void => {
        if (memoryUsed + indexBytes() + entry.bytes <= memoryBytes) {
          entry.tier = 'memory';
          memoryUsed += entry.bytes;
          memoryItems++;
          inMemory.push(entry);
          entry.ack.enqueued();
          return;
        }
        if (!spill(entry, value)) {
          entry.tier = 'held';
          heldWakes++;
        }
      };

      /** Places a new entry; one that has to wait joins the held queue. */
      const admit = (entry: Entry<T>, value: T): void => {
        place(entry, value);
        if (entry.tier === 'held') held.push(entry);
      };

      /** Writes an entry's value to a segment; false when the disk quota has no room for it. */
      const spill = (entry: Entry<T>, value: T): boolean => {
        const payload = encode(value);
        if (!diskHasRoom(payload.byteLength + RECORD_HEADER_BYTES)) return false;
        entry.tier = 'disk';
        entry.value = undefined;
        diskItems++;
        spilledItems++;
        entry.spilledTo(store.append(payload, entry));
        return true;
      };

      /**
       * Keeps values plus bookkeeping within memoryBytes as the bookkeeping of spilled items grows:
       * the newest values in memory (the last to be emitted) move to disk. Order is unaffected.
       */
      const evictOverQuota = () => {
        while (memoryUsed > 0 && memoryUsed + indexBytes() > memoryBytes) {
          const entry = inMemory.pop();
          if (entry === undefined) return;
          if (entry.tier !== 'memory') continue;
          const bytes = entry.bytes;
          if (!spill(entry, entry.value as T)) {
            inMemory.push(entry);
            return;
          }
          memoryUsed -= bytes;
          memoryItems--;
        }
      };

      /** A flush freed memory or a segment: held items take the room, in order. */
      const placeHeld = () => {
        for (let entry = held.peek(); entry !== undefined; entry = held.peek()) {
          if (entry.tier === 'held') {
            heldWakes--;
            place(entry, entry.value as T);
            // Still no room: later held items wait too, so wakes are released in input order.
            if (entry.tier === 'held') return;
          }
          held.shift();
        }
      };

      const accept = (item: Acked<T>) => {
        let bytes: number;
        try {
          if (!codec && !(item.value instanceof Uint8Array)) {
            throw new TypeError(`${OWNER}: item #${index} is not a Uint8Array; give the spool a codec for such values`);
          }
          bytes = checkedSize(sizeOf(item.value), index);
          const entry = new Entry(item.ack, bytes, item.value);
          pending.push(entry);
          if (bytes > diskQuotaBytes && memoryUsed + indexBytes() + bytes > memoryBytes) {
            entry.tier = 'oversized';
            oversizedItems++;
          } else {
            admit(entry, item.value);
          }
        } catch (error) {
          subscriber.error(error);
          return;
        }
        index++;
        pump();
      };

      /** Reads back, in one batch, the disk items the window can take next (at least the head). */
      const readAhead = () => {
        const head = pending.peek();
        if (reading || head === undefined || !windowAdmits(head)) return;
        const batch: Entry<T>[] = [];
        let budget = Math.max(head.bytes, Math.min(readAheadBytes, windowBytes - windowUsed));
        let scanned = 0;
        for (const entry of pending) {
          if ((budget < entry.bytes && batch.length > 0) || ++scanned > MAX_READ_AHEAD_ITEMS) break;
          budget -= entry.bytes;
          if (entry.tier === 'disk' && entry.value === undefined) batch.push(entry);
        }
        if (batch.length === 0) return;
        reading = true;
        store.read(batch).then(
          (payloads) => {
            reading = false;
            if (closed) return;
            try {
              for (let i = 0; i < batch.length; i++) batch[i]!.value = codec ? codec.decode(payloads[i]!) : (payloads[i] as T);
            } catch (error) {
              return fail(error);
            }
            pump();
          },
          (error: unknown) => {
            reading = false;
            fail(error);
          },
        );
      };

      /** The stages of an emitted item's ack (its context is its entry). */
      const emitted: AckHandler<Entry<T>> = {
        // Downstream's wake implies ours (an oversized item is only ever woken this way).
        enqueued: (entry) => entry.ack.enqueued(),
        flushed: (entry) => {
          settle(entry);
          entry.ack.flushed();
        },
        failed: (entry, error) => {
          settle(entry);
          entry.ack.failed(error);
        },
      };

      const emit = (entry: Entry<T>) => {
        const { bytes, ack: upstream } = entry;
        const value = entry.value as T;
        entry.value = undefined;
        windowUsed += bytes;
        if (entry.tier === 'memory') {
          memoryUsed -= bytes;
          memoryItems--;
        } else if (entry.tier === 'disk') {
          diskItems--;
        } else if (entry.tier === 'held') {
          // Leaving the spool ends the quota hold of this item.
          heldWakes--;
          upstream.enqueued();
        }
        entry.tier = 'emitted';
        // Emitted (and evicted) entries leave the memory list lazily: drop those at its front now.
        while (inMemory.length > 0 && inMemory.peek()!.tier !== 'memory') inMemory.shift();
        subscriber.next({ value, ack: bindAck(emitted, entry) });
      };

      /** An emitted item was flushed (or failed) downstream: free its window bytes and record. */
      const settle = (entry: Entry<T>) => {
        windowUsed -= entry.bytes;
        if (closed) return;
        if (entry.segment >= 0) store.release(entry);
        pump();
      };

      /** The window takes an item while it fits, or alone when nothing else is out. */
      const windowAdmits = (entry: Entry<T>) => windowUsed === 0 || windowUsed + entry.bytes <= windowBytes;

      let pumping = false;
      const pump = () => {
        if (pumping || closed) return;
        pumping = true;
        try {
          placeHeld();
          evictOverQuota();
          for (let head = pending.peek(); head !== undefined && !subscriber.closed; head = pending.peek()) {
            if (!windowAdmits(head) || (head.tier === 'disk' && head.value === undefined)) break;
            pending.shift();
            emit(head);
          }
          readAhead();
          if (sourceDone && pending.length === 0) subscriber.complete();
        } finally {
          pumping = false;
        }
        reportStats();
      };

      subscribeLinked(
        source,
        {
          next: accept,
          error: (error: unknown) => subscriber.error(error),
          complete: () => {
            sourceDone = true;
            pump();
          },
        },
        (link) => subscriber.add(link),
      );

      return () => {
        closed = true;
        pending.clear();
        inMemory.clear();
        held.clear();
        store.close();
        foldersInUse.delete(dir);
        stats$.next(emptyStats());
      };
    });

  return Object.assign(operator, { stats$: stats$.asObservable() });
}

function emptyStats(): SpoolStats {
  return {
    memoryBytes: 0,
    memoryItems: 0,
    indexBytes: 0,
    diskBytes: 0,
    diskItems: 0,
    segments: 0,
    heldWakes: 0,
    holdReason: null,
    windowBytes: 0,
    spilledItems: 0,
    oversizedItems: 0,
  };
}

function checkedSize(size: number, index: number): number {
  if (typeof size === 'number' && size >= 0 && Number.isFinite(size)) return size;
  throw new RangeError(`${OWNER}: sizeOf returned ${String(size)} for item #${index}; sizes must be finite numbers >= 0`);
}

interface SpoolSettings<T> {
  dir: string;
  memoryBytes: number;
  diskQuotaBytes: number;
  segmentBytes: number;
  windowBytes: number;
  readAheadBytes: number;
  codec: SpoolCodec<T> | undefined;
  sizeOf: (value: T) => number;
}

function checkOptions<T>(options: SpoolOptions<T>): SpoolSettings<T> {
  const { dir } = options;
  if (typeof dir !== 'string' || !isAbsolute(dir) || /[\u0000-\u001f]/.test(dir)) {
    throw new InvalidOptionError(OWNER, 'dir', dir, 'an absolute path without control characters');
  }
  const diskQuotaBytes = checkNumber(OWNER, 'diskQuotaBytes', options.diskQuotaBytes ?? SPOOL_DEFAULTS.diskQuotaBytes, {
    min: 0,
    integer: true,
  });
  const memoryBytes = checkNumber(
    OWNER,
    'memoryBytes',
    options.memoryBytes ?? Math.floor(diskQuotaBytes * SPOOL_DEFAULTS.memoryShareOfQuota),
    { min: 0, integer: true },
  );
  const segmentBytes = checkNumber(OWNER, 'segmentBytes', options.segmentBytes ?? SPOOL_DEFAULTS.segmentBytes, {
    min: 64,
    integer: true,
  });
  const windowBytes = checkNumber(OWNER, 'windowBytes', options.windowBytes ?? SPOOL_DEFAULTS.windowBytes, { min: 1, integer: true });
  const readAheadBytes = checkNumber(OWNER, 'readAheadBytes', options.readAheadBytes ?? SPOOL_DEFAULTS.readAheadBytes, {
    min: 1,
    integer: true,
  });
  const codec = options.codec;
  if (codec !== undefined && (typeof codec?.encode !== 'function' || typeof codec?.decode !== 'function')) {
    throw new InvalidOptionError(OWNER, 'codec', codec, 'an object with encode(value) and decode(bytes)');
  }
  const sizeOf =
    options.sizeOf === undefined
      ? (value: T) => (value instanceof Uint8Array ? value.byteLength : codec ? codec.encode(value).byteLength : Number.NaN)
      : checkFunction(OWNER, 'sizeOf', options.sizeOf);
  return { dir, memoryBytes, diskQuotaBytes, segmentBytes, windowBytes, readAheadBytes, codec, sizeOf };
}
