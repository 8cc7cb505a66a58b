/**
 * Rows of one data file into MySQL, inside the caller's transaction: batched multi-row statements,
 * inserts and updates as upserts by primary key, deletes by primary key, in file order.
 *
 * Invariants guarded here: the effect equals applying the rows one by one in file order (a run of
 * upserts or of deletes is cut whenever the kind changes, and an update that moves its primary key
 * deletes the old key first); applying the same rows twice leaves the same table (upserts and
 * deletes by key are idempotent); rows below `skipBelowTs` are never applied. A failing statement is
 * narrowed down to the record that fails, so the error names file and record.
 */
import type { PoolConnection } from 'mysql2/promise';
import type { ColumnDef, ColumnValue, DecodedRow, TableDef } from '../../lib/codec/changeEvent.ts';
import { quoteIdentifier, quoteTable, sqlLiteral } from '../../lib/mysql/sql.ts';

/** A table version's statement parts, built once. */
export interface TableWriter {
  def: TableDef;
  columns: readonly ColumnDef[];
  keyColumns: readonly ColumnDef[];
  insertPrefix: string;
  upsertSuffix: string;
  deletePrefix: string;
}

/** A row that could not be applied: names the file, the record and the server's message. */
export class ApplyError extends Error {
  override readonly name = 'ApplyError';
  readonly path: string;
  /** 1-based record (row) number in the file. */
  readonly record: number;

  constructor(path: string, record: number, problem: string, cause?: unknown) {
    super(`${path} record ${record}: ${problem}`, cause === undefined ? undefined : { cause });
    this.path = path;
    this.record = record;
  }
}

/** Throws when the table has no primary key: replay applies updates and deletes by key. */
export function tableWriter(def: TableDef, schemaFilePath: string): TableWriter {
  const keyColumns = def.columns.filter((c) => c.primaryKey);
  if (keyColumns.length === 0) {
    throw new ApplyError(schemaFilePath, 0, `${def.schema}.${def.table} has no primary key; replay applies updates and deletes by primary key and needs one`);
  }
  const table = quoteTable(def.schema, def.table);
  const names = def.columns.map((c) => quoteIdentifier(c.name));
  const others = def.columns.filter((c) => !c.primaryKey).map((c) => quoteIdentifier(c.name));
  const updates = others.length > 0 ? others.map((n) => `${n} = VALUES(${n})`) : [`${quoteIdentifier(keyColumns[0]!.name)} = ${quoteIdentifier(keyColumns[0]!.name)}`];
  const keyNames = keyColumns.map((c) => quoteIdentifier(c.name));
  return {
    def,
    columns: def.columns,
    keyColumns,
    insertPrefix: `INSERT INTO ${table} (${names.join(', ')}) VALUES `,
    upsertSuffix: ` ON DUPLICATE KEY UPDATE ${updates.join(', ')}`,
    deletePrefix: `DELETE FROM ${table} WHERE ${keyNames.length === 1 ? keyNames[0] : `(${keyNames.join(', ')})`} IN (`,
  };
}

export interface RowWriteOptions {
  path: string;
  /** Rows with a commit ts below this were applied before (a sink's re-send): skipped. */
  skipBelowTs: bigint | undefined;
  maxRowsPerStatement: number;
  maxStatementBytes: number;
}

export interface RowWriteResult {
  applied: number;
  skipped: number;
  /** The highest commit ts among the rows applied, if they carry one. */
  maxCommitTs: bigint | undefined;
  statements: number;
}

type Step = { kind: 'upsert' | 'delete'; sql: string; record: number };
type Batch = { kind: Step['kind']; parts: string[]; records: number[] };

function valuesOf(writer: TableWriter, columns: Record<string, ColumnValue>): string {
  let sql = '(';
  const cols = writer.columns;
  for (let i = 0; i < cols.length; i++) {
    if (i > 0) sql += ', ';
    sql += sqlLiteral(columns[cols[i]!.name] ?? null);
  }
  return `${sql})`;
}

function keyOf(writer: TableWriter, columns: Record<string, ColumnValue>): string {
  const keys = writer.keyColumns;
  if (keys.length === 1) return sqlLiteral(columns[keys[0]!.name] ?? null);
  return `(${keys.map((c) => sqlLiteral(columns[c.name] ?? null)).join(', ')})`;
}

function keyChanged(writer: TableWriter, row: DecodedRow): boolean {
  if (row.oldColumns === undefined) return false;
  return keyOf(writer, row.oldColumns) !== keyOf(writer, row.columns);
}

/** Applies `rows` on `connection` (inside the caller's transaction). */
export async function writeRows(connection: PoolConnection, writer: TableWriter, rows: readonly DecodedRow[], options: RowWriteOptions): Promise<RowWriteResult> {
  const result: RowWriteResult = { applied: 0, skipped: 0, maxCommitTs: undefined, statements: 0 };
  let kind: Step['kind'] | undefined;
  let parts: string[] = [];
  let records: number[] = [];
  let bytes = 0;

  // One statement in flight while the next is built: the server works while this process encodes.
  let inFlight: { done: Promise<unknown>; batch: Batch } | undefined;
  const settle = async () => {
    if (inFlight === undefined) return;
    const { done, batch } = inFlight;
    inFlight = undefined;
    try {
      await done;
    } catch (error) {
      throw await narrowDown(connection, writer, batch, options.path, error);
    }
  };

  const flush = async () => {
    if (kind === undefined || parts.length === 0) return;
    const sql = kind === 'upsert' ? `${writer.insertPrefix}${parts.join(', ')}${writer.upsertSuffix}` : `${writer.deletePrefix}${parts.join(', ')})`;
    const batch: Batch = { kind, parts, records };
    parts = [];
    records = [];
    bytes = 0;
    result.statements++;
    await settle();
    const done = connection.query(sql);
    done.catch(() => undefined); // awaited in settle; a rejection before that is not unhandled
    inFlight = { done, batch };
  };

  const add = async (next: Step['kind'], part: string, record: number) => {
    if (kind !== next || parts.length >= options.maxRowsPerStatement || bytes + part.length > options.maxStatementBytes) {
      await flush();
      kind = next;
    }
    parts.push(part);
    records.push(record);
    bytes += part.length;
  };

  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    const record = i + 1;
    if (row.commitTs !== undefined && options.skipBelowTs !== undefined && row.commitTs < options.skipBelowTs) {
      result.skipped++;
      continue;
    }
    let value: string;
    try {
      if (row.op === 'delete') {
        await add('delete', keyOf(writer, row.columns), record);
      } else {
        if (row.op === 'update' && keyChanged(writer, row)) await add('delete', keyOf(writer, row.oldColumns!), record);
        value = valuesOf(writer, row.columns);
        await add('upsert', value, record);
      }
    } catch (error) {
      if (error instanceof ApplyError) throw error;
      throw new ApplyError(options.path, record, error instanceof Error ? error.message : String(error), error);
    }
    result.applied++;
    if (row.commitTs !== undefined && (result.maxCommitTs === undefined || row.commitTs > result.maxCommitTs)) result.maxCommitTs = row.commitTs;
  }
  await flush();
  await settle();
  return result;
}

/**
 * A multi-row statement failed: the server rolled back that statement only. Runs its rows one at a
 * time to find the record to name; the caller's transaction is rolled back after either way.
 */
async function narrowDown(connection: PoolConnection, writer: TableWriter, batch: Batch, path: string, error: unknown): Promise<ApplyError> {
  const message = error instanceof Error ? error.message : String(error);
  const isServerError = typeof (error as { errno?: unknown })?.errno === 'number' && (error as { fatal?: boolean }).fatal !== true;
  if (isServerError && batch.parts.length > 1) {
    for (let i = 0; i < batch.parts.length; i++) {
      const sql = batch.kind === 'upsert' ? `${writer.insertPrefix}${batch.parts[i]}${writer.upsertSuffix}` : `${writer.deletePrefix}${batch.parts[i]})`;
      try {
        await connection.query(sql);
      } catch (single) {
        return new ApplyError(path, batch.records[i]!, single instanceof Error ? single.message : String(single), single);
      }
    }
  }
  const first = batch.records[0]!;
  const last = batch.records[batch.records.length - 1]!;
  return new ApplyError(path, first, `${message}${last !== first ? ` (in the statement of records ${first}..${last})` : ''}`, error);
}
