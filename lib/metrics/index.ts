/**
 * lib/metrics: a prom-client registry per pipeline, the `/metrics` endpoint, and the bindings that
 * turn operator stats into metrics (operators never import prom-client).
 */
export {
  createMetricsRegistry,
  metricPrefixOf,
  METRICS_REGISTRY_DEFAULTS,
  type AnyRegistry,
  type MetricsRegistryOptions,
} from './registry.ts';
export { serveMetrics, SERVE_METRICS_DEFAULTS, type MetricsServer, type ServeMetricsOptions } from './server.ts';
export { METRIC_BUCKETS, MetricConflictError, type MetricLabels } from './instruments.ts';
export { watermarkMetrics } from './watermark.ts';
export { drainBarrierMetrics, type DrainBarrierMetrics } from './drainBarrier.ts';
export { adaptiveBatchMetrics } from './adaptiveBatch.ts';
export { shardMetrics } from './shard.ts';
export { spoolMetrics } from './spool.ts';
export { flushMetrics, type FlushMetrics } from './flush.ts';
export { pathMetrics, type PathMetrics } from './paths.ts';
export { lineProtocolSinkMetrics, type LineSinkStatsLike } from './lineProtocolSink.ts';
export { storageConsumerMetrics, type StorageConsumerMetrics } from './storageConsumer.ts';
