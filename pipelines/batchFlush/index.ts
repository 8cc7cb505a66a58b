/** The batch-flush flow: records into InfluxDB 1.x / OpenGemini line protocol, with a checkpointed buffer. */
export { lineProtocolSink } from './lineProtocolSink.ts';
export { LINE_SINK_DEFAULTS, type LineProtocolSinkOptions, type LineSinkBatchOptions, type LineSinkCheckpointOptions } from './options.ts';
export { DeadLetterError } from './deadLetters.ts';
export { type LineSinkEvent, type LineSinkStats } from './progress.ts';
export { LineCheckpoint, CheckpointError, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, type CheckpointIdentity } from './checkpoint.ts';
export {
  InfluxHttpWriter,
  StorageLineWriter,
  LineWriteError,
  type InfluxAuth,
  type InfluxHttpWriterOptions,
  type LineWriter,
  type WriteOutcome,
  type WriteRejected,
} from './lineWriter.ts';
export { linesCommand, LINES_USAGE } from './cli.ts';
export { recordToPoint, recordToLine, RECORD_KEYS } from './jsonRecord.ts';
