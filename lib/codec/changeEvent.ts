/**
 * Change events: the row changes and DDL that the storage sink writes, their validation, and the
 * errors every codec reports.
 *
 * Invariant guarded here: an event that passes `checkChangeEvent` has names that are safe as path
 * segments (schema, table, column, dispatcher: non-empty, no '/', no '..', not '.', no control
 * characters, well-formed Unicode), commit ts and table versions that fit TiDB's uint64, and column
 * values of the supported kinds, so no codec or path builder downstream can be steered outside its
 * folder or write a value it cannot read back.
 */
import { binaryValue, columnClass, ColumnValueError, type ColumnClass, decimalValue, floatValue, integerValue, textValue } from './columnValue.ts';
import { ddlTypeCode } from './ddlTypes.ts';

/** A column's type and attributes, as TiCDC's schema file records them. */
export interface ColumnDef {
  name: string;
  /** Upper-case MySQL type without attributes: 'VARCHAR', 'INT', 'DECIMAL', 'BLOB', 'ENUM'... */
  type: string;
  unsigned?: boolean;
  /** false for NOT NULL; absent or true otherwise. */
  nullable?: boolean;
  primaryKey?: boolean;
  default?: string | number;
  precision?: number;
  scale?: number;
  /** The members of an ENUM or SET, in declaration order. */
  elems?: string[];
}

/** A table's columns at one table version. */
export interface TableDef {
  schema: string;
  table: string;
  /** The table version: the commit ts of the DDL that made this definition. */
  version: bigint;
  columns: ColumnDef[];
}

export type ColumnValue = string | number | bigint | boolean | null | Uint8Array;

export type RowOp = 'insert' | 'update' | 'delete';

/**
 * One row change. `columns` is the row image the change leaves behind, except for a delete, where it
 * is the deleted row; `oldColumns` is the image before an update (updates only).
 */
export interface RowChange {
  kind: 'row';
  op: RowOp;
  schema: string;
  table: string;
  tableVersion: bigint;
  commitTs: bigint;
  dispatcherId: string;
  columns: Record<string, ColumnValue>;
  oldColumns?: Record<string, ColumnValue>;
}

export interface DdlEvent {
  kind: 'ddl';
  commitTs: bigint;
  query: string;
  /** Upper-case TiDB DDL type name, e.g. 'CREATE TABLE' (see `DDL_TYPE_CODES`). */
  ddlType: string;
  schema: string;
  table?: string;
  /** The table after the DDL; its version is the DDL's commit ts. */
  tableDef?: TableDef;
  /** The dispatchers this DDL blocks until it is written: a list, or every one. */
  blockedDispatchers: string[] | 'all';
}

export type ChangeEvent = RowChange | DdlEvent;

/** A row read back from a data file: the fields the file format carries. */
export interface DecodedRow {
  op: RowOp;
  schema: string;
  table: string;
  /** Absent when the file does not carry it (csv without include-commit-ts). */
  commitTs?: bigint;
  columns: Record<string, ColumnValue>;
  oldColumns?: Record<string, ColumnValue>;
}

/** TiDB timestamps and table versions are uint64. */
export const MAX_UINT64 = (1n << 64n) - 1n;

/** An event that cannot be written: names which event, where it came from and what is wrong. */
export class InvalidChangeEventError extends Error {
  override readonly name = 'InvalidChangeEventError';
  /** Where the event came from, e.g. 'line 17'. */
  readonly where: string;
  /** The event, described as kind, schema.table and commit ts. */
  readonly event: string;
  readonly problem: string;

  constructor(event: unknown, where: string, problem: string) {
    const described = describeChangeEvent(event);
    super(`invalid change event at ${where} (${described}): ${problem}`);
    this.where = where;
    this.event = described;
    this.problem = problem;
  }
}

/** Input that does not parse: names where (file, line, field) and what is wrong. */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
  readonly where: string;
  readonly problem: string;

  constructor(where: string, problem: string) {
    super(`${where}: ${problem}`);
    this.where = where;
    this.problem = problem;
  }
}

/** 'row insert test.t1 commitTs 4356' or 'ddl CREATE TABLE test.t1 commitTs 4356', for messages. */
export function describeChangeEvent(event: unknown): string {
  if (typeof event !== 'object' || event === null) return `not an object (${typeof event})`;
  const e = event as Record<string, unknown>;
  const text = (v: unknown) => (typeof v === 'string' ? v : typeof v === 'bigint' ? String(v) : '?');
  const name = e.table === undefined ? text(e.schema) : `${text(e.schema)}.${text(e.table)}`;
  const detail = e.kind === 'row' ? text(e.op) : e.kind === 'ddl' ? text(e.ddlType) : '';
  return `${text(e.kind)}${detail ? ` ${detail}` : ''} ${name} commitTs ${text(e.commitTs)}`;
}

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * What is wrong with `value` as a name that becomes a path segment, or undefined when nothing is.
 * '.' is refused too: path joining would drop it.
 */
export function pathNameProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return `must be a string, got ${typeof value}`;
  if (value.length === 0) return 'must not be empty';
  if (value.includes('/')) return `must not contain '/' (${JSON.stringify(value)})`;
  if (value.includes('..')) return `must not contain '..' (${JSON.stringify(value)})`;
  if (value === '.') return `must not be '.'`;
  if (CONTROL.test(value)) return `must not contain control characters (${JSON.stringify(value)})`;
  if (LONE_SURROGATE.test(value)) return `must be well-formed Unicode (${JSON.stringify(value)})`;
  return undefined;
}

/** Names found valid already: rows repeat a few schema, table, column and dispatcher names. */
const validNames = new Set<string>();
const VALID_NAMES_MAX = 10_000;

/** pathNameProblem, remembering the names that passed (a bounded set, cleared when full). */
function cachedNameProblem(value: unknown): string | undefined {
  if (typeof value === 'string' && validNames.has(value)) return undefined;
  const problem = pathNameProblem(value);
  if (problem === undefined) {
    if (validNames.size >= VALID_NAMES_MAX) validNames.clear();
    validNames.add(value as string);
  }
  return problem;
}

/** The schema and table of the last row that passed: rows come in runs of one table. */
const NONE_YET: unknown = Symbol('none yet');
const lastValid: { schema: unknown; table: unknown } = { schema: NONE_YET, table: NONE_YET };
let lastColumnNames: readonly string[] = [];

function rememberValid(field: 'schema' | 'table', value: unknown): string | undefined {
  const problem = cachedNameProblem(value);
  if (problem === undefined) lastValid[field] = value;
  return problem;
}

/**
 * True when `columns` has exactly the last valid row's column names, in order. for-in walks the
 * object's cached key list without making an array per row (Object.keys would); an inherited
 * enumerable name makes the count differ, so such an object takes the Object.keys path.
 */
function hasLastColumnNames(columns: object): boolean {
  const names = lastColumnNames;
  if (names.length === 0) return false;
  let i = 0;
  for (const name in columns) if (i >= names.length || name !== names[i++]) return false;
  return i === names.length;
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Problem with a uint64 timestamp or version, or undefined. */
function uint64Problem(value: unknown): string | undefined {
  if (typeof value !== 'bigint') return `must be a bigint, got ${typeof value}`;
  if (value < 0n || value > MAX_UINT64) return `must be in [0, 2^64-1], got ${value}`;
  return undefined;
}

/** Problem with a column value, or undefined. */
export function columnValueProblem(value: unknown): string | undefined {
  if (value === null || value instanceof Uint8Array) return undefined;
  switch (typeof value) {
    case 'string':
    case 'bigint':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : `must be a finite number, got ${value}`;
    default:
      return `must be a string, number, bigint, boolean, null or Uint8Array, got ${typeof value}`;
  }
}

const ROW_OPS: ReadonlySet<string> = new Set(['insert', 'update', 'delete']);
const COLUMN_TYPE = /^[A-Z][A-Z0-9_]*( [A-Z0-9_]+)*$/;

/**
 * Throws `InvalidChangeEventError` unless `event` is a well-formed change event; `where` says where it
 * came from ('line 17', 'dispatcher 3') and goes into the message.
 */
export function checkChangeEvent(event: unknown, where: string): asserts event is ChangeEvent {
  const problem = changeEventProblem(event);
  if (problem !== undefined) throw new InvalidChangeEventError(event, where, problem);
}

/** What is wrong with `event` as a change event, or undefined (checkChangeEvent without the message). */
export function changeEventProblem(event: unknown): string | undefined {
  if (typeof event !== 'object' || event === null) return 'must be an object';
  const e = event as Record<string, unknown>;
  if (e.kind === 'row') return rowProblem(e);
  if (e.kind === 'ddl') return ddlProblem(e);
  return `kind must be 'row' or 'ddl', got ${JSON.stringify(e.kind) ?? 'undefined'}`;
}

function named(field: string, problem: string | undefined): string | undefined {
  return problem === undefined ? undefined : `${field} ${problem}`;
}

function rowProblem(e: Record<string, unknown>): string | undefined {
  if (typeof e.op !== 'string' || !ROW_OPS.has(e.op)) {
    return `op must be 'insert', 'update' or 'delete', got ${JSON.stringify(e.op) ?? 'undefined'}`;
  }
  const first =
    (e.schema === lastValid.schema ? undefined : named('schema', rememberValid('schema', e.schema))) ??
    (e.table === lastValid.table ? undefined : named('table', rememberValid('table', e.table))) ??
    named('dispatcherId', cachedNameProblem(e.dispatcherId)) ??
    named('tableVersion', uint64Problem(e.tableVersion)) ??
    named('commitTs', uint64Problem(e.commitTs)) ??
    columnsProblem('columns', e.columns);
  if (first !== undefined) return first;
  if (e.oldColumns === undefined) return undefined;
  if (e.op !== 'update') return `oldColumns is only for an update, not for an ${e.op}`;
  const old = columnsProblem('oldColumns', e.oldColumns);
  if (old !== undefined) return old;
  const after = Object.keys(e.columns as object).sort();
  const before = Object.keys(e.oldColumns as object).sort();
  if (after.length !== before.length || after.some((name, i) => name !== before[i])) {
    return `oldColumns must name the same columns as columns (${before.join(',')} vs ${after.join(',')})`;
  }
  return undefined;
}

function columnsProblem(field: string, columns: unknown): string | undefined {
  if (typeof columns !== 'object' || columns === null || Array.isArray(columns) || columns instanceof Uint8Array) {
    return `${field} must be an object of column name to value`;
  }
  if (hasLastColumnNames(columns)) {
    // The usual row: the names of the last valid row, in order; only the values need a look.
    for (const name of lastColumnNames) {
      const valueProblem = columnValueProblem((columns as Record<string, unknown>)[name]);
      if (valueProblem !== undefined) return `${field}.${name} ${valueProblem}`;
    }
    return undefined;
  }
  const names = Object.keys(columns);
  if (names.length === 0) return `${field} must hold at least one column`;
  // Rows of a table repeat its column names: checked once per distinct list.
  const known = sameNames(names, lastColumnNames);
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const problem = known ? undefined : cachedNameProblem(name);
    if (problem !== undefined) return `${field} name ${problem}`;
    const valueProblem = columnValueProblem((columns as Record<string, unknown>)[name]);
    if (valueProblem !== undefined) return `${field}.${name} ${valueProblem}`;
  }
  if (!known) lastColumnNames = names;
  return undefined;
}

function ddlProblem(e: Record<string, unknown>): string | undefined {
  const first =
    named('commitTs', uint64Problem(e.commitTs)) ??
    (typeof e.query === 'string' ? undefined : 'query must be a string') ??
    (typeof e.ddlType === 'string' && ddlTypeCode(e.ddlType) !== undefined
      ? undefined
      : `ddlType must be an upper-case TiDB DDL type name such as 'CREATE TABLE', got ${JSON.stringify(e.ddlType) ?? 'undefined'}`) ??
    named('schema', pathNameProblem(e.schema)) ??
    (e.table === undefined ? undefined : named('table', pathNameProblem(e.table)));
  if (first !== undefined) return first;
  if (e.tableDef !== undefined) {
    const problem = tableDefProblem(e.tableDef);
    if (problem !== undefined) return `tableDef ${problem}`;
    if ((e.tableDef as TableDef).version !== e.commitTs) {
      return `tableDef.version (${(e.tableDef as TableDef).version}) must equal the DDL's commitTs`;
    }
  }
  const blocked = e.blockedDispatchers;
  if (blocked === 'all') return undefined;
  if (!Array.isArray(blocked)) return `blockedDispatchers must be 'all' or a list of dispatcher ids`;
  for (const id of blocked) {
    const problem = named('blockedDispatchers entry', pathNameProblem(id));
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/** What is wrong with a table definition, or undefined. */
export function tableDefProblem(def: unknown): string | undefined {
  if (typeof def !== 'object' || def === null) return 'must be an object';
  const d = def as Record<string, unknown>;
  const first =
    named('schema', pathNameProblem(d.schema)) ??
    named('table', pathNameProblem(d.table)) ??
    named('version', uint64Problem(d.version));
  if (first !== undefined) return first;
  if (!Array.isArray(d.columns) || d.columns.length === 0) return 'columns must be a non-empty list';
  const seen = new Set<string>();
  for (const column of d.columns as unknown[]) {
    const problem = columnDefProblem(column);
    if (problem !== undefined) return `column ${problem}`;
    const name = (column as ColumnDef).name;
    if (seen.has(name)) return `column ${JSON.stringify(name)} appears twice`;
    seen.add(name);
  }
  return undefined;
}

function columnDefProblem(column: unknown): string | undefined {
  if (typeof column !== 'object' || column === null) return 'must be an object';
  const c = column as Record<string, unknown>;
  const nameProblem = pathNameProblem(c.name);
  if (nameProblem !== undefined) return `name ${nameProblem}`;
  const where = JSON.stringify(c.name);
  if (typeof c.type !== 'string' || !COLUMN_TYPE.test(c.type) || c.type.endsWith(' UNSIGNED')) {
    return `${where} type must be an upper-case MySQL type without UNSIGNED (use unsigned: true), got ${JSON.stringify(c.type) ?? 'undefined'}`;
  }
  for (const flag of ['unsigned', 'nullable', 'primaryKey'] as const) {
    if (c[flag] !== undefined && typeof c[flag] !== 'boolean') return `${where} ${flag} must be a boolean`;
  }
  if (c.default !== undefined && typeof c.default !== 'string' && !(typeof c.default === 'number' && Number.isFinite(c.default))) {
    return `${where} default must be a string or a finite number`;
  }
  for (const size of ['precision', 'scale'] as const) {
    const v = c[size];
    if (v !== undefined && !(typeof v === 'number' && Number.isSafeInteger(v) && v >= 0)) {
      return `${where} ${size} must be a non-negative integer`;
    }
  }
  if (c.elems !== undefined && !(Array.isArray(c.elems) && c.elems.every((m) => typeof m === 'string'))) {
    return `${where} elems must be a list of strings`;
  }
  return undefined;
}

/**
 * What is wrong with `row` as a row of `table` (the definition of its table version), or undefined:
 * its columns (and old columns) must be exactly the table's, each value of a kind the column's type
 * takes (as the csv and canal-json encoders take it), and no NULL in a NOT NULL column
 * (`nullable: false`). Expects a row that passed `checkChangeEvent`.
 *
 * @example rowTableProblem(row, def) // 'columns.total: DECIMAL takes decimal text or a number, got true'
 */
export function rowTableProblem(row: RowChange, table: TableDef): string | undefined {
  const shape = shapeOf(table);
  return imageProblem('columns', row.columns, table, shape) ?? (row.oldColumns === undefined ? undefined : imageProblem('oldColumns', row.oldColumns, table, shape));
}

/** A table's columns as the row check reads them: one array per field, the type's class looked up once. */
interface TableShape {
  names: string[];
  classes: ColumnClass[];
  notNull: boolean[];
}

/** Shapes by definition object: a definition is never changed once made (the registry replaces it). */
const shapes = new WeakMap<TableDef, TableShape>();

function shapeOf(table: TableDef): TableShape {
  let shape = shapes.get(table);
  if (shape === undefined) {
    shape = { names: table.columns.map((c) => c.name), classes: table.columns.map((c) => columnClass(c.type)), notNull: table.columns.map((c) => c.nullable === false) };
    shapes.set(table, shape);
  }
  return shape;
}

/** One row image (`columns` or `oldColumns`) against the table's columns. */
function imageProblem(field: string, image: Record<string, ColumnValue>, table: TableDef, shape: TableShape): string | undefined {
  const { names, classes, notNull } = shape;
  let count = 0;
  // for-in, not Object.keys: no array per row (a checked image has only own enumerable columns).
  for (const _name in image) count++;
  if (count !== names.length) return `${field}: ${columnSetProblem(image, table)}`;
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const value = image[name];
    if (value === undefined && !Object.hasOwn(image, name)) return `${field}: ${columnSetProblem(image, table)}`;
    if (value === null) {
      if (notNull[i]) return `${field}.${name}: NULL in a NOT NULL column (${table.columns[i]!.type})`;
      continue;
    }
    const problem = valueTypeProblem(classes[i]!, table.columns[i]!, value!);
    if (problem !== undefined) return `${field}.${name}: ${problem}`;
  }
  return undefined;
}

/** The columns an image lacks and those the table does not have. */
function columnSetProblem(image: Record<string, ColumnValue>, table: TableDef): string {
  const known = new Set(table.columns.map((c) => c.name));
  const missing = table.columns.filter((c) => !Object.hasOwn(image, c.name)).map((c) => c.name);
  const extra = Object.keys(image).filter((name) => !known.has(name));
  return (
    `the columns of ${table.schema}.${table.table} at table version ${table.version} are ${[...known].join(', ')}` +
    (missing.length === 0 ? '' : `; missing ${missing.join(', ')}`) +
    (extra.length === 0 ? '' : `; not in the table: ${extra.join(', ')}`)
  );
}

/** What is wrong with the non-null `value` in `column` (of class `cls`), or undefined; the usual values are judged without a call. */
function valueTypeProblem(cls: ColumnClass, column: ColumnDef, value: Exclude<ColumnValue, null>): string | undefined {
  switch (cls) {
    case 'int':
    case 'bigint':
      if (typeof value === 'number' && Number.isSafeInteger(value)) return undefined;
      break;
    case 'text':
      if (typeof value === 'string') return undefined;
      break;
    case 'enum':
    case 'set':
      if (typeof value === 'string') return column.elems === undefined ? undefined : memberProblem(cls, column.elems, value);
      break;
    case 'double':
      if (typeof value === 'number') return undefined;
      break;
    case 'binary':
      if (value instanceof Uint8Array || typeof value === 'string') return undefined;
      break;
  }
  try {
    if (cls === 'int' || cls === 'bigint' || cls === 'bit') integerValue(column, value);
    else if (cls === 'float' || cls === 'double') floatValue(column, value);
    else if (cls === 'decimal') decimalValue(column, value);
    else if (cls === 'binary') binaryValue(column, value);
    else textValue(column, value);
    return undefined;
  } catch (error) {
    if (error instanceof ColumnValueError) return error.message;
    throw error;
  }
}

/**
 * An ENUM value that is not one of the column's elems ('' aside: MySQL's error value), or a SET
 * value with a member that is not, as MySQL (and the canal-json encoder) refuse them; or undefined.
 */
function memberProblem(cls: 'enum' | 'set', elems: readonly string[], value: string): string | undefined {
  if (value === '') return undefined;
  for (const name of cls === 'enum' ? [value] : value.split(',')) {
    if (!elems.includes(name)) return `${JSON.stringify(name)} is not one of the ${cls.toUpperCase()}'s elems (${elems.join(', ')})`;
  }
  return undefined;
}

/** Sets an own enumerable property even for names like '__proto__', which plain assignment would not. */
export function setOwn<V>(record: Record<string, V>, key: string, value: V): void {
  // Plain assignment makes the same own property for every other key, and is several times faster
  // (the decoders call this once per column of every row).
  if (key !== '__proto__') record[key] = value;
  else Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
}
