import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { lastValueFrom, map, Subject, toArray } from 'rxjs';
import { createAck, type Acked } from '../../../lib/core/ack.ts';
import { InvalidOptionError } from '../../../lib/core/errors.ts';
import { fromPaced } from '../../../lib/core/paced.ts';
import { createMetricsRegistry } from '../../../lib/metrics/index.ts';
import { MemoryStorage } from '../../../lib/storage/index.ts';
import type { ExternalStorage } from '../../../lib/storage/storage.ts';
import { CheckpointError, LineCheckpoint } from '../../../pipelines/batchFlush/checkpoint.ts';
import { lineProtocolSink } from '../../../pipelines/batchFlush/lineProtocolSink.ts';

/** A fake /write endpoint: records bodies; answers with `answer(lines)` (default 204). */
async function fakeInflux(answer: (lines: string[]) => { status: number; error?: string } = () => ({ status: 204 })) {
  const bodies: string[][] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const lines = Buffer.concat(chunks).toString('utf8').split('\n');
      bodies.push(lines);
      const { status, error } = answer(lines);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(error === undefined ? '' : JSON.stringify({ error }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    bodies,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** A fake /write endpoint answering 204 after `delayMs`, handing each body's lines to `seen` first. */
async function fakeInfluxDelayed(delayMs: number, seen: (lines: string[]) => void) {
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      setTimeout(() => {
        seen(Buffer.concat(chunks).toString('utf8').split('\n'));
        res.writeHead(204);
        res.end();
      }, delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A storage whose puts wait `delayMs`, recording when each finished. */
function slowStorage(inner: ExternalStorage, delayMs: number): ExternalStorage & { savedLines: Set<string> } {
  const savedLines = new Set<string>();
  return Object.assign(Object.create(inner) as ExternalStorage, {
    savedLines,
    put: async (key: string, data: Uint8Array) => {
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      await inner.put(key, data);
      // A v2 segment: a JSON header line, then the lines (these test lines hold no newline).
      const [header, ...saved] = Buffer.from(data).toString('utf8').split('\n');
      expect((JSON.parse(header!) as { lines: number }).lines).to.equal(saved.length);
      for (const line of saved) savedLines.add(line);
    },
    list: (prefix: string) => inner.list(prefix),
    get: (key: string) => inner.get(key),
    delete: (key: string) => inner.delete(key),
  });
}

const lines = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `m v=${from + i} ${from + i}`);

describe('lineProtocolSink (fake server)', () => {
  it('holds each wake until a checkpoint segment holding the line is durable', async () => {
    const server = await fakeInflux();
    const storage = slowStorage(new MemoryStorage({ name: 'ck' }), 20);
    const wokenBeforeSaved: string[] = [];
    try {
      await lastValueFrom(
        fromPaced(lines(300), { window: 50 }).pipe(
          map(({ value, ack }) => ({
            value,
            ack: createAck({
              onEnqueued: () => {
                if (!storage.savedLines.has(value) && !server.bodies.flat().includes(value)) wokenBeforeSaved.push(value);
                ack.enqueued();
              },
              onFlushed: () => ack.flushed(),
            }),
          })),
          lineProtocolSink<string>({ url: server.url, db: 'd', checkpoint: { storage, everyMs: 10_000 }, batch: { initialSize: 100, minSize: 10 } }),
        ),
        { defaultValue: undefined },
      );
      expect(wokenBeforeSaved).to.deep.equal([]);
      expect(storage.savedLines.size).to.be.above(0);
      const left: string[] = [];
      for await (const key of storage.list('lines-checkpoint/')) left.push(key);
      expect(left, 'segments are deleted once flushed').to.deep.equal([]);
    } finally {
      await server.close();
    }
  });

  it('keeps unwritten lines in the checkpoint when writes fail, and writes them first on restart', async () => {
    const storage = new MemoryStorage({ name: 'ck2' });
    const down = await fakeInflux(() => ({ status: 503, error: 'down' }));
    const failed = await lastValueFrom(
      fromPaced(lines(40)).pipe(lineProtocolSink<string>({ url: down.url, db: 'd', checkpoint: { storage, everyMs: 10 }, retry: { maxRetries: 1, minDelayMs: 1, maxDelayMs: 2 } })),
    ).then(
      () => undefined,
      (error: Error) => error,
    );
    await down.close();
    expect(failed?.message).to.match(/answered 503: down/);
    const up = await fakeInflux();
    try {
      const events = await lastValueFrom(
        fromPaced(lines(5, 100)).pipe(lineProtocolSink<string>({ url: up.url, db: 'd', checkpoint: { storage, everyMs: 10 } }), toArray()),
      );
      const restored = events.find((e) => e.kind === 'restored');
      expect(restored).to.include({ kind: 'restored' });
      const written = up.bodies.flat();
      const restoredCount = restored!.kind === 'restored' ? restored!.lines : 0;
      expect(restoredCount).to.be.at.least(1);
      // Restored lines come first, in their order, then the new input.
      expect(written.slice(0, restoredCount)).to.deep.equal(lines(40).slice(0, restoredCount));
      expect(written.slice(-5)).to.deep.equal(lines(5, 100));
    } finally {
      await up.close();
    }
  });

  it('refuses a checkpoint written for another database or precision', async () => {
    const storage = new MemoryStorage({ name: 'ck3' });
    await new LineCheckpoint(storage, 'lines-checkpoint', { db: 'other', retentionPolicy: null, precision: 'ms' }).save(['m v=1 1'], 1);
    const server = await fakeInflux();
    try {
      const error = await lastValueFrom(fromPaced(lines(1)).pipe(lineProtocolSink<string>({ url: server.url, db: 'd', checkpoint: { storage } }))).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(error).to.be.instanceOf(CheckpointError);
      expect(error!.message).to.match(/written for db "other", this sink writes db "d"/);
      expect(server.bodies).to.deep.equal([]);
    } finally {
      await server.close();
    }
  });

  it('fails the records of refused lines when there is no dead-letter storage, and flushes the rest', async () => {
    const server = await fakeInflux((body) => (body.some((l) => l.includes('bad')) ? { status: 400, error: 'partial write: bad' } : { status: 204 }));
    const outcome = new Map<string, string>();
    try {
      const events = await lastValueFrom(
        fromPaced(['m v=1 1', 'm bad=1 2', 'm v=3 3', 'm v=4 4', 'bad', 'm v=6 6']).pipe(
          map(({ value, ack }): Acked<string> => ({
            value,
            ack: createAck({ onEnqueued: () => ack.enqueued(), onFlushed: () => outcome.set(value, 'flushed'), onFailed: () => outcome.set(value, 'failed') }),
          })),
          lineProtocolSink<string>({ url: server.url, db: 'd', batch: { maxDelayMs: 20 } }),
          toArray(),
        ),
      );
      expect(events.filter((e) => e.kind === 'deadLetter').map((e) => (e.kind === 'deadLetter' ? `${e.status} ${e.line} ${e.message}` : ''))).to.deep.equal([
        '400 m bad=1 2 partial write: bad',
        '400 bad partial write: bad',
      ]);
      expect(Object.fromEntries(outcome)).to.deep.equal({
        'm v=1 1': 'flushed',
        'm bad=1 2': 'failed',
        'm v=3 3': 'flushed',
        'm v=4 4': 'flushed',
        bad: 'failed',
        'm v=6 6': 'flushed',
      });
    } finally {
      await server.close();
    }
  });

  it('counts points, batches, requests and dead letters in its metrics', async () => {
    const server = await fakeInflux((body) => (body.some((l) => l === 'bad') ? { status: 400, error: 'bad' } : { status: 204 }));
    const registry = createMetricsRegistry();
    try {
      await lastValueFrom(
        fromPaced([...lines(9), 'bad']).pipe(lineProtocolSink<string>({ url: server.url, db: 'd', metrics: { registry, pipeline: 'lp' } })),
        { defaultValue: undefined },
      );
      const text = await registry.metrics();
      expect(text).to.match(/sluice_lines_points_written_total\{pipeline="lp"\} 9/);
      expect(text).to.match(/sluice_lines_dead_letters_total\{pipeline="lp"\} 1/);
      expect(text).to.match(/sluice_lines_write_errors_total\{pipeline="lp",kind="rejected"\} [1-9]/);
      expect(text).to.match(/sluice_batch_write_latency_seconds_count\{pipeline="lp"\} 1/);
      expect(text).to.match(/sluice_batch_size_items\{pipeline="lp"\} \d+/);
    } finally {
      await server.close();
    }
  });

  it('takes plain values and fails with BufferOverflowError when they outrun the writes', async () => {
    const server = await fakeInflux();
    try {
      const input = new Subject<string>();
      const result = lastValueFrom(input.pipe(lineProtocolSink<string>({ url: server.url, db: 'd', maxInFlight: 1, batch: { maxSize: 10, minSize: 1, initialSize: 10, maxBuffered: 10 } })));
      for (const line of lines(25)) input.next(line);
      const error = await result.then(
        () => undefined,
        (e: Error) => e,
      );
      expect(error?.name).to.equal('BufferOverflowError');
      // Reaching the overflow at all shows the sink subscribed at once: a hot source lost nothing to an async start.
    } finally {
      await server.close();
    }
  });

  it('holds wakes while the unwritten lines exceed maxBufferedBytes', async () => {
    // A slow server: each write takes 30 ms, so a source with a window of 500 would run far ahead.
    const written = new Set<string>();
    let unwrittenWoken = 0;
    let worst = 0;
    const charsOf = (line: string) => line.length + 1;
    const delayed = await fakeInfluxDelayed(30, (lines) => {
      for (const line of lines) written.add(line);
    });
    try {
      await lastValueFrom(
        fromPaced(lines(400), { window: 500 }).pipe(
          map(({ value, ack }) => ({
            value,
            ack: createAck({
              onEnqueued: () => {
                unwrittenWoken += charsOf(value);
                worst = Math.max(worst, unwrittenWoken);
                ack.enqueued();
              },
              onFlushed: () => {
                unwrittenWoken -= charsOf(value);
                ack.flushed();
              },
            }),
          })),
          lineProtocolSink<string>({
            url: delayed.url,
            db: 'd',
            maxInFlight: 2,
            batch: { minSize: 10, maxSize: 20, initialSize: 20, maxBufferedBytes: 600, maxDelayMs: 5 },
          }),
        ),
        { defaultValue: undefined },
      );
      expect(written.size).to.equal(400);
      expect(worst, 'characters of lines woken and not yet written').to.be.at.most(600).and.above(300);
    } finally {
      await delayed.close();
    }
  });

  it('retries for retry.maxElapsedMs with maxRetries Infinity, reporting each retry, then fails naming the budget', async () => {
    let requests = 0;
    const down = await fakeInflux(() => (requests++, { status: 503, error: 'overloaded' }));
    let failedAcks = 0;
    const events: { kind: string; elapsedMs?: number; reason?: string }[] = [];
    const error = await lastValueFrom(
      fromPaced(lines(3)).pipe(
        map(({ value, ack }) => ({ value, ack: createAck({ onEnqueued: () => ack.enqueued(), onFlushed: () => ack.flushed(), onFailed: (e) => (failedAcks++, ack.failed(e)) }) })),
        lineProtocolSink<string>({ url: down.url, db: 'd', retry: { maxRetries: Infinity, maxElapsedMs: 150, minDelayMs: 5, maxDelayMs: 20, jitter: 0 } }),
        map((event) => events.push(event)),
      ),
    ).then(
      () => undefined,
      (e: Error) => e,
    );
    await down.close();
    expect(error?.name).to.equal('RetriesExhaustedError');
    expect(error?.message).to.match(/lineProtocolSink: POST \/write to .* \(a batch of 3 lines\): failed \d+ times in a row over 0\.\d s, giving up: the retry budget is 150 ms.*answered 503: overloaded/);
    const retries = events.filter((event) => event.kind === 'retrying');
    // More than the 5 retries of the default count: only the time limits it.
    expect(retries.length).to.be.above(5);
    expect(requests).to.equal(retries.length + 1);
    expect(retries[0]).to.include({ kind: 'retrying', elapsedMs: 0 });
    expect(retries.every((event) => event.elapsedMs! < 150)).to.equal(true);
    expect(failedAcks).to.equal(3);
  });

  it('checks its options when created, naming the option', () => {
    expect(() => lineProtocolSink({ url: 'ftp://x', db: 'd' })).to.throw(InvalidOptionError, /option url/);
    expect(() => lineProtocolSink({ url: 'http://127.0.0.1:1', db: 'a/b' })).to.throw(InvalidOptionError, /option db/);
    expect(() => lineProtocolSink({ url: 'http://127.0.0.1:1', db: 'd', precision: 'm' as never })).to.throw(InvalidOptionError, /option precision/);
    expect(() => lineProtocolSink({ url: 'http://127.0.0.1:1', db: 'd', batch: { minSize: 10, maxSize: 5 } })).to.throw(InvalidOptionError, /batch.maxSize/);
    expect(() => lineProtocolSink({ url: 'http://127.0.0.1:1', db: 'd', checkpoint: {} })).to.throw(InvalidOptionError, /exactly one of dir/);
    expect(() => lineProtocolSink({ url: 'http://127.0.0.1:1', db: 'd', retry: { maxRetries: -1 } })).to.throw(InvalidOptionError, /maxRetries/);
    expect(() => lineProtocolSink({ url: 'http://127.0.0.1:1', db: 'd', batch: { maxBufferedBytes: 0 } })).to.throw(InvalidOptionError, /maxBufferedBytes/);
  });
});
