/**
 * Retries as an explicit policy object (kafkajs style): how many retries, for how long at most, the
 * exponential backoff between them, its jitter; `withRetries` runs an operation under a policy, and
 * `mayRetry` is the one rule deciding whether another retry is allowed (for retry loops of their own).
 *
 * Invariant guarded here: an error the caller says is not retryable is rethrown at once and
 * unchanged; a retryable one is retried at most `maxRetries` times and no later than `maxElapsedMs`
 * after the first failure, then reported as a `RetriesExhaustedError` that names the operation, the
 * attempts made, the time spent and the last cause. Nothing is swallowed, and an abort stops the
 * waiting at once.
 */
import { checkFunction, checkNumber, InvalidOptionError } from './errors.ts';

/** How often and how patiently an operation is retried. */
export interface RetryPolicy {
  /** Retries after the first attempt (integer >= 0, or Infinity to retry forever). */
  maxRetries: number;
  /** Backoff before the first retry, in ms; doubles per retry. */
  minDelayMs: number;
  /** Upper bound of the backoff before jitter, in ms (>= minDelayMs). */
  maxDelayMs: number;
  /** Each backoff is multiplied by a random factor in [1 - jitter, 1 + jitter] (0..1). */
  jitter: number;
  /** Source of randomness for the jitter, in [0, 1). Default Math.random (inject it in tests). */
  random?: () => number;
  /**
   * A budget set in time: no retry starts later than this many ms after the first failure of the
   * operation (a backoff is shortened to end on the budget, so one last attempt is made there).
   * Absent or Infinity: no time limit. With `maxRetries: Infinity` it is the only limit, as a
   * long-running job wants: "retry outages for up to 10 minutes".
   */
  maxElapsedMs?: number;
}

/** 5 retries, 100 ms doubling up to 10 s, ±20 % jitter. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  maxRetries: 5,
  minDelayMs: 100,
  maxDelayMs: 10_000,
  jitter: 0.2,
});

const POLICY_OPTIONS: readonly string[] = ['maxRetries', 'minDelayMs', 'maxDelayMs', 'jitter', 'random', 'maxElapsedMs'];

/**
 * Fills a partial policy with `DEFAULT_RETRY_POLICY` and checks it; `owner` names who takes the policy
 * in the `InvalidOptionError` (which also names the option and the value).
 *
 * @example
 * const retry = checkRetryPolicy('s3Storage', { maxRetries: 3 }); // 3 retries, default delays
 */
export function checkRetryPolicy(owner: string, policy: Partial<RetryPolicy> | undefined): RetryPolicy {
  if (policy === undefined) return { ...DEFAULT_RETRY_POLICY };
  if (typeof policy !== 'object' || policy === null) {
    throw new InvalidOptionError(owner, 'retry', policy, 'an object with maxRetries, minDelayMs, maxDelayMs, jitter');
  }
  for (const name of Object.keys(policy)) {
    if (!POLICY_OPTIONS.includes(name)) {
      throw new InvalidOptionError(owner, name, (policy as Record<string, unknown>)[name], `absent (a retry policy has ${POLICY_OPTIONS.join(', ')})`);
    }
  }
  const filled = { ...DEFAULT_RETRY_POLICY, ...dropUndefined(policy) };
  checkNumber(owner, 'maxRetries', filled.maxRetries, { min: 0, integer: true, allowInfinity: true });
  checkNumber(owner, 'minDelayMs', filled.minDelayMs, { min: 0 });
  checkNumber(owner, 'maxDelayMs', filled.maxDelayMs, { min: 0 });
  if (filled.maxDelayMs < filled.minDelayMs) {
    throw new InvalidOptionError(owner, 'maxDelayMs', filled.maxDelayMs, `>= minDelayMs (${filled.minDelayMs})`);
  }
  checkNumber(owner, 'jitter', filled.jitter, { min: 0, max: 1 });
  if (filled.random !== undefined) checkFunction(owner, 'random', filled.random);
  if (filled.maxElapsedMs !== undefined) checkNumber(owner, 'maxElapsedMs', filled.maxElapsedMs, { min: 0, allowInfinity: true });
  return filled;
}

function dropUndefined(policy: Partial<RetryPolicy>): Partial<RetryPolicy> {
  return Object.fromEntries(Object.entries(policy).filter(([, value]) => value !== undefined));
}

/**
 * The backoff before retry number `attempt` (1 for the first retry), in whole ms:
 * min(maxDelayMs, minDelayMs × 2^(attempt-1)) × a jitter factor in [1 - jitter, 1 + jitter].
 *
 * @example
 * backoffMs({ maxRetries: 5, minDelayMs: 100, maxDelayMs: 1000, jitter: 0 }, 3); // 400
 */
export function backoffMs(policy: RetryPolicy, attempt: number): number {
  const base = Math.min(policy.maxDelayMs, policy.minDelayMs * 2 ** (attempt - 1));
  const random = policy.random ?? Math.random;
  const factor = 1 - policy.jitter + 2 * policy.jitter * random();
  return Math.round(base * factor);
}

/**
 * Whether retry number `attempt` (1 for the first retry) may be made `elapsedMs` after the first
 * failure: within `maxRetries` and before `maxElapsedMs` has passed.
 *
 * @example
 * mayRetry({ ...DEFAULT_RETRY_POLICY, maxRetries: Infinity, maxElapsedMs: 600_000 }, 40, 12_000); // true
 */
export function mayRetry(policy: RetryPolicy, attempt: number, elapsedMs: number): boolean {
  return attempt <= policy.maxRetries && elapsedMs < (policy.maxElapsedMs ?? Infinity);
}

/**
 * The backoff before retry number `attempt` made `elapsedMs` after the first failure: `backoffMs`,
 * shortened so it ends when the time budget (`maxElapsedMs`) does.
 */
export function budgetedBackoffMs(policy: RetryPolicy, attempt: number, elapsedMs: number): number {
  return Math.max(0, Math.min(backoffMs(policy, attempt), (policy.maxElapsedMs ?? Infinity) - elapsedMs));
}

/** An operation that kept failing with retryable errors until the policy's retries or its time budget ran out. */
export class RetriesExhaustedError extends Error {
  override readonly name = 'RetriesExhaustedError';
  /** Attempts made, the first one included (maxRetries + 1 when the count ran out). */
  readonly attempts: number;
  readonly operation: string;
  /** Time from the first failure to giving up, in ms (undefined when not measured). */
  readonly elapsedMs: number | undefined;

  /** `budget` is given when the time budget ran out (not the count): its maxElapsedMs and the time spent. */
  constructor(operation: string, attempts: number, cause: unknown, budget?: { maxElapsedMs: number; elapsedMs: number }) {
    const times = `${attempts} time${attempts === 1 ? '' : 's'}`;
    super(
      budget === undefined
        ? `${operation}: failed ${times} in a row, giving up (raise the retry policy's maxRetries if the service needs longer to recover); last error: ${describeError(cause)}`
        : `${operation}: failed ${times} in a row over ${(budget.elapsedMs / 1000).toFixed(1)} s, giving up: the retry budget is ${budget.maxElapsedMs} ms ` +
            `(raise maxElapsedMs if the service needs longer to recover); last error: ${describeError(cause)}`,
      { cause },
    );
    this.attempts = attempts;
    this.operation = operation;
    this.elapsedMs = budget?.elapsedMs;
  }
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** What `onRetry` learns before each backoff. */
export interface RetryInfo {
  operation: string;
  /** The retry about to be made: 1 after the first attempt failed (the number `backoffMs` got). */
  attempt: number;
  /** The backoff about to be slept, in ms. */
  delayMs: number;
  /** Time since the first failure of the operation, in ms (0 at the first retry's decision, measured by `now`). */
  elapsedMs: number;
  /** The retryable error of the attempt that just failed. */
  error: unknown;
}

export interface WithRetriesOptions {
  policy: RetryPolicy;
  /** Whether an error is worth another attempt (throttling, 5xx, a reset connection); others are rethrown at once. */
  isRetryable: (error: unknown) => boolean;
  /** Called before each backoff (for logs and metrics); an error thrown here fails the operation. */
  onRetry?: (info: RetryInfo) => void;
  /** Waits `ms` milliseconds. Default a timer (cancelled on abort); inject it in tests. */
  sleep?: (ms: number) => Promise<void>;
  /** Stops retrying: an abort before an attempt or during a backoff rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** The clock that measures `maxElapsedMs`, in ms. Default performance.now; inject it in tests. */
  now?: () => number;
}

/**
 * Runs `run(attempt)` (attempt 1 first) until it succeeds, retrying retryable errors after
 * `backoffMs` up to `policy.maxRetries` times and until `policy.maxElapsedMs` has passed since the
 * first failure (`mayRetry`; the last backoff is shortened to end on that budget). Lossless in the sense that no error is swallowed:
 * a non-retryable error is rethrown unchanged, the last retryable one becomes the `cause` of a
 * `RetriesExhaustedError`. An attempt already running is not interrupted by an abort; `run` gets
 * no signal of its own, so pass the same signal to the client call inside it.
 *
 * @example
 * const bytes = await withRetries(`get s3://bucket/${key}`, () => client.send(command), {
 *   policy: checkRetryPolicy('s3Storage', options.retry),
 *   isRetryable: (error) => isThrottlingOrServerError(error),
 * });
 */
export async function withRetries<T>(
  operation: string,
  run: (attempt: number) => Promise<T>,
  options: WithRetriesOptions,
): Promise<T> {
  const { policy, isRetryable, onRetry, sleep, signal } = options;
  const now = options.now ?? (() => performance.now());
  let firstFailureMs: number | undefined;
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    try {
      return await run(attempt);
    } catch (error) {
      if (!isRetryable(error)) throw error;
      signal?.throwIfAborted();
      const failedAtMs = now();
      firstFailureMs ??= failedAtMs;
      const elapsedMs = failedAtMs - firstFailureMs;
      if (!mayRetry(policy, attempt, elapsedMs)) {
        const outOfTime = attempt <= policy.maxRetries;
        throw new RetriesExhaustedError(operation, attempt, error, outOfTime ? { maxElapsedMs: policy.maxElapsedMs!, elapsedMs } : undefined);
      }
      const delayMs = budgetedBackoffMs(policy, attempt, elapsedMs);
      onRetry?.({ operation, attempt, delayMs, elapsedMs, error });
      await pause(delayMs, sleep, signal);
    }
  }
}

/** Sleeps `ms` (through `sleep` when given), rejecting with the abort reason as soon as `signal` aborts. */
function pause(ms: number, sleep: ((ms: number) => Promise<void>) | undefined, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const settle = (error?: { reason: unknown }) => {
      signal?.removeEventListener('abort', onAbort);
      if (error) reject(error.reason);
      else resolve();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    if (sleep === undefined) {
      timer = setTimeout(settle, ms);
      return;
    }
    try {
      sleep(ms).then(() => settle(), (reason: unknown) => settle({ reason }));
    } catch (reason) {
      settle({ reason });
    }
  });
}
