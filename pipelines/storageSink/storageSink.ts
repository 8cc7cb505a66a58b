/**
 * storageSink: CDC change events into TiCDC-compatible files on any ExternalStorage.
 *
 * events -> track (per-dispatcher positions) -> watermarkBackpressure -> drainBarrier (a DDL drains
 * its dispatchers) -> encode (in order) -> spool (early wake) -> batchBy (file size, flush interval,
 * barrier) -> data files, then index files, then the DDL's schema file -> flushed().
 *
 * Invariants guarded here: a row's ack is flushed only once the data file holding it and its index
 * file are durable; a DDL's schema file is written only after every earlier row of the dispatchers it
 * blocks is durable; the `metadata` checkpoint never passes a row that is not durable.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asyncScheduler, concatMap, from, map, Observable, Subject, type OperatorFunction, type SchedulerLike } from 'rxjs';
import type { Ack, Acked } from '../../lib/core/ack.ts';
import { checkNumber, InvalidOptionError } from '../../lib/core/errors.ts';
import { ProgressTracker } from '../../lib/core/progress.ts';
import { checkRetryPolicy, withRetries, type RetryPolicy } from '../../lib/core/retry.ts';
import {
  changeEventProblem,
  InvalidChangeEventError,
  type ChangeEvent,
  type CsvOptions,
  type DataFolder,
  type DateSeparator,
  type DdlEvent,
  type TableDef,
} from '../../lib/codec/index.ts';
import {
  drainBarrierMetrics,
  flushMetrics,
  pathMetrics,
  spoolMetrics,
  watermarkMetrics,
  type AnyRegistry,
} from '../../lib/metrics/index.ts';
import type { ExternalStorage } from '../../lib/storage/storage.ts';
import { batchBy, type Batch, type BatchReason } from '../../operators/batchBy.ts';
import { drainBarrier } from '../../operators/drainBarrier.ts';
import { spool } from '../../operators/spool.ts';
import { watermarkBackpressure, type WatermarkStats } from '../../operators/watermarkBackpressure.ts';
import { createRowEncoder, dataFileBytes, folderKey, sameFolder, type RowProtocol } from './encoder.ts';
import { FileOutput } from './fileOutput.ts';
import { sinkItemBytes, sinkItemCodec, type DrainMarkerItem, type SinkItem } from './sinkItems.ts';
import { TableRegistry } from './tableRegistry.ts';

export interface StorageSinkOptions {
  storage: ExternalStorage;
  /** Row format: 'csv' (files `.csv`) or 'canal-json' (`.json`). Default 'csv'. */
  protocol?: RowProtocol;
  /** A data file is cut this long after its first row at the latest (ms, >= 100). Default 5000. */
  flushIntervalMs?: number;
  /** A data file is cut at this size (bytes). Default 64 MiB. */
  fileSizeBytes?: number;
  dateSeparator?: DateSeparator;
  fileIndexWidth?: number;
  csv?: CsvOptions;
  /**
   * A table's rows come from several dispatchers (TiCDC's table across nodes): each dispatcher gets
   * its own data files `CDC_{dispatcherId}_{index}` and index file `meta/CDC_{dispatcherId}.index`,
   * so every file stream keeps one dispatcher's commit order. Without it (the default) rows of a table
   * share its files in arrival order, which is right when each table has one dispatcher at a time;
   * rows of several interleave their commit ts there, and a consumer that skips rows by commit ts
   * (as storageConsumer does) may skip some. Default false.
   */
  tableAcrossDispatchers?: boolean;
  /** Definitions of tables whose rows come before (or without) a DDL; their version is the start ts. */
  tables?: readonly TableDef[];
  /**
   * Memory for rows accepted and not yet durable, by estimate (their encoded size plus the state
   * each holds while in flight, ~1 KiB). Wakes are held above 0.8 of it and released at 0.6; above
   * 0.4 the open batch is written at once (reason `quota`) instead of waiting for the interval.
   * Default 64 MiB.
   */
  memoryQuotaBytes?: number;
  /** The spool: its own folder (default a fresh temp folder) and quotas (bytes). */
  spool?: { dir?: string; memoryBytes?: number; diskQuotaBytes?: number; segmentBytes?: number };
  /**
   * A dispatcher sending nothing for this long, with every row durable, has its state reclaimed
   * down to its checkpoint (which still holds the metadata checkpoint: rows carry no resolved ts).
   * Checked every checkpointIntervalMs. Default 30000.
   */
  dispatcherIdleMs?: number;
  /** The `metadata` checkpoint is rewritten at most this often (ms). Default 2000. */
  checkpointIntervalMs?: number;
  /** Retries of file writes (the storages retry transient failures too). */
  retry?: Partial<RetryPolicy>;
  /**
   * Metrics in `registry` under the label `pipeline`: watermark, drain (ddl_drain_duration_seconds),
   * spool gauges, and per data file flush_tasks_total / flush_duration_by_reason_seconds /
   * flush_file_size_bytes by batch reason, plus retries_total{operation="write"} and
   * progress_paths{state} (dispatchers active and idle). Default none.
   */
  metrics?: { registry: AnyRegistry; pipeline: string };
  scheduler?: SchedulerLike;
}

/** What the sink reports as it goes. */
export type SinkProgress =
  | { readonly kind: 'data'; readonly path: string; readonly rows: number; readonly bytes: number; readonly reason: BatchReason }
  | { readonly kind: 'schema'; readonly path: string; readonly commitTs: bigint }
  | {
      readonly kind: 'checkpoint';
      readonly checkpointTs: bigint;
      /** Dispatchers with state, and idle ones reduced to their checkpoint (see dispatcherIdleMs). */
      readonly dispatchers: { readonly active: number; readonly idle: number };
    };

const MiB = 1024 * 1024;

export const STORAGE_SINK_DEFAULTS = Object.freeze({
  protocol: 'csv' as RowProtocol,
  flushIntervalMs: 5000,
  fileSizeBytes: 64 * MiB,
  checkpointIntervalMs: 2000,
  dispatcherIdleMs: 30_000,
  spoolMemoryBytes: 64 * MiB,
  spoolDiskQuotaBytes: 10 * 1024 * MiB,
  memoryQuotaBytes: 64 * MiB,
  /** Wakes are held above this share of the quota (memory, or spool memory + disk), released at the low share. */
  highWatermark: 0.8,
  lowWatermark: 0.6,
  /** Above this share of the quota the open batch is written at once (reason `quota`). */
  cutWatermark: 0.4,
});

const OWNER = 'storageSink';

interface PathSequence {
  commitTs: bigint;
  next: number;
  /** The reclaim sweep in which the path was last seen. */
  sweep: number;
}

/** The rows of one data file being assembled by the writer. */
interface FileRows {
  readonly folder: DataFolder;
  /** Set with tableAcrossDispatchers: the file is this dispatcher's. */
  readonly dispatcherId: string | undefined;
  readonly texts: string[];
  bytes: number;
}

/**
 * Memory a row holds while in flight besides its encoded bytes: its upstream ack, position and the
 * ack layers of the stages, the encoded row object, its spool entry (measured at ~900 B on Node 20).
 */
const ROW_STATE_BYTES = 1024;

/** Events of one commit ts on one dispatcher get consecutive positions below the next ts. */
const SEQUENCE_BITS = 20n;
const SEQUENCE_MASK = (1n << SEQUENCE_BITS) - 1n;
const MAX_SEQUENCE = Number(SEQUENCE_MASK);

type SinkInput = ChangeEvent | DrainMarkerItem;

/**
 * Writes change events as TiCDC's storage sink does and reports files and checkpoints.
 *
 * Lossless: a row is acknowledged (`flushed()`) only once its data file and index file are durable;
 * a write that keeps failing past the retry policy errors the output (the checkpoint stays below).
 * Early wake: a dispatcher's next event flows once the previous one is in the spool, not on disk;
 * a byte watermark over the spool holds wakes back when the spool fills. A DDL drains the
 * dispatchers it blocks (their earlier rows are written first), then its schema file is written.
 * The `metadata` checkpoint is the least position every dispatcher has made durable (a dispatcher
 * that goes quiet holds it at its last commit ts minus one until the input completes; then it
 * reaches the greatest commit ts once every row is durable).
 *
 * @example
 * events$.pipe(storageSink({ storage: await openStorage('s3://bucket/cdc'), protocol: 'csv' })).subscribe(console.log);
 */
export function storageSink(options: StorageSinkOptions): OperatorFunction<Acked<ChangeEvent>, SinkProgress> {
  const settings = checkOptions(options);
  const { storage, protocol, flushIntervalMs, fileSizeBytes, memoryQuotaBytes, checkpointIntervalMs, dispatcherIdleMs, retry, metrics, scheduler } = settings;

  return (events$) =>
    new Observable<SinkProgress>((subscriber) => {
      const acrossDispatchers = options.tableAcrossDispatchers === true;
      const tables = new TableRegistry();
      for (const def of options.tables ?? []) tables.register(def);
      // Rows are checked once, in admit, where each is named by its input position.
      const encode = createRowEncoder({ protocol, dateSeparator: options.dateSeparator ?? 'day', tables, csv: options.csv, rowsChecked: true });
      const output = new FileOutput({
        storage,
        extension: protocol === 'csv' ? '.csv' : '.json',
        ...(options.fileIndexWidth === undefined ? {} : { fileIndexWidth: options.fileIndexWidth }),
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
        // Room for the batch being written and the one filling: cuts come from size, not the clock.
        windowBytes: 2 * fileSizeBytes,
        codec: sinkItemCodec,
        sizeOf: sinkItemBytes,
      });

      const bound = bindMetrics(metrics);
      if (bound) subscriber.add(spooled.stats$.subscribe(bound.spool));

      const tracker = new ProgressTracker<string>();
      /** Per active path: the last commit ts, the next sequence at it, and the sweep it was last seen in. */
      const sequences = new Map<string, PathSequence>();
      /** Active dispatchers, least recently seen first (moved to the back at most once per sweep). */
      const seen = new Map<string, PathSequence>();
      let sweep = 0;
      const schemasWritten = new Set<string>();

      /** A per-path position: the commit ts, then the event's place among those of that ts. */
      const track = (path: string, commitTs: bigint, ack: Ack): Ack => {
        let last = sequences.get(path);
        if (last === undefined) {
          // New, or back from idleness: continue after its highest position when at the same ts.
          const highest = tracker.highest(path);
          const next = highest !== undefined && highest >> SEQUENCE_BITS === commitTs ? Number(highest & SEQUENCE_MASK) + 1 : 0;
          sequences.set(path, (last = { commitTs, next, sweep: -1 }));
        } else if (last.commitTs !== commitTs) {
          last.commitTs = commitTs;
          last.next = 0;
        }
        if (last.sweep !== sweep) {
          last.sweep = sweep;
          seen.delete(path);
          seen.set(path, last);
        }
        const sequence = last.next++;
        if (sequence > MAX_SEQUENCE) {
          throw new RangeError(`${OWNER}: more than ${MAX_SEQUENCE + 1} events at commit ts ${commitTs} on dispatcher ${path}`);
        }
        // The usual case, one event per commit ts on a dispatcher, costs one bigint.
        const base = commitTs << SEQUENCE_BITS;
        return tracker.track(path, sequence === 0 ? base : base | BigInt(sequence), ack);
      };

      let lineNumber = 0;
      const admit = ({ value, ack }: Acked<ChangeEvent>): Acked<SinkInput> => {
        const problem = changeEventProblem(value);
        ++lineNumber;
        if (problem !== undefined) throw new InvalidChangeEventError(value, `event #${lineNumber}`, problem);
        if (value.kind === 'row') return { value, ack: track(value.dispatcherId, value.commitTs, ack) };
        // Each DDL is a path of its own, forgotten once durable, so it does not hold the checkpoint.
        const path = `ddl@${value.commitTs}#${lineNumber}`;
        const tracked = track(path, value.commitTs, ack);
        return {
          value,
          ack: {
            enqueued: () => tracked.enqueued(),
            flushed: () => {
              tracked.flushed();
              tracker.remove(path);
              sequences.delete(path);
              seen.delete(path);
            },
            failed: (error) => tracked.failed(error),
          },
        };
      };

      /**
       * Once the input is done nothing more comes on any dispatcher: each is resolved up to the
       * greatest commit ts seen, so the checkpoint reaches it once every row is durable.
       */
      const completeDispatchers = () => {
        const dispatchers = [...tracker.highestPositions()].filter(([path]) => !path.startsWith('ddl@'));
        let last = -1n;
        for (const [, highest] of dispatchers) if (highest > last) last = highest;
        for (const [path] of dispatchers) tracker.advance(path, last | SEQUENCE_MASK);
      };

      /**
       * Dispatchers not seen for dispatcherIdleMs, with every row durable, are reduced to their
       * checkpoint (ProgressTracker.park): the work is proportional to the dispatchers seen since
       * the last sweep plus those reclaimed, never to all of them.
       */
      const idleSweeps = Math.max(1, Math.ceil(dispatcherIdleMs / checkpointIntervalMs));
      const reclaimIdle = () => {
        sweep++;
        for (const [path, last] of seen) {
          if (last.sweep > sweep - 1 - idleSweeps) break;
          seen.delete(path);
          if (tracker.park(path)) {
            sequences.delete(path);
          } else {
            // Rows still in flight: looked at again after another idle period (at the back now, so
            // this loop stops when it gets there).
            last.sweep = sweep - 1;
            seen.set(path, last);
          }
        }
        bound?.paths.set(tracker.pathCounts);
      };

      const toItem = ({ value, ack }: Acked<SinkInput>): Acked<SinkItem> => {
        if (value.kind === 'drain-marker') return { value, ack };
        if (value.kind === 'ddl') {
          tables.apply(value);
          return { value: { kind: 'ddl', ddl: value }, ack };
        }
        // An encoded row is the spool's row item as it is.
        return { value: encode(value), ack };
      };

      const writeWithRetries = <R>(what: string, write: () => Promise<R>) =>
        withRetries(`${OWNER}: ${what}`, write, {
          policy: retry,
          isRetryable: () => true,
          ...(bound ? { onRetry: () => bound.flushes.retry('write') } : {}),
        });

      /** The schema file of a table version whose rows come without a DDL, once, before its data. */
      const ensureSchema = async (folder: DataFolder) => {
        const key = `${folder.schema}.${folder.table}@${folder.tableVersion}`;
        if (schemasWritten.has(key)) return;
        const def = tables.definitionAt(folder.schema, folder.table, folder.tableVersion);
        await writeWithRetries(`schema of ${key}`, () => output.writeSchemaFile(def));
        schemasWritten.add(key);
      };

      const writeBatch = async (batch: Batch<Acked<SinkItem>>): Promise<SinkProgress[]> => {
        // One file per folder (per folder and dispatcher with tableAcrossDispatchers). Rows come in
        // runs of one folder, so the key is made once per run.
        const files = new Map<string, FileRows>();
        let run: FileRows | undefined;
        let ddl: DdlEvent | undefined;
        for (const { value } of batch.items) {
          if (value.kind === 'ddl') ddl = value.ddl;
          if (value.kind !== 'row') continue;
          const dispatcherId = acrossDispatchers ? value.dispatcherId : undefined;
          if (run === undefined || !sameFolder(run.folder, value.folder) || run.dispatcherId !== dispatcherId) {
            const key = folderKey(value.folder, dispatcherId ?? '');
            run = files.get(key);
            if (run === undefined) files.set(key, (run = { folder: value.folder, dispatcherId, texts: [], bytes: 0 }));
          }
          run.texts.push(value.text);
          run.bytes += value.bytes;
        }
        const progress = await Promise.all(
          [...files.values()].map(async ({ folder, dispatcherId, texts, bytes: length }) => {
            await ensureSchema(folder);
            const bytes = dataFileBytes(texts, length);
            const started = scheduler.now();
            const { path } = await writeWithRetries(`data file of ${folder.schema}.${folder.table}`, () => output.writeDataFile(folder, bytes, dispatcherId));
            bound?.flushes.observe(batch.reason, scheduler.now() - started, bytes.byteLength);
            return { kind: 'data', path, rows: texts.length, bytes: bytes.byteLength, reason: batch.reason } as const;
          }),
        );
        const reports: SinkProgress[] = [...progress];
        if (ddl) {
          const written = ddl;
          const { path } = await writeWithRetries(`schema file of the DDL at ${written.commitTs}`, () => output.writeSchemaFile(written));
          if (written.tableDef) schemasWritten.add(`${written.schema}.${written.table}@${written.tableDef.version}`);
          reports.push({ kind: 'schema', path, commitTs: written.commitTs });
        }
        batch.ack.flushed();
        if (holding) cut$.next();
        return reports;
      };

      // The checkpoint: at most every checkpointIntervalMs, and once more at the end.
      let lastCheckpoint: bigint | undefined;
      let checkpointing: Promise<void> = Promise.resolve();
      const writeCheckpoint = () => {
        checkpointing = checkpointing.then(async () => {
          const overall = tracker.overall;
          if (overall === undefined) return;
          const checkpointTs = ((overall + 1n) >> SEQUENCE_BITS) - 1n;
          if (checkpointTs < 0n || (lastCheckpoint !== undefined && checkpointTs <= lastCheckpoint)) return;
          await writeWithRetries('metadata checkpoint', () => output.writeCheckpoint(checkpointTs));
          lastCheckpoint = checkpointTs;
          const { active, parked } = tracker.pathCounts;
          subscriber.next({ kind: 'checkpoint', checkpointTs, dispatchers: { active, idle: parked } });
        });
        checkpointing.catch((error: unknown) => subscriber.error(error));
        return checkpointing;
      };
      subscriber.add(
        scheduler.schedule(function repeat() {
          reclaimIdle();
          void writeCheckpoint();
          this.schedule(undefined, checkpointIntervalMs);
        }, checkpointIntervalMs),
      );

      // Rows in flight are bounded by memory (their state stays on the heap even when their bytes
      // are spilled) and by what the spool can hold.
      const quotaBytes = Math.min(memoryQuotaBytes, spoolMemory + spoolDisk);
      // The quota drains by writes, never by waiting for the interval: the writer cuts its open
      // batch when rows in flight cross the cut mark (so one batch is written while the next
      // fills), when wakes start being held, and after each write while they still are.
      const cut$ = new Subject<void>();
      const cutBytes = quotaBytes * STORAGE_SINK_DEFAULTS.cutWatermark;
      let aboveCut = false;
      let holding = false;
      const watchQuota = (stats: Readonly<WatermarkStats>) => {
        const startsHolding = stats.holding && !holding;
        holding = stats.holding;
        if (stats.usageBytes < cutBytes) aboveCut = false;
        else if (!aboveCut || startsHolding) {
          aboveCut = true;
          cut$.next();
        }
        bound?.watermark(stats);
      };
      subscriber.add(
        events$
          .pipe(
            map(admit),
            watermarkBackpressure<SinkInput>({
              highBytes: Math.floor(quotaBytes * STORAGE_SINK_DEFAULTS.highWatermark),
              lowBytes: Math.floor(quotaBytes * STORAGE_SINK_DEFAULTS.lowWatermark),
              sizeOf: (event) => (event.kind === 'row' ? approximateRowBytes(event) : 256) + ROW_STATE_BYTES,
              onStats: watchQuota,
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
              cut$,
              scheduler,
            }),
            concatMap((batch) => from(writeBatch(batch))),
            concatMap((reports) => from(reports)),
          )
          .subscribe({
            next: (report) => subscriber.next(report),
            error: (error) => subscriber.error(error),
            complete: () => {
              // Every row is durable and nothing more comes.
              completeDispatchers();
              writeCheckpoint().then(
                () => subscriber.complete(),
                () => undefined,
              );
            },
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

/** A cheap size estimate for the watermark: the row's column values, roughly as encoded. */
function approximateRowBytes(row: Extract<ChangeEvent, { kind: 'row' }>): number {
  let bytes = 64;
  for (const value of Object.values(row.columns)) bytes += valueBytes(value);
  if (row.oldColumns) for (const value of Object.values(row.oldColumns)) bytes += valueBytes(value);
  return bytes;
}

function valueBytes(value: unknown): number {
  if (typeof value === 'string') return value.length + 3;
  if (value instanceof Uint8Array) return Math.ceil(value.byteLength * 1.34) + 3;
  return 8;
}

interface SinkSettings {
  storage: ExternalStorage;
  protocol: RowProtocol;
  flushIntervalMs: number;
  fileSizeBytes: number;
  memoryQuotaBytes: number;
  checkpointIntervalMs: number;
  dispatcherIdleMs: number;
  retry: RetryPolicy;
  metrics: StorageSinkOptions['metrics'];
  scheduler: SchedulerLike;
}

function checkOptions(options: StorageSinkOptions): SinkSettings {
  const storage = options.storage;
  if (storage === null || typeof storage !== 'object' || typeof storage.put !== 'function') {
    throw new InvalidOptionError(OWNER, 'storage', storage, 'an ExternalStorage (see openStorage)');
  }
  const protocol = options.protocol ?? STORAGE_SINK_DEFAULTS.protocol;
  if (protocol !== 'csv' && protocol !== 'canal-json') throw new InvalidOptionError(OWNER, 'protocol', protocol, "'csv' or 'canal-json'");
  if (options.tableAcrossDispatchers !== undefined && typeof options.tableAcrossDispatchers !== 'boolean') {
    throw new InvalidOptionError(OWNER, 'tableAcrossDispatchers', options.tableAcrossDispatchers, 'a boolean');
  }
  const metrics = options.metrics;
  if (
    metrics !== undefined &&
    (metrics === null || typeof metrics !== 'object' || typeof metrics.registry?.getMetricsAsJSON !== 'function' ||
      typeof metrics.pipeline !== 'string' || metrics.pipeline === '')
  ) {
    throw new InvalidOptionError(OWNER, 'metrics', metrics, 'an object { registry: a prom-client Registry (createMetricsRegistry), pipeline: a non-empty string }');
  }
  return {
    storage,
    protocol,
    flushIntervalMs: checkNumber(OWNER, 'flushIntervalMs', options.flushIntervalMs ?? STORAGE_SINK_DEFAULTS.flushIntervalMs, { min: 100 }),
    fileSizeBytes: checkNumber(OWNER, 'fileSizeBytes', options.fileSizeBytes ?? STORAGE_SINK_DEFAULTS.fileSizeBytes, { min: 1, integer: true }),
    memoryQuotaBytes: checkNumber(OWNER, 'memoryQuotaBytes', options.memoryQuotaBytes ?? STORAGE_SINK_DEFAULTS.memoryQuotaBytes, { min: 1, integer: true }),
    checkpointIntervalMs: checkNumber(
      OWNER,
      'checkpointIntervalMs',
      options.checkpointIntervalMs ?? STORAGE_SINK_DEFAULTS.checkpointIntervalMs,
      { min: 1 },
    ),
    dispatcherIdleMs: checkNumber(OWNER, 'dispatcherIdleMs', options.dispatcherIdleMs ?? STORAGE_SINK_DEFAULTS.dispatcherIdleMs, { min: 0 }),
    retry: checkRetryPolicy(OWNER, options.retry),
    metrics,
    scheduler: options.scheduler ?? asyncScheduler,
  };
}
