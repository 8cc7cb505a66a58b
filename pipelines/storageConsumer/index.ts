/** The storage consumer flow: a storage sink's files replayed into MySQL, exactly once in effect. */
export { storageConsumer } from './storageConsumer.ts';
export { STORAGE_CONSUMER_DEFAULTS, type StorageConsumerOptions } from './options.ts';
export { type ConsumerProgress } from './progress.ts';
export { planDdl, SUPPORTED_DDL_TYPES, UnsupportedDdlError, type DdlPlan } from './ddl.ts';
export { ApplyError } from './rowWriter.ts';
export { CHECKPOINT_TABLE } from './checkpointStore.ts';
