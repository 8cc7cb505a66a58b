import { expect } from 'chai';
import fc from 'fast-check';
import { InvalidOptionError } from '../../lib/core/errors.ts';
import {
  backoffMs,
  budgetedBackoffMs,
  checkRetryPolicy,
  DEFAULT_RETRY_POLICY,
  mayRetry,
  RetriesExhaustedError,
  withRetries,
  type RetryInfo,
  type RetryPolicy,
} from '../../lib/core/retry.ts';
import { rejectionOf } from '../support/waiting.ts';

const policy = (overrides: Partial<RetryPolicy> = {}): RetryPolicy => ({ maxRetries: 3, minDelayMs: 100, maxDelayMs: 1000, jitter: 0, ...overrides });

/** A sleep that records what it was asked and returns at once. */
function recordingSleep() {
  const slept: number[] = [];
  return { slept, sleep: async (ms: number) => void slept.push(ms) };
}

class Throttled extends Error {
  override readonly name = 'Throttled';
}

const retryThrottled = (error: unknown) => error instanceof Throttled;


describe('retry policy', () => {
  describe('checkRetryPolicy', () => {
    it('fills every default when given nothing, as a copy', () => {
      const filled = checkRetryPolicy('s3Storage', undefined);
      expect(filled).to.deep.equal({ maxRetries: 5, minDelayMs: 100, maxDelayMs: 10_000, jitter: 0.2 });
      expect(filled).to.not.equal(DEFAULT_RETRY_POLICY);
      expect(Object.isFrozen(DEFAULT_RETRY_POLICY)).to.equal(true);
    });

    it('keeps what is given and fills the rest; undefined means default', () => {
      const random = () => 0.5;
      expect(checkRetryPolicy('x', { maxRetries: 0, jitter: undefined, random })).to.deep.equal({
        maxRetries: 0,
        minDelayMs: 100,
        maxDelayMs: 10_000,
        jitter: 0.2,
        random,
      });
      expect(checkRetryPolicy('x', { maxRetries: Infinity, minDelayMs: 0, maxDelayMs: 0, jitter: 1 })).to.deep.equal({
        maxRetries: Infinity,
        minDelayMs: 0,
        maxDelayMs: 0,
        jitter: 1,
      });
    });

    const invalid: [Partial<RetryPolicy> | unknown, string][] = [
      [{ maxRetries: -1 }, 's3Storage: option maxRetries must be an integer >= 0 (or Infinity), got -1'],
      [{ maxRetries: 1.5 }, 's3Storage: option maxRetries must be an integer >= 0 (or Infinity), got 1.5'],
      [{ maxRetries: Number.NaN }, 's3Storage: option maxRetries must be an integer >= 0 (or Infinity), got NaN'],
      [{ minDelayMs: -5 }, 's3Storage: option minDelayMs must be a number >= 0, got -5'],
      [{ maxDelayMs: Infinity }, 's3Storage: option maxDelayMs must be a number >= 0, got Infinity'],
      [{ minDelayMs: 500, maxDelayMs: 100 }, 's3Storage: option maxDelayMs must be >= minDelayMs (500), got 100'],
      [{ jitter: 1.5 }, 's3Storage: option jitter must be a number in [0, 1], got 1.5'],
      [{ jitter: '0.1' as unknown as number }, 's3Storage: option jitter must be a number in [0, 1], got "0.1"'],
      [{ random: 0.5 as unknown as () => number }, 's3Storage: option random must be a function, got 0.5'],
      [{ maxRetry: 3 } as Partial<RetryPolicy>, 's3Storage: option maxRetry must be absent (a retry policy has maxRetries, minDelayMs, maxDelayMs, jitter, random, maxElapsedMs), got 3'],
      [{ maxElapsedMs: -1 }, 's3Storage: option maxElapsedMs must be a number >= 0 (or Infinity), got -1'],
      [5, 's3Storage: option retry must be an object with maxRetries, minDelayMs, maxDelayMs, jitter, got 5'],
      [null, 's3Storage: option retry must be an object with maxRetries, minDelayMs, maxDelayMs, jitter, got null'],
    ];
    for (const [given, message] of invalid) {
      it(`rejects ${JSON.stringify(given)} naming the option and value`, () => {
        expect(() => checkRetryPolicy('s3Storage', given as Partial<RetryPolicy>))
          .to.throw(InvalidOptionError)
          .with.property('message', message);
      });
    }
  });

  describe('backoffMs', () => {
    it('doubles from minDelayMs and stops at maxDelayMs without jitter', () => {
      const delays = [1, 2, 3, 4, 5, 6].map((attempt) => backoffMs(policy(), attempt));
      expect(delays).to.deep.equal([100, 200, 400, 800, 1000, 1000]);
    });

    it('multiplies by 1 - jitter at random 0, 1 at random 0.5, and towards 1 + jitter near 1, rounded', () => {
      const at = (random: number, attempt: number) => backoffMs(policy({ jitter: 0.2, random: () => random }), attempt);
      expect([at(0, 1), at(0.5, 1), at(0.999999, 1)]).to.deep.equal([80, 100, 120]);
      expect([at(0, 4), at(0.25, 4), at(0.75, 4)]).to.deep.equal([640, 720, 880]);
      expect(at(0.123, 5)).to.equal(Math.round(1000 * (0.8 + 0.4 * 0.123))); // 849
    });

    it('never overflows: a late attempt waits maxDelayMs', () => {
      expect(backoffMs(policy({ maxDelayMs: 30_000 }), 2000)).to.equal(30_000);
      expect(backoffMs(policy({ minDelayMs: 0, maxDelayMs: 0 }), 7)).to.equal(0);
    });

    it('stays within [(1 - jitter) × base, (1 + jitter) × base] for any random draw', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 5000 }),
          fc.integer({ min: 0, max: 60_000 }),
          fc.double({ min: 0, max: 1, noNaN: true }),
          fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
          fc.integer({ min: 1, max: 40 }),
          (minDelayMs, extra, jitter, random, attempt) => {
            const retry = { maxRetries: 5, minDelayMs, maxDelayMs: minDelayMs + extra, jitter, random: () => random };
            const base = Math.min(retry.maxDelayMs, minDelayMs * 2 ** (attempt - 1));
            const delay = backoffMs(retry, attempt);
            expect(Number.isInteger(delay)).to.equal(true);
            expect(delay).to.be.within(Math.round(base * (1 - jitter)), Math.round(base * (1 + jitter)));
          },
        ),
        { numRuns: 300 },
      );
    });
  });

  describe('withRetries', () => {
    it('returns the first success without sleeping', async () => {
      const { slept, sleep } = recordingSleep();
      const attempts: number[] = [];
      const value = await withRetries('put s3://b/k', async (attempt) => (attempts.push(attempt), 'done'), { policy: policy(), isRetryable: () => true, sleep });
      expect(value).to.equal('done');
      expect(attempts).to.deep.equal([1]);
      expect(slept).to.deep.equal([]);
    });

    it('retries retryable errors with the exact backoffs, telling onRetry before each', async () => {
      const { slept, sleep } = recordingSleep();
      const draws = [0, 0.5, 1];
      const retry = policy({ jitter: 0.5, random: () => draws.shift()! });
      const errors = [new Throttled('slow down 1'), new Throttled('slow down 2'), new Throttled('slow down 3')];
      const infos: RetryInfo[] = [];
      const attempts: number[] = [];
      const value = await withRetries(
        'put s3://b/k',
        async (attempt) => {
          attempts.push(attempt);
          if (attempt <= 3) throw errors[attempt - 1];
          return attempt * 10;
        },
        { policy: retry, isRetryable: retryThrottled, onRetry: (info) => infos.push(info), sleep, now: () => slept.reduce((sum, ms) => sum + ms, 1000) },
      );
      expect(value).to.equal(40);
      expect(attempts).to.deep.equal([1, 2, 3, 4]);
      // base 100, 200, 400 × factor 0.5, 1, 1.5
      expect(slept).to.deep.equal([50, 200, 600]);
      expect(infos).to.deep.equal([
        { operation: 'put s3://b/k', attempt: 1, delayMs: 50, elapsedMs: 0, error: errors[0] },
        { operation: 'put s3://b/k', attempt: 2, delayMs: 200, elapsedMs: 50, error: errors[1] },
        { operation: 'put s3://b/k', attempt: 3, delayMs: 600, elapsedMs: 250, error: errors[2] },
      ]);
    });

    it('gives up after maxRetries with RetriesExhaustedError naming the operation, attempts and last cause', async () => {
      const { slept, sleep } = recordingSleep();
      let calls = 0;
      const last = new Throttled('503 SlowDown from http://127.0.0.1:9000');
      const error = await rejectionOf(
        withRetries(
          'put s3://cdc/orders/CDC000001.csv',
          async () => {
            calls++;
            throw calls === 4 ? last : new Throttled(`try ${calls}`);
          },
          { policy: policy(), isRetryable: retryThrottled, sleep },
        ),
      );
      expect(calls).to.equal(4);
      expect(slept).to.deep.equal([100, 200, 400]);
      expect(error).to.be.instanceOf(RetriesExhaustedError);
      const exhausted = error as RetriesExhaustedError;
      expect(exhausted.name).to.equal('RetriesExhaustedError');
      expect(exhausted.attempts).to.equal(4);
      expect(exhausted.operation).to.equal('put s3://cdc/orders/CDC000001.csv');
      expect(exhausted.cause).to.equal(last);
      expect(exhausted.message).to.equal(
        "put s3://cdc/orders/CDC000001.csv: failed 4 times in a row, giving up (raise the retry policy's maxRetries if the service needs longer to recover); " +
          'last error: Throttled: 503 SlowDown from http://127.0.0.1:9000',
      );
    });

    it('with maxRetries 0 makes one attempt and reports it', async () => {
      const { slept, sleep } = recordingSleep();
      const error = await rejectionOf(withRetries('get k', async () => Promise.reject('plain string'), { policy: policy({ maxRetries: 0 }), isRetryable: () => true, sleep }));
      expect(slept).to.deep.equal([]);
      expect((error as RetriesExhaustedError).attempts).to.equal(1);
      expect((error as Error).message).to.equal(
        "get k: failed 1 time in a row, giving up (raise the retry policy's maxRetries if the service needs longer to recover); last error: plain string",
      );
    });

    it('rethrows a non-retryable error at once and unchanged, also after retries', async () => {
      const { slept, sleep } = recordingSleep();
      const denied = new Error('403 AccessDenied');
      let calls = 0;
      const error = await rejectionOf(
        withRetries(
          'put k',
          async () => {
            calls++;
            throw calls < 3 ? new Throttled('slow') : denied;
          },
          { policy: policy(), isRetryable: retryThrottled, sleep },
        ),
      );
      expect(error).to.equal(denied);
      expect(calls).to.equal(3);
      expect(slept).to.deep.equal([100, 200]);
    });

    it('fails with the error of isRetryable or onRetry when they throw', async () => {
      const broken = new Error('isRetryable broke');
      expect(await rejectionOf(withRetries('op', async () => Promise.reject(new Throttled('x')), { policy: policy(), isRetryable: () => { throw broken; } }))).to.equal(broken);
      const logFailed = new Error('log failed');
      const error = await rejectionOf(
        withRetries('op', async () => Promise.reject(new Throttled('x')), { policy: policy(), isRetryable: () => true, onRetry: () => { throw logFailed; }, sleep: async () => {} }),
      );
      expect(error).to.equal(logFailed);
    });

    it('does not start when the signal is already aborted', async () => {
      const controller = new AbortController();
      const reason = new Error('shutting down');
      controller.abort(reason);
      let calls = 0;
      const error = await rejectionOf(withRetries('op', async () => calls++, { policy: policy(), isRetryable: () => true, signal: controller.signal }));
      expect(error).to.equal(reason);
      expect(calls).to.equal(0);
    });

    it('stops waiting at once when aborted during a backoff, with the abort reason', async () => {
      const controller = new AbortController();
      const reason = new Error('pipeline stopped');
      const slept: number[] = [];
      let calls = 0;
      const started = Date.now();
      const pending = withRetries(
        'op',
        async () => {
          calls++;
          throw new Throttled('slow');
        },
        {
          policy: policy({ minDelayMs: 60_000, maxDelayMs: 60_000 }),
          isRetryable: retryThrottled,
          sleep: (ms) => (slept.push(ms), new Promise<void>(() => {})), // never resolves by itself
          signal: controller.signal,
        },
      );
      await new Promise((resolve) => setImmediate(resolve));
      expect(slept).to.deep.equal([60_000]);
      controller.abort(reason);
      expect(await rejectionOf(pending)).to.equal(reason);
      expect(calls).to.equal(1);
      expect(Date.now() - started).to.be.below(1000);
    });

    it('cancels its own timer on abort, and does not retry an attempt that failed after the abort', async () => {
      const controller = new AbortController();
      const reason = new Error('stop');
      let calls = 0;
      const started = Date.now();
      const viaTimer = withRetries('op', async () => Promise.reject(new Throttled(`try ${++calls}`)), {
        policy: policy({ minDelayMs: 30_000, maxDelayMs: 30_000 }),
        isRetryable: retryThrottled,
        signal: controller.signal,
      });
      setTimeout(() => controller.abort(reason), 20);
      expect(await rejectionOf(viaTimer)).to.equal(reason);
      expect(calls).to.equal(1);
      expect(Date.now() - started).to.be.below(1000);

      const second = new AbortController();
      const abortedMidAttempt = withRetries(
        'op',
        async () => {
          second.abort(reason);
          throw new Throttled('failed because of the abort');
        },
        { policy: policy(), isRetryable: retryThrottled, signal: second.signal, sleep: async () => expect.fail('must not back off') },
      );
      expect(await rejectionOf(abortedMidAttempt)).to.equal(reason);
    });

    it('waits the real backoff with the default sleep', async () => {
      let calls = 0;
      const started = Date.now();
      const value = await withRetries('op', async () => (++calls < 3 ? Promise.reject(new Throttled('x')) : 'ok'), {
        policy: policy({ minDelayMs: 20, maxDelayMs: 20 }),
        isRetryable: retryThrottled,
      });
      expect(value).to.equal('ok');
      expect(Date.now() - started).to.be.at.least(38);
    });

    describe('a budget set in time (maxElapsedMs)', () => {
      /** A clock that moves only when the fake sleep sleeps (plus `spentPerAttemptMs` per attempt). */
      function fakeTime(spentPerAttemptMs = 0) {
        const slept: number[] = [];
        let clockMs = 5000;
        return {
          slept,
          now: () => clockMs,
          sleep: async (ms: number) => void (slept.push(ms), (clockMs += ms)),
          attempt: () => void (clockMs += spentPerAttemptMs),
        };
      }

      it('with maxRetries Infinity retries until maxElapsedMs after the first failure, the last backoff ending on it', async () => {
        const time = fakeTime();
        const infos: RetryInfo[] = [];
        let calls = 0;
        const last = new Throttled('ECONNREFUSED');
        const error = await rejectionOf(
          withRetries(
            'POST /write to http://127.0.0.1:8086',
            async () => {
              calls++;
              throw last;
            },
            { policy: policy({ maxRetries: Infinity, maxElapsedMs: 1000 }), isRetryable: retryThrottled, onRetry: (info) => infos.push(info), ...time },
          ),
        );
        // 100 + 200 + 400 = 700, then 300 (not 800) ends on the budget; the attempt there is the last.
        expect(time.slept).to.deep.equal([100, 200, 400, 300]);
        expect(calls).to.equal(5);
        expect(infos.map((info) => info.elapsedMs)).to.deep.equal([0, 100, 300, 700]);
        expect(error).to.be.instanceOf(RetriesExhaustedError);
        expect((error as RetriesExhaustedError).elapsedMs).to.equal(1000);
        expect((error as RetriesExhaustedError).attempts).to.equal(5);
        expect((error as Error).message).to.equal(
          'POST /write to http://127.0.0.1:8086: failed 5 times in a row over 1.0 s, giving up: the retry budget is 1000 ms ' +
            '(raise maxElapsedMs if the service needs longer to recover); last error: Throttled: ECONNREFUSED',
        );
      });

      it('counts from the first failure (not the start) and includes the time attempts take', async () => {
        const time = fakeTime(150);
        let calls = 0;
        const value = await withRetries(
          'op',
          async () => {
            time.attempt();
            if (++calls < 4) throw new Throttled('x');
            return calls;
          },
          { policy: policy({ maxRetries: Infinity, maxElapsedMs: 2000 }), isRetryable: retryThrottled, ...time },
        );
        expect(value).to.equal(4);
        const error = await rejectionOf(
          withRetries('op', async () => (time.attempt(), Promise.reject(new Throttled('y'))), {
            policy: policy({ maxRetries: Infinity, maxElapsedMs: 500 }),
            isRetryable: retryThrottled,
            ...time,
          }),
        );
        // Failed at 0 (after its 150 ms), 100 + 150, 200 + 150 = 600 >= 500: two backoffs.
        expect(time.slept.slice(3)).to.deep.equal([100, 200]);
        expect((error as RetriesExhaustedError).elapsedMs).to.equal(600);
      });

      it('whichever limit comes first ends it: maxRetries still counts', async () => {
        const time = fakeTime();
        const error = await rejectionOf(
          withRetries('op', async () => Promise.reject(new Throttled('x')), { policy: policy({ maxRetries: 2, maxElapsedMs: 60_000 }), isRetryable: retryThrottled, ...time }),
        );
        expect(time.slept).to.deep.equal([100, 200]);
        expect((error as Error).message).to.match(/failed 3 times in a row, giving up \(raise the retry policy's maxRetries/);
        expect((error as RetriesExhaustedError).elapsedMs).to.equal(undefined);
      });

      it('mayRetry and budgetedBackoffMs are the rule, for retry loops of their own', () => {
        const budget = policy({ maxRetries: Infinity, maxElapsedMs: 1000 });
        expect(mayRetry(budget, 1_000_000, 999)).to.equal(true);
        expect(mayRetry(budget, 1, 1000)).to.equal(false);
        expect(mayRetry(policy(), 3, 1e12)).to.equal(true);
        expect(mayRetry(policy(), 4, 0)).to.equal(false);
        expect(budgetedBackoffMs(budget, 4, 100)).to.equal(800);
        expect(budgetedBackoffMs(budget, 4, 900)).to.equal(100);
        expect(budgetedBackoffMs(policy(), 4, 1e12)).to.equal(800);
      });

      it('is checked by checkRetryPolicy and kept', () => {
        expect(checkRetryPolicy('x', { maxRetries: Infinity, maxElapsedMs: 600_000 })).to.include({ maxRetries: Infinity, maxElapsedMs: 600_000 });
      });
    });

    it('retries until success, however long, with maxRetries Infinity', async () => {
      const { slept, sleep } = recordingSleep();
      let calls = 0;
      const value = await withRetries('op', async () => (++calls < 50 ? Promise.reject(new Throttled('x')) : calls), {
        policy: policy({ maxRetries: Infinity, minDelayMs: 1, maxDelayMs: 8 }),
        isRetryable: retryThrottled,
        sleep,
      });
      expect(value).to.equal(50);
      expect(slept.slice(0, 5)).to.deep.equal([1, 2, 4, 8, 8]);
      expect(slept).to.have.length(49);
    });
  });
});
