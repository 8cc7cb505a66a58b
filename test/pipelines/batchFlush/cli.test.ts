import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { run as runLines } from '../../../pipelines/batchFlush/cli.ts';
import { freePort, freshInfluxDatabase, influxQuery, sharedInfluxDb, type InfluxDbService } from '../../support/influxdb.ts';
import { serviceOrSkip } from '../../support/services.ts';

/** A captured output: its text so far, and a promise for the first time it matches a pattern. */
function capture(isTTY = false) {
  let text = '';
  const waiters: { pattern: RegExp; resolve: (match: RegExpMatchArray) => void }[] = [];
  return {
    isTTY,
    get text() {
      return text;
    },
    write(chunk: string) {
      text += chunk;
      for (const waiter of waiters.splice(0)) {
        const match = text.match(waiter.pattern);
        if (match) waiter.resolve(match);
        else waiters.push(waiter);
      }
      return true;
    },
    /** Resolves once the text matches `pattern` (an event, no polling). */
    waitFor(pattern: RegExp): Promise<RegExpMatchArray> {
      const match = text.match(pattern);
      return match ? Promise.resolve(match) : new Promise((resolve) => waiters.push({ pattern, resolve }));
    },
  };
}

const record = (id: number) => JSON.stringify({ measurement: 'm', tags: { host: `h${id % 3}` }, fields: { id: { int: id } }, time: id });

async function countIn(url: string, db: string): Promise<number> {
  const series = await influxQuery(url, db, 'SELECT count("id") FROM "m"');
  return (series[0]?.values[0]?.[1] as number | undefined) ?? 0;
}

/** A TCP forwarder to `target` that can be taken down (connections refused, open ones reset) and brought back on the same port. */
async function startOutageProxy(target: string) {
  const { hostname, port: targetPort } = new URL(target);
  const port = await freePort();
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const up = async () => {
    server = createServer((client) => {
      const upstream = connect(Number(targetPort), hostname);
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
        socket.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => server!.once('error', reject).listen(port, '127.0.0.1', () => resolve()));
  };
  const down = async () => {
    const closing = new Promise<void>((resolve) => server!.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await closing;
  };
  await up();
  return { url: `http://127.0.0.1:${port}`, up, down };
}

describe('sluice lines as a long-running job (issue 14)', function () {
  this.timeout(60_000);
  let influx: InfluxDbService;
  let dir: string;

  before(async function () {
    influx = await serviceOrSkip(this, 'influxd', sharedInfluxDb);
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-lines-cli-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const runWith = (args: string[], input: string | NodeJS.ReadableStream, err = capture(), out = capture()) =>
    runLines(args, { stdin: typeof input === 'string' ? Readable.from([input]) : input, stdout: out, stderr: err }).then((code) => ({ code, out: out.text, err: err.text }));

  describe('a bad line', () => {
    it('writes every record before it to influxd, then exits 1 naming the line and the problem, escaped', async () => {
      const db = await freshInfluxDatabase(influx.url, 'badmid');
      const good = 40_000;
      const lines = Array.from({ length: good }, (_, i) => record(i));
      // A key with ESC and BEL in it: the message must show them escaped.
      lines.push('{"measurement":"m","fields":{"id":{"int":1}},"ti\\u001b[31mme\\u0007":5}');
      for (let i = good; i < good + 500; i++) lines.push(record(i));
      const { code, err, out } = await runWith(['--to', influx.url, '--db', db, '--precision', 's'], `${lines.join('\n')}\n`);
      expect(code, err).to.equal(1);
      expect(err).to.match(/stdin:40001: unknown key "ti\\u001b\[31mme\\u0007"; a record has the keys measurement, tags, fields, time/);
      expect(err).to.not.match(/[\x00-\x09\x0b-\x1f]/);
      expect(out).to.match(/40000 points written/);
      expect(await countIn(influx.url, db)).to.equal(good);
    });

    it('with --checkpoint also writes everything before it and leaves the checkpoint empty', async () => {
      const db = await freshInfluxDatabase(influx.url, 'badck');
      const lines = [...Array.from({ length: 3000 }, (_, i) => record(i)), '{"measurement":"m","fields":{"id":"x"', record(5000)];
      const checkpoint = join(dir, 'ck');
      const { code, err } = await runWith(['--to', influx.url, '--db', db, '--precision', 's', '--checkpoint', checkpoint], `${lines.join('\n')}\n`);
      expect(code).to.equal(1);
      expect(err).to.match(/stdin:3001: not valid JSON/);
      expect(await countIn(influx.url, db)).to.equal(3000);
      const again = await runWith(['--to', influx.url, '--db', db, '--precision', 's', '--checkpoint', checkpoint], '');
      expect(again.out).to.match(/0 points written \(0 restored from the checkpoint\)/);
    });

    it('refuses unknown keys: {"tag","field","fields","timestamp"} is not stored with the server time', async () => {
      const db = await freshInfluxDatabase(influx.url, 'unknown');
      const { code, err } = await runWith(['--to', influx.url, '--db', db], '{"measurement":"m","tag":{"h":"a"},"field":{"v":1},"fields":{"id":1},"timestamp":5}\n');
      expect(code).to.equal(1);
      expect(err).to.match(/stdin:1: unknown key "tag"; a record has the keys measurement, tags, fields, time/);
      expect(await countIn(influx.url, db)).to.equal(0);
      const nested = await runWith(['--to', influx.url, '--db', db], '\n{"measurement":"m","fields":{"id":{"int":1,"float":2}}}\n');
      expect(nested.code).to.equal(1);
      expect(nested.err).to.match(/stdin:2: field "id": unknown key "float" in \{"int": \.\.\.\}/);
    });

    it('--bad-records skip drops bad lines, counts them and writes the rest', async () => {
      const db = await freshInfluxDatabase(influx.url, 'skip');
      const input = [record(1), 'not json', record(2), '{"measurement":"m","fields":{"id":[1]}}', record(3)].join('\n');
      const { code, out, err } = await runWith(['--to', influx.url, '--db', db, '--precision', 's', '--bad-records', 'skip'], input);
      expect(code, err).to.equal(0);
      expect(out).to.match(/3 points written .*, 2 bad lines skipped/);
      expect(await countIn(influx.url, db)).to.equal(3);
    });

    it('--bad-records dead-letter:<path> stores each bad line with its number and error, and goes on', async () => {
      const db = await freshInfluxDatabase(influx.url, 'deadletter');
      const path = join(dir, 'bad.jsonl');
      const input = [record(1), '{"measurement":"m","fields":{"id":1},"time":"soon"}', record(2), '', '{"measurement":"m","fields":{}} trailing'].join('\n');
      const { code, out } = await runWith(['--to', influx.url, '--db', db, '--precision', 's', '--bad-records', `dead-letter:${path}`], input);
      expect(code).to.equal(0);
      expect(out).to.match(new RegExp(`2 points written .*, 2 bad lines in the dead-letter file ${path}`));
      const stored = readFileSync(path, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(stored.map((entry) => [entry.source, entry.line, entry.text])).to.deep.equal([
        ['stdin', 2, '{"measurement":"m","fields":{"id":1},"time":"soon"}'],
        ['stdin', 5, '{"measurement":"m","fields":{}} trailing'],
      ]);
      expect(stored[0]!.error).to.match(/stdin:2: "time" must be an integer or a string of digits, got "soon"/);
      expect(await countIn(influx.url, db)).to.equal(2);
    });

    it('counts skipped lines in lines_bad_records_total while it runs with --metrics-port', async () => {
      const db = await freshInfluxDatabase(influx.url, 'badmetric');
      const stdin = new PassThrough();
      const err = capture();
      const running = runWith(['--to', influx.url, '--db', db, '--precision', 's', '--bad-records', 'skip', '--metrics-port', '0', '--progress-every', '20ms'], stdin, err);
      stdin.write(`${record(1)}\nbad one\n{"measurement":"m"}\n${record(2)}\n`);
      const [, url] = await err.waitFor(/metrics at (http:\/\/\S+)/);
      await err.waitFor(/sluice lines: 2 points written/);
      const text = await (await fetch(url!.endsWith('/metrics') ? url! : `${url}/metrics`)).text();
      stdin.end();
      expect((await running).code).to.equal(0);
      expect(text).to.match(/^sluice_lines_bad_records_total\{pipeline="lines"\} 2$/m);
    });

    it('--bad-records with a bad value or an unusable dead-letter path exits 2 before reading', async () => {
      const bogus = await runWith(['--to', influx.url, '--db', 'x', '--bad-records', 'ignore'], record(1));
      expect(bogus.code).to.equal(2);
      expect(bogus.err).to.match(/--bad-records must be fail, skip or dead-letter:<path>/);
      const unusable = await runWith(['--to', influx.url, '--db', 'x', '--bad-records', `dead-letter:${join(dir, 'no', 'such', 'dir', 'bad.jsonl')}`], record(1));
      expect(unusable.code).to.equal(2);
      expect(unusable.err).to.match(/--bad-records dead-letter:.*cannot open the file/);
    });
  });

  describe('lines the server refused', () => {
    const conflicting = () => [record(1), '{"measurement":"m","fields":{"id":"text"},"time":2}', record(3)].join('\n');

    it('exit 1 once everything else is written, the summary saying how many and where they went', async () => {
      const db = await freshInfluxDatabase(influx.url, 'refused');
      const { code, out, err } = await runWith(['--to', influx.url, '--db', db, '--precision', 's', '--dead-letter', `file://${dir}/letters`], conflicting());
      expect(code).to.equal(1);
      expect(out).to.match(new RegExp(`2 points written .*, 1 refused \\(stored in file://${dir}/letters/dead-letters/[^ ]+\\.jsonl\\)`));
      expect(err).to.match(new RegExp(`the server refused 1 line, stored in file://${dir}/letters/`));
      expect(err).to.match(/--allow-refused/);
      expect(await countIn(influx.url, db)).to.equal(2);
    });

    it('exit 0 with --allow-refused', async () => {
      const db = await freshInfluxDatabase(influx.url, 'allowed');
      const { code, out } = await runWith(['--to', influx.url, '--db', db, '--precision', 's', '--allow-refused'], conflicting());
      expect(code).to.equal(0);
      expect(out).to.match(/2 points written .*, 1 refused/);
    });
  });

  describe('progress', () => {
    it('off a terminal: a plain line every --progress-every with points written, refused and the rate, no control codes', async () => {
      const db = await freshInfluxDatabase(influx.url, 'plain');
      const stdin = new PassThrough();
      const err = capture();
      const running = runWith(['--to', influx.url, '--db', db, '--precision', 's', '--progress-every', '50ms'], stdin, err);
      stdin.write(`${Array.from({ length: 100 }, (_, i) => record(i)).join('\n')}\n`);
      const [line] = await err.waitFor(/sluice lines: 100 points written, 0 refused, \d+ points\/s\n/);
      expect(line).to.match(/^sluice lines: 100 points written, 0 refused, \d+ points\/s\n$/);
      stdin.end();
      const { code } = await running;
      expect(code).to.equal(0);
      expect(err.text).to.not.match(/[\r\x1b]/);
    });

    it('on a terminal: one status line redrawn in place, cleared before the summary', async () => {
      const db = await freshInfluxDatabase(influx.url, 'tty');
      const err = capture(true);
      const { code } = await runWith(['--to', influx.url, '--db', db, '--precision', 's'], Array.from({ length: 10 }, (_, i) => record(i)).join('\n'), err);
      expect(code).to.equal(0);
      expect(err.text).to.match(/\r\x1b\[Ksluice lines: 10 points written, 0 refused, \d+ points\/s/);
      expect(err.text.endsWith('\r\x1b[K')).to.equal(true);
    });
  });

  describe('an outage', () => {
    it('retries influxd longer than one old retry round, printing stall lines, and every point arrives once it is back', async () => {
      const db = await freshInfluxDatabase(influx.url, 'outage');
      const proxy = await startOutageProxy(influx.url);
      const stdin = new PassThrough();
      const err = capture();
      const running = runWith(['--to', proxy.url, '--db', db, '--precision', 's', '--retry-for', '1m', '--progress-every', '1000ms'], stdin, err);
      stdin.write(`${Array.from({ length: 1000 }, (_, i) => record(i)).join('\n')}\n`);
      // Once the first records are written (a progress line says so), take influxd away.
      await err.waitFor(/sluice lines: 1000 points written/);
      await proxy.down();
      stdin.write(`${Array.from({ length: 2000 }, (_, i) => record(1000 + i)).join('\n')}\n`);
      // The old policy (5 retries from 100 ms) gave up within about 3.7 s: wait for a stall line past that.
      await err.waitFor(/influxd at http:\/\/127\.0\.0\.1:\d+ db=\S+ unreachable for ([4-9]|\d\d+) s, retrying until 1m: .*ECONNREFUSED/);
      await proxy.up();
      stdin.end();
      const { code, out } = await running;
      expect(code, err.text).to.equal(0);
      expect(out).to.match(/3000 points written/);
      expect(err.text).to.match(/answers again; going on where it was/);
      expect(await countIn(influx.url, db)).to.equal(3000);
      await proxy.down();
    });

    it('gives up after --retry-for, exit 1 naming the server and the budget', async () => {
      const port = await freePort();
      const { code, err } = await runWith(['--to', `http://127.0.0.1:${port}`, '--db', 'd', '--retry-for', '300ms'], record(1));
      expect(code).to.equal(1);
      expect(err).to.match(/unreachable for 0 s, retrying until 300ms: .*ECONNREFUSED/);
      expect(err).to.match(/POST \/write to http:\/\/127\.0\.0\.1:\d+.*giving up: the retry budget is 300 ms/);
      expect(err).to.match(/hint: the server stayed unreachable for --retry-for 300ms: raise it/);
    });
  });
});
