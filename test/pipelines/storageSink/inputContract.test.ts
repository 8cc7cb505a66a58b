/**
 * The sink's input contract (issue 14 review): events carry no resolved ts, so a checkpoint is safe
 * only if no event at or below it comes later. The sink refuses an event below the least of the
 * dispatchers' last commit ts (a checkpoint that covers it may already be written), naming its line,
 * so a stop's checkpoint is as safe as any periodic one and a rerun loses nothing or says why.
 */
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

  const A = [item(1, 'A', 100n), item(2, 'A', 200n), item(3, 'A', 300n)];

  it("the reviewer's input: stops at line 5 with checkpoint 299; the fixed rerun refuses B@150 on line 6 instead of skipping it", async () => {
    await write([formatChangeEventLine(DDL), ...A.map(formatChangeEventLine), 'not json', formatChangeEventLine(item(6, 'B', 150n))]);
    const first = captured();
    expect(await run(args(), first)).to.equal(1, first.err() + first.out());
    expect(first.err()).to.match(/^sluice sink: .*line 5\b/).and.match(/malformed JSON/);
    expect(await checkpointOf(outDir)).to.equal('{"checkpoint-ts":299}');
    expect(await durableIds(outDir)).to.deep.equal([1, 2, 3]);

    // Line 5 fixed (one more row of A's transaction at 300): B@150 would be skipped as covered by 299.
    await write([formatChangeEventLine(DDL), ...A.map(formatChangeEventLine), formatChangeEventLine(item(5, 'A', 300n)), formatChangeEventLine(item(6, 'B', 150n))]);
    const rerun = captured();
    expect(await run(args(), rerun)).to.equal(1, rerun.err() + rerun.out());
    expect(rerun.err()).to.match(/^sluice sink: invalid change event at line 6 .*commit ts 150 of dispatcher B is at or below the checkpoint 299 the sink may already have written/);
    expect(rerun.err()).to.include("every event must come after the checkpoints written before it (each dispatcher in commit order, and no dispatcher starting below the others' checkpoint)");
    // What came before line 6 is durable (A's 300 again: the checkpoint 299 left its transaction open).
    expect([...new Set(await durableIds(outDir))]).to.deep.equal([1, 2, 3, 5], 'nothing was skipped silently');
    expect(await checkpointOf(outDir)).to.equal('{"checkpoint-ts":299}');
  });

  it('refuses B@150 after A@300 in the first run too, whether or not a checkpoint was written yet (the input alone decides)', async () => {
    await write([formatChangeEventLine(DDL), ...A.map(formatChangeEventLine), formatChangeEventLine(item(6, 'B', 150n)), formatChangeEventLine(item(7, 'A', 400n))]);
    const io = captured();
    expect(await run(args(), io)).to.equal(1);
    expect(io.err()).to.match(/^sluice sink: invalid change event at line 5 .*commit ts 150 of dispatcher B is at or below the checkpoint 299/);
    expect(await durableIds(outDir)).to.deep.equal([1, 2, 3]);
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

describe('EventAdmission: the commit-ts floor and the checkpoints written', () => {
  const where = (_event: ChangeEvent, index: number) => `line ${index}`;

  it('refuses a new dispatcher below the least last commit ts, and a DDL below it; a refused event moves nothing', () => {
    const admission = new EventAdmission(where);
    admission.register(ITEMS);
    expect(admission.check(item(1, 'A', 100n), 1)).to.equal(undefined);
    expect(admission.check(item(2, 'B', 100n), 2)).to.equal(undefined, 'at the floor: after any checkpoint (floor − 1) written');
    expect(admission.check(item(3, 'A', 300n), 3)).to.equal(undefined);
    expect(admission.check(item(4, 'C', 99n), 4)?.message).to.match(/at line 4 .*commit ts 99 of dispatcher C is at or below the checkpoint 99 the sink may already have written \(dispatcher B is at 100/);
    expect(admission.check({ ...DDL, commitTs: 50n, tableDef: { ...ITEMS, version: 50n } }, 5)?.message).to.match(/commit ts 50 of the DDL is at or below the checkpoint 99/);
    // B, the one at the floor, moves up: the floor is A's 300 now.
    expect(admission.check(item(6, 'B', 400n), 6)).to.equal(undefined);
    expect(admission.check(item(7, 'C', 299n), 7)?.message).to.match(/commit ts 299 of dispatcher C is at or below the checkpoint 299 .*dispatcher A is at 300/);
    // A dispatcher going back below its own last one keeps its own message.
    expect(admission.check(item(8, 'A', 250n), 8)?.message).to.match(/commitTs 250 goes back below 300, the last commit ts of dispatcher A/);
    expect(admission.check(item(9, 'C', 300n), 9)).to.equal(undefined, 'C refused before: it starts now, at the floor');
  });

  it('refuses an event at or below a checkpoint this run has written (what the floor cannot see: dispatchers skipped on resume)', () => {
    let written: bigint | undefined;
    const admission = new EventAdmission(where, () => written);
    admission.register(ITEMS);
    expect(admission.check(item(1, 'A', 100n), 1)).to.equal(undefined);
    written = 299n;
    expect(admission.check(item(2, 'B', 299n), 2)?.message).to.equal(
      "invalid change event at line 2 (row insert shop.items commitTs 299): commit ts 299 of dispatcher B is at or below the checkpoint 299 already written: every event must come after the checkpoints written before it (each dispatcher in commit order, and no dispatcher starting below the others' checkpoint)",
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
