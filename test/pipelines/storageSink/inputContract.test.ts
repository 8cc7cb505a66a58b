/**
 * The sink's input contract (issue 14 review): events carry no resolved ts, so a checkpoint is safe
 * only if no event at or below it comes later. The sink refuses an event at or below a checkpoint
 * its run has written, naming its line; an input that keeps each dispatcher in commit order and
 * starts none below a written checkpoint makes a stop's checkpoint as safe as any periodic one, and
 * a rerun loses nothing. (A run stopped before it read an event of a dispatcher it never saw cannot
 * know it: README, storage sink, Resume.) */
import { expect } from 'chai';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { formatChangeEventLine, type ChangeEvent, type DdlEvent, type RowChange, type TableDef } from '../../../lib/codec/index.ts';
import { EventAdmission } from '../../../pipelines/storageSink/eventAdmission.ts';
import { MetadataCheckpoint } from '../../../pipelines/storageSink/metadataCheckpoint.ts';
import { run, type SinkCommandIo } from '../../../pipelines/storageSink/cli.ts';

const ITEMS: TableDef = {
  schema: 'shop',
  table: 'items',
  version: 10n,
  columns: [
    { name: 'id', type: 'INT', nullable: false, primaryKey: true },
    { name: 'name', type: 'VARCHAR' },
  ],
};
const DDL: DdlEvent = { kind: 'ddl', commitTs: 10n, query: 'CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(32))', ddlType: 'CREATE TABLE', schema: 'shop', table: 'items', tableDef: ITEMS, blockedDispatchers: 'all' };

function item(id: number, dispatcherId: string, commitTs: bigint): RowChange {
  return { kind: 'row', op: 'insert', schema: 'shop', table: 'items', tableVersion: 10n, commitTs, dispatcherId, columns: { id, name: `n${id}` } };
}

function captured(): SinkCommandIo & { out: () => string; err: () => string } {
  const out: string[] = [];
  const err: string[] = [];
  return {
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
  for (const file of entries.filter((e) => e.isFile() && e.name.endsWith('.csv'))) {
    const text = await readFile(join(relative(process.cwd(), file.parentPath), file.name), 'utf8');
    for (const record of text.split('\r\n').filter(Boolean)) ids.push(Number(record.split(',')[4]));
  }
  return ids.sort((a, b) => a - b);
}

async function checkpointOf(dir: string): Promise<string> {
  return readFile(join(dir, 'metadata'), 'utf8').catch(() => 'none');
}

describe('sluice sink: the input contract (every event after the checkpoints written before it)', () => {
  let dir: string;
  let eventsFile: string;
  let outDir: string;
  const args = () => ['--from', eventsFile, '--to', pathToFileURL(outDir).href, '--flush-interval', '100ms', '--table-across-dispatchers'];
  const write = (lines: string[]) => writeFile(eventsFile, `${lines.join('\n')}\n`);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-sink-contract-'));
    eventsFile = join(dir, 'events.jsonl');
    outDir = join(dir, 'out');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true, maxRetries: 20, retryDelay: 50 });
  });

  it('an input that keeps the contract (B starts with A, then falls behind): the stop checkpoint stays below B, and the fixed rerun loses nothing', async () => {
    const lines = [formatChangeEventLine(DDL), formatChangeEventLine(item(1, 'A', 100n)), formatChangeEventLine(item(2, 'B', 100n)), formatChangeEventLine(item(3, 'A', 300n))];
    await write([...lines, 'not json', formatChangeEventLine(item(6, 'B', 150n))]);
    expect(await run(args(), captured())).to.equal(1);
    expect(await checkpointOf(outDir)).to.equal('{"checkpoint-ts":99}');

    await write([...lines, formatChangeEventLine(item(5, 'A', 300n)), formatChangeEventLine(item(6, 'B', 150n))]);
    const rerun = captured();
    expect(await run(args(), rerun)).to.equal(0, rerun.err());
    expect([...new Set(await durableIds(outDir))]).to.deep.equal([1, 2, 3, 5, 6]);
    expect(await checkpointOf(outDir)).to.equal('{"checkpoint-ts":300}');
  });

  it('a resumed run: a dispatcher only skipped so far holds the stop checkpoint at the one resumed from, so its later rows are not lost', async () => {
    await mkdir(outDir, { recursive: true });
    await writeFile(join(outDir, 'metadata'), '{"checkpoint-ts":299}');
    // B@100 is skipped (at or below 299); A@400 is written; the stop must not checkpoint A's 399 over B.
    const lines = [formatChangeEventLine(DDL), formatChangeEventLine(item(1, 'B', 100n)), formatChangeEventLine(item(2, 'A', 400n))];
    await write([...lines, 'not json', formatChangeEventLine(item(5, 'B', 350n))]);
    const first = captured();
    expect(await run(args(), first)).to.equal(1, first.err());
    expect(await checkpointOf(outDir)).to.equal('{"checkpoint-ts":299}');

    await write([...lines, formatChangeEventLine(item(4, 'A', 400n)), formatChangeEventLine(item(5, 'B', 350n))]);
    const rerun = captured();
    expect(await run(args(), rerun)).to.equal(0, rerun.err());
    expect([...new Set(await durableIds(outDir))]).to.deep.equal([2, 4, 5], 'B@350 written, not skipped');
    expect(await checkpointOf(outDir)).to.equal('{"checkpoint-ts":400}');
  });
});

describe('EventAdmission: the checkpoints written', () => {
  const where = (_event: ChangeEvent, index: number) => `line ${index}`;

  it('refuses an event at or below a checkpoint this run has written: a rerun resuming from it would skip the event', () => {
    let written: bigint | undefined;
    const admission = new EventAdmission(where, () => written);
    admission.register(ITEMS);
    expect(admission.check(item(1, 'A', 100n), 1)).to.equal(undefined);
    written = 299n;
    expect(admission.check(item(2, 'B', 299n), 2)?.message).to.equal(
      "invalid change event at line 2 (row insert shop.items commitTs 299): commit ts 299 of dispatcher B is at or below the checkpoint 299 already written: every event must come after the checkpoints written before it (each dispatcher in commit order, and no dispatcher starting below a checkpoint already written)",
    );
    expect(admission.check(item(3, 'B', 300n), 3)).to.equal(undefined);
  });

  it('MetadataCheckpoint.claimed: the greatest checkpoint begun in this run, set before its write lands; not the one found', async () => {
    let release!: () => void;
    const landed = new Promise<void>((resolve) => (release = resolve));
    const checkpoint = new MetadataCheckpoint(() => landed);
    checkpoint.found(100n);
    expect(checkpoint.claimed).to.equal(undefined);
    const writing = checkpoint.advance(() => 299n);
    await Promise.resolve();
    await Promise.resolve();
    expect(checkpoint.claimed).to.equal(299n, 'claimed while the write is on its way');
    release();
    expect(await writing).to.equal(299n);
    expect(checkpoint.claimed).to.equal(299n);
  });
});
