/**
 * Rows of one data file into MySQL, inside the caller's transaction: batched multi-row statements,
 * inserts and updates as `REPLACE INTO`, deletes by primary key, in file order.
 *
 * Two steps, so the SQL of the next file is built while the current one is applied: `StatementBuilder`
 * turns a file's rows into statements ahead of time (`prepareRows` for decoded rows; csvStatements.ts
 * builds them straight from csv text), `applyPrepared` runs them, dropping rows below the table's
 * applied commit ts (known only when the file's turn comes).
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
 * row's REPLACE, unless an earlier row of the same file wrote a different image at that key: then the
 * old row was already displaced by that earlier REPLACE (TiCDC writes a transaction's net changes in
 * any order, so in a swap A 1->2, B 2->1 the row now at 2 is A's new row, not B's old one) and the
 * delete would remove a row the file just wrote. An image equal to the old values means the file
 * moves the row it wrote (A 1->3, then A 3->2), and the delete runs. Only two rows of one transaction
 * with images equal in every column but the key can still fool this; TiCDC's own consumer loses a
 * row in every such swap (its csv_storage_update_pk_nonclustered test, result/changefeed2_pk.res).
 * An update without old values (a csv U row) cannot change its primary key here: the old row is
 * named nowhere in the file and stays (as with TiCDC's consumer, result/changefeed3_pk.res).
 *
 * Invariants guarded here: the effect equals applying the rows one by one in file order (a run of
 * replaces or of deletes is cut whenever the kind changes), an old-key delete left out as above being
 * the one departure from the letter of that order; applying the same rows again leaves the
 * same table (REPLACE and delete by key are idempotent, and a transaction's rows re-applied in order
 * rebuild its images); rows below `skipBelowTs` are never applied; a statement never exceeds
 * `maxRowsPerStatement` rows or `maxStatementBytes` of row text. A failing statement is narrowed down
 * to the record that fails, so the error names file and record.
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
  /** `REPLACE INTO t (...) VALUES ` */
  replacePrefix: string;
  /** `DELETE FROM t WHERE key IN (` */
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
  const keyNames = keyColumns.map((c) => quoteIdentifier(c.name));
  return {
    def,
    columns: def.columns,
    keyColumns,
    keyIndexes: def.columns.flatMap((c, i) => (c.primaryKey ? [i] : [])),
    replacePrefix: `REPLACE INTO ${table} (${names.join(', ')}) VALUES `,
    deletePrefix: `DELETE FROM ${table} WHERE ${keyNames.length === 1 ? keyNames[0] : `(${keyNames.join(', ')})`} IN (`,
  };
}

const NEVER_SKIPPED = (1n << 64n) - 1n;

/** 'upsert': row images as one `REPLACE INTO`; 'delete': primary keys as one `DELETE ... IN (...)`. */
export type StatementKind = 'upsert' | 'delete';

/** The text before a statement's row parts. */
function statementHead(writer: TableWriter, kind: StatementKind): string {
  return kind === 'upsert' ? writer.replacePrefix : writer.deletePrefix;
}

/** The text after a statement's row parts. */
function statementTail(kind: StatementKind): string {
  return kind === 'upsert' ? '' : ')';
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
 * Decoded rows (canal-json, or csv the fast path does not take) into statements. Throws `ApplyError`
 * naming the record. An update whose primary key changed deletes its old key first, unless an earlier
 * row of the file wrote another image there (see the module header).
 */
export function prepareRows(writer: TableWriter, rows: readonly DecodedRow[], path: string, limits: StatementLimits): PreparedFile {
  const builder = new StatementBuilder(writer, limits, rows.some((r) => r.commitTs !== undefined));
  // Key literal -> the image (values literal) the file last wrote there, or null once deleted.
  const written = new Map<string, string | null>();
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    const record = i + 1;
    try {
      const key = keyOf(writer, row.columns);
      if (row.op === 'delete') {
        builder.add('delete', key, record, row.commitTs);
        written.set(key, null);
        continue;
      }
      if (row.op === 'update' && row.oldColumns !== undefined) {
        const oldKey = keyOf(writer, row.oldColumns);
        if (oldKey !== key) {
          const there = written.get(oldKey);
          if (typeof there !== 'string' || there === valuesOf(writer, row.oldColumns)) {
            builder.add('delete', oldKey, record, row.commitTs);
            written.set(oldKey, null);
          }
        }
      }
      const values = valuesOf(writer, row.columns);
      builder.add('upsert', values, record, row.commitTs);
      written.set(key, values);
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
  keep.forEach((from, i) => {
    if (i > 0) sql += ', ';
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
  const isServerError = typeof (error as { errno?: unknown })?.errno === 'number' && (error as { fatal?: boolean }).fatal !== true;
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
