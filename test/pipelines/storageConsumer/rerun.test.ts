/**
 * Issue 13 item 6, end to end: `sluice sink` SIGKILLed mid-run, replayed into MariaDB, rerun on the
 * same input to completion, replayed again. After each replay no MySQL row is at an older version
 * than the replay before saw, and at the end MySQL equals the model; the rerun writes no event at
 * or below the checkpoint the killed run left (it resumes from it) and says how many it skipped.
 *
 * The kill is driven by events, never by time: the killed sink reads its input from a pipe the test
 * feeds, so it cannot finish; it is killed once its `metadata` checkpoint exists and a data file was
 * written after it.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createPool, type Pool } from 'mysql2/promise';
import { lastValueFrom, tap, toArray } from 'rxjs';
import { formatChangeEventLine, type ChangeEvent, type ColumnDef, type ColumnValue, type DdlEvent, type TableDef } from '../../../lib/codec/index.ts';
import { run as runSink } from '../../../pipelines/storageSink/cli.ts';
import { storageConsumer } from '../../../pipelines/storageConsumer/storageConsumer.ts';
import { freshDatabase, sharedMariaDb } from '../../support/mariadb.ts';
import { serviceOrSkip } from '../../support/services.ts';

const SLUICE = fileURLToPath(new URL('../../../bin/sluice.js', import.meta.url));
const KEYS = 12;
const TABLES = ['t0', 't1'];

/** Physical ms 2024-05-01T23:59:50Z: the commit ts cross midnight (a new date folder) mid-stream. */
const BASE_MS = Date.UTC(2024, 4, 1, 23, 59, 50);

interface RerunWorkload {
  schema: string;
  events: ChangeEvent[];
  /** table -> id -> row: the state after every event. */
  model: Map<string, Map<number, Record<string, ColumnValue>>>;
}

/**
 * Many updates to few keys (an older version applied again would show), two tables on two
 * dispatchers, two keys per transaction now and then (rows sharing a commit ts), a column added
 * mid-stream: every update sets `v` to its step, so a row's `v` only grows.
 */
function rerunWorkload(schema: string, updates: number): RerunWorkload {
  const events: ChangeEvent[] = [];
  const model = new Map<string, Map<number, Record<string, ColumnValue>>>();
  const columns = new Map<string, ColumnDef[]>();
  const versions = new Map<string, bigint>();
  let step = 0;
  const nextTs = () => BigInt(BASE_MS + 7 * ++step) << 18n;
  const ddl = (commitTs: bigint, ddlType: string, query: string, table?: string, tableDef?: TableDef, blocked: string[] | 'all' = 'all'): DdlEvent => ({
    kind: 'ddl',
    commitTs,
    query,
    ddlType,
    schema,
    ...(table === undefined ? {} : { table }),
    ...(tableDef === undefined ? {} : { tableDef }),
    blockedDispatchers: blocked,
  });
  events.push(ddl(nextTs(), 'CREATE SCHEMA', `CREATE DATABASE ${schema}`));
  const base: ColumnDef[] = [
    { name: 'id', type: 'INT', primaryKey: true, nullable: false },
    { name: 'v', type: 'BIGINT' },
    { name: 'note', type: 'VARCHAR', precision: 64 },
  ];
  for (const table of TABLES) {
    const ts = nextTs();
    events.push(ddl(ts, 'CREATE TABLE', `CREATE TABLE ${table} (id INT NOT NULL PRIMARY KEY, v BIGINT, note VARCHAR(64))`, table, { schema, table, version: ts, columns: base }, [`d-${table}`]));
    model.set(table, new Map());
    columns.set(table, base);
    versions.set(table, ts);
  }
  const change = (table: string, id: number, commitTs: bigint, v: number) => {
    const rows = model.get(table)!;
    const before = rows.get(id);
    const after: Record<string, ColumnValue> = { id, v, note: `${table} key ${id} at step ${v}` };
    if (columns.get(table)!.some((column) => column.name === 'extra')) after.extra = v % 3 === 0 ? null : `x${v}`;
    const common = { kind: 'row' as const, schema, table, tableVersion: versions.get(table)!, commitTs, dispatcherId: `d-${table}` };
    events.push(before === undefined ? { ...common, op: 'insert', columns: after } : { ...common, op: 'update', columns: after, oldColumns: { ...before } });
    rows.set(id, { ...after });
  };
  for (let i = 0; i < updates; i++) {
    const table = TABLES[i % 2]!;
    if (i === Math.floor(updates * 0.4)) {
      const ts = nextTs();
      const next = [...columns.get(table)!, { name: 'extra', type: 'VARCHAR', precision: 16 }];
      events.push(ddl(ts, 'ADD COLUMN', `ALTER TABLE ${table} ADD COLUMN extra VARCHAR(16)`, table, { schema, table, version: ts, columns: next }, [`d-${table}`]));
      for (const row of model.get(table)!.values()) row.extra = null;
      columns.set(table, next);
      versions.set(table, ts);
    }
    const ts = nextTs();
    const id = 1 + ((i * 7) % KEYS);
    change(table, id, ts, step);
    // A transaction of two keys now and then: both rows at one commit ts.
    if (i % 5 === 0) change(table, 1 + ((id + 3) % KEYS), ts, step);
  }
  return { schema, events, model };
}

/** Rows of `tables` in MariaDB: table -> id -> row, values as text (null stays null). */
async function snapshot(pool: Pool, schema: string): Promise<Snapshot> {
  const out = new Map<string, Map<number, Record<string, unknown>>>();
  const [found] = await pool.query('SELECT TABLE_NAME t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?', [schema]);
  for (const { t } of found as Array<{ t: string }>) {
    const [rows] = await pool.query(`SELECT * FROM \`${schema}\`.\`${t}\``);
    const table = new Map<number, Record<string, unknown>>();
    for (const row of rows as Array<Record<string, unknown>>) {
      table.set(Number(row.id), Object.fromEntries(Object.entries(row).map(([key, value]) => [key, value === null ? null : String(value)])));
    }
    out.set(t, table);
  }
  return out;
}

function modelAsText(workload: RerunWorkload): Snapshot {
  const out = new Map<string, Map<number, Record<string, unknown>>>();
  for (const [table, rows] of workload.model) {
    out.set(table, new Map([...rows].map(([id, row]) => [id, Object.fromEntries(Object.entries(row).map(([key, value]) => [key, value === null ? null : String(value)]))])));
  }
  return out;
}

type Snapshot = Map<string, Map<number, Record<string, unknown>>>;

/** Rows of `before` that `now` has at an older version or not at all (the workload deletes nothing). */
function rowsWentBack(before: Snapshot, now: Snapshot, when: string): string[] {
  const problems: string[] = [];
  for (const [table, rows] of before) {
    for (const [id, row] of rows) {
      const current = now.get(table)?.get(id);
      if (current === undefined) problems.push(`${when}: ${table} key ${id} is gone`);
      else if (Number(current.v) < Number(row.v)) problems.push(`${when}: ${table} key ${id} went back from version ${String(row.v)} to ${String(current.v)}`);
    }
  }
  return problems;
}

/** Data files (not schema or index files) under `dir`, relative to it. */
async function dataFiles(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() && /^CDC.*\.(csv|json)$/.test(entry.name) && !entry.parentPath.endsWith('/meta'))
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
    .sort();
}

/** Records in a data file: one line each (no value of this workload holds a line break). */
const recordsIn = async (path: string) => (await readFile(path, 'utf8')).split('\n').filter((line) => line.trim() !== '').length;

/** Polls `condition` every 20 ms: the child writes files in its own time (never a fixed sleep). */
async function waitFor(condition: () => Promise<boolean> | boolean, what: string, timeoutMs: number, alive: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    const died = alive();
    if (died !== undefined) throw new Error(`waiting for ${what}: ${died}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The sink's checkpoint, exactly (as text: a commit ts does not fit a double). */
const readCheckpoint = async (dir: string): Promise<bigint> => BigInt(/^\{"checkpoint-ts":(\d+)\}$/.exec(await readFile(join(dir, 'metadata'), 'utf8'))![1]!);

describe('storage sink rerun after SIGKILL, replayed into MariaDB (issue 13 item 6)', function () {
  this.timeout(180_000);
  let url: string;
  let pool: Pool;
  let dir: string;

  before(async function () {
    this.timeout(40_000);
    url = (await serviceOrSkip(this, 'mariadb', sharedMariaDb)).url;
    pool = createPool({ uri: url, supportBigNumbers: true, bigNumberStrings: true, connectionLimit: 2 });
    dir = await mkdtemp(join(tmpdir(), 'sluice-rerun-'));
  });
  after(async () => {
    await pool?.end();
    if (dir) await rm(dir, { recursive: true, force: true, maxRetries: 20, retryDelay: 50 });
  });

  for (const protocol of ['csv', 'canal-json'] as const) {
    it(`${protocol} (default settings): no row goes back after any replay, the rerun writes nothing at or below the checkpoint, MySQL ends equal to the model`, async () => {
      const db = await freshDatabase(url, `rerun_${protocol === 'csv' ? 'csv' : 'json'}`);
      const workload = rerunWorkload(`${db}_r`, 3000);
      const root = join(dir, protocol);
      const out = join(root, 'out');
      const uri = pathToFileURL(out).href;
      const eventsFile = join(root, 'events.jsonl');
      const lines = workload.events.map((event) => `${formatChangeEventLine(event)}\n`);
      await mkdir(root, { recursive: true });
      await writeFile(eventsFile, lines.join(''));
      const sinkFlags = ['--to', uri, '--protocol', protocol, '--flush-interval', '100ms', '--file-size', '2KiB'];
      /**
       * One replay round; MySQL is read after each data file applied (while the next ones apply) and
       * at the end, and no read may show a row older than the read before it, from `previous` on.
       */
      const replay = async (previous: Snapshot, when: string): Promise<Snapshot> => {
        const problems: string[] = [];
        let last = previous;
        let reading: Promise<void> | undefined;
        const read = async () => {
          const now = await snapshot(pool, workload.schema);
          problems.push(...rowsWentBack(last, now, when));
          last = now;
        };
        await lastValueFrom(
          storageConsumer({ from: uri, to: url, once: true, checkpointDatabase: db }).pipe(
            tap((progress) => {
              if (progress.kind === 'data' && reading === undefined) reading = read().finally(() => (reading = undefined));
            }),
            toArray(),
          ),
        );
        await reading;
        await read();
        expect(problems.slice(0, 5)).to.deep.equal([]);
        return last;
      };

      // 1. `sluice sink` in a process of its own, reading a pipe: it cannot finish before the kill.
      const child = spawn(process.execPath, [SLUICE, 'sink', '--from', '-', ...sinkFlags], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.stdout.resume();
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
      const alive = () => (child.exitCode === null && child.signalCode === null ? undefined : `the sink exited early (${child.exitCode ?? child.signalCode}): ${stderr}`);
      child.stdin.on('error', () => undefined); // the kill closes the pipe under a pending write
      const fed = Math.floor(lines.length * 0.5);
      child.stdin.write(lines.slice(0, fed).join(''));
      await waitFor(() => existsSync(join(out, 'metadata')), 'the killed sink to write its metadata checkpoint', 90_000, alive);
      const before = new Set(await dataFiles(out));
      // More input, and a data file written after the checkpoint: rows above it are in files too.
      child.stdin.write(lines.slice(fed, Math.floor(lines.length * 0.7)).join(''));
      await waitFor(async () => (await dataFiles(out)).some((file) => !before.has(file)), 'a data file written after the checkpoint', 90_000, alive);
      child.kill('SIGKILL');
      expect(await exited, `the sink was killed mid-run: ${stderr}`).to.equal('SIGKILL');
      const killedAt = await readCheckpoint(out);
      const atOrBelow = workload.events.filter((event) => event.commitTs <= killedAt);
      expect(atOrBelow.length).to.be.within(1, lines.length - 1, 'the kill came mid-run');

      // 2. Replay what the killed run made durable.
      const first = await replay(new Map(), 'the first replay');
      expect([...first.values()].reduce((sum, rows) => sum + rows.size, 0)).to.be.greaterThan(0, 'the first replay applied rows');

      // 3. Rerun on the same input, to the end: it resumes from the checkpoint the kill left.
      const existing = new Set(await dataFiles(out));
      const output: string[] = [];
      const io = { stdout: { write: (text: string) => output.push(text) }, stderr: { write: (text: string) => output.push(text) } };
      expect(await runSink(['--from', eventsFile, ...sinkFlags], io), output.join('')).to.equal(0);
      expect(output.join('')).to.include(`skipped ${atOrBelow.length} events at or below the checkpoint ${killedAt} (already durable)`);
      let rewritten = 0;
      for (const file of (await dataFiles(out)).filter((name) => !existing.has(name))) rewritten += await recordsIn(join(out, file));
      const above = workload.events.filter((event) => event.kind === 'row' && event.commitTs > killedAt).length;
      expect(rewritten).to.equal(above, 'the rerun wrote exactly the rows above the checkpoint, none at or below it');
      expect(await readCheckpoint(out)).to.equal(workload.events.at(-1)!.commitTs);

      // 4. Replay again: nothing went back, and the end state is the model's.
      const second = await replay(first, 'the replay after the rerun');
      expect(second).to.deep.equal(modelAsText(workload));
    });
  }
});
