import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { UsageError } from '../../lib/cli/commandLine.ts';
import { nonBlankLines, openInput, type NumberedLine } from '../../lib/cli/inputLines.ts';

async function collect(lines: AsyncIterable<NumberedLine>): Promise<NumberedLine[]> {
  const all: NumberedLine[] = [];
  for await (const line of lines) all.push(line);
  return all;
}

describe('lib/cli/inputLines', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-cli-input-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('nonBlankLines skips blank and white-space lines but counts them, with LF or CRLF endings', async () => {
    const input = Readable.from(['a\r\n\r\n  \n', 'b', '\nc']);
    expect(await collect(nonBlankLines(input))).to.deep.equal([
      { text: 'a', lineNumber: 1 },
      { text: 'b', lineNumber: 4 },
      { text: 'c', lineNumber: 5 },
    ]);
  });

  it('nonBlankLines yields nothing for an empty input', async () => {
    expect(await collect(nonBlankLines(Readable.from([])))).to.deep.equal([]);
  });

  it('openInput reads a file, named by its path, and closes it', async () => {
    const path = join(dir, 'in.jsonl');
    await writeFile(path, '{"a":1}\n\n{"a":2}\n');
    const input = await openInput('from', path);
    try {
      expect(input.name).to.equal(path);
      expect(await collect(nonBlankLines(input.stream))).to.deep.equal([
        { text: '{"a":1}', lineNumber: 1 },
        { text: '{"a":2}', lineNumber: 3 },
      ]);
    } finally {
      await input.close();
    }
    await input.close(); // twice is harmless
  });

  it('openInput stops reading a file early when the reader stops, and close() still settles', async () => {
    const path = join(dir, 'long.jsonl');
    await writeFile(path, Array.from({ length: 10_000 }, (_, i) => `line ${i}`).join('\n'));
    const input = await openInput('from', path);
    const seen: number[] = [];
    for await (const { lineNumber } of nonBlankLines(input.stream)) {
      seen.push(lineNumber);
      if (seen.length === 3) break;
    }
    await input.close();
    expect(seen).to.deep.equal([1, 2, 3]);
  });

  it('openInput returns the given stdin for -', async () => {
    const stdin = Readable.from(['x\n']);
    const input = await openInput('from', '-', stdin);
    expect(input.name).to.equal('stdin');
    expect(input.stream).to.equal(stdin);
    await input.close();
  });

  it('openInput refuses a folder with a UsageError naming the flag and the path, before anything is read (issue 14)', async () => {
    let caught: unknown;
    await openInput('from', dir).catch((error: unknown) => (caught = error));
    expect(caught).to.be.instanceOf(UsageError);
    expect((caught as Error).message).to.equal(`--from: ${dir} is a folder; give a file of JSON lines, or - for stdin`);
  });

  it('openInput refuses a file that cannot be read with a UsageError naming the flag and the path', async () => {
    const missing = join(dir, 'missing.jsonl');
    let caught: unknown;
    try {
      await openInput('from', missing);
    } catch (error) {
      caught = error;
    }
    expect(caught).to.be.instanceOf(UsageError);
    expect((caught as Error).message).to.match(new RegExp(`^--from: cannot read ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ENOENT`));
  });
});
