/** The batch-flush flow: records into InfluxDB 1.x / OpenGemini line protocol, with a checkpointed buffer. */
export {
  lineProtocolSink,
  LINE_SINK_DEFAULTS,
  DeadLetterError,
  type LineProtocolSinkOptions,
  type LineSinkBatchOptions,
  type LineSinkCheckpointOptions,
  type LineSinkEvent,
  type LineSinkStats,
} from './lineProtocolSink.ts';
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
export { recordToPoint, linesCommand, LINES_USAGE } from './cli.ts';
