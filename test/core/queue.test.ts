import { expect } from 'chai';
import fc from 'fast-check';
import { Queue } from '../../lib/core/queue.ts';

describe('Queue', () => {
  it('is FIFO across growth, wrap-around and shrinking, like an array model', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('push' as const), count: fc.integer({ min: 1, max: 70 }) }),
      fc.record({ kind: fc.constantFrom('shift' as const, 'pop' as const), count: fc.integer({ min: 1, max: 70 }) }),
      fc.record({ kind: fc.constantFrom('clear' as const, 'drain' as const), count: fc.constant(1) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const queue = new Queue<number>();
        const model: number[] = [];
        let next = 0;
        for (const { kind, count } of ops) {
          for (let i = 0; i < count; i++) {
            if (kind === 'push') {
              queue.push(next);
              model.push(next++);
            } else if (kind === 'shift') expect(queue.shift()).to.equal(model.shift());
            else if (kind === 'pop') expect(queue.pop()).to.equal(model.pop());
            else if (kind === 'drain') expect(queue.drain()).to.deep.equal(model.splice(0));
            else {
              queue.clear();
              model.length = 0;
            }
          }
          expect(queue.length).to.equal(model.length);
          expect(queue.peek()).to.equal(model[0]);
          expect(queue.last()).to.equal(model[model.length - 1]);
          expect([...queue]).to.deep.equal(model);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('keeps no item alive once it left (shifted, popped or cleared)', () => {
    const queue = new Queue<object>();
    for (let i = 0; i < 40; i++) queue.push({ i });
    for (let i = 0; i < 39; i++) queue.shift();
    queue.pop();
    const slots = (queue as unknown as { slots: unknown[] }).slots;
    expect(slots.every((slot) => slot === undefined)).to.equal(true);
  });

  it('keeps its slots through rounds of filling and emptying, and returns a burst’s capacity once it stays small', () => {
    const queue = new Queue<number>();
    const capacity = () => (queue as unknown as { slots: unknown[] }).slots.length;
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 1000; i++) queue.push(i);
      for (let i = 0; i < 1000; i++) queue.shift();
      expect(capacity()).to.equal(1024);
    }
    for (let i = 0; i < 10_000; i++) {
      queue.push(i);
      queue.shift();
    }
    expect(capacity()).to.equal(16);
  });
});
