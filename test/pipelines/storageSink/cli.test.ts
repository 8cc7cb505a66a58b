import { expect } from 'chai';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { formatChangeEventLine, type ChangeEvent, type RowChange } from '../../../lib/codec/index.ts';
import { run, type SinkCommandIo } from '../../../pipelines/storageSink/cli.ts';
import { run as runExample, sampleChangeEvents } from '../../../examples/storageSink.ts';

const ROW_EVENTS = 40;
const events: ChangeEvent[] = [...sampleChangeEvents(ROW_EVENTS)];
const rows = events.filter((e): e is RowChange => e.kind === 'row');
/** At the end every row is durable and nothing more comes: the checkpoint is the greatest commit ts of a row. */
const expectedCheckpoint = rows.reduce((max, row) => (row.commitTs > max ? row.commitTs : max), 0n);

function captured(isTTY = false): SinkCommandIo & { out: () => string; err: () => string } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    stdout: { write: (text: string) => out.push(text), isTTY },
    stderr: { write: (text: string) => err.push(text) },
    out: () => out.join(''),
    err: () => err.join(''),
  };
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name))).sort();
}

/** Rows in the CSV data files: one line each. */
async function csvRows(dir: string): Promise<number> {
  let count = 0;
  for (const file of (await filesUnder(dir)).filter((f) => f.endsWith('.csv'))) {
    count += (await readFile(join(dir, file), 'utf8')).split('\n').filter(Boolean).length;
  }
  return count;
}

describe('sluice sink (cli)', () => {
  let dir: string;
  let eventsFile: string;
  let outDir: string;
  let outUri: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-sink-cli-test-'));
    eventsFile = join(dir, 'events.jsonl');
    // A blank line in the middle and a trailing one: both skipped.
    const lines = events.map(formatChangeEventLine);
    lines.splice(5, 0, '');
    await writeFile(eventsFile, `${lines.join('\n')}\n\n`);
    outDir = join(dir, 'out');
    outUri = pathToFileURL(outDir).href;
  });

  afterEach(async () => {
    // After a failed run a write already in flight may still land (atomically): retry until it has.
    await rm(dir, { recursive: true, force: true, maxRetries: 20, retryDelay: 50 });
  });

  it('writes data, index, schema files and the metadata checkpoint from a file, and exits 0', async () => {
    const io = captured();
    const code = await run(['--from', eventsFile, '--to', outUri, '--flush-interval', '100ms', '--file-size', '1KiB', '--file-index-width', '6'], io);

    expect(io.err()).to.equal('');
    expect(code).to.equal(0);
    const files = await filesUnder(outDir);
    expect(files).to.include('metadata');
    expect(await readFile(join(outDir, 'metadata'), 'utf8')).to.equal(`{"checkpoint-ts":${expectedCheckpoint}}`);
    expect(files.filter((f) => /\/meta\/schema_\d+_\d+\.json$/.test(f))).to.have.length(3); // 2 CREATE TABLE + the ALTER
    expect(files.filter((f) => f.endsWith('/meta/CDC.index')).length).to.be.greaterThan(0);
    expect(files.filter((f) => /\/CDC\d{6}\.csv$/.test(f)).length).to.be.greaterThan(1); // 1 KiB cuts several
    expect(await csvRows(outDir)).to.equal(rows.length);

    const lines = io.out().trimEnd().split('\n');
    const wrote = lines.filter((l) => l.startsWith('wrote shop/') && l.includes(' rows, '));
    expect(wrote.length).to.equal(files.filter((f) => f.endsWith('.csv')).length);
    expect(lines).to.include(`checkpoint ${expectedCheckpoint}`);
    expect(lines.at(-1)).to.match(new RegExp(`^sluice sink: \\d+ files \\(\\d+ data, 3 schema\\), ${rows.length} rows, .*checkpoint ${expectedCheckpoint}, \\d+\\.\\d\\d s -> file://`));
  });

  it('with --table-across-dispatchers, writes per-dispatcher data and index files', async () => {
    const io = captured();
    const code = await run(['--from', eventsFile, '--to', outUri, '--file-index-width', '6', '--table-across-dispatchers'], io);
    expect(io.err()).to.equal('');
    expect(code).to.equal(0);
    const files = await filesUnder(outDir);
    expect(files.filter((f) => /\/CDC_[^/]+_\d{6}\.csv$/.test(f)).length).to.be.greaterThan(0);
    expect(files.filter((f) => /\/CDC\d{6}\.csv$/.test(f))).to.deep.equal([]);
    expect(files.filter((f) => /\/meta\/CDC_[^/]+\.index$/.test(f)).length).to.be.greaterThan(0);
    expect(await csvRows(outDir)).to.equal(rows.length);
  });

  it('reads stdin with --from -, and on a TTY redraws one progress line instead of a line per file', async () => {
    const io = captured(true);
    const stdin = Readable.from(events.map((e) => `${formatChangeEventLine(e)}\n`));
    const code = await run(['--from', '-', '--to', outUri, '--protocol', 'canal-json', '--flush-interval', '100ms'], { ...io, stdin });

    expect(io.err()).to.equal('');
    expect(code).to.equal(0);
    expect(await readFile(join(outDir, 'metadata'), 'utf8')).to.equal(`{"checkpoint-ts":${expectedCheckpoint}}`);
    expect((await filesUnder(outDir)).filter((f) => f.endsWith('.json') && !f.includes('/meta/')).length).to.be.greaterThan(0);
    expect(io.out()).to.not.include('wrote ');
    expect(io.out()).to.include('\r\x1b[K');
    expect(io.out()).to.match(/\r\x1b\[K\d+ rows, \d+ files, checkpoint /);
    expect(io.out().split('\r\x1b[K').at(-1)).to.match(new RegExp(`^sluice sink: .*, ${rows.length} rows, .*checkpoint ${expectedCheckpoint}, `));
  });

  it('a rerun on the same input resumes from the metadata checkpoint: skips what is durable and says so', async () => {
    const args = ['--from', eventsFile, '--to', outUri, '--flush-interval', '100ms', '--file-size', '1KiB'];
    expect(await run(args, captured())).to.equal(0);
    const files = await filesUnder(outDir);

    const io = captured();
    expect(await run(args, io)).to.equal(0);
    expect(io.err()).to.equal('');
    const summary = `skipped ${events.length} events at or below the checkpoint ${expectedCheckpoint} (already durable)`;
    expect(io.out().split('\n')).to.include(summary, 'the progress line');
    expect(io.out().trimEnd().split('\n').at(-1)).to.match(
      new RegExp(`^sluice sink: 0 files \\(0 data, 0 schema\\), 0 rows, .*checkpoint ${expectedCheckpoint}, .*; ${summary.replace(/[()]/g, '\\$&')}$`),
    );
    expect(await filesUnder(outDir)).to.deep.equal(files, 'no file written again');
    expect(await readFile(join(outDir, 'metadata'), 'utf8')).to.equal(`{"checkpoint-ts":${expectedCheckpoint}}`);
  });

  it('with --resume=false, a rerun writes every event again', async () => {
    const args = ['--from', eventsFile, '--to', outUri, '--flush-interval', '100ms'];
    expect(await run(args, captured())).to.equal(0);
    const io = captured();
    expect(await run([...args, '--resume=false'], io)).to.equal(0);
    expect(io.out()).to.not.include('skipped');
    expect(await csvRows(outDir)).to.equal(2 * rows.length);
  });

  it('fails with exit 1 on a metadata file that is not a checkpoint, with a hint naming --resume=false', async () => {
    await mkdir(outDir, { recursive: true });
    await writeFile(join(outDir, 'metadata'), 'not json');
    const io = captured();
    expect(await run(['--from', eventsFile, '--to', outUri], io)).to.equal(1);
    expect(io.err()).to.include('cannot resume from "metadata"');
    expect(io.err()).to.include('hint: restore file://').and.to.include('/metadata, or run with --resume=false');
    expect(await filesUnder(outDir)).to.deep.equal(['metadata']);
  });

  it('--enable-tidb-extension=false writes canal-json rows without _tidb; by default every row has it', async () => {
    const jsonRows = async () => {
      const texts = await Promise.all((await filesUnder(outDir)).filter((f) => f.endsWith('.json') && !f.includes('/meta/')).map((f) => readFile(join(outDir, f), 'utf8')));
      return texts.join('').split('\r\n').filter(Boolean);
    };
    const args = ['--from', eventsFile, '--to', outUri, '--protocol', 'canal-json', '--flush-interval', '100ms'];
    const io = captured();
    expect(await run([...args, '--enable-tidb-extension=false'], io)).to.equal(0);
    expect(io.err()).to.equal('');
    const without = await jsonRows();
    expect(without).to.have.length(rows.length);
    for (const line of without) expect(line).to.not.contain('_tidb');
    await rm(outDir, { recursive: true, force: true });
    expect(await run(args, captured())).to.equal(0);
    const withTs = await jsonRows();
    expect(withTs).to.have.length(rows.length);
    for (const line of withTs) expect(line).to.match(/,"_tidb":\{"commitTs":\d+\}\}$/);
    const csv = captured();
    expect(await run(['--from', eventsFile, '--to', outUri, '--enable-tidb-extension'], csv)).to.equal(2);
    expect(csv.err()).to.include('--enable-tidb-extension applies to --protocol canal-json only, got --protocol csv');
  });

  it("--terminator ends canal-json rows too (TiCDC's sink terminator); one that is not control characters exits 2 naming it", async () => {
    const jsonText = async () => {
      const files = (await filesUnder(outDir)).filter((f) => f.endsWith('.json') && !f.includes('/meta/') && !f.includes('schema_'));
      return (await Promise.all(files.map((f) => readFile(join(outDir, f), 'utf8')))).join('');
    };
    const args = ['--from', eventsFile, '--to', outUri, '--protocol', 'canal-json', '--flush-interval', '100ms'];
    const io = captured();
    expect(await run([...args, '--terminator', '\\n'], io)).to.equal(0);
    expect(io.err()).to.equal('');
    const text = await jsonText();
    expect(text).to.not.contain('\r');
    expect(text.split('\n').slice(0, -1)).to.have.length(rows.length);
    expect(text.endsWith('}\n')).to.equal(true);
    const bad = captured();
    expect(await run([...args, '--terminator', ';'], bad)).to.equal(2);
    expect(bad.err()).to.include('--terminator with --protocol canal-json must be one or more control characters');
    const csvOnly = captured();
    expect(await run([...args, '--terminator', '\\n', '--delimiter', ';'], csvOnly)).to.equal(2);
    expect(csvOnly.err()).to.include('--delimiter: csv settings, for --protocol csv only, got --protocol canal-json');
  });

  it('rejects an unknown flag with exit 2, naming it and listing the flags', async () => {
    const io = captured();
    expect(await run(['--from', eventsFile, '--to', outUri, '--nope'], io)).to.equal(2);
    expect(io.err()).to.include("'--nope'");
    // The list grows with the csv and layout flags: the order of the first ones, and that each is named.
    expect(io.err()).to.include('the flags are --from, --to, --protocol, --flush-interval, --file-size, --date-separator, --file-index-width, --table-across-dispatchers, ');
    for (const flag of ['--resume', '--help']) expect(io.err()).to.match(new RegExp(`the flags are .*${flag}\\b`));
    expect(io.err()).to.include('usage: sluice sink');
  });

  it('rejects bad flag values and missing flags with exit 2, saying what to fix', async () => {
    const cases: [string[], string][] = [
      [['--to', outUri], '--from is required'],
      [['--from', eventsFile], '--to is required'],
      [['--from', eventsFile, '--to', outUri, '--flush-interval', '5'], '--flush-interval must be a duration such as 500ms, 5s or 1m, got "5"'],
      [['--from', eventsFile, '--to', outUri, '--flush-interval', '50ms'], '--flush-interval must be at least 100ms'],
      [['--from', eventsFile, '--to', outUri, '--file-size', '64MB'], '--file-size must be a size such as'],
      [['--from', eventsFile, '--to', outUri, '--protocol', 'avro'], '--protocol must be csv or canal-json, got "avro"'],
      [['--from', eventsFile, '--to', outUri, '--date-separator', 'week'], '--date-separator must be none, year, month or day'],
      [['--from', eventsFile, '--to', outUri, '--file-index-width', '3'], '--file-index-width must be an integer from 6 to 20, got "3"'],
      [['--from', join(dir, 'missing.jsonl'), '--to', outUri], `--from: cannot read ${join(dir, 'missing.jsonl')}`],
    ];
    for (const [args, message] of cases) {
      const io = captured();
      expect(await run(args, io), args.join(' ')).to.equal(2);
      expect(io.err(), args.join(' ')).to.include(message);
    }
  });

  it('rejects an unusable --to with exit 2, naming the URI', async () => {
    for (const [uri, problem] of [
      ['ftp://host/cdc', 'unknown scheme "ftp"'],
      ['relative/out', 'has no scheme'],
    ]) {
      const io = captured();
      expect(await run(['--from', eventsFile, '--to', uri!], io)).to.equal(2);
      expect(io.err()).to.include(`--to: invalid storage URI "${uri}"`);
      expect(io.err()).to.include(problem!);
    }
  });

  it('fails with exit 1 on a malformed line, naming its line number, with a hint', async () => {
    const lines = events.slice(0, 4).map(formatChangeEventLine);
    lines.splice(2, 0, '{"kind":"row",');
    await writeFile(eventsFile, lines.join('\n'));
    const io = captured();

    expect(await run(['--from', eventsFile, '--to', outUri], io)).to.equal(1);
    expect(io.err()).to.match(/^sluice sink: line 3: malformed JSON/);
    // Issue 14: the hint says what stands (it said only 'fix that line of ... and run again').
    expect(io.err()).to.include(`hint: every event before it is durable and checkpointed; fix that line of ${eventsFile} and run again`);
  });

  it('fails with exit 1 on rows of a table whose DDL never came, saying to send it first', async () => {
    await writeFile(eventsFile, `${formatChangeEventLine(rows[0]!)}\n`);
    const io = captured();

    expect(await run(['--from', eventsFile, '--to', outUri, '--flush-interval', '100ms'], io)).to.equal(1);
    expect(io.err()).to.include(`no definition of shop.${rows[0]!.table}`);
    expect(io.err()).to.include("hint: put the table's DDL event (with its tableDef) before its rows");
  });

  it('prints the usage with --help and exits 0', async () => {
    const io = captured();
    expect(await run(['--help'], io)).to.equal(0);
    expect(io.out()).to.include('usage: sluice sink --from <events.jsonl|-> --to <storage-uri>');
    expect(io.out()).to.include('DDL event');
  });
});

describe('examples/storageSink', () => {
  it('runs: prints the file tree and the metadata checkpoint it wrote', async () => {
    const printed: string[] = [];
    const log = console.log;
    console.log = (...args: unknown[]) => void printed.push(args.join(' '));
    try {
      await runExample();
    } finally {
      console.log = log;
    }
    const text = printed.join('\n');
    expect(text).to.match(/wrote to file:\/\/.*: 300 rows in \d+ data files, 3 schema files/);
    expect(text).to.match(/shop\/orders\/\d+\/2024-05-01\/CDC\d{20}\.csv +\d+ B/);
    expect(text).to.match(/shop\/customers\/meta\/schema_\d+_\d+\.json +\d+ B/);
    expect(text).to.match(/metadata: \{"checkpoint-ts":\d+\}/);
  });
});
