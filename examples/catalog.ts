/**
 * The examples, in tour order. Each runs on embedded defaults (temp folders, in-process services)
 * and finishes by itself; `npm run example -- <name>` runs one, `npm start` runs them all.
 */
export interface Example {
  readonly name: string;
  readonly summary: string;
  readonly load: () => Promise<{ run(): Promise<void> }>;
}

export const examples: readonly Example[] = [
  {
    name: 'operators',
    summary: 'paced paths -> watermarkBackpressure -> drainBarrier -> spool -> batchBy -> a durable file writer, with checkpoints',
    load: () => import('./operators.ts'),
  },
  {
    name: 'storageSink',
    summary: 'a CDC stream (DDLs, rows from 3 dispatchers, an ALTER mid-stream) -> TiCDC storage-sink files and the metadata checkpoint',
    load: () => import('./storageSink.ts'),
  },
  {
    name: 'storageConsumer',
    summary: "the storage sink example's files replayed into MySQL (DDL first, files in index order, one transaction each with the checkpoint)",
    load: () => import('./storageConsumer.ts'),
  },
  {
    name: 'batchFlush',
    summary: 'weather readings -> line protocol (AIMD batches, checkpointed buffer) -> InfluxDB when INFLUX_URL is set, else .lp files',
    load: () => import('./batchFlush.ts'),
  },
];
