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
import { StateAck, type Ack, type AckHandler, type Acked } from '../lib/core/ack.ts';
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
   * Bytes held in memory: values in the memory tier plus the estimated bookkeeping of queued items
   * (88 B per item spilled in a run, 160 B per item queued on its own). A value that does not fit spills to disk, and as the bookkeeping grows
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
  /** Estimated memory of the queued items' bookkeeping, charged to memoryBytes too. */
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
 * What an item queued as its own entry costs in memory besides its value (the entry, the upstream
 * ack it keeps, its queue slots; measured at about 152 B on Node 20).
 */
const ENTRY_BYTES = 160;

/**
 * What an item spilled into a disk run costs in memory: its record offset, its ack slot and the
 * upstream ack itself (measured at about 83 B on Node 20).
 */
const RUN_RECORD_BYTES = 88;

/**
 * The share of memoryBytes values may take; the rest is kept for the bookkeeping of spilled items,
 * which grows as they accumulate (past it, the newest values move to disk).
 */
const VALUE_SHARE = 0.75;

/** Items looked at for one read-ahead batch, so tiny or in-memory items cannot make it scan far. */
const MAX_READ_AHEAD_ITEMS = 4096;

/** Folders of live spools in this process: two spools wiping one folder would destroy each other. */
const foldersInUse = new Set<string>();

/** Where an entry's item waits; `emitted` once it left (the entry lives on as its ack's context). */
type Tier = 'memory' | 'disk' | 'held' | 'oversized' | 'emitted';

/**
 * An item queued on its own: in memory, held (disk quota), oversized, or moved to disk later
 * (evicted from memory, or a held item placed once room came). Once emitted it is the `Acked` item
 * itself, its own ack: one object per item on its way downstream, no wrapper, no closure.
 */
class Entry<T> extends StateAck<Entry<T>> {
  /** The item's ack from upstream. */
  readonly upstream: Ack;
  readonly bytes: number;
  tier: Tier;
  /** The value while it is in memory (or once read back from disk). */
  value: T | undefined;
  /** Where its record is, once spilled. */
  pointer: DiskPointer | undefined;

  constructor(stages: AckHandler<Entry<T>>, ack: Ack, bytes: number, value: T | undefined, tier: Tier) {
    super(stages);
    this.upstream = ack;
    this.bytes = bytes;
    this.value = value;
    this.tier = tier;
  }

  /** As an emitted `Acked` item, the entry is its own ack. */
  get ack(): Ack {
    return this;
  }
}

/** A record read back from a run, waiting for the window. */
interface LoadedRecord<T> {
  readonly value: T;
  readonly bytes: number;
  readonly pointer: DiskPointer;
}

/**
 * Items spilled one after another as they arrived, their records contiguous in one segment: the
 * common case under load, kept compact. Each record's pointer is its offset (its length follows from
 * the next offset); each item keeps its upstream ack; records read back wait in `ready`.
 */
class DiskRun<T> {
  readonly segment: number;
  readonly offsets: number[] = [];
  readonly acks: (Ack | undefined)[] = [];
  /** The offset just past the last record. */
  end: number;
  /** The next record to emit. */
  next = 0;
  readonly ready = new Queue<LoadedRecord<T>>();

  constructor(first: DiskPointer) {
    this.segment = first.segment;
    this.end = first.offset;
  }

  /** True when `pointer` is the record right after this run's last one. */
  continuesWith(pointer: DiskPointer): boolean {
    return pointer.segment === this.segment && pointer.offset === this.end;
  }

  add(pointer: DiskPointer, ack: Ack): void {
    this.offsets.push(pointer.offset);
    this.acks.push(ack);
    this.end = pointer.offset + RECORD_HEADER_BYTES + pointer.length;
  }

  pointerAt(index: number): DiskPointer {
    const offset = this.offsets[index]!;
    const end = index + 1 < this.offsets.length ? this.offsets[index + 1]! : this.end;
    return { segment: this.segment, offset, length: end - offset - RECORD_HEADER_BYTES };
  }

  /** The first record not yet read back. */
  get unread(): number {
    return this.next + this.ready.length;
  }

  get done(): boolean {
    return this.next === this.offsets.length;
  }
}

type Slot<T> = Entry<T> | DiskRun<T>;

/**
 * Accepts every item at once into a memory tier up to `memoryBytes`, beyond it into append-only
 * disk segments, and emits them downstream in input order while the bytes emitted and not yet
 * flushed stay under `windowBytes`.
 *
 * Memory: values in memory plus the estimated bookkeeping of queued items (88 B per item spilled
 * in a run of consecutive records, 160 B per item queued on its own) stay within `memoryBytes`; the
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
      // Values are native memory, bookkeeping is JS heap: memory a value frees is not the heap's to
      // reuse (nor given back to the system at once), so values keep out of the bookkeeping's share.
      const valueBytesLimit = Math.floor(memoryBytes * VALUE_SHARE);
      if (foldersInUse.has(dir)) {
        subscriber.error(new Error(`${OWNER}: folder ${dir} is already in use by another spool; give each spool its own folder`));
        return;
      }
      /** Every queued item in input order: entries, and runs of items spilled one after another. */
      const pending = new Queue<Slot<T>>();
      /** Entries placed in the memory tier, oldest first; emitted or evicted ones are skipped lazily. */
      const inMemory = new Queue<Entry<T>>();
      /** Entries whose wake is held (disk quota), oldest first; emitted ones are skipped lazily. */
      const held = new Queue<Entry<T>>();
      let entries = 0;
      let runRecords = 0;
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

      // A record's token is its item's upstream ack: stored means woken.
      const store = new SegmentStore<Ack>({
        dir,
        segmentBytes: settings.segmentBytes,
        owner: OWNER,
        onWritten: (ack, error) => {
          if (error) return fail(error);
          if (!closed) ack.enqueued();
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
      const decode = (bytes: Uint8Array): T => (codec ? codec.decode(bytes) : (bytes as T));

      /** The estimated memory of the queued items themselves (entries, acks, pointers), values aside. */
      const indexBytes = () => entries * ENTRY_BYTES + runRecords * RUN_RECORD_BYTES;

      /** Room on disk for `recordBytes` more, counting what is on its way to the files. */
      const diskHasRoom = (recordBytes: number) => store.stats.diskBytes + recordBytes <= diskQuotaBytes;

      /** Room in memory for a value of `bytes` (its entry already counted). */
      const memoryHasRoom = (bytes: number) => memoryUsed + bytes <= valueBytesLimit && memoryUsed + indexBytes() + bytes <= memoryBytes;

      const toMemory = (entry: Entry<T>) => {
        entry.tier = 'memory';
        memoryUsed += entry.bytes;
        memoryItems++;
        inMemory.push(entry);
        entry.upstream.enqueued();
      };

      /** Writes an entry's value to a segment; false when the disk quota has no room for it. */
      const spillEntry = (entry: Entry<T>): boolean => {
        const payload = encode(entry.value as T);
        if (!diskHasRoom(payload.byteLength + RECORD_HEADER_BYTES)) return false;
        entry.tier = 'disk';
        entry.value = undefined;
        diskItems++;
        spilledItems++;
        entry.pointer = store.append(payload, entry.upstream);
        return true;
      };

      /** Spills a new item into the run at the tail of the queue (or a new run); false without room. */
      const spillToRun = (ack: Ack, value: T): boolean => {
        const payload = encode(value);
        if (!diskHasRoom(payload.byteLength + RECORD_HEADER_BYTES)) return false;
        const pointer = store.append(payload, ack);
        const tail = pending.last();
        if (tail instanceof DiskRun && tail.continuesWith(pointer)) {
          tail.add(pointer, ack);
        } else {
          const run = new DiskRun<T>(pointer);
          run.add(pointer, ack);
          pending.push(run);
        }
        runRecords++;
        diskItems++;
        spilledItems++;
        return true;
      };

      const enqueueEntry = (entry: Entry<T>) => {
        pending.push(entry);
        entries++;
      };

      const accept = (item: Acked<T>) => {
        const { value, ack } = item;
        try {
          if (!codec && !(value instanceof Uint8Array)) {
            throw new TypeError(`${OWNER}: item #${index} is not a Uint8Array; give the spool a codec for such values`);
          }
          const bytes = checkedSize(sizeOf(value), index);
          // Decided with this item's own entry counted.
          const fitsInMemory = memoryUsed + bytes <= valueBytesLimit && memoryUsed + indexBytes() + ENTRY_BYTES + bytes <= memoryBytes;
          if (bytes > diskQuotaBytes && !fitsInMemory) {
            enqueueEntry(new Entry(emitted, ack, bytes, value, 'oversized'));
            oversizedItems++;
          } else if (fitsInMemory) {
            const entry = new Entry(emitted, ack, bytes, value, 'memory');
            enqueueEntry(entry);
            toMemory(entry);
          } else if (!spillToRun(ack, value)) {
            const entry = new Entry(emitted, ack, bytes, value, 'held');
            enqueueEntry(entry);
            heldWakes++;
            held.push(entry);
          }
        } catch (error) {
          subscriber.error(error);
          return;
        }
        index++;
        pump();
      };

      /** A flush freed memory or a segment: held items take the room, in order. */
      const placeHeld = () => {
        for (let entry = held.peek(); entry !== undefined; entry = held.peek()) {
          if (entry.tier === 'held') {
            if (memoryHasRoom(entry.bytes)) toMemory(entry);
            else if (!spillEntry(entry)) return; // later held items wait too: wakes stay in order
            heldWakes--;
          }
          held.shift();
        }
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
          if (!spillEntry(entry)) {
            inMemory.push(entry);
            return;
          }
          memoryUsed -= bytes;
          memoryItems--;
        }
      };

      /** Reads back, in one batch of positioned reads, what the window can take next from disk. */
      const readAhead = () => {
        const head = pending.peek();
        if (reading || head === undefined || (windowUsed > 0 && windowUsed >= windowBytes)) return;
        const budget = Math.min(readAheadBytes, Math.max(1, windowBytes - windowUsed));
        if (head instanceof DiskRun) {
          if (head.ready.length > 0) return;
          const pointers: DiskPointer[] = [];
          let bytes = 0;
          for (let i = head.unread; i < head.offsets.length && pointers.length < MAX_READ_AHEAD_ITEMS; i++) {
            const pointer = head.pointerAt(i);
            if (pointers.length > 0 && bytes + pointer.length > budget) break;
            pointers.push(pointer);
            bytes += pointer.length;
          }
          if (pointers.length > 0) load(pointers, (records) => records.forEach((record) => head.ready.push(record)));
          return;
        }
        if (head.tier !== 'disk' || head.value !== undefined) return;
        // Entries moved to disk one by one, from the head up to the first run.
        const batch: Entry<T>[] = [];
        let bytes = 0;
        for (const slot of pending) {
          if (slot instanceof DiskRun || batch.length >= MAX_READ_AHEAD_ITEMS) break;
          if (batch.length > 0 && bytes + slot.bytes > budget) break;
          bytes += slot.bytes;
          if (slot.tier === 'disk' && slot.value === undefined) batch.push(slot);
        }
        load(
          batch.map((entry) => entry.pointer!),
          (records) => records.forEach((record, i) => (batch[i]!.value = record.value)),
        );
      };

      /** One batched read; corruption or a failed read errors the output. */
      const load = (pointers: DiskPointer[], deliver: (records: LoadedRecord<T>[]) => void) => {
        reading = true;
        store.read(pointers).then(
          (payloads) => {
            reading = false;
            if (closed) return;
            try {
              deliver(
                payloads.map((payload, i) => {
                  const value = decode(payload);
                  return { value, bytes: checkedSize(sizeOf(value), index), pointer: pointers[i]! };
                }),
              );
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
        enqueued: (entry) => entry.upstream.enqueued(),
        flushed: (entry) => {
          settle(entry);
          entry.upstream.flushed();
        },
        failed: (entry, error) => {
          settle(entry);
          entry.upstream.failed(error);
        },
      };

      const emitEntry = (entry: Entry<T>) => {
        entries--;
        if (entry.tier === 'memory') {
          memoryUsed -= entry.bytes;
          memoryItems--;
        } else if (entry.tier === 'disk') {
          diskItems--;
        } else if (entry.tier === 'held') {
          // Leaving the spool ends the quota hold of this item.
          heldWakes--;
          entry.upstream.enqueued();
        }
        entry.tier = 'emitted';
        // Emitted (and evicted) entries leave the memory list lazily: drop those at its front now.
        while (inMemory.length > 0 && inMemory.peek()!.tier !== 'memory') inMemory.shift();
        send(entry);
      };

      const emitRunRecord = (run: DiskRun<T>, record: LoadedRecord<T>) => {
        const at = run.next++;
        const ack = run.acks[at]!;
        run.acks[at] = undefined;
        runRecords--;
        diskItems--;
        const entry = new Entry<T>(emitted, ack, record.bytes, record.value, 'emitted');
        entry.pointer = record.pointer;
        send(entry);
      };

      const send = (entry: Entry<T>) => {
        windowUsed += entry.bytes;
        subscriber.next(entry as Acked<T>);
      };

      /** An emitted item was flushed (or failed) downstream: free its window bytes and record. */
      const settle = (entry: Entry<T>) => {
        windowUsed -= entry.bytes;
        if (closed) return;
        if (entry.pointer !== undefined) store.release(entry.pointer);
        // The room freed matters only to items still queued or held, or to completion.
        if (pending.length > 0 || held.length > 0 || sourceDone) pump();
        else reportStats();
      };

      /** The window takes an item while it fits, or alone when nothing else is out. */
      const windowAdmits = (bytes: number) => windowUsed === 0 || windowUsed + bytes <= windowBytes;

      /** Emits from the head of the queue while the window admits and the values are at hand. */
      const emitReady = () => {
        for (let head = pending.peek(); head !== undefined && !subscriber.closed; head = pending.peek()) {
          if (head instanceof DiskRun) {
            if (head.done) {
              pending.shift();
              continue;
            }
            const record = head.ready.peek();
            if (record === undefined || !windowAdmits(record.bytes)) return;
            head.ready.shift();
            emitRunRecord(head, record);
            continue;
          }
          if (!windowAdmits(head.bytes) || (head.tier === 'disk' && head.value === undefined)) return;
          pending.shift();
          emitEntry(head);
        }
      };

      let pumping = false;
      const pump = () => {
        if (pumping || closed) return;
        pumping = true;
        try {
          placeHeld();
          evictOverQuota();
          emitReady();
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
