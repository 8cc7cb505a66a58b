/** A fresh TestScheduler per test, asserting with chai's deep equality. */
import { expect } from 'chai';
import { TestScheduler } from 'rxjs/testing';

export function testScheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => {
    expect(actual).to.deep.equal(expected);
  });
}
