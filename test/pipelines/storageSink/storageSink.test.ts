import { expect } from 'chai';
import { from, lastValueFrom, toArray, type Observable } from 'rxjs';
import { createAck, type Acked } from '../../../lib/core/ack.ts';
import { mergePaced } from '../../../lib/core/paced.ts';
import { encodeCsvRows, type ChangeEvent, type DdlEvent, type RowChange, type TableDef } from '../../../lib/codec/index.ts';
import { MemoryStorage } from '../../../lib/storage/memoryStorage.ts';
import type { ExternalStorage, ListOptions } from '../../../lib/storage/storage.ts';
import { storageSink, type SinkProgress, type StorageSinkOptions } from '../../../pipelines/storageSink/storageSink.ts';
import { tick, until } from '../../support/waiting.ts';

const ORDERS_V100: TableDef = {
  schema: 'shop',
  table: 'orders',
  version: 100n,
  columns: [
    { name: 'id', type: 'INT', primaryKey: true, nullable: false },
    { name: 'note', type: 'VARCHAR' },
  ],
};
const ORDERS_V110: TableDef = { ...ORDERS_V100, version: 110n, columns: [...ORDERS_V100.columns, { name: 'qty', type: 'INT' }] };

const createOrders: DdlEvent = {
  kind: 'ddl',
  commitTs: 100n,
  query: 'CREATE TABLE shop.orders (id INT PRIMARY KEY, note VARCHAR(64))',
  ddlType: 'CREATE TABLE',
  schema: 'shop',
  table: 'orders',
  tableDef: ORDERS_V100,
  blockedDispatchers: 'all',
};

function row(dispatcherId: string, commitTs: bigint, id: number, version = 100n, extra: Record<string, number> = {}): RowChange {
  return {
    kind: 'row',
    op: 'insert',
    schema: 'shop',
    table: 'orders',
    tableVersion: version,
    commitTs,
    dispatcherId,
    columns: { id, note: `order ${id}`, ...extra },
  };
}

/** A storage that records each completed operation, and can hold puts back until released. */
class RecordingStorage implements ExternalStorage {
  readonly inner = new MemoryStorage();
  readonly log: string[] = [];
  gate: Promise<void> | undefined;
  get uri(): string {
    return this.inner.uri;
  }
  async put(key: string, data: Uint8Array): Promise<void> {
    await this.gate;
    await this.inner.put(key, data);
    this.log.push(`put ${key}`);
  }
  get(key: string) {
    return this.inner.get(key);
  }
  exists(key: string) {
    return this.inner.exists(key);
  }
  delete(key: string) {
    return this.inner.delete(key);
  }
  list(prefix: string, options?: ListOptions) {
    return this.inner.list(prefix, options);
  }
  close() {
    return this.inner.close();
  }
  async text(key: string): Promise<string | undefined> {
    const bytes = await this.inner.get(key);
    return bytes === undefined ? undefined : Buffer.from(bytes).toString();
  }
  async keys(): Promise<string[]> {
    const keys: string[] = [];
    for await (const key of this.inner.list('')) keys.push(key);
    return keys;
  }
}

const baseOptions = (storage: ExternalStorage): StorageSinkOptions => ({
  storage,
  flushIntervalMs: 100,
  checkpointIntervalMs: 20,
  dateSeparator: 'none',
  fileIndexWidth: 6,
  spool: { memoryBytes: 1 << 20, diskQuotaBytes: 1 << 24 },
  retry: { maxRetries: 5, minDelayMs: 1, maxDelayMs: 5, jitter: 0 },
});

function acked(events: ChangeEvent[], flushed: string[] = []): Observable<Acked<ChangeEvent>> {
  return from(events.map((value, i) => ({ value, ack: createAck({ onFlushed: () => flushed.push(String(i)) }) })));
}

const run = (events$: Observable<Acked<ChangeEvent>>, options: StorageSinkOptions) =>
  lastValueFrom(events$.pipe(storageSink(options), toArray()));

describe('storageSink', () => {
  it('writes rows as data files, then index files, with the schema file and the metadata checkpoint', async () => {
    const storage = new RecordingStorage();
    const rows = [101n, 102n, 103n].map((ts, i) => row('d1', ts, i + 1));
    const flushed: string[] = [];
    const progress = await run(acked([createOrders, ...rows], flushed), baseOptions(storage));

    const keys = await storage.keys();
    const schemaKey = keys.find((key) => key.startsWith('shop/orders/meta/schema_100_'))!;
    expect(schemaKey).to.match(/^shop\/orders\/meta\/schema_100_\d{10}\.json$/);
    expect(await storage.text('shop/orders/100/CDC000000.csv')).to.equal(encodeCsvRows(rows, ORDERS_V100));
    expect(await storage.text('shop/orders/100/meta/CDC.index')).to.equal('CDC000000.csv\n');
    expect(await storage.text('metadata')).to.equal('{"checkpoint-ts":103}');
    expect(flushed).to.have.members(['0', '1', '2', '3']);
    expect(progress.filter((p) => p.kind === 'data')).to.deep.equal([
      { kind: 'data', path: 'shop/orders/100/CDC000000.csv', rows: 3, bytes: encodeCsvRows(rows, ORDERS_V100).length, reason: 'complete' },
    ]);
    const order = storage.log;
    expect(order.indexOf('put shop/orders/100/CDC000000.csv')).to.be.lessThan(order.indexOf('put shop/orders/100/meta/CDC.index'));
    expect(order.indexOf(`put ${schemaKey}`)).to.be.lessThan(order.indexOf('put shop/orders/100/CDC000000.csv'));
  });

  it('early wake does not advance the checkpoint', async () => {
    const storage = new RecordingStorage();
    let release!: () => void;
    storage.gate = new Promise((resolve) => (release = resolve));
    const pulled: number[] = [];
    async function* dispatcher() {
      for (let i = 1; i <= 20; i++) {
        pulled.push(i);
        yield row('d1', 100n + BigInt(i), i);
      }
    }
    const flushed: number[] = [];
    const events$ = mergePaced<ChangeEvent>([dispatcher()], { window: 1 });
    const reports: SinkProgress[] = [];
    let done = false;
    events$
      .pipe(storageSink({ ...baseOptions(storage), tables: [ORDERS_V100], flushIntervalMs: 100 }))
      .subscribe({ next: (report) => reports.push(report), complete: () => (done = true) });
    // Wrapped in the test: record which events were flushed.
    await until(() => pulled.length === 20, 'every event pulled: each woke its successor before any write');
    await tick();
    expect(storage.log).to.deep.equal([], 'nothing is durable yet');
    expect(await storage.text('metadata')).to.equal(undefined);
    expect(reports.filter((r) => r.kind === 'checkpoint')).to.deep.equal([]);
    release();
    await until(() => done, 'the sink to finish');
    expect(await storage.text('metadata')).to.equal('{"checkpoint-ts":120}');
    void flushed;
  });

  it('a barrier across several dispatchers waits for all of them: the schema file comes after their rows', async () => {
    const storage = new RecordingStorage();
    const before = [row('d1', 101n, 1), row('d2', 102n, 2), row('d3', 103n, 3)];
    const addColumn: DdlEvent = {
      kind: 'ddl',
      commitTs: 110n,
      query: 'ALTER TABLE shop.orders ADD COLUMN qty INT',
      ddlType: 'ADD COLUMN',
      schema: 'shop',
      table: 'orders',
      tableDef: ORDERS_V110,
      blockedDispatchers: ['d1', 'd2', 'd3'],
    };
    const after = [row('d1', 111n, 4, 110n, { qty: 7 })];
    // A long flush interval: only the drain marker can make the writer cut before the DDL.
    await run(acked([createOrders, ...before, addColumn, ...after]), { ...baseOptions(storage), flushIntervalMs: 60_000 });

    const order = storage.log;
    const schema110 = order.findIndex((op) => /schema_110_/.test(op));
    const oldData = order.indexOf('put shop/orders/100/CDC000000.csv');
    const oldIndex = order.indexOf('put shop/orders/100/meta/CDC.index');
    const newData = order.indexOf('put shop/orders/110/CDC000000.csv');
    expect(oldData).to.be.greaterThan(-1);
    expect(oldIndex).to.be.lessThan(schema110, 'every earlier row is durable (data and index) before the schema file');
    expect(schema110).to.be.lessThan(newData, 'rows of the new version come after its schema file');
    expect(await storage.text('shop/orders/100/CDC000000.csv')).to.equal(encodeCsvRows(before, ORDERS_V100));
    expect(await storage.text('shop/orders/110/CDC000000.csv')).to.equal(encodeCsvRows(after, ORDERS_V110));
  });

  it('a barrier drains items still queued upstream of the writer', async () => {
    // Rows sit in the writer's open batch (a minute-long interval) when the DDL arrives; the drain
    // marker cuts that batch so the DDL is written at once, not a minute later.
    const storage = new RecordingStorage();
    const started = Date.now();
    const dropTable: DdlEvent = {
      kind: 'ddl',
      commitTs: 120n,
      query: 'TRUNCATE TABLE shop.orders',
      ddlType: 'TRUNCATE TABLE',
      schema: 'shop',
      table: 'orders',
      tableDef: { ...ORDERS_V100, version: 120n },
      blockedDispatchers: ['d1'],
    };
    await run(acked([row('d1', 101n, 1), row('d1', 102n, 2), dropTable]), {
      ...baseOptions(storage),
      tables: [ORDERS_V100],
      flushIntervalMs: 60_000,
    });
    expect(Date.now() - started).to.be.below(5_000);
    expect(storage.log.findIndex((op) => /schema_120_/.test(op))).to.be.greaterThan(storage.log.indexOf('put shop/orders/100/meta/CDC.index'));
  });

  it('restart continues file indexes', async () => {
    const storage = new RecordingStorage();
    const options = { ...baseOptions(storage), tables: [ORDERS_V100] };
    await run(acked([row('d1', 101n, 1)]), options);
    await run(acked([row('d1', 102n, 2)]), options);
    expect(await storage.text('shop/orders/100/meta/CDC.index')).to.equal('CDC000001.csv\n');
    expect(await storage.text('shop/orders/100/CDC000001.csv')).to.equal(encodeCsvRows([row('d1', 102n, 2)], ORDERS_V100));
  });

  it('a storage that fails for a while and recovers loses nothing and never publishes an index before its data file', async () => {
    const storage = new RecordingStorage();
    storage.inner.failNext('put', new Error('503 Slow Down'), 4);
    const rows = [101n, 102n, 103n, 104n].map((ts, i) => row(`d${i % 2}`, ts, i + 1));
    const flushed: string[] = [];
    await run(acked(rows, flushed), { ...baseOptions(storage), tables: [ORDERS_V100] });
    expect(flushed).to.have.length(4);
    const data = (await storage.text('shop/orders/100/CDC000000.csv'))!;
    expect(data).to.equal(encodeCsvRows(rows, ORDERS_V100));
    const dataAt = storage.log.indexOf('put shop/orders/100/CDC000000.csv');
    expect(dataAt).to.be.lessThan(storage.log.indexOf('put shop/orders/100/meta/CDC.index'));
  });

  it('rejects an event whose names would become bad paths, naming the event', async () => {
    const storage = new RecordingStorage();
    const bad = { ...row('d1', 101n, 1), table: '../orders' };
    let caught: unknown;
    await run(acked([bad]), { ...baseOptions(storage), tables: [ORDERS_V100] }).catch((error: unknown) => (caught = error));
    expect(String(caught)).to.match(/event #1/).and.to.match(/\.\.\/orders|'\.\.'/);
    expect(await storage.keys()).to.deep.equal([]);
  });
});
