/**
 * `sluice sink` through a storage outage (issue 14): s3rver behind a TCP fault proxy that refuses
 * connections in the middle of a run for longer than one round of a storage's default retries
 * (5 retries, ~3 s), then forwards again. Within --retry-for the sink prints stall lines, goes on
 * where it was, and ends with every row in the data files exactly once (read back and decoded) and
 * the checkpoint at the last commit ts; past --retry-for it exits 1 naming the storage, the time and
 * the flag. Runs the command in process (cli.ts `run`), stdin fed as the test goes.
 */
import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { decodeCsvRows } from '../../../lib/codec/csv.ts';
import { parseChangeEventLine, parseMetadataFile, type DdlEvent, type TableDef } from '../../../lib/codec/index.ts';
import { S3Storage } from '../../../lib/storage/s3Storage.ts';
import { run } from '../../../pipelines/storageSink/cli.ts';
import { createS3Bucket, S3RVER_CREDENTIALS, serviceOrSkip, startS3rver, type S3rverService } from '../../support/services.ts';
import { startTcpFaultProxy, type TcpFaultProxy } from '../../support/tcpFaultProxy.ts';

const TS = 4350;
const DDL_LINE =
  `{"kind":"ddl","commitTs":"${TS}","query":"CREATE TABLE orders (id INT PRIMARY KEY, total DECIMAL(10,2))","ddlType":"CREATE TABLE","schema":"shop","table":"orders",` +
  `"tableDef":{"schema":"shop","table":"orders","version":"${TS}","columns":[{"name":"id","type":"INT","nullable":false,"primaryKey":true},{"name":"total","type":"DECIMAL","precision":10,"scale":2}]},"blockedDispatchers":"all"}`;
const TABLE: TableDef = (parseChangeEventLine(DDL_LINE, 1) as DdlEvent).tableDef!;

/** Insert of row `id` at commit ts TS + id. */
function rowLine(id: number): string {
  return `{"kind":"row","op":"insert","schema":"shop","table":"orders","tableVersion":"${TS}","commitTs":"${TS + id}","dispatcherId":"7","columns":{"id":${id},"total":"${id}.50"}}`;
}

/** One in-process run of the command, with stdin fed by the test and its output watched. */
function startSink(args: string[]) {
  const stdin = new PassThrough();
  const out: string[] = [];
  const err: string[] = [];
  const waiters: (() => void)[] = [];
  const wake = () => waiters.splice(0).forEach((w) => w());
  const exit = run(args, {
    stdin,
    stdout: { write: (text: string) => (out.push(text), wake(), true), isTTY: false },
    stderr: { write: (text: string) => (err.push(text), wake(), true) },
  });
  void exit.then(wake, wake);
  let exited = false;
  void exit.finally(() => (exited = true));
  /** Resolves once `test` holds of (stdout, stderr); rejects if the command exits before. */
  const until = async (what: string, test: (stdout: string, stderr: string) => boolean) => {
    for (;;) {
      if (test(out.join(''), err.join(''))) return;
      if (exited) throw new Error(`the command exited before ${what}; stdout:\n${out.join('')}\nstderr:\n${err.join('')}`);
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };
  return { stdin, exit, until, out: () => out.join(''), err: () => err.join('') };
}

/** Rows reported written so far ("wrote …: N rows, …"). */
function rowsWritten(stdout: string): number {
  return [...stdout.matchAll(/^wrote \S+\.csv: (\d+) rows/gm)].reduce((sum, match) => sum + Number(match[1]), 0);
}

describe('sluice sink: a storage outage (s3rver behind a TCP fault proxy)', function () {
  this.timeout(90_000);
  let s3rver: S3rverService;
  let proxy: TcpFaultProxy | undefined;
  const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };

  before(async function () {
    s3rver = await serviceOrSkip(this, 's3rver', startS3rver);
    process.env.AWS_ACCESS_KEY_ID = S3RVER_CREDENTIALS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = S3RVER_CREDENTIALS.secretAccessKey;
  });

  after(async () => {
    if (saved.id === undefined) delete process.env.AWS_ACCESS_KEY_ID;
    else process.env.AWS_ACCESS_KEY_ID = saved.id;
    if (saved.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
    else process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
    await s3rver?.stop();
  });

  afterEach(async () => {
    await proxy?.stop();
    proxy = undefined;
  });

  /** A bucket behind a fresh proxy (forwarding), and the sink's URI through it. */
  async function bucketBehindProxy(bucket: string): Promise<string> {
    await createS3Bucket(s3rver.endpoint, bucket);
    const { hostname, port } = new URL(s3rver.endpoint);
    proxy = await startTcpFaultProxy({ host: hostname, port: Number(port) });
    return `s3://${bucket}/cdc?endpoint=http://127.0.0.1:${proxy.port}`;
  }

  it('rides out an outage longer than a retry round within --retry-for: stall lines, then every row exactly once and the checkpoint at the last commit ts', async () => {
    const uri = await bucketBehindProxy('sink-outage');
    const sink = startSink(['--from', '-', '--to', uri, '--flush-interval', '100ms', '--retry-for', '1m']);
    sink.stdin.write(`${DDL_LINE}\n`);
    for (let id = 1; id <= 20; id++) sink.stdin.write(`${rowLine(id)}\n`);
    await sink.until('the first 20 rows were written', (stdout) => rowsWritten(stdout) === 20);

    await proxy!.setMode('refuse');
    for (let id = 21; id <= 50; id++) sink.stdin.write(`${rowLine(id)}\n`);
    // Past one round of a storage's default retries (100 ms doubling, 5 retries: ~3 s).
    await sink.until('a stall line 4 s into the outage', (_stdout, stderr) =>
      [...stderr.matchAll(/unreachable for (\d+) s/g)].some((match) => Number(match[1]) >= 4),
    );
    await proxy!.setMode('forward');
    for (let id = 51; id <= 60; id++) sink.stdin.write(`${rowLine(id)}\n`);
    sink.stdin.end();

    const code = await sink.exit;
    expect(code, sink.err()).to.equal(0);
    expect(sink.err()).to.match(/^sluice sink: storage s3:\/\/sink-outage\/cdc\S* unreachable for 0 s, retrying until 1m: (ECONNREFUSED|ECONNRESET)/m);
    expect(sink.err()).to.match(/^sluice sink: s3:\/\/sink-outage\/cdc\S* answers again; going on where it was$/m);
    expect(sink.out()).to.match(/checkpoint 4410, .* -> s3:\/\/sink-outage\/cdc/);

    // Read back straight from s3rver, past the proxy: each row once, the checkpoint at the last commit ts.
    const storage = new S3Storage({ scheme: 's3', bucket: 'sink-outage', prefix: 'cdc', endpoint: s3rver.endpoint, forcePathStyle: true }, { env: { AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey } });
    try {
      const ids: number[] = [];
      for await (const key of storage.list('')) {
        if (!key.endsWith('.csv')) continue;
        const text = new TextDecoder().decode(await storage.get(key));
        for (const row of decodeCsvRows(text, TABLE, { includeCommitTs: true, where: key })) {
          expect(row.commitTs).to.equal(BigInt(TS + Number(row.columns.id)));
          ids.push(Number(row.columns.id));
        }
      }
      expect(ids.sort((a, b) => a - b)).to.deep.equal(Array.from({ length: 60 }, (_, index) => index + 1));
      const metadata = new TextDecoder().decode(await storage.get('metadata'));
      expect(parseMetadataFile(metadata, 'metadata')).to.equal(BigInt(TS + 60));
    } finally {
      await storage.close();
    }
  });

  it('past --retry-for: exits 1 naming the storage, the time and --retry-for', async () => {
    const uri = await bucketBehindProxy('sink-budget');
    const sink = startSink(['--from', '-', '--to', uri, '--flush-interval', '100ms', '--retry-for', '2s']);
    sink.stdin.write(`${DDL_LINE}\n${rowLine(1)}\n`);
    await sink.until('the first row was written', (stdout) => rowsWritten(stdout) === 1);
    await proxy!.setMode('refuse');
    sink.stdin.write(`${rowLine(2)}\n`);
    sink.stdin.end();

    expect(await sink.exit).to.equal(1);
    expect(sink.err()).to.match(/^sluice sink: storage s3:\/\/sink-budget\/cdc\S* unreachable for 0 s, retrying until 2s: (ECONNREFUSED|ECONNRESET)/m);
    expect(sink.err()).to.match(/storage s3:\/\/sink-budget\/cdc\S* unreachable for \d+\.\d s \(storageSink: .*\), longer than --retry-for 2s: ECONNREFUSED: connect ECONNREFUSED/);
    expect(sink.err()).to.include('raise --retry-for');
    expect(sink.err()).not.to.match(/answers again/);
  });

  it('a permanent storage error fails at once under the default --retry-for: no stall line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-sink-outage-'));
    try {
      const root = join(dir, 'a-file');
      await writeFile(root, 'in the way of the storage folder');
      const sink = startSink(['--from', '-', '--to', pathToFileURL(root).href, '--flush-interval', '100ms']);
      sink.stdin.end(`${DDL_LINE}\n${rowLine(1)}\n`);
      expect(await sink.exit).to.equal(1);
      expect(sink.err()).to.match(/^sluice sink: .*ENOTDIR.* is a file where a folder must be/m);
      expect(sink.err()).not.to.match(/unreachable|retrying/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
