/**
 * What the line-protocol sink reports: events on its output, and stats (totals and levels) kept in
 * one object updated in place, handed to its metrics and to `onStats` after each change.
 */
import { adaptiveBatchMetrics, lineProtocolSinkMetrics, type AnyRegistry, type LineSinkStatsLike } from '../../lib/metrics/index.ts';
import type { AdaptiveBatchStats } from '../../operators/adaptiveBatch.ts';

/** What the sink reports on its output. */
export type LineSinkEvent =
  | { readonly kind: 'restored'; readonly lines: number; readonly segments: number }
  | {
      readonly kind: 'written';
      /** Lines the server accepted from this batch. */
      readonly points: number;
      readonly batchSize: number;
      readonly latencyMs: number;
      readonly attempts: number;
      readonly requests: number;
    }
  | { readonly kind: 'deadLetter'; readonly line: string; readonly status: number; readonly message: string; readonly stored: string | undefined }
  | {
      /** A write failed with a retryable error (5xx, 429, a reset, a refused connection, a timeout) and will be retried. */
      readonly kind: 'retrying';
      /** The server or storage written to. */
      readonly target: string;
      /** The retry about to be made (1 after the first failure). */
      readonly attempt: number;
      /** Time since this batch's first failure, in ms. */
      readonly elapsedMs: number;
      /** The retry budget in time (`retry.maxElapsedMs`; Infinity when only maxRetries limits). */
      readonly maxElapsedMs: number;
      /** The failure: a network error's message (`connect ECONNREFUSED 127.0.0.1:8086`), else the error's. */
      readonly reason: string;
    };

/** The sink's totals and levels (the fields lib/metrics binds), and its current batch size. */
export interface LineSinkStats extends LineSinkStatsLike {
  /** The AIMD target batch size, in lines. */
  batchSize: number;
}


/** The levels read from the sink's parts when stats are reported (the totals are counted as they happen). */
export interface StatsLevels {
  bytesSent(): number | undefined;
  checkpointLines(): number;
  heldWakes(): number;
}

/** Counts and reports a sink's stats: to its metrics (if any) and to `onStats`. */
export class SinkStatsReporter {
  readonly stats: LineSinkStats;
  readonly #levels: StatsLevels;
  readonly #boundSink: ((stats: LineSinkStatsLike) => void) | undefined;
  readonly #boundBatch: ((stats: Readonly<AdaptiveBatchStats>) => void) | undefined;
  readonly #onStats: ((stats: Readonly<LineSinkStats>) => void) | undefined;

  constructor(
    initialBatchSize: number,
    levels: StatsLevels,
    metrics: { registry: AnyRegistry; pipeline: string } | undefined,
    onStats: ((stats: Readonly<LineSinkStats>) => void) | undefined,
  ) {
    this.stats = {
      pointsWritten: 0,
      batches: 0,
      requests: 0,
      bytesSent: 0,
      retryableErrors: 0,
      rejectedWrites: 0,
      deadLetters: 0,
      checkpointSaves: 0,
      checkpointLines: 0,
      heldWakes: 0,
      restoredLines: 0,
      stalledSinceMs: 0,
      batchSize: initialBatchSize,
    };
    this.#levels = levels;
    this.#boundSink = metrics ? lineProtocolSinkMetrics(metrics.registry, { pipeline: metrics.pipeline }) : undefined;
    this.#boundBatch = metrics ? adaptiveBatchMetrics(metrics.registry, { pipeline: metrics.pipeline }) : undefined;
    this.#onStats = onStats;
  }

  /** Reads the levels, then hands the stats on. */
  report(): void {
    const stats = this.stats;
    const bytesSent = this.#levels.bytesSent();
    if (bytesSent !== undefined) stats.bytesSent = bytesSent;
    stats.checkpointLines = this.#levels.checkpointLines();
    stats.heldWakes = this.#levels.heldWakes();
    this.#boundSink?.(stats);
    this.#onStats?.(stats);
  }

  /** adaptiveBatch's stats: its target size is the sink's batchSize; its own metrics are bound too. */
  batchStats(batchStats: Readonly<AdaptiveBatchStats>): void {
    this.stats.batchSize = batchStats.size;
    this.#boundBatch?.(batchStats);
  }
}
