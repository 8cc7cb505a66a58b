/**
 * The storage sink end to end: a small CDC stream (two CREATE TABLEs, a few hundred inserts, updates
 * and deletes from three dispatchers, an ALTER TABLE mid-stream that blocks its table's dispatchers)
 * written as TiCDC storage-sink files, then the file tree and the `metadata` checkpoint it left.
 * Writes to a temp folder (removed at the end); `SLUICE_SINK_URI` sends it to any storage URI instead.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { lastValueFrom, tap } from 'rxjs';
import { fromPaced } from '../lib/core/paced.ts';
import type { ChangeEvent, ColumnValue, DdlEvent, RowChange, TableDef } from '../lib/codec/index.ts';
import { openStorage, redactUri } from '../lib/storage/index.ts';
import { storageSink, type SinkProgress } from '../pipelines/storageSink/storageSink.ts';

const ROW_EVENTS = 300;
const ORDERS_DISPATCHERS = ['orders-1', 'orders-2'];
const CUSTOMERS_DISPATCHER = 'customers-1';

/** A TiDB TSO `ms` milliseconds into 2024-05-01 12:00 UTC: physical ms in the high bits, logical 0. */
const tso = (ms: number) => BigInt(Date.UTC(2024, 4, 1, 12) + ms) << 18n;

const customersDef: TableDef = {
  schema: 'shop',
  table: 'customers',
  version: tso(0),
  columns: [
    { name: 'id', type: 'INT', primaryKey: true, nullable: false },
    { name: 'name', type: 'VARCHAR', nullable: false },
    { name: 'email', type: 'VARCHAR' },
  ],
};
const ordersDef: TableDef = {
  schema: 'shop',
  table: 'orders',
  version: tso(0) + 1n,
  columns: [
    { name: 'id', type: 'BIGINT', primaryKey: true, nullable: false },
    { name: 'customer_id', type: 'INT', nullable: false },
    { name: 'total', type: 'DECIMAL', precision: 10, scale: 2 },
    { name: 'status', type: 'VARCHAR' },
  ],
};

function createTable(def: TableDef, query: string): DdlEvent {
  return { kind: 'ddl', commitTs: def.version, query, ddlType: 'CREATE TABLE', schema: def.schema, table: def.table, tableDef: def, blockedDispatchers: 'all' };
}

/**
 * The stream, in commit order: both CREATE TABLEs, then rows whose commit ts only grow; halfway
 * `ALTER TABLE shop.orders ADD COLUMN coupon` blocks the two orders dispatchers, and later orders rows
 * carry the new table version and column.
 */
export function* sampleChangeEvents(rowEvents = ROW_EVENTS): Generator<ChangeEvent> {
  yield createTable(customersDef, 'CREATE TABLE shop.customers (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, email VARCHAR(128))');
  yield createTable(ordersDef, 'CREATE TABLE shop.orders (id BIGINT PRIMARY KEY, customer_id INT NOT NULL, total DECIMAL(10,2), status VARCHAR(16))');

  let ordersVersion = ordersDef.version;
  const customers = new Map<number, Record<string, ColumnValue>>();
  const orders = new Map<number, Record<string, ColumnValue>>();
  let nextCustomer = 1;
  let nextOrder = 1;
  const row = (op: RowChange['op'], table: string, dispatcherId: string, tableVersion: bigint, commitTs: bigint, columns: Record<string, ColumnValue>, oldColumns?: Record<string, ColumnValue>): RowChange => ({
    kind: 'row',
    op,
    schema: 'shop',
    table,
    tableVersion,
    commitTs,
    dispatcherId,
    columns,
    ...(oldColumns ? { oldColumns } : {}),
  });

  const alterAt = Math.floor(rowEvents / 2);
  for (let i = 0; i < rowEvents; i++) {
    const commitTs = tso(10 + i * 5);
    if (i === alterAt) {
      ordersVersion = commitTs - 1n;
      yield {
        kind: 'ddl',
        commitTs: ordersVersion,
        query: "ALTER TABLE shop.orders ADD COLUMN coupon VARCHAR(16) DEFAULT ''",
        ddlType: 'ADD COLUMN',
        schema: 'shop',
        table: 'orders',
        tableDef: { ...ordersDef, version: ordersVersion, columns: [...ordersDef.columns, { name: 'coupon', type: 'VARCHAR', default: '' }] },
        blockedDispatchers: ORDERS_DISPATCHERS,
      };
      // The new column's default fills the rows already there.
      for (const [id, columns] of orders) orders.set(id, { ...columns, coupon: '' });
    }
    const altered = ordersVersion !== ordersDef.version;
    // Every third event is a customer; the rest are orders split over two dispatchers.
    if (i % 3 === 0 || customers.size === 0) {
      const existing = [...customers.keys()];
      if (i % 15 === 9 && existing.length > 2) {
        const id = existing[0]!;
        yield row('delete', 'customers', CUSTOMERS_DISPATCHER, customersDef.version, commitTs, customers.get(id)!);
        customers.delete(id);
      } else if (i % 5 === 3 && existing.length > 0) {
        const id = existing[existing.length - 1]!;
        const before = customers.get(id)!;
        const after = { ...before, email: `customer${id}@example.org` };
        customers.set(id, after);
        yield row('update', 'customers', CUSTOMERS_DISPATCHER, customersDef.version, commitTs, after, before);
      } else {
        const id = nextCustomer++;
        const columns = { id, name: `Customer ${id}`, email: null };
        customers.set(id, columns);
        yield row('insert', 'customers', CUSTOMERS_DISPATCHER, customersDef.version, commitTs, columns);
      }
      continue;
    }
    const dispatcherId = ORDERS_DISPATCHERS[i % 2]!;
    const pending = [...orders.entries()].find(([, o]) => o.status === 'new');
    if (pending && i % 4 === 1) {
      const [id, before] = pending;
      const after = { ...before, status: 'paid' };
      orders.set(id, after);
      yield row('update', 'orders', dispatcherId, ordersVersion, commitTs, after, before);
    } else if (orders.size > 10 && i % 11 === 0) {
      const [id, columns] = [...orders.entries()][0]!;
      orders.delete(id);
      yield row('delete', 'orders', dispatcherId, ordersVersion, commitTs, columns);
    } else {
      const id = nextOrder++;
      const customerIds = [...customers.keys()];
      const columns: Record<string, ColumnValue> = {
        id: BigInt(id),
        customer_id: customerIds[id % customerIds.length]!,
        total: ((id * 737) % 10_000 / 100 + 5).toFixed(2),
        status: 'new',
        ...(altered ? { coupon: id % 7 === 0 ? 'SPRING' : '' } : {}),
      };
      orders.set(id, columns);
      yield row('insert', 'orders', dispatcherId, ordersVersion, commitTs, columns);
    }
  }
}

export async function run(): Promise<void> {
  const ownDir = process.env.SLUICE_SINK_URI ? undefined : await mkdtemp(join(tmpdir(), 'sluice-sink-example-'));
  const uri = process.env.SLUICE_SINK_URI ?? pathToFileURL(join(ownDir!, 'cdc')).href;
  const storage = await openStorage(uri);
  const counts = { data: 0, schema: 0, checkpoints: 0, rows: 0, skipped: 0, stall: 0 };
  try {
    const count = (report: SinkProgress) => {
      if (report.kind === 'data') counts.rows += report.rows;
      counts[report.kind === 'checkpoint' ? 'checkpoints' : report.kind]++;
    };
    await lastValueFrom(
      fromPaced(sampleChangeEvents(), { window: 16 }).pipe(
        storageSink({
          storage,
          protocol: 'csv',
          flushIntervalMs: 200,
          fileSizeBytes: 4 * 1024,
          checkpointIntervalMs: 200,
          ...(ownDir ? { spool: { dir: join(ownDir, 'spool') } } : {}),
        }),
        tap(count),
      ),
      { defaultValue: undefined },
    );

    console.log(`  wrote to ${redactUri(uri)}: ${counts.rows} rows in ${counts.data} data files, ${counts.schema} schema files, ${counts.checkpoints} checkpoints`);
    const keys: string[] = [];
    for await (const key of storage.list('')) keys.push(key);
    for (const key of keys.sort()) {
      const bytes = await storage.get(key);
      console.log(`  ${key.padEnd(72)} ${String(bytes?.byteLength ?? 0).padStart(6)} B`);
    }
    const metadata = await storage.get('metadata');
    console.log(`  metadata: ${metadata ? Buffer.from(metadata).toString() : '(none)'}`);
    if (counts.rows !== ROW_EVENTS) throw new Error(`expected ${ROW_EVENTS} rows written, the sink reported ${counts.rows}`);
  } finally {
    await storage.close();
    if (ownDir) await rm(ownDir, { recursive: true, force: true });
  }
}
