import { expect } from 'chai';
import { createAck } from '../../../lib/core/ack.ts';
import { DispatcherPositions } from '../../../pipelines/storageSink/dispatcherPositions.ts';

describe('storage sink dispatcher positions', () => {
  it('reaches a commit ts only once every event of it on every dispatcher is durable', () => {
    const positions = new DispatcherPositions();
    const a1 = positions.trackRow('a', 100n, createAck());
    const a2 = positions.trackRow('a', 100n, createAck());
    const b1 = positions.trackRow('b', 100n, createAck());
    expect(positions.checkpointTs).to.equal(99n);
    a1.flushed();
    b1.flushed();
    expect(positions.checkpointTs).to.equal(99n, 'the second event of ts 100 on a is not durable');
    a2.flushed();
    expect(positions.checkpointTs).to.equal(99n, 'more events of ts 100 may still come');
    positions.trackRow('a', 101n, createAck()).flushed();
    positions.trackRow('b', 105n, createAck()).flushed();
    expect(positions.checkpointTs).to.equal(100n);
  });

  it('forgets a DDL once it is durable, so it holds the checkpoint only on its way', () => {
    const positions = new DispatcherPositions();
    positions.trackRow('a', 200n, createAck()).flushed();
    const ddl = positions.trackDdl(150n, 7, createAck());
    expect(positions.checkpointTs).to.equal(149n);
    ddl.flushed();
    expect(positions.checkpointTs).to.equal(199n);
    expect(positions.counts).to.deep.equal({ active: 1, idle: 0 });
  });

  it('reduces idle dispatchers to their checkpoint, and one back from idleness continues its sequence', () => {
    const positions = new DispatcherPositions();
    positions.trackRow('idle', 300n, createAck()).flushed();
    const busy = positions.trackRow('busy', 300n, createAck());
    positions.reclaimIdle(1);
    expect(positions.counts).to.deep.equal({ active: 2, idle: 0 }, 'seen in the last sweep');
    positions.reclaimIdle(1);
    expect(positions.counts).to.deep.equal({ active: 1, idle: 1 }, 'busy has a row in flight');
    expect(positions.checkpointTs).to.equal(299n);
    // Back at the same commit ts: the next position, not one at or below its checkpoint.
    positions.trackRow('idle', 300n, createAck()).flushed();
    busy.flushed();
    expect(positions.counts).to.deep.equal({ active: 2, idle: 0 });
    expect(positions.checkpointTs).to.equal(299n);
  });

  it('resolves every dispatcher to the greatest commit ts when the input completes', () => {
    const positions = new DispatcherPositions();
    positions.trackRow('a', 10n, createAck()).flushed();
    positions.trackRow('b', 50n, createAck()).flushed();
    positions.reclaimIdle(1);
    positions.reclaimIdle(1);
    expect(positions.checkpointTs).to.equal(9n);
    positions.completeAll();
    expect(positions.checkpointTs).to.equal(50n);
  });

  it('takes any number of events at one commit ts, the checkpoint staying below it until a later one', () => {
    const positions = new DispatcherPositions();
    for (let i = 0; i < 2 ** 20 + 10; i++) positions.trackRow('a', 1n, createAck()).flushed();
    expect(positions.checkpointTs).to.equal(0n);
    positions.trackRow('a', 2n, createAck());
    expect(positions.checkpointTs).to.equal(1n);
  });

  it('refuses an event below a dispatcher checkpoint, naming the dispatcher and the positions', () => {
    const positions = new DispatcherPositions();
    positions.trackRow('a', 10n, createAck()).flushed();
    positions.trackRow('a', 12n, createAck()).flushed();
    expect(() => positions.trackRow('a', 11n, createAck())).to.throw(RangeError, 'position 11 on path a is at or below its checkpoint');
  });
});
