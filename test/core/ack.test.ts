import { expect } from 'chai';
import { ackAll, acked, createAck, isAcked, noopAck } from '../../lib/core/ack.ts';

function recordingAck(log: string[], name: string) {
  return createAck({
    onEnqueued: () => log.push(`${name}:enqueued`),
    onFlushed: () => log.push(`${name}:flushed`),
    onFailed: (error) => log.push(`${name}:failed:${String(error)}`),
  });
}

describe('Ack', () => {
  it('calls each stage once however often it is called', () => {
    const log: string[] = [];
    const ack = recordingAck(log, 'a');
    ack.enqueued();
    ack.enqueued();
    ack.flushed();
    ack.flushed();
    expect(log).to.deep.equal(['a:enqueued', 'a:flushed']);
  });

  it('flushed() implies enqueued(), which fires first', () => {
    const log: string[] = [];
    recordingAck(log, 'a').flushed();
    expect(log).to.deep.equal(['a:enqueued', 'a:flushed']);
  });

  it('a settled ack never changes again', () => {
    const log: string[] = [];
    const flushedFirst = recordingAck(log, 'f');
    flushedFirst.flushed();
    flushedFirst.failed('late');
    const failedFirst = recordingAck(log, 'x');
    failedFirst.failed('boom');
    failedFirst.flushed();
    failedFirst.enqueued();
    expect(log).to.deep.equal(['f:enqueued', 'f:flushed', 'x:failed:boom']);
  });

  it('ackAll calls each stage on every member, in order', () => {
    const log: string[] = [];
    const all = ackAll([recordingAck(log, 'a'), recordingAck(log, 'b')]);
    all.enqueued();
    all.flushed();
    all.flushed();
    expect(log).to.deep.equal(['a:enqueued', 'b:enqueued', 'a:flushed', 'b:flushed']);
  });

  it('ackAll forwards a failure to every member', () => {
    const log: string[] = [];
    ackAll([recordingAck(log, 'a'), recordingAck(log, 'b')]).failed('disk full');
    expect(log).to.deep.equal(['a:failed:disk full', 'b:failed:disk full']);
  });

  it('ackAll of nothing is a no-op and of one is that ack', () => {
    expect(ackAll([])).to.equal(noopAck());
    const one = createAck();
    expect(ackAll([one])).to.equal(one);
  });

  it('isAcked recognises the shape of an Acked', () => {
    expect(isAcked(acked(1))).to.equal(true);
    expect(isAcked({ value: 1, ack: createAck() })).to.equal(true);
    expect(isAcked({ value: 1 })).to.equal(false);
    expect(isAcked({ value: 1, ack: { enqueued() {} } })).to.equal(false);
    expect(isAcked(null)).to.equal(false);
    expect(isAcked(42)).to.equal(false);
  });
});
