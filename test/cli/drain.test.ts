import { expect } from 'chai';
import { Observable, of, Subject, throwError } from 'rxjs';
import { drain } from '../../lib/cli/drain.ts';

describe('lib/cli/drain', () => {
  it('hands every value to the callback and resolves when the source completes', async () => {
    const seen: number[] = [];
    await drain(of(1, 2, 3), (value) => seen.push(value));
    expect(seen).to.deep.equal([1, 2, 3]);
  });

  it('rejects with the source error', async () => {
    let caught: unknown;
    try {
      await drain(throwError(() => new Error('broken')), () => {});
    } catch (error) {
      caught = error;
    }
    expect(caught).to.be.instanceOf(Error).with.property('message', 'broken');
  });

  it('on stop unsubscribes the source (its teardown runs) and resolves', async () => {
    let tornDown = false;
    const source = new Observable<number>((subscriber) => {
      subscriber.next(1);
      return () => {
        tornDown = true;
      };
    });
    let stop!: () => void;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    const seen: number[] = [];
    const done = drain(source, (value) => seen.push(value), stopped);
    expect(tornDown).to.equal(false);
    stop();
    await done;
    expect(tornDown).to.equal(true);
    expect(seen).to.deep.equal([1]);
  });

  it('a stop after the end changes nothing', async () => {
    const subject = new Subject<number>();
    let stop!: () => void;
    const done = drain(subject, () => {}, new Promise<void>((resolve) => (stop = resolve)));
    subject.complete();
    await done;
    stop();
    expect(subject.observed).to.equal(false);
  });
});
