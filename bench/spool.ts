/**
 * Suite `spool`: spill throughput and the memory bound, in one run.
 *
 * A paced producer sends `totalBytes` of `recordBytes` records into a spool with a `memoryBytes`
 * memory tier, while a consumer flushes what comes out at a tenth of the disk rate: the value is
 * the spool's accept rate (bytes stored per second, the rate its producer is woken at), and peak RSS
 * is read right after that phase. Baseline, in the same process afterwards: the same records written
 * sequentially with fs.write, one awaited call per record (and, for reference, per 1 MiB chunk).
 * Targets: ratio >= 0.5; peak RSS <= memoryBytes + 96 MiB. Also reported: the spool's own peak memory by
 * its accounting (values + bookkeeping), which memoryBytes bounds.
 *
 * The measured phases run in a child `node` on JavaScript compiled by tsc, as an application runs
 * the spool: under tsx, the loader alone holds ~50 MiB and esbuild's keepNames gives every closure
 * a property table, which is not the spool's memory.
 */
import { closeSync, mkdtempSync, openSync, rmSync, write } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Subject } from 'rxjs';
import { bindAck, type AckHandler, type Acked } from '../lib/core/ack.ts';
import { spool, type SpoolStats } from '../operators/spool.ts';
import { type BenchParams, measure, numberParam, peakRssBytes, printResult, progress, rssBreakdown, runCompiled } from './harness.ts';

const MiB = 1024 ** 2;
const writeAsync = promisify(write);

function* records(count: number, recordBytes: number): Generator<Buffer> {
  for (let i = 0; i < count; i++) {
    const record = Buffer.allocUnsafe(recordBytes);
    record.writeUInt32BE(i, 0);
    yield record;
  }
}

/** Writes `count` records to a fresh file with one awaited fs.write per `chunkBytes`. */
async function rawWrite(dir: string, count: number, recordBytes: number, chunkBytes: number): Promise<void> {
  const file = join(dir, `raw-${chunkBytes}`);
  const fd = openSync(file, 'w');
  try {
    const perChunk = Math.max(1, Math.floor(chunkBytes / recordBytes));
    let chunk: Buffer[] = [];
    for (const record of records(count, recordBytes)) {
      chunk.push(record);
      if (chunk.length === perChunk) {
        await writeAsync(fd, perChunk === 1 ? chunk[0]! : Buffer.concat(chunk));
        chunk = [];
      }
    }
    if (chunk.length > 0) await writeAsync(fd, Buffer.concat(chunk));
  } finally {
    closeSync(fd);
    rmSync(file);
  }
}

/**
 * Runs the producer into the spool until every record was stored (its wake came back), with a
 * consumer that flushes at most `consumerBytesPerSecond`; resolves with the largest spool seen.
 */
function spillThroughSpool(
  dir: string,
  count: number,
  recordBytes: number,
  memoryBytes: number,
  consumerBytesPerSecond: number,
): Promise<SpoolStats> {
  return new Promise((resolve, reject) => {
    const spooled = spool<Buffer>({ dir: join(dir, 'spool'), memoryBytes, windowBytes: 4 * MiB, segmentBytes: 64 * MiB });
    // The spool's own memory by its accounting: values in memory plus the bookkeeping of queued items.
    let peak: SpoolStats | undefined;
    const statsSubscription = spooled.stats$.subscribe((s) => {
      if (!peak || s.memoryBytes + s.indexBytes > peak.memoryBytes + peak.indexBytes) peak = s;
    });
    const out: (Acked<Buffer> | undefined)[] = [];
    let flushedUpTo = 0;
    let stored = 0;
    // The consumer: every 10 ms, flush what its byte budget allows.
    const tickMs = 10;
    const consumer = setInterval(() => {
      let budget = (consumerBytesPerSecond * tickMs) / 1000;
      while (flushedUpTo < out.length && budget > 0) {
        const item = out[flushedUpTo]!;
        out[flushedUpTo++] = undefined;
        budget -= item.value.byteLength;
        item.ack.flushed();
      }
    }, tickMs);
    const finish = (error?: unknown) => {
      clearInterval(consumer);
      subscription.unsubscribe();
      statsSubscription.unsubscribe();
      if (error) reject(error);
      else resolve(peak!);
    };
    // The producer: `window` records out at a time, the next one sent as each is stored (woken);
    // its ack is all it keeps per record, as a paced source's would be.
    const window = 256;
    const source = new Subject<Acked<Buffer>>();
    const produced = records(count, recordBytes);
    const stores: AckHandler<null> = {
      enqueued: () => {
        if (++stored === count) setImmediate(finish);
        // On a microtask, like a paced source: a wake during accept must not recurse into it.
        else queueMicrotask(sendNext);
      },
    };
    const sendNext = () => {
      const next = produced.next();
      if (!next.done) source.next({ value: next.value, ack: bindAck(stores, null) });
    };
    const subscription = source
      .pipe(spooled)
      .subscribe({ next: (item) => out.push(item), error: finish });
    for (let i = 0; i < window; i++) sendNext();
  });
}

/** The measured phases; run in a child on compiled JavaScript (see the module comment). */
export async function measurePhases(params: BenchParams): Promise<void> {
  const totalBytes = numberParam(params, 'totalBytes', 1024 * MiB, { min: 1, integer: true });
  const recordBytes = numberParam(params, 'recordBytes', 4096, { min: 1, integer: true });
  const memoryBytes = numberParam(params, 'memoryBytes', 64 * MiB, { min: 0, integer: true });
  const diskBytesPerSecond = numberParam(params, 'diskBytesPerSecond', 0, { min: 0 });
  const count = Math.ceil(totalBytes / recordBytes);
  const bytes = count * recordBytes;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-spool-'));
  progress(`spool: ${count} records of ${recordBytes} B (${(bytes / MiB).toFixed(0)} MiB), memory tier ${(memoryBytes / MiB).toFixed(0)} MiB, in ${dir}`);
  try {
    // The consumer's pace: a tenth of the disk rate (measured beforehand on a sample when not given).
    let consumerRate = diskBytesPerSecond / 10;
    if (consumerRate === 0) {
      const sample = Math.min(count, 2048);
      const timed = await measure('disk rate sample', () => rawWrite(dir, sample, recordBytes, recordBytes));
      consumerRate = (sample * recordBytes) / (timed.elapsedMs / 1000) / 10;
    }
    progress(`consumer flushes at ${(consumerRate / MiB).toFixed(1)} MiB/s`);
    const spilled = await measure('spool: every record stored', () => spillThroughSpool(dir, count, recordBytes, memoryBytes, consumerRate));
    const peakRss = peakRssBytes();
    const spoolPeak = spilled.result;
    const accounted = spoolPeak.memoryBytes + spoolPeak.indexBytes;
    const heap = process.memoryUsage();
    progress(
      `peak spool memory ${(accounted / MiB).toFixed(1)} MiB (values ${(spoolPeak.memoryBytes / MiB).toFixed(1)} + bookkeeping ${(spoolPeak.indexBytes / MiB).toFixed(1)}), ` +
        `disk ${(spoolPeak.diskBytes / MiB).toFixed(1)} MiB; process now: heap ${(heap.heapUsed / MiB).toFixed(1)} of ${(heap.heapTotal / MiB).toFixed(1)} MiB, external ${(heap.external / MiB).toFixed(1)} MiB, ${rssBreakdown()}`,
    );
    const raw = await measure('baseline: fs.write per record, sequential', () => rawWrite(dir, count, recordBytes, recordBytes));
    const chunked = await measure('reference: fs.write per 1 MiB chunk, sequential', () => rawWrite(dir, count, recordBytes, MiB));
    const rate = (elapsedMs: number) => bytes / (elapsedMs / 1000);
    const rssLimit = memoryBytes + 96 * MiB;
    printResult({
      suite: 'spool',
      metric: 'bytes/s',
      value: rate(spilled.elapsedMs),
      baseline: rate(raw.elapsedMs),
      ratio: rate(spilled.elapsedMs) / rate(raw.elapsedMs),
      peakRssBytes: peakRss,
      rssLimitBytes: rssLimit,
      withinRssLimit: peakRss <= rssLimit,
      peakSpoolMemoryBytes: accounted,
      nodeFlags: process.execArgv.filter((flag) => flag.startsWith('--max')).join(' '),
      chunkedWriteBytesPerSecond: rate(chunked.elapsedMs),
      vsChunkedWrite: rate(spilled.elapsedMs) / rate(chunked.elapsedMs),
      totalBytes: bytes,
      recordBytes,
      memoryBytes,
      runtime: 'node on tsc output',
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * @param params.totalBytes bytes produced (default 1 GiB); params.recordBytes (default 4096);
 *   params.memoryBytes memory tier (default 64 MiB); params.diskBytesPerSecond to fix the consumer's
 *   pace at a tenth of it instead of sampling the disk.
 */
export async function run(params: BenchParams): Promise<void> {
  // A small young generation, as a memory-bounded service would run: V8's default semi-spaces alone
  // take 32-48 MiB and let dead record buffers pile up between scavenges.
  await runCompiled('spool', 'spool', 'measurePhases', params, ['--max-semi-space-size=1']);
}
