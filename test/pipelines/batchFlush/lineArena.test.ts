import { expect } from 'chai';
import { MemoryStorage } from '../../../lib/storage/index.ts';
import { LineArena } from '../../../pipelines/batchFlush/lineArena.ts';
import { LineCheckpoint } from '../../../pipelines/batchFlush/checkpoint.ts';

const IDENTITY = { db: 'd', retentionPolicy: null, precision: 'ms' } as const;

describe('LineArena', () => {
  it('gives back any run of lines joined by newlines, multi-byte text included', () => {
    const arena = new LineArena();
    const lines = ['m v=1 1', 'mé,t=ü v="日本" 2', 'm s="😀" 3', 'm v=4 4'];
    for (const line of lines) arena.append(line);
    expect(arena.lastSeq).to.equal(4);
    expect(arena.body(1, 4).toString('utf8')).to.equal(lines.join('\n'));
    expect(arena.body(2, 3).toString('utf8')).to.equal(lines.slice(1, 3).join('\n'));
    expect(arena.lines(1, 4)).to.deep.equal(lines);
    expect(arena.appendedBytes).to.equal(Buffer.byteLength(`${lines.join('\n')}\n`));
  });

  it('keeps lines whole across chunks and skips the unused tail of a chunk', () => {
    const arena = new LineArena();
    // ~7 MiB of lines of varying length: several 4 MiB chunks, none of them filled to the byte.
    const lines: string[] = [];
    for (let i = 0; i < 60_000; i++) lines.push(`m,host=h${i % 7} v=${i}i,s="${'x'.repeat(i % 200)}" ${i}`);
    for (const line of lines) arena.append(line);
    expect(arena.heldBytes).to.be.above(4 * 1024 * 1024);
    expect(arena.body(1, lines.length).toString('utf8')).to.equal(lines.join('\n'));
    // Every run that crosses a chunk border reads back exactly.
    for (const [first, last] of [
      [25_000, 45_000],
      [44_990, 45_010],
      [59_999, 60_000],
    ] as const) {
      expect(arena.body(first, last).toString('utf8'), `${first}..${last}`).to.equal(lines.slice(first - 1, last).join('\n'));
    }
  });

  it('frees whole chunks on release and refuses to read released lines', () => {
    const arena = new LineArena();
    const line = `m v=1,s="${'y'.repeat(1000)}" 1`;
    for (let i = 0; i < 10_000; i++) arena.append(line);
    const before = arena.heldBytes;
    arena.release(9_000);
    expect(arena.heldBytes).to.be.below(before);
    expect(arena.body(9_001, 9_002).toString('utf8')).to.equal(`${line}\n${line}`);
    expect(() => arena.body(8_999, 9_001)).to.throw(RangeError, /lines 8999\.\.9001 are not held \(held: 9001\.\.10000\)/);
    expect(() => arena.release(10_001)).to.throw(RangeError);
    // Appending after a release keeps numbering and bytes right.
    expect(arena.append('m v=2 2')).to.equal(10_001);
    expect(arena.body(10_000, 10_001).toString('utf8')).to.equal(`${line}\nm v=2 2`);
  });

  it('writes checkpoint segments that restore exactly, quoting lines that hold a newline', async () => {
    const arena = new LineArena();
    const lines = ['m v=1 1', 'm s="two\nlines" 2', 'm s="a\\\\b\\"c" 3', 'm s="\n" 4', 'm v=5 5'];
    for (const line of lines) arena.append(line);
    const storage = new MemoryStorage({ name: 'arena-segments' });
    const checkpoint = new LineCheckpoint(storage, 'lines-checkpoint', IDENTITY);
    const whole = arena.segment(1, 5);
    expect(whole.quoted).to.deep.equal([1, 3]);
    await checkpoint.saveBody(whole.parts, 5, whole.quoted, 1);
    // A segment starting and ending on a quoted line.
    const inner = arena.segment(2, 4);
    expect(inner.quoted).to.deep.equal([0, 2]);
    await checkpoint.saveBody(inner.parts, 3, inner.quoted, 6);
    const restored = await new LineCheckpoint(storage, 'lines-checkpoint', IDENTITY).restore();
    expect(restored.lines).to.deep.equal([...lines, ...lines.slice(1, 4)]);
    // The write body carries the lines raw.
    expect(arena.body(1, 5).toString('utf8')).to.equal(lines.join('\n'));
  });
});
