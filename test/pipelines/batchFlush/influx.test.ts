import { expect } from 'chai';
import fc from 'fast-check';
import { Readable } from 'node:stream';
import { lastValueFrom, map, toArray, type OperatorFunction } from 'rxjs';
import { createAck, type Acked } from '../../../lib/core/ack.ts';
import { Point } from '../../../lib/codec/index.ts';
import { fromPaced } from '../../../lib/core/paced.ts';
import { MemoryStorage } from '../../../lib/storage/index.ts';
import { run as runLines } from '../../../pipelines/batchFlush/cli.ts';
import { lineProtocolSink } from '../../../pipelines/batchFlush/lineProtocolSink.ts';
import type { LineSinkEvent, LineSinkStats } from '../../../pipelines/batchFlush/progress.ts';
import { freshInfluxDatabase, influxQuery, sharedInfluxDb, type InfluxDbService } from '../../support/influxdb.ts';
import { serviceOrSkip, startFaultProxy, type FaultProxy } from '../../support/services.ts';
import { startLatencyProxy, type LatencyProxy } from '../../support/latencyProxy.ts';

interface Sample {
  id: number;
  host: string;
  value: number;
}

const samples = (count: number, offset = 0): Sample[] =>
  Array.from({ length: count }, (_, i) => ({ id: offset + i, host: `h${(offset + i) % 4}`, value: (offset + i) / 8 }));

const sampleLines = {
  measurement: 'samples',
  tags: { host: (s: Sample) => s.host },
  fields: { id: { type: 'integer' as const, get: (s: Sample) => s.id }, value: (s: Sample) => s.value },
  timestamp: (s: Sample) => s.id,
};

async function idsIn(url: string, db: string, measurement = 'samples'): Promise<number[]> {
  const series = await influxQuery(url, db, `SELECT "id" FROM "${measurement}"`);
  return series.flatMap((s) => s.values.map((row) => row[1] as number)).sort((a, b) => a - b);
}

/** Passes each paced item on with an ack of its own that reports to `on` and forwards to the source's ack. */
function tracked<T>(on: { flushed?: (value: T) => void; failed?: (value: T) => void }): OperatorFunction<Acked<T>, Acked<T>> {
  return map(({ value, ack }) => ({
    value,
    ack: createAck({
      onEnqueued: () => ack.enqueued(),
      onFlushed: () => {
        on.flushed?.(value);
        ack.flushed();
      },
      onFailed: (error) => {
        on.failed?.(value);
        ack.failed(error);
      },
    }),
  }));
}

const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

describe('lineProtocolSink against InfluxDB 1.x', function () {
  this.timeout(30_000);
  let influx: InfluxDbService;

  before(async function () {
    influx = await serviceOrSkip(this, 'influxd', sharedInfluxDb);
  });

  it('writes tags, field keys and values with every special character, and reads them back exactly', async () => {
    const db = await freshInfluxDatabase(influx.url, 'exact');
    const record = {
      tag: 'a b,c=d"e\\f é😀\ttab',
      text: 'quote " backslash \\ comma , equals = space \n newline \\" both',
      float: -1.7976931348623157e308,
      int: -9007199254740991,
      flag: true,
    };
    await lastValueFrom(
      fromPaced([record]).pipe(
        lineProtocolSink<typeof record>({
          url: influx.url,
          db,
          precision: 's',
          lines: {
            measurement: 'odd name,with=chars"',
            tags: { 'tag key, =x': (r) => r.tag },
            fields: { 'field key, =y': (r) => r.text, 'f"loat': (r) => r.float, int: { type: 'integer', get: (r) => r.int }, flag: (r) => r.flag },
            timestamp: () => 1_700_000_000,
          },
        }),
      ),
    );
    const series = await influxQuery(influx.url, db, 'SELECT * FROM /.*/ GROUP BY *');
    expect(series).to.have.length(1);
    expect(series[0]!.name).to.equal('odd name,with=chars"');
    expect(series[0]!.tags).to.deep.equal({ 'tag key, =x': record.tag });
    const row = Object.fromEntries(series[0]!.columns.map((column, i) => [column, series[0]!.values[0]![i]]));
    expect(row).to.deep.equal({ time: 1_700_000_000_000, 'field key, =y': record.text, 'f"loat': record.float, int: record.int, flag: true });
  });

  it('round-trips arbitrary names and values through the server (property)', async () => {
    const db = await freshInfluxDatabase(influx.url, 'prop');
    // Backslashes only before plain characters: the 1.x parser cannot carry others (refused by the codec).
    const special = fc.constantFrom(' ', ',', '=', '"', '\\x', 'a', 'Z', '0', 'é', '😀', '#', "'", '\\\\y');
    const name = fc.string({ minLength: 1, maxLength: 10, unit: special });
    const tagValue = fc.string({ minLength: 1, maxLength: 10, unit: fc.oneof(special, fc.constant('\t')) });
    const point = fc.record({
      measurement: name.filter((n) => !n.startsWith('#')),
      tagKey: name,
      tagValue,
      fieldKey: name,
      text: fc.string({ maxLength: 20, unit: fc.oneof(special, fc.constantFrom('\\', '\n', '\r')) }),
      float: fc.double({ noNaN: true, noDefaultInfinity: true }),
    });
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(point, { minLength: 1, maxLength: 5 }), async (points) => {
        const tag = `r${++run}`;
        // Tag keys and field keys must differ (the server renames clashes in queries), and `run` is ours.
        const records = points.map((p, i) => ({ ...p, tagKey: `t${p.tagKey}`, fieldKey: `f${p.fieldKey}`, at: i + 1 }));
        await lastValueFrom(
          fromPaced(records).pipe(
            lineProtocolSink<(typeof records)[number]>({
              url: influx.url,
              db,
              precision: 's',
              toPoint: (r) =>
                new Point(r.measurement).tag('run', tag).tag(r.tagKey, r.tagValue).stringField(r.fieldKey, r.text).floatField('fl', r.float).timestamp(r.at),
            }),
          ),
        );
        const series = await influxQuery(influx.url, db, `SELECT * FROM /.*/ WHERE "run" = '${tag}' GROUP BY *`, 's');
        const found = series.flatMap((s) =>
          s.values.map((row) => {
            const at = row[s.columns.indexOf('time')];
            const fields = Object.fromEntries(s.columns.map((c, i) => [c, row[i]]).filter(([c, v]) => c !== 'time' && v !== null));
            const tags = Object.fromEntries(Object.entries(s.tags ?? {}).filter(([k, v]) => v !== '' && k !== 'run'));
            return JSON.stringify({ m: s.name, at, tags, fields });
          }),
        );
        const expected = records.map((r) =>
          JSON.stringify({ m: r.measurement, at: r.at, tags: { [r.tagKey]: r.tagValue }, fields: Object.fromEntries([[r.fieldKey, r.text], ['fl', r.float]].sort(([a], [b]) => (a! < b! ? -1 : 1))) }),
        );
        // Two records of one series and second are one point on the server: the last one wins.
        const byIdentity = new Map<string, string>();
        for (const r of records) byIdentity.set(JSON.stringify([r.measurement, r.tagKey, r.tagValue, r.at]), expected[records.indexOf(r)]!);
        const normalise = (text: string) => {
          const parsed = JSON.parse(text) as { fields: Record<string, unknown> };
          parsed.fields = Object.fromEntries(Object.entries(parsed.fields).sort(([a], [b]) => (a < b ? -1 : 1)));
          return JSON.stringify(parsed);
        };
        expect(found.map(normalise).sort()).to.deep.equal([...byIdentity.values()].map(normalise).sort());
      }),
      { numRuns: 25 },
    );
  });

  describe('through a fault-injecting proxy', () => {
    let proxy: FaultProxy;
    before(async () => {
      proxy = await startFaultProxy(influx.url);
    });
    after(async () => {
      await proxy?.stop();
    });

    it('retries 503s, 429s, resets and stalls with backoff, and every point lands once acked', async () => {
      const db = await freshInfluxDatabase(influx.url, 'faults');
      proxy.inject({ status: 503 }, 2);
      proxy.inject('reset');
      proxy.inject({ status: 429 });
      proxy.inject('stall');
      proxy.inject({ status: 500 });
      let stats: LineSinkStats | undefined;
      let flushed = 0;
      const events = await lastValueFrom(
        fromPaced(samples(3000), { window: 3000 }).pipe(
          tracked({ flushed: () => flushed++ }),
          lineProtocolSink<Sample>({
            url: proxy.endpoint,
            db,
            precision: 's',
            lines: sampleLines,
            batch: { initialSize: 500, minSize: 100 },
            retry: { maxRetries: 8, minDelayMs: 10, maxDelayMs: 100, jitter: 0.5 },
            requestTimeoutMs: 300,
            onStats: (s) => (stats = { ...s }),
          }),
          toArray(),
        ),
      );
      expect(proxy.faultsServed).to.equal(6);
      expect(stats!.retryableErrors).to.equal(6);
      expect(events.filter((e) => e.kind === 'written').reduce((n, e) => n + (e.kind === 'written' ? e.points : 0), 0)).to.equal(3000);
      expect(flushed).to.equal(3000);
      expect(await idsIn(influx.url, db)).to.deep.equal(range(3000));
    });

    it('fails the output after the retries run out, naming the server, and flushes nothing it did not write', async () => {
      const db = await freshInfluxDatabase(influx.url, 'giveup');
      proxy.inject({ status: 503 }, 3);
      let flushed = 0;
      let failed = 0;
      const error = await lastValueFrom(
        fromPaced(samples(10), { window: 10 }).pipe(
          tracked({ flushed: () => flushed++, failed: () => failed++ }),
          lineProtocolSink<Sample>({ url: proxy.endpoint, db, precision: 's', lines: sampleLines, retry: { maxRetries: 2, minDelayMs: 1, maxDelayMs: 5 } }),
        ),
      ).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(error?.message).to.match(/failed 3 times in a row.*answered 503/);
      expect(flushed).to.equal(0);
      expect(failed).to.equal(10);
      expect(await idsIn(influx.url, db)).to.deep.equal([]);
    });
  });

  it('isolates refused lines into the dead-letter storage while the rest land', async () => {
    const db = await freshInfluxDatabase(influx.url, 'bad');
    const deadLetters = new MemoryStorage({ name: 'dead' });
    const good = samples(1000).map((s) => `samples,host=${s.host} id=${s.id}i,value=${s.value} ${s.id}`);
    const lines = [...good];
    // A parse error, a type conflict (id is an integer field) and a reserved key, spread over the batch.
    lines.splice(100, 0, 'samples,host=x id=');
    lines.splice(600, 0, 'samples,host=h1 id="text" 5000');
    lines.splice(900, 0, 'samples,host=h1 time=1 5001');
    const outcomes = new Map<string, string>();
    const events: LineSinkEvent[] = await lastValueFrom(
      fromPaced(lines, { window: 2000 }).pipe(
        tracked<string>({ flushed: (line) => outcomes.set(line, 'flushed'), failed: (line) => outcomes.set(line, 'failed') }),
        lineProtocolSink<string>({ url: influx.url, db, precision: 's', batch: { initialSize: 2000, maxSize: 2000 }, deadLetter: deadLetters }),
        toArray(),
      ),
    );
    const letters = events.filter((e) => e.kind === 'deadLetter');
    expect(letters.map((l) => l.line)).to.deep.equal(['samples,host=x id=', 'samples,host=h1 id="text" 5000', 'samples,host=h1 time=1 5001']);
    for (const letter of letters) {
      expect(letter.status).to.equal(400);
      expect(letter.message).to.be.a('string').and.not.empty;
      expect(letter.stored).to.match(/^memory:\/\/dead\/dead-letters\//);
    }
    expect(letters[1]!.message).to.match(/field type conflict/);
    expect(await idsIn(influx.url, db)).to.deep.equal(range(1000));
    const stored: string[] = [];
    for await (const key of deadLetters.list('dead-letters/')) stored.push(Buffer.from((await deadLetters.get(key))!).toString('utf8'));
    expect(stored.join('').trim().split('\n').map((l) => (JSON.parse(l) as { line: string }).line)).to.have.members(letters.map((l) => l.line));
    // Stored dead letters are durable somewhere: their records are flushed, like the good ones.
    expect([...outcomes.values()].every((o) => o === 'flushed')).to.equal(true);
    expect(outcomes.size).to.equal(1003);
  });

  it('errors at once on a database that does not exist, without retrying', async () => {
    const started = Date.now();
    const error = await lastValueFrom(
      fromPaced(samples(5)).pipe(lineProtocolSink<Sample>({ url: influx.url, db: 'no_such_db_here', lines: sampleLines, retry: { maxRetries: 5, minDelayMs: 500 } })),
    ).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.message).to.match(/answered 404: database not found.*not retryable/);
    expect(Date.now() - started).to.be.below(400);
  });

  describe('AIMD with latency in proportion to batch size', () => {
    let proxy: LatencyProxy;
    before(async () => {
      // 1 ms per KiB: a batch of about 100 KiB (~2800 of these lines) takes the 100 ms target. The
      // proxy answers at that latency whatever influxd's own time (within it), so a loaded machine
      // does not shift the size the sink should settle at.
      proxy = await startLatencyProxy(influx.url, { fixedMs: 5, perKiBMs: 1 });
    });
    after(async () => {
      await proxy?.stop();
    });

    it('converges to the largest batch size that meets the latency target and stays there', async () => {
      const db = await freshInfluxDatabase(influx.url, 'aimd');
      const bytesPerLine = Buffer.byteLength(`samples,host=h1 id=100000i,value=12500.125 100000\n`);
      const ideal = Math.floor(((100 - 5) * 1024) / bytesPerLine);
      const sizes: number[] = [];
      const events = await lastValueFrom(
        fromPaced(samples(120_000), { window: 20_000 }).pipe(
          lineProtocolSink<Sample>({
            url: proxy.endpoint,
            db,
            precision: 's',
            lines: sampleLines,
            batch: { minSize: 100, initialSize: 300, maxSize: 20_000, targetLatencyMs: 100, adjustEvery: 2, maxDelayMs: 50 },
            gzipAboveBytes: Infinity,
            maxInFlight: 1,
            onStats: (s) => void (sizes[sizes.length - 1] !== s.batchSize && sizes.push(s.batchSize)),
          }),
          toArray(),
        ),
      );
      const written = events.filter((e) => e.kind === 'written');
      const lastTen = written.slice(-12, -2).map((e) => (e.kind === 'written' ? e.batchSize : 0));
      // Grew from 300 well past it, bisected toward the ceiling, and settled just under the ideal size.
      expect(Math.max(...sizes)).to.be.above(ideal * 0.9);
      for (const size of lastTen) {
        const context = `settled sizes ${lastTen.join(', ')} (ideal ${ideal}; path ${sizes.join(' ')}; ${proxy.late} answers later than the set latency)`;
        expect(size, context).to.be.within(ideal * 0.6, ideal * 1.15);
      }
      expect(await idsIn(influx.url, db)).to.have.length(120_000);
    });
  });

  it('sluice lines writes JSON-lines records from stdin', async () => {
    const db = await freshInfluxDatabase(influx.url, 'cli');
    const records = [
      { measurement: 'cli m', tags: { host: 'a,b' }, fields: { load: 0.25, procs: { int: 7 }, big: { int: '9007199254740993' }, up: false, os: 'li"nux' }, time: 1_700_000_000 },
      { measurement: 'cli m', tags: { host: 'c' }, fields: { load: 1 }, time: 1_700_000_001 },
    ];
    const stdin = Readable.from([`${records.map((r) => JSON.stringify(r)).join('\n')}\n\n`]);
    const out: string[] = [];
    const err: string[] = [];
    const code = await runLines(['--to', influx.url, '--db', db, '--precision', 's'], {
      stdin,
      stdout: { write: (t: string) => out.push(t) },
      stderr: { write: (t: string) => err.push(t) },
    });
    expect(err.join('')).to.equal('');
    expect(code).to.equal(0);
    expect(out.join('')).to.match(/2 points written/);
    const series = await influxQuery(influx.url, db, 'SELECT * FROM "cli m" GROUP BY *', 's');
    const first = series.find((s) => s.tags?.host === 'a,b')!;
    const row = Object.fromEntries(first.columns.map((c, i) => [c, first.values[0]![i]]));
    expect(row).to.include({ time: 1_700_000_000, load: 0.25, procs: 7, up: false, os: 'li"nux' });
  });

  it('sluice lines names the line of a bad record and exits 1', async () => {
    const db = await freshInfluxDatabase(influx.url, 'clibad');
    const stdin = Readable.from(['{"measurement":"m","fields":{"v":1}}\n{"measurement":"m","fields":{"v":"x","n":{"int":1.5}}}\n']);
    const err: string[] = [];
    const code = await runLines(['--to', influx.url, '--db', db], { stdin, stdout: { write: () => true }, stderr: { write: (t: string) => err.push(t) } });
    expect(code).to.equal(1);
    expect(err.join('')).to.match(/stdin:2: field "n" is 1.5, not an integer/);
  });
});
