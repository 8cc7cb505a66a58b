/** What the storage consumer reports as it goes: one event per DDL, per data file and per round. */
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
    };
