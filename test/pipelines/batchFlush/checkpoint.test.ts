import { expect } from 'chai';
import { MemoryStorage } from '../../../lib/storage/index.ts';
import type { ExternalStorage } from '../../../lib/storage/storage.ts';
import { CHECKPOINT_FORMAT, CheckpointError, LineCheckpoint } from '../../../pipelines/batchFlush/checkpoint.ts';

const IDENTITY = { db: 'd', retentionPolicy: null, precision: 'ms' } as const;

async function keys(storage: ExternalStorage): Promise<string[]> {
  const found: string[] = [];
  for await (const key of storage.list('lines-checkpoint/')) found.push(key);
  return found;
}

/** A storage whose puts finish after the given delays, in call order (to reorder concurrent saves). */
function delayedPuts(inner: ExternalStorage, delaysMs: number[]): ExternalStorage {
  let call = 0;
  return Object.assign(Object.create(inner) as ExternalStorage, {
    put: async (key: string, data: Uint8Array) => {
      await new Promise((resolve) => setTimeout(resolve, delaysMs[call++] ?? 0));
      await inner.put(key, data);
    },
    list: (prefix: string) => inner.list(prefix),
    get: (key: string) => inner.get(key),
    delete: (key: string) => inner.delete(key),
  });
}

describe('LineCheckpoint', () => {
  it('restores lines exactly, including newlines, quotes and backslashes in string fields', async () => {
    const storage = new MemoryStorage({ name: 'ckpt-a' });
    const lines = ['m v=1 1', 'm s="two\nlines" 2', '"quoted\\ name" s="a\\\\b\\"c" 3', 'm s="\n" 4', 'm s="end\\\\" 5'];
    await new LineCheckpoint(storage, 'lines-checkpoint', IDENTITY).save(lines, 1);
    await new LineCheckpoint(storage, 'lines-checkpoint', IDENTITY).save(['m v=6 6'], 6);
    const restored = await new LineCheckpoint(storage, 'lines-checkpoint', IDENTITY).restore();
    expect(restored.lines).to.deep.equal([...lines, 'm v=6 6']);
    expect(restored.keys).to.have.length(2);
  });

  it('still reads a version 1 segment (one JSON document)', async () => {
    const storage = new MemoryStorage({ name: 'ckpt-b' });
    const v1 = { format: CHECKPOINT_FORMAT, version: 1, ...IDENTITY, lines: ['m v=1 1', 'm s="x\ny" 2'] };
    await storage.put('lines-checkpoint/000000000000001-aa-0000000001.json', Buffer.from(JSON.stringify(v1)));
    const restored = await new LineCheckpoint(storage, 'lines-checkpoint', IDENTITY).restore();
    expect(restored.lines).to.deep.equal(v1.lines);
  });

  it('refuses a segment whose line count does not match its header, naming the segment', async () => {
    const storage = new MemoryStorage({ name: 'ckpt-c' });
    await new LineCheckpoint(storage, 'lines-checkpoint', IDENTITY).save(['m v=1 1', 'm v=2 2'], 1);
    const [key] = await keys(storage);
    const bytes = Buffer.from((await storage.get(key!))!).toString('utf8');
    await storage.put(key!, Buffer.from(bytes.slice(0, bytes.lastIndexOf('\n'))));
    const error = await new LineCheckpoint(storage, 'lines-checkpoint', IDENTITY).restore().then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error).to.be.instanceOf(CheckpointError);
    expect(error!.message).to.include(key!).and.match(/holds 1 lines, its header says 2/);
  });

  it('keeps concurrent saves in call order and deletes only durable, flushed segments', async () => {
    const inner = new MemoryStorage({ name: 'ckpt-d' });
    // The first put finishes last.
    const checkpoint = new LineCheckpoint(delayedPuts(inner, [60, 5, 5]), 'lines-checkpoint', IDENTITY);
    const first = checkpoint.save(['m v=1 1', 'm v=2 2'], 1);
    const second = checkpoint.save(['m v=3 3'], 3);
    const third = checkpoint.save(['m v=4 4'], 4);
    await Promise.all([second, third]);
    expect(checkpoint.releasable(4), 'the first segment is not durable yet').to.equal(false);
    await checkpoint.release(4);
    expect(await keys(inner)).to.have.length(2);
    await first;
    expect(checkpoint.releasable(3)).to.equal(true);
    await Promise.all([checkpoint.release(3), checkpoint.release(3)]);
    expect(checkpoint.savedLines).to.equal(1);
    const restored = await new LineCheckpoint(inner, 'lines-checkpoint', IDENTITY).restore();
    expect(restored.lines).to.deep.equal(['m v=4 4']);
  });
});
