/**
 * Rows of one data file into MySQL, inside the caller's transaction: batched multi-row statements,
 * inserts and updates as upserts by primary key, deletes by primary key, in file order.
 *
 * Two steps, so the SQL of the next file is built while the current one is applied: `StatementBuilder`
 * turns a file's rows into statements ahead of time (`prepareRows` for decoded rows; csvStatements.ts
 * builds them straight from csv text), `applyPrepared` runs them, dropping rows below the table's
 * applied commit ts (known only when the file's turn comes).
 *
 * Invariants guarded here: the effect equals applying the rows one by one in file order (a run of
 * upserts or of deletes is cut whenever the kind changes, and an update that moves its primary key
 * deletes the old key first); applying the same rows twice leaves the same table (upserts and
 * deletes by key are idempotent); rows below `skipBelowTs` are never applied; a statement never
 * exceeds `maxRowsPerStatement` rows or `maxStatementBytes` of row text. A failing statement is
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
  /** Positions of the key columns in `columns`. */
  keyIndexes: readonly number[];
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
    keyIndexes: def.columns.flatMap((c, i) => (c.primaryKey ? [i] : [])),
    insertPrefix: `INSERT INTO ${table} (${names.join(', ')}) VALUES `,
    upsertSuffix: ` ON DUPLICATE KEY UPDATE ${updates.join(', ')}`,
    deletePrefix: `DELETE FROM ${table} WHERE ${keyNames.length === 1 ? keyNames[0] : `(${keyNames.join(', ')})`} IN (`,
  };
}

const NEVER_SKIPPED = (1n << 64n) - 1n;

export type StatementKind = 'upsert' | 'delete';

/** One multi-row statement, ready to send; keeps where each row's text is, to narrow a failure or drop rows. */
export interface PreparedStatement {
  kind: StatementKind;
  sql: string;
  count: number;
  /** [starts[i], ends[i]) is row part i in `sql`. */
  starts: Uint32Array;
  ends: Uint32Array;
  /** The 1-based record of each part (an update that moves its key has two parts of one record). */
  records: Uint32Array;
  /** Commit ts of each part, when the file carries them. */
  ts: BigUint64Array | undefined;
  minTs: bigint | undefined;
}

/** A data file's statements; held while it waits its turn (bounded by the consumer's read-ahead). */
export interface PreparedFile {
  statements: PreparedStatement[];
  /** Records (rows) in the file. */
  rows: number;
  maxTs: bigint | undefined;
  /** Characters of SQL held. */
  sqlChars: number;
}

export interface StatementLimits {
  maxRowsPerStatement: number;
  maxStatementBytes: number;
}

/**
 * Cuts rows into statements: a new one when the kind changes or a limit would be passed. A
 * statement's text is kept as pieces and joined once when it is cut: one flat string, instead of a
 * chain of concatenations per row that the GC must trace and mysql2 must flatten.
 */
export class StatementBuilder {
  readonly #writer: TableWriter;
  readonly #limits: StatementLimits;
  readonly #withTs: boolean;
  readonly statements: PreparedStatement[] = [];
  #kind: StatementKind | undefined;
  #pieces: string[] = [];
  #length = 0;
  #count = 0;
  #bytes = 0;
  #starts: Uint32Array;
  #ends: Uint32Array;
  #records: Uint32Array;
  #ts: BigUint64Array | undefined;
  #minTs: bigint | undefined;
  sqlChars = 0;
  maxTs: bigint | undefined;

  constructor(writer: TableWriter, limits: StatementLimits, withTs: boolean) {
    this.#writer = writer;
    this.#limits = limits;
    this.#withTs = withTs;
    this.#starts = this.#ends = this.#records = new Uint32Array(0);
  }

  /** Makes room for a row part of `length` characters; returns its index in the statement. */
  #open(kind: StatementKind, length: number, record: number, ts: bigint | undefined): number {
    if (kind !== this.#kind || this.#count >= this.#limits.maxRowsPerStatement || this.#bytes + length > this.#limits.maxStatementBytes) {
      this.#cut();
      this.#kind = kind;
      const size = this.#limits.maxRowsPerStatement;
      this.#push(kind === 'upsert' ? this.#writer.insertPrefix : this.#writer.deletePrefix);
      this.#starts = new Uint32Array(size);
      this.#ends = new Uint32Array(size);
      this.#records = new Uint32Array(size);
      this.#ts = this.#withTs ? new BigUint64Array(size) : undefined;
      this.#minTs = undefined;
    } else this.#push(', ');
    const i = this.#count++;
    this.#starts[i] = this.#length;
    this.#ends[i] = this.#length + length;
    this.#records[i] = record;
    this.#bytes += length;
    // A row without a commit ts (not in the file) is never skipped.
    if (this.#ts !== undefined) this.#ts[i] = ts ?? NEVER_SKIPPED;
    if (this.#ts !== undefined && ts !== undefined) {
      if (this.#minTs === undefined || ts < this.#minTs) this.#minTs = ts;
      if (this.maxTs === undefined || ts > this.maxTs) this.maxTs = ts;
    }
    return i;
  }

  #push(piece: string): void {
    this.#pieces.push(piece);
    this.#length += piece.length;
  }

  /** Adds a row's part: `(v1, v2, ...)` for an upsert, the key literal for a delete. */
  add(kind: StatementKind, part: string, record: number, ts: bigint | undefined): void {
    this.#open(kind, part.length, record, ts);
    this.#push(part);
  }

  /**
   * Adds the part made of `values` (SQL literals) at `indexes` (all, in order, when undefined),
   * comma-separated, in parentheses when `wrap`, without building the part's string.
   */
  addValues(kind: StatementKind, values: readonly string[], indexes: readonly number[] | undefined, wrap: boolean, record: number, ts: bigint | undefined): void {
    const n = indexes === undefined ? values.length : indexes.length;
    let length = wrap ? 2 + 2 * (n - 1) : 2 * (n - 1);
    for (let k = 0; k < n; k++) length += values[indexes === undefined ? k : indexes[k]!]!.length;
    this.#open(kind, length, record, ts);
    const pieces = this.#pieces;
    if (wrap) pieces.push('(');
    for (let k = 0; k < n; k++) {
      if (k > 0) pieces.push(', ');
      pieces.push(values[indexes === undefined ? k : indexes[k]!]!);
    }
    if (wrap) pieces.push(')');
    this.#length += length;
  }

  #cut(): void {
    if (this.#kind === undefined || this.#count === 0) return;
    const n = this.#count;
    this.#pieces.push(this.#kind === 'upsert' ? this.#writer.upsertSuffix : ')');
    const sql = this.#pieces.join('');
    this.statements.push({
      kind: this.#kind,
      sql,
      count: n,
      starts: this.#starts.subarray(0, n),
      ends: this.#ends.subarray(0, n),
      records: this.#records.subarray(0, n),
      ts: this.#ts?.subarray(0, n),
      minTs: this.#minTs,
    });
    this.sqlChars += sql.length;
    this.#count = 0;
    this.#bytes = 0;
    this.#pieces = [];
    this.#length = 0;
  }

  finish(rows: number): PreparedFile {
    this.#cut();
    this.#kind = undefined;
    return { statements: this.statements, rows, maxTs: this.maxTs, sqlChars: this.sqlChars };
  }
}

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

/** Decoded rows (canal-json, or csv the fast path does not take) into statements. Throws `ApplyError` naming the record. */
export function prepareRows(writer: TableWriter, rows: readonly DecodedRow[], path: string, limits: StatementLimits): PreparedFile {
  const builder = new StatementBuilder(writer, limits, rows.some((r) => r.commitTs !== undefined));
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    const record = i + 1;
    try {
      if (row.op === 'delete') builder.add('delete', keyOf(writer, row.columns), record, row.commitTs);
      else {
        if (row.op === 'update' && row.oldColumns !== undefined) {
          const oldKey = keyOf(writer, row.oldColumns);
          if (oldKey !== keyOf(writer, row.columns)) builder.add('delete', oldKey, record, row.commitTs);
        }
        builder.add('upsert', valuesOf(writer, row.columns), record, row.commitTs);
      }
    } catch (error) {
      throw new ApplyError(path, record, error instanceof Error ? error.message : String(error), error);
    }
  }
  return builder.finish(rows.length);
}

export interface ApplyOptions {
  path: string;
  /** Rows with a commit ts below this were applied before (a sink's re-send): skipped. */
  skipBelowTs: bigint | undefined;
}

export interface RowWriteResult {
  applied: number;
  skipped: number;
  /** The highest commit ts among the rows applied, if they carry one. */
  maxCommitTs: bigint | undefined;
  statements: number;
}

/** The statement without its parts below `skipBelowTs`, or undefined when none is left. */
function withoutOlder(writer: TableWriter, statement: PreparedStatement, skipBelowTs: bigint, skippedRecords: Set<number>): PreparedStatement | undefined {
  const ts = statement.ts!;
  const keep: number[] = [];
  for (let i = 0; i < statement.count; i++) {
    if (ts[i]! < skipBelowTs) skippedRecords.add(statement.records[i]!);
    else keep.push(i);
  }
  if (keep.length === 0) return undefined;
  if (keep.length === statement.count) return statement;
  const n = keep.length;
  const starts = new Uint32Array(n);
  const ends = new Uint32Array(n);
  const records = new Uint32Array(n);
  const kept = new BigUint64Array(n);
  let sql = statement.kind === 'upsert' ? writer.insertPrefix : writer.deletePrefix;
  keep.forEach((from, i) => {
    if (i > 0) sql += ', ';
    starts[i] = sql.length;
    sql += statement.sql.slice(statement.starts[from], statement.ends[from]);
    ends[i] = sql.length;
    records[i] = statement.records[from]!;
    kept[i] = ts[from]!;
  });
  sql += statement.kind === 'upsert' ? writer.upsertSuffix : ')';
  return { ...statement, sql, count: n, starts, ends, records, ts: kept, minTs: skipBelowTs };
}

/** Runs a prepared file's statements on `connection` (inside the caller's transaction), one at a time. */
export async function applyPrepared(connection: PoolConnection, writer: TableWriter, file: PreparedFile, options: ApplyOptions): Promise<RowWriteResult> {
  const skippedRecords = new Set<number>();
  let statements = 0;
  const skip = options.skipBelowTs;
  for (const prepared of file.statements) {
    const statement = skip !== undefined && prepared.minTs !== undefined && prepared.minTs < skip ? withoutOlder(writer, prepared, skip, skippedRecords) : prepared;
    if (statement === undefined) continue;
    statements++;
    try {
      await connection.query(statement.sql);
    } catch (error) {
      throw await narrowDown(connection, writer, statement, options.path, error);
    }
  }
  // Skipped rows are below the applied ts, so the file's highest ts is that of an applied row, or below the applied one.
  const allSkipped = skippedRecords.size === file.rows;
  return { applied: file.rows - skippedRecords.size, skipped: skippedRecords.size, maxCommitTs: allSkipped ? undefined : file.maxTs, statements };
}

/** Applies decoded `rows` on `connection` (inside the caller's transaction). */
export async function writeRows(connection: PoolConnection, writer: TableWriter, rows: readonly DecodedRow[], options: ApplyOptions & StatementLimits): Promise<RowWriteResult> {
  return applyPrepared(connection, writer, prepareRows(writer, rows, options.path, options), options);
}

/**
 * A multi-row statement failed: the server rolled back that statement only. Runs its rows one at a
 * time to find the record to name; the caller's transaction is rolled back after either way.
 */
async function narrowDown(connection: PoolConnection, writer: TableWriter, statement: PreparedStatement, path: string, error: unknown): Promise<ApplyError> {
  const message = error instanceof Error ? error.message : String(error);
  const isServerError = typeof (error as { errno?: unknown })?.errno === 'number' && (error as { fatal?: boolean }).fatal !== true;
  if (isServerError && statement.count > 1) {
    for (let i = 0; i < statement.count; i++) {
      const part = statement.sql.slice(statement.starts[i], statement.ends[i]);
      const sql = statement.kind === 'upsert' ? `${writer.insertPrefix}${part}${writer.upsertSuffix}` : `${writer.deletePrefix}${part})`;
      try {
        await connection.query(sql);
      } catch (single) {
        return new ApplyError(path, statement.records[i]!, single instanceof Error ? single.message : String(single), single);
      }
    }
  }
  const first = statement.records[0]!;
  const last = statement.records[statement.count - 1]!;
  return new ApplyError(path, first, `${message}${last !== first ? ` (in the statement of records ${first}..${last})` : ''}`, error);
}
