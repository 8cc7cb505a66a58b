/** sluice: the two-stage ack core and the operators. Flows: `sluice/pipelines/<flow>`. */
export {
  createAck,
  bindAck,
  ackAll,
  acked,
  isAcked,
  noopAck,
  ProgressTracker,
  fromPaced,
  mergePaced,
  PACED_DEFAULTS,
  InvalidOptionError,
  BufferOverflowError,
  type Ack,
  type Acked,
  type AckHandler,
  type AckHandlers,
  type CheckpointChange,
  type PacedOptions,
  type PacedSource,
  type PullFunction,
} from './lib/core/index.ts';
export * from './operators/index.ts';
