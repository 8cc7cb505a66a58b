/**
 * storageConsumer: replays a storage sink's layout (TiCDC-compatible) into MySQL, incrementally,
 * exactly once in effect (DESIGN.md flow 2, seed 000).
 *
 * Each round: discover (metadata, schema files, index files; a listing only when something may be
 * new) -> plan (per table version: DDL first, then data files in index order) -> read data files a
 * few ahead (bounded) and turn them into SQL statements -> apply each data file in one MySQL
 * transaction together with the table's checkpoint row, files of different tables side by side on
 * `applyConcurrency` connections (schedule.ts says what waits for what); each DDL, then its
 * checkpoint row.
 *
 * Invariants guarded here: a row is applied in the transaction that also moves its table's
 * checkpoint past its file, so a crash at any point neither loses nor repeats a row; a table's DDL
 * runs before any row of its version, and only after every row of the versions before it; every
 * decode or apply error stops the consumer and reaches the subscriber naming the file (and record or
 * line); a file that fails is rolled back whole. A MySQL outage (transient errors) is ridden out for
 * `retryForMs`, each failed operation retried whole (mysqlRetry.ts); a storage root that does not
 * exist fails the start (StorageRootMissingError) instead of replaying nothing.
 */
import { performance } from 'node:perf_hooks';
import { Observable, type SchedulerLike } from 'rxjs';
import type { Pool } from 'mysql2/promise';
import { DecodeError } from '../../lib/codec/changeEvent.ts';
import { createMysqlPool, MysqlError } from '../../lib/mysql/pool.ts';
import { parseMysqlUri, redactMysqlUri } from '../../lib/mysql/uri.ts';
import { openStorage, redactUri, type OpenStorageOptions } from '../../lib/storage/index.ts';
import type { ExternalStorage } from '../../lib/storage/storage.ts';
import { applyRound } from './applyRound.ts';
import { CheckpointStore } from './checkpointStore.ts';
import { Discovery, type DiscoveryRound } from './discovery.ts';
import { ItemApplier } from './itemApplier.ts';
import { MysqlRetry } from './mysqlRetry.ts';
import { checkOptions, STORAGE_CONSUMER_DEFAULTS, type Settings, type StorageConsumerOptions } from './options.ts';
import { tableKeyOf, type SchemaFileRef } from './pathKey.ts';
import type { ConsumerProgress } from './progress.ts';
import { fileApplied, folderDone, planRound, schemaFileDone, type WorkItem } from './roundPlan.ts';
import { TableStates } from './tableStates.ts';

/**
 * Replays the sink layout at `from` into MySQL at `to`; emits progress per file and per round.
 *
 * Lossless and exactly once in effect: each data file's rows and the table's checkpoint commit in
 * one transaction; a restart resumes after the last committed file, and rows below a table's
 * applied commit ts are skipped. Rows at that exact commit ts are applied again, because a
 * transaction may span two data files (rowWriter.ts says why that is safe).
 * Bounded: `prefetchFiles` / `prefetchBytes` decoded files ahead; table state released when idle.
 * Unsubscribing stops after the statement in flight (an unfinished transaction is rolled back).
 *
 * @example
 * storageConsumer({ from: 'file:///data/cdc', to: 'mysql://root@127.0.0.1:3306/', intervalMs: 2000 })
 *   .subscribe((p) => p.kind === 'round' && console.log(`round ${p.round}: ${p.rows} rows`));
 */
export function storageConsumer(options: StorageConsumerOptions): Observable<ConsumerProgress> {
  const settings = checkOptions(options);
  return new Observable<ConsumerProgress>((subscriber) => {
    let closed = false;
    const stop = new AbortController();
    const cleanups: Array<() => Promise<void>> = [];
    const run = async () => {
      const emit = (p: ConsumerProgress) => {
        if (p.kind === 'stall') settings.metrics?.retry(p.service === 'MySQL' ? 'mysql' : 'storage', retryKindOf(p.operation), p.elapsedMs);
        if (!closed) subscriber.next(p);
      };
      const storage = typeof options.from === 'string' ? await openStorage(options.from, storageRetry(settings, redactUri(options.from), emit)) : options.from;
      if (typeof options.from === 'string') cleanups.push(() => storage.close());
      // A folder, bucket or container that is not there would replay nothing, forever: say so.
      await storage.checkRoot?.();
      const mysql = typeof options.to === 'string' ? createMysqlPool(options.to, { connectionLimit: settings.applyConcurrency }) : undefined;
      if (mysql) cleanups.push(() => mysql.end());
      const pool = mysql?.pool ?? (options.to as Pool);
      const target = typeof options.to === 'string' ? redactMysqlUri(options.to) : 'the given MySQL pool';
      const location = typeof options.to === 'string' ? parseMysqlUri(options.to) : undefined;
      const retry = new MysqlRetry({
        policy: settings.outageRetry,
        uri: target,
        hostPort: location === undefined ? 'the given MySQL pool' : `${location.host.includes(':') ? `[${location.host}]` : location.host}:${location.port}`,
        emit,
        signal: stop.signal,
      });
      const consumer = new Consumer(storage, pool, target, settings, options.consumerId ?? storage.uri, emit, () => closed, retry);
      await consumer.start();
      for (let round = 1; !closed; round++) {
        await consumer.round(round);
        if (settings.once || closed) break;
        await sleep(settings.intervalMs, settings.scheduler, () => closed);
      }
    };
    run().then(
      () => {
        if (!closed) subscriber.complete();
      },
      (error: unknown) => {
        if (!closed) subscriber.error(error);
      },
    );
    return () => {
      closed = true;
      stop.abort(new Error('storageConsumer: unsubscribed'));
      // Ending the pool aborts a statement in flight; MySQL rolls its open transaction back.
      for (const cleanup of cleanups.reverse()) void cleanup().catch(() => undefined);
    };
  });
}

/**
 * s3:// and azure:// requests ride out an outage within the same budget as MySQL (retryForMs, the
 * same backoff), with a 'stall' event before each retry; a refusal still fails at once.
 */
function storageRetry(settings: Settings, uri: string, emit: (p: ConsumerProgress) => void): OpenStorageOptions {
  const retryForMs = settings.outageRetry.maxElapsedMs ?? Infinity;
  return {
    retry: settings.outageRetry,
    onRetry: ({ operation, attempt, delayMs, elapsedMs, error }) => {
      const status = (error as { $metadata?: { httpStatusCode?: unknown }; statusCode?: unknown } | null)?.$metadata?.httpStatusCode ?? (error as { statusCode?: unknown } | null)?.statusCode;
      const code = (error as { code?: unknown } | null)?.code;
      const shown = typeof code === 'string' ? code : typeof status === 'number' ? `HTTP ${status}` : error instanceof Error ? error.name : 'error';
      emit({ kind: 'stall', service: 'storage', target: uri, operation, code: shown, unreachable: true, attempt, elapsedMs, delayMs, retryForMs, message: error instanceof Error ? error.message : String(error) });
    },
  };
}

/**
 * The metric label of a retried operation: a short kind, never a path ("apply db/t/…/CDC1.csv" ->
 * apply, "apply the DDL of …" -> ddl, "read the checkpoint table …" -> checkpoint, a storage
 * request's operation -> its first word).
 */
export function retryKindOf(operation: string): string {
  if (operation.startsWith('apply the DDL')) return 'ddl';
  if (operation.includes('checkpoint table')) return 'checkpoint';
  return /^[A-Za-z]+/.exec(operation)?.[0]?.toLowerCase() ?? 'other';
}

function sleep(ms: number, scheduler: SchedulerLike, stopped: () => boolean): Promise<void> {
  if (stopped()) return Promise.resolve();
  return new Promise((resolve) => scheduler.schedule(() => resolve(), ms));
}

/** One subscription's state and work: each round discovers, plans and applies what is new. */
class Consumer {
  readonly #pool: Pool;
  readonly #target: string;
  readonly #settings: Settings;
  readonly #emit: (progress: ConsumerProgress) => void;
  readonly #stopped: () => boolean;
  readonly #checkpoints: CheckpointStore;
  readonly #discovery: Discovery;
  readonly #tables: TableStates;
  readonly #applier: ItemApplier;
  readonly #retry: MysqlRetry;
  #missingRounds = 0;

  constructor(storage: ExternalStorage, pool: Pool, target: string, settings: Settings, consumerId: string, emit: (p: ConsumerProgress) => void, stopped: () => boolean, retry: MysqlRetry) {
    this.#pool = pool;
    this.#target = target;
    this.#retry = retry;
    this.#settings = settings;
    this.#emit = emit;
    this.#stopped = stopped;
    this.#checkpoints = new CheckpointStore(settings.checkpointDatabase, consumerId);
    this.#discovery = new Discovery(storage, { relistIntervalMs: settings.relistIntervalMs, readConcurrency: STORAGE_CONSUMER_DEFAULTS.indexReadConcurrency, now: () => performance.now(), layout: { dateSeparator: settings.dateSeparator, enablePartitionSeparator: settings.enablePartitionSeparator } });
    this.#tables = new TableStates(storage, settings);
    this.#applier = new ItemApplier({ storage, pool, target, settings, checkpoints: this.#checkpoints, tables: this.#tables, emit, retry });
  }


  /** Runs `call` under the MySQL retries; a failure becomes a MysqlError naming what was being done. */
  async #mysql<T>(doing: string, call: () => Promise<T>): Promise<T> {
    try {
      return await this.#retry.run(doing, call);
    } catch (error) {
      throw error instanceof MysqlError ? error : new MysqlError(this.#target, doing, error);
    }
  }

  /** Makes sure the checkpoint table is there and takes the positions stored in it. */
  async start(): Promise<void> {
    await this.#mysql(`create the checkpoint table ${this.#checkpoints.tableName}`, () => this.#checkpoints.ensure(this.#pool));
    const stored = await this.#mysql(`read the checkpoint table ${this.#checkpoints.tableName}`, () => this.#checkpoints.load(this.#pool));
    this.#tables.load(stored);
  }

  /** One round: discover, plan, check the schema files, apply; then reports the round. */
  async round(round: number): Promise<void> {
    const metrics = this.#settings.metrics;
    let discovered: DiscoveryRound;
    try {
      discovered = await this.#discovery.round({
        schemaFileDone: (ref) => schemaFileDone(ref, this.#tables),
        folderDone: (folder) => folderDone(folder, this.#tables),
        fileApplied: (folder, fileIndex) => fileApplied(folder, fileIndex, this.#tables),
      });
    } catch (error) {
      metrics?.error('discover');
      throw error;
    }
    metrics?.round(discovered.listed, discovered.calls.keysListed, discovered.calls.indexReads);
    const plan = planRound(discovered.schemaFiles, discovered.folders, this.#tables);
    // Data without its schema file: the listing may have raced the sink; a later listing must find it.
    if (plan.missingSchema.length > 0) {
      this.#discovery.relistNextRound();
      if (++this.#missingRounds > 3) {
        const folder = plan.missingSchema[0]!;
        metrics?.error('discover');
        throw new DecodeError(folder.indexPath, `no schema file of ${folder.schema}.${folder.table} at table version ${folder.tableVersion} (expected ${folder.schema}/${folder.table}/meta/schema_${folder.tableVersion}_*.json)`);
      }
    } else this.#missingRounds = 0;

    const schemaByVersion = new Map<string, SchemaFileRef>();
    for (const ref of discovered.schemaFiles) schemaByVersion.set(`${tableKeyOf(ref.schema, ref.table)}@${ref.tableVersion}`, ref);
    // Every schema file the plan needs, checked (checksum) before anything of this round is applied.
    for (const item of plan.items) await this.#tables.definition(item.tableKey, item.tableVersion, schemaByVersion);

    const tables = this.#tables;
    // A database-level DDL or a RENAME runs alone (a barrier): it touches tables other than its own.
    const barrier = (item: WorkItem) => item.kind === 'ddl' && (item.ref.table === undefined || tables.heldDefinition(item.tableKey, item.tableVersion)?.content.ddlType === 'RENAME TABLE');
    const { files, rows } = await applyRound({ items: plan.items, schemaByVersion, barrier, applier: this.#applier, settings: this.#settings, stopped: this.#stopped });
    tables.reclaimIdle();

    const sinkTs = discovered.sinkCheckpointTs;
    // Caught up (everything found was applied): no lag; else the physical time between the two.
    const caughtUp = !this.#stopped() && plan.missingSchema.length === 0;
    const appliedTs = tables.appliedTs;
    const lagMs = caughtUp || sinkTs === undefined || appliedTs === undefined ? 0 : Math.max(0, Number((sinkTs >> 18n) - (appliedTs >> 18n)));
    metrics?.lag(lagMs);
    this.#emit({
      kind: 'round',
      round,
      listed: discovered.listed,
      files,
      rows,
      sinkCheckpointTs: sinkTs,
      appliedTs,
      lagMs,
      waiting: plan.missingSchema.length,
      calls: discovered.calls,
    });
  }
}
