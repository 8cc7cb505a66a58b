import { expect } from 'chai';
import fc from 'fast-check';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { concat, from, lastValueFrom, throwError, toArray, type Observable } from 'rxjs';
import { createAck, type Acked } from '../../../lib/core/ack.ts';
import { mergePaced } from '../../../lib/core/paced.ts';
import { ddlTypeCode, decodeSchemaFile, encodeCsvRows, type ChangeEvent, type DdlEvent, type RowChange, type TableDef } from '../../../lib/codec/index.ts';
import { InvalidOptionError } from '../../../lib/core/errors.ts';
import { createMetricsRegistry } from '../../../lib/metrics/index.ts';
import { AzureStorage } from '../../../lib/storage/azureStorage.ts';
import { FileStorage } from '../../../lib/storage/fileStorage.ts';
import { MemoryStorage } from '../../../lib/storage/memoryStorage.ts';
import { S3Storage } from '../../../lib/storage/s3Storage.ts';
import type { ExternalStorage, ListOptions } from '../../../lib/storage/storage.ts';
import { UnreadableCheckpointError } from '../../../pipelines/storageSink/resumePoint.ts';
import { storageSink, STORAGE_SINK_DEFAULTS, type SinkProgress, type StorageSinkOptions } from '../../../pipelines/storageSink/storageSink.ts';
import { S3RVER_CREDENTIALS, serviceOrSkip, startAzurite, startS3rver, type AzuriteService, type S3rverService, createS3Bucket } from '../../support/services.ts';
import { tick, until } from '../../support/waiting.ts';
import { valueOf } from '../../metrics/readMetrics.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** The csv the sink writes by default (TiCDC's dialect with the commit ts column). */
const sinkCsv = (rows: Iterable<RowChange>, table: TableDef) => encodeCsvRows(rows, table, STORAGE_SINK_DEFAULTS.csv);

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

/**
 * A storage wrapped around any other: records each completed put, can hold puts back until
 * released, and can fail the next puts (the same fault on every storage).
 */
class RecordingStorage implements ExternalStorage {
  readonly inner: ExternalStorage;
  readonly log: string[] = [];
  gate: Promise<void> | undefined;
  #failures: Error[] = [];
  constructor(inner: ExternalStorage) {
    this.inner = inner;
  }
  get uri(): string {
    return this.inner.uri;
  }
  /** The next `times` puts reject with `error` without reaching the inner storage. */
  failPuts(error: Error, times: number): void {
    for (let index = 0; index < times; index++) this.#failures.push(error);
  }
  async put(key: string, data: Uint8Array): Promise<void> {
    const failure = this.#failures.shift();
    if (failure) throw failure;
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

/** The sink's behaviour on a fresh, empty storage from `open` in each test. */
function describeSinkBehaviour(open: () => Promise<ExternalStorage>): void {
  it('writes rows as data files, then index files, with the schema file and the metadata checkpoint', async () => {
    const storage = new RecordingStorage(await open());
    const rows = [101n, 102n, 103n].map((ts, i) => row('d1', ts, i + 1));
    const flushed: string[] = [];
    const progress = await run(acked([createOrders, ...rows], flushed), baseOptions(storage));

    const keys = await storage.keys();
    const schemaKey = keys.find((key) => key.startsWith('shop/orders/meta/schema_100_'))!;
    expect(schemaKey).to.match(/^shop\/orders\/meta\/schema_100_\d{10}\.json$/);
    // The DDL's own schema file: its query and type, for a consumer to replay.
    const schemaFile = decodeSchemaFile((await storage.text(schemaKey))!, schemaKey);
    expect(schemaFile.query).to.equal(createOrders.query);
    expect(schemaFile.typeCode).to.equal(ddlTypeCode('CREATE TABLE'));
    expect(await storage.text('shop/orders/100/CDC000001.csv')).to.equal(sinkCsv(rows, ORDERS_V100));
    expect(await storage.text('shop/orders/100/meta/CDC.index')).to.equal('CDC000001.csv\n');
    expect(await storage.text('metadata')).to.equal('{"checkpoint-ts":103}');
    expect(flushed).to.have.members(['0', '1', '2', '3']);
    expect(progress.filter((p) => p.kind === 'data')).to.deep.equal([
      { kind: 'data', path: 'shop/orders/100/CDC000001.csv', rows: 3, bytes: sinkCsv(rows, ORDERS_V100).length, reason: 'complete' },
    ]);
    const order = storage.log;
    expect(order.indexOf('put shop/orders/100/CDC000001.csv')).to.be.lessThan(order.indexOf('put shop/orders/100/meta/CDC.index'));
    expect(order.indexOf(`put ${schemaKey}`)).to.be.lessThan(order.indexOf('put shop/orders/100/CDC000001.csv'));
  });

  it('early wake does not advance the checkpoint', async () => {
    const storage = new RecordingStorage(await open());
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

  it('holds wakes above the high mark of the memory quota, resumes at the low mark, and cuts files by quota', async () => {
    // Each row counts ~1.1 KiB (its bytes + in-flight state): a 16 KiB quota holds wakes above
    // ~12 rows in flight (0.8), releases at ~9 (0.6), and cuts the open batch at ~6 (0.4).
    const storage = new RecordingStorage(await open());
    let release!: () => void;
    storage.gate = new Promise((resolve) => (release = resolve));
    let pulled = 0;
    function* dispatcher() {
      for (let i = 1; i <= 60; i++) {
        pulled++;
        yield row('d1', 100n + BigInt(i), i);
      }
    }
    const reports: SinkProgress[] = [];
    let done = false;
    mergePaced<ChangeEvent>([dispatcher()], { window: 1 })
      .pipe(storageSink({ ...baseOptions(storage), tables: [ORDERS_V100], flushIntervalMs: 60_000, memoryQuotaBytes: 16 * 1024 }))
      .subscribe({ next: (report) => reports.push(report), complete: () => (done = true) });
    await until(() => pulled >= 10, 'rows to flow while under the high mark');
    await sleep(20);
    const whileHeld = pulled;
    expect(whileHeld).to.be.within(12, 16, 'wakes are held once ~12 rows are in flight and nothing is durable');
    await sleep(20);
    expect(pulled).to.equal(whileHeld, 'still held while no write completes');
    release();
    await until(() => done, 'the sink to finish: held wakes resumed as writes freed the quota');
    const data = reports.filter((r) => r.kind === 'data');
    expect(data.reduce((sum, r) => sum + (r.kind === 'data' ? r.rows : 0), 0)).to.equal(60);
    expect(data.filter((r) => r.kind === 'data' && r.reason === 'quota').length).to.be.greaterThan(1, 'cut by quota, not by a minute-long interval');
    expect(await storage.text('metadata')).to.equal('{"checkpoint-ts":160}');
  });

  it('a barrier across several dispatchers waits for all of them: the schema file comes after their rows', async () => {
    const storage = new RecordingStorage(await open());
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
    const oldData = order.indexOf('put shop/orders/100/CDC000001.csv');
    const oldIndex = order.indexOf('put shop/orders/100/meta/CDC.index');
    const newData = order.indexOf('put shop/orders/110/CDC000001.csv');
    expect(oldData).to.be.greaterThan(-1);
    expect(oldIndex).to.be.lessThan(schema110, 'every earlier row is durable (data and index) before the schema file');
    expect(schema110).to.be.lessThan(newData, 'rows of the new version come after its schema file');
    expect(await storage.text('shop/orders/100/CDC000001.csv')).to.equal(sinkCsv(before, ORDERS_V100));
    expect(await storage.text('shop/orders/110/CDC000001.csv')).to.equal(sinkCsv(after, ORDERS_V110));
  });

  it('a barrier drains items still queued upstream of the writer', async () => {
    // Rows sit in the writer's open batch (a minute-long interval) when the DDL arrives; the drain
    // marker cuts that batch so the DDL is written at once, not a minute later.
    const storage = new RecordingStorage(await open());
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

  it('with tableAcrossDispatchers, each dispatcher gets its own data and index files of the table', async () => {
    const storage = new RecordingStorage(await open());
    const d1 = [row('d1', 101n, 1), row('d1', 104n, 4)];
    const d2 = [row('d2', 102n, 2), row('d2', 103n, 3)];
    await run(acked([d1[0]!, d2[0]!, d2[1]!, d1[1]!]), { ...baseOptions(storage), tables: [ORDERS_V100], tableAcrossDispatchers: true });
    expect(await storage.text('shop/orders/100/CDC_d1_000001.csv')).to.equal(sinkCsv(d1, ORDERS_V100));
    expect(await storage.text('shop/orders/100/CDC_d2_000001.csv')).to.equal(sinkCsv(d2, ORDERS_V100));
    expect(await storage.text('shop/orders/100/meta/CDC_d1.index')).to.equal('CDC_d1_000001.csv\n');
    expect(await storage.text('shop/orders/100/meta/CDC_d2.index')).to.equal('CDC_d2_000001.csv\n');
    expect((await storage.keys()).filter((key) => /\/CDC(\.index|\d+\.csv)$/.test(key))).to.deep.equal([], 'no shared file stream');
  });

  it('restart continues file indexes', async () => {
    const storage = new RecordingStorage(await open());
    const options = { ...baseOptions(storage), tables: [ORDERS_V100] };
    await run(acked([row('d1', 101n, 1)]), options);
    await run(acked([row('d1', 102n, 2)]), options);
    expect(await storage.text('shop/orders/100/meta/CDC.index')).to.equal('CDC000002.csv\n');
    expect(await storage.text('shop/orders/100/CDC000002.csv')).to.equal(sinkCsv([row('d1', 102n, 2)], ORDERS_V100));
  });

  it('a storage that fails for a while and recovers loses nothing and never publishes an index before its data file', async () => {
    const storage = new RecordingStorage(await open());
    storage.failPuts(new Error('503 Slow Down'), 4);
    const rows = [101n, 102n, 103n, 104n].map((ts, i) => row(`d${i % 2}`, ts, i + 1));
    const flushed: string[] = [];
    await run(acked(rows, flushed), { ...baseOptions(storage), tables: [ORDERS_V100] });
    expect(flushed).to.have.length(4);
    const data = (await storage.text('shop/orders/100/CDC000001.csv'))!;
    expect(data).to.equal(sinkCsv(rows, ORDERS_V100));
    const dataAt = storage.log.indexOf('put shop/orders/100/CDC000001.csv');
    expect(dataAt).to.be.lessThan(storage.log.indexOf('put shop/orders/100/meta/CDC.index'));
  });

  it('rejects an event whose names would become bad paths, naming the event', async () => {
    const storage = new RecordingStorage(await open());
    const bad = { ...row('d1', 101n, 1), table: '../orders' };
    let caught: unknown;
    await run(acked([bad]), { ...baseOptions(storage), tables: [ORDERS_V100] }).catch((error: unknown) => (caught = error));
    expect(String(caught)).to.match(/event #1/).and.to.match(/\.\.\/orders|'\.\.'/);
    expect(await storage.keys()).to.deep.equal([]);
  });

  it('reports flushes by reason, file sizes, write retries, the DDL drain and the spool in the registry', async () => {
    const storage = new RecordingStorage(await open());
    storage.failPuts(new Error('503 Slow Down'), 2);
    const registry = createMetricsRegistry();
    const [r1, r2, r3] = [101n, 102n, 103n].map((ts, i) => row('d1', ts, i + 1));
    const addColumn: DdlEvent = {
      kind: 'ddl',
      commitTs: 110n,
      query: 'ALTER TABLE shop.orders ADD COLUMN qty INT',
      ddlType: 'ADD COLUMN',
      schema: 'shop',
      table: 'orders',
      tableDef: ORDERS_V110,
      blockedDispatchers: ['d1'],
    };
    const r4 = row('d1', 111n, 4, 110n, { qty: 7 });
    const rowBytes = sinkCsv([r1!], ORDERS_V100).length;
    // Two rows fill a file (64 is the spool's per-item overhead): r1+r2 cut by size, r3 by the DDL's
    // drain marker, r4 by the end of the input.
    await run(acked([r1!, r2!, r3!, addColumn, r4]), {
      ...baseOptions(storage),
      tables: [ORDERS_V100],
      fileSizeBytes: 2 * (rowBytes + 64),
      flushIntervalMs: 60_000,
      metrics: { registry, pipeline: 'p1' },
    });

    const metrics = await registry.getMetricsAsJSON();
    const valueOf = (name: string, labels: Record<string, string> = {}) => {
      // Histogram values carry their own series name (`_bucket`, `_sum`, `_count`) in metricName.
      const values = metrics.flatMap((metric) =>
        metric.values.map((value) => ({ ...value, name: (value as { metricName?: string }).metricName ?? metric.name })),
      );
      const found = values.filter(
        (value) => value.name === name && Object.entries({ pipeline: 'p1', ...labels }).every(([key, expected]) => value.labels[key] === expected),
      );
      expect(found, `${name} ${JSON.stringify(labels)}`).to.have.length(1);
      return found[0]!.value;
    };
    const sizes = {
      size: sinkCsv([r1!, r2!], ORDERS_V100).length,
      barrier: sinkCsv([r3!], ORDERS_V100).length,
      complete: sinkCsv([r4], ORDERS_V110).length,
    };
    for (const [reason, bytes] of Object.entries(sizes)) {
      expect(valueOf('sluice_flush_tasks_total', { reason }), `flushes cut by ${reason}`).to.equal(1);
      expect(valueOf('sluice_flush_file_size_bytes_sum', { reason }), `bytes cut by ${reason}`).to.equal(bytes);
      expect(valueOf('sluice_flush_file_size_bytes_count', { reason })).to.equal(1);
      expect(valueOf('sluice_flush_duration_by_reason_seconds_count', { reason })).to.equal(1);
    }
    expect(metrics.find((metric) => metric.name === 'sluice_flush_tasks_total')!.values).to.have.length(3, 'no interval flushes');
    expect(valueOf('sluice_retries_total', { operation: 'write' })).to.equal(2);
    expect(valueOf('sluice_ddl_drain_duration_seconds_count')).to.equal(1);
    expect(valueOf('sluice_drain_waiting_barriers')).to.equal(0);
    expect(valueOf('sluice_wake_suppressed_total')).to.equal(0);
    expect(valueOf('sluice_watermark_holding')).to.equal(0);
    expect(valueOf('sluice_spool_memory_bytes')).to.equal(0);
    expect(valueOf('sluice_spool_disk_items')).to.equal(0);
    expect(valueOf('sluice_spool_quota_hold')).to.equal(0);
    expect(valueOf('sluice_spool_spilled_items_total')).to.equal(0);
    expect(await storage.text('shop/orders/100/meta/CDC.index')).to.equal('CDC000002.csv\n');
  });
}

describe('storageSink', () => {
  describe('bad events (issue 14)', () => {
    const metadataOf = async (storage: RecordingStorage) => (await storage.text('metadata')) ?? 'none';
    // Two dispatchers: d2 is behind d1 in commit ts, as dispatchers may be (d2 came first: no
    // dispatcher starts below another's last commit ts, the input contract).
    const before = [createOrders, row('d2', 150n, 2), row('d1', 200n, 1), row('d1', 210n, 3)];
    const after = [row('d2', 160n, 5), row('d1', 220n, 6)];

    it('a bad event stops the input there: what came before is durable and checkpointed, then the output errors naming it', async () => {
      const storage = new RecordingStorage(new MemoryStorage());
      const nullId = { ...row('d1', 215n, 4), columns: { id: null, note: 'x' } };
      let caught: unknown;
      await run(acked([...before, nullId, ...after]), {
        ...baseOptions(storage),
        eventPosition: (_event, index) => `input event ${index}`,
      }).catch((error: unknown) => (caught = error));
      expect(String(caught)).to.match(/invalid change event at input event 5 \(row insert shop\.orders commitTs 215\): columns\.id: NULL in a NOT NULL column/);
      expect(await storage.text('shop/orders/100/CDC000001.csv')).to.equal(sinkCsv([1, 2, 3].map((i) => before[i] as RowChange), ORDERS_V100));
      // Not the greatest commit ts read (210): d2, at 150, may have more at or below it after the stop.
      expect(await metadataOf(storage)).to.equal('{"checkpoint-ts":149}');
    });

    it('an input that errors stops as a bad event does: what came before is durable, then the output errors with it', async () => {
      const storage = new RecordingStorage(new MemoryStorage());
      const failure = new Error('disk read failed');
      const events$ = concat(acked(before), throwError(() => failure));
      let caught: unknown;
      await run(events$, baseOptions(storage)).catch((error: unknown) => (caught = error));
      expect(caught).to.equal(failure);
      expect(await storage.text('shop/orders/100/CDC000001.csv')).to.equal(sinkCsv([1, 2, 3].map((i) => before[i] as RowChange), ORDERS_V100));
      expect(await metadataOf(storage)).to.equal('{"checkpoint-ts":149}');
    });

    it("onBadEvent 'skip' drops each bad event (acknowledged) and goes on; the events after it are judged without it", async () => {
      const storage = new RecordingStorage(new MemoryStorage());
      const seen: string[] = [];
      const addQty: DdlEvent = { ...createOrders, commitTs: 110n, ddlType: 'ADD COLUMN', query: 'bad', tableDef: { ...ORDERS_V110, version: 111n } };
      const bad: ChangeEvent[] = [
        { ...row('d1', 205n, 90), columns: { id: 90 } }, // a column missing
        { ...row('d1', 205n, 91), columns: { id: 91, note: 'x', qty: 1 } }, // a column the table lacks
        { ...row('d1', 205n, 92), columns: { id: 'x92', note: 'x' } }, // a wrong type
        row('d2', 140n, 93), // back below d2's 150
        row('d3', 205n, 94, 110n), // a table version no DDL defined
        addQty, // tableDef.version is not its commit ts: defines nothing
        row('d3', 205n, 95, 111n), // so this row has no definition either
      ];
      const flushed: string[] = [];
      const events = [...before, ...bad, ...after];
      await run(acked(events, flushed), {
        ...baseOptions(storage),
        onBadEvent: (error, event) => {
          seen.push(`${describe(event)}: ${error.problem}`);
          return 'skip';
        },
      });
      function describe(event: ChangeEvent): string {
        return event.kind === 'row' ? String(event.columns.id) : 'ddl';
      }
      expect(seen.map((line) => line.split(':')[0])).to.deep.equal(['90', '91', 'x92', '93', '94', 'ddl', '95']);
      expect(seen[0]).to.include('missing note');
      expect(seen[1]).to.include('not in the table: qty');
      expect(seen[2]).to.include('INT takes an integer, got "x92"');
      expect(seen[3]).to.include('commitTs 140 goes back below 150, the last commit ts of dispatcher d2');
      expect(seen[4]).to.include("a row before its table's DDL");
      expect(seen[5]).to.include('tableDef.version (111) must equal');
      const rows = [...before, ...after].filter((e): e is RowChange => e.kind === 'row');
      expect(await storage.text('shop/orders/100/CDC000001.csv')).to.equal(sinkCsv(rows, ORDERS_V100));
      expect(await metadataOf(storage)).to.equal('{"checkpoint-ts":220}');
      expect(flushed).to.have.length(events.length, 'every event acknowledged, the skipped ones too');
    });
  });

  it('rejects a metrics option without a registry or pipeline, naming the option', () => {
    const storage = new MemoryStorage();
    expect(() => storageSink({ storage, metrics: { registry: createMetricsRegistry(), pipeline: '' } }))
      .to.throw(InvalidOptionError)
      .with.property('message')
      .that.matches(/storageSink.*metrics/);
    expect(() => storageSink({ storage, metrics: { registry: {} as never, pipeline: 'p1' } })).to.throw(InvalidOptionError);
  });

  it('1000 dispatchers, 10 active: idle ones are reduced to their checkpoint, which still holds the metadata checkpoint', async () => {
    const storage = new RecordingStorage(new MemoryStorage());
    // Every dispatcher sends one row; then 10 keep sending for a while, then all end.
    async function* dispatcher(d: number) {
      yield row(`d${d}`, 1000n + BigInt(d), d);
      if (d >= 10) return;
      for (let i = 1; i <= 60; i++) {
        await sleep(10);
        yield row(`d${d}`, 5000n + BigInt(i * 10 + d), 10_000 + i * 10 + d);
      }
    }
    const registry = createMetricsRegistry();
    const paths = async () => ({
      active: await valueOf(registry, 'sluice_progress_paths', { pipeline: 'scale', state: 'active' }),
      idle: await valueOf(registry, 'sluice_progress_paths', { pipeline: 'scale', state: 'idle' }),
    });
    const samples: { active?: number; idle?: number; metadata?: string }[] = [];
    let done = false;
    const finished = lastValueFrom(
      mergePaced<ChangeEvent>(Array.from({ length: 1000 }, (_, d) => dispatcher(d)), { window: 1 }).pipe(
        storageSink({ ...baseOptions(storage), tables: [ORDERS_V100], checkpointIntervalMs: 20, dispatcherIdleMs: 60, metrics: { registry, pipeline: 'scale' } }),
        toArray(),
      ),
    ).finally(() => (done = true));
    while (!done) {
      samples.push({ ...(await paths()), metadata: await storage.text('metadata') });
      await sleep(25);
    }
    await finished;
    const reclaimed = samples.filter((s) => (s.idle ?? 0) >= 980);
    expect(reclaimed.length).to.be.greaterThan(0, 'idle dispatchers were reduced while 10 stayed active');
    expect(Math.min(...reclaimed.map((s) => s.active!))).to.be.at.most(12, 'the 10 active ones (and a DDL-free stream)');
    for (const { metadata } of samples) {
      if (metadata !== undefined) expect(JSON.parse(metadata)['checkpoint-ts']).to.be.at.most(1009, 'the idle dispatchers (the first, d10, at ts 1010) hold the checkpoint below their rows');
    }
    expect(await storage.text('metadata')).to.equal('{"checkpoint-ts":5609}', 'once the input completes, every dispatcher reached its last ts');
  });

  it('rows that wait in the spool on disk are written byte for byte as encoded', async () => {
    const storage = new MemoryStorage();
    const registry = createMetricsRegistry();
    // Multi-byte text, so a spilled row's bytes and its length in characters differ.
    const rows = Array.from({ length: 200 }, (_, i) => ({ ...row(`d${i % 3}`, 101n + BigInt(i), i), columns: { id: i, note: `naïve ☃ ${i}` } }));
    // A window of two small files: the spool holds the rest, beyond 2 KiB of memory on disk.
    await run(acked([createOrders, ...rows]), {
      ...baseOptions(storage),
      fileSizeBytes: 512,
      spool: { memoryBytes: 2048, diskQuotaBytes: 1 << 24 },
      metrics: { registry, pipeline: 'spilled' },
    });
    expect(await valueOf(registry, 'sluice_spool_spilled_items_total', { pipeline: 'spilled' })).to.be.greaterThan(100);
    const index = new TextDecoder().decode(await storage.get('shop/orders/100/meta/CDC.index'));
    const last = Number(/CDC(\d+)\.csv/.exec(index)![1]);
    let written = '';
    for (let i = 1; i <= last; i++) written += new TextDecoder().decode(await storage.get(`shop/orders/100/CDC${String(i).padStart(6, '0')}.csv`));
    expect(written).to.equal(sinkCsv(rows, ORDERS_V100));
  });

  it('property: the metadata checkpoint never passes an event whose ack is not flushed, whatever DDLs hold back', async () => {
    // Rows of 1 to 4 dispatchers (some sharing a commit ts), and DDLs that block some of them while the
    // others flow on: rows become durable in batches, and the checkpoint is checked at each write.
    type Step = { kind: 'row'; dispatcher: number; rows: number; sameTs: boolean } | { kind: 'ddl'; blocked: number[] | 'all' };
    const step = fc.oneof(
      {
        weight: 8,
        arbitrary: fc.record({ kind: fc.constant('row' as const), dispatcher: fc.integer({ min: 0, max: 3 }), rows: fc.integer({ min: 1, max: 6 }), sameTs: fc.boolean() }),
      },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('ddl' as const), blocked: fc.oneof(fc.constant('all' as const), fc.uniqueArray(fc.integer({ min: 0, max: 3 }), { minLength: 1 })) }) },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 100 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 200, max: 2000 }), fc.constantFrom(2048, 1 << 20), async (steps: Step[], dispatchers, fileSizeBytes, spoolMemoryBytes) => {
        // The DDLs are of another table, so rows of every dispatcher keep one table version.
        const events: ChangeEvent[] = [];
        let ts = 1000n;
        for (const s of steps) {
          if (s.kind === 'row') {
            for (let i = 0; i < s.rows; i++) {
              if (i === 0 ? !s.sameTs : i % 2 === 0) ts += 1n;
              events.push(row(`d${s.dispatcher % dispatchers}`, ts, events.length));
            }
          } else {
            ts += 1n;
            events.push({
              kind: 'ddl', commitTs: ts, query: 'TRUNCATE TABLE shop.other', ddlType: 'TRUNCATE TABLE', schema: 'shop', table: 'other',
              tableDef: { ...ORDERS_V100, table: 'other', version: ts }, blockedDispatchers: s.blocked === 'all' ? 'all' : s.blocked.map((d) => `d${d % dispatchers}`),
            });
          }
        }
        const durable = new Set<number>();
        const checkpoints: bigint[] = [];
        const passed: string[] = [];
        const checking = new (class extends RecordingStorage {
          override async put(key: string, data: Uint8Array): Promise<void> {
            // Checked when the put starts (events only become durable later, never less so), and noted
            // rather than thrown: the sink would take a throw for a storage fault and retry.
            if (key === 'metadata') {
              const checkpoint = BigInt(JSON.parse(Buffer.from(data).toString())['checkpoint-ts']);
              events.forEach((event, i) => {
                if (!durable.has(i) && checkpoint >= event.commitTs) passed.push(`checkpoint ${checkpoint} passes event #${i} at ${event.commitTs}, not durable`);
              });
              checkpoints.push(checkpoint);
            }
            // Data and index files take a while, so checkpoints are taken while batches are on their way.
            await sleep(key === 'metadata' ? 0 : 2 + Math.random() * 4);
            return super.put(key, data);
          }
        })(new MemoryStorage());
        const input = from(events.map((value, i) => ({ value, ack: createAck({ onFlushed: () => durable.add(i) }) })));
        // A small spool memory tier spills rows to disk: they come back in order too.
        const options = baseOptions(checking);
        await run(input, { ...options, tables: [ORDERS_V100], fileSizeBytes, checkpointIntervalMs: 1, spool: { ...options.spool, memoryBytes: spoolMemoryBytes } });
        expect(passed).to.deep.equal([]);
        expect(durable.size).to.equal(events.length);
        expect(checkpoints.at(-1)).to.equal(ts, 'once the input completes, the checkpoint is the last commit ts');
        await checking.close();
      }),
      { numRuns: 25 },
    );
  });

  it('rejects a memoryQuotaBytes below 1 and a tableAcrossDispatchers that is not a boolean', () => {
    const storage = new MemoryStorage();
    expect(() => storageSink({ storage, memoryQuotaBytes: 0 })).to.throw(InvalidOptionError, 'memoryQuotaBytes');
    expect(() => storageSink({ storage, tableAcrossDispatchers: 'yes' as never })).to.throw(InvalidOptionError, 'tableAcrossDispatchers');
  });

  it('rejects a canalJson option with csv, or whose enableTidbExtension is not a boolean, when created', () => {
    const storage = new MemoryStorage();
    expect(() => storageSink({ storage, canalJson: { enableTidbExtension: false } })).to.throw(InvalidOptionError, "option canalJson must be absent with protocol 'csv'");
    expect(() => storageSink({ storage, protocol: 'canal-json', canalJson: { enableTidbExtension: 'no' as never } })).to.throw(InvalidOptionError, 'canalJson.enableTidbExtension');
    expect(() => storageSink({ storage, protocol: 'canal-json', canalJson: { enableTidbExtension: false } })).to.not.throw();
    expect(() => storageSink({ storage, protocol: 'canal-json', canalJson: { terminator: ';' } })).to.throw(
      InvalidOptionError,
      'storageSink: option canalJson.terminator must be one or more control characters',
    );
    expect(() => storageSink({ storage, protocol: 'canal-json', canalJson: { terminator: '\n' } })).to.not.throw();
    // A misspelt setting is refused, not replaced by its default.
    expect(() => storageSink({ storage, protocol: 'canal-json', canalJson: { enableTidbExtention: false, termintor: '\n' } as never })).to.throw(
      InvalidOptionError,
      'storageSink: option canalJson.enableTidbExtention must be absent: the canalJson settings are enableTidbExtension, terminator',
    );
  });

  describe('resume from the metadata checkpoint (memory://)', () => {
    const addColumn: DdlEvent = {
      kind: 'ddl',
      commitTs: 110n,
      query: 'ALTER TABLE shop.orders ADD COLUMN qty INT',
      ddlType: 'ADD COLUMN',
      schema: 'shop',
      table: 'orders',
      tableDef: ORDERS_V110,
      blockedDispatchers: ['d1', 'd2'],
    };
    // Two dispatchers; the checkpoint 111 falls on a commit ts that both share (a transaction's rows).
    const atOrBelow: ChangeEvent[] = [
      createOrders,
      row('d1', 101n, 1),
      row('d2', 102n, 2),
      addColumn,
      row('d1', 111n, 3, 110n, { qty: 3 }),
      row('d2', 111n, 4, 110n, { qty: 4 }),
    ];
    const above = [row('d1', 112n, 5, 110n, { qty: 5 }), row('d2', 113n, 6, 110n, { qty: 6 })];

    /** The text of every csv data file, in name order (numbering is not this test's concern). */
    async function dataText(storage: RecordingStorage): Promise<string> {
      const keys = (await storage.keys()).filter((key) => key.endsWith('.csv')).sort();
      let text = '';
      for (const key of keys) text += (await storage.text(key))!;
      return text;
    }
    const checkpointsWritten = (storage: RecordingStorage, writes: bigint[]) =>
      new (class extends RecordingStorage {
        override async put(key: string, data: Uint8Array): Promise<void> {
          if (key === 'metadata') writes.push(BigInt(JSON.parse(Buffer.from(data).toString())['checkpoint-ts']));
          return super.put(key, data);
        }
      })(storage.inner);

    it('skips the events at or below it (a skipped DDL still defines its table), counts them, and moves the checkpoint on from it', async () => {
      const inner = new MemoryStorage();
      await inner.put('metadata', new TextEncoder().encode('{"checkpoint-ts":111}'));
      const writes: bigint[] = [];
      const storage = checkpointsWritten(new RecordingStorage(inner), writes);
      const flushed: string[] = [];
      const progress = await run(acked([...atOrBelow, ...above], flushed), baseOptions(storage));

      expect(progress.filter((p) => p.kind === 'skipped')).to.deep.equal([{ kind: 'skipped', events: 6, upToTs: 111n }]);
      expect(progress.findIndex((p) => p.kind === 'skipped')).to.be.lessThan(progress.findIndex((p) => p.kind === 'data'), 'reported once the skipped run ends');
      expect(flushed).to.have.members(['0', '1', '2', '3', '4', '5', '6', '7'], 'skipped events are acknowledged as durable');
      // Only the rows above 111, encoded with the definition of the skipped ALTER (version 110).
      expect(await dataText(storage)).to.equal(sinkCsv(above, ORDERS_V110));
      expect(storage.log.filter((op) => /schema_/.test(op))).to.deep.equal([], 'the schema files of skipped DDLs exist: not written again');
      expect(progress.filter((p) => p.kind === 'schema')).to.deep.equal([]);
      expect(writes.length).to.be.greaterThan(0);
      expect(writes.every((ts) => ts > 111n), `checkpoints written: ${writes.join(', ')}`).to.equal(true);
      expect(await storage.text('metadata')).to.equal('{"checkpoint-ts":113}');
    });

    it('an input wholly at or below it writes nothing and leaves the checkpoint where it was', async () => {
      const inner = new MemoryStorage();
      await inner.put('metadata', new TextEncoder().encode('{"checkpoint-ts":111}'));
      const storage = new RecordingStorage(inner);
      const flushed: string[] = [];
      const progress = await run(acked(atOrBelow, flushed), baseOptions(storage));
      expect(progress).to.deep.equal([{ kind: 'skipped', events: 6, upToTs: 111n }]);
      expect(flushed).to.have.length(6);
      expect(storage.log).to.deep.equal([], 'not one put');
      expect(await storage.text('metadata')).to.equal('{"checkpoint-ts":111}');
    });

    it('a rerun after a complete run skips every event: the consumer sees no new file', async () => {
      const storage = new RecordingStorage(new MemoryStorage());
      await run(acked([...atOrBelow, ...above]), baseOptions(storage));
      const keys = await storage.keys();
      storage.log.length = 0;
      const progress = await run(acked([...atOrBelow, ...above]), baseOptions(storage));
      expect(progress).to.deep.equal([{ kind: 'skipped', events: 8, upToTs: 113n }]);
      expect(storage.log).to.deep.equal([]);
      expect(await storage.keys()).to.deep.equal(keys);
    });

    it('reports skips that come after written events (a dispatcher behind the others) in a second, cumulative report', async () => {
      const inner = new MemoryStorage();
      await inner.put('metadata', new TextEncoder().encode('{"checkpoint-ts":102}'));
      const storage = new RecordingStorage(inner);
      // d2 starts with d1 and falls behind it (a dispatcher may not start below another's last commit ts).
      const events = [createOrders, row('d1', 101n, 1), row('d2', 101n, 5), row('d1', 103n, 3), row('d2', 102n, 2), row('d2', 104n, 4)];
      const progress = await run(acked(events), baseOptions(storage));
      expect(progress.filter((p) => p.kind === 'skipped')).to.deep.equal([
        { kind: 'skipped', events: 3, upToTs: 102n },
        { kind: 'skipped', events: 4, upToTs: 102n },
      ]);
      expect(await dataText(storage)).to.equal(sinkCsv([row('d1', 103n, 3), row('d2', 104n, 4)], ORDERS_V100));
    });

    it('with resume: false, writes every event again into new files after the existing ones', async () => {
      const storage = new RecordingStorage(new MemoryStorage());
      await run(acked([...atOrBelow, ...above]), baseOptions(storage));
      const before = await dataText(storage);
      const progress = await run(acked([...atOrBelow, ...above]), { ...baseOptions(storage), resume: false });
      expect(progress.filter((p) => p.kind === 'skipped')).to.deep.equal([]);
      expect(await dataText(storage)).to.have.length(2 * before.length);
      expect(storage.log.filter((op) => /schema_110_/.test(op))).to.have.length(2);
    });

    it('with resume: false, the checkpoint still never goes below the one in the file (it stays until the rerun passes it)', async () => {
      const storage = new RecordingStorage(new MemoryStorage());
      await run(acked([...atOrBelow, ...above]), baseOptions(storage));
      expect(await storage.text('metadata')).to.equal('{"checkpoint-ts":113}');
      const writes: bigint[] = [];
      const rerun = checkpointsWritten(storage, writes);
      const progress = await run(acked([...atOrBelow, ...above]), { ...baseOptions(rerun), resume: false, checkpointIntervalMs: 1 });
      expect(writes, 'nothing above 113 came: no checkpoint written').to.deep.equal([]);
      expect(progress.filter((p) => p.kind === 'checkpoint')).to.deep.equal([]);
      expect(await storage.text('metadata')).to.equal('{"checkpoint-ts":113}');
      // With events above it, the checkpoint moves on from it, never below it on the way.
      const later = [row('d1', 120n, 7, 110n, { qty: 7 }), row('d2', 121n, 8, 110n, { qty: 8 })];
      await run(acked([...atOrBelow, ...above, ...later]), { ...baseOptions(rerun), resume: false, checkpointIntervalMs: 1 });
      expect(writes.length).to.be.greaterThan(0);
      expect(writes.every((ts, i) => ts > 113n && (i === 0 || ts > writes[i - 1]!)), `checkpoints written: ${writes.join(', ')}`).to.equal(true);
      expect(await storage.text('metadata')).to.equal('{"checkpoint-ts":121}');
    });

    it('with resume: false, a metadata file that is not a checkpoint is replaced by the first checkpoint written', async () => {
      const inner = new MemoryStorage();
      await inner.put('metadata', new TextEncoder().encode('not json'));
      const storage = new RecordingStorage(inner);
      await run(acked([...atOrBelow, ...above]), { ...baseOptions(storage), resume: false });
      expect(await storage.text('metadata')).to.equal('{"checkpoint-ts":113}');
    });

    it('fails on a metadata file that is not a checkpoint, naming it and the way out, before writing anything', async () => {
      const inner = new MemoryStorage();
      await inner.put('metadata', new TextEncoder().encode('{"checkpoint":12}'));
      const storage = new RecordingStorage(inner);
      const flushed: string[] = [];
      const failure = await run(acked([...atOrBelow, ...above], flushed), baseOptions(storage)).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(failure).to.be.instanceOf(UnreadableCheckpointError);
      expect(String(failure)).to.include('cannot resume from "metadata"').and.to.include('resume: false');
      expect(storage.log).to.deep.equal([]);
      expect(flushed).to.deep.equal([]);
    });

    it('property: stopped at any point, a rerun writes exactly the events above the checkpoint it finds, and none is lost', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.record({ dispatcher: fc.integer({ min: 0, max: 2 }), sameTs: fc.boolean(), ddl: fc.boolean() }), { minLength: 5, maxLength: 80 }),
          fc.integer({ min: 1, max: 60 }),
          async (steps, stopAfterPuts) => {
            // Rows of 1 to 3 dispatchers in commit order (some sharing a ts), and DDLs of another table.
            const events: ChangeEvent[] = [];
            let ts = 1000n;
            for (const step of steps) {
              if (!step.sameTs || events.length === 0) ts += 1n;
              if (step.ddl) {
                ts += 1n;
                events.push({
                  kind: 'ddl', commitTs: ts, query: 'TRUNCATE TABLE shop.other', ddlType: 'TRUNCATE TABLE', schema: 'shop', table: 'other',
                  tableDef: { ...ORDERS_V100, table: 'other', version: ts }, blockedDispatchers: 'all',
                });
                ts += 1n;
              }
              events.push(row(`d${step.dispatcher}`, ts, events.length));
            }
            // The first run writes through a storage that is "killed" at the stop: no put lands after it.
            let puts = 0;
            let killed = false;
            const inner = new MemoryStorage();
            const killable = new (class extends RecordingStorage {
              override async put(key: string, data: Uint8Array): Promise<void> {
                await sleep(key === 'metadata' ? 0 : 1 + Math.random() * 3);
                if (killed) throw new Error('killed');
                await super.put(key, data);
                puts++;
              }
            })(inner);
            const slow = new RecordingStorage(inner);
            const options = { ...baseOptions(slow), tables: [ORDERS_V100], fileSizeBytes: 300, checkpointIntervalMs: 1 };
            // Stopped after some puts (data, index, schema or metadata files), or when it ends first.
            let done = false;
            const first = acked(events)
              .pipe(storageSink({ ...options, storage: killable }))
              .subscribe({ complete: () => (done = true), error: () => (done = true) });
            await until(() => done || puts >= stopAfterPuts, 'the first run to write files', 10_000);
            killed = true;
            first.unsubscribe();
            const ids = async (keys: string[]) => {
              const found: number[] = [];
              for (const key of keys) for (const match of (await slow.text(key))!.matchAll(/"order (\d+)"/g)) found.push(Number(match[1]));
              return found;
            };
            const indexed = async () => (await slow.keys()).filter((key) => key.startsWith('shop/orders/') && key.endsWith('.csv')).sort();
            const before = await indexed();
            const metadata = await slow.text('metadata');
            const checkpoint = metadata === undefined ? -1n : BigInt(/(\d+)/.exec(metadata)![1]!);

            const rerunCheckpoints: bigint[] = [];
            const progress = await run(acked(events), { ...options, storage: checkpointsWritten(slow, rerunCheckpoints) });
            expect(
              rerunCheckpoints.every((ts, i) => ts > checkpoint && (i === 0 || ts > rerunCheckpoints[i - 1]!)),
              `the rerun's checkpoints go forward from ${checkpoint}: ${rerunCheckpoints.join(', ')}`,
            ).to.equal(true);
            const rerunFiles = (await indexed()).filter((key) => !before.includes(key));
            const above = events.flatMap((event, id) => (event.kind === 'row' && event.commitTs > checkpoint ? [id] : []));
            const atOrBelow = events.flatMap((event, id) => (event.kind === 'row' && event.commitTs <= checkpoint ? [id] : []));
            expect((await ids(rerunFiles)).sort((a, b) => a - b)).to.deep.equal(above, `the rerun writes exactly the rows above ${checkpoint}`);
            expect(await ids(before)).to.include.members(atOrBelow, 'the rows at or below the checkpoint were durable before the rerun');
            const skipped = progress.filter((p) => p.kind === 'skipped').at(-1);
            const expectedSkips = events.filter((event) => event.commitTs <= checkpoint).length;
            expect(skipped === undefined ? 0 : skipped.kind === 'skipped' ? skipped.events : NaN).to.equal(expectedSkips);
            await slow.close();
          },
        ),
        { numRuns: 25 },
      );
    });

    it('rejects a resume option that is not a boolean', () => {
      expect(() => storageSink({ storage: new MemoryStorage(), resume: 'yes' as never })).to.throw(InvalidOptionError, 'resume');
    });
  });

  describe('on memory://', () => {
    const opened: ExternalStorage[] = [];
    after(() => Promise.all(opened.map((storage) => storage.close())));
    describeSinkBehaviour(async () => {
      const storage = new MemoryStorage();
      opened.push(storage);
      return storage;
    });
  });

  describe('on file:// (FileStorage in a temp dir)', () => {
    let root: string | undefined;
    let folders = 0;
    before(async () => (root = await mkdtemp(join(tmpdir(), 'sluice-sink-test-'))));
    after(async () => {
      if (root !== undefined) await rm(root, { recursive: true, force: true });
    });
    describeSinkBehaviour(async () => new FileStorage(join(root!, `t${++folders}`)));
  });

  describe('on s3:// (s3rver)', () => {
    const BUCKET = 'sluice-sink';
    let s3rver: S3rverService | undefined;
    let prefixes = 0;
    const opened: S3Storage[] = [];
    before(async function () {
      s3rver = await serviceOrSkip(this, 's3rver', startS3rver);
      await createS3Bucket(s3rver.endpoint, BUCKET);
    });
    after(async () => {
      await Promise.all(opened.map((storage) => storage.close()));
      await s3rver?.stop();
    });
    describeSinkBehaviour(async () => {
      const storage = new S3Storage(
        { scheme: 's3', bucket: BUCKET, prefix: `t${++prefixes}`, endpoint: s3rver!.endpoint, region: 'us-east-1', forcePathStyle: true },
        {
          env: { AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey },
          retry: { maxRetries: 3, minDelayMs: 1, maxDelayMs: 5, jitter: 0 },
        },
      );
      opened.push(storage);
      return storage;
    });
  });

  describe('on azure:// (azurite)', () => {
    const CONTAINER = 'sluice-sink';
    let azurite: AzuriteService | undefined;
    let prefixes = 0;
    const opened: AzureStorage[] = [];
    const openStorage = () => {
      const storage = new AzureStorage(
        { scheme: 'azure', container: CONTAINER, prefix: `t${++prefixes}`, endpoint: azurite!.endpoint },
        {
          env: { AZURE_STORAGE_ACCOUNT: azurite!.account, AZURE_STORAGE_KEY: azurite!.key },
          retry: { maxRetries: 3, minDelayMs: 1, maxDelayMs: 5, jitter: 0 },
        },
      );
      opened.push(storage);
      return storage;
    };
    before(async function () {
      azurite = await serviceOrSkip(this, 'azurite', startAzurite);
      await openStorage().containerClient.create();
    });
    after(async () => {
      await Promise.all(opened.map((storage) => storage.close()));
      await azurite?.stop();
    });
    describeSinkBehaviour(async () => openStorage());
  });
});
