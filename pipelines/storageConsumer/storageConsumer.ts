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
 * line); a file that fails is rolled back whole.
 */
import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { asyncScheduler, Observable, type SchedulerLike } from 'rxjs';
import type { Pool } from 'mysql2/promise';
import { DecodeError, type TableDef } from '../../lib/codec/changeEvent.ts';
import { CSV_DEFAULTS, type CsvOptions } from '../../lib/codec/csv.ts';
import { decodeSchemaFile, type SchemaFileContent } from '../../lib/codec/schemaFile.ts';
import { checkNumber, InvalidOptionError } from '../../lib/core/errors.ts';
import { storageConsumerMetrics, type AnyRegistry, type StorageConsumerMetrics } from '../../lib/metrics/index.ts';
import { createMysqlPool, MysqlError, withTransaction } from '../../lib/mysql/pool.ts';
import { quoteIdentifier } from '../../lib/mysql/sql.ts';
import { parseMysqlUri, redactMysqlUri } from '../../lib/mysql/uri.ts';
import { openStorage } from '../../lib/storage/index.ts';
import type { ExternalStorage } from '../../lib/storage/storage.ts';
import { CheckpointStore, DDL_STREAM, type Position } from './checkpointStore.ts';
import { planDdl, type DdlPlan } from './ddl.ts';
import { prepareDataFile } from './decodeFile.ts';
import { Discovery, type DiscoveryRound } from './discovery.ts';
import { tableKeyOf, type SchemaFileRef } from './pathKey.ts';
import { folderDone, planRound, schemaFileDone, type AppliedState, type WorkItem } from './roundPlan.ts';
import { applyPrepared, tableWriter, type PreparedFile, type TableWriter } from './rowWriter.ts';
import { ItemScheduler } from './schedule.ts';

export interface StorageConsumerOptions {
  /** The sink's storage: a URI (file://, s3://, azure://, memory://) or an open ExternalStorage (not closed by the consumer). */
  from: string | ExternalStorage;
  /** MySQL: `mysql://user:pass@host:port/` or a mysql2/promise Pool (not closed by the consumer). */
  to: string | Pool;
  /** Pause between rounds (ms). Default 2000. */
  intervalMs?: number;
  /** Run one round, then complete. Default false. */
  once?: boolean;
  /** The sink's csv settings (include-commit-ts, output-old-value). Default TiCDC's (both false). */
  csv?: CsvOptions;
  /** Database of the checkpoint table `replay_checkpoint`. Default 'sluice_replay'. */
  checkpointDatabase?: string;
  /** Names this consumer's rows in the checkpoint table (several consumers may share it). Default: the storage URI. */
  consumerId?: string;
  /** List the storage at least this often even when the sink's checkpoint did not move (ms). Default 60000. */
  relistIntervalMs?: number;
  /** Data files read and decoded ahead of those being applied. Default 4. */
  prefetchFiles?: number;
  /** ...and at most this many bytes of them (the files being applied not counted). Default 64 MiB. */
  prefetchBytes?: number;
  /**
   * Files (of different tables) applied at once, each in its own transaction on its own connection;
   * DDLs keep their order among themselves. Default 2. A URI `to` opens this many connections.
   */
  applyConcurrency?: number;
  /** Rows per multi-row statement. Default 1000. */
  maxRowsPerStatement?: number;
  /** Bytes of SQL per statement (keep under the server's max_allowed_packet). Default 4 MiB. */
  maxStatementBytes?: number;
  /** A table's decoding state (columns, statement parts) is released after this long without files (ms). Default 600000. */
  idleStateMs?: number;
  /** Metrics under the label `pipeline` (see storageConsumerMetrics). Default none. */
  metrics?: { registry: AnyRegistry; pipeline: string };
  scheduler?: SchedulerLike;
}

export const STORAGE_CONSUMER_DEFAULTS = Object.freeze({
  intervalMs: 2000,
  checkpointDatabase: 'sluice_replay',
  relistIntervalMs: 60_000,
  prefetchFiles: 4,
  prefetchBytes: 64 * 1024 * 1024,
  applyConcurrency: 2,
  maxRowsPerStatement: 1000,
  maxStatementBytes: 4 * 1024 * 1024,
  idleStateMs: 600_000,
  indexReadConcurrency: 16,
});

/** What the consumer reports as it goes. */
export type ConsumerProgress =
  | { readonly kind: 'ddl'; readonly path: string; readonly table: string; readonly tableVersion: bigint; readonly effect: DdlPlan['effect'] }
  | { readonly kind: 'data'; readonly path: string; readonly table: string; readonly rows: number; readonly skipped: number; readonly bytes: number }
  | {
      readonly kind: 'round';
      readonly round: number;
      readonly listed: boolean;
      readonly files: number;
      readonly rows: number;
      /** The sink's checkpoint, from its `metadata` file. */
      readonly sinkCheckpointTs: bigint | undefined;
      /** The highest commit ts applied so far. */
      readonly appliedTs: bigint | undefined;
      /** Physical ms between the sink's checkpoint and the highest commit ts applied (0 when caught up). */
      readonly lagMs: number;
      /** Folders whose table version has no schema file yet (held back). */
      readonly waiting: number;
      readonly calls: DiscoveryRound['calls'];
    };

const OWNER = 'storageConsumer';

type DataItem = Extract<WorkItem, { kind: 'data' }>;

/** The state of one table (or of a database, table ''). */
interface TableState {
  ddlVersion: bigint | undefined;
  streams: Map<string, Position>;
  /** Definitions by version, from schema files; released when idle or dropped. */
  defs: Map<bigint, Definition>;
  lastActiveMs: number;
}

/**
 * Replays the sink layout at `from` into MySQL at `to`; emits progress per file and per round.
 *
 * Lossless and exactly once in effect: each data file's rows and the table's checkpoint commit in
 * one transaction; a restart resumes after the last committed file, and rows below a table's
 * applied commit ts are skipped. Rows at that exact commit ts are applied again (upserts and deletes
 * by primary key make that harmless), because a transaction may span two data files.
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
    const cleanups: Array<() => Promise<void>> = [];
    const run = async () => {
      const storage = typeof options.from === 'string' ? await openStorage(options.from) : options.from;
      if (typeof options.from === 'string') cleanups.push(() => storage.close());
      const mysql = typeof options.to === 'string' ? createMysqlPool(options.to, { connectionLimit: settings.applyConcurrency }) : undefined;
      if (mysql) cleanups.push(() => mysql.end());
      const pool = mysql?.pool ?? (options.to as Pool);
      const target = typeof options.to === 'string' ? redactMysqlUri(options.to) : 'the given MySQL pool';
      const consumer = new Consumer(storage, pool, target, settings, options.consumerId ?? storage.uri, (p) => {
        if (!closed) subscriber.next(p);
      }, () => closed);
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
      // Ending the pool aborts a statement in flight; MySQL rolls its open transaction back.
      for (const cleanup of cleanups.reverse()) void cleanup().catch(() => undefined);
    };
  });
}

function sleep(ms: number, scheduler: SchedulerLike, stopped: () => boolean): Promise<void> {
  if (stopped()) return Promise.resolve();
  return new Promise((resolve) => scheduler.schedule(() => resolve(), ms));
}

interface Settings {
  intervalMs: number;
  once: boolean;
  csv: Required<CsvOptions>;
  checkpointDatabase: string;
  relistIntervalMs: number;
  prefetchFiles: number;
  prefetchBytes: number;
  applyConcurrency: number;
  maxRowsPerStatement: number;
  maxStatementBytes: number;
  idleStateMs: number;
  metrics: StorageConsumerMetrics | undefined;
  scheduler: SchedulerLike;
}

function checkOptions(options: StorageConsumerOptions): Settings {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError(OWNER, 'options', options, 'an object');
  const { from, to } = options;
  if (!(typeof from === 'string' && from !== '') && !(typeof from === 'object' && from !== null && typeof (from as ExternalStorage).list === 'function')) {
    throw new InvalidOptionError(OWNER, 'from', from, 'a storage URI or an ExternalStorage');
  }
  if (!(typeof to === 'string' && to !== '') && !(typeof to === 'object' && to !== null && typeof (to as Pool).getConnection === 'function')) {
    throw new InvalidOptionError(OWNER, 'to', typeof to === 'string' ? redactMysqlUri(to) : to, 'a mysql:// URI or a mysql2/promise Pool');
  }
  // A bad URI fails here, when the flow is created, not at subscribe.
  if (typeof to === 'string') parseMysqlUri(to);
  const d = STORAGE_CONSUMER_DEFAULTS;
  const database = options.checkpointDatabase ?? d.checkpointDatabase;
  if (typeof database !== 'string' || !/^[A-Za-z0-9_$]{1,64}$/.test(database)) {
    throw new InvalidOptionError(OWNER, 'checkpointDatabase', database, 'a database name of 1..64 letters, digits, _ or $');
  }
  if (options.consumerId !== undefined && (typeof options.consumerId !== 'string' || options.consumerId === '' || options.consumerId.length > 191)) {
    throw new InvalidOptionError(OWNER, 'consumerId', options.consumerId, 'a string of 1..191 characters');
  }
  const csv = { ...CSV_DEFAULTS, ...options.csv };
  for (const flag of ['includeCommitTs', 'outputOldValue'] as const) {
    if (typeof csv[flag] !== 'boolean') throw new InvalidOptionError(OWNER, `csv.${flag}`, csv[flag], 'a boolean');
  }
  const metrics = options.metrics;
  if (metrics !== undefined && (typeof metrics !== 'object' || metrics === null || typeof metrics.registry?.getMetricsAsJSON !== 'function' || typeof metrics.pipeline !== 'string' || metrics.pipeline === '')) {
    throw new InvalidOptionError(OWNER, 'metrics', metrics, 'an object { registry: a prom-client Registry, pipeline: a non-empty string }');
  }
  return {
    intervalMs: checkNumber(OWNER, 'intervalMs', options.intervalMs ?? d.intervalMs, { min: 0 }),
    once: options.once === true,
    csv,
    checkpointDatabase: database,
    relistIntervalMs: checkNumber(OWNER, 'relistIntervalMs', options.relistIntervalMs ?? d.relistIntervalMs, { min: 0 }),
    prefetchFiles: checkNumber(OWNER, 'prefetchFiles', options.prefetchFiles ?? d.prefetchFiles, { min: 0, max: 1024, integer: true }),
    prefetchBytes: checkNumber(OWNER, 'prefetchBytes', options.prefetchBytes ?? d.prefetchBytes, { min: 0, integer: true }),
    applyConcurrency: checkNumber(OWNER, 'applyConcurrency', options.applyConcurrency ?? d.applyConcurrency, { min: 1, max: 64, integer: true }),
    maxRowsPerStatement: checkNumber(OWNER, 'maxRowsPerStatement', options.maxRowsPerStatement ?? d.maxRowsPerStatement, { min: 1, integer: true }),
    maxStatementBytes: checkNumber(OWNER, 'maxStatementBytes', options.maxStatementBytes ?? d.maxStatementBytes, { min: 1024, integer: true }),
    idleStateMs: checkNumber(OWNER, 'idleStateMs', options.idleStateMs ?? d.idleStateMs, { min: 1 }),
    metrics: metrics === undefined ? undefined : storageConsumerMetrics(metrics.registry, { pipeline: metrics.pipeline }),
    scheduler: options.scheduler ?? asyncScheduler,
  };
}

/** A data file's read and statements, started ahead; `bytes` counts once it is read (the larger of file and SQL). */
interface Prefetched {
  result: Promise<DecodedFile>;
  bytes: number;
}

interface DecodedFile {
  prepared: PreparedFile;
  writer: TableWriter;
  bytes: number;
}

interface Definition {
  def: TableDef | undefined;
  content: SchemaFileContent;
  writer?: TableWriter;
}

/** One subscription's state and work. */
class Consumer implements AppliedState {
  readonly #storage: ExternalStorage;
  readonly #pool: Pool;
  readonly #target: string;
  readonly #settings: Settings;
  readonly #emit: (progress: ConsumerProgress) => void;
  readonly #stopped: () => boolean;
  readonly #checkpoints: CheckpointStore;
  readonly #discovery: Discovery;
  readonly #tables = new Map<string, TableState>();
  #appliedTs: bigint | undefined;
  #missingRounds = 0;

  constructor(storage: ExternalStorage, pool: Pool, target: string, settings: Settings, consumerId: string, emit: (p: ConsumerProgress) => void, stopped: () => boolean) {
    this.#storage = storage;
    this.#pool = pool;
    this.#target = target;
    this.#settings = settings;
    this.#emit = emit;
    this.#stopped = stopped;
    this.#checkpoints = new CheckpointStore(settings.checkpointDatabase, consumerId);
    this.#discovery = new Discovery(storage, { relistIntervalMs: settings.relistIntervalMs, readConcurrency: STORAGE_CONSUMER_DEFAULTS.indexReadConcurrency, now: () => performance.now() });
  }

  ddlVersion(tableKey: string): bigint | undefined {
    return this.#tables.get(tableKey)?.ddlVersion;
  }

  position(tableKey: string, stream: string): Position | undefined {
    return this.#tables.get(tableKey)?.streams.get(stream);
  }

  #state(tableKey: string): TableState {
    let state = this.#tables.get(tableKey);
    if (!state) this.#tables.set(tableKey, (state = { ddlVersion: undefined, streams: new Map(), defs: new Map(), lastActiveMs: performance.now() }));
    return state;
  }

  async #mysql<T>(doing: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw error instanceof MysqlError ? error : new MysqlError(this.#target, doing, error);
    }
  }

  async start(): Promise<void> {
    await this.#mysql(`create the checkpoint table ${this.#checkpoints.tableName}`, () => this.#checkpoints.ensure(this.#pool));
    const stored = await this.#mysql(`read the checkpoint table ${this.#checkpoints.tableName}`, () => this.#checkpoints.load(this.#pool));
    for (const row of stored) {
      const state = this.#state(tableKeyOf(row.schema, row.table === '' ? undefined : row.table));
      if (row.stream === DDL_STREAM) state.ddlVersion = row.tableVersion;
      else {
        state.streams.set(row.stream, { tableVersion: row.tableVersion, date: row.date, fileIndex: row.fileIndex, commitTs: row.commitTs });
        this.#noteApplied(row.commitTs);
      }
    }
  }

  #noteApplied(ts: bigint | undefined): void {
    if (ts !== undefined && (this.#appliedTs === undefined || ts > this.#appliedTs)) this.#appliedTs = ts;
  }

  async round(round: number): Promise<void> {
    const metrics = this.#settings.metrics;
    let discovered: DiscoveryRound;
    try {
      discovered = await this.#discovery.round({
        schemaFileDone: (ref) => schemaFileDone(ref, this),
        folderDone: (folder) => folderDone(folder, this),
      });
    } catch (error) {
      metrics?.error('discover');
      throw error;
    }
    metrics?.round(discovered.listed, discovered.calls.keysListed, discovered.calls.indexReads);
    const plan = planRound(discovered.schemaFiles, discovered.folders, this);
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
    for (const item of plan.items) await this.#definition(item.tableKey, item.tableVersion, schemaByVersion);

    const { files, rows } = await this.#applyItems(plan.items, schemaByVersion);
    this.#reclaimIdle();

    const sinkTs = discovered.sinkCheckpointTs;
    // Caught up (everything found was applied): no lag; else the physical time between the two.
    const caughtUp = !this.#stopped() && plan.missingSchema.length === 0;
    const lagMs = caughtUp || sinkTs === undefined || this.#appliedTs === undefined ? 0 : Math.max(0, Number((sinkTs >> 18n) - (this.#appliedTs >> 18n)));
    metrics?.lag(lagMs);
    this.#emit({
      kind: 'round',
      round,
      listed: discovered.listed,
      files,
      rows,
      sinkCheckpointTs: sinkTs,
      appliedTs: this.#appliedTs,
      lagMs,
      waiting: plan.missingSchema.length,
      calls: discovered.calls,
    });
  }

  /**
   * Runs a round's items, up to `applyConcurrency` at once (see schedule.ts for what waits for what),
   * with data files read and turned into statements ahead, bounded by `prefetchFiles` and
   * `prefetchBytes`. On an error nothing new starts; those running finish (each commits whole or
   * not at all) and the first error is thrown.
   */
  async #applyItems(items: readonly WorkItem[], schemaByVersion: Map<string, SchemaFileRef>): Promise<{ files: number; rows: number }> {
    const settings = this.#settings;
    const barrier = (item: WorkItem) => item.kind === 'ddl' && (item.ref.table === undefined || this.#tables.get(item.tableKey)?.defs.get(item.tableVersion)?.content.ddlType === 'RENAME TABLE');
    const scheduler = new ItemScheduler(items, barrier);
    const ahead = new Map<WorkItem, Prefetched>();
    let aheadBytes = 0;
    const running = new Map<WorkItem, Promise<void>>();
    let files = 0;
    let rows = 0;
    let failure: { error: unknown } | undefined;

    const readAhead = (item: WorkItem): Prefetched => {
      const entry: Prefetched = { result: this.#readDataFile(item as DataItem, schemaByVersion), bytes: 0 };
      entry.result.then(
        (decoded) => {
          if (ahead.get(item) !== entry) return;
          entry.bytes = decoded.bytes;
          aheadBytes += decoded.bytes;
        },
        () => undefined, // reported when its turn comes
      );
      ahead.set(item, entry);
      return entry;
    };
    const fill = () => {
      const candidates = scheduler.upcoming([...running.keys()], settings.prefetchFiles);
      for (const item of candidates) {
        if (ahead.size >= settings.prefetchFiles || (ahead.size > 0 && aheadBytes >= settings.prefetchBytes)) break;
        if (!ahead.has(item)) readAhead(item);
      }
    };
    const run = async (item: WorkItem) => {
      if (item.kind === 'ddl') {
        await this.#applyDdl(item, schemaByVersion);
        return;
      }
      const entry = ahead.get(item) ?? readAhead(item);
      let decoded: DecodedFile;
      try {
        decoded = await entry.result;
      } catch (error) {
        settings.metrics?.error('decode');
        throw error;
      } finally {
        ahead.delete(item);
        aheadBytes -= entry.bytes;
      }
      // Not `rows += await ...`: that reads `rows` before the wait, and other files finish meanwhile.
      const applied = await this.#applyData(item, decoded);
      rows += applied;
    };

    try {
      for (;;) {
        while (failure === undefined && !this.#stopped() && running.size < settings.applyConcurrency) {
          const item = scheduler.next([...running.keys()]);
          if (item === undefined) break;
          const done = run(item).then(
            () => {
              files++;
            },
            (error: unknown) => {
              failure ??= { error };
            },
          );
          running.set(item, done.finally(() => running.delete(item)));
        }
        if (failure === undefined && !this.#stopped()) fill();
        if (running.size === 0) break;
        await Promise.race(running.values());
      }
    } finally {
      // Read-ahead that will not be applied (stopped, failed) must not leave rejections unhandled.
      for (const entry of ahead.values()) entry.result.catch(() => undefined);
    }
    if (failure !== undefined) throw failure.error;
    if (!scheduler.allStarted && !this.#stopped()) throw new Error('storageConsumer: a round ended with work not started (a scheduling bug)');
    return { files, rows };
  }

  /** The definition (and schema file content) of a table version, read and checked once. */
  async #definition(tableKey: string, version: bigint, schemaByVersion: Map<string, SchemaFileRef>): Promise<Definition> {
    const state = this.#state(tableKey);
    state.lastActiveMs = performance.now();
    const cached = state.defs.get(version);
    if (cached) return cached;
    const ref = schemaByVersion.get(`${tableKey}@${version}`);
    if (ref === undefined) throw new DecodeError(tableKey, `no schema file for table version ${version}`);
    const raw = await this.#storage.get(ref.path);
    if (raw === undefined) throw new DecodeError(ref.path, 'the schema file was listed but is gone');
    let content: SchemaFileContent;
    try {
      content = decodeSchemaFile(new TextDecoder('utf-8', { fatal: true }).decode(raw), ref.path);
    } catch (error) {
      this.#settings.metrics?.error('decode');
      if (error instanceof TypeError) throw new DecodeError(ref.path, 'the schema file is not valid UTF-8');
      throw error;
    }
    const entry: Definition = { def: content.tableDef, content };
    state.defs.set(version, entry);
    return entry;
  }

  /** The file read and turned into statements of its table version (a turn of the event loop between slices). */
  async #readDataFile(item: DataItem, schemaByVersion: Map<string, SchemaFileRef>): Promise<DecodedFile> {
    const definition = await this.#definition(item.tableKey, item.tableVersion, schemaByVersion);
    const { def, content } = definition;
    if (def === undefined) throw new DecodeError(item.path, `the schema file of table version ${item.tableVersion} has no columns (${content.ddlType ?? 'no DDL'}), so its data files cannot be decoded`);
    definition.writer ??= tableWriter(def, schemaByVersion.get(`${item.tableKey}@${item.tableVersion}`)?.path ?? item.tableKey);
    const writer = definition.writer;
    const bytes = await this.#storage.get(item.path);
    if (bytes === undefined) throw new DecodeError(item.path, `the data file is missing, but ${item.folder.indexPath} names a data file at or after it`);
    const prepared = await prepareDataFile(bytes, item.path, writer, this.#settings.csv, this.#settings, () => nextTurn());
    return { prepared, writer, bytes: Math.max(bytes.byteLength, prepared.sqlChars) };
  }

  async #applyData(item: DataItem, decoded: DecodedFile): Promise<number> {
    const state = this.#state(item.tableKey);
    const writer = decoded.writer;
    const before = state.streams.get(item.stream);
    const started = performance.now();
    const { schema, table } = item.folder;
    let result;
    try {
      result = await withTransaction(this.#pool, async (connection) => {
        const written = await applyPrepared(connection, writer, decoded.prepared, { path: item.path, skipBelowTs: before?.commitTs });
        // Rows of a version are never older than it: without commit ts in the file (csv default) the version stands in.
        let commitTs = before?.commitTs !== undefined && before.commitTs > item.tableVersion ? before.commitTs : item.tableVersion;
        if (written.maxCommitTs !== undefined && written.maxCommitTs > commitTs) commitTs = written.maxCommitTs;
        const position: Position = { tableVersion: item.tableVersion, date: item.date, fileIndex: item.fileIndex, commitTs };
        await connection.query(this.#checkpoints.positionUpsertSql(schema, table, item.stream, position));
        return { written, position };
      });
    } catch (error) {
      this.#settings.metrics?.error('apply');
      if (error instanceof Error && error.name === 'ApplyError') throw error;
      throw new MysqlError(this.#target, `apply ${item.path}`, error);
    }
    state.streams.set(item.stream, result.position);
    state.lastActiveMs = performance.now();
    this.#noteApplied(result.position.commitTs);
    this.#settings.metrics?.dataFile(result.written.applied, result.written.skipped, performance.now() - started);
    this.#emit({ kind: 'data', path: item.path, table: `${schema}.${table}`, rows: result.written.applied, skipped: result.written.skipped, bytes: decoded.bytes });
    return result.written.applied;
  }

  async #applyDdl(item: Extract<WorkItem, { kind: 'ddl' }>, schemaByVersion: Map<string, SchemaFileRef>): Promise<void> {
    const { content } = await this.#definition(item.tableKey, item.tableVersion, schemaByVersion);
    const path = item.ref.path;
    let plan: DdlPlan;
    try {
      plan = planDdl(content, path, await this.#previousDefinition(item.tableKey, item.tableVersion, schemaByVersion));
    } catch (error) {
      this.#settings.metrics?.error('ddl');
      throw error;
    }
    const started = performance.now();
    try {
      await this.#runDdl(plan, path);
      const table = item.ref.table ?? '';
      await this.#pool.query(this.#checkpoints.positionUpsertSql(item.ref.schema, table, DDL_STREAM, { tableVersion: item.tableVersion, date: '', fileIndex: -1, commitTs: item.tableVersion }));
    } catch (error) {
      this.#settings.metrics?.error('ddl');
      throw error instanceof MysqlError ? error : new MysqlError(this.#target, `apply the DDL of ${path} (${JSON.stringify(content.query)})`, error);
    }
    const state = this.#state(item.tableKey);
    state.ddlVersion = item.tableVersion;
    this.#noteApplied(item.tableVersion);
    // Earlier versions' definitions are no longer needed; a dropped table needs none.
    for (const version of state.defs.keys()) if (version < item.tableVersion || plan.effect === 'drop-table') state.defs.delete(version);
    if (plan.effect === 'drop-schema') {
      for (const [key, table] of this.#tables) if (key.startsWith(`${item.ref.schema}/`) && key !== item.tableKey) table.defs.clear();
    }
    if (plan.renamedFrom) this.#tables.get(tableKeyOf(plan.renamedFrom.schema, plan.renamedFrom.table))?.defs.clear();
    this.#settings.metrics?.ddl(performance.now() - started);
    this.#emit({ kind: 'ddl', path, table: item.ref.table === undefined ? item.ref.schema : `${item.ref.schema}.${item.ref.table}`, tableVersion: item.tableVersion, effect: plan.effect });
  }

  /**
   * The columns of the table's applied version below `version` (read again from its schema file
   * after a restart), or undefined when none applied or the table was dropped.
   */
  async #previousDefinition(tableKey: string, version: bigint, schemaByVersion: Map<string, SchemaFileRef>): Promise<TableDef | undefined> {
    const state = this.#tables.get(tableKey);
    if (state?.ddlVersion === undefined || state.ddlVersion >= version) return undefined;
    if (!state.defs.has(state.ddlVersion) && !schemaByVersion.has(`${tableKey}@${state.ddlVersion}`)) return undefined;
    return (await this.#definition(tableKey, state.ddlVersion, schemaByVersion)).def;
  }

  async #runDdl(plan: DdlPlan, path: string): Promise<void> {
    const connection = await this.#pool.getConnection();
    try {
      let inDatabase = false;
      for (const statement of plan.statements) {
        const isDatabaseStatement = /^(CREATE|DROP) DATABASE /.test(statement);
        if (!isDatabaseStatement && !inDatabase) {
          await connection.query(`USE ${quoteIdentifier(plan.database)}`);
          inDatabase = true;
        }
        try {
          await connection.query(statement);
        } catch (error) {
          const errno = (error as { errno?: unknown }).errno;
          if (typeof errno === 'number' && plan.alreadyApplied.has(errno)) continue;
          // A rename already done: the source is gone and the target is there.
          if (plan.renamedFrom && plan.tableDef && !(await this.#tableExists(connection, plan.renamedFrom.schema, plan.renamedFrom.table)) && (await this.#tableExists(connection, plan.tableDef.schema, plan.tableDef.table))) continue;
          throw new MysqlError(this.#target, `apply the DDL of ${path} (${JSON.stringify(statement)})`, error);
        }
      }
    } finally {
      connection.release();
    }
  }

  async #tableExists(connection: { query: Pool['query'] }, schema: string, table: string): Promise<boolean> {
    const [rows] = await connection.query('SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [schema, table]);
    return (rows as unknown[]).length > 0;
  }

  /** Releases definitions (columns, statement parts) of tables without files for idleStateMs. */
  #reclaimIdle(): void {
    const now = performance.now();
    for (const state of this.#tables.values()) {
      if (state.defs.size > 0 && now - state.lastActiveMs > this.#settings.idleStateMs) state.defs.clear();
    }
  }

  /** Tables whose definitions are held (for tests of reclaiming). */
  get heldDefinitions(): number {
    let count = 0;
    for (const state of this.#tables.values()) count += state.defs.size;
    return count;
  }
}
