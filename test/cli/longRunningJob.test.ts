/**
 * The three commands as long-running jobs, in child processes (bin/sluice.js): SIGINT/SIGTERM stop
 * them gracefully (what was read made durable and checkpointed, the summary printed, exit 130/143), a
 * second signal exits at once, a closed stdout exits quietly (141), the sink's spool folder goes on
 * every way out and a killed run's is removed by the next run, and --metrics-port serves /metrics.
 */
import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createPool } from 'mysql2/promise';
import { formatChangeEventLine, type ChangeEvent, type RowChange } from '../../lib/codec/index.ts';
import { FileStorage } from '../../lib/storage/fileStorage.ts';
import { sampleChangeEvents } from '../../examples/storageSink.ts';
import { freshDatabase, sharedMariaDb } from '../support/mariadb.ts';
import { serviceOrSkip } from '../support/services.ts';
import { ddl, def, insert, putDataFiles, putMetadata, putSchema } from '../pipelines/storageConsumer/layout.ts';
import { ChildCommand } from './childCommand.ts';

const events: ChangeEvent[] = [...sampleChangeEvents(40)];
const rows = events.filter((e): e is RowChange => e.kind === 'row');
const lastRowTs = rows.reduce((max, row) => (row.commitTs > max ? row.commitTs : max), 0n);
/** The greatest commit ts of any event (row or DDL) in the input. */
const lastTs = events.reduce((max, event) => (event.commitTs > max ? event.commitTs : max), 0n);
const eventLines = `${events.map(formatChangeEventLine).join('\n')}\n`;
const RECORDS = 100;
const recordLines = Array.from({ length: RECORDS }, (_, i) => `{"measurement":"cpu","tags":{"host":"a"},"fields":{"v":${i}},"time":${i + 1}}\n`).join('');

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name))).sort();
}

/** Lines in the files under `dir` ending with `extension`. */
async function linesIn(dir: string, extension: string): Promise<number> {
  let count = 0;
  for (const file of (await filesUnder(dir)).filter((f) => f.endsWith(extension))) {
    count += (await readFile(join(dir, file), 'utf8')).split('\n').filter(Boolean).length;
  }
  return count;
}

/** The greatest commit ts of the rows in the csv data files under `dir` (field 4: op, table, schema, commit ts). */
async function greatestCsvCommitTs(dir: string): Promise<bigint> {
  let greatest = 0n;
  for (const file of (await filesUnder(dir)).filter((f) => f.endsWith('.csv'))) {
    for (const record of (await readFile(join(dir, file), 'utf8')).split('\n').filter(Boolean)) {
      const ts = BigInt(record.split(',')[3]!);
      if (ts > greatest) greatest = ts;
    }
  }
  return greatest;
}

async function spoolFoldersOf(pid: number | undefined): Promise<string[]> {
  return (await readdir(tmpdir())).filter((name) => name.startsWith(`sluice-sink-pid${pid}-`));
}

/** A stack trace line: what a quiet exit never prints. */
const STACK = /\n\s+at /;

describe('the commands as long-running jobs (child processes)', function () {
  this.timeout(60_000);
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-job-test-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true, maxRetries: 20, retryDelay: 50 });
  });

  it('sink: SIGINT with stdin still open makes what was read durable, checkpoints, prints the summary, exits 130, removes its spool; metrics served meanwhile', async () => {
    const out = join(dir, 'sink-sigint');
    const child = new ChildCommand(['sink', '--from', '-', '--to', pathToFileURL(out).href, '--flush-interval', '100ms', '--metrics-port', '0']);
    child.child.stdin.write(eventLines); // and kept open: the sink would wait for more
    const [, url] = await child.waitFor('stderr', /metrics at (http:\/\/127\.0\.0\.1:\d+\/metrics)/);
    await child.waitFor('stdout', /^wrote \S+\.csv: /m);
    const scraped = await (await fetch(url!)).text();
    expect(scraped).to.match(/^sluice_flush_tasks_total\{pipeline="sink"/m).and.match(/^process_cpu_seconds_total/m);
    expect(await spoolFoldersOf(child.child.pid)).to.have.length(1);

    child.kill('SIGINT');
    expect(await child.exited, child.stderr).to.equal(130);
    expect(child.stderr).to.contain('sluice sink: SIGINT: stopping').and.not.match(STACK);
    const summary = /^sluice sink: \d+ files \(\d+ data, \d+ schema\), (\d+) rows, .*checkpoint (\d+)/m.exec(child.stdout);
    expect(summary, child.stdout).to.not.equal(null);
    // Every event was read before the signal: all of them durable; the files, the summary and the
    // metadata checkpoint agree (the checkpoint may stay below the last row: the input did not end).
    expect(Number(summary![1])).to.equal(rows.length);
    expect(await linesIn(out, '.csv')).to.equal(rows.length);
    expect(await readFile(join(out, 'metadata'), 'utf8')).to.equal(`{"checkpoint-ts":${summary![2]}}`);
    expect(BigInt(summary![2]!) <= lastRowTs && BigInt(summary![2]!) >= rows[0]!.commitTs, summary![2]).to.equal(true);
    // A signal stops the input; it does not end it: the checkpoint stays strictly below the greatest
    // commit ts read (more events sharing it, or another dispatcher's, may come on a rerun).
    expect(BigInt(summary![2]!) < lastTs, `checkpoint ${summary![2]} < ${lastTs}`).to.equal(true);
    expect(await spoolFoldersOf(child.child.pid)).to.deep.equal([]);
  });

  it('sink: a run killed by SIGKILL leaves its spool folder, and the next run removes it', async () => {
    const killed = new ChildCommand(['sink', '--from', '-', '--to', pathToFileURL(join(dir, 'sink-killed')).href, '--flush-interval', '100ms']);
    killed.child.stdin.write(eventLines);
    await killed.waitFor('stdout', /^wrote \S+\.csv: /m);
    killed.kill('SIGKILL');
    expect(await killed.exited).to.equal(137);
    const left = await spoolFoldersOf(killed.child.pid);
    expect(left).to.have.length(1);

    const input = join(dir, 'events.jsonl');
    await writeFile(input, eventLines);
    const next = new ChildCommand(['sink', '--from', input, '--to', pathToFileURL(join(dir, 'sink-next')).href]);
    next.child.stdin.end();
    expect(await next.exited, next.stderr).to.equal(0);
    expect(await spoolFoldersOf(killed.child.pid)).to.deep.equal([]);
    expect(await spoolFoldersOf(next.child.pid)).to.deep.equal([]);
  });

  it('sink: a run that fails (a malformed line) removes its spool folder too (a guard: the old name had no pid)', async () => {
    const child = new ChildCommand(['sink', '--from', '-', '--to', pathToFileURL(join(dir, 'sink-failed')).href]);
    child.child.stdin.end(`${eventLines}{"kind":\n`);
    expect(await child.exited, child.stderr).to.equal(1);
    expect(await spoolFoldersOf(child.child.pid)).to.deep.equal([]);
  });

  it('sink: stdout closed by its reader (| head -1) exits 141 quietly, its checkpoint covering the files written', async () => {
    const input = join(dir, 'many.jsonl');
    await writeFile(input, `${[...sampleChangeEvents(20_000)].map(formatChangeEventLine).join('\n')}\n`);
    const out = join(dir, 'sink-epipe');
    const child = new ChildCommand(['sink', '--from', input, '--to', pathToFileURL(out).href, '--file-size', '4KiB']);
    await child.waitFor('stdout', /\n/);
    child.child.stdout.destroy();
    expect(await child.exited, child.stderr).to.equal(141);
    expect(child.stderr).to.equal('');
    const checkpoint = JSON.parse(await readFile(join(out, 'metadata'), 'utf8'))['checkpoint-ts'] as number;
    expect(checkpoint).to.be.greaterThan(0);
    // Everything read is durable at the stop, so the greatest commit ts in the files is the greatest
    // read; a stopped input (not an ended one) keeps the checkpoint strictly below it.
    const greatestRead = await greatestCsvCommitTs(out);
    expect(BigInt(checkpoint) < greatestRead, `checkpoint ${checkpoint} < ${greatestRead}`).to.equal(true);
    expect(await spoolFoldersOf(child.child.pid)).to.deep.equal([]);
  });

  it('lines: SIGTERM with stdin still open writes the records read, prints the summary, exits 143; /metrics served while it runs', async () => {
    const out = join(dir, 'lines-sigterm');
    const child = new ChildCommand(['lines', '--to', pathToFileURL(out).href, '--db', 'x', '--metrics-port', '0', '--metrics-host', '127.0.0.1']);
    child.child.stdin.write(recordLines); // and kept open
    const [, url] = await child.waitFor('stderr', /metrics at (http:\/\/127\.0\.0\.1:\d+\/metrics)/);
    // The first batch is cut within the sink's maxDelayMs: scrape until it shows (the scrapes are the event).
    for (;;) {
      const scraped = await (await fetch(url!)).text();
      if (/^sluice_lines_points_written_total\{pipeline="lines"\} [1-9]/m.test(scraped)) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }

    child.kill('SIGTERM');
    expect(await child.exited, child.stderr).to.equal(143);
    expect(child.stderr).to.contain('sluice lines: SIGTERM: stopping').and.not.match(STACK);
    const summary = /^sluice lines: (\d+) points written/m.exec(child.stdout);
    expect(summary, child.stdout).to.not.equal(null);
    expect(Number(summary![1])).to.equal(RECORDS);
    expect(await linesIn(out, '.lp')).to.equal(RECORDS);
  });

  it('lines: a second SIGINT while the drain is stalled (a server that never answers) exits 130 at once with one line', async () => {
    const sockets = new Set<Socket>();
    let requested!: () => void;
    const firstRequest = new Promise<void>((resolve) => (requested = resolve));
    const server: Server = createServer(() => requested()); // never answers
    server.on('connection', (socket) => sockets.add(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const child = new ChildCommand(['lines', '--to', `http://127.0.0.1:${port}`, '--db', 'x']);
      child.child.stdin.write(recordLines);
      await Promise.race([firstRequest, child.exited.then(() => Promise.reject(new Error(`exited early: ${child.stderr}`)))]);
      child.kill('SIGINT');
      await child.waitFor('stderr', /SIGINT: stopping/);
      child.kill('SIGINT');
      expect(await child.exited, child.stderr).to.equal(130);
      expect(child.stderr).to.match(/^sluice lines: SIGINT again: exiting at once[^\n]*\n$/m).and.not.match(STACK);
      expect(child.stdout).to.not.contain('points written');
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('replay: SIGINT while polling prints the summary and exits 130; the checkpoint table and the rows agree (a rerun applies nothing)', async function () {
    const url = (await serviceOrSkip(this, 'mariadb', sharedMariaDb)).url;
    const db = await freshDatabase(url, 'job');
    const root = join(dir, 'cdc');
    const storage = new FileStorage(root);
    const table = def(db, 't', 100n);
    await putSchema(storage, ddl('CREATE TABLE', 'CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(64))', db, 't', 100n, table));
    await putDataFiles(storage, table, [[insert(table, 101n, { id: 1, name: 'a' })], [insert(table, 102n, { id: 2, name: 'b' })]]);
    await putMetadata(storage, 200n);
    await storage.close();
    const args = ['replay', '--from', pathToFileURL(root).href, '--to', url, '--include-commit-ts', '--checkpoint-database', db];

    const child = new ChildCommand([...args, '--interval', '100ms', '--metrics-port', '0']);
    const [, metricsUrl] = await child.waitFor('stderr', /metrics at (\S+)/);
    await child.waitFor('stdout', /^round 1: /m);
    expect(await (await fetch(metricsUrl!)).text()).to.match(/^sluice_replay_rows_applied_total\{pipeline="replay"\} 2$/m);
    child.kill('SIGINT');
    expect(await child.exited, child.stderr).to.equal(130);
    expect(child.stderr).to.contain('sluice replay: SIGINT: stopping').and.not.match(STACK);
    expect(child.stdout).to.match(/^sluice replay: 3 files, 2 rows in \d+ round\(s\)/m);

    const rerun = new ChildCommand([...args, '--once']);
    expect(await rerun.exited, rerun.stderr).to.equal(0);
    expect(rerun.stdout).to.match(/^sluice replay: 0 files, 0 rows in 1 round\(s\)/m);
    const pool = createPool(url);
    try {
      const [applied] = await pool.query(`SELECT id FROM \`${db}\`.t ORDER BY id`);
      expect(applied).to.deep.equal([{ id: 1 }, { id: 2 }]);
    } finally {
      await pool.end();
    }
  });
});

