export { createAck, bindAck, StateAck, ackAll, acked, isAcked, noopAck, type Ack, type Acked, type AckHandler, type AckHandlers } from './ack.ts';
export { ProgressTracker, type CheckpointChange, type ProgressTrackerOptions } from './progress.ts';
export { fromPaced, mergePaced, PACED_DEFAULTS, type PacedOptions, type PacedSource, type PullFunction } from './paced.ts';
export { InvalidOptionError, BufferOverflowError, checkNumber, checkFunction } from './errors.ts';
export { Queue } from './queue.ts';
export {
  withRetries,
  backoffMs,
  budgetedBackoffMs,
  mayRetry,
  checkRetryPolicy,
  DEFAULT_RETRY_POLICY,
  RetriesExhaustedError,
  type RetryPolicy,
  type RetryInfo,
  type WithRetriesOptions,
} from './retry.ts';
