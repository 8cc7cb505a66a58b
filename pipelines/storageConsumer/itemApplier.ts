/**
 * Applies one planned item: a data file (read and turned into statements, then applied in one MySQL
 * transaction together with its table's checkpoint row) or a DDL (then its checkpoint row). A file
 * either commits whole with its position or not at all; every error names the file (and statement).
 * When items run and in which order is the round's business (applyRound.ts), not this module's.
 *
 * Dedupe, two levels. By file: a stream's position (table version, date, file index) moves in the
 * same transaction as the file's rows, so each data file is applied exactly once, whatever the rows
 * carry. By commit ts, when rows carry one (csv with include-commit-ts, canal-json with `_tidb`):
 * rows below the stream's applied commit ts are skipped (a sink's re-send of what was applied), rows
 * at it are applied (the rest of a transaction cut across files, which may come with rows of it that
 * were applied already). Applying such rows again leaves the table as it was: a REPLACE writes the
 * same image, a delete by key removes the same row (TiCDC orders a commit ts's deletes before its
 * puts, and the puts come again after it), and an update that moved its primary key deletes the row
 * at its old key only while that row holds the old image, so it does not remove a row another file of
 * the transaction wrote there (rowWriter.ts: FLOAT, DOUBLE and JSON columns are left out of that
 * check, which then narrows to the other columns). Rows without a commit ts (canal-json without the
 * TiDB extension, TiCDC's default; csv without include-commit-ts) are applied in file order, none
 * skipped, and the stream's recorded commit ts stays what it was (at least the table version). What
 * is then NOT possible: telling a row applied before from a new one. Rows a sink writes again into
 * new files (a rerun without resume, a TiCDC changefeed restarted from an older checkpoint) are
 * applied again, in their order: the table goes back to the older row versions until the rerun's
 * later rows catch up, and ends equal to the source once they are applied.
 */
import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Pool } from 'mysql2/promise';
import { DecodeError } from '../../lib/codec/changeEvent.ts';
import { MysqlError, withTransaction } from '../../lib/mysql/pool.ts';
import { quoteIdentifier } from '../../lib/mysql/sql.ts';
import type { ExternalStorage } from '../../lib/storage/storage.ts';
import { comparePositions, DDL_STREAM, type CheckpointStore, type Position } from './checkpointStore.ts';
import { planDdl, type DdlPlan } from './ddl.ts';
import { prepareDataFile } from './decodeFile.ts';
import type { MysqlRetry } from './mysqlRetry.ts';
import type { Settings } from './options.ts';
import type { SchemaFileRef } from './pathKey.ts';
import type { ConsumerProgress } from './progress.ts';
import type { WorkItem } from './roundPlan.ts';
import { applyPrepared, tableWriter, type PreparedFile, type TableWriter } from './rowWriter.ts';
import type { TableStates } from './tableStates.ts';

export type DataItem = Extract<WorkItem, { kind: 'data' }>;
export type DdlItem = Extract<WorkItem, { kind: 'ddl' }>;

/** A data file read and turned into statements; `bytes` is the larger of file and SQL. */
export interface DecodedFile {
  prepared: PreparedFile;
  writer: TableWriter;
  bytes: number;
}

/** What applying an item uses: the sink's storage, the MySQL pool (`target` names it in errors), the tables' state. */
export interface ItemApplierParts {
  storage: ExternalStorage;
  pool: Pool;
  target: string;
  settings: Settings;
  checkpoints: CheckpointStore;
  tables: TableStates;
  emit: (progress: ConsumerProgress) => void;
  /** Retries an item's whole transaction (or DDL) through a MySQL outage. */
  retry: MysqlRetry;
}

export class ItemApplier {
  readonly #storage: ExternalStorage;
  readonly #pool: Pool;
  readonly #target: string;
  readonly #settings: Settings;
  readonly #checkpoints: CheckpointStore;
  readonly #tables: TableStates;
  readonly #emit: (progress: ConsumerProgress) => void;
  readonly #retry: MysqlRetry;

  constructor(parts: ItemApplierParts) {
    this.#retry = parts.retry;
    this.#storage = parts.storage;
    this.#pool = parts.pool;
    this.#target = parts.target;
    this.#settings = parts.settings;
    this.#checkpoints = parts.checkpoints;
    this.#tables = parts.tables;
    this.#emit = parts.emit;
  }

  /** The file read and turned into statements of its table version (a turn of the event loop between slices). */
  async readDataFile(item: DataItem, schemaByVersion: Map<string, SchemaFileRef>): Promise<DecodedFile> {
    const definition = await this.#tables.definition(item.tableKey, item.tableVersion, schemaByVersion);
    const { def, content } = definition;
    if (def === undefined) throw new DecodeError(item.path, `the schema file of table version ${item.tableVersion} has no columns (${content.ddlType ?? 'no DDL'}), so its data files cannot be decoded`);
    definition.writer ??= tableWriter(def, schemaByVersion.get(`${item.tableKey}@${item.tableVersion}`)?.path ?? item.tableKey);
    const writer = definition.writer;
    const bytes = await this.#storage.get(item.path);
    if (bytes === undefined) throw new DecodeError(item.path, `the data file is missing, but ${item.folder.indexPath} names a data file at or after it`);
    const prepared = await prepareDataFile(bytes, item.path, writer, this.#settings.csv, this.#settings, () => nextTurn());
    return { prepared, writer, bytes: Math.max(bytes.byteLength, prepared.sqlChars) };
  }

  /** Applies the file's rows and moves its stream's position, in one transaction; returns the rows applied. */
  async applyData(item: DataItem, decoded: DecodedFile): Promise<number> {
    const state = this.#tables.state(item.tableKey);
    const writer = decoded.writer;
    const before = state.streams.get(item.stream);
    const started = performance.now();
    const { schema, table } = item.folder;
    let result;
    try {
      // A transient failure rolled the transaction back (the connection died, or a deadlock): the
      // whole file is applied again, from the same position, as if it had never been tried. Only a
      // connection lost during COMMIT leaves the outcome open: then the stored position tells.
      result = await this.#retry.run(`apply ${item.path}`, async (attempt) => {
        if (attempt > 1) {
          const stored = await this.#checkpoints.position(this.#pool, schema, table, item.stream);
          if (stored !== undefined && comparePositions(stored, item) >= 0) {
            return { written: { applied: decoded.prepared.rows, skipped: 0, maxCommitTs: undefined, statements: 0 }, position: stored };
          }
        }
        return withTransaction(this.#pool, async (connection) => {
          const written = await applyPrepared(connection, writer, decoded.prepared, { path: item.path, skipBelowTs: before?.commitTs });
          // Rows of a version are never older than it: without commit ts in the file (csv default, canal-json
          // without _tidb) the position still moves by file index, and the commit ts stays as it was.
          let commitTs = before?.commitTs !== undefined && before.commitTs > item.tableVersion ? before.commitTs : item.tableVersion;
          if (written.maxCommitTs !== undefined && written.maxCommitTs > commitTs) commitTs = written.maxCommitTs;
          const position: Position = { tableVersion: item.tableVersion, date: item.date, fileIndex: item.fileIndex, commitTs };
          await connection.query(this.#checkpoints.positionUpsertSql(schema, table, item.stream, position));
          return { written, position };
        });
      });
    } catch (error) {
      this.#settings.metrics?.error('apply');
      if (error instanceof MysqlError || (error instanceof Error && error.name === 'ApplyError')) throw error;
      throw new MysqlError(this.#target, `apply ${item.path}`, error);
    }
    state.streams.set(item.stream, result.position);
    state.lastActiveMs = performance.now();
    this.#tables.noteApplied(result.position.commitTs);
    this.#settings.metrics?.dataFile(result.written.applied, result.written.skipped, performance.now() - started);
    this.#emit({ kind: 'data', path: item.path, table: `${schema}.${table}`, rows: result.written.applied, skipped: result.written.skipped, bytes: decoded.bytes });
    return result.written.applied;
  }

  /** Runs the table version's DDL (a statement found already applied is skipped), then stores its checkpoint row. */
  async applyDdl(item: DdlItem, schemaByVersion: Map<string, SchemaFileRef>): Promise<void> {
    const { content } = await this.#tables.definition(item.tableKey, item.tableVersion, schemaByVersion);
    const path = item.ref.path;
    let plan: DdlPlan;
    try {
      plan = planDdl(content, path, await this.#tables.previousDefinition(item.tableKey, item.tableVersion, schemaByVersion));
    } catch (error) {
      this.#settings.metrics?.error('ddl');
      throw error;
    }
    const started = performance.now();
    try {
      // Running a DDL again is safe: a statement found already applied is skipped (planDdl).
      await this.#retry.run(`apply the DDL of ${path}`, async () => {
        await this.#runDdl(plan, path);
        const table = item.ref.table ?? '';
        await this.#pool.query(this.#checkpoints.positionUpsertSql(item.ref.schema, table, DDL_STREAM, { tableVersion: item.tableVersion, date: '', fileIndex: -1, commitTs: item.tableVersion }));
      });
    } catch (error) {
      this.#settings.metrics?.error('ddl');
      throw error instanceof MysqlError ? error : new MysqlError(this.#target, `apply the DDL of ${path} (${JSON.stringify(content.query)})`, error);
    }
    this.#tables.ddlApplied(item, plan);
    this.#settings.metrics?.ddl(performance.now() - started);
    this.#emit({ kind: 'ddl', path, table: item.ref.table === undefined ? item.ref.schema : `${item.ref.schema}.${item.ref.table}`, tableVersion: item.tableVersion, effect: plan.effect });
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
}
