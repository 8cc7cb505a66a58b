/**
 * A generated CDC workload for the consumer's end-to-end tests: tables created up front and mid-stream,
 * inserts, updates and deletes (some several to one commit ts), column DDL mid-stream (add, drop,
 * modify), dropped tables; commit ts that cross a day boundary (new date folders). Alongside, the
 * same events applied to an in-memory model, and the reading of MariaDB tables in the model's form.
 */
import type { Pool } from 'mysql2/promise';
import { lastValueFrom } from 'rxjs';
import type { ChangeEvent, ColumnDef, ColumnValue, DdlEvent, TableDef } from '../../../lib/codec/index.ts';
import { fromPaced } from '../../../lib/core/paced.ts';
import type { ExternalStorage } from '../../../lib/storage/storage.ts';
import { storageSink, type StorageSinkOptions } from '../../../pipelines/storageSink/storageSink.ts';

/** A small deterministic PRNG (mulberry32). */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Physical ms 2024-05-01T23:59:58Z: the stream crosses midnight after ~2 s of commit time. */
const BASE_MS = Date.UTC(2024, 4, 1, 23, 59, 58);

const BASE_COLUMNS: ColumnDef[] = [
  { name: 'id', type: 'INT', primaryKey: true, nullable: false },
  { name: 'name', type: 'VARCHAR', precision: 64 },
  { name: 'amount', type: 'DECIMAL', precision: 12, scale: 2 },
  { name: 'big', type: 'BIGINT', unsigned: true },
  { name: 'data', type: 'VARBINARY', precision: 32 },
  { name: 'created', type: 'DATETIME' },
  { name: 'doc', type: 'JSON' },
];
const CREATE_COLUMNS_SQL = 'id INT NOT NULL PRIMARY KEY, name VARCHAR(64), amount DECIMAL(12,2), big BIGINT UNSIGNED, data VARBINARY(32), created DATETIME, doc JSON';
const NASTY = ['plain', 'a,b', 'say "hi"', 'two\nlines', 'crlf\r\nend', "it's", 'back\\slash', 'ünïcødé 😀', '', '\\N'];

export interface Workload {
  events: ChangeEvent[];
  /** schema.table -> id -> row (the model after every event). */
  model: Map<string, Map<number, Record<string, ColumnValue>>>;
  /** schema.table -> its columns now. */
  columns: Map<string, ColumnDef[]>;
  schemas: string[];
  rows: number;
}

export interface WorkloadOptions {
  seed: number;
  /** Databases get this prefix (unique per test). */
  prefix: string;
  tables: number;
  rowEvents: number;
}

export function generateWorkload(options: WorkloadOptions): Workload {
  const rnd = random(options.seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)]!;
  const events: ChangeEvent[] = [];
  const model = new Map<string, Map<number, Record<string, ColumnValue>>>();
  const columns = new Map<string, ColumnDef[]>();
  const versions = new Map<string, bigint>();
  const schemas = [`${options.prefix}_a`, `${options.prefix}_b`];
  let step = 0;
  const nextTs = () => BigInt(BASE_MS + 10 * ++step) << 18n;
  let rowCount = 0;

  const dispatcherOf = (key: string) => `d-${key}`;
  const createTable = (schema: string, table: string) => {
    const key = `${schema}.${table}`;
    const ts = nextTs();
    const def: TableDef = { schema, table, version: ts, columns: BASE_COLUMNS.map((c) => ({ ...c })) };
    events.push(ddl(ts, 'CREATE TABLE', `CREATE TABLE ${table} (${CREATE_COLUMNS_SQL})`, schema, table, def, [dispatcherOf(key)]));
    model.set(key, new Map());
    columns.set(key, def.columns);
    versions.set(key, ts);
  };
  const ddl = (ts: bigint, ddlType: string, query: string, schema: string, table: string | undefined, tableDef: TableDef | undefined, blocked: string[] | 'all'): DdlEvent => ({
    kind: 'ddl',
    commitTs: ts,
    query,
    ddlType,
    schema,
    ...(table === undefined ? {} : { table }),
    ...(tableDef === undefined ? {} : { tableDef }),
    blockedDispatchers: blocked,
  });

  for (const schema of schemas) events.push(ddl(nextTs(), 'CREATE SCHEMA', `CREATE DATABASE ${schema}`, schema, undefined, undefined, 'all'));
  let created = 0;
  const initial = Math.max(1, options.tables - 5);
  for (; created < initial; created++) createTable(schemas[created % 2]!, `t${created}`);

  const valueFor = (column: ColumnDef, id: number): ColumnValue => {
    if (column.name === 'id') return id;
    if (rnd() < 0.1) return null;
    switch (column.name) {
      case 'name':
        return `${pick(NASTY)}-${id}`;
      case 'amount':
        return `${Math.floor(rnd() * 100000)}.${String(Math.floor(rnd() * 100)).padStart(2, '0')}`;
      case 'big':
        return rnd() < 0.2 ? 18446744073709551615n : BigInt(Math.floor(rnd() * 1e12));
      case 'data':
        return Uint8Array.from({ length: Math.floor(rnd() * 8) }, () => Math.floor(rnd() * 256));
      case 'created':
        return `2024-0${1 + Math.floor(rnd() * 9)}-1${Math.floor(rnd() * 9)} 1${Math.floor(rnd() * 9)}:0${Math.floor(rnd() * 9)}:3${Math.floor(rnd() * 9)}`;
      case 'doc':
        return JSON.stringify({ k: pick(NASTY), n: id });
      default:
        return rnd() < 0.5 ? `x${id}` : null; // added columns: VARCHAR
    }
  };

  let nextId = 1;
  for (let i = 0; i < options.rowEvents; i++) {
    // Mid-stream DDL and table churn.
    if (i > 0 && i % Math.floor(options.rowEvents / 12) === 0) {
      const keys = [...model.keys()];
      const key = pick(keys);
      const [schema, table] = key.split('.') as [string, string];
      const current = columns.get(key)!;
      const kind = (i / Math.floor(options.rowEvents / 12)) % 4;
      const ts = nextTs();
      if (kind === 0 && created < options.tables) {
        createTable(schemas[created % 2]!, `t${created}`);
        created++;
      } else if (kind === 1 && !current.some((c) => c.name === `extra${i}`)) {
        const next = [...current, { name: `extra${i}`, type: 'VARCHAR', precision: 16 }];
        events.push(ddl(ts, 'ADD COLUMN', `ALTER TABLE ${table} ADD COLUMN extra${i} VARCHAR(16)`, schema, table, { schema, table, version: ts, columns: next }, [dispatcherOf(key)]));
        for (const row of model.get(key)!.values()) row[`extra${i}`] = null;
        columns.set(key, next);
        versions.set(key, ts);
      } else if (kind === 2 && current.some((c) => c.name === 'doc')) {
        const next = current.filter((c) => c.name !== 'doc');
        events.push(ddl(ts, 'DROP COLUMN', `ALTER TABLE ${table} DROP COLUMN doc`, schema, table, { schema, table, version: ts, columns: next }, [dispatcherOf(key)]));
        for (const row of model.get(key)!.values()) delete row.doc;
        columns.set(key, next);
        versions.set(key, ts);
      } else if (keys.length > 3) {
        events.push(ddl(ts, 'DROP TABLE', `DROP TABLE ${table}`, schema, table, undefined, [dispatcherOf(key)]));
        model.delete(key);
        columns.delete(key);
        versions.delete(key);
      }
    }
    const keys = [...model.keys()];
    const key = pick(keys);
    const [schema, table] = key.split('.') as [string, string];
    const rows = model.get(key)!;
    const cols = columns.get(key)!;
    const ts = nextTs();
    // One to three changes in one transaction (one commit ts).
    const changes = 1 + Math.floor(rnd() * 3);
    for (let c = 0; c < changes; c++) {
      const existing = [...rows.keys()];
      const r = rnd();
      const base = { kind: 'row' as const, schema, table, tableVersion: versions.get(key)!, commitTs: ts, dispatcherId: dispatcherOf(key) };
      if (r < 0.2 && existing.length > 0) {
        const id = pick(existing);
        events.push({ ...base, op: 'delete', columns: { ...rows.get(id)! } });
        rows.delete(id);
      } else if (r < 0.5 && existing.length > 0) {
        const id = pick(existing);
        const before = rows.get(id)!;
        const after: Record<string, ColumnValue> = {};
        for (const column of cols) after[column.name] = column.name === 'id' || rnd() < 0.5 ? before[column.name]! : valueFor(column, id);
        events.push({ ...base, op: 'update', columns: after, oldColumns: { ...before } });
        rows.set(id, { ...after });
      } else {
        const id = nextId++;
        const row: Record<string, ColumnValue> = {};
        for (const column of cols) row[column.name] = valueFor(column, id);
        events.push({ ...base, op: 'insert', columns: row });
        rows.set(id, { ...row });
      }
      rowCount++;
    }
  }
  return { events, model, columns, schemas, rows: rowCount };
}

/** Runs `events` through a storageSink into `storage` until every event is durable. */
export async function sinkInto(storage: ExternalStorage, events: readonly ChangeEvent[], options: Partial<StorageSinkOptions> = {}): Promise<void> {
  await lastValueFrom(
    fromPaced(events, { window: 64 }).pipe(storageSink({ storage, protocol: 'csv', flushIntervalMs: 100, fileSizeBytes: 4096, checkpointIntervalMs: 100, ...options })),
    { defaultValue: undefined },
  );
}

function normalize(value: unknown, column = ''): unknown {
  if (value === null || value === undefined) return null;
  // JSON columns: the driver may parse them and the server may reformat them; compare as parsed.
  if (column === 'doc') return JSON.stringify(typeof value === 'string' ? JSON.parse(value) : value);
  if (value instanceof Uint8Array) return `hex:${Buffer.from(value).toString('hex')}`;
  if (typeof value === 'bigint' || typeof value === 'number') return String(value);
  return value;
}

/** The model's tables in a comparable form: schema.table -> rows by id, values normalized. */
export function expectedTables(workload: Workload): Record<string, Record<string, Record<string, unknown>>> {
  const out: Record<string, Record<string, Record<string, unknown>>> = {};
  for (const [key, rows] of workload.model) {
    const table: Record<string, Record<string, unknown>> = {};
    for (const [id, row] of rows) table[id] = Object.fromEntries(Object.entries(row).map(([k, v]) => [k, normalize(v, k)]));
    out[key] = table;
  }
  return out;
}

/** The same read from MariaDB: every table of the workload's databases. */
export async function actualTables(pool: Pool, workload: Workload): Promise<Record<string, Record<string, Record<string, unknown>>>> {
  const out: Record<string, Record<string, Record<string, unknown>>> = {};
  const [tables] = await pool.query('SELECT TABLE_SCHEMA s, TABLE_NAME t FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (?)', [workload.schemas]);
  for (const { s, t } of tables as Array<{ s: string; t: string }>) {
    const [rows] = await pool.query(`SELECT * FROM \`${s}\`.\`${t}\``);
    const table: Record<string, Record<string, unknown>> = {};
    for (const row of rows as Array<Record<string, unknown>>) table[String(row.id)] = Object.fromEntries(Object.entries(row).map(([k, v]) => [k, normalize(v, k)]));
    out[`${s}.${t}`] = table;
  }
  return out;
}
