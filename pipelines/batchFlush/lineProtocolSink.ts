/**
 * lineProtocolSink: records -> line protocol -> adaptiveBatch (AIMD batch sizes, retries with backoff
 * and jitter, several writes in flight) -> POST /write of an InfluxDB-1.x-compatible server, with a
 * checkpoint of the unflushed buffer that survives a crash.
 *
 * Invariants guarded here:
 * - A record's `flushed()` comes only after a 2xx covering its line (or, for a line the server refused,
 *   after it was stored in the dead-letter storage); with no dead-letter storage its ack is `failed`.
 * - Wake after durability: with a checkpoint, a record's `enqueued()` is held until a checkpoint
 *   segment holding its line is durable (or the line was flushed). So a SIGKILL at any moment loses no
 *   record acknowledged as enqueued: it is on the server or in the checkpoint, and a restart writes the
 *   checkpoint first. The cost is that a source's window must span a save (a group commit): see
 *   `checkpoint.everyMs`. Lines restored and written again are at most duplicates, which InfluxDB
 *   absorbs (a point is identified by measurement, tags and timestamp).
 * - Memory is bounded: adaptiveBatch holds at most `maxBuffered` waiting lines plus `maxInFlight`
 *   batches; the wakes of Acked records are also held while the unwritten lines exceed
 *   `maxBufferedBytes`, so a paced source keeps at most that plus its window in the sink; held wakes
 *   never exceed what it accepted.
 * - Per record the sink keeps on the JS heap at most one small object (`AckedEntry`: the line's
 *   number, the source's ack, its own ack state; a plain value's item is just its number); the line
 *   itself is encoded once into the off-heap `LineArena`, whose bytes are both the write body and the
 *   checkpoint segment. A record lives until its batch is written, so anything more per record on the
 *   heap is paid again in GC.
 */
import { asyncScheduler, concat, map, Observable, type ObservableInput, type OperatorFunction, type SchedulerLike, type Subscription } from 'rxjs';
import { isAcked, type Ack, type Acked } from '../../lib/core/ack.ts';
import { checkFunction, checkNumber, InvalidOptionError } from '../../lib/core/errors.ts';
import { fromPaced } from '../../lib/core/paced.ts';
import { Queue } from '../../lib/core/queue.ts';
import { checkRetryPolicy, withRetries, type RetryPolicy } from '../../lib/core/retry.ts';
import {
  lineConverter,
  LineProtocolError,
  PRECISIONS,
  type LineConverterOptions,
  type Point,
  type Precision,
} from '../../lib/codec/lineProtocol.ts';
import { adaptiveBatchMetrics, lineProtocolSinkMetrics, type AnyRegistry, type LineSinkStatsLike } from '../../lib/metrics/index.ts';
import { FileStorage, openStorage } from '../../lib/storage/index.ts';
import type { ExternalStorage } from '../../lib/storage/storage.ts';
import { adaptiveBatch, type AdaptiveBatchStats, type WrittenBatch } from '../../operators/adaptiveBatch.ts';
import { LineCheckpoint } from './checkpoint.ts';
import { LineArena } from './lineArena.ts';
import { InfluxHttpWriter, LineWriteError, StorageLineWriter, type InfluxAuth, type LineWriter, type WriteOutcome } from './lineWriter.ts';

const OWNER = 'lineProtocolSink';
/** A save starts at once when this many bytes of lines are unsaved (smaller segments, synced sooner). */
const SAVE_CHUNK_BYTES = 1024 * 1024;
/** Saves running at once (each is a put of its own segment). */
const MAX_SAVES_IN_FLIGHT = 4;

export interface LineSinkBatchOptions {
  /** Smallest batch, in lines. Default 100. */
  minSize?: number;
  /** Largest batch, in lines. Default 20000 (bigger batches barely help the server and cost memory). */
  maxSize?: number;
  /** First batch size, in lines. Default 5000. */
  initialSize?: number;
  /** A partial batch is written this long after its oldest line arrived (ms). Default 1000. */
  maxDelayMs?: number;
  /** Latency goal of one write; slower windows shrink the batch size (ms). Default 500. */
  targetLatencyMs?: number;
  /** Writes per AIMD window. Default 3. */
  adjustEvery?: number;
  /** Lines waiting for a write, at least maxSize. Default maxSize. */
  maxBuffered?: number;
  /**
   * Bytes of accepted lines not yet written (waiting, in flight, held), as a memory bound: beyond it
   * the wakes of Acked records are held until writes catch up. Measured in the arena that holds them
   * (UTF-8, with the newline, plus the unused tail of a 4 MiB chunk a line did not fit in). Give it room for
   * (maxInFlight + 1) × maxSize lines, or batches get cut by maxDelayMs instead. Default 32 MiB.
   */
  maxBufferedBytes?: number;
}

export interface LineSinkCheckpointOptions {
  /** A local folder for the checkpoint segments (a FileStorage). */
  dir?: string;
  /** Or a storage: a URI (file://, s3://, azure://, memory://) or an open ExternalStorage. */
  storage?: string | ExternalStorage;
  /** Key prefix of the segments in that storage. Default 'lines-checkpoint'. */
  prefix?: string;
  /** Unsaved lines are saved at least this often (ms); held wakes trigger a save at once. Default 1000. */
  everyMs?: number;
}

export interface LineProtocolSinkOptions<T> {
  /** http(s)://host:port of InfluxDB 1.x / OpenGemini; or a storage URI (file://, s3://...) to write .lp files instead. */
  url: string;
  /** Database (`db` of /write; the folder of the .lp files). */
  db: string;
  /** Unit of the timestamps. Default 'ms'. */
  precision?: Precision;
  retentionPolicy?: string;
  /** Basic auth (username/password) or a token (`Authorization: Token ...`). */
  auth?: InfluxAuth;
  /** Direct conversion: extractors for measurement, tags, fields, timestamp (the precision is the sink's). */
  lines?: Omit<LineConverterOptions<T>, 'precision'>;
  /** Point conversion: builds a Point per record (the compatibility path). */
  toPoint?: (record: T) => Point;
  /** Batch sizing (AIMD), in lines and ms. */
  batch?: LineSinkBatchOptions;
  /** Retries of a failed write (5xx, 429, network): maxRetries, minDelayMs, maxDelayMs, jitter. Default 5 / 100 ms / 10 s / 0.2. */
  retry?: Partial<RetryPolicy>;
  /** Writes in flight at once. Default 2. */
  maxInFlight?: number;
  /** Request bodies above this size are gzip-compressed (bytes; Infinity = never). Default 1 MiB. */
  gzipAboveBytes?: number;
  /** A request with no answer after this long is abandoned and retried (ms). Default 30000. */
  requestTimeoutMs?: number;
  /** The unflushed buffer's checkpoint; without one, a crash loses what was enqueued but not flushed. */
  checkpoint?: LineSinkCheckpointOptions;
  /**
   * Storage for lines the server refused (URI or ExternalStorage): each isolated set is stored as one
   * JSON-lines object `{prefix}/{run}-{n}.jsonl` before the records are flushed. Without it the
   * records' acks are failed (their lines are still reported on the output).
   */
  deadLetter?: string | ExternalStorage;
  /** Metrics of the sink and its adaptiveBatch in `registry`, label `pipeline`. */
  metrics?: { registry: AnyRegistry; pipeline: string };
  /** Stats after each change (same object, updated in place). */
  onStats?: (stats: Readonly<LineSinkStats>) => void;
  scheduler?: SchedulerLike;
}

export const LINE_SINK_DEFAULTS = Object.freeze({
  precision: 'ms' as Precision,
  minSize: 100,
  maxSize: 20_000,
  initialSize: 5000,
  maxDelayMs: 1000,
  targetLatencyMs: 500,
  adjustEvery: 3,
  /** maxBuffered = maxBufferedPerMaxSize × maxSize. */
  maxBufferedPerMaxSize: 1,
  maxBufferedBytes: 32 * 1024 * 1024,
  maxInFlight: 2,
  gzipAboveBytes: 1024 * 1024,
  requestTimeoutMs: 30_000,
  checkpointPrefix: 'lines-checkpoint',
  checkpointEveryMs: 1000,
  deadLetterPrefix: 'dead-letters',
});

/** What the sink reports on its output. */
export type LineSinkEvent =
  | { readonly kind: 'restored'; readonly lines: number; readonly segments: number }
  | {
      readonly kind: 'written';
      /** Lines the server accepted from this batch. */
      readonly points: number;
      readonly batchSize: number;
      readonly latencyMs: number;
      readonly attempts: number;
      readonly requests: number;
    }
  | { readonly kind: 'deadLetter'; readonly line: string; readonly status: number; readonly message: string; readonly stored: string | undefined };

/** The sink's totals and levels (the fields lib/metrics binds), and its current batch size. */
export interface LineSinkStats extends LineSinkStatsLike {
  /** The AIMD target batch size, in lines. */
  batchSize: number;
}

/** The line of a record the server refused, isolated from its batch. */
export class DeadLetterError extends Error {
  override readonly name = 'DeadLetterError';
  readonly line: string;
  readonly status: number;

  constructor(line: string, status: number, message: string, target: string) {
    super(`${target} refused the line (${status}): ${message}`);
    this.line = line;
    this.status = status;
  }
}

/** A line the server refused, isolated from its batch (and where it was stored, if anywhere). */
type Letter = { line: string; status: number; message: string; stored: string | undefined };

/**
 * What adaptiveBatch carries per line: the line's sequence number in the arena for a plain value (no
 * object at all), an `AckedEntry` for an Acked record.
 */
type Item = number | AckedEntry;

const seqOf = (item: Item): number => (typeof item === 'number' ? item : item.seq);

const PENDING = 0;
const ENQUEUED = 1;
const SETTLED = 2;

/**
 * The line of an Acked record, which is its own `Acked` and `Ack` (value and ack are itself): one
 * small object per record carries the line's number, the source's ack and the stage state, where a
 * wrapper, a bound ack and an entry cost three (and GC time, as they live until the batch is written). Stages behave as
 * `bindAck`'s: each once, `flushed` implies `enqueued`, a settled ack never changes.
 */
class AckedEntry implements Acked<AckedEntry>, Ack {
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
interface EntryStages {
  enqueued(entry: AckedEntry): void;
  flushed(entry: AckedEntry): void;
  failed(entry: AckedEntry, error: unknown): void;
}

interface BatchResult {
  requests: number;
  /** Sequence numbers of the refused lines (their letters are in the sink's `letters`). */
  letters: number[];
}

interface Settings<T> {
  url: string;
  db: string;
  precision: Precision;
  retentionPolicy: string | undefined;
  toLine: (record: T) => string;
  retry: RetryPolicy;
  maxInFlight: number;
  batch: Required<Omit<LineSinkBatchOptions, 'maxBuffered' | 'maxBufferedBytes'>> & { maxBuffered: number };
  maxBufferedBytes: number;
  gzipAboveBytes: number;
  requestTimeoutMs: number;
  everyMs: number;
}

/**
 * Writes records as line protocol to InfluxDB 1.x / OpenGemini (or .lp files on a storage) and reports
 * what it wrote, restored and refused.
 *
 * Lossless: a record is flushed only once the server accepted its line; retryable failures are retried
 * (backoff × jitter) up to `retry.maxRetries`, then the output errors (the checkpoint keeps the buffer).
 * A 400/413/422 splits the batch in halves until the refused lines are isolated: they go to the
 * dead-letter output while the other lines land. Other 4xx (401, 403, 404) error the output at once.
 * Input: `Acked<T>` (paced sources; wake after durability, see the module comment) or plain values
 * (nothing to hold; the buffer fails with BufferOverflowError when a source outruns the writes).
 * At start, lines left in the checkpoint are written first; on complete the output completes once every
 * line is written and the checkpoint is empty; on error the unsaved lines are saved first.
 *
 * @example
 * readings$.pipe(lineProtocolSink({
 *   url: 'http://127.0.0.1:8086', db: 'weather', precision: 'ms',
 *   lines: { measurement: 'reading', tags: { station: (r) => r.station }, fields: { celsius: (r) => r.celsius }, timestamp: (r) => r.atMs },
 *   checkpoint: { dir: '/var/lib/sluice/weather', everyMs: 1000 },
 * })).subscribe(console.log);
 */
export function lineProtocolSink<T>(options: LineProtocolSinkOptions<T>): OperatorFunction<T | Acked<T>, LineSinkEvent> {
  const settings = checkOptions(options);
  const onStatsOption = options.onStats === undefined ? undefined : checkFunction(OWNER, 'onStats', options.onStats);
  const scheduler = options.scheduler ?? asyncScheduler;

  return (source) =>
    new Observable<LineSinkEvent>((subscriber) => {
      const stats: LineSinkStats = {
        pointsWritten: 0,
        batches: 0,
        requests: 0,
        bytesSent: 0,
        retryableErrors: 0,
        rejectedWrites: 0,
        deadLetters: 0,
        checkpointSaves: 0,
        checkpointLines: 0,
        heldWakes: 0,
        restoredLines: 0,
        batchSize: settings.batch.initialSize,
      };
      const boundSink = options.metrics ? lineProtocolSinkMetrics(options.metrics.registry, { pipeline: options.metrics.pipeline }) : undefined;
      const boundBatch = options.metrics ? adaptiveBatchMetrics(options.metrics.registry, { pipeline: options.metrics.pipeline }) : undefined;
      const report = () => {
        if (writer !== undefined) stats.bytesSent = writer.bytesSent;
        stats.checkpointLines = checkpoint?.savedLines ?? 0;
        stats.heldWakes = held.length;
        boundSink?.(stats);
        onStatsOption?.(stats);
      };

      let writer: LineWriter | undefined;
      let checkpoint: LineCheckpoint | undefined;
      let deadLetters: { storage: ExternalStorage; run: string; count: number } | undefined;
      const closers: (() => Promise<void>)[] = [];
      let inner: Subscription | undefined;
      let closed = false;

      // Accepted lines, numbered in acceptance order, as bytes shared by write bodies and segments.
      const arena = new LineArena();
      let flushedThrough = 0;
      /** Arena offset after the last flushed line (the byte bound counts from here). */
      let flushedEnd = 0;
      // The checkpoint covers lines up to savedThrough; unsavedFirstSeq..arena.lastSeq are not in a segment yet.
      let savedThrough = 0;
      let unsavedFirstSeq = 1;
      /** Refused lines of batches being written or emitted, by sequence number. */
      const letters = new Map<number, Letter>();
      const held = new Queue<AckedEntry>();
      /** Saves under way, in the order they started: savedThrough follows the prefix that is done. */
      const saves = new Queue<{ lastSeq: number; done: boolean }>();
      const running = new Set<Promise<void>>();
      let saveQueued = false;
      const unsavedBytes = () => (unsavedFirstSeq > arena.lastSeq ? 0 : arena.endOf(arena.lastSeq) - arena.startOf(unsavedFirstSeq));

      const releaseClosers = () => {
        for (const close of closers.splice(0)) void close().catch(() => undefined);
      };

      const finish = (error?: unknown) => {
        if (closed) return;
        closed = true;
        inner?.unsubscribe();
        // Shutdown save: whatever was accepted and not yet saved goes into the checkpoint first.
        const final = checkpoint === undefined ? Promise.resolve() : saveAll();
        final
          .catch((saveError: unknown) => {
            if (error === undefined) error = saveError;
          })
          .finally(() => {
            releaseClosers();
            if (error === undefined) subscriber.complete();
            else subscriber.error(error);
          });
      };

      /**
       * May the record of `entry` wake its source? When its line is flushed, or in a durable segment (or
       * there is no checkpoint) and the unflushed lines up to it fit in maxBufferedBytes.
       */
      const wakeable = (entry: AckedEntry): boolean =>
        entry.seq <= flushedThrough ||
        ((checkpoint === undefined || entry.seq <= savedThrough) && arena.endOf(entry.seq) - flushedEnd <= settings.maxBufferedBytes);

      /** Wakes held records, in order, that may wake now. */
      const releaseHeld = () => {
        while (held.length > 0 && wakeable(held.peek()!)) held.shift()!.source.enqueued();
      };

      /**
       * Puts the unsaved lines (those not flushed meanwhile) into a new segment, at once. Several saves
       * run at a time, so a source's next lines are converted while earlier ones are being synced.
       */
      const startSave = (): Promise<void> | undefined => {
        // Lines already flushed need no saving.
        if (unsavedFirstSeq <= flushedThrough) unsavedFirstSeq = flushedThrough + 1;
        const lastSeq = arena.lastSeq;
        if (unsavedFirstSeq > lastSeq) {
          if (saves.length === 0) savedThrough = Math.max(savedThrough, unsavedFirstSeq - 1);
          return undefined;
        }
        const firstSeq = unsavedFirstSeq;
        // The segment is the arena's bytes of these lines (copied by saveBody before it returns).
        const { parts, quoted } = arena.segment(firstSeq, lastSeq);
        unsavedFirstSeq = lastSeq + 1;
        const run = { lastSeq, done: false };
        saves.push(run);
        const saved = checkpoint!.saveBody(parts, lastSeq - firstSeq + 1, quoted, firstSeq).then(() => {
          run.done = true;
          stats.checkpointSaves++;
          while (saves.length > 0 && saves.peek()!.done) savedThrough = saves.shift()!.lastSeq;
          releaseHeld();
          requestRelease();
          // Held wakes wait for lines accepted meanwhile: save them now rather than at the next tick.
          if (held.length > 0 && unsavedFirstSeq <= arena.lastSeq) requestSave();
          report();
        });
        running.add(saved);
        saved.then(
          () => running.delete(saved),
          (error: unknown) => {
            running.delete(saved);
            finish(error);
          },
        );
        return saved;
      };

      /** Saves what is unsaved and waits for every save under way, then deletes flushed segments. */
      const saveAll = async (): Promise<void> => {
        const under = [...running];
        const last = startSave();
        await Promise.all(last === undefined ? under : [...under, last]);
        await checkpoint!.release(flushedThrough);
        report();
      };

      /**
       * Asks for a save: at once when a chunk's worth of lines is unsaved and a save slot is free, else
       * after the current synchronous burst (a paced source emits its window at once); a save that
       * completes starts the next one while wakes are held.
       */
      const requestSave = () => {
        if (closed || checkpoint === undefined) return;
        if (saves.length < MAX_SAVES_IN_FLIGHT && unsavedBytes() >= SAVE_CHUNK_BYTES) {
          startSave();
          return;
        }
        if (saveQueued) return;
        saveQueued = true;
        queueMicrotask(() => {
          saveQueued = false;
          if (!closed && saves.length < MAX_SAVES_IN_FLIGHT) startSave();
        });
      };

      /** Deletes the segments whose lines are all flushed (in order, one run at a time). */
      const requestRelease = () => {
        if (closed || !checkpoint?.releasable(flushedThrough)) return;
        checkpoint.release(flushedThrough).then(report, (error: unknown) => finish(error));
      };

      const stages: EntryStages = {
        enqueued: (entry) => {
          if (held.length === 0 && wakeable(entry)) {
            entry.source.enqueued();
            return;
          }
          held.push(entry);
          if (entry.seq > savedThrough) requestSave();
        },
        flushed: (entry) => {
          const letter = letters.size === 0 ? undefined : letters.get(entry.seq);
          if (letter !== undefined && letter.stored === undefined) {
            entry.source.failed(new DeadLetterError(letter.line, letter.status, letter.message, writer!.target));
          } else {
            entry.source.flushed();
          }
        },
        failed: (entry, error) => entry.source.failed(error),
      };

      const accept = (line: string, source: Ack | undefined): Item => {
        const seq = arena.append(line);
        return source === undefined ? seq : new AckedEntry(seq, source, stages);
      };

      let recordNumber = 0;
      const convert = (item: T | Acked<T>): Item => {
        recordNumber++;
        const acked = isAcked(item);
        const record = (acked ? item.value : item) as T;
        let line: string;
        try {
          line = settings.toLine(record);
        } catch (error) {
          const reason = error instanceof Error ? error.message : String(error);
          throw new LineProtocolError(`${OWNER}: record #${recordNumber} cannot be written: ${reason}`, { cause: error });
        }
        return accept(line, acked ? item.ack : undefined);
      };

      const storeLetters = async (refused: Letter[]): Promise<string | undefined> => {
        if (deadLetters === undefined || refused.length === 0) return undefined;
        const key = `${LINE_SINK_DEFAULTS.deadLetterPrefix}/${deadLetters.run}-${String(++deadLetters.count).padStart(10, '0')}.jsonl`;
        const body = refused
          .map((letter) => JSON.stringify({ db: settings.db, line: letter.line, status: letter.status, message: letter.message }))
          .join('\n');
        await deadLetters.storage.put(key, Buffer.from(`${body}\n`, 'utf8'));
        return `${deadLetters.storage.uri}/${key}`;
      };

      /** A sub-request of an isolation, retried on its own so a 503 there does not restart the isolation. */
      const writeRetried = (lines: readonly string[] | Buffer): Promise<WriteOutcome> =>
        withRetries(`POST /write to ${writer!.target}`, () => countedWrite(lines), {
          policy: settings.retry,
          isRetryable: (error) => error instanceof LineWriteError && error.retryable,
        });

      const countedWrite = async (lines: readonly string[] | Buffer): Promise<WriteOutcome> => {
        stats.requests++;
        try {
          const outcome = await writer!.write(lines);
          if (!outcome.ok) stats.rejectedWrites++;
          return outcome;
        } catch (error) {
          if (error instanceof LineWriteError && error.retryable) stats.retryableErrors++;
          throw error;
        }
      };

      /** Writes a batch (its bytes straight from the arena); on a rejection, halves it until each refused line stands alone. */
      const writeBatch = async (items: Item[]): Promise<BatchResult> => {
        // adaptiveBatch takes items in order, so a batch is a run of consecutive lines.
        const firstSeq = seqOf(items[0]!);
        const lastSeq = seqOf(items[items.length - 1]!);
        if (lastSeq - firstSeq + 1 !== items.length) throw new Error(`${OWNER}: internal error: a batch of ${items.length} items spans lines ${firstSeq}..${lastSeq}`);
        let requests = 1;
        const first = await countedWrite(arena.body(firstSeq, lastSeq));
        const refused: number[] = [];
        if (!first.ok) {
          const lines = arena.lines(firstSeq, lastSeq);
          const found: Letter[] = [];
          const isolate = async (low: number, high: number, rejection: { status: number; message: string }): Promise<void> => {
            if (high - low === 1) {
              const letter: Letter = { line: lines[low]!, ...rejection, stored: undefined };
              found.push(letter);
              refused.push(firstSeq + low);
              letters.set(firstSeq + low, letter);
              return;
            }
            const middle = (low + high) >>> 1;
            for (const [from, to] of [
              [low, middle],
              [middle, high],
            ] as const) {
              requests++;
              const outcome = await writeRetried(lines.slice(from, to));
              if (!outcome.ok) await isolate(from, to, outcome);
            }
          };
          await isolate(0, lines.length, first);
          const stored = await storeLetters(found);
          for (const letter of found) letter.stored = stored;
        }
        return { requests, letters: refused };
      };

      const write = (items: Item[]): ObservableInput<BatchResult> =>
        writeBatch(items).catch((error: unknown) => {
          if (error instanceof LineWriteError && !error.retryable) {
            // No retry or split can fix a wrong db, url or credentials: stop now, keep the checkpoint.
            finish(error);
            return new Promise<BatchResult>(() => {});
          }
          throw error;
        });

      const onWritten = (batch: WrittenBatch<Item, BatchResult>) => {
        const result = batch.result!;
        const last = seqOf(batch.items[batch.items.length - 1]!);
        flushedThrough = last;
        flushedEnd = arena.endOf(last);
        // Written, and any save of these lines has copied them: their bytes are free.
        arena.release(last);
        releaseHeld();
        stats.batches++;
        stats.pointsWritten += batch.items.length - result.letters.length;
        stats.deadLetters += result.letters.length;
        report();
        subscriber.next({
          kind: 'written',
          points: batch.items.length - result.letters.length,
          batchSize: batch.size,
          latencyMs: batch.latencyMs,
          attempts: batch.attempts,
          requests: result.requests,
        });
        const refused = result.letters.map((seq) => letters.get(seq)!);
        for (const seq of result.letters) letters.delete(seq);
        for (const letter of refused) {
          if (subscriber.closed) return;
          subscriber.next({ kind: 'deadLetter', line: letter.line, status: letter.status, message: letter.message, stored: letter.stored });
        }
        requestRelease();
      };

      const onBatchStats = (batchStats: Readonly<AdaptiveBatchStats>) => {
        stats.batchSize = batchStats.size;
        boundBatch?.(batchStats);
      };

      const useWriter = (opened: LineWriter) => {
        writer = opened;
        closers.push(() => opened.close());
      };
      const useDeadLetters = (storage: ExternalStorage) => {
        deadLetters = { storage, run: `${Date.now().toString().padStart(15, '0')}-${Math.random().toString(16).slice(2, 8)}`, count: 0 };
      };

      /** Opens what needs I/O (storages, the checkpoint's restore), then subscribes to the input. */
      const start = async () => {
        useWriter(httpWriter(settings, options.auth) ?? new StorageLineWriter(await openStorage(settings.url), settings.db));
        if (options.deadLetter !== undefined) useDeadLetters(await storageOf(options.deadLetter, closers));
        let restored: string[] = [];
        if (options.checkpoint !== undefined) {
          const storage = options.checkpoint.dir !== undefined ? new FileStorage(options.checkpoint.dir) : await storageOf(options.checkpoint.storage!, closers);
          if (options.checkpoint.dir !== undefined) closers.push(() => storage.close());
          checkpoint = new LineCheckpoint(storage, options.checkpoint.prefix ?? LINE_SINK_DEFAULTS.checkpointPrefix, {
            db: settings.db,
            retentionPolicy: settings.retentionPolicy ?? null,
            precision: settings.precision,
          });
          const found = await checkpoint.restore();
          restored = found.lines;
          if (restored.length > 0) {
            // Saved again under this run before the old segments go: a crash in between only duplicates.
            for (const line of restored) arena.append(line);
            const { parts, quoted } = arena.segment(1, restored.length);
            await checkpoint.saveBody(parts, restored.length, quoted, 1);
            stats.checkpointSaves++;
            await checkpoint.drop(found.keys);
            savedThrough = restored.length;
            unsavedFirstSeq = restored.length + 1;
            stats.restoredLines = restored.length;
          } else if (found.keys.length > 0) {
            await checkpoint.drop(found.keys);
          }
          if (closed) return;
          if (restored.length > 0) subscriber.next({ kind: 'restored', lines: restored.length, segments: found.keys.length });
          scheduleTick();
        }
        if (closed) return;
        subscribeInput(restored);
      };

      const subscribeInput = (restored: string[]) => {
        report();
        // The restored lines are already in the arena (1..n): new lines follow them and are written after.
        let restoredSeq = 0;
        const restored$ = fromPaced(restored, { window: settings.batch.maxSize, scheduler }).pipe(
          map(({ ack }): Item => new AckedEntry(++restoredSeq, ack, stages)),
        );
        const input$ = restored.length > 0 ? concat(restored$, source.pipe(map(convert))) : source.pipe(map(convert));
        inner = input$
          .pipe(
            adaptiveBatch<Item, BatchResult>({
              write,
              ...settings.batch,
              maxRetries: settings.retry.maxRetries,
              minBackoffMs: settings.retry.minDelayMs,
              maxBackoffMs: settings.retry.maxDelayMs,
              jitter: settings.retry.jitter,
              ...(settings.retry.random === undefined ? {} : { random: settings.retry.random }),
              maxInFlight: settings.maxInFlight,
              scheduler,
              onStats: onBatchStats,
            }),
          )
          .subscribe({ next: onWritten, error: (error: unknown) => finish(error), complete: () => finish() });
      };

      /** The interval save: lines of plain values (no wake to hold) get saved at least this often. */
      let tick: Subscription | undefined;
      const scheduleTick = () => {
        tick = scheduler.schedule(function () {
          if (closed) return;
          if (unsavedFirstSeq <= arena.lastSeq) requestSave();
          requestRelease();
          this.schedule(undefined, settings.everyMs);
        }, settings.everyMs);
        subscriber.add(tick);
      };

      const direct = httpWriter(settings, options.auth);
      if (direct !== undefined && options.checkpoint === undefined && typeof options.deadLetter !== 'string') {
        // Nothing to read first: subscribe at once, so a hot source loses nothing to an async start.
        useWriter(direct);
        if (options.deadLetter !== undefined) useDeadLetters(options.deadLetter);
        subscribeInput([]);
      } else {
        void direct?.close();
        start().catch((error: unknown) => finish(error));
      }

      return () => {
        if (!closed) {
          // Unsubscribed: keep what is unsaved (fire and forget; nobody is listening any more).
          closed = true;
          inner?.unsubscribe();
          const final = checkpoint === undefined ? Promise.resolve() : saveAll();
          void final.catch(() => undefined).finally(releaseClosers);
        }
        tick?.unsubscribe();
      };
    });
}

async function storageOf(given: string | ExternalStorage, closers: (() => Promise<void>)[]): Promise<ExternalStorage> {
  if (typeof given !== 'string') return given;
  const storage = await openStorage(given);
  closers.push(() => storage.close());
  return storage;
}

/** The HTTP writer when the url is http(s), else undefined (a storage URI: .lp files). */
function httpWriter<T>(settings: Settings<T>, auth: InfluxAuth | undefined): LineWriter | undefined {
  if (!/^https?:\/\//i.test(settings.url)) return undefined;
  return new InfluxHttpWriter({
    url: settings.url,
    db: settings.db,
    precision: settings.precision,
    ...(settings.retentionPolicy === undefined ? {} : { retentionPolicy: settings.retentionPolicy }),
    ...(auth === undefined ? {} : { auth }),
    gzipAboveBytes: settings.gzipAboveBytes,
    requestTimeoutMs: settings.requestTimeoutMs,
    maxSockets: settings.maxInFlight + 1,
  });
}

const DB_NAME = /^[^\u0000-\u001f\u007f/\\]{1,255}$/;

function checkOptions<T>(options: LineProtocolSinkOptions<T>): Settings<T> {
  const D = LINE_SINK_DEFAULTS;
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError(OWNER, 'options', options, 'an object');
  const url = options.url;
  if (typeof url !== 'string' || !/^(https?|file|memory|s3|azure):\/\//i.test(url)) {
    throw new InvalidOptionError(OWNER, 'url', url, 'an http(s):// URL of InfluxDB 1.x / OpenGemini, or a storage URI (file://, memory://, s3://, azure://)');
  }
  if (/^https?:/i.test(url)) {
    try {
      new URL(url);
    } catch {
      throw new InvalidOptionError(OWNER, 'url', url, 'a valid http(s) URL');
    }
  }
  // The db names a folder of .lp files too: no separators or control characters.
  if (typeof options.db !== 'string' || !DB_NAME.test(options.db) || options.db === '.' || options.db === '..') {
    throw new InvalidOptionError(OWNER, 'db', options.db, 'a database name of 1..255 characters without control characters, / or \\');
  }
  const precision = options.precision ?? D.precision;
  if (!PRECISIONS.includes(precision)) throw new InvalidOptionError(OWNER, 'precision', precision, `one of ${PRECISIONS.join(', ')}`);
  if (options.retentionPolicy !== undefined && (typeof options.retentionPolicy !== 'string' || options.retentionPolicy === '')) {
    throw new InvalidOptionError(OWNER, 'retentionPolicy', options.retentionPolicy, 'a non-empty string');
  }
  const auth = options.auth as Record<string, unknown> | undefined;
  if (auth !== undefined) {
    const ok =
      typeof auth === 'object' &&
      auth !== null &&
      (typeof auth.token === 'string' ? auth.token !== '' : typeof auth.username === 'string' && typeof auth.password === 'string');
    if (!ok) throw new InvalidOptionError(OWNER, 'auth', '(hidden)', '{ username, password } or { token } with string values');
  }
  let toLine: (record: T) => string;
  if (options.lines !== undefined && options.toPoint !== undefined) {
    throw new InvalidOptionError(OWNER, 'toPoint', 'a function', 'absent when lines is given (choose one conversion path)');
  }
  if (options.lines !== undefined) {
    toLine = lineConverter<T>({ ...options.lines, precision });
  } else if (options.toPoint !== undefined) {
    const toPoint = checkFunction(OWNER, 'toPoint', options.toPoint);
    toLine = (record) => toPoint(record).toLineProtocol(precision);
  } else {
    toLine = (record) => {
      if (typeof record !== 'string' || record === '') {
        throw new LineProtocolError('without lines or toPoint the records must be non-empty line-protocol strings');
      }
      return record;
    };
  }
  const batch = options.batch ?? {};
  const minSize = checkNumber(OWNER, 'batch.minSize', batch.minSize ?? D.minSize, { min: 1, integer: true });
  const maxSize = checkNumber(OWNER, 'batch.maxSize', batch.maxSize ?? Math.max(minSize, D.maxSize), { min: minSize, integer: true });
  const initialSize = checkNumber(OWNER, 'batch.initialSize', batch.initialSize ?? Math.min(maxSize, Math.max(minSize, D.initialSize)), {
    min: minSize,
    max: maxSize,
    integer: true,
  });
  const everyMs = checkNumber(OWNER, 'checkpoint.everyMs', options.checkpoint?.everyMs ?? D.checkpointEveryMs, { min: 1 });
  if (options.checkpoint !== undefined) {
    const { dir, storage } = options.checkpoint;
    if ((dir === undefined) === (storage === undefined)) {
      throw new InvalidOptionError(OWNER, 'checkpoint', '{...}', 'an object with exactly one of dir (a folder) or storage (a URI or ExternalStorage)');
    }
    if (dir !== undefined && (typeof dir !== 'string' || !dir.startsWith('/'))) {
      throw new InvalidOptionError(OWNER, 'checkpoint.dir', dir, 'an absolute folder path');
    }
  }
  return {
    url,
    db: options.db,
    precision,
    retentionPolicy: options.retentionPolicy,
    toLine,
    retry: checkRetryPolicy(OWNER, options.retry),
    maxInFlight: checkNumber(OWNER, 'maxInFlight', options.maxInFlight ?? D.maxInFlight, { min: 1, integer: true }),
    batch: {
      minSize,
      maxSize,
      initialSize,
      maxDelayMs: checkNumber(OWNER, 'batch.maxDelayMs', batch.maxDelayMs ?? D.maxDelayMs, { min: 0, allowInfinity: true }),
      targetLatencyMs: checkNumber(OWNER, 'batch.targetLatencyMs', batch.targetLatencyMs ?? D.targetLatencyMs, { min: 1 }),
      adjustEvery: checkNumber(OWNER, 'batch.adjustEvery', batch.adjustEvery ?? D.adjustEvery, { min: 1, integer: true }),
      maxBuffered: checkNumber(OWNER, 'batch.maxBuffered', batch.maxBuffered ?? D.maxBufferedPerMaxSize * maxSize, { min: maxSize, integer: true }),
    },
    maxBufferedBytes: checkNumber(OWNER, 'batch.maxBufferedBytes', batch.maxBufferedBytes ?? D.maxBufferedBytes, { min: 1, integer: true, allowInfinity: true }),
    gzipAboveBytes: checkNumber(OWNER, 'gzipAboveBytes', options.gzipAboveBytes ?? D.gzipAboveBytes, { min: 0, allowInfinity: true }),
    requestTimeoutMs: checkNumber(OWNER, 'requestTimeoutMs', options.requestTimeoutMs ?? D.requestTimeoutMs, { min: 1 }),
    everyMs,
  };
}
