/**
 * The sink's writer: one batch becomes one data file per folder (per folder and dispatcher with
 * tables across dispatchers), each written with its index file, then the batch's DDL schema file,
 * then the batch's acks are flushed and its rows reported durable.
 *
 * Invariants guarded here: a row's ack is flushed only after the data file holding it and its index
 * file are durable; a table version's schema file is written before its first data file; a DDL's
 * schema file is written after every data file of its batch (the batch ends with it).
 */
import type { SchedulerLike } from 'rxjs';
import type { Acked } from '../../lib/core/ack.ts';
import { withRetries, type RetryInfo, type RetryPolicy } from '../../lib/core/retry.ts';
import type { DataFolder, DdlEvent } from '../../lib/codec/index.ts';
import type { FlushMetrics } from '../../lib/metrics/index.ts';
import { isTransientStorageError } from '../../lib/storage/transient.ts';
import type { Batch } from '../../operators/batchBy.ts';
import { folderKey, sameFolder } from './encoder.ts';
import type { FileOutput } from './fileOutput.ts';
import type { SinkProgress } from './options.ts';
import { rowsFileBytes } from './rowArena.ts';
import type { RowItem, SinkItem } from './sinkItems.ts';
import type { TableRegistry } from './tableRegistry.ts';

export interface BatchWriterOptions {
  output: FileOutput;
  tables: TableRegistry;
  /** Each dispatcher writes its own files of a table. */
  acrossDispatchers: boolean;
  retry: RetryPolicy;
  flushes: FlushMetrics | undefined;
  scheduler: SchedulerLike;
  /** Names retried operations in errors. */
  owner: string;
  /** Told before each retry's backoff (the sink's 'stall' reports). */
  onRetry?: ((info: RetryInfo) => void) | undefined;
  /** Told of each row once its ack is flushed, in batch order (the sink's dispatcher positions). */
  rowDurable: (dispatcherId: string) => void;
  /** The bytes each data file of a folder starts with (csv's output-field-header line); none when undefined. */
  fileHeader?: ((folder: DataFolder) => Uint8Array) | undefined;
}

/** The rows of one data file being assembled. */
interface FileRows {
  readonly folder: DataFolder;
  /** Set with tables across dispatchers: the file is this dispatcher's. */
  readonly dispatcherId: string | undefined;
  readonly rows: RowItem[];
  bytes: number;
}

export class BatchWriter {
  private readonly options: BatchWriterOptions;
  /** Table versions whose schema file is written. */
  private readonly schemasWritten = new Set<string>();

  constructor(options: BatchWriterOptions) {
    this.options = options;
  }

  /** Writes a batch's files, then flushes its acks; resolves with what was written. */
  async write(batch: Batch<Acked<SinkItem>>): Promise<SinkProgress[]> {
    const { output, flushes, scheduler } = this.options;
    const { files, ddl } = this.group(batch);
    const progress = await Promise.all(
      files.map(async ({ folder, dispatcherId, rows, bytes: length }) => {
        await this.ensureSchema(folder);
        const bytes = rowsFileBytes(rows, length, this.options.fileHeader?.(folder));
        const started = scheduler.now();
        const { path } = await this.withRetries(`data file of ${folder.schema}.${folder.table}`, () => output.writeDataFile(folder, bytes, dispatcherId));
        flushes?.observe(batch.reason, scheduler.now() - started, bytes.byteLength);
        return { kind: 'data', path, rows: rows.length, bytes: bytes.byteLength, reason: batch.reason } as const;
      }),
    );
    const reports: SinkProgress[] = [...progress];
    if (ddl) {
      const { path } = await this.withRetries(`schema file of the DDL at ${ddl.commitTs}`, () => output.writeSchemaFile(ddl));
      if (ddl.tableDef) this.schemasWritten.add(`${ddl.schema}.${ddl.table}@${ddl.tableDef.version}`);
      reports.push({ kind: 'schema', path, commitTs: ddl.commitTs });
    }
    // Each item's own ack, in order: no combined ack over tens of thousands of members.
    const { rowDurable } = this.options;
    for (const { value, ack } of batch.items) {
      ack.flushed();
      if (value.kind === 'row') rowDurable(value.dispatcherId);
    }
    return reports;
  }

  /**
   * A DDL at or below the checkpoint a run resumed from: its schema file was written before that
   * checkpoint was, so its table version's schema file is not written again before its rows.
   */
  schemaDurable(ddl: DdlEvent): void {
    if (ddl.tableDef) this.schemasWritten.add(`${ddl.schema}.${ddl.table}@${ddl.tableDef.version}`);
  }

  /** Writes the `metadata` checkpoint as given, retried (its order is MetadataCheckpoint's). */
  writeCheckpoint(checkpointTs: bigint): Promise<void> {
    return this.withRetries('metadata checkpoint', () => this.options.output.writeCheckpoint(checkpointTs));
  }

  /** The batch's rows by data file, in order; rows come in runs of one folder, so a key is made once per run. */
  private group(batch: Batch<Acked<SinkItem>>): { files: FileRows[]; ddl: DdlEvent | undefined } {
    const files = new Map<string, FileRows>();
    let run: FileRows | undefined;
    let ddl: DdlEvent | undefined;
    for (const { value } of batch.items) {
      if (value.kind === 'ddl') ddl = value.ddl;
      if (value.kind !== 'row') continue;
      const dispatcherId = this.options.acrossDispatchers ? value.dispatcherId : undefined;
      if (run === undefined || !sameFolder(run.folder, value.folder) || run.dispatcherId !== dispatcherId) {
        const key = folderKey(value.folder, dispatcherId ?? '');
        run = files.get(key);
        if (run === undefined) files.set(key, (run = { folder: value.folder, dispatcherId, rows: [], bytes: 0 }));
      }
      run.rows.push(value);
      run.bytes += value.bytes;
    }
    return { files: [...files.values()], ddl };
  }

  /** The schema file of a table version whose rows come without a DDL, once, before its data. */
  private async ensureSchema(folder: DataFolder): Promise<void> {
    const key = `${folder.schema}.${folder.table}@${folder.tableVersion}`;
    if (this.schemasWritten.has(key)) return;
    const def = this.options.tables.definitionAt(folder.schema, folder.table, folder.tableVersion);
    await this.withRetries(`schema of ${key}`, () => this.options.output.writeSchemaFile(def));
    this.schemasWritten.add(key);
  }

  /** Retries a write while its failure is transient; a permanent one (disk full, read-only, refused credentials) fails at once with its own message. */
  private withRetries<R>(what: string, write: () => Promise<R>): Promise<R> {
    const { flushes, onRetry } = this.options;
    return withRetries(`${this.options.owner}: ${what}`, write, {
      policy: this.options.retry,
      isRetryable: isTransientStorageError,
      onRetry: (info) => {
        flushes?.retry('write');
        onRetry?.(info);
      },
    });
  }
}
