import { expect } from 'chai';
import { ackAll, acked, bindAck, createAck, isAcked, noopAck, type AckHandler } from '../../lib/core/ack.ts';

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

  it('bindAck calls one shared handler with each ack\'s own context, each stage once, enqueued first', () => {
    const log: string[] = [];
    const handler: AckHandler<string> = {
      enqueued: (id) => log.push(`${id}:enqueued`),
      flushed: (id) => log.push(`${id}:flushed`),
      failed: (id, error) => log.push(`${id}:failed:${String(error)}`),
    };
    const a = bindAck(handler, 'a');
    const b = bindAck(handler, 'b');
    b.enqueued();
    a.flushed();
    a.flushed();
    b.failed('gone');
    b.flushed();
    expect(log).to.deep.equal(['b:enqueued', 'a:enqueued', 'a:flushed', 'b:failed:gone']);
  });

  it('bindAck works with a handler that has only some stages', () => {
    const woken: number[] = [];
    const ack = bindAck<number>({ enqueued: (n) => woken.push(n) }, 7);
    ack.flushed();
    ack.failed('late');
    expect(woken).to.deep.equal([7]);
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
