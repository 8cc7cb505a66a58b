/**
 * The consumer's checkpoint, in a MySQL table of its own: per table, the DDL version applied
 * (stream '#ddl') and, per data stream (`{partitionId}/{dispatcherId}`, '' for a plain folder: each
 * physical partition and each dispatcher apart, see roundPlan `streamOf`), the position of the last
 * data file applied (files are numbered from 1) and the highest commit ts it held.
 *
 * Invariant guarded here: a data position is only ever written by the statement that
 * `positionUpsertSql` returns, run in the same transaction as the rows of that file, so the
 * checkpoint and the rows commit together or not at all; the consumer only ever writes a position
 * past the one it read (files are applied in order and skipped at or below it).
 */
import type { Pool } from 'mysql2/promise';
import { quoteIdentifier, quoteString, quoteTable } from '../../lib/mysql/sql.ts';

/** Where a table (stream) stands: the last data file applied, or only its version's DDL (fileIndex -1). */
export interface Position {
  tableVersion: bigint;
  /** The date folder ('' without one). */
  date: string;
  fileIndex: number;
  /** The highest commit ts applied (the table version for a DDL). */
  commitTs: bigint;
}

export const DDL_STREAM = '#ddl';
export const CHECKPOINT_TABLE = 'replay_checkpoint';

/** Orders positions: version, then date folder, then file index. */
export function comparePositions(a: Pick<Position, 'tableVersion' | 'date' | 'fileIndex'>, b: Pick<Position, 'tableVersion' | 'date' | 'fileIndex'>): number {
  if (a.tableVersion !== b.tableVersion) return a.tableVersion < b.tableVersion ? -1 : 1;
  if (a.date !== b.date) return a.date < b.date ? -1 : 1;
  return a.fileIndex - b.fileIndex;
}

export interface StoredPosition extends Position {
  schema: string;
  table: string;
  stream: string;
}

export class CheckpointStore {
  readonly #database: string;
  readonly #consumer: string;
  readonly #table: string;

  constructor(database: string, consumer: string) {
    this.#database = database;
    this.#consumer = consumer;
    this.#table = quoteTable(database, CHECKPOINT_TABLE);
  }

  get tableName(): string {
    return `${this.#database}.${CHECKPOINT_TABLE}`;
  }

  async ensure(pool: Pool): Promise<void> {
    await pool.query(`CREATE DATABASE IF NOT EXISTS ${quoteIdentifier(this.#database)}`);
    await pool.query(
      `CREATE TABLE IF NOT EXISTS ${this.#table} (` +
        'consumer VARCHAR(191) NOT NULL, schema_name VARCHAR(64) NOT NULL, table_name VARCHAR(64) NOT NULL, ' +
        'stream VARCHAR(191) NOT NULL, table_version BIGINT UNSIGNED NOT NULL, date_folder VARCHAR(10) NOT NULL, ' +
        'file_index BIGINT NOT NULL, commit_ts BIGINT UNSIGNED NOT NULL, ' +
        'updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3), ' +
        'PRIMARY KEY (consumer, schema_name, table_name, stream)) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin',
    );
  }

  /** Every position of this consumer. */
  async load(pool: Pool): Promise<StoredPosition[]> {
    const [rows] = await pool.query(
      `SELECT schema_name, table_name, stream, table_version, date_folder, file_index, commit_ts FROM ${this.#table} WHERE consumer = ?`,
      [this.#consumer],
    );
    return (rows as Record<string, string | number>[]).map((row) => ({
      schema: String(row.schema_name),
      table: String(row.table_name),
      stream: String(row.stream),
      tableVersion: BigInt(row.table_version!),
      date: String(row.date_folder),
      fileIndex: Number(row.file_index),
      commitTs: BigInt(row.commit_ts!),
    }));
  }

  /** The position stored for one stream, or undefined (read after a failed commit: did it commit after all?). */
  async position(pool: Pool, schema: string, table: string, stream: string): Promise<Position | undefined> {
    const [rows] = await pool.query(
      `SELECT table_version, date_folder, file_index, commit_ts FROM ${this.#table} WHERE consumer = ? AND schema_name = ? AND table_name = ? AND stream = ?`,
      [this.#consumer, schema, table, stream],
    );
    const row = (rows as Record<string, string | number>[])[0];
    if (row === undefined) return undefined;
    return { tableVersion: BigInt(row.table_version!), date: String(row.date_folder), fileIndex: Number(row.file_index), commitTs: BigInt(row.commit_ts!) };
  }

  /** The upsert of one position; run it inside the transaction that applies the file. */
  positionUpsertSql(schema: string, table: string, stream: string, position: Position): string {
    const values = [this.#consumer, schema, table, stream].map(quoteString).join(', ');
    return (
      `INSERT INTO ${this.#table} (consumer, schema_name, table_name, stream, table_version, date_folder, file_index, commit_ts) ` +
      `VALUES (${values}, ${position.tableVersion}, ${quoteString(position.date)}, ${position.fileIndex}, ${position.commitTs}) ` +
      'ON DUPLICATE KEY UPDATE table_version = VALUES(table_version), date_folder = VALUES(date_folder), ' +
      'file_index = VALUES(file_index), commit_ts = VALUES(commit_ts)'
    );
  }
}
