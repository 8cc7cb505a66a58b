/**
 * DDL translation: a schema file (its DDL type, query and columns) into the statements that bring a
 * MySQL table to that table version, and which server errors mean "already done" on a re-apply.
 *
 * Invariant guarded here: only the DDL kinds listed in `SUPPORTED_DDL_TYPES` are ever run, each
 * scoped to its own database; anything else is refused with an `UnsupportedDdlError` naming the
 * schema file and the statement, before any statement runs. Every plan is safe to run twice (a crash
 * can fall between a DDL and its checkpoint, and DDL cannot share a transaction with it).
 */
import type { ColumnDef, TableDef } from '../../lib/codec/changeEvent.ts';
import type { SchemaFileContent } from '../../lib/codec/schemaFile.ts';
import { quoteIdentifier, quoteString, quoteTable } from '../../lib/mysql/sql.ts';

/** A DDL the consumer does not replay: names the schema file and the statement. */
export class UnsupportedDdlError extends Error {
  override readonly name = 'UnsupportedDdlError';
  readonly path: string;
  readonly statement: string;

  constructor(path: string, statement: string, problem: string) {
    super(`${path}: unsupported DDL ${JSON.stringify(statement)}: ${problem}`);
    this.path = path;
    this.statement = statement;
  }
}

/** MySQL errors that a second run of the same DDL meets when the first already took effect. */
export const ALREADY_APPLIED_ERRNOS = Object.freeze({
  ER_DB_CREATE_EXISTS: 1007,
  ER_DB_DROP_EXISTS: 1008,
  ER_TABLE_EXISTS_ERROR: 1050,
  ER_BAD_TABLE_ERROR: 1051,
  ER_DUP_FIELDNAME: 1060,
  ER_DUP_KEYNAME: 1061,
  ER_CANT_DROP_FIELD_OR_KEY: 1091,
});

export type DdlEffect = 'create-schema' | 'drop-schema' | 'create-table' | 'drop-table' | 'truncate-table' | 'rename-table' | 'alter-table';

/** What to run for one schema file. */
export interface DdlPlan {
  effect: DdlEffect;
  /** The database the statements run in (`USE`), so unqualified names in a query resolve there. */
  database: string;
  statements: string[];
  /** Server errnos that mean the statement already took effect. */
  alreadyApplied: ReadonlySet<number>;
  /** The table's definition at this version (absent after a drop and for database-level DDL). */
  tableDef?: TableDef;
  /** rename-table: the table renamed away (its state is released). */
  renamedFrom?: { schema: string; table: string };
}

export const SUPPORTED_DDL_TYPES: readonly string[] = Object.freeze([
  'CREATE SCHEMA',
  'DROP SCHEMA',
  'CREATE TABLE',
  'DROP TABLE',
  'TRUNCATE TABLE',
  'RENAME TABLE',
  'ADD COLUMN',
  'DROP COLUMN',
  'MODIFY COLUMN',
  'ADD INDEX',
  'DROP INDEX',
]);

const E = ALREADY_APPLIED_ERRNOS;

/** The statement with comments dropped and spaces squeezed, upper-cased, for classification only. */
function shape(query: string): string {
  return query
    .replace(/\/\*(?![!+])[\s\S]*?\*\//g, ' ')
    .replace(/(?:--\s|#)[^\n]*/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/;$/, '')
    .trim()
    .toUpperCase();
}

const NAME = String.raw`(?:\`(?:[^\`]|\`\`)+\`|[A-Za-z0-9_$\u0080-\uffff]+)`;
const QUALIFIED = String.raw`(${NAME})(?:\s*\.\s*(${NAME}))?`;
const RENAME = new RegExp(String.raw`^\s*RENAME\s+TABLE\s+${QUALIFIED}\s+TO\s+${QUALIFIED}\s*;?\s*$`, 'i');

function unquote(name: string): string {
  return name.startsWith('`') ? name.slice(1, -1).replaceAll('``', '`') : name;
}

/**
 * The plan of one schema file. Throws `UnsupportedDdlError` for a DDL type outside
 * `SUPPORTED_DDL_TYPES`, or a query that does not do what its type says.
 *
 * @example planDdl(decodeSchemaFile(text, path), path).statements // ['ALTER TABLE shop.orders ADD COLUMN coupon ...']
 */
export function planDdl(content: SchemaFileContent, path: string, previous?: TableDef): DdlPlan {
  const { schema, query } = content;
  const table = content.table;
  const fail = (problem: string): never => {
    throw new UnsupportedDdlError(path, query, problem);
  };
  const base = { database: schema, ...(content.tableDef ? { tableDef: content.tableDef } : {}) };
  const tableName = () => table ?? fail('a table DDL in a database-level schema file');
  // No query (a table first seen without DDL, or a sink that wrote only the columns): the columns
  // are all there is; against the previous version's they give the column changes.
  if (content.typeCode === 0 && query.trim() === '') {
    if (content.tableDef === undefined) return fail('a schema file with neither a query nor columns');
    if (previous !== undefined) {
      return { ...base, effect: 'alter-table', statements: alterFromDiff(previous, content.tableDef), alreadyApplied: new Set([E.ER_DUP_FIELDNAME, E.ER_CANT_DROP_FIELD_OR_KEY]) };
    }
    return { ...base, effect: 'create-table', statements: [createDatabaseSql(schema), createTableSql(content.tableDef)], alreadyApplied: new Set([E.ER_TABLE_EXISTS_ERROR]) };
  }
  const type = content.ddlType ?? `type code ${content.typeCode}`;
  const s = shape(query);
  const expect = (ok: boolean, what: string) => {
    if (!ok) fail(`a ${type} schema file whose query is not ${what}`);
  };
  switch (type) {
    case 'CREATE SCHEMA':
      expect(/^CREATE (DATABASE|SCHEMA)\b/.test(s), 'CREATE DATABASE');
      return { ...base, effect: 'create-schema', statements: [createDatabaseSql(schema)], alreadyApplied: new Set([E.ER_DB_CREATE_EXISTS]) };
    case 'DROP SCHEMA':
      expect(/^DROP (DATABASE|SCHEMA)\b/.test(s), 'DROP DATABASE');
      return { ...base, effect: 'drop-schema', statements: [`DROP DATABASE IF EXISTS ${quoteIdentifier(schema)}`], alreadyApplied: new Set([E.ER_DB_DROP_EXISTS]) };
    case 'CREATE TABLE':
      expect(/^CREATE (TEMPORARY )?TABLE\b/.test(s) && !/^CREATE TEMPORARY/.test(s), 'CREATE TABLE');
      expect(!/\bSELECT\b/.test(s.replace(/'(?:[^'\\]|\\.|'')*'/g, "''")), 'a plain CREATE TABLE (CREATE TABLE ... SELECT is not replayed)');
      tableName();
      return { ...base, effect: 'create-table', statements: [createDatabaseSql(schema), query], alreadyApplied: new Set([E.ER_TABLE_EXISTS_ERROR]) };
    case 'DROP TABLE':
      expect(/^DROP TABLE\b/.test(s), 'DROP TABLE');
      return { database: schema, effect: 'drop-table', statements: [`DROP TABLE IF EXISTS ${quoteTable(schema, tableName())}`], alreadyApplied: new Set([E.ER_BAD_TABLE_ERROR]) };
    case 'TRUNCATE TABLE':
      expect(/^TRUNCATE\b/.test(s), 'TRUNCATE TABLE');
      return { ...base, effect: 'truncate-table', statements: [`TRUNCATE TABLE ${quoteTable(schema, tableName())}`], alreadyApplied: new Set() };
    case 'RENAME TABLE': {
      const match = RENAME.exec(query.replace(/\/\*(?![!+])[\s\S]*?\*\//g, ' '));
      if (match === null) return fail('only RENAME TABLE a TO b (one table) is replayed');
      const [, first, second, third, fourth] = match;
      const from = second === undefined ? { schema, table: unquote(first!) } : { schema: unquote(first!), table: unquote(second) };
      const to = fourth === undefined ? { schema, table: unquote(third!) } : { schema: unquote(third!), table: unquote(fourth) };
      if (to.schema !== schema || to.table !== tableName()) fail(`it renames to ${to.schema}.${to.table}, but the schema file is for ${schema}.${table}`);
      return {
        ...base,
        effect: 'rename-table',
        statements: [`RENAME TABLE ${quoteTable(from.schema, from.table)} TO ${quoteTable(to.schema, to.table)}`],
        // Run twice it fails (source gone, target there): the applier checks both tables instead of an errno.
        alreadyApplied: new Set(),
        renamedFrom: from,
      };
    }
    case 'ADD COLUMN':
    case 'DROP COLUMN':
    case 'MODIFY COLUMN':
    case 'ADD INDEX':
    case 'DROP INDEX': {
      const isIndex = type.endsWith('INDEX');
      const ok = /^ALTER (ONLINE |IGNORE )?TABLE\b/.test(s) || (isIndex && /^(CREATE (UNIQUE |FULLTEXT |SPATIAL )?INDEX|DROP INDEX)\b/.test(s));
      expect(ok, isIndex ? 'ALTER TABLE, CREATE INDEX or DROP INDEX' : 'ALTER TABLE');
      tableName();
      const already =
        type === 'ADD COLUMN' ? [E.ER_DUP_FIELDNAME] : type === 'ADD INDEX' ? [E.ER_DUP_KEYNAME] : type === 'MODIFY COLUMN' ? [] : [E.ER_CANT_DROP_FIELD_OR_KEY];
      return { ...base, effect: 'alter-table', statements: [query], alreadyApplied: new Set(already) };
    }
    default:
      return fail(`${type} is not replayed (supported: ${SUPPORTED_DDL_TYPES.join(', ')})`);
  }
}

function columnSql(c: ColumnDef): string {
  let sql = `${quoteIdentifier(c.name)} ${columnTypeSql(c)}`;
  if (c.nullable === false) sql += ' NOT NULL';
  if (c.default !== undefined) sql += ` DEFAULT ${typeof c.default === 'number' ? String(c.default) : quoteString(c.default)}`;
  return sql;
}

/**
 * The ALTER TABLE statements that turn `before` into `after` by columns: drops, then adds (each
 * after its predecessor, so column order matches), then type changes. Primary key changes and
 * indexes are not visible in a schema file's columns and are not derived.
 */
export function alterFromDiff(before: TableDef, after: TableDef): string[] {
  const table = quoteTable(after.schema, after.table);
  const old = new Map(before.columns.map((c) => [c.name, c]));
  const now = new Set(after.columns.map((c) => c.name));
  const statements: string[] = [];
  for (const c of before.columns) if (!now.has(c.name)) statements.push(`ALTER TABLE ${table} DROP COLUMN ${quoteIdentifier(c.name)}`);
  after.columns.forEach((c, i) => {
    const was = old.get(c.name);
    const place = i === 0 ? ' FIRST' : ` AFTER ${quoteIdentifier(after.columns[i - 1]!.name)}`;
    if (was === undefined) statements.push(`ALTER TABLE ${table} ADD COLUMN ${columnSql(c)}${place}`);
    else if (columnSql(was) !== columnSql(c)) statements.push(`ALTER TABLE ${table} MODIFY COLUMN ${columnSql(c)}`);
  });
  return statements;
}

/** TiDB's default character set is utf8mb4; MariaDB's is not, so a database created here says so. */
export function createDatabaseSql(schema: string): string {
  return `CREATE DATABASE IF NOT EXISTS ${quoteIdentifier(schema)} DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`;
}

const NEEDS_LENGTH: Readonly<Record<string, number>> = { VARCHAR: 255, VARBINARY: 255 };
const TIME_TYPES = new Set(['DATETIME', 'TIMESTAMP', 'TIME']);
const PRECISION_SCALE = new Set(['DECIMAL', 'NUMERIC', 'FLOAT', 'DOUBLE']);
const WITH_LENGTH = new Set(['CHAR', 'VARCHAR', 'BINARY', 'VARBINARY', 'BIT']);

/** One column's SQL type from the schema file's attributes. */
export function columnTypeSql(column: ColumnDef): string {
  const type = column.type;
  let sql = type;
  if (type === 'ENUM' || type === 'SET') {
    sql += `(${(column.elems ?? []).map(quoteString).join(',')})`;
  } else if (TIME_TYPES.has(type)) {
    const fsp = column.scale ?? (column.precision !== undefined && column.precision <= 6 ? column.precision : undefined);
    if (fsp) sql += `(${fsp})`;
  } else if (PRECISION_SCALE.has(type)) {
    if (column.precision !== undefined) sql += column.scale !== undefined ? `(${column.precision},${column.scale})` : `(${column.precision})`;
  } else if (WITH_LENGTH.has(type)) {
    const length = column.precision ?? NEEDS_LENGTH[type];
    if (length !== undefined) sql += `(${length})`;
  }
  if (column.unsigned) sql += ' UNSIGNED';
  return sql;
}

/** CREATE TABLE IF NOT EXISTS from a schema file's columns (a table first seen without DDL). */
export function createTableSql(def: TableDef): string {
  const columns = def.columns.map(columnSql);
  const keys = def.columns.filter((c) => c.primaryKey).map((c) => quoteIdentifier(c.name));
  if (keys.length > 0) columns.push(`PRIMARY KEY (${keys.join(', ')})`);
  return `CREATE TABLE IF NOT EXISTS ${quoteTable(def.schema, def.table)} (${columns.join(', ')})`;
}
