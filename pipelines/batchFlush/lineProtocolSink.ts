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
import { asyncScheduler, concat, map, Observable, type ObservableInput, type OperatorFunction, type Subscription } from 'rxjs';
import { isAcked, type Ack, type Acked } from '../../lib/core/ack.ts';
import { checkFunction } from '../../lib/core/errors.ts';
import { mayRetry, RetriesExhaustedError } from '../../lib/core/retry.ts';
import { fromPaced } from '../../lib/core/paced.ts';
import { Queue } from '../../lib/core/queue.ts';
import { LineProtocolError } from '../../lib/codec/lineProtocol.ts';
import { FileStorage, openStorage } from '../../lib/storage/index.ts';
import type { ExternalStorage } from '../../lib/storage/storage.ts';
import { adaptiveBatch, type WrittenBatch } from '../../operators/adaptiveBatch.ts';
import { AckedEntry, seqOf, type EntryStages, type Item } from './ackedEntry.ts';
import { LineCheckpoint } from './checkpoint.ts';
import { CheckpointSaves } from './checkpointSaves.ts';
import { DeadLetterError, DeadLetterStore } from './deadLetters.ts';
import { LineArena } from './lineArena.ts';
import { LineBatchWriter, type BatchResult } from './lineBatchWriter.ts';
import { LineWriteError, StorageLineWriter, type LineWriter } from './lineWriter.ts';
import { checkOptions, LINE_SINK_DEFAULTS, OWNER, type LineProtocolSinkOptions } from './options.ts';
import { SinkStatsReporter, type LineSinkEvent } from './progress.ts';
import { httpWriter, storageOf } from './targets.ts';

/** A failure for a `retrying` event: a network error's own message (`connect ECONNREFUSED 127.0.0.1:8086`), else the error's. */
function describeFailure(error: unknown): string {
  const cause = error instanceof Error ? (error.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  if (typeof cause?.code === 'string' && typeof cause.message === 'string') return cause.message.includes(cause.code) ? cause.message : `${cause.code}: ${cause.message}`;
  return error instanceof Error ? error.message : String(error);
}

/**
 * Writes records as line protocol to InfluxDB 1.x / OpenGemini (or .lp files on a storage) and reports
 * what it wrote, restored and refused.
 *
 * Lossless: a record is flushed only once the server accepted its line; retryable failures are retried
 * (backoff × jitter) up to `retry.maxRetries` and for at most `retry.maxElapsedMs` from a batch's first
 * failure, each retry reported as a `retrying` event; then the output errors (the checkpoint keeps the buffer).
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
      let writer: LineWriter | undefined;
      let deadLetters: DeadLetterStore | undefined;
      /** The checkpoint's saves, once it is open (never without `options.checkpoint`). */
      let saves: CheckpointSaves | undefined;
      const closers: (() => Promise<void>)[] = [];
      let inner: Subscription | undefined;
      let closed = false;

      // Accepted lines, numbered in acceptance order, as bytes shared by write bodies and segments.
      const arena = new LineArena();
      let flushedThrough = 0;
      /** Arena offset after the last flushed line (the byte bound counts from here). */
      let flushedEnd = 0;
      /** Acked records whose wake waits for a durable segment or for the byte bound, in order. */
      const held = new Queue<AckedEntry>();

      const reporter = new SinkStatsReporter(
        settings.batch.initialSize,
        { bytesSent: () => writer?.bytesSent, checkpointLines: () => saves?.savedLines ?? 0, heldWakes: () => held.length },
        options.metrics,
        onStatsOption,
      );
      const stats = reporter.stats;
      const report = () => reporter.report();
      const batches = new LineBatchWriter({ arena, stats, retry: settings.retry, writer: () => writer!, deadLetters: () => deadLetters });

      const releaseClosers = () => {
        for (const close of closers.splice(0)) void close().catch(() => undefined);
      };

      const finish = (error?: unknown) => {
        if (closed) return;
        closed = true;
        inner?.unsubscribe();
        // Shutdown save: whatever was accepted and not yet saved goes into the checkpoint first.
        const final = saves === undefined ? Promise.resolve() : saves.saveAll();
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
        ((saves === undefined || entry.seq <= saves.savedThrough) && arena.endOf(entry.seq) - flushedEnd <= settings.maxBufferedBytes);

      /** Wakes held records, in order, that may wake now. */
      const releaseHeld = () => {
        while (held.length > 0 && wakeable(held.peek()!)) held.shift()!.source.enqueued();
      };

      const stages: EntryStages = {
        enqueued: (entry) => {
          if (held.length === 0 && wakeable(entry)) {
            entry.source.enqueued();
            return;
          }
          held.push(entry);
          if (saves !== undefined && entry.seq > saves.savedThrough) saves.requestSave();
        },
        flushed: (entry) => {
          const letters = batches.letters;
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

      /** When each failing batch first failed (scheduler ms): the retry budget counts from there. */
      const failingSince = new WeakMap<Item[], number>();
      /**
       * Writes a batch; adaptiveBatch retries a failure (its backoff), `mayRetry` of the retry policy
       * decides whether it may (retries and time budget), and each retry is reported as `retrying`.
       */
      const write = (items: Item[], attempt: number): ObservableInput<BatchResult> =>
        batches.write(items).then(
          (result) => {
            failingSince.delete(items);
            return result;
          },
          (error: unknown) => {
            if ((error instanceof LineWriteError && !error.retryable) || error instanceof RetriesExhaustedError) {
              // No retry or split can fix a wrong db, url or credentials (and an isolation that ran out
              // of retries has spent the budget): stop now, keep the checkpoint.
              finish(error);
              return new Promise<BatchResult>(() => {});
            }
            const nowMs = scheduler.now();
            const since = failingSince.get(items) ?? nowMs;
            failingSince.set(items, since);
            const elapsedMs = nowMs - since;
            const policy = settings.retry;
            if (!mayRetry(policy, attempt, elapsedMs)) {
              const outOfTime = attempt <= policy.maxRetries;
              const exhausted = new RetriesExhaustedError(`${OWNER}: POST /write to ${writer!.target} (a batch of ${items.length} lines)`, attempt, error, outOfTime ? { maxElapsedMs: policy.maxElapsedMs!, elapsedMs } : undefined);
              for (const item of items) if (isAcked(item)) item.ack.failed(exhausted);
              finish(exhausted);
              return new Promise<BatchResult>(() => {});
            }
            if (!stats.stalledSinceMs) {
              // The stall's start, for lines_stalled_since_seconds (wall time: a scrape compares it with time()).
              stats.stalledSinceMs = Date.now() - elapsedMs;
              report();
            }
            if (!subscriber.closed) {
              subscriber.next({ kind: 'retrying', target: writer!.target, attempt, elapsedMs, maxElapsedMs: policy.maxElapsedMs ?? Infinity, reason: describeFailure(error) });
            }
            throw error;
          },
        );

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
        stats.stalledSinceMs = 0;
        report();
        subscriber.next({
          kind: 'written',
          points: batch.items.length - result.letters.length,
          batchSize: batch.size,
          latencyMs: batch.latencyMs,
          attempts: batch.attempts,
          requests: result.requests,
        });
        const refused = result.letters.map((seq) => batches.letters.get(seq)!);
        for (const seq of result.letters) batches.letters.delete(seq);
        for (const letter of refused) {
          if (subscriber.closed) return;
          subscriber.next({ kind: 'deadLetter', line: letter.line, status: letter.status, message: letter.message, stored: letter.stored });
        }
        saves?.requestRelease();
      };

      const useWriter = (opened: LineWriter) => {
        writer = opened;
        closers.push(() => opened.close());
      };
      const useDeadLetters = (storage: ExternalStorage) => {
        deadLetters = new DeadLetterStore(storage, settings.db);
      };

      /** Opens what needs I/O (storages, the checkpoint's restore), then subscribes to the input. */
      const start = async () => {
        useWriter(httpWriter(settings, options.auth) ?? new StorageLineWriter(await openStorage(settings.url), settings.db));
        if (options.deadLetter !== undefined) useDeadLetters(await storageOf(options.deadLetter, closers));
        let restored: string[] = [];
        if (options.checkpoint !== undefined) {
          const storage = options.checkpoint.dir !== undefined ? new FileStorage(options.checkpoint.dir) : await storageOf(options.checkpoint.storage!, closers);
          if (options.checkpoint.dir !== undefined) closers.push(() => storage.close());
          const checkpoint = new LineCheckpoint(storage, options.checkpoint.prefix ?? LINE_SINK_DEFAULTS.checkpointPrefix, {
            db: settings.db,
            retentionPolicy: settings.retentionPolicy ?? null,
            precision: settings.precision,
          });
          saves = new CheckpointSaves(checkpoint, arena, stats, {
            flushedThrough: () => flushedThrough,
            heldWakes: () => held.length,
            closed: () => closed,
            releaseHeld,
            report,
            fail: finish,
          });
          const found = await saves.restore();
          restored = found.lines;
          if (closed) return;
          if (restored.length > 0) subscriber.next({ kind: 'restored', lines: restored.length, segments: found.segments });
          tick = saves.scheduleTicks(scheduler, settings.everyMs);
          subscriber.add(tick);
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
              // The sink's write decides when to give up (mayRetry: retries and time budget).
              maxRetries: Infinity,
              minBackoffMs: settings.retry.minDelayMs,
              maxBackoffMs: settings.retry.maxDelayMs,
              jitter: settings.retry.jitter,
              ...(settings.retry.random === undefined ? {} : { random: settings.retry.random }),
              maxInFlight: settings.maxInFlight,
              scheduler,
              onStats: (batchStats) => reporter.batchStats(batchStats),
            }),
          )
          .subscribe({ next: onWritten, error: (error: unknown) => finish(error), complete: () => finish() });
      };

      /** The interval save (with a checkpoint): lines of plain values, with no wake to hold, are saved at least this often. */
      let tick: Subscription | undefined;

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
          const final = saves === undefined ? Promise.resolve() : saves.saveAll();
          void final.catch(() => undefined).finally(releaseClosers);
        }
        tick?.unsubscribe();
      };
    });
}
