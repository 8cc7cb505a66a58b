import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BadRecords, parseBadRecords } from '../../lib/cli/badRecords.ts';
import { UsageError } from '../../lib/cli/commandLine.ts';
import { rejectionOf } from '../support/waiting.ts';

describe('lib/cli/badRecords', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-bad-records-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const bad = (lineNumber: number, text: string) => ({ source: 'in.jsonl', lineNumber, text, error: new Error(`in.jsonl:${lineNumber}: broken`) });

  it('parses fail (the default), skip and dead-letter:<path>; anything else is a UsageError escaping control characters', () => {
    expect(parseBadRecords(undefined)).to.deep.equal({ mode: 'fail' });
    expect(parseBadRecords('fail')).to.deep.equal({ mode: 'fail' });
    expect(parseBadRecords('skip')).to.deep.equal({ mode: 'skip' });
    expect(parseBadRecords('dead-letter:/tmp/a:b.jsonl')).to.deep.equal({ mode: 'dead-letter', path: '/tmp/a:b.jsonl' });
    for (const text of ['dead-letter:', 'Skip', 'ignore\x1b[31m']) {
      expect(() => parseBadRecords(text)).to.throw(UsageError).with.property('message').that.matches(/--bad-records must be fail, skip or dead-letter:<path>/).and.not.match(/\x1b/);
    }
  });

  it('fail: answers stop and keeps the first error', async () => {
    const records = await BadRecords.open({ mode: 'fail' });
    expect(await records.take(bad(3, 'x'))).to.equal('stop');
    expect(await records.take(bad(9, 'y'))).to.equal('stop');
    expect(records.failure?.message).to.equal('in.jsonl:3: broken');
    expect(records.count).to.equal(0);
  });

  it('skip: counts and goes on, telling onBad', async () => {
    let told = 0;
    const records = await BadRecords.open({ mode: 'skip' }, () => told++);
    expect(await records.take(bad(3, 'x'))).to.equal('continue');
    expect([records.count, told, records.failure]).to.deep.equal([1, 1, undefined]);
  });

  it('dead-letter: appends the source, line number, error and text as JSON lines, after what the file held', async () => {
    const path = join(dir, 'bad.jsonl');
    writeFileSync(path, '{"earlier":true}\n');
    const records = await BadRecords.open({ mode: 'dead-letter', path });
    expect(await records.take(bad(2, '{"a":\u0007'))).to.equal('continue');
    expect(await records.take(bad(7, 'not json'))).to.equal('continue');
    // Durable before take() answers: the file holds it now, before close.
    const lines = readFileSync(path, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as unknown);
    expect(lines).to.deep.equal([
      { earlier: true },
      { source: 'in.jsonl', line: 2, error: 'in.jsonl:2: broken', text: '{"a":\u0007' },
      { source: 'in.jsonl', line: 7, error: 'in.jsonl:7: broken', text: 'not json' },
    ]);
    expect(records.count).to.equal(2);
    expect(records.where).to.equal(`dead-letter file ${path}`);
    await records.close();
  });

  it('dead-letter to a path that cannot be opened is a UsageError naming the flag', async () => {
    const error = await rejectionOf(BadRecords.open({ mode: 'dead-letter', path: join(dir, 'missing', 'bad.jsonl') }));
    expect(error).to.be.instanceOf(UsageError);
    expect(error.message).to.match(/^--bad-records dead-letter:.*missing\/bad\.jsonl: cannot open the file for appending: ENOENT/);
  });
});
