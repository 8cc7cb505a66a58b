/** The storage sink flow: change events into TiCDC-compatible files. */
export { storageSink, STORAGE_SINK_DEFAULTS, type SinkProgress, type StorageSinkOptions } from './storageSink.ts';
export { FileOutput, FileOutputError, type FileOutputOptions } from './fileOutput.ts';
export { ResumePoint, UnreadableCheckpointError } from './resumePoint.ts';
export { TableRegistry, UnknownTableVersionError, type TableRegistryOptions } from './tableRegistry.ts';
