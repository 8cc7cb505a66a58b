/** What the storage consumer reports as it goes: one event per DDL, per data file and per round, and one per retry while MySQL is out. */
import type { DiscoveryRound } from './discovery.ts';
import type { DdlPlan } from './ddl.ts';

/** What the consumer reports as it goes. */
export type ConsumerProgress =
  | { readonly kind: 'ddl'; readonly path: string; readonly table: string; readonly tableVersion: bigint; readonly effect: DdlPlan['effect'] }
  | { readonly kind: 'data'; readonly path: string; readonly table: string; readonly rows: number; readonly skipped: number; readonly bytes: number }
  | {
      readonly kind: 'round';
      readonly round: number;
      readonly listed: boolean;
      readonly files: number;
      readonly rows: number;
      /** The sink's checkpoint, from its `metadata` file. */
      readonly sinkCheckpointTs: bigint | undefined;
      /** The highest commit ts applied so far. */
      readonly appliedTs: bigint | undefined;
      /** Physical ms between the sink's checkpoint and the highest commit ts applied (0 when caught up). */
      readonly lagMs: number;
      /** Folders whose table version has no schema file yet (held back). */
      readonly waiting: number;
      readonly calls: DiscoveryRound['calls'];
    }
  | {
      /** A MySQL operation or a storage request failed with a transient error and is retried after `delayMs` (before each backoff). */
      readonly kind: 'stall';
      /** Who failed: MySQL, or the sink's storage (s3://, azure://: their requests are retried within the same budget). */
      readonly service: 'MySQL' | 'storage';
      /** `host:port` of the server (or 'the given MySQL pool'), or the storage URI without credentials. */
      readonly target: string;
      /** What is retried: "apply db/t/…/CDC000001.csv", "read the checkpoint table …". */
      readonly operation: string;
      /** The transient code: ECONNREFUSED, PROTOCOL_CONNECTION_LOST, ER_LOCK_DEADLOCK, HTTP 503… */
      readonly code: string;
      /** True when the service is out of reach or failing (rather than a lock conflict). */
      readonly unreachable: boolean;
      /** The retry about to be made (1 after the first failure). */
      readonly attempt: number;
      /** Time since the operation first failed, in ms. */
      readonly elapsedMs: number;
      /** The backoff before the retry, in ms. */
      readonly delayMs: number;
      /** The budget: retries stop this long after the first failure (retryForMs). */
      readonly retryForMs: number;
      /** The failure's message. */
      readonly message: string;
    };
