/**
 * Rows of one data file into MySQL, inside the caller's transaction: batched multi-row statements,
 * inserts and updates as `REPLACE INTO`, deletes by primary key, an update's move off its old primary
 * key as a delete of the old image, in file order.
 *
 * Two steps, so the SQL of the next file is built while the current one is applied: `StatementBuilder`
 * turns a file's rows into statements ahead of time (`prepareRows` for decoded rows; csvStatements.ts
 * builds them straight from csv text without old values, so never a key change: a file with old
 * values takes `prepareRows`), `applyPrepared` runs them, dropping rows below the table's applied
 * commit ts (known only when the file's turn comes).
 *
 * Why REPLACE (TiCDC's safe mode, pingcap/ticdc pkg/sink/mysql/mysql_writer_dml_batch.go
 * `generateNormalSQL` and sql_builder.go `prepareReplace`): a row image replaces every row it
 * collides with on any unique key, not only on the primary key. An update that changes a unique key
 * (a csv U row, a D/I pair, a canal-json UPDATE) therefore lands as the source has it, also when a
 * transaction swaps unique keys between rows (A uk 1->2, B uk 2->1, in either order), where an
 * upsert by primary key (INSERT ... ON DUPLICATE KEY UPDATE) fails with "Duplicate entry" or updates
 * the wrong row. REPLACE deletes before it inserts: downstream ON DELETE triggers and cascading
 * foreign keys fire, as under TiCDC's safe mode.
 *
 * An update whose primary key changed (old values known: a canal-json `old`, a csv D/I pair) must
 * also remove the row at its old key, which nothing else would. That delete runs just before the
 * row's REPLACE and removes the row only while it still holds the old image: `DELETE FROM t WHERE
 * (key = <old key> AND col <=> <old value> ...)`. TiCDC writes a transaction's changes in any order,
 * so in a swap A 1->2, B 2->1 the row at 2 when B's delete runs is A's new row (A's REPLACE displaced
 * B's old one), and B's delete leaves it, whether A was applied from this file, from an earlier file
 * (the sink cuts files by size, interval and quota, not by transaction, so one commit ts can span
 * files) or before a consumer restart: nothing is carried between rows or files. A row moved twice
 * (A 1->3, then A 3->2) holds its old image at 3 when the second move runs, and goes.
 *
 * The check compares the key and the old image's columns whose literal compares exactly with the
 * value the server stored from it. FLOAT, DOUBLE (REAL) and JSON columns are left out (a float is
 * stored rounded and need not equal its printed text; JSON may be stored normalized): for a table
 * with such columns the check narrows to the other columns, and with no other column left the delete
 * is a delete by key. A BINARY(n) value is padded with 0x00 to n bytes, as the server stores it (the
 * column is left out when n is unknown). Values compare as the server compares them (collation,
 * trailing spaces), so two rows of one transaction whose images are equal in every compared column
 * but the key can still fool the check, and a swap of those loses a row; TiCDC's own consumer loses
 * a row in any primary-key swap (its csv_storage_update_pk_nonclustered test,
 * result/changefeed2_pk.res). An update without old values (a csv U row) cannot change its primary
 * key here: the old row is named nowhere in the file and stays (as with TiCDC's consumer,
 * result/changefeed3_pk.res).
 *
 * A plain delete (a D row, a canal-json DELETE) stays a delete by key: TiCDC orders a commit ts's
 * deletes before its puts, so no row of its own transaction is at that key yet, and a delete
 * conditional on the image would leave a row behind whose value does not compare equal to its text
 * (a FLOAT).
 *
 * Invariants guarded here: the effect equals applying the rows one by one in file order (a run of
 * replaces or of deletes is cut whenever the kind changes; an old-image delete is always followed by
 * its row's REPLACE, so it is a statement of its own); no state is kept between rows, so a
 * transaction's rows give the same table however they are cut into files and whenever the consumer
 * restarts between those; applying rows at the applied commit ts again (the rest of a transaction
 * cut across files can come with rows of it applied before) leaves the same table: a REPLACE writes
 * the same image, a delete by key removes the same row (the puts after it come again, in order), and
 * an old-image delete finds no row still holding its old image once the transaction is applied
 * (images equal but for the key aside, as above), so it removes no row the transaction wrote; rows
 * below `skipBelowTs` are never applied; a statement never exceeds `maxRowsPerStatement` rows or
 * `maxStatementBytes` of row text. A failing statement is narrowed down to the record that fails, so
 * the error names file and record.
 */
import type { PoolConnection } from 'mysql2/promise';
import type { ColumnDef, ColumnValue, DecodedRow, TableDef } from '../../lib/codec/changeEvent.ts';
import { columnClass } from '../../lib/codec/columnValue.ts';
import { isTransientMysqlError } from '../../lib/mysql/transient.ts';
import { quoteIdentifier, quoteTable, sqlLiteral } from '../../lib/mysql/sql.ts';

/** A table version's statement parts, built once. */
export interface TableWriter {
  def: TableDef;
  columns: readonly ColumnDef[];
  keyColumns: readonly ColumnDef[];
  /** Positions of the key columns in `columns`. */
  keyIndexes: readonly number[];
  /** `REPLACE INTO t (...) VALUES ` */
  replacePrefix: string;
  /** `DELETE FROM t WHERE key IN (` */
  deletePrefix: string;
  /** `DELETE FROM t WHERE ` (then old-image conditions joined by OR) */
  deleteOldPrefix: string;
  /** The columns an old-image delete compares: the key columns, then the others that compare exactly. */
  checkedColumns: readonly ColumnDef[];
  /** Per checked column, the text before its literal: `(`key` = `, ` AND `col` <=> `... */
  checkedPrefixes: readonly string[];
  /** Per checked column, the width a BINARY(n) value is padded to with 0x00 (as the server stores it), else 0. */
  checkedWidths: readonly number[];
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

/**
 * Whether a column's value, written as the SQL literal of its decoded value, compares equal to the
 * value the server stored from that literal: not FLOAT, DOUBLE or REAL (stored rounded to binary,
 * compared as a double with the literal's text) nor JSON (a server may store it normalized). A
 * BINARY(n) value shorter than n is stored padded with 0x00 and compares equal once padded alike
 * (see `oldImageOf`); without its width known, a BINARY column is left out too.
 */
export function comparesExactly(column: ColumnDef): boolean {
  const cls = columnClass(column.type);
  if (column.type === 'BINARY') return column.precision !== undefined;
  return cls !== 'float' && cls !== 'double' && column.type !== 'JSON';
}

/** Throws when the table has no primary key: replay applies updates and deletes by key. */
export function tableWriter(def: TableDef, schemaFilePath: string): TableWriter {
  const keyColumns = def.columns.filter((c) => c.primaryKey);
  if (keyColumns.length === 0) {
    throw new ApplyError(schemaFilePath, 0, `${def.schema}.${def.table} has no primary key; replay applies updates and deletes by primary key and needs one`);
  }
  const table = quoteTable(def.schema, def.table);
  const names = def.columns.map((c) => quoteIdentifier(c.name));
  const keyNames = keyColumns.map((c) => quoteIdentifier(c.name));
  const checkedColumns = [...keyColumns, ...def.columns.filter((c) => !c.primaryKey && comparesExactly(c))];
  const checkedPrefixes = checkedColumns.map((c, i) => `${i === 0 ? '(' : ' AND '}${quoteIdentifier(c.name)} ${c.primaryKey ? '=' : '<=>'} `);
  return {
    def,
    columns: def.columns,
    keyColumns,
    keyIndexes: def.columns.flatMap((c, i) => (c.primaryKey ? [i] : [])),
    replacePrefix: `REPLACE INTO ${table} (${names.join(', ')}) VALUES `,
    deletePrefix: `DELETE FROM ${table} WHERE ${keyNames.length === 1 ? keyNames[0] : `(${keyNames.join(', ')})`} IN (`,
    deleteOldPrefix: `DELETE FROM ${table} WHERE `,
    checkedColumns,
    checkedPrefixes,
    checkedWidths: checkedColumns.map((c) => (c.type === 'BINARY' ? (c.precision ?? 0) : 0)),
  };
}

const NEVER_SKIPPED = (1n << 64n) - 1n;

/**
 * 'upsert': row images as one `REPLACE INTO`; 'delete': primary keys as one `DELETE ... IN (...)`;
 * 'deleteOld': old images as one `DELETE ... WHERE (key = .. AND col <=> ..) OR (...)`.
 */
export type StatementKind = 'upsert' | 'delete' | 'deleteOld';

/** The text before a statement's row parts. */
function statementHead(writer: TableWriter, kind: StatementKind): string {
  return kind === 'upsert' ? writer.replacePrefix : kind === 'delete' ? writer.deletePrefix : writer.deleteOldPrefix;
}

/** The text between two row parts of a statement. */
function statementSeparator(kind: StatementKind): string {
  return kind === 'deleteOld' ? ' OR ' : ', ';
}

/** The text after a statement's row parts. */
function statementTail(kind: StatementKind): string {
  return kind === 'delete' ? ')' : '';
}

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
      this.#push(statementHead(this.#writer, kind));
      this.#starts = new Uint32Array(size);
      this.#ends = new Uint32Array(size);
      this.#records = new Uint32Array(size);
      this.#ts = this.#withTs ? new BigUint64Array(size) : undefined;
      this.#minTs = undefined;
    } else this.#push(statementSeparator(kind));
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

  /** Adds a row's part: `(v1, v2, ...)` for an upsert, the key literal for a delete, `(k = v AND ...)` for an old image. */
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
    this.#pieces.push(statementTail(this.#kind));
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

/**
 * `(`key` = 1 AND `col` <=> 'a' ...)`: the old image's key and its columns that compare exactly, a
 * BINARY(n) value padded with 0x00 to n bytes as the server stored it.
 */
function oldImageOf(writer: TableWriter, old: Record<string, ColumnValue>): string {
  const columns = writer.checkedColumns;
  const prefixes = writer.checkedPrefixes;
  const widths = writer.checkedWidths;
  let sql = '';
  for (let i = 0; i < columns.length; i++) {
    let value = old[columns[i]!.name] ?? null;
    const width = widths[i]!;
    if (width > 0 && value instanceof Uint8Array && value.byteLength < width) {
      const padded = new Uint8Array(width);
      padded.set(value);
      value = padded;
    }
    sql += prefixes[i]! + sqlLiteral(value);
  }
  return `${sql})`;
}

/**
 * Decoded rows (canal-json, or csv the fast path does not take) into statements. Throws `ApplyError`
 * naming the record. An update whose primary key changed first deletes the row at its old key if that
 * row still holds the old image (see the module header); a delete is by key.
 */
export function prepareRows(writer: TableWriter, rows: readonly DecodedRow[], path: string, limits: StatementLimits): PreparedFile {
  const builder = new StatementBuilder(writer, limits, rows.some((r) => r.commitTs !== undefined));
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    const record = i + 1;
    try {
      if (row.op === 'delete') {
        builder.add('delete', keyOf(writer, row.columns), record, row.commitTs);
        continue;
      }
      if (row.op === 'update' && row.oldColumns !== undefined && keyOf(writer, row.oldColumns) !== keyOf(writer, row.columns)) {
        builder.add('deleteOld', oldImageOf(writer, row.oldColumns), record, row.commitTs);
      }
      builder.add('upsert', valuesOf(writer, row.columns), record, row.commitTs);
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
  let sql = statementHead(writer, statement.kind);
  const separator = statementSeparator(statement.kind);
  keep.forEach((from, i) => {
    if (i > 0) sql += separator;
    starts[i] = sql.length;
    sql += statement.sql.slice(statement.starts[from], statement.ends[from]);
    ends[i] = sql.length;
    records[i] = statement.records[from]!;
    kept[i] = ts[from]!;
  });
  sql += statementTail(statement.kind);
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
  // A deadlock (or a lost connection) ended the transaction: statements run now would commit on their own.
  const isServerError = typeof (error as { errno?: unknown })?.errno === 'number' && (error as { fatal?: boolean }).fatal !== true && !isTransientMysqlError(error);
  if (isServerError && statement.count > 1) {
    for (let i = 0; i < statement.count; i++) {
      const part = statement.sql.slice(statement.starts[i], statement.ends[i]);
      const sql = `${statementHead(writer, statement.kind)}${part}${statementTail(statement.kind)}`;
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
