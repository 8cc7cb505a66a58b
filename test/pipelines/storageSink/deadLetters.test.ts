/**
 * `sluice sink --bad-records dead-letter:<path>` and the rows the sink itself rejects (a NULL in a NOT
 * NULL column): the `metadata` checkpoint never passes a rejected row before its dead letter is on
 * disk, a dead letter that cannot be stored fails the run at once (exit 1 naming the file and the
 * cause), and a rerun on the same input skips what the checkpoint covers before checking it, so it
 * stores no dead letter twice.
 */
import { expect } from 'chai';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { PassThrough } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { formatChangeEventLine, type DdlEvent, type RowChange, type TableDef } from '../../../lib/codec/index.ts';
import { run, type SinkCommandIo } from '../../../pipelines/storageSink/cli.ts';

/** shop.items: id INT NOT NULL primary key, name VARCHAR (nullable). Version 100. */
const ITEMS: TableDef = {
  schema: 'shop',
  table: 'items',
  version: 100n,
  columns: [
    { name: 'id', type: 'INT', nullable: false, primaryKey: true },
    { name: 'name', type: 'VARCHAR' },
  ],
};
const DDL: DdlEvent = { kind: 'ddl', commitTs: 100n, query: 'CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(32))', ddlType: 'CREATE TABLE', schema: 'shop', table: 'items', tableDef: ITEMS, blockedDispatchers: 'all' };

/** Row `id` at commit ts 1000 + id on dispatcher d1; `bad` puts NULL in its NOT NULL id (the sink refuses it). */
function item(id: number, bad = false): RowChange {
  return { kind: 'row', op: 'insert', schema: 'shop', table: 'items', tableVersion: 100n, commitTs: BigInt(1000 + id), dispatcherId: 'd1', columns: { id: bad ? null : id, name: `n${id}` } as RowChange['columns'] };
}

/** The DDL on line 1, then rows 1..rows, those in `bad` with a NULL id. */
function input(rows: number, bad: number[]): string {
  const lines = [formatChangeEventLine(DDL)];
  for (let id = 1; id <= rows; id++) lines.push(formatChangeEventLine(item(id, bad.includes(id))));
  return `${lines.join('\n')}\n`;
}

function captured(stdin?: NodeJS.ReadableStream): SinkCommandIo & { out: () => string; err: () => string } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    ...(stdin === undefined ? {} : { stdin }),
    stdout: { write: (text: string) => out.push(text), isTTY: false },
    stderr: { write: (text: string) => err.push(text) },
    out: () => out.join(''),
    err: () => err.join(''),
  };
}

/** The ids of the rows in the csv data files (field 5: op, table, schema, commit ts, id, name). */
async function durableIds(dir: string): Promise<number[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const ids: number[] = [];
  for (const entry of entries.filter((e) => e.isFile() && e.name.endsWith('.csv'))) {
    const file = relative(dir, join(entry.parentPath, entry.name));
    for (const record of (await readFile(join(dir, file), 'utf8')).split('\r\n').filter(Boolean)) ids.push(Number(record.split(',')[4]));
  }
  return ids.sort((a, b) => a - b);
}

async function checkpointOf(dir: string): Promise<bigint> {
  return BigInt(/"checkpoint-ts":(\d+)/.exec(await readFile(join(dir, 'metadata'), 'utf8'))![1]!);
}

describe('sluice sink (cli): dead letters of rejected rows', () => {
  let dir: string;
  let eventsFile: string;
  let outDir: string;
  const args = (from: string) => ['--from', from, '--to', pathToFileURL(outDir).href, '--flush-interval', '100ms', '--file-size', '64KiB'];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-sink-dead-letters-'));
    eventsFile = join(dir, 'events.jsonl');
    outDir = join(dir, 'out');
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true, maxRetries: 20, retryDelay: 50 });
  });

  it('a dead letter that cannot be stored (/dev/full) exits 1 naming it, the checkpoint below the rejected row', async () => {
    // The rejected row is line 3 (row 2, commit ts 1002); thousands of good rows follow it.
    await writeFile(eventsFile, input(5000, [2]));
    const io = captured();
    expect(await run([...args(eventsFile), '--bad-records', 'dead-letter:/dev/full'], io)).to.equal(1);
    expect(io.err()).to.match(/^sluice sink: --bad-records dead-letter file \/dev\/full: cannot store .*events\.jsonl:3: ENOSPC/);
    expect(await durableIds(outDir)).to.include(1, 'what came before the rejected row is durable');
    const checkpoint = await checkpointOf(outDir);
    expect(checkpoint < item(2).commitTs, `checkpoint ${checkpoint} must stay below the rejected row's commit ts ${item(2).commitTs}`).to.equal(true);
  });

  it('a dead letter that cannot be stored fails the run at once, without waiting for the input to end', async () => {
    // stdin stays open: the run ends only because the store failed.
    const stdin = new PassThrough();
    stdin.write(input(3, [2]));
    const io = captured(stdin);
    expect(await run([...args('-'), '--bad-records', 'dead-letter:/dev/full'], io)).to.equal(1);
    expect(io.err()).to.match(/--bad-records dead-letter file \/dev\/full: cannot store stdin:3: ENOSPC/);
    const checkpoint = await checkpointOf(outDir);
    expect(checkpoint < item(2).commitTs, `checkpoint ${checkpoint} must stay below ${item(2).commitTs}`).to.equal(true);
    stdin.destroy();
  });

  it('a rerun on the same input stores each dead letter once: what the checkpoint covers is skipped before it is checked', async () => {
    const deadLetters = join(dir, 'bad.jsonl');
    // Rejected rows in the middle and on the last line (its commit ts is the greatest).
    const bad = [3, 7, 12];
    await writeFile(eventsFile, input(12, bad));
    const first = captured();
    expect(await run([...args(eventsFile), '--bad-records', `dead-letter:${deadLetters}`], first)).to.equal(0);
    expect(first.out().trimEnd().split('\n').at(-1)).to.include(`; 3 bad lines in the dead-letter file ${deadLetters}`);
    expect(await checkpointOf(outDir)).to.equal(item(12).commitTs, 'the checkpoint passes the rejected rows once their dead letters are stored');
    const stored = await readFile(deadLetters, 'utf8');
    expect(stored.trimEnd().split('\n').map((line) => (JSON.parse(line) as { line: number }).line)).to.deep.equal([4, 8, 13]);

    const rerun = captured();
    expect(await run([...args(eventsFile), '--bad-records', `dead-letter:${deadLetters}`], rerun)).to.equal(0);
    expect(rerun.out()).to.include(`skipped 13 events at or below the checkpoint ${item(12).commitTs}`);
    expect(rerun.out().trimEnd().split('\n').at(-1)).to.include('; 0 bad lines in the dead-letter file');
    expect(await readFile(deadLetters, 'utf8')).to.equal(stored, 'no dead letter stored again');
    expect(await durableIds(outDir)).to.deep.equal([1, 2, 4, 5, 6, 8, 9, 10, 11]);
  });
});
