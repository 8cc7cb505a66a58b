/**
 * Where a restarted sink resumes: the checkpoint in its own root `metadata` file, below which (and
 * at which) every event is already durable, and the count of events skipped for it. The sink reads
 * that file here once, before its first event, resume on or off: the same value seeds its checkpoint
 * stage (MetadataCheckpoint), which never writes at or below it.
 *
 * TiCDC resumes a changefeed from its checkpoint-ts the same way: its puller drops every event with
 * a commit ts at or below the start ts as stale (pingcap/ticdc
 * logservice/logpuller/region_event_handler.go, `entry.CommitTs <= span.startTs`), and the storage
 * sink's `metadata` file holds that checkpoint (downstreamadapter/sink/cloudstorage/sink.go).
 *
 * Invariant guarded here: an event is skipped only when its commit ts is at or below a checkpoint
 * read from the storage it is written to (the sink writes `metadata` only once everything at or
 * below it is durable, see DispatcherPositions), so skipping never loses an event and a rerun never
 * writes again what a consumer may already have applied. A `metadata` file that cannot be read as a
 * checkpoint is an error, never taken for "no checkpoint".
 */
import { DecodeError } from '../../lib/codec/changeEvent.ts';
import { parseMetadataFile } from '../../lib/codec/layout.ts';
import { withRetries, type RetryInfo, type RetryPolicy } from '../../lib/core/retry.ts';
import { isTransientStorageError } from '../../lib/storage/transient.ts';
import type { ExternalStorage } from '../../lib/storage/storage.ts';
import { METADATA_FILE_PATH } from './fileOutput.ts';

const NOT_A_CHECKPOINT =
  'restore it (it holds {"checkpoint-ts":N}, every event at or below N durable), or run with resume: false (--resume=false) to write every event again';

/** The `metadata` file of a sink's storage cannot be read as a checkpoint: names the storage, the file and what to do. */
export class UnreadableCheckpointError extends Error {
  override readonly name = 'UnreadableCheckpointError';
  readonly storageUri: string;

  constructor(storageUri: string, problem: string, cause?: unknown) {
    super(`storageSink ${storageUri}: cannot resume from "${METADATA_FILE_PATH}": ${problem}; ${NOT_A_CHECKPOINT}`, cause === undefined ? undefined : { cause });
    this.storageUri = storageUri;
  }
}

/** The checkpoint a run resumes from and what it skipped. */
export class ResumePoint {
  /** Every event at or below this commit ts is durable in the storage. */
  readonly checkpointTs: bigint;
  /** Events skipped so far (rows and DDLs). */
  skipped = 0;
  /** `skipped` when it was last reported. */
  private reportedAt = 0;

  constructor(checkpointTs: bigint) {
    this.checkpointTs = checkpointTs;
  }

  /** Whether an event at `commitTs` is already durable (at or below the checkpoint). */
  covers(commitTs: bigint): boolean {
    return commitTs <= this.checkpointTs;
  }

  /** Skips made since the last call: true once per run of skips (the caller reports the total then). */
  takeUnreported(): boolean {
    if (this.skipped === this.reportedAt) return false;
    this.reportedAt = this.skipped;
    return true;
  }
}

/**
 * Reads the checkpoint of `storage`'s root `metadata` file, or undefined when there is no such file
 * (a first run). Reads are retried under `retry` (`onRetry` told before each backoff); a file that is not a checkpoint rejects with
 * UnreadableCheckpointError.
 *
 * @example const stored = await readStoredCheckpoint(storage, retry, 'storageSink'); // 4351n
 */
export async function readStoredCheckpoint(storage: ExternalStorage, retry: RetryPolicy, owner: string, onRetry?: (info: RetryInfo) => void): Promise<bigint | undefined> {
  // A read that keeps failing rejects naming this operation (RetriesExhaustedError).
  const raw = await withRetries(`${owner} ${storage.uri}: read ${METADATA_FILE_PATH} (the checkpoint stored by an earlier run)`, () => storage.get(METADATA_FILE_PATH), {
    policy: retry,
    isRetryable: isTransientStorageError, // a refusal (credentials, a file in the way) fails at once
    ...(onRetry === undefined ? {} : { onRetry }),
  });
  if (raw === undefined) return undefined;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch (error) {
    throw new UnreadableCheckpointError(storage.uri, 'it is not UTF-8 text', error);
  }
  try {
    return parseMetadataFile(text, METADATA_FILE_PATH);
  } catch (error) {
    throw new UnreadableCheckpointError(storage.uri, error instanceof DecodeError ? error.problem : String(error), error);
  }
}
