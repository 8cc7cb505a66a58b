/**
 * storageSink: CDC change events into TiCDC-compatible files on any ExternalStorage.
 *
 * events (resume: those at or below the `metadata` checkpoint found at start are skipped) ->
 * positions per dispatcher -> watermarkBackpressure (memory quota) -> drainBarrier (a DDL
 * drains its dispatchers) -> encode (in order, into the row arena) -> spool (early wake) -> batchBy (file size, flush
 * interval, barrier, quota) -> data files, then index files, then the DDL's schema file ->
 * flushed() -> the `metadata` checkpoint.
 *
 * Invariants guarded here: a row's ack is flushed only once the data file holding it and its index
 * file are durable; a DDL's schema file is written only after every earlier row of the dispatchers it
 * blocks is durable; the `metadata` checkpoint never passes a row that is not durable, and a rerun on
 * the same input writes nothing at or below the checkpoint it found (ResumePoint). The checkpoint
 * found is read once, before the first event, and seeds the checkpoint stage (MetadataCheckpoint),
 * the one owner of its order: it never goes back, resume on or off. A bad event (EventAdmission) or
 * an input error never loses what came before it: the input stops there, and the output errors only
 * once that is durable and checkpointed. Every checkpoint, at a stop too, is safe under the input
 * contract EventAdmission enforces (no event below the least of the dispatchers' last commit ts, so
 * none below a checkpoint written before it); a resumed run holds it for the events it skips too,
 * and holds its own checkpoint at the one resumed from for a dispatcher it has only skipped so far.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { catchError, concatMap, defer, EMPTY, filter, from, map, Observable, Subject, takeUntil, takeWhile, type OperatorFunction } from 'rxjs';
import type { Acked } from '../../lib/core/ack.ts';
import type { RetryInfo } from '../../lib/core/retry.ts';
import type { ChangeEvent, DdlEvent } from '../../lib/codec/index.ts';
import { checkFunction } from '../../lib/core/errors.ts';
import { drainBarrierMetrics, flushMetrics, pathMetrics, spoolMetrics, watermarkMetrics } from '../../lib/metrics/index.ts';
import { batchBy } from '../../operators/batchBy.ts';
import { drainBarrier } from '../../operators/drainBarrier.ts';
import { spool } from '../../operators/spool.ts';
import { watermarkBackpressure } from '../../operators/watermarkBackpressure.ts';
import { BatchWriter } from './batchWriter.ts';
import { DispatcherPositions } from './dispatcherPositions.ts';
import { EventAdmission } from './eventAdmission.ts';
import { createFileHeader, createRowEncoder } from './encoder.ts';
import { FileOutput } from './fileOutput.ts';
import { MetadataCheckpoint } from './metadataCheckpoint.ts';
import { checkOptions, STORAGE_SINK_DEFAULTS, type SinkProgress, type StorageSinkOptions } from './options.ts';
import { QuotaCut } from './quotaCut.ts';
import { readStoredCheckpoint, ResumePoint, UnreadableCheckpointError } from './resumePoint.ts';
import { RowArena } from './rowArena.ts';
import { sinkItemBytes, sinkItemCodec, type DrainMarkerItem, type SinkItem } from './sinkItems.ts';
import { TableRegistry } from './tableRegistry.ts';

export { STORAGE_SINK_DEFAULTS, type SinkProgress, type StorageSinkOptions } from './options.ts';

const OWNER = 'storageSink';

/**
 * Memory a row holds while in flight besides its encoded bytes: its upstream ack, position and the
 * ack layers of the stages, the encoded row object, its spool entry (measured at ~700 B on Node 20).
 */
const ROW_STATE_BYTES = 1024;

type SinkInput = ChangeEvent | DrainMarkerItem;

/** admit's answer for an event that stops the input (onBadEvent said 'stop'). */
const STOP = Symbol('stop taking events');

/**
 * Writes change events as TiCDC's storage sink does and reports files and checkpoints.
 *
 * Lossless: a row is acknowledged (`flushed()`) only once its data file and index file are durable;
 * a write that keeps failing past the retry policy (its retries, or its time budget `maxElapsedMs`)
 * errors the output (the checkpoint stays below); each retry is reported first as a 'stall'.
 * Early wake: a dispatcher's next event flows once the previous one is in the spool, not on disk;
 * a byte watermark over the spool holds wakes back when the spool fills. A DDL drains the
 * dispatchers it blocks (their earlier rows are written first), then its schema file is written.
 * The `metadata` checkpoint is the least position every dispatcher has made durable (a dispatcher
 * that goes quiet holds it at its last commit ts minus one until the input completes; then it
 * reaches the greatest commit ts once every row is durable).
 * Resume (default on): a `metadata` checkpoint N already in the storage means every event at or
 * below N is durable there (an earlier run, killed or complete, on the same input), so those events
 * are skipped, acknowledged as flushed and reported as `skipped`; a skipped DDL still defines its
 * table for the rows above N. The checkpoint written next is above N, with resume off too (then
 * every event is written again, and the checkpoint stays at N until the run passes it).
 * Bad input: each event above the checkpoint resumed from is checked in input order against the
 * table definitions the input gave so far (EventAdmission); a bad one goes to `onBadEvent` ('skip' or
 * 'stop', default 'stop', or a promise of one: the event then holds the checkpoint below its commit
 * ts until it settles, so a dead letter is durable before the checkpoint passes it, and the output
 * completes only once every one settled; a rejection is a stop with its error). A stop, or an error
 * of the input itself, ends the input there: every event accepted before it is made durable and the
 * checkpoint written (not past any dispatcher's last event, as the input did not end), then the
 * output errors with it. An event at or below a checkpoint that may already be written is a bad
 * event (the input contract: see StorageSinkOptions.resume), so a rerun after a stop loses nothing
 * or refuses the line that breaks the contract.
 *
 * @example
 * events$.pipe(storageSink({ storage: await openStorage('s3://bucket/cdc'), protocol: 'csv' })).subscribe(console.log);
 */
export function storageSink(options: StorageSinkOptions): OperatorFunction<Acked<ChangeEvent>, SinkProgress> {
  const settings = checkOptions(options);
  const onBadEvent = options.onBadEvent === undefined ? () => 'stop' as const : checkFunction(OWNER, 'onBadEvent', options.onBadEvent);
  const eventPosition = options.eventPosition === undefined ? (_event: ChangeEvent, index: number) => `event #${index}` : checkFunction(OWNER, 'eventPosition', options.eventPosition);
  const { storage, protocol, resume, flushIntervalMs, fileSizeBytes, memoryQuotaBytes, checkpointIntervalMs, dispatcherIdleMs, retry, metrics, scheduler } = settings;

  return (events$) =>
    new Observable<SinkProgress>((subscriber) => {
      const tables = new TableRegistry();
      const positions = new DispatcherPositions();
      // Each event is checked against the checkpoints this run wrote before it (EventAdmission).
      const admission = new EventAdmission(eventPosition, () => checkpoint.claimed);
      for (const def of options.tables ?? []) {
        tables.register(def);
        admission.register(def);
      }
      // Rows are checked once, in admit, where each is named by its input position.
      const encode = createRowEncoder({ protocol, dateSeparator: options.dateSeparator ?? 'day', tables, csv: settings.csv, canalJson: settings.canalJson, rowsChecked: true });
      const arena = new RowArena();
      const bound = bindMetrics(metrics);
      // A transient storage failure being retried (within retry.maxElapsedMs): reported, nothing lost.
      const stalled = ({ operation, attempt, delayMs, elapsedMs, error }: RetryInfo) =>
        subscriber.next({ kind: 'stall', target: storage.uri, operation, attempt, elapsedMs, delayMs, retryForMs: retry.maxElapsedMs ?? Infinity, error });
      const writer = new BatchWriter({
        output: new FileOutput({
          storage,
          extension: protocol === 'csv' ? '.csv' : '.json',
          ...(options.fileIndexWidth === undefined ? {} : { fileIndexWidth: options.fileIndexWidth }),
        }),
        tables,
        fileHeader: createFileHeader({ protocol, csv: settings.csv, tables }),
        acrossDispatchers: options.tableAcrossDispatchers === true,
        retry,
        flushes: bound?.flushes,
        scheduler,
        owner: OWNER,
        onRetry: stalled,
        rowDurable: (dispatcherId) => positions.rowDurable(dispatcherId),
      });
      // A fresh empty folder is a valid spool folder; the spool removes it at teardown.
      const spoolDir = options.spool?.dir ?? mkdtempSync(join(tmpdir(), 'sluice-sink-spool-'));
      const spoolMemory = options.spool?.memoryBytes ?? STORAGE_SINK_DEFAULTS.spoolMemoryBytes;
      const spoolDisk = options.spool?.diskQuotaBytes ?? STORAGE_SINK_DEFAULTS.spoolDiskQuotaBytes;
      const spooled = spool<SinkItem>({
        dir: spoolDir,
        memoryBytes: spoolMemory,
        diskQuotaBytes: spoolDisk,
        ...(options.spool?.segmentBytes === undefined ? {} : { segmentBytes: options.spool.segmentBytes }),
        // Room for the batch being written and the one filling: cuts come from size or quota, not the clock.
        windowBytes: 2 * fileSizeBytes,
        codec: sinkItemCodec,
        sizeOf: sinkItemBytes,
      });
      if (bound) subscriber.add(spooled.stats$.subscribe(bound.spool));

      // Set once the `metadata` file was read, before the first event: the checkpoint resumed from.
      let resumed: ResumePoint | undefined;
      const reportSkipped = (point: ResumePoint) => {
        if (point.takeUnreported()) subscriber.next({ kind: 'skipped', events: point.skipped, upToTs: point.checkpointTs });
      };
      /**
       * An event at or below the resumed checkpoint: dealt with by an earlier run (durable, or handed to
       * onBadEvent then), so it is not checked again; only a DDL's table definition counts (a bad DDL,
       * which the earlier run did not take either, teaches nothing).
       */
      const skip = (point: ResumePoint, { value, ack }: Acked<ChangeEvent>, index: number): undefined => {
        point.skipped++;
        if (value.kind === 'ddl' && admission.check(value, index) === undefined) {
          tables.apply(value);
          writer.schemaDurable(value);
        }
        ack.flushed();
        return undefined;
      };

      let eventNumber = 0;
      /** Why the input stopped before its end: a bad event's error, or the input's own; undefined while it runs. */
      let stopped: { error: unknown } | undefined;
      // onBadEvent's verdicts still to come (promises), each holding its event's position; and the
      // input's end when one is a stop.
      const verdicts = new Set<Promise<void>>();
      const halt$ = new Subject<void>();
      const awaitVerdict = (verdict: PromiseLike<'skip' | 'stop'>, error: unknown, { value, ack }: Acked<ChangeEvent>, index: number) => {
        // A commit ts that is no position (malformed) is never skipped on a rerun: nothing to hold.
        const held = typeof value.commitTs === 'bigint' && value.commitTs >= 0n && value.commitTs < 2n ** 63n ? positions.holdRejected(value.commitTs, index) : undefined;
        const settled = Promise.resolve(verdict)
          .then((answer) => {
            if (answer !== 'skip') throw error;
            held?.flushed();
            ack.flushed();
          })
          .catch((failure: unknown) => {
            stopped ??= { error: failure };
            halt$.next();
          });
        verdicts.add(settled);
        void settled.then(() => verdicts.delete(settled));
      };
      const admit = (item: Acked<ChangeEvent>): Acked<SinkInput> | undefined | typeof STOP => {
        const { value, ack } = item;
        const index = ++eventNumber;
        let bad: ReturnType<EventAdmission['check']>;
        if (resumed !== undefined) {
          if (typeof value.commitTs === 'bigint' && resumed.covers(value.commitTs)) {
            if (value.kind === 'row' && typeof value.dispatcherId === 'string') {
              // Its dispatcher holds this run's checkpoint at the one resumed from, as in the run before,
              // until it moves above it: a later row of it may be above that and not yet durable.
              positions.admitRow(value.dispatcherId, resumed.checkpointTs);
              positions.rowDurable(value.dispatcherId);
            }
            return skip(resumed, item, index);
          } else {
            reportSkipped(resumed);
          }
        }
        bad ??= admission.check(value, index);
        if (bad !== undefined) {
          const verdict = onBadEvent(bad, value);
          if (verdict === 'skip') {
            ack.flushed();
            return undefined;
          }
          if (isPromiseLike(verdict)) {
            awaitVerdict(verdict, bad, item, index);
            return undefined;
          }
          stopped = { error: bad };
          return STOP;
        }
        if (value.kind === 'ddl') return { value, ack: positions.trackDdl(value.commitTs, index, ack) };
        // The writer reports the row durable (BatchWriter's rowDurable): its ack goes on unwrapped.
        positions.admitRow(value.dispatcherId, value.commitTs);
        return item;
      };

      const toItem = ({ value, ack }: Acked<SinkInput>): Acked<SinkItem> => {
        if (value.kind === 'drain-marker') return { value, ack };
        if (value.kind === 'ddl') {
          tables.apply(value);
          return { value: { kind: 'ddl', ddl: value }, ack };
        }
        return { value: arena.rowOf(encode(value)), ack };
      };

      // The checkpoint: at most every checkpointIntervalMs, and once more at the end; only forward
      // from the one found in the file (MetadataCheckpoint owns that).
      const checkpoint = new MetadataCheckpoint((checkpointTs) => writer.writeCheckpoint(checkpointTs));
      const writeCheckpoint = () => {
        const written = checkpoint.advance(() => positions.checkpointTs).then((checkpointTs) => {
          if (checkpointTs !== undefined) subscriber.next({ kind: 'checkpoint', checkpointTs, dispatchers: positions.counts });
        });
        written.catch((error: unknown) => subscriber.error(error));
        return written;
      };
      const idleSweeps = Math.max(1, Math.ceil(dispatcherIdleMs / checkpointIntervalMs));
      subscriber.add(
        scheduler.schedule(function repeat() {
          positions.reclaimIdle(idleSweeps);
          if (bound) {
            const { active, idle } = positions.counts;
            bound.paths.set({ active, parked: idle });
          }
          void writeCheckpoint();
          this.schedule(undefined, checkpointIntervalMs);
        }, checkpointIntervalMs),
      );

      // Rows in flight are bounded by memory (their state stays on the heap even when their bytes
      // are spilled) and by what the spool can hold.
      const quotaBytes = Math.min(memoryQuotaBytes, spoolMemory + spoolDisk);
      const quota = new QuotaCut(quotaBytes * STORAGE_SINK_DEFAULTS.cutWatermark);
      // The checkpoint in the file is read once, before the first event is taken. With resume off, a
      // file that is not a checkpoint is no floor: the first checkpoint written replaces it.
      const stored$ = defer(() =>
        readStoredCheckpoint(storage, retry, OWNER, stalled).catch((error: unknown) => {
          if (!resume && error instanceof UnreadableCheckpointError) return undefined;
          throw error;
        }),
      );
      const startFrom = (stored: bigint | undefined) => {
        checkpoint.found(stored);
        if (stored === undefined || !resume) return;
        resumed = new ResumePoint(stored);
        positions.resumeFrom(stored);
      };
      subscriber.add(
        stored$
          .pipe(
            concatMap((stored) => {
              startFrom(stored);
              return events$.pipe(
                // The input failing stops it as a bad event does: what it gave before is kept.
                catchError((error: unknown) => {
                  stopped ??= { error };
                  return EMPTY;
                }),
                // A verdict that came back 'stop' (or failed) ends the input at once, even a quiet one.
                takeUntil(halt$),
                map(admit),
                takeWhile((item): item is Acked<SinkInput> | undefined => item !== STOP),
                filter((item): item is Acked<SinkInput> => item !== undefined),
              );
            }),
            watermarkBackpressure<SinkInput>({
              highBytes: Math.floor(quotaBytes * STORAGE_SINK_DEFAULTS.highWatermark),
              lowBytes: Math.floor(quotaBytes * STORAGE_SINK_DEFAULTS.lowWatermark),
              sizeOf: (event) => (event.kind === 'row' ? approximateRowBytes(event) : 256) + ROW_STATE_BYTES,
              onStats: (stats) => {
                quota.watch(stats);
                bound?.watermark(stats);
              },
            }),
            drainBarrier<SinkInput, string>({
              isBarrier: (event) => event.kind === 'ddl',
              scopeOf: (event) => (event as DdlEvent).blockedDispatchers,
              keyOf: (event) => (event.kind === 'row' ? event.dispatcherId : ''),
              marker: (): SinkInput => ({ kind: 'drain-marker' }),
              scheduler,
              ...bound?.drain,
            }),
            map(toItem),
            spooled,
            batchBy<Acked<SinkItem>>({
              maxBytes: fileSizeBytes,
              sizeOf: (item) => sinkItemBytes(item.value),
              maxDelayMs: flushIntervalMs,
              isBarrier: (item) => item.value.kind !== 'row',
              cut$: quota.cut$,
              scheduler,
            }),
            concatMap((batch) =>
              from(
                writer.write(batch).then((reports) => {
                  quota.written();
                  return reports;
                }),
              ),
            ),
            concatMap((reports) => from(reports)),
          )
          .subscribe({
            next: (report) => subscriber.next(report),
            error: (error) => subscriber.error(error),
            // Every row is durable; the verdicts still to come are awaited first (one may be a stop).
            complete: () => void Promise.all(verdicts).then(() => {
              if (resumed !== undefined) reportSkipped(resumed);
              // Only an input that ended says nothing more comes: after a stop, a dispatcher's next
              // events may share its last commit ts, or another's be below it.
              if (stopped === undefined) positions.completeAll();
              writeCheckpoint().then(
                () => (stopped === undefined ? subscriber.complete() : subscriber.error(stopped.error)),
                () => undefined,
              );
            }),
          }),
      );
    });
}

/**
 * The metric bindings of one subscription, or undefined without the option. Bindings are
 * get-or-create, so several sinks (or a restarted one) on one registry share the series.
 */
function bindMetrics(metrics: StorageSinkOptions['metrics']) {
  if (metrics === undefined) return undefined;
  const { registry } = metrics;
  const labels = { pipeline: metrics.pipeline };
  return {
    watermark: watermarkMetrics(registry, labels),
    drain: drainBarrierMetrics(registry, labels),
    spool: spoolMetrics(registry, labels),
    flushes: flushMetrics(registry, labels),
    paths: pathMetrics(registry, labels),
  };
}

function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof value === 'object' && value !== null && typeof (value as PromiseLike<T>).then === 'function';
}

/** A cheap size estimate for the watermark: the row's column values, roughly as encoded. */
function approximateRowBytes(row: Extract<ChangeEvent, { kind: 'row' }>): number {
  // for-in, not Object.values: no array per row (the columns were checked to be plain own values).
  let bytes = 64;
  const { columns, oldColumns } = row;
  for (const name in columns) bytes += valueBytes(columns[name]);
  if (oldColumns) for (const name in oldColumns) bytes += valueBytes(oldColumns[name]);
  return bytes;
}

function valueBytes(value: unknown): number {
  if (typeof value === 'string') return value.length + 3;
  if (value instanceof Uint8Array) return Math.ceil(value.byteLength * 1.34) + 3;
  return 8;
}

