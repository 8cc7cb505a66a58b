/**
 * Suite `sink`: storageSink throughput with early wake, against the same sink woken only on flush
 * and against encoding alone.
 *
 * The input is `dispatchers` paced paths (`mergePaced`, window 1), each a generator of its share of
 * `rows` rows (about 200 bytes as csv, table `bench.t`, increasing commit ts), into a csv storageSink
 * on a FileStorage in a temp folder with a 1 s flush interval. Measured:
 * (a) rows/s from subscribe until the sink completes (every row flushed);
 * (b) baseline, the seed's "wake on flush": each row's ack ignores `enqueued()`, so a dispatcher sends
 *     its next row only once the previous one's file is written; rows flushed in `seconds` s, per s;
 * (c) reference, the same rows through `createRowEncoder` (csv) in a loop and into data-file bytes
 *     (each file's texts written as UTF-8 into one buffer), no I/O: the cheapest way from rows to file
 *     bytes, cheaper than the sink's row arena (which pays for itself only while rows wait for their
 *     file), so the stricter reference.
 * Each measurement runs in a fresh child node on tsc output (bench/harness.ts compileBench), as an
 * application runs the sink, so none inherits another's heap or JIT state: `rounds` rounds of (c) and
 * (a), their order alternating, then (b) once; the figures are the medians (a single run on a shared
 * machine varies by ~10%). Targets: ratio a/b >= 10, vsEncode a/c >= 0.5, peak RSS <= 512 MiB (the
 * greatest of any child).
 *
 * Invariant guarded here: rows are generated lazily (one pending row per dispatcher), (a) is checked
 * to have flushed every row, and the temp folder (storage and spool) is removed whatever happens.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { map, type Observable } from 'rxjs';
import { bindAck, type Ack, type AckHandler, type Acked } from '../lib/core/ack.ts';
import { mergePaced } from '../lib/core/paced.ts';
import type { ChangeEvent, RowChange, TableDef } from '../lib/codec/index.ts';
import { FileStorage } from '../lib/storage/fileStorage.ts';
import { createRowEncoder } from '../pipelines/storageSink/encoder.ts';
import { STORAGE_SINK_DEFAULTS } from '../pipelines/storageSink/options.ts';
import { storageSink } from '../pipelines/storageSink/storageSink.ts';
import { TableRegistry } from '../pipelines/storageSink/tableRegistry.ts';
import { type BenchParams, compileBench, eventsPerSecond, measure, median, numberParam, peakRssBytes, printPhase, printResult, progress, rssBreakdown } from './harness.ts';

const FLUSH_INTERVAL_MS = 1000;
/**
 * The file size of (c): about what the sink writes in (a), where its memory quota (not the 64 MiB
 * file size) cuts files. The encoder's speed does not depend on it; its memory does.
 */
const ENCODED_FILE_BYTES = 4 * 1024 * 1024;
const MiB = 1024 ** 2;
const TABLE: TableDef = {
  schema: 'bench',
  table: 't',
  version: 1n,
  columns: [
    { name: 'id', type: 'BIGINT', primaryKey: true, nullable: false },
    { name: 'dispatcher', type: 'INT' },
    { name: 'name', type: 'VARCHAR' },
    { name: 'amount', type: 'DECIMAL', precision: 12, scale: 2 },
    { name: 'note', type: 'VARCHAR' },
  ],
};
/** 2024-05-01T12:00:00Z as a TiDB ts (physical ms << 18): every row lands in one day folder. */
const BASE_TS = BigInt(Date.UTC(2024, 4, 1, 12)) << 18n;
/** Padding that brings a csv record to about 200 bytes. */
const NOTE = 'lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua, ut enim ad minim veniam quis';

/** Dispatcher `d`'s share of `rows`, generated one at a time, commit ts increasing. */
function* dispatcherRows(d: number, dispatchers: number, rows: number): Generator<ChangeEvent> {
  const dispatcherId = `d${d}`;
  const share = Math.floor(rows / dispatchers) + (d < rows % dispatchers ? 1 : 0);
  for (let i = 0; i < share; i++) {
    const id = i * dispatchers + d;
    yield {
      kind: 'row',
      op: 'insert',
      schema: TABLE.schema,
      table: TABLE.table,
      tableVersion: TABLE.version,
      commitTs: BASE_TS + BigInt(i + 1),
      dispatcherId,
      columns: { id, dispatcher: d, name: `name-${id}`, amount: `${id % 100000}.${String(id % 100).padStart(2, '0')}`, note: NOTE },
    };
  }
}

function input(dispatchers: number, rows: number): Observable<Acked<ChangeEvent>> {
  return mergePaced(
    Array.from({ length: dispatchers }, (_, d) => dispatcherRows(d, dispatchers, rows)),
    { window: 1 },
  );
}

function sinkOn(root: string) {
  return storageSink({
    storage: new FileStorage(join(root, 'storage')),
    protocol: 'csv',
    flushIntervalMs: FLUSH_INTERVAL_MS,
    tables: [TABLE],
    spool: { dir: join(root, 'spool') },
  });
}

/** V8's side of RSS: heap used/committed, and external memory (ArrayBuffers). */
function heapLine(): string {
  const m = process.memoryUsage();
  return `heap ${(m.heapUsed / MiB).toFixed(0)}/${(m.heapTotal / MiB).toFixed(0)} MiB, external ${(m.external / MiB).toFixed(0)} MiB`;
}

/** (a): resolves with the rows the sink reported written once it completes. */
function sinkAll(root: string, dispatchers: number, rows: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let written = 0;
    let files = 0;
    const ticker = setInterval(() => progress(`  (a) ${written} rows in ${files} files, ${rssBreakdown()}, ${heapLine()}`), 2000);
    input(dispatchers, rows)
      .pipe(sinkOn(root))
      .subscribe({
        next: (report) => {
          if (report.kind !== 'data') return;
          written += report.rows;
          files++;
        },
        error: (error: unknown) => {
          clearInterval(ticker);
          reject(error);
        },
        complete: () => {
          clearInterval(ticker);
          progress(`  (a) ${written} rows in ${files} files`);
          resolve(written);
        },
      });
  });
}

/** Passes only the durable stages on: the source's wake comes with `flushed()` (which implies it). */
const WAKE_ON_FLUSH: AckHandler<Ack> = {
  flushed: (ack) => ack.flushed(),
  failed: (ack, error) => ack.failed(error),
};

/** (b): rows flushed within `seconds` s with wake on flush, then unsubscribes. */
async function sinkWakeOnFlush(root: string, dispatchers: number, rows: number, seconds: number): Promise<number> {
  let flushed = 0;
  const counting: AckHandler<Ack> = {
    ...WAKE_ON_FLUSH,
    flushed: (ack) => {
      flushed++;
      ack.flushed();
    },
  };
  let failure: unknown;
  const subscription = input(dispatchers, rows)
    .pipe(
      map(({ value, ack }) => ({ value, ack: bindAck(counting, ack) })),
      sinkOn(root),
    )
    .subscribe({ error: (error: unknown) => (failure = error) });
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const counted = flushed;
  subscription.unsubscribe();
  // Let a file write that was under way settle before the folder is removed.
  await new Promise((resolve) => setTimeout(resolve, 200));
  if (failure !== undefined) throw failure;
  return counted;
}

/**
 * (c): the same rows through the csv encoder into the bytes of data files of ENCODED_FILE_BYTES,
 * each file's texts written as UTF-8 into one buffer, no I/O; returns the bytes (so the work is used).
 */
function encodeAll(dispatchers: number, rows: number): number {
  const tables = new TableRegistry({ maxTables: 8 });
  tables.register(TABLE);
  // The sink's own csv settings (its default writes the commit ts), so (c) encodes what (a) writes.
  const encode = createRowEncoder({ protocol: 'csv', dateSeparator: 'day', tables, csv: STORAGE_SINK_DEFAULTS.csv });
  let total = 0;
  let texts: string[] = [];
  let fileBytes = 0;
  const cut = () => {
    const file = Buffer.allocUnsafe(fileBytes);
    let offset = 0;
    for (const text of texts) offset += file.write(text, offset, 'utf8');
    if (offset !== fileBytes) throw new Error(`sink bench: (c) wrote ${offset} of ${fileBytes} bytes`);
    total += offset;
    texts = [];
    fileBytes = 0;
  };
  for (let d = 0; d < dispatchers; d++) {
    for (const row of dispatcherRows(d, dispatchers, rows)) {
      const encoded = encode(row as RowChange);
      if (fileBytes + encoded.bytes > ENCODED_FILE_BYTES) cut();
      texts.push(encoded.text);
      fileBytes += encoded.bytes;
    }
  }
  cut();
  return total;
}

interface PhaseFigures {
  rowsPerSecond: number;
  peakRssBytes: number;
  bytesPerRow?: number;
}

/**
 * @param params.rows rows through the sink in (a) and the encoder in (c) (default 2e6);
 *   params.dispatchers paced paths (default 1000); params.seconds length of (b) (default 5);
 *   params.rounds measurements of (a) and of (c), each in its own child (default 3).
 */
export async function run(params: BenchParams): Promise<void> {
  const { rows, dispatchers } = sizes(params);
  const seconds = numberParam(params, 'seconds', 5, { min: 0.1 });
  const rounds = numberParam(params, 'rounds', 3, { min: 1, integer: true });
  const compiled = compileBench('sink');
  try {
    progress(`sink: ${rows} rows over ${dispatchers} dispatchers, flush interval ${FLUSH_INTERVAL_MS} ms, ${rounds} round(s) of (c) and (a), then (b) (node ${process.version})`);
    const phase = async (exportName: string) => (await compiled.run('sink', exportName, params, { result: true })) as PhaseFigures;
    const encoded: PhaseFigures[] = [];
    const sank: PhaseFigures[] = [];
    for (let round = 0; round < rounds; round++) {
      // Alternated, so neither side always runs on the warmer (or the more loaded) machine.
      if (round % 2 === 0) {
        encoded.push(await phase('measureEncode'));
        sank.push(await phase('measureEarlyWake'));
      } else {
        sank.push(await phase('measureEarlyWake'));
        encoded.push(await phase('measureEncode'));
      }
    }
    const woken = await phase('measureWakeOnFlush');
    const earlyWake = median(sank.map((f) => f.rowsPerSecond));
    const encodeOnly = median(encoded.map((f) => f.rowsPerSecond));
    const wakeOnFlush = woken.rowsPerSecond;
    const peakRss = Math.max(...[...encoded, ...sank, woken].map((f) => f.peakRssBytes));
    const perRun = (figures: PhaseFigures[]) => figures.map((f) => Math.round(f.rowsPerSecond));
    progress(`(a) ${perRun(sank).join(', ')} rows/s; (c) ${perRun(encoded).join(', ')} rows/s; vsEncode per round ${sank.map((a, i) => (a.rowsPerSecond / encoded[i]!.rowsPerSecond).toFixed(3)).join(', ')}`);
    printResult({
      suite: 'sink',
      metric: 'rows/s',
      value: earlyWake,
      baseline: wakeOnFlush,
      ratio: earlyWake / wakeOnFlush,
      vsEncode: earlyWake / encodeOnly,
      earlyWakeRowsPerSecond: earlyWake,
      wakeOnFlushRowsPerSecond: wakeOnFlush,
      encodeRowsPerSecond: encodeOnly,
      earlyWakeRuns: perRun(sank),
      encodeRuns: perRun(encoded),
      peakRssBytes: peakRss,
      withinRssLimit: peakRss <= 512 * MiB,
      bytesPerRow: encoded[0]!.bytesPerRow,
      rows,
      dispatchers,
      seconds,
      rounds,
      flushIntervalMs: FLUSH_INTERVAL_MS,
    });
  } finally {
    compiled.close();
  }
}

/** Phase (c), in a child (see run): prints rows/s of encoding alone. */
export async function measureEncode(params: BenchParams): Promise<void> {
  const { rows, dispatchers } = sizes(params);
  const encoded = await measure('(c) encode only', () => encodeAll(dispatchers, rows));
  const rowsPerSecond = eventsPerSecond(rows, encoded.elapsedNs);
  progress(`(c) ${Math.round(rowsPerSecond)} rows/s, ${(encoded.result / rows).toFixed(1)} bytes/row; ${rssBreakdown()}, peak ${(peakRssBytes() / MiB).toFixed(0)} MiB`);
  printPhase({ rowsPerSecond, bytesPerRow: encoded.result / rows, peakRssBytes: peakRssBytes() });
}

/** Phase (a), in a child (see run): prints rows/s of the sink with early wake, every row flushed. */
export async function measureEarlyWake(params: BenchParams): Promise<void> {
  const { rows, dispatchers } = sizes(params);
  await inTempFolder(async (dir) => {
    const all = await measure('(a) early wake: every row flushed', () => sinkAll(dir, dispatchers, rows));
    if (all.result !== rows) throw new Error(`sink: (a) wrote ${all.result} of ${rows} rows`);
    const rowsPerSecond = eventsPerSecond(rows, all.elapsedNs);
    progress(`(a) ${Math.round(rowsPerSecond)} rows/s, peak ${(peakRssBytes() / MiB).toFixed(0)} MiB`);
    printPhase({ rowsPerSecond, peakRssBytes: peakRssBytes() });
  });
}

/** Phase (b), in a child (see run): prints rows/s flushed with wake on flush over `seconds` s. */
export async function measureWakeOnFlush(params: BenchParams): Promise<void> {
  const { rows, dispatchers } = sizes(params);
  const seconds = numberParam(params, 'seconds', 5, { min: 0.1 });
  await inTempFolder(async (dir) => {
    const woken = await measure(`(b) wake on flush, ${seconds} s`, () => sinkWakeOnFlush(dir, dispatchers, rows, seconds));
    const rowsPerSecond = woken.result / seconds;
    progress(`(b) ${woken.result} rows flushed in ${seconds} s: ${Math.round(rowsPerSecond)} rows/s`);
    if (woken.result === 0) throw new Error('sink: (b) flushed no row; give it more --seconds than the flush interval');
    printPhase({ rowsPerSecond, peakRssBytes: peakRssBytes() });
  });
}

function sizes(params: BenchParams): { rows: number; dispatchers: number } {
  return {
    rows: numberParam(params, 'rows', 2_000_000, { min: 1, integer: true }),
    dispatchers: numberParam(params, 'dispatchers', 1000, { min: 1, integer: true }),
  };
}

async function inTempFolder(work: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-sink-'));
  try {
    await work(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
