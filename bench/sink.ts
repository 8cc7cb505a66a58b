/**
 * Suite `sink`: storageSink throughput with early wake, against the same sink woken only on flush
 * and against encoding alone, in one run.
 *
 * The input is `dispatchers` paced paths (`mergePaced`, window 1), each a generator of its share of
 * `rows` rows (about 200 bytes as csv, table `bench.t`, increasing commit ts), into a csv storageSink
 * on a FileStorage in a temp folder with a 1 s flush interval. Measured:
 * (c) reference, first (on a clean heap), the same rows through `createRowEncoder` (csv) in a loop and
 *     into data-file bytes (each file's texts written as UTF-8 into one buffer), no I/O: the
 *     cheapest way from rows to file bytes, cheaper than the sink's row arena (which pays for itself
 *     only while rows wait for their file), so the stricter reference;
 * (a) rows/s from subscribe until the sink completes (every row flushed);
 * (b) baseline, the seed's "wake on flush": each row's ack ignores `enqueued()`, so a dispatcher sends
 *     its next row only once the previous one's file is written; rows flushed in `seconds` s, per s.
 * Targets: ratio a/b >= 10, vsEncode a/c >= 0.5, peak RSS <= 512 MiB. The phases run in a child
 * node on tsc output (bench/harness.ts runCompiled), as an application runs the sink.
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
import { storageSink } from '../pipelines/storageSink/storageSink.ts';
import { TableRegistry } from '../pipelines/storageSink/tableRegistry.ts';
import { type BenchParams, eventsPerSecond, measure, numberParam, peakRssBytes, printResult, progress, rssBreakdown, runCompiled } from './harness.ts';

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
  const encode = createRowEncoder({ protocol: 'csv', dateSeparator: 'day', tables });
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

/**
 * @param params.rows rows through the sink in (a) and the encoder in (c) (default 2e6);
 *   params.dispatchers paced paths (default 1000); params.seconds length of (b) (default 5).
 */
export async function run(params: BenchParams): Promise<void> {
  await runCompiled('sink', 'sink', 'measurePhases', params);
}

/** The measured phases; run in a child on compiled JavaScript (see runCompiled). */
export async function measurePhases(params: BenchParams): Promise<void> {
  const rows = numberParam(params, 'rows', 2_000_000, { min: 1, integer: true });
  const dispatchers = numberParam(params, 'dispatchers', 1000, { min: 1, integer: true });
  const seconds = numberParam(params, 'seconds', 5, { min: 0.1 });
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-sink-'));
  progress(`sink: ${rows} rows over ${dispatchers} dispatchers, flush interval ${FLUSH_INTERVAL_MS} ms, in ${dir} (node ${process.version})`);
  try {
    // Encoding first, on a clean heap: the reference is the encoder's own speed, not one slowed by
    // the garbage the sink runs leave.
    const encoded = await measure('(c) encode only', () => encodeAll(dispatchers, rows));
    const encodeOnly = eventsPerSecond(rows, encoded.elapsedNs);
    progress(`(c) ${Math.round(encodeOnly)} rows/s, ${(encoded.result / rows).toFixed(1)} bytes/row; ${rssBreakdown()}, peak ${(peakRssBytes() / MiB).toFixed(0)} MiB`);

    const all = await measure('(a) early wake: every row flushed', () => sinkAll(join(dir, 'a'), dispatchers, rows));
    if (all.result !== rows) throw new Error(`sink: (a) wrote ${all.result} of ${rows} rows`);
    const earlyWake = eventsPerSecond(rows, all.elapsedNs);
    progress(`(a) ${Math.round(earlyWake)} rows/s`);

    const woken = await measure(`(b) wake on flush, ${seconds} s`, () => sinkWakeOnFlush(join(dir, 'b'), dispatchers, rows, seconds));
    const wakeOnFlush = woken.result / seconds;
    progress(`(b) ${woken.result} rows flushed in ${seconds} s: ${Math.round(wakeOnFlush)} rows/s`);

    const peakRss = peakRssBytes();
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
      peakRssBytes: peakRss,
      withinRssLimit: peakRss <= 512 * MiB,
      bytesPerRow: encoded.result / rows,
      rows,
      dispatchers,
      seconds,
      flushIntervalMs: FLUSH_INTERVAL_MS,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
