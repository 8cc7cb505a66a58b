/**
 * The JSON-lines form of change events, one event per line, as the CLI reads and writes them.
 *
 * Invariant guarded here: `parseChangeEventLine(formatChangeEventLine(e))` gives `e` back exactly
 * (bigints, bytes and key order included), and a line either parses into a valid event or fails with
 * an error naming its line number and what is wrong (a key the form does not have is refused, naming
 * the keys its object takes); nothing is rounded or guessed. The full format: docs/formats.md.
 *
 * The form (keys in this order; optional keys absent when unset):
 *
 *   {"kind":"row","op":"insert","schema":"shop","table":"orders","tableVersion":"4350",
 *    "commitTs":"4356","dispatcherId":"7","columns":{"id":1,"total":"9.50","raw":{"base64":"AAE="},
 *    "big":{"bigint":"18446744073709551615"}},"oldColumns":{...}}
 *   {"kind":"ddl","commitTs":"4350","query":"CREATE TABLE ...","ddlType":"CREATE TABLE",
 *    "schema":"shop","table":"orders","tableDef":{"schema":"shop","table":"orders","version":"4350",
 *    "columns":[{"name":"id","type":"INT","nullable":false,"primaryKey":true}]},"blockedDispatchers":"all"}
 *
 * Commit ts, table versions and tableDef.version are decimal strings. Column values: JSON strings,
 * numbers, booleans and null as such; a bigint as {"bigint":"<decimal>"}; bytes as {"base64":"..."}.
 * An integer literal that a double would round (9007199254740993) is read as a bigint instead.
 */
import {
  checkChangeEvent,
  DecodeError,
  setOwn,
  type ChangeEvent,
  type ColumnDef,
  type ColumnValue,
  type DdlEvent,
  type RowChange,
  type TableDef,
} from './changeEvent.ts';
import { fromBase64, toBase64 } from './columnValue.ts';
import { JsonNumber, JsonSyntaxError, jsonTypeOf, parseJson, type JsonObject, type JsonValue } from './json.ts';

/** One event as one line of JSON, without the line break. */
export function formatChangeEventLine(event: ChangeEvent): string {
  return JSON.stringify(event.kind === 'row' ? rowJson(event) : ddlJson(event));
}

function rowJson(row: RowChange): unknown {
  return {
    kind: 'row',
    op: row.op,
    schema: row.schema,
    table: row.table,
    tableVersion: String(row.tableVersion),
    commitTs: String(row.commitTs),
    dispatcherId: row.dispatcherId,
    columns: columnsJson(row.columns),
    oldColumns: row.oldColumns === undefined ? undefined : columnsJson(row.oldColumns),
  };
}

function columnsJson(columns: Record<string, ColumnValue>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(columns)) {
    setOwn(
      out,
      name,
      typeof value === 'bigint' ? { bigint: String(value) } : value instanceof Uint8Array ? { base64: toBase64(value) } : value,
    );
  }
  return out;
}

function ddlJson(ddl: DdlEvent): unknown {
  return {
    kind: 'ddl',
    commitTs: String(ddl.commitTs),
    query: ddl.query,
    ddlType: ddl.ddlType,
    schema: ddl.schema,
    table: ddl.table,
    tableDef: ddl.tableDef === undefined ? undefined : tableDefJson(ddl.tableDef),
    blockedDispatchers: ddl.blockedDispatchers,
  };
}

function tableDefJson(def: TableDef): unknown {
  return {
    schema: def.schema,
    table: def.table,
    version: String(def.version),
    columns: def.columns.map((c) => ({
      name: c.name,
      type: c.type,
      unsigned: c.unsigned,
      nullable: c.nullable,
      primaryKey: c.primaryKey,
      default: c.default,
      precision: c.precision,
      scale: c.scale,
      elems: c.elems,
    })),
  };
}

/**
 * Parses one line (1-based `lineNumber`, for messages) into a valid change event. Throws
 * `DecodeError` for malformed JSON or fields, `InvalidChangeEventError` for a well-formed but invalid
 * event; both name the line. Callers skip blank lines themselves if they allow them.
 */
export function parseChangeEventLine(line: string, lineNumber: number): ChangeEvent {
  const where = `line ${lineNumber}`;
  let json: JsonValue;
  try {
    json = parseJson(line);
  } catch (error) {
    if (error instanceof JsonSyntaxError) throw new DecodeError(where, `malformed JSON: ${error.message}`);
    throw error;
  }
  const fields = new Fields(json, where, 'the event');
  const kind = fields.string('kind');
  if (kind !== 'row' && kind !== 'ddl') fields.fail(`kind must be "row" or "ddl", got ${JSON.stringify(kind)}`);
  // Unknown keys first: a misspelt key would otherwise be reported as the key it stands for, missing.
  fields.only(kind === 'row' ? ROW_KEYS : DDL_KEYS, `a ${kind} event`);
  const event = kind === 'row' ? parseRow(fields) : parseDdl(fields);
  fields.done();
  checkChangeEvent(event, where);
  return event;
}

/** The keys each object of the form takes: anything else is refused, naming the key and these. */
const ROW_KEYS = ['kind', 'op', 'schema', 'table', 'tableVersion', 'commitTs', 'dispatcherId', 'columns', 'oldColumns'] as const;
const DDL_KEYS = ['kind', 'commitTs', 'query', 'ddlType', 'schema', 'table', 'tableDef', 'blockedDispatchers'] as const;
const TABLE_DEF_KEYS = ['schema', 'table', 'version', 'columns'] as const;
const COLUMN_DEF_KEYS = ['name', 'type', 'unsigned', 'nullable', 'primaryKey', 'default', 'precision', 'scale', 'elems'] as const;

function parseRow(fields: Fields): RowChange {
  const row: RowChange = {
    kind: 'row',
    op: fields.string('op') as RowChange['op'],
    schema: fields.string('schema'),
    table: fields.string('table'),
    tableVersion: fields.uint64('tableVersion'),
    commitTs: fields.uint64('commitTs'),
    dispatcherId: fields.string('dispatcherId'),
    columns: parseColumns(fields, 'columns'),
  };
  if (fields.has('oldColumns')) row.oldColumns = parseColumns(fields, 'oldColumns');
  return row;
}

function parseColumns(fields: Fields, key: string): Record<string, ColumnValue> {
  const object = fields.object(key);
  const columns: Record<string, ColumnValue> = {};
  for (const [name, value] of object.map) setOwn(columns, name, columnValue(object, name, value));
  return columns;
}

function columnValue(object: Fields, name: string, value: JsonValue): ColumnValue {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (value instanceof JsonNumber) {
    const n = Number(value.text);
    // An integer literal that is not how JS prints the double it parses to (9007199254740993) would
    // be rounded as a number: keep it whole as a bigint.
    if (/^-?[0-9]+$/.test(value.text) && !Number.isSafeInteger(n) && String(n) !== value.text) return BigInt(value.text);
    if (!Number.isFinite(n)) return object.fail(`${name}: number ${value.text} is out of range`);
    return n;
  }
  if (value instanceof Map && value.size === 1) {
    const tagged = new Fields(value, object.where, `${object.label}.${name}`);
    if (value.has('bigint')) return tagged.bigint('bigint', -(1n << 63n));
    if (value.has('base64')) {
      const text = tagged.string('base64');
      try {
        return fromBase64(text);
      } catch {
        return tagged.fail('base64 is not valid standard base64');
      }
    }
  }
  return object.fail(`${name} must be a string, number, boolean, null, {"bigint":"..."} or {"base64":"..."}, got ${jsonTypeOf(value)}`);
}

function parseDdl(fields: Fields): DdlEvent {
  const ddl: DdlEvent = {
    kind: 'ddl',
    commitTs: fields.uint64('commitTs'),
    query: fields.string('query'),
    ddlType: fields.string('ddlType'),
    schema: fields.string('schema'),
    blockedDispatchers: [],
  };
  if (fields.has('table')) ddl.table = fields.string('table');
  if (fields.has('tableDef')) ddl.tableDef = parseTableDef(fields.object('tableDef'));
  const blocked = fields.value('blockedDispatchers');
  if (blocked === 'all') ddl.blockedDispatchers = 'all';
  else if (Array.isArray(blocked) && blocked.every((id) => typeof id === 'string')) ddl.blockedDispatchers = blocked as string[];
  else fields.fail(`blockedDispatchers must be "all" or a list of strings, got ${jsonTypeOf(blocked)}`);
  return ddl;
}

function parseTableDef(fields: Fields): TableDef {
  fields.only(TABLE_DEF_KEYS, 'a tableDef');
  const def: TableDef = {
    schema: fields.string('schema'),
    table: fields.string('table'),
    version: fields.uint64('version'),
    columns: [],
  };
  const columns = fields.value('columns');
  if (!Array.isArray(columns)) fields.fail(`columns must be a list, got ${jsonTypeOf(columns)}`);
  (columns as JsonValue[]).forEach((column, i) => {
    def.columns.push(parseColumnDef(new Fields(column, fields.where, `${fields.label}.columns[${i}]`)));
  });
  fields.done();
  return def;
}

function parseColumnDef(fields: Fields): ColumnDef {
  fields.only(COLUMN_DEF_KEYS, 'a column of a tableDef');
  const column: ColumnDef = { name: fields.string('name'), type: fields.string('type') };
  for (const flag of ['unsigned', 'nullable', 'primaryKey'] as const) {
    if (fields.has(flag)) column[flag] = fields.boolean(flag);
  }
  if (fields.has('default')) {
    const value = fields.value('default');
    if (typeof value === 'string') column.default = value;
    else if (value instanceof JsonNumber) column.default = Number(value.text);
    else fields.fail(`default must be a string or a number, got ${jsonTypeOf(value)}`);
  }
  for (const size of ['precision', 'scale'] as const) {
    if (fields.has(size)) column[size] = fields.safeInteger(size);
  }
  if (fields.has('elems')) {
    const elems = fields.value('elems');
    if (!Array.isArray(elems) || !elems.every((m) => typeof m === 'string')) fields.fail('elems must be a list of strings');
    column.elems = elems as string[];
  }
  fields.done();
  return column;
}

/** Reads the fields of one JSON object, each once; `done()` rejects any field left unread. */
class Fields {
  readonly map: JsonObject;
  readonly where: string;
  readonly label: string;
  private readonly read = new Set<string>();

  constructor(value: JsonValue, where: string, label: string) {
    this.where = where;
    this.label = label;
    if (!(value instanceof Map)) throw new DecodeError(where, `${label} must be a JSON object, got ${jsonTypeOf(value)}`);
    this.map = value;
  }

  fail(problem: string): never {
    throw new DecodeError(this.where, `${this.label}: ${problem}`);
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  value(key: string): JsonValue {
    const value = this.map.get(key);
    if (value === undefined) this.fail(`missing field "${key}"`);
    this.read.add(key);
    return value;
  }

  string(key: string): string {
    const value = this.value(key);
    return typeof value === 'string' ? value : this.fail(`${key} must be a string, got ${jsonTypeOf(value)}`);
  }

  boolean(key: string): boolean {
    const value = this.value(key);
    return typeof value === 'boolean' ? value : this.fail(`${key} must be a boolean, got ${jsonTypeOf(value)}`);
  }

  safeInteger(key: string): number {
    const value = this.value(key);
    const n = value instanceof JsonNumber ? Number(value.text) : NaN;
    return Number.isSafeInteger(n) ? n : this.fail(`${key} must be an integer, got ${jsonTypeOf(value)}`);
  }

  /** A bigint written as a decimal string, within [min, 2^64-1]. */
  bigint(key: string, min: bigint): bigint {
    const value = this.value(key);
    if (typeof value !== 'string' || !/^-?[0-9]+$/.test(value)) {
      return this.fail(`${key} must be a decimal string such as "4356", got ${value instanceof JsonNumber ? value.text : jsonTypeOf(value)}`);
    }
    const n = BigInt(value);
    return n >= min && n <= (1n << 64n) - 1n ? n : this.fail(`${key} ${value} is out of range`);
  }

  uint64(key: string): bigint {
    return this.bigint(key, 0n);
  }

  object(key: string): Fields {
    return new Fields(this.value(key), this.where, key);
  }

  /** Refuses a key not in `keys`, naming it and the keys `what` takes. */
  only(keys: readonly string[], what: string): void {
    for (const key of this.map.keys()) {
      if (!keys.includes(key)) this.fail(`unknown key ${JSON.stringify(key)}; ${what} takes ${keys.join(', ')}`);
    }
  }

  done(): void {
    for (const key of this.map.keys()) {
      if (!this.read.has(key)) this.fail(`unknown field "${key}"`);
    }
  }
}
