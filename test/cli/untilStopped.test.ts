import { expect } from 'chai';
import { untilStopped } from '../../lib/cli/untilStopped.ts';

/** Two items, then a read that never answers (stdin kept open). */
async function* twoThenWait(): AsyncGenerator<number> {
  yield 1;
  yield 2;
  await new Promise(() => {});
}

describe('lib/cli/untilStopped', () => {
  it('hands out every item read before the stop, then ends although a read is waiting; onStop runs once', async () => {
    let stop!: () => void;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    let onStop = 0;
    const seen: number[] = [];
    const reading = (async () => {
      for await (const item of untilStopped(twoThenWait(), stopped, () => onStop++)) {
        seen.push(item);
        if (item === 2) stop();
      }
    })();
    await reading;
    expect(seen).to.deep.equal([1, 2]);
    expect(onStop).to.equal(1);
  });

  it('ends with the source when no stop comes, and passes its error on', async () => {
    const never = new Promise<void>(() => {});
    const seen: number[] = [];
    async function* three(): AsyncGenerator<number> {
      yield* [1, 2, 3];
    }
    for await (const item of untilStopped(three(), never)) seen.push(item);
    expect(seen).to.deep.equal([1, 2, 3]);
    async function* failing(): AsyncGenerator<number> {
      yield 1;
      throw new Error('line 2: bad');
    }
    let caught: unknown;
    try {
      for await (const _ of untilStopped(failing(), never)) void _;
    } catch (error) {
      caught = error;
    }
    expect(caught).to.have.property('message', 'line 2: bad');
  });
});
