import { expect } from 'chai';
import { createAck } from '../../../lib/core/ack.ts';
import { DispatcherPositions } from '../../../pipelines/storageSink/dispatcherPositions.ts';

/** Admits a row and reports it durable at once. */
function durableRow(positions: DispatcherPositions, dispatcherId: string, commitTs: bigint): void {
  positions.admitRow(dispatcherId, commitTs);
  positions.rowDurable(dispatcherId);
}

describe('storage sink dispatcher positions', () => {
  it('reaches a commit ts only once every event of it on every dispatcher is durable', () => {
    const positions = new DispatcherPositions();
    positions.admitRow('a', 100n);
    positions.admitRow('a', 100n);
    positions.admitRow('b', 100n);
    expect(positions.checkpointTs).to.equal(99n);
    positions.rowDurable('a');
    positions.rowDurable('b');
    expect(positions.checkpointTs).to.equal(99n, 'the second event of ts 100 on a is not durable');
    positions.rowDurable('a');
    expect(positions.checkpointTs).to.equal(99n, 'more events of ts 100 may still come');
    durableRow(positions, 'a', 101n);
    durableRow(positions, 'b', 105n);
    expect(positions.checkpointTs).to.equal(100n);
  });

  it('resumed from a checkpoint: completion with no event reaches it, and rows above it start from it', () => {
    const idle = new DispatcherPositions();
    idle.resumeFrom(500n);
    expect(idle.checkpointTs).to.equal(undefined, 'nothing to say before the input ends');
    idle.completeAll();
    expect(idle.checkpointTs).to.equal(500n);

    const positions = new DispatcherPositions();
    positions.resumeFrom(500n);
    positions.admitRow('a', 501n);
    expect(positions.checkpointTs).to.equal(500n);
    positions.rowDurable('a');
    positions.completeAll();
    expect(positions.checkpointTs).to.equal(501n);
  });

  it('rows become durable oldest first: the checkpoint stays below the oldest row not reported', () => {
    const positions = new DispatcherPositions();
    for (const ts of [10n, 20n, 30n]) positions.admitRow('a', ts);
    expect(positions.checkpointTs).to.equal(9n);
    positions.rowDurable('a');
    expect(positions.checkpointTs).to.equal(19n);
    positions.rowDurable('a');
    positions.rowDurable('a');
    expect(positions.checkpointTs).to.equal(29n, 'ts 30 may have more rows to come');
    expect(() => positions.rowDurable('a')).to.throw(RangeError, 'path a: 1 reported durable, but 0 admitted items are waiting');
  });

  it('forgets a DDL once it is durable, so it holds the checkpoint only on its way', () => {
    const positions = new DispatcherPositions();
    durableRow(positions, 'a', 200n);
    const ddl = positions.trackDdl(150n, 7, createAck());
    expect(positions.checkpointTs).to.equal(149n);
    ddl.flushed();
    expect(positions.checkpointTs).to.equal(199n);
    expect(positions.counts).to.deep.equal({ active: 1, idle: 0 });
  });

  it('reduces idle dispatchers to their checkpoint, and one back from idleness continues its sequence', () => {
    const positions = new DispatcherPositions();
    durableRow(positions, 'idle', 300n);
    positions.admitRow('busy', 300n);
    positions.reclaimIdle(1);
    expect(positions.counts).to.deep.equal({ active: 2, idle: 0 }, 'seen in the last sweep');
    positions.reclaimIdle(1);
    expect(positions.counts).to.deep.equal({ active: 1, idle: 1 }, 'busy has a row in flight');
    expect(positions.checkpointTs).to.equal(299n);
    // Back at the same commit ts: the next position, not one at or below its checkpoint.
    durableRow(positions, 'idle', 300n);
    positions.rowDurable('busy');
    expect(positions.counts).to.deep.equal({ active: 2, idle: 0 });
    expect(positions.checkpointTs).to.equal(299n);
  });

  it('resolves every dispatcher to the greatest commit ts when the input completes', () => {
    const positions = new DispatcherPositions();
    durableRow(positions, 'a', 10n);
    durableRow(positions, 'b', 50n);
    positions.reclaimIdle(1);
    positions.reclaimIdle(1);
    expect(positions.checkpointTs).to.equal(9n);
    positions.completeAll();
    expect(positions.checkpointTs).to.equal(50n);
  });

  it('takes any number of events at one commit ts, in flight or not, the checkpoint staying below it until a later one', () => {
    const positions = new DispatcherPositions();
    for (let i = 0; i < 2 ** 20 + 10; i++) durableRow(positions, 'a', 1n);
    for (let i = 0; i < 100_000; i++) positions.admitRow('a', 1n);
    expect(positions.checkpointTs).to.equal(0n);
    for (let i = 0; i < 100_000; i++) positions.rowDurable('a');
    positions.admitRow('a', 2n);
    expect(positions.checkpointTs).to.equal(1n);
  });

  it('refuses an event below a dispatcher checkpoint, naming the dispatcher and the positions', () => {
    const positions = new DispatcherPositions();
    durableRow(positions, 'a', 10n);
    durableRow(positions, 'a', 12n);
    expect(() => positions.admitRow('a', 11n)).to.throw(RangeError, 'position 11 on path a is at or below its checkpoint');
  });
});
