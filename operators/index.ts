export { batchBy, BATCH_BY_DEFAULTS, type Batch, type BatchByOptions, type BatchReason } from './batchBy.ts';
export { watermarkBackpressure, type WatermarkBackpressureOptions, type WatermarkStats } from './watermarkBackpressure.ts';
export { drainBarrier, type DrainBarrierOptions, type DrainBarrierStats, type DrainScope } from './drainBarrier.ts';
export {
  adaptiveBatch,
  ADAPTIVE_BATCH_DEFAULTS,
  BatchWriteError,
  type AdaptiveBatchOptions,
  type AdaptiveBatchStats,
  type WrittenBatch,
} from './adaptiveBatch.ts';
export { shardBy, shardOf, SHARD_BY_DEFAULTS, type ShardByOptions, type ShardStats } from './shardBy.ts';
export { orderedMergeMap, ORDERED_MERGE_MAP_DEFAULTS, type OrderedMergeMapOptions } from './orderedMergeMap.ts';
export { spool, SPOOL_DEFAULTS, type SpoolCodec, type SpoolOperator, type SpoolOptions, type SpoolStats } from './spool.ts';
