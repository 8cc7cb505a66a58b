import { expect } from 'chai';
import fc from 'fast-check';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Subject, type Subscription } from 'rxjs';
import { createAck, type Acked } from '../../lib/core/ack.ts';
import { InvalidOptionError } from '../../lib/core/errors.ts';
import { spool, type SpoolOptions, type SpoolStats } from '../../operators/spool.ts';
import { tick, until, openFds, segmentFiles } from '../support/waiting.ts';


interface Input {
  readonly id: number;
  readonly bytes: Buffer;
  woken: boolean;
  flushed: boolean;
  failed: unknown;
}

/** A spool under test: push buffers in, watch their upstream acks, flush what came out. */
class Harness {
  readonly source = new Subject<Acked<Buffer>>();
  readonly inputs: Input[] = [];
  readonly out: Acked<Buffer>[] = [];
  readonly stats: SpoolStats[] = [];
  error: unknown;
  completed = false;
  private readonly subscription: Subscription;

  constructor(options: SpoolOptions<Buffer>) {
    const operator = spool<Buffer>(options);
    const statsSubscription = operator.stats$.subscribe((s) => this.stats.push(s));
    this.subscription = this.source.pipe(operator).subscribe({
      next: (item) => this.out.push(item),
      error: (error) => (this.error = error),
      complete: () => (this.completed = true),
    });
    this.subscription.add(statsSubscription);
  }

  push(bytes: Buffer): Input {
    const input: Input = { id: this.inputs.length, bytes, woken: false, flushed: false, failed: undefined };
    this.inputs.push(input);
    const ack = createAck({
      onEnqueued: () => (input.woken = true),
      onFlushed: () => (input.flushed = true),
      onFailed: (error) => (input.failed = error),
    });
    this.source.next({ value: bytes, ack });
    return input;
  }

  /** Flushes the oldest `count` emitted items not yet flushed (all by default, including any a flush lets out). */
  flush(count = Infinity): void {
    for (let n = 0; n < count && this.flushedOut < this.out.length; n++) this.out[this.flushedOut++]!.ack.flushed();
  }
  private flushedOut = 0;

  get lastStats(): SpoolStats {
    return this.stats[this.stats.length - 1]!;
  }

  close(): void {
    this.subscription.unsubscribe();
  }
}

const bytesOf = (n: number, fill: number) => Buffer.alloc(n, fill);

describe('spool', () => {
  let root: string;
  let dir: string;
  let harness: Harness | undefined;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'sluice-spool-test-'));
    dir = join(root, 'spool');
  });
  afterEach(() => {
    harness?.close();
    harness = undefined;
    rmSync(root, { recursive: true, force: true });
  });

  it('keeps small items in memory: woken at once, emitted in order within the window', async () => {
    // Each queued item is charged 160 B of bookkeeping besides its bytes.
    harness = new Harness({ dir, memoryBytes: 1000, windowBytes: 10, diskQuotaBytes: 1000 });
    const a = harness.push(bytesOf(4, 1));
    const b = harness.push(bytesOf(4, 2));
    const c = harness.push(bytesOf(4, 3));
    expect([a.woken, b.woken, c.woken]).to.deep.equal([true, true, true]);
    expect(harness.out.map((i) => i.value[0])).to.deep.equal([1, 2], 'the third would take the window to 12 > 10');
    await tick();
    expect(harness.lastStats).to.include({ memoryBytes: 4, memoryItems: 1, indexBytes: 160, windowBytes: 8, spilledItems: 0 });
    harness.flush(1);
    expect(harness.out.map((i) => i.value[0])).to.deep.equal([1, 2, 3]);
    expect(a.flushed).to.equal(true);
    expect(b.flushed).to.equal(false);
    await tick();
    expect(harness.lastStats).to.include({ memoryBytes: 0, memoryItems: 0, indexBytes: 0, windowBytes: 8 });
  });

  it('charges the bookkeeping of queued items to memoryBytes, so many spilled items shrink the memory tier', async () => {
    // The first item goes out at once (window); with four 10-byte items waiting, an 800-byte value
    // would need 40 + 5 × 160 + 800 = 1640 bytes: it spills, though 800 + 40 alone would fit.
    harness = new Harness({ dir, memoryBytes: 1600, windowBytes: 1, diskQuotaBytes: 1 << 20 });
    for (let i = 0; i < 5; i++) harness.push(bytesOf(10, i));
    const big = harness.push(bytesOf(800, 9));
    await until(() => big.woken, 'the big item stored');
    await tick();
    // Four entries (160 B each) and one spilled item in a disk run (88 B).
    expect(harness.lastStats).to.include({ memoryItems: 4, memoryBytes: 40, indexBytes: 4 * 160 + 88, diskItems: 1, spilledItems: 1 });
  });

  it('keeps values to three quarters of memoryBytes, the rest for the bookkeeping of spilled items', async () => {
    harness = new Harness({ dir, memoryBytes: 4000, windowBytes: 1, diskQuotaBytes: 1 << 20 });
    harness.push(bytesOf(10, 0)); // emitted at once: the window takes one item
    for (let i = 1; i <= 4; i++) harness.push(bytesOf(700, i));
    await until(() => harness!.inputs.every((i) => i.woken), 'every item stored');
    await tick();
    // Four 700-byte values would be 2800 + 4 × 160 = 3440 <= 4000, but only 3000 may be values.
    expect(harness.lastStats).to.include({ memoryItems: 4, memoryBytes: 2800 });
    harness.push(bytesOf(300, 5));
    await until(() => harness!.inputs.every((i) => i.woken), 'the fifth stored');
    await tick();
    expect(harness.lastStats).to.include({ memoryItems: 4, memoryBytes: 2800, spilledItems: 1 }, '2800 + 300 > 3000: it spills');
  });

  it('moves the newest values in memory to disk when the bookkeeping of spilled items needs the room', async () => {
    harness = new Harness({ dir, memoryBytes: 2000, windowBytes: 1, diskQuotaBytes: 1 << 20 });
    harness.push(bytesOf(10, 0)); // emitted at once: the window takes one item
    for (let i = 1; i <= 4; i++) harness.push(bytesOf(200, i)); // 4 × (200 + 160) = 1440: in memory
    await tick();
    expect(harness.lastStats).to.include({ memoryItems: 4, memoryBytes: 800, spilledItems: 0 });
    // Too big for memory: each spills into a disk run at 88 B of bookkeeping. The 7th takes
    // 800 + 4 × 160 + 7 × 88 = 2056 past 2000: the newest 200-byte value moves to disk.
    for (let i = 5; i <= 12; i++) harness.push(bytesOf(1000, i));
    await until(() => harness!.inputs.every((i) => i.woken), 'every item stored');
    await tick();
    expect(harness.lastStats).to.include({ memoryItems: 3, memoryBytes: 600, indexBytes: 4 * 160 + 8 * 88, spilledItems: 9 });
    // Nine more: every value in memory has moved (200 + 640 + 14 × 88 > 2000 already).
    for (let i = 13; i <= 21; i++) harness.push(bytesOf(1000, i));
    await until(() => harness!.inputs.every((i) => i.woken), 'every item stored');
    await tick();
    expect(harness.lastStats).to.include({ memoryItems: 0, memoryBytes: 0, indexBytes: 4 * 160 + 17 * 88, spilledItems: 21 });
    while (harness.out.length < 22) {
      harness.flush();
      await tick();
    }
    expect(harness.out.map((i) => i.value[0])).to.deep.equal([...Array(22).keys()], 'order kept across tiers');
  });

  it('never calls flushed() itself: that is downstream durability', async () => {
    harness = new Harness({ dir, memoryBytes: 0, windowBytes: 1000, diskQuotaBytes: 1000 });
    const a = harness.push(bytesOf(10, 7));
    await until(() => harness!.out.length === 1, 'read-back');
    expect(a.woken).to.equal(true);
    expect(a.flushed).to.equal(false);
  });

  it('spills beyond the memory tier and reads back byte-exact, in input order', async () => {
    harness = new Harness({ dir, memoryBytes: 64, windowBytes: 64, diskQuotaBytes: 1 << 20, segmentBytes: 4096 });
    const payloads = Array.from({ length: 200 }, (_, i) => Buffer.from(`record ${i} `.repeat((i % 7) + 1)));
    for (const p of payloads) harness.push(p);
    await until(() => harness!.inputs.every((i) => i.woken), 'every item stored');
    expect(segmentFiles(dir).length).to.be.greaterThan(0);
    while (harness.out.length < payloads.length) {
      harness.flush();
      await tick();
    }
    harness.flush();
    expect(harness.error).to.equal(undefined);
    expect(harness.out.map((i) => i.value.toString())).to.deep.equal(payloads.map((p) => p.toString()));
    expect(harness.inputs.every((i) => i.flushed)).to.equal(true);
    await tick();
    expect(harness.lastStats.spilledItems).to.be.greaterThan(150);
    expect(harness.lastStats).to.include({ diskItems: 0, memoryItems: 0, windowBytes: 0 });
  });

  it('rotates segments at segmentBytes and deletes each once all its records were flushed', async () => {
    // 40-byte payloads + 8 bytes of header: two records per 100-byte segment.
    harness = new Harness({ dir, memoryBytes: 0, windowBytes: 1, diskQuotaBytes: 1 << 20, segmentBytes: 100 });
    for (let i = 0; i < 6; i++) harness.push(bytesOf(40, i));
    await until(() => harness!.inputs.every((i) => i.woken), 'every item stored');
    expect(segmentFiles(dir)).to.have.length(3);
    await until(() => harness!.out.length === 1, 'first read-back');
    harness.flush(1); // one of two records of segment 0: it stays
    await until(() => harness!.out.length === 2, 'second read-back');
    expect(segmentFiles(dir)).to.have.length(3);
    harness.flush(1); // segment 0 fully flushed and not active: deleted
    expect(segmentFiles(dir)).to.have.length(2);
    for (let n = 3; n <= 6; n++) {
      await until(() => harness!.out.length === n, `read-back ${n}`);
      harness.flush(1);
    }
    expect(segmentFiles(dir)).to.deep.equal(['segment-00000002.spool'], 'the active segment stays');
    expect(harness.out.map((i) => i.value[0])).to.deep.equal([0, 1, 2, 3, 4, 5]);
  });

  it('wipes its folder at start and removes it at teardown', () => {
    mkdirSync(dir);
    writeFileSync(join(dir, '.sluice-spool'), '');
    writeFileSync(join(dir, 'segment-00000007.spool'), 'stale');
    harness = new Harness({ dir, memoryBytes: 10, diskQuotaBytes: 100 });
    expect(segmentFiles(dir)).to.deep.equal([]);
    harness.close();
    expect(existsSync(dir)).to.equal(false);
  });

  it('refuses to wipe a folder that is not a spool folder', () => {
    mkdirSync(dir);
    writeFileSync(join(dir, 'precious.txt'), 'keep me');
    harness = new Harness({ dir, memoryBytes: 10, diskQuotaBytes: 100 });
    expect(String(harness.error)).to.match(/refus\w+ to wipe/);
    expect(String(harness.error)).to.contain(dir);
    expect(readFileSync(join(dir, 'precious.txt'), 'utf8')).to.equal('keep me');
  });

  it('holds wakes while the disk quota is exhausted and resumes when a segment is freed', async () => {
    // Quota for two 48-byte records; segments of one record each so a flush frees a whole file.
    harness = new Harness({ dir, memoryBytes: 0, windowBytes: 1, diskQuotaBytes: 96, segmentBytes: 64 });
    const inputs = [0, 1, 2, 3].map((i) => harness!.push(bytesOf(40, i)));
    await until(() => inputs[0]!.woken && inputs[1]!.woken, 'two stored');
    await tick();
    expect(inputs.map((i) => i.woken)).to.deep.equal([true, true, false, false]);
    expect(harness.lastStats).to.include({ heldWakes: 2, holdReason: 'quota' });
    await until(() => harness!.out.length === 1, 'first read-back');
    harness.flush(1);
    await until(() => inputs[2]!.woken, 'resumed');
    expect(inputs[3]!.woken).to.equal(false, 'only the room of one record was freed');
    for (let n = 2; n <= 4; n++) {
      await until(() => harness!.out.length === n, `read-back ${n}`);
      harness.flush(1);
    }
    expect(inputs.every((i) => i.woken && i.flushed)).to.equal(true);
    expect(harness.out.map((i) => i.value[0])).to.deep.equal([0, 1, 2, 3]);
    await tick();
    expect(harness.lastStats).to.include({ heldWakes: 0, holdReason: null });
  });

  it('passes an item larger than the whole quota straight through, in order, woken by downstream', async () => {
    // Room for one small item and its 160 B of bookkeeping, not for the big one.
    harness = new Harness({ dir, memoryBytes: 200, windowBytes: 1000, diskQuotaBytes: 50 });
    const small = harness.push(bytesOf(4, 1));
    const big = harness.push(bytesOf(100, 2));
    const after = harness.push(bytesOf(4, 3));
    expect(harness.out.map((i) => i.value.length)).to.deep.equal([4, 100, 4]);
    expect(small.woken).to.equal(true);
    expect(big.woken).to.equal(false, 'the spool does not hold it, so it does not wake it');
    expect(after.woken).to.equal(true);
    harness.out[1]!.ack.enqueued();
    expect(big.woken).to.equal(true);
    await tick();
    expect(harness.lastStats.oversizedItems).to.equal(1);
    expect(segmentFiles(dir)).to.deep.equal([]);
  });

  it('detects a corrupted record and names the segment file and offset; never emits it', async () => {
    harness = new Harness({ dir, memoryBytes: 0, windowBytes: 1, diskQuotaBytes: 1 << 20, segmentBytes: 1 << 16 });
    harness.push(bytesOf(20, 1));
    harness.push(bytesOf(20, 2));
    await until(() => harness!.inputs.every((i) => i.woken), 'stored');
    await until(() => harness!.out.length === 1, 'first read-back');
    const file = join(dir, segmentFiles(dir)[0]!);
    const content = readFileSync(file);
    content[28 + 8 + 5]! ^= 0xff; // a payload byte of the second record (offset 28)
    writeFileSync(file, content);
    harness.flush(1);
    await until(() => harness!.error !== undefined, 'the corruption error');
    expect(String((harness.error as Error).message)).to.contain(file).and.to.match(/offset 28\b/);
    expect(harness.out).to.have.length(1);
  });

  it('closes every file handle at teardown', async () => {
    const before = openFds();
    harness = new Harness({ dir, memoryBytes: 0, windowBytes: 1, diskQuotaBytes: 1 << 20, segmentBytes: 256 });
    for (let i = 0; i < 20; i++) harness.push(bytesOf(50, i));
    await until(() => harness!.out.length === 1, 'first read-back');
    expect(openFds()).to.be.greaterThan(before);
    harness.close();
    await tick();
    expect(openFds()).to.equal(before);
    expect(existsSync(dir)).to.equal(false);
  });

  it('several spools side by side, each in its own folder; one folder serves one spool', async () => {
    const dirs = [0, 1, 2].map((i) => join(root, `s${i}`));
    const harnesses = dirs.map((d) => new Harness({ dir: d, memoryBytes: 0, windowBytes: 10_000, diskQuotaBytes: 1 << 20, segmentBytes: 128 }));
    try {
      harnesses.forEach((h, n) => {
        for (let i = 0; i < 10; i++) h.push(Buffer.from(`spool ${n} item ${i}`));
      });
      await until(() => harnesses.every((h) => h.out.length === 10), 'all read back');
      harnesses.forEach((h, n) => expect(h.out.map((i) => i.value.toString())).to.deep.equal([...Array(10).keys()].map((i) => `spool ${n} item ${i}`)));
      const twin = new Harness({ dir: dirs[0]!, memoryBytes: 0, diskQuotaBytes: 100 });
      expect(String(twin.error)).to.match(/already in use by another spool/);
      twin.close();
    } finally {
      harnesses.forEach((h) => h.close());
    }
  });

  it('spills any value through a codec', async () => {
    const source = new Subject<Acked<{ n: number; name: string }>>();
    const out: { n: number; name: string }[] = [];
    const codec = { encode: (v: { n: number; name: string }) => Buffer.from(JSON.stringify(v)), decode: (b: Uint8Array) => JSON.parse(Buffer.from(b).toString()) };
    const subscription = source.pipe(spool({ dir, memoryBytes: 0, codec, windowBytes: 1 << 20, diskQuotaBytes: 1 << 20 })).subscribe((i) => out.push(i.value));
    const values = [{ n: 1, name: 'a,"b"' }, { n: 2, name: 'ü\n' }];
    for (const v of values) source.next({ value: v, ack: createAck() });
    await until(() => out.length === 2, 'read-back');
    expect(out).to.deep.equal(values);
    subscription.unsubscribe();
  });

  it('a value that is not bytes, without a codec, is an error naming the item', () => {
    const source = new Subject<Acked<unknown>>();
    let error: unknown;
    source.pipe(spool<unknown>({ dir, memoryBytes: 0, diskQuotaBytes: 100, sizeOf: () => 1 })).subscribe({ error: (e) => (error = e) });
    source.next({ value: { not: 'bytes' }, ack: createAck() });
    expect(String(error)).to.match(/item #0 is not a Uint8Array; give the spool a codec/);
  });

  it('completes once every item was emitted', async () => {
    harness = new Harness({ dir, memoryBytes: 0, windowBytes: 1 << 20, diskQuotaBytes: 1 << 20 });
    harness.push(bytesOf(10, 1));
    harness.source.complete();
    expect(harness.completed).to.equal(false);
    await until(() => harness!.completed, 'completion');
    expect(harness.out).to.have.length(1);
  });

  it('rejects invalid options when created, naming the option and value', () => {
    expect(() => spool({ dir: 'relative/path' })).to.throw(InvalidOptionError, /spool: option dir must be an absolute path/);
    expect(() => spool({ dir, memoryBytes: -1 })).to.throw(InvalidOptionError, /option memoryBytes .* got -1/);
    expect(() => spool({ dir, windowBytes: 0 })).to.throw(InvalidOptionError, /option windowBytes .* got 0/);
    expect(() => spool({ dir, segmentBytes: Number.NaN })).to.throw(InvalidOptionError, /option segmentBytes .* got NaN/);
    expect(() => spool({ dir: `${dir}\u0000x` })).to.throw(InvalidOptionError, /control characters/);
    expect(() => spool({ dir, codec: {} as never })).to.throw(InvalidOptionError, /option codec/);
  });

  it('property: input order kept under random sizes, quotas and flush timings, nothing lost or duplicated', async () => {
    const scenario = fc.record({
      sizes: fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 40 }),
      memoryBytes: fc.integer({ min: 0, max: 600 }),
      windowBytes: fc.integer({ min: 1, max: 900 }),
      segmentBytes: fc.integer({ min: 64, max: 1200 }),
      diskQuotaBytes: fc.oneof(fc.constant(1 << 20), fc.integer({ min: 0, max: 1500 })),
      flushes: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 40, maxLength: 40 }),
    });
    await fc.assert(
      fc.asyncProperty(scenario, async ({ sizes, memoryBytes, windowBytes, segmentBytes, diskQuotaBytes, flushes }) => {
        const runDir = mkdtempSync(join(root, 'p-'));
        const h = new Harness({ dir: join(runDir, 'spool'), memoryBytes, windowBytes, segmentBytes, diskQuotaBytes });
        try {
          sizes.forEach((size, i) => h.push(Buffer.alloc(size, i % 251)));
          // Disk round trips go through the threadpool: bound the wait by time, not by event-loop turns.
          const deadline = Date.now() + 5000;
          for (let round = 0; h.out.length < sizes.length || h.inputs.some((i) => !i.flushed); round++) {
            if (Date.now() > deadline || h.error) throw new Error(`stalled with ${h.out.length}/${sizes.length} emitted: ${String(h.error)}`);
            h.flush(flushes[round % flushes.length]!);
            await tick();
          }
          expect(h.error).to.equal(undefined);
          expect(h.out.map((i) => i.value.length)).to.deep.equal(sizes);
          expect(h.inputs.every((i) => i.woken && i.flushed)).to.equal(true, 'every wake released, every flush forwarded');
          h.out.forEach((item, i) => expect(item.value.equals(Buffer.alloc(sizes[i]!, i % 251))).to.equal(true));
        } finally {
          h.close();
        }
      }),
      { numRuns: 200 },
    );
  });
});
