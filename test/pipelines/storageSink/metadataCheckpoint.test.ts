/**
 * MetadataCheckpoint: the one owner of the `metadata` checkpoint's order. It writes only above the
 * checkpoint found in the file at start (a restart never moves it back) and above the last one
 * written, one write at a time, and nothing before the stored checkpoint is known.
 */
import { expect } from 'chai';
import { MetadataCheckpoint } from '../../../pipelines/storageSink/metadataCheckpoint.ts';

/** A `metadata` file in memory behind the write function, recording each write. */
function file(initial?: bigint) {
  const state = { value: initial, writes: [] as bigint[], hold: undefined as Promise<void> | undefined, fail: undefined as Error | undefined };
  const write = async (checkpointTs: bigint) => {
    if (state.hold) await state.hold;
    if (state.fail) throw state.fail;
    state.writes.push(checkpointTs);
    state.value = checkpointTs;
  };
  return { state, write };
}

describe('MetadataCheckpoint', () => {
  it('writes nothing before the stored checkpoint is known, then only forward', async () => {
    const { state, write } = file();
    const checkpoint = new MetadataCheckpoint(write);
    expect(await checkpoint.advance(() => 100n)).to.equal(undefined);
    checkpoint.found(undefined);
    expect(await checkpoint.advance(() => undefined)).to.equal(undefined);
    expect(await checkpoint.advance(() => 100n)).to.equal(100n);
    expect(await checkpoint.advance(() => 100n)).to.equal(undefined);
    expect(await checkpoint.advance(() => 90n)).to.equal(undefined);
    expect(await checkpoint.advance(() => 120n)).to.equal(120n);
    expect(state.writes).to.deep.equal([100n, 120n]);
  });

  it('across a restart: never writes at or below the checkpoint found in the file', async () => {
    const { state, write } = file(200n);
    const first = new MetadataCheckpoint(write);
    first.found(state.value);
    for (const ts of [101n, 150n, 200n]) expect(await first.advance(() => ts), String(ts)).to.equal(undefined);
    expect(await first.advance(() => 250n)).to.equal(250n);
    // A second run (a restart, resume on or off) starts from what the first left in the file.
    const restarted = new MetadataCheckpoint(write);
    restarted.found(state.value);
    for (const ts of [101n, 249n, 250n]) expect(await restarted.advance(() => ts), String(ts)).to.equal(undefined);
    expect(await restarted.advance(() => 251n)).to.equal(251n);
    expect(state.writes).to.deep.equal([250n, 251n]);
  });

  it('runs one write at a time in call order, reading the checkpoint when its turn comes', async () => {
    const { state, write } = file();
    const checkpoint = new MetadataCheckpoint(write);
    checkpoint.found(undefined);
    let release!: () => void;
    state.hold = new Promise((resolve) => (release = resolve));
    let progress = 300n;
    const first = checkpoint.advance(() => progress);
    const reads: bigint[] = [];
    const second = checkpoint.advance(() => {
      reads.push(progress);
      return progress;
    });
    const third = checkpoint.advance(() => 250n);
    progress = 310n; // moves on while the first write is held
    expect(reads).to.deep.equal([], 'the second call waits for the first');
    release();
    expect(await Promise.all([first, second, third])).to.deep.equal([310n, undefined, undefined]);
    expect(state.writes).to.deep.equal([310n]);
  });

  it('a failed write rejects its call only; the next call writes, from the value still in the file', async () => {
    const { state, write } = file(100n);
    const checkpoint = new MetadataCheckpoint(write);
    checkpoint.found(100n);
    state.fail = new Error('storage down');
    let failure: unknown;
    await checkpoint.advance(() => 150n).catch((error: unknown) => (failure = error));
    expect(failure).to.equal(state.fail);
    state.fail = undefined;
    expect(await checkpoint.advance(() => 150n)).to.equal(150n);
    expect(state.writes).to.deep.equal([150n]);
  });

  it('takes the stored checkpoint once', () => {
    const checkpoint = new MetadataCheckpoint(async () => undefined);
    checkpoint.found(1n);
    expect(() => checkpoint.found(2n)).to.throw(Error, 'set once, before the first event');
  });
});
