/**
 * How the storage consumer rides out a MySQL outage: an operation (a file's transaction, a DDL, the
 * checkpoint table's setup) that fails with a transient error (lib/mysql/transient.ts) is retried
 * whole, with backoff, until the time budget `retryForMs` runs out; a 'stall' progress event is
 * emitted before each backoff, so a person sees why nothing moves.
 *
 * Invariant guarded here: only whole operations are retried, and only after failures that left
 * nothing of them behind (the connection died or the transaction was rolled back), so a retry
 * neither loses nor repeats a row; a failure that is not transient, or the budget running out,
 * fails the operation at once with the real cause.
 */
import { RetriesExhaustedError, withRetries, type RetryPolicy } from '../../lib/core/retry.ts';
import { MysqlError } from '../../lib/mysql/pool.ts';
import { isTransientMysqlError, isUnreachable, transientCodeOf } from '../../lib/mysql/transient.ts';
import type { ConsumerProgress } from './progress.ts';

export interface MysqlRetryParts {
  /** Backoff and budget: `maxElapsedMs` is the consumer's retryForMs. */
  policy: RetryPolicy;
  /** The redacted URI, for errors. */
  uri: string;
  /** `host:port`, for stall events. */
  hostPort: string;
  emit: (progress: ConsumerProgress) => void;
  /** Aborted when the consumer is unsubscribed: a backoff in progress ends at once. */
  signal: AbortSignal;
}

export class MysqlRetry {
  readonly #parts: MysqlRetryParts;

  constructor(parts: MysqlRetryParts) {
    this.#parts = parts;
  }

  /**
   * Runs `operation` until it succeeds, retrying transient MySQL failures within the budget. When
   * the budget runs out, rejects with a MysqlError naming the server, the operation, how long it
   * kept failing, the budget and the last cause; any other failure rejects unchanged.
   */
  async run<T>(doing: string, operation: (attempt: number) => Promise<T>): Promise<T> {
    const { policy, uri, hostPort, emit, signal } = this.#parts;
    const retryForMs = policy.maxElapsedMs ?? Infinity;
    try {
      return await withRetries(doing, operation, {
        policy,
        isRetryable: isTransientMysqlError,
        signal,
        onRetry: ({ attempt, delayMs, elapsedMs, error }) => {
          const code = transientCodeOf(error) ?? 'error';
          emit({ kind: 'stall', service: 'MySQL', target: hostPort, operation: doing, code, unreachable: isUnreachable(code), attempt, elapsedMs, delayMs, retryForMs, message: error instanceof Error ? error.message : String(error) });
        },
      });
    } catch (error) {
      if (!(error instanceof RetriesExhaustedError)) throw error;
      const code = transientCodeOf(error.cause) ?? 'error';
      const seconds = ((error.elapsedMs ?? 0) / 1000).toFixed(1);
      throw new MysqlError(
        uri,
        `${doing}: MySQL at ${hostPort} kept failing (${code}) for ${seconds} s over ${error.attempts} attempts, the whole retry budget (retryForMs ${retryForMs} ms, --retry-for); ` +
          'bring the server back (or raise the budget) and run again to resume',
        error.cause,
      );
    }
  }
}
