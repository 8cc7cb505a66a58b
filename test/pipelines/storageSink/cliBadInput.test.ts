import { expect } from 'chai';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { formatChangeEventLine, parseChangeEventLine, type DdlEvent, type RowChange, type TableDef } from '../../../lib/codec/index.ts';
import { run, SINK_USAGE, type SinkCommandIo } from '../../../pipelines/storageSink/cli.ts';
import { ChildCommand } from '../../cli/childCommand.ts';

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

/** Row `id` at commit ts 1000 + id on dispatcher d1 (commit ts grows with the line). */
function item(id: number, columns: Record<string, unknown> = { id, name: `n${id}` }): RowChange {
  return { kind: 'row', op: 'insert', schema: 'shop', table: 'items', tableVersion: 100n, commitTs: BigInt(1000 + id), dispatcherId: 'd1', columns: columns as RowChange['columns'] };
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

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name))).sort();
}

/** The ids of the rows in the csv data files (field 5: op, table, schema, commit ts, id, name). */
async function durableIds(dir: string): Promise<number[]> {
  const ids: number[] = [];
  for (const file of (await filesUnder(dir)).filter((f) => f.endsWith('.csv'))) {
    for (const record of (await readFile(join(dir, file), 'utf8')).split('\r\n').filter(Boolean)) ids.push(Number(record.split(',')[4]));
  }
  return ids.sort((a, b) => a - b);
}

async function checkpointOf(dir: string): Promise<bigint> {
  return BigInt(/"checkpoint-ts":(\d+)/.exec(await readFile(join(dir, 'metadata'), 'utf8'))![1]!);
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('sluice sink (cli): bad input', () => {
  let dir: string;
  let eventsFile: string;
  let outDir: string;
  let outUri: string;
  const args = () => ['--from', eventsFile, '--to', outUri, '--flush-interval', '100ms', '--file-size', '64KiB'];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-sink-bad-input-'));
    eventsFile = join(dir, 'events.jsonl');
    outDir = join(dir, 'out');
    outUri = pathToFileURL(outDir).href;
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true, maxRetries: 20, retryDelay: 50 });
  });

  /** The DDL on line 1, rows 1..rows on lines 2.., with `bad` in place of row `badId`'s line. */
  async function writeInput(rows: number, badId: number, bad: string): Promise<number> {
    const lines = [formatChangeEventLine(DDL)];
    for (const id of range(1, rows)) lines.push(id === badId ? bad : formatChangeEventLine(item(id)));
    await writeFile(eventsFile, `${lines.join('\n')}\n`);
    return badId + 1;
  }

  describe('a bad line in the middle keeps everything before it durable and checkpointed, then exits 1 naming the line', () => {
    const ROWS = 20_000;
    const BAD = 10_000;

    for (const [what, bad, message] of [
      ['bad JSON', '{"kind":"row",', /malformed JSON/],
      ['NULL in a NOT NULL column (refused by replay before issue 14)', formatChangeEventLine(item(BAD, { id: null, name: 'x' })), /columns\.id: NULL in a NOT NULL column \(INT\)/],
    ] as const) {
      it(`${what}, on line ${BAD + 1} of ${ROWS + 1}`, async () => {
        const badLine = await writeInput(ROWS, BAD, bad);
        const io = captured();
        expect(await run(args(), io)).to.equal(1);

        expect(io.err()).to.match(new RegExp(`^sluice sink: .*line ${badLine}\\b`));
        expect(io.err()).to.match(message);
        expect(io.err()).to.include('hint: every event before it is durable and checkpointed');
        expect(io.out().trimEnd().split('\n').at(-1)).to.match(new RegExp(`^sluice sink: .*, ${BAD - 1} rows, .*checkpoint ${item(BAD - 1).commitTs - 1n}, `), 'the summary of what stands');
        expect(await durableIds(outDir)).to.deep.equal(range(1, BAD - 1), 'every row before the bad line, once, and none after');
        // The checkpoint covers every row before the bad line but the last commit ts, whose
        // transaction may go on after it (a rerun writes that commit ts again).
        expect(await checkpointOf(outDir)).to.equal(item(BAD - 1).commitTs - 1n);

        // Fixed, a rerun resumes after the checkpoint and ends with every row.
        await writeInput(ROWS, 0, '');
        const rerun = captured();
        expect(await run(args(), rerun)).to.equal(0);
        expect(rerun.out()).to.include(`skipped ${BAD - 1} events at or below the checkpoint ${item(BAD - 1).commitTs - 1n}`);
        expect([...new Set(await durableIds(outDir))]).to.deep.equal(range(1, ROWS));
        expect(await checkpointOf(outDir)).to.equal(item(ROWS).commitTs);
      });
    }
  });

  it('names the line and the problem for each kind of bad row, keeping what came before', async () => {
    const cases: [string, string, RegExp][] = [
      ['unknown key', formatChangeEventLine(item(50)).replace('"op"', '"extra":1,"op"'), /unknown key "extra"; a row event takes kind, op, schema, table, tableVersion, commitTs, dispatcherId, columns, oldColumns/],
      ['wrong column type', formatChangeEventLine(item(50, { id: 'fifty', name: 'x' })), /columns\.id: INT takes an integer, got "fifty"/],
      ['missing column', formatChangeEventLine(item(50, { id: 50 })), /columns: the columns of shop\.items at table version 100 are id, name; missing name/],
      ['extra column', formatChangeEventLine(item(50, { id: 50, name: 'x', color: 'red' })), /not in the table: color/],
      ['a row before its DDL', formatChangeEventLine({ ...item(50), table: 'other' }), /a row before its table's DDL: .*no definition of shop\.other at table version 100/],
      ['commit ts going back', formatChangeEventLine({ ...item(50), commitTs: 1010n }), /commitTs 1010 goes back below 1049, the last commit ts of dispatcher d1/],
    ];
    for (const [what, bad, message] of cases) {
      await rm(outDir, { recursive: true, force: true });
      const badLine = await writeInput(100, 50, bad);
      const io = captured();
      expect(await run(args(), io), what).to.equal(1);
      expect(io.err(), what).to.match(new RegExp(`line ${badLine}\\b`));
      expect(io.err(), what).to.match(message);
      expect(await durableIds(outDir), what).to.deep.equal(range(1, 49));
      expect(await checkpointOf(outDir), what).to.equal(item(49).commitTs - 1n);
    }
  });

  it('escapes control characters of the line it echoes', async () => {
    // ESC (JSON.stringify escapes it) and CSI, a C1 control character (JSON leaves it raw).
    await writeInput(3, 2, formatChangeEventLine(item(2)).replace('"op"', '"\\u001b[31m\\u009b2Jred":1,"op"'));
    const io = captured();
    expect(await run(args(), io)).to.equal(1);
    expect(io.err()).to.include('unknown key "\\u001b[31m\\x9b2Jred"');
    expect(io.err()).to.not.match(/[\x1b\x9b]/);
  });

  it('--bad-records skip drops bad lines and bad rows, counts them in the summary, and exits 0', async () => {
    const lines = [formatChangeEventLine(DDL), ...range(1, 10).map((id) => formatChangeEventLine(item(id)))];
    lines.splice(3, 0, 'not json'); // line 4
    lines.splice(6, 0, formatChangeEventLine(item(99, { id: null, name: 'x' }))); // line 7: refused by the sink
    await writeFile(eventsFile, `${lines.join('\n')}\n`);
    const io = captured();
    expect(await run([...args(), '--bad-records', 'skip'], io)).to.equal(0);
    expect(io.err()).to.equal('');
    expect(io.out().trimEnd().split('\n').at(-1)).to.match(/; 2 bad lines skipped$/);
    expect(await durableIds(outDir)).to.deep.equal(range(1, 10));
    expect(await checkpointOf(outDir)).to.equal(item(10).commitTs);
  });

  it('--bad-records dead-letter:<path> stores each bad line with its number and error before reporting success', async () => {
    const deadLetters = join(dir, 'bad.jsonl');
    const nullRow = formatChangeEventLine(item(99, { id: null, name: 'x' }));
    const lines = [formatChangeEventLine(DDL), ...range(1, 10).map((id) => formatChangeEventLine(item(id)))];
    lines.splice(3, 0, 'not json'); // line 4
    lines.splice(6, 0, nullRow); // line 7
    await writeFile(eventsFile, `${lines.join('\n')}\n`);
    const io = captured();
    expect(await run([...args(), '--bad-records', `dead-letter:${deadLetters}`], io)).to.equal(0);
    expect(io.out().trimEnd().split('\n').at(-1)).to.include(`; 2 bad lines in the dead-letter file ${deadLetters}`);
    const stored = (await readFile(deadLetters, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(stored.map((s) => [s.source, s.line, s.text])).to.deep.equal([
      [eventsFile, 4, 'not json'],
      [eventsFile, 7, nullRow],
    ]);
    expect(stored[0]!.error).to.match(/^line 4: malformed JSON/);
    expect(stored[1]!.error).to.match(/at line 7 .*NULL in a NOT NULL column/);
    expect(await durableIds(outDir)).to.deep.equal(range(1, 10));
  });

  it('counts skipped lines in sluice_sink_bad_records_total while it runs (child process, --metrics-port)', async () => {
    const child = new ChildCommand(['sink', '--from', '-', '--to', outUri, '--flush-interval', '100ms', '--bad-records', 'skip', '--metrics-port', '0']);
    const [, url] = await child.waitFor('stderr', /metrics at (http:\/\/127\.0\.0\.1:\d+\/metrics)/);
    // stdin kept open: the run goes on while it is scraped.
    child.child.stdin.write(`${[formatChangeEventLine(DDL), formatChangeEventLine(item(1)), 'not json', formatChangeEventLine(item(2, { id: null, name: 'x' })), formatChangeEventLine(item(3))].join('\n')}\n`);
    // The two bad lines are counted as they are read: scrape until the count shows (the scrapes are the event).
    for (;;) {
      const scraped = await (await fetch(url!)).text();
      if (/^sluice_sink_bad_records_total\{pipeline="sink"\} 2$/m.test(scraped)) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    child.kill('SIGINT');
    expect(await child.exited, child.stderr).to.equal(130);
    expect(child.stdout).to.match(/^sluice sink: .*, 2 rows, .*; 2 bad lines skipped$/m);
    expect(await durableIds(outDir)).to.deep.equal([1, 3]);
  });

  it('exits 2 at start on an unusable dead-letter target, --to memory://, --from a folder, and negative durations or sizes', async () => {
    await writeInput(3, 0, '');
    await mkdir(join(dir, 'folder'));
    const cases: [string[], string][] = [
      [['--bad-records', `dead-letter:${join(dir, 'missing', 'bad.jsonl')}`], `--bad-records dead-letter:${join(dir, 'missing', 'bad.jsonl')}: cannot open the file for appending`],
      [['--bad-records', `dead-letter:${join(dir, 'folder')}`], `--bad-records dead-letter:${join(dir, 'folder')}: cannot open the file`],
      [['--bad-records', 'drop'], '--bad-records must be fail, skip or dead-letter:<path>'],
      [['--to', 'memory://x'], '--to memory://x: memory storage ends with the process, so nothing would persist'],
      [['--from', join(dir, 'folder')], `--from: ${join(dir, 'folder')} is a folder`],
      [['--flush-interval', '-1'], '--flush-interval must be at least 100ms, got "-1"'],
      [['--flush-interval=-1'], '--flush-interval must be at least 100ms, got "-1"'],
      [['--file-size', '-5'], '--file-size must be at least 1 byte, got "-5"'],
      [['--file-size=-5KiB'], '--file-size must be at least 1 byte, got "-5KiB"'],
    ];
    for (const [extra, message] of cases) {
      const io = captured();
      expect(await run([...args(), ...extra], io), extra.join(' ')).to.equal(2);
      expect(io.err(), extra.join(' ')).to.include(message);
      expect(io.err(), extra.join(' ')).to.not.include('ambiguous');
    }
    expect(await readdir(outDir).catch((error: NodeJS.ErrnoException) => error.code)).to.equal('ENOENT', 'nothing written');
  });

  it('--help shows an example line of each event kind, each a valid event', () => {
    const examples = SINK_USAGE.split('\n').filter((line) => line.trimStart().startsWith('{"kind"')).map((line, i) => parseChangeEventLine(line.trim(), i + 1));
    expect(examples.map((e) => (e.kind === 'ddl' ? `ddl ${e.tableDef === undefined ? '' : 'tableDef'}` : `${e.op}${e.oldColumns ? ' old' : ''}`))).to.deep.equal([
      'ddl tableDef',
      'insert',
      'update old',
      'delete',
    ]);
    expect(SINK_USAGE).to.include('docs/formats.md');
  });
});
