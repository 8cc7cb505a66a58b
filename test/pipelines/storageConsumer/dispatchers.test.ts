/**
 * A table written by several dispatchers (storageSink `tableAcrossDispatchers`): each dispatcher's
 * rows in its own `CDC_{dispatcher}_{index}` files, so commit ts go back across the table's files
 * but never within one stream. The consumer must track each stream on its own (position and
 * duplicate skip), or it would skip rows of one dispatcher as older than another's.
 */
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createPool, type Pool } from 'mysql2/promise';
import { lastValueFrom, toArray } from 'rxjs';
import type { ChangeEvent, RowChange } from '../../../lib/codec/index.ts';
import { FileStorage } from '../../../lib/storage/fileStorage.ts';
import { storageConsumer } from '../../../pipelines/storageConsumer/storageConsumer.ts';
import type { ConsumerProgress } from '../../../pipelines/storageConsumer/progress.ts';
import { freshDatabase, sharedMariaDb } from '../../support/mariadb.ts';
import { serviceOrSkip } from '../../support/services.ts';
import { def, ddl } from './layout.ts';
import { random, sinkInto } from './workload.ts';

const BASE = BigInt(Date.UTC(2024, 4, 1, 12)) << 18n;
const DISPATCHERS = ['d1', 'd2', 'd3'];

/**
 * Rows of one table from 3 dispatchers, each owning the ids i with i % 3 == its number; each
 * dispatcher's commit ts rise, but they arrive interleaved with the later dispatchers lagging, so the
 * arrival order's commit ts go back again and again. Returns the events and the table they leave.
 */
function workload(schema: string, steps: number, seed: number, from = 0) {
  const table = def(schema, 't', BASE);
  const rnd = random(seed);
  const events: ChangeEvent[] = from === 0 ? [{ ...ddl('CREATE TABLE', 'CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(64))', schema, 't', BASE, table), blockedDispatchers: 'all' }] : [];
  const model = new Map<number, string>();
  const perDispatcher: RowChange[][] = DISPATCHERS.map(() => []);
  for (let step = from; step < from + steps; step++) {
    for (const [d, dispatcherId] of DISPATCHERS.entries()) {
      // Dispatcher d's step-th change commits at BASE + 10 * step + d: all three interleave in ts.
      const commitTs = BASE + 1000n + BigInt(10 * step + d);
      const id = 3 * Math.floor(rnd() * 20) + d;
      const roll = rnd();
      const op: RowChange['op'] = model.has(id) ? (roll < 0.3 ? 'delete' : 'update') : 'insert';
      const name = `${dispatcherId}-${step}-"x",\r\n`;
      perDispatcher[d]!.push({ kind: 'row', op, schema, table: 't', tableVersion: BASE, commitTs, dispatcherId, columns: { id, name } });
      if (op === 'delete') model.delete(id);
      else model.set(id, name);
    }
  }
  // Arrival: every dispatcher's first change at once (the sink refuses a dispatcher starting below
  // the others' commit ts: a checkpoint may already cover it), then d1 first, d2 five changes
  // behind, d3 ten behind (each dispatcher's own order kept).
  const lag = [0, 5, 10];
  for (let tick = 0; tick < steps + 10; tick++) {
    for (const d of DISPATCHERS.keys()) {
      const index = tick === 0 ? 0 : tick - lag[d]!;
      const row = tick === 0 || index >= 1 ? perDispatcher[d]![index] : undefined;
      if (row !== undefined) events.push(row);
    }
  }
  return { events, model };
}

describe('storageConsumer: a table across dispatchers (CDC_{dispatcher}_ files), end to end', function () {
  this.timeout(60_000);
  let url: string;
  let pool: Pool;
  let dir: string;

  before(async function () {
    this.timeout(40_000);
    url = (await serviceOrSkip(this, 'mariadb', sharedMariaDb)).url;
    pool = createPool({ uri: url, connectionLimit: 1, supportBigNumbers: true, bigNumberStrings: true });
    dir = await mkdtemp(join(tmpdir(), 'sluice-replay-dispatchers-'));
  });
  after(async () => {
    await pool?.end();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('replays rows of one table from 3 dispatchers whose commit ts interleave: each stream on its own, equal to the model, incrementally', async () => {
    const db = await freshDatabase(url, 'disp');
    const root = join(dir, 'cdc');
    const storage = new FileStorage(root);
    const replay = async () =>
      (await lastValueFrom(storageConsumer({ from: pathToFileURL(root).href, to: url, once: true, checkpointDatabase: db, csv: { includeCommitTs: true } }).pipe(toArray()))) as ConsumerProgress[];
    const table = async () => {
      const [rows] = await pool.query(`SELECT id, name FROM \`${db}\`.t ORDER BY id`);
      return new Map((rows as Array<{ id: number; name: string }>).map((r) => [r.id, r.name]));
    };
    // A second sink run knows the table from its definition (its DDL went out with the first).
    const sink = (events: ChangeEvent[]) =>
      sinkInto(storage, events, { tableAcrossDispatchers: true, csv: { includeCommitTs: true }, fileSizeBytes: 512, spool: { dir: join(dir, `spool-${events.length}`) }, tables: [def(db, 't', BASE)] });

    const first = workload(db, 60, 7);
    await sink(first.events);
    const keys: string[] = [];
    for await (const key of storage.list(`${db}/t/`)) keys.push(key);
    for (const d of DISPATCHERS) {
      expect(keys.filter((k) => k.includes(`/CDC_${d}_`)).length, `${d}'s data files`).to.be.greaterThan(1);
      expect(keys.some((k) => k.endsWith(`/meta/CDC_${d}.index`)), `${d}'s index file`).to.equal(true);
    }

    const progress = await replay();
    expect(await table()).to.deep.equal(first.model);
    const round = progress.find((p) => p.kind === 'round') as Extract<ConsumerProgress, { kind: 'round' }>;
    expect(round.rows).to.equal(60 * 3);
    // One checkpoint row per dispatcher stream, each at its own highest commit ts.
    const [streams] = await pool.query(`SELECT stream, commit_ts FROM \`${db}\`.replay_checkpoint WHERE stream <> '#ddl' ORDER BY stream`);
    expect((streams as Array<{ stream: string; commit_ts: string }>).map((s) => [s.stream, String(s.commit_ts)])).to.deep.equal(
      DISPATCHERS.map((d, i) => [`/${d}`, String(BASE + 1000n + BigInt(10 * 59 + i))]),
    );

    // More changes from each dispatcher (same ids, so updates and deletes of the first run's rows).
    const second = workload(db, 30, 8, 60);
    const expected = new Map(first.model);
    // Its own model starts empty (an id the first run left is inserted again: an upsert): fold its events over the first.
    for (const event of second.events) {
      if (event.kind !== 'row') continue;
      if (event.op === 'delete') expected.delete(event.columns.id as number);
      else expected.set(event.columns.id as number, event.columns.name as string);
    }
    await sink(second.events);
    const again = await replay();
    expect(await table()).to.deep.equal(expected);
    expect(again.filter((p) => p.kind === 'data').length).to.be.greaterThan(0);
    // Nothing new: nothing applied.
    const third = await replay();
    expect(third.filter((p) => p.kind !== 'round')).to.deep.equal([]);
  });
});
