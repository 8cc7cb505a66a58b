/**
 * The operators end to end, with no services: three sensor paths and a control path merged fairly,
 * held under a byte watermark, a "rotate" barrier that drains every sensor before the writer switches
 * files, a spool that holds readings in memory and spills the rest to disk, batches cut by size,
 * time or barrier, and a writer that makes each batch durable (append + fdatasync) before it calls
 * flushed(). Paths wake as soon as the writer holds their item, while
 * per-path checkpoints only ever cover durable readings.
 */
import { mkdtemp, open, readdir, readFile, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { concatMap, lastValueFrom, map } from 'rxjs';
import { mergePaced, ProgressTracker, type PacedSource } from '../lib/core/index.ts';
import { batchBy, drainBarrier, spool, watermarkBackpressure, type Batch } from '../operators/index.ts';

type Item =
  | { kind: 'reading'; path: string; seq: number; celsius: number }
  | { kind: 'rotate'; path: string; seq: number }
  | { kind: 'drain-marker'; path: string; seq: number };

const READINGS_PER_SENSOR = 400;

async function* sensor(name: string): AsyncGenerator<Item> {
  for (let seq = 1; seq <= READINGS_PER_SENSOR; seq++) {
    yield { kind: 'reading', path: name, seq, celsius: 20 + Math.sin(seq / 10) * 5 };
  }
}

async function* control(): AsyncGenerator<Item> {
  // A barrier every so often: the file switch must not reorder anything around it.
  for (let seq = 1; seq <= 3; seq++) {
    await new Promise((resolve) => setTimeout(resolve, 15));
    yield { kind: 'rotate', path: 'control', seq };
  }
}

/** Appends batches to numbered files; a rotate barrier closes the current file and opens the next. */
class RotatingFileWriter {
  private handle: FileHandle | undefined;
  private fileNumber = 0;
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  async write(batch: Batch<{ value: Item }>): Promise<void> {
    let lines = '';
    for (const { value } of batch.items) {
      if (value.kind === 'reading') lines += `${value.path},${value.seq},${value.celsius.toFixed(3)}\n`;
      if (value.kind === 'rotate') {
        await this.append(lines);
        lines = '';
        await this.handle?.close();
        this.handle = undefined;
        this.fileNumber++;
      }
    }
    await this.append(lines);
  }

  private async append(lines: string): Promise<void> {
    if (!lines) return;
    this.handle ??= await open(join(this.dir, `readings-${String(this.fileNumber).padStart(3, '0')}.csv`), 'a');
    await this.handle.appendFile(lines);
    await this.handle.datasync();
  }

  async close(): Promise<void> {
    await this.handle?.close();
  }
}

export async function run(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-operators-'));
  const writer = new RotatingFileWriter(dir);
  const tracker = new ProgressTracker<string>();
  let wakes = { suppressed: 0, resumed: 0 };
  const reasons = new Map<string, number>();
  const drains: number[] = [];

  const spooled = spool<Item>({
    dir: join(dir, 'spool'),
    memoryBytes: 2 * 1024,
    windowBytes: 1024,
    codec: { encode: (item) => Buffer.from(JSON.stringify(item)), decode: (bytes) => JSON.parse(Buffer.from(bytes).toString()) as Item },
    sizeOf: () => 32,
  });
  let spilled = 0;
  spooled.stats$.subscribe((s) => (spilled = Math.max(spilled, s.spilledItems)));

  const paths: PacedSource<Item>[] = [sensor('s1'), sensor('s2'), sensor('s3'), control()];
  const pipeline = mergePaced(paths, { window: 2 }).pipe(
    map(({ value, ack }) => ({ value, ack: tracker.track(value.path, BigInt(value.seq), ack) })),
    watermarkBackpressure<Item>({
      highBytes: 2_000,
      lowBytes: 1_000,
      sizeOf: () => 32,
      onStats: (s) => (wakes = { suppressed: s.suppressedWakes, resumed: s.resumedWakes }),
    }),
    drainBarrier<Item, string>({
      isBarrier: (item) => item.kind === 'rotate',
      scopeOf: () => 'all',
      keyOf: (item) => item.path,
      marker: (barrier) => ({ kind: 'drain-marker', path: barrier.path, seq: barrier.seq }),
      onDrained: ({ durationMs }) => drains.push(durationMs),
    }),
    // Early wake: once the spool holds a reading (in memory, or spilled to disk past 2 KiB), its
    // sensor may send the next one; the watermark above keeps what is not yet durable under highBytes.
    spooled,
    // A batch fills the spool's window (1 KiB of 32-byte readings), so it is cut by size, not by time.
    batchBy({ maxItems: 32, maxDelayMs: 10, isBarrier: ({ value }) => value.kind !== 'reading' }),
    concatMap(async (batch) => {
      await writer.write(batch);
      batch.ack.flushed(); // only now is every member durable
      reasons.set(batch.reason, (reasons.get(batch.reason) ?? 0) + 1);
      return batch.items.length;
    }),
  );

  await lastValueFrom(pipeline, { defaultValue: 0 });
  await writer.close();

  const files = (await readdir(dir)).sort();
  let rows = 0;
  for (const file of files) {
    const lines = (await readFile(join(dir, file), 'utf8')).split('\n').filter(Boolean).length;
    rows += lines;
    console.log(`  ${file}: ${lines} readings`);
  }
  console.log(`  batches by reason: ${JSON.stringify(Object.fromEntries(reasons))}`);
  console.log(`  barriers drained: ${drains.length} (longest ${Math.max(0, ...drains).toFixed(1)} ms)`);
  console.log(`  wakes held above the high mark: ${wakes.suppressed}, released at the low mark: ${wakes.resumed}`);
  console.log(`  readings spilled to disk by the spool: ${spilled}`);
  console.log(`  checkpoints: ${['s1', 's2', 's3', 'control'].map((p) => `${p}=${tracker.checkpoint(p)}`).join(' ')}`);
  if (rows !== 3 * READINGS_PER_SENSOR) throw new Error(`expected ${3 * READINGS_PER_SENSOR} readings on disk, found ${rows}`);
  await rm(dir, { recursive: true, force: true });
}
