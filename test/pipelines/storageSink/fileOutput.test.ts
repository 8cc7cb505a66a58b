/**
 * FileOutput: exact paths and contents, the order of storage operations (data file durable before
 * its index file, index file before the call resolves), cold starts and crash leftovers, failures and
 * retries, concurrency, checkpoints, and bounded counter state. The behaviour suite runs against
 * memory, a temp dir, s3rver and azurite; fault injection and clock-driven tests run on memory.
 */
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DdlEvent, TableDef } from '../../../lib/codec/changeEvent.ts';
import type { DataFolder } from '../../../lib/codec/layout.ts';
import { encodeSchemaFile } from '../../../lib/codec/schemaFile.ts';
import { InvalidOptionError } from '../../../lib/core/errors.ts';
import { AzureStorage } from '../../../lib/storage/azureStorage.ts';
import { FileStorage } from '../../../lib/storage/fileStorage.ts';
import { MemoryStorage } from '../../../lib/storage/memoryStorage.ts';
import { S3Storage } from '../../../lib/storage/s3Storage.ts';
import type { ExternalStorage, ListOptions } from '../../../lib/storage/storage.ts';
import { FileOutput, FileOutputError, type FileOutputOptions, type FileWriteEvent } from '../../../pipelines/storageSink/fileOutput.ts';
import { S3RVER_CREDENTIALS, serviceOrSkip, startAzurite, startS3rver, createS3Bucket } from '../../support/services.ts';
import type { AzuriteService, S3rverService } from '../../support/services.ts';
import { tick, until, rejectionOf } from '../../support/waiting.ts';

const INDEX_KEY = /^(.*)\/meta\/CDC(?:_.+)?\.index$/;

/**
 * An ExternalStorage that logs every call of the storage it wraps, as `put> key` (started), `put< key`
 * (done) and `put! key` (failed), index and metadata puts with ` = content`. Before forwarding an index
 * put it checks that the data file the index names exists, and lists the ones that did not.
 */
class RecordingStorage implements ExternalStorage {
  readonly uri: string;
  readonly inner: ExternalStorage;
  readonly calls: string[] = [];
  /** `index key -> data file` for each index put that named a data file not in the storage. */
  readonly danglingIndexes: string[] = [];
  /** Awaited before each put is forwarded (to hold a put back, or to move a clock). */
  gate: ((key: string) => Promise<void>) | undefined;
  /** Called right before each put is forwarded (to inject failures). */
  beforePut: ((key: string) => void) | undefined;

  constructor(inner: ExternalStorage) {
    this.inner = inner;
    this.uri = inner.uri;
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    await this.gate?.(key);
    const index = INDEX_KEY.exec(key);
    const content = index !== null || key === 'metadata' ? ` = ${Buffer.from(data).toString().trimEnd()}` : '';
    if (index !== null) {
      const named = `${index[1]}/${Buffer.from(data).toString().trimEnd()}`;
      if (!(await this.inner.exists(named))) this.danglingIndexes.push(`${key} -> ${named}`);
    }
    this.beforePut?.(key);
    return this.#record('put', key + content, () => this.inner.put(key, data));
  }

  get(key: string): Promise<Uint8Array | undefined> {
    return this.#record('get', key, () => this.inner.get(key));
  }

  exists(key: string): Promise<boolean> {
    return this.#record('exists', key, () => this.inner.exists(key));
  }

  delete(key: string): Promise<void> {
    return this.#record('delete', key, () => this.inner.delete(key));
  }

  list(prefix: string, options?: ListOptions): AsyncIterable<string> {
    this.calls.push(`list ${prefix}`);
    return this.inner.list(prefix, options);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  async #record<T>(operation: string, what: string, call: () => Promise<T>): Promise<T> {
    this.calls.push(`${operation}> ${what}`);
    try {
      const result = await call();
      this.calls.push(`${operation}< ${what}`);
      return result;
    } catch (error) {
      this.calls.push(`${operation}! ${what}`);
      throw error;
    }
  }
}

interface OpenedStorage {
  storage: ExternalStorage;
  cleanup: () => Promise<void>;
}

const orders: DataFolder = { schema: 'shop', table: 'orders', tableVersion: 4350n, date: '2024-05-01' };
const ORDERS = 'shop/orders/4350/2024-05-01';

const bytesOf = (text: string): Uint8Array => Buffer.from(text, 'utf8');
const textOf = (bytes: Uint8Array | undefined): string | undefined => (bytes === undefined ? undefined : Buffer.from(bytes).toString('utf8'));

async function keysUnder(storage: ExternalStorage, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of storage.list(prefix)) keys.push(key);
  return keys.sort(); // s3rver lists in directory-walk order
}


interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => (resolve = done));
  return { promise, resolve };
}

/** A small deterministic PRNG (mulberry32) in [0, 1). */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ordersTable: TableDef = {
  schema: 'shop',
  table: 'orders',
  version: 4350n,
  columns: [
    { name: 'id', type: 'BIGINT', nullable: false, primaryKey: true },
    { name: 'note', type: 'VARCHAR', precision: 64 },
  ],
};
const addColumn: DdlEvent = {
  kind: 'ddl',
  commitTs: 4350n,
  query: 'ALTER TABLE shop.orders ADD COLUMN note VARCHAR(64)',
  ddlType: 'ADD COLUMN',
  schema: 'shop',
  table: 'orders',
  tableDef: ordersTable,
  blockedDispatchers: 'all',
};
const createSchema: DdlEvent = { kind: 'ddl', commitTs: 4000n, query: 'CREATE DATABASE shop', ddlType: 'CREATE SCHEMA', schema: 'shop', blockedDispatchers: 'all' };

/** The behaviour every storage must show under FileOutput. `open` gives an empty storage. */
function describeFileOutput(name: string, open: () => Promise<OpenedStorage>): void {
  describe(`FileOutput on ${name}`, function () {
    this.timeout(20_000);
    let opened: OpenedStorage;
    let storage: RecordingStorage;
    const output = (options: Partial<FileOutputOptions> = {}) => new FileOutput({ storage, extension: '.csv', fileIndexWidth: 6, ...options });

    beforeEach(async () => {
      opened = await open();
      storage = new RecordingStorage(opened.storage);
    });

    afterEach(async () => {
      await opened.cleanup();
    });

    it('writes CDC{index}.csv with width 6 in order from 1, as TiCDC, and moves meta/CDC.index after each', async () => {
      // pingcap/ticdc pkg/cloudstorage/path_test.go TestGenerateDataFilePath: a folder's first file is ..._000001.
      const out = output();
      const results = [];
      for (const payload of ['a\r\n', 'b\r\n', 'c\r\n']) results.push(await out.writeDataFile(orders, bytesOf(payload)));
      expect(results).to.deep.equal([
        { path: `${ORDERS}/CDC000001.csv`, index: 1 },
        { path: `${ORDERS}/CDC000002.csv`, index: 2 },
        { path: `${ORDERS}/CDC000003.csv`, index: 3 },
      ]);
      expect(await keysUnder(storage, 'shop/')).to.deep.equal([
        `${ORDERS}/CDC000001.csv`,
        `${ORDERS}/CDC000002.csv`,
        `${ORDERS}/CDC000003.csv`,
        `${ORDERS}/meta/CDC.index`,
      ]);
      expect(textOf(await storage.get(`${ORDERS}/CDC000002.csv`))).to.equal('b\r\n');
      expect(textOf(await storage.get(`${ORDERS}/meta/CDC.index`))).to.equal('CDC000003.csv\n');
      expect(out.heldFolders).to.equal(1);
    });

    it('writes CDC{20 digits}.json by default width, in a folder without date and with a partition', async () => {
      const out = output({ extension: '.json', fileIndexWidth: undefined });
      const folder: DataFolder = { schema: 'shop', table: 'items', tableVersion: 7n, partitionId: 42 };
      expect(await out.writeDataFile(folder, bytesOf('{"id":1}\n'))).to.deep.equal({ path: 'shop/items/7/42/CDC00000000000000000001.json', index: 1 });
      expect(await out.writeDataFile(folder, bytesOf('{"id":2}\n'))).to.deep.equal({ path: 'shop/items/7/42/CDC00000000000000000002.json', index: 2 });
      expect(textOf(await storage.get('shop/items/7/42/meta/CDC.index'))).to.equal('CDC00000000000000000002.json\n');
      expect(textOf(await storage.get('shop/items/7/42/CDC00000000000000000001.json'))).to.equal('{"id":1}\n');
    });

    it('keeps one counter per dispatcher: CDC_{id}_{index} with meta/CDC_{id}.index, beside the plain counter', async () => {
      const out = output();
      expect((await out.writeDataFile(orders, bytesOf('d1 a'), 'd1')).path).to.equal(`${ORDERS}/CDC_d1_000001.csv`);
      expect((await out.writeDataFile(orders, bytesOf('d7 a'), '7')).path).to.equal(`${ORDERS}/CDC_7_000001.csv`);
      expect((await out.writeDataFile(orders, bytesOf('d1 b'), 'd1')).path).to.equal(`${ORDERS}/CDC_d1_000002.csv`);
      expect((await out.writeDataFile(orders, bytesOf('plain'))).path).to.equal(`${ORDERS}/CDC000001.csv`);
      expect(await keysUnder(storage, `${ORDERS}/meta/`)).to.deep.equal([`${ORDERS}/meta/CDC.index`, `${ORDERS}/meta/CDC_7.index`, `${ORDERS}/meta/CDC_d1.index`]);
      expect(textOf(await storage.get(`${ORDERS}/meta/CDC_d1.index`))).to.equal('CDC_d1_000002.csv\n');
      expect(textOf(await storage.get(`${ORDERS}/meta/CDC_7.index`))).to.equal('CDC_7_000001.csv\n');
      expect(textOf(await storage.get(`${ORDERS}/meta/CDC.index`))).to.equal('CDC000001.csv\n');
      expect(out.heldFolders).to.equal(3);
    });

    it('starts a new date folder at index 1 again', async () => {
      // pingcap/ticdc pkg/cloudstorage/path_test.go TestGenerateDataFilePath: "day changed" gives 2023-01-01/..._000001.
      const out = output();
      await out.writeDataFile(orders, bytesOf('1'));
      await out.writeDataFile(orders, bytesOf('2'));
      const nextDay = await out.writeDataFile({ ...orders, date: '2024-05-02' }, bytesOf('3'));
      expect(nextDay).to.deep.equal({ path: 'shop/orders/4350/2024-05-02/CDC000001.csv', index: 1 });
      expect(textOf(await storage.get('shop/orders/4350/2024-05-02/meta/CDC.index'))).to.equal('CDC000001.csv\n');
      expect(textOf(await storage.get(`${ORDERS}/meta/CDC.index`))).to.equal('CDC000002.csv\n');
    });

    it('puts the data file, then its index file, and only then resolves', async () => {
      const out = output();
      for (const payload of ['x', 'y']) {
        const { path } = await out.writeDataFile(orders, bytesOf(payload));
        storage.calls.push(`resolved ${path}`);
      }
      expect(storage.calls).to.deep.equal([
        `get> ${ORDERS}/meta/CDC.index`,
        `get< ${ORDERS}/meta/CDC.index`,
        `exists> ${ORDERS}/CDC000001.csv`,
        `exists< ${ORDERS}/CDC000001.csv`,
        `put> ${ORDERS}/CDC000001.csv`,
        `put< ${ORDERS}/CDC000001.csv`,
        `put> ${ORDERS}/meta/CDC.index = CDC000001.csv`,
        `put< ${ORDERS}/meta/CDC.index = CDC000001.csv`,
        `resolved ${ORDERS}/CDC000001.csv`,
        `put> ${ORDERS}/CDC000002.csv`,
        `put< ${ORDERS}/CDC000002.csv`,
        `put> ${ORDERS}/meta/CDC.index = CDC000002.csv`,
        `put< ${ORDERS}/meta/CDC.index = CDC000002.csv`,
        `resolved ${ORDERS}/CDC000002.csv`,
      ]);
      expect(storage.danglingIndexes).to.deep.equal([]);
    });

    it("writes a DDL's schema file when asked: table level and database level", async () => {
      const out = output();
      const table = await out.writeSchemaFile(addColumn);
      const database = await out.writeSchemaFile(createSchema);
      const firstSeen = await out.writeSchemaFile({ ...ordersTable, table: 'items', version: 17n });
      expect(table.path).to.equal(encodeSchemaFile(addColumn).path).and.match(/^shop\/orders\/meta\/schema_4350_[0-9]{10}\.json$/);
      expect(database.path).to.equal(encodeSchemaFile(createSchema).path).and.match(/^shop\/meta\/schema_4000_[0-9]{10}\.json$/);
      expect(firstSeen.path).to.match(/^shop\/items\/meta\/schema_17_[0-9]{10}\.json$/);
      expect(textOf(await storage.get(table.path))).to.equal(encodeSchemaFile(addColumn).text);
      expect(textOf(await storage.get(database.path))).to.equal(encodeSchemaFile(createSchema).text);
      expect(storage.calls.filter((call) => call.startsWith('put'))).to.deep.equal([
        `put> ${table.path}`,
        `put< ${table.path}`,
        `put> ${database.path}`,
        `put< ${database.path}`,
        `put> ${firstSeen.path}`,
        `put< ${firstSeen.path}`,
      ]);
    });

    it('continues at the index file + 1 after a restart (a new FileOutput on the same storage)', async () => {
      const first = output();
      for (const payload of ['1', '2', '3']) await first.writeDataFile(orders, bytesOf(payload), 'd1');
      storage.calls.length = 0;
      const second = output();
      expect(await second.writeDataFile(orders, bytesOf('4'), 'd1')).to.deep.equal({ path: `${ORDERS}/CDC_d1_000004.csv`, index: 4 });
      expect(storage.calls.slice(0, 4)).to.deep.equal([
        `get> ${ORDERS}/meta/CDC_d1.index`,
        `get< ${ORDERS}/meta/CDC_d1.index`,
        `exists> ${ORDERS}/CDC_d1_000004.csv`,
        `exists< ${ORDERS}/CDC_d1_000004.csv`,
      ]);
      expect(textOf(await storage.get(`${ORDERS}/CDC_d1_000003.csv`))).to.equal('3');
    });

    it("continues from an index file TiCDC wrote (pingcap/ticdc pkg/cloudstorage/path_test.go TestGenerateDataFilePathWithIndexFile)", async () => {
      // Upstream: the index file holds CDC_{id}_000005.json, so the next data file is CDC_{id}_000006.json.
      const out = output({ extension: '.json' });
      const day: DataFolder = { schema: 'test', table: 'table1', tableVersion: 5n, date: '2023-03-09' };
      await storage.put('test/table1/5/2023-03-09/meta/CDC_d9.index', bytesOf('CDC_d9_000005.json\n'));
      expect(await out.writeDataFile(day, bytesOf('{}\n'), 'd9')).to.deep.equal({ path: 'test/table1/5/2023-03-09/CDC_d9_000006.json', index: 6 });
      // pingcap/ticdc path_test.go TestGenerateDataFilePathReconcilesStaleIndexFile: files 1 and 2 exist, the index names 1: next is 3.
      const stale: DataFolder = { schema: 'test', table: 'table1', tableVersion: 5n };
      await storage.put('test/table1/5/CDC_d9_000001.json', bytesOf('test1'));
      await storage.put('test/table1/5/CDC_d9_000002.json', bytesOf('test2'));
      await storage.put('test/table1/5/meta/CDC_d9.index', bytesOf('CDC_d9_000001.json\n'));
      expect(await out.writeDataFile(stale, bytesOf('{}\n'), 'd9')).to.deep.equal({ path: 'test/table1/5/CDC_d9_000003.json', index: 3 });
    });

    it('skips data files a crash left beyond the index file, without overwriting them', async () => {
      await output().writeDataFile(orders, bytesOf('indexed'));
      // A crash after the data put, before the index put, twice.
      await storage.put(`${ORDERS}/CDC000002.csv`, bytesOf('orphan 2'));
      await storage.put(`${ORDERS}/CDC000003.csv`, bytesOf('orphan 3'));
      const restarted = output();
      expect(await restarted.writeDataFile(orders, bytesOf('after restart'))).to.deep.equal({ path: `${ORDERS}/CDC000004.csv`, index: 4 });
      expect(textOf(await storage.get(`${ORDERS}/CDC000002.csv`))).to.equal('orphan 2');
      expect(textOf(await storage.get(`${ORDERS}/CDC000003.csv`))).to.equal('orphan 3');
      expect(textOf(await storage.get(`${ORDERS}/meta/CDC.index`))).to.equal('CDC000004.csv\n');
      // Without any index file, an existing CDC000001 is skipped too.
      const other: DataFolder = { schema: 'shop', table: 'other', tableVersion: 1n };
      await storage.put('shop/other/1/CDC000001.csv', bytesOf('orphan 1'));
      expect(await restarted.writeDataFile(other, bytesOf('first'))).to.deep.equal({ path: 'shop/other/1/CDC000002.csv', index: 2 });
      expect(textOf(await storage.get('shop/other/1/CDC000001.csv'))).to.equal('orphan 1');
    });

    it('turns 50 concurrent writes to one folder into 50 consecutive files in call order', async () => {
      const out = output();
      const payloads = Array.from({ length: 50 }, (_, index) => `payload ${index}`);
      const results = await Promise.all(payloads.map((payload) => out.writeDataFile(orders, bytesOf(payload), 'd1')));
      expect(results.map((result) => result.index)).to.deep.equal(payloads.map((_, index) => index + 1));
      const contents = await Promise.all(results.map(async (result) => textOf(await storage.get(result.path))));
      expect(contents).to.deep.equal(payloads);
      const indexWrites = storage.calls.filter((call) => call.startsWith(`put> ${ORDERS}/meta/`));
      expect(indexWrites).to.deep.equal(payloads.map((_, index) => `put> ${ORDERS}/meta/CDC_d1.index = CDC_d1_${String(index + 1).padStart(6, '0')}.csv`));
      // One put at a time on the folder: each put ends before the next one starts.
      const puts = storage.calls.filter((call) => call.startsWith('put'));
      for (let at = 0; at < puts.length; at += 2) expect(puts[at + 1], puts[at]).to.equal(puts[at]!.replace('put>', 'put<'));
      expect(textOf(await storage.get(`${ORDERS}/meta/CDC_d1.index`))).to.equal('CDC_d1_000050.csv\n');
      expect(storage.danglingIndexes).to.deep.equal([]);
    });

    it('lets different folders proceed in parallel while one is held back', async () => {
      const out = output();
      const held = deferred();
      let holding = false;
      storage.gate = async (key) => {
        if (key.startsWith('shop/slow/')) {
          holding = true;
          await held.promise;
        }
      };
      const slow = out.writeDataFile({ schema: 'shop', table: 'slow', tableVersion: 1n }, bytesOf('slow'));
      await until(() => holding, 'the slow folder to reach its data put');
      const fast = [];
      for (const table of ['fast1', 'fast2']) fast.push(await out.writeDataFile({ schema: 'shop', table, tableVersion: 1n }, bytesOf(table)));
      expect(fast.map((result) => result.path)).to.deep.equal(['shop/fast1/1/CDC000001.csv', 'shop/fast2/1/CDC000001.csv']);
      expect(await storage.exists('shop/slow/1/CDC000001.csv')).to.equal(false);
      held.resolve();
      expect(await slow).to.deep.equal({ path: 'shop/slow/1/CDC000001.csv', index: 1 });
      expect(textOf(await storage.get('shop/slow/1/meta/CDC.index'))).to.equal('CDC000001.csv\n');
    });

    it('writes {"checkpoint-ts":N} to metadata as given, reading nothing: its order is the sink checkpoint stage\'s (MetadataCheckpoint)', async () => {
      const out = output();
      await out.writeCheckpoint(200n);
      await out.writeCheckpoint(100n);
      expect(storage.calls.filter((call) => call.includes('metadata'))).to.deep.equal([
        'put> metadata = {"checkpoint-ts":200}',
        'put< metadata = {"checkpoint-ts":200}',
        'put> metadata = {"checkpoint-ts":100}',
        'put< metadata = {"checkpoint-ts":100}',
      ]);
      expect(textOf(await storage.get('metadata'))).to.equal('{"checkpoint-ts":100}');
    });

    it('fails clearly, naming the storage, the path and the operation, when the index outgrows fileIndexWidth', async () => {
      await storage.put(`${ORDERS}/meta/CDC.index`, bytesOf('CDC999999.csv\n'));
      storage.calls.length = 0;
      const error = await rejectionOf(output().writeDataFile(orders, bytesOf('x')));
      expect(error).to.be.instanceOf(FileOutputError);
      expect(error.message).to.equal(
        `FileOutput ${storage.uri}: cannot number the next data file in "${ORDERS}": index 1000000 does not fit fileIndexWidth 6 (largest 999999); raise fileIndexWidth or start a new date folder`,
      );
      expect(storage.calls.filter((call) => call.startsWith('put'))).to.deep.equal([]);
      // Width 7 holds it.
      expect((await output({ fileIndexWidth: 7 }).writeDataFile(orders, bytesOf('x'))).path).to.equal(`${ORDERS}/CDC1000000.csv`);
    });

    it('refuses an index file that does not name a data file of its dispatcher', async () => {
      await storage.put(`${ORDERS}/meta/CDC.index`, bytesOf('garbage in here\n'));
      await storage.put(`${ORDERS}/meta/CDC_d1.index`, bytesOf('CDC_d2_000001.csv\n'));
      const out = output();
      const garbage = await rejectionOf(out.writeDataFile(orders, bytesOf('x')));
      expect(garbage).to.be.instanceOf(FileOutputError).with.property('operation', 'read index file');
      expect(garbage.message).to.include(storage.uri).and.include(`"${ORDERS}/meta/CDC.index"`).and.include('not an index file');
      const foreign = await rejectionOf(out.writeDataFile(orders, bytesOf('x'), 'd1'));
      expect(foreign.message).to.equal(
        `FileOutput ${storage.uri}: cannot read index file "${ORDERS}/meta/CDC_d1.index": it names "CDC_d2_000001.csv", not a data file of dispatcher "d1"`,
      );
      expect(await keysUnder(storage, `${ORDERS}/`)).to.deep.equal([`${ORDERS}/meta/CDC.index`, `${ORDERS}/meta/CDC_d1.index`]);
    });
  });
}

describeFileOutput('MemoryStorage', async () => {
  const storage = new MemoryStorage({ name: 'file-output' });
  return { storage, cleanup: () => storage.close() };
});

describeFileOutput('FileStorage', async () => {
  const folder = await mkdtemp(join(tmpdir(), 'sluice-file-output-'));
  return { storage: new FileStorage(join(folder, 'root')), cleanup: () => rm(folder, { recursive: true, force: true }) };
});

describe('FileOutput against s3rver', function () {
  const BUCKET = 'sluice-file-output';
  let s3rver: S3rverService | undefined;
  let prefixes = 0;

  before(async function () {
    s3rver = await serviceOrSkip(this, 's3rver', startS3rver);
    await createS3Bucket(s3rver.endpoint, BUCKET);
  });

  after(async () => {
    await s3rver?.stop();
  });

  describeFileOutput('S3Storage (s3rver)', async () => {
    const storage = new S3Storage(
      { scheme: 's3', bucket: BUCKET, prefix: `t${++prefixes}`, endpoint: s3rver!.endpoint, region: 'us-east-1', forcePathStyle: true },
      {
        env: { AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey },
        retry: { maxRetries: 3, minDelayMs: 1, maxDelayMs: 5, jitter: 0 },
      },
    );
    return { storage, cleanup: () => storage.close() };
  });
});

describe('FileOutput against azurite', function () {
  const CONTAINER = 'sluice-file-output';
  let azurite: AzuriteService | undefined;
  let prefixes = 0;
  const open = () =>
    new AzureStorage(
      { scheme: 'azure', container: CONTAINER, prefix: `t${++prefixes}`, endpoint: azurite!.endpoint },
      {
        env: { AZURE_STORAGE_ACCOUNT: azurite!.account, AZURE_STORAGE_KEY: azurite!.key },
        retry: { maxRetries: 3, minDelayMs: 1, maxDelayMs: 5, jitter: 0 },
      },
    );

  before(async function () {
    this.timeout(30_000);
    azurite = await serviceOrSkip(this, 'azurite', startAzurite);
    const storage = open();
    try {
      await storage.containerClient.create();
    } finally {
      await storage.close();
    }
  });

  after(async () => {
    await azurite?.stop();
  });

  describeFileOutput('AzureStorage (azurite)', async () => {
    const storage = open();
    return { storage, cleanup: () => storage.close() };
  });
});

describe('FileOutput on a MemoryStorage with faults and an injected clock', () => {
  let memory: MemoryStorage;
  let storage: RecordingStorage;

  beforeEach(() => {
    memory = new MemoryStorage({ name: 'faults' });
    storage = new RecordingStorage(memory);
  });

  afterEach(async () => {
    await memory.close();
  });

  it('checks its options, naming the option and the value', () => {
    const cases: [Partial<FileOutputOptions>, string][] = [
      [{ storage: undefined }, 'FileOutput: option storage must be an ExternalStorage (put, get, exists), got undefined'],
      [{ extension: '.txt' as '.csv' }, `FileOutput: option extension must be '.csv' or '.json', got ".txt"`],
      [{ fileIndexWidth: 5 }, 'FileOutput: option fileIndexWidth must be an integer in [6, 20], got 5'],
      [{ fileIndexWidth: 21 }, 'FileOutput: option fileIndexWidth must be an integer in [6, 20], got 21'],
      [{ idleStateMs: 0 }, 'FileOutput: option idleStateMs must be an integer >= 1, got 0'],
      [{ idleStateMs: 1.5 }, 'FileOutput: option idleStateMs must be an integer >= 1, got 1.5'],
      [{ maxFolders: 0 }, 'FileOutput: option maxFolders must be an integer >= 1, got 0'],
      [{ maxFolders: Number.NaN }, 'FileOutput: option maxFolders must be an integer >= 1, got NaN'],
      [{ now: 5 as unknown as () => number }, 'FileOutput: option now must be a function, got 5'],
      [{ onWrite: 'log' as unknown as () => void }, 'FileOutput: option onWrite must be a function, got "log"'],
    ];
    for (const [options, message] of cases) {
      expect(() => new FileOutput({ storage, extension: '.csv', ...options }), message).to.throw(InvalidOptionError, message);
    }
  });

  it('rejects a bad folder, dispatcher id, payload or checkpoint before any I/O', async () => {
    const out = new FileOutput({ storage, extension: '.csv' });
    const badTable = await rejectionOf(out.writeDataFile({ ...orders, table: 'a/b' }, bytesOf('x')));
    expect(badTable).to.be.instanceOf(InvalidOptionError).with.property('option', 'table');
    const badDispatcher = await rejectionOf(out.writeDataFile(orders, bytesOf('x'), '..'));
    expect(badDispatcher).to.be.instanceOf(InvalidOptionError).with.property('option', 'dispatcherId');
    const badBytes = await rejectionOf(out.writeDataFile(orders, 'x' as unknown as Uint8Array));
    expect(badBytes).to.be.instanceOf(InvalidOptionError).with.property('option', 'bytes');
    const badCheckpoint = await rejectionOf(out.writeCheckpoint(-1n));
    expect(badCheckpoint).to.be.instanceOf(InvalidOptionError).with.property('option', 'checkpointTs');
    expect(storage.calls).to.deep.equal([]);
    expect(out.heldFolders).to.equal(0);
  });

  it('writes no index file when the data put fails, and the next call uses the same index', async () => {
    const out = new FileOutput({ storage, extension: '.csv', fileIndexWidth: 6 });
    await out.writeDataFile(orders, bytesOf('1'));
    memory.failNext('put', new Error('injected outage'));
    const error = await rejectionOf(out.writeDataFile(orders, bytesOf('2')));
    expect(error).to.be.instanceOf(FileOutputError).with.property('operation', 'write data file');
    expect(error.message).to.equal(`FileOutput memory://faults: cannot write data file "${ORDERS}/CDC000002.csv": Error: injected outage`);
    expect((error as FileOutputError).path).to.equal(`${ORDERS}/CDC000002.csv`);
    expect(storage.calls.at(-1)).to.equal(`put! ${ORDERS}/CDC000002.csv`);
    expect(textOf(await storage.get(`${ORDERS}/meta/CDC.index`))).to.equal('CDC000001.csv\n');
    storage.calls.length = 0;
    expect(await out.writeDataFile(orders, bytesOf('2'))).to.deep.equal({ path: `${ORDERS}/CDC000002.csv`, index: 2 });
    // The failure dropped the counter: it is rebuilt from the index file, which is the truth.
    expect(storage.calls[0]).to.equal(`get> ${ORDERS}/meta/CDC.index`);
  });

  it('rejects when the index put fails after the data file is durable; the retry rewrites that never-indexed file', async () => {
    const out = new FileOutput({ storage, extension: '.csv', fileIndexWidth: 6 });
    storage.beforePut = (key) => {
      if (INDEX_KEY.test(key)) memory.failNext('put', new Error('index outage'));
    };
    const error = await rejectionOf(out.writeDataFile(orders, bytesOf('first try')));
    expect(error).to.be.instanceOf(FileOutputError).with.property('operation', 'write index file');
    expect(error.message).to.equal(`FileOutput memory://faults: cannot write index file "${ORDERS}/meta/CDC.index": Error: index outage`);
    expect(textOf(await storage.get(`${ORDERS}/CDC000001.csv`))).to.equal('first try');
    expect(await storage.get(`${ORDERS}/meta/CDC.index`)).to.equal(undefined);
    storage.beforePut = undefined;
    expect(await out.writeDataFile(orders, bytesOf('second try'))).to.deep.equal({ path: `${ORDERS}/CDC000001.csv`, index: 1 });
    expect(textOf(await storage.get(`${ORDERS}/CDC000001.csv`))).to.equal('second try');
    expect(textOf(await storage.get(`${ORDERS}/meta/CDC.index`))).to.equal('CDC000001.csv\n');
  });

  it('recovers from a storage that fails for a while: each payload in exactly one data file, no index ahead of its data', async () => {
    const random = seededRandom(20240501);
    let puts = 0;
    storage.beforePut = () => {
      // An outage of the first 120 puts: bursts of 1 to 3 failing puts, hitting data and index puts alike.
      if (++puts <= 120 && random() < 0.3) memory.failNext('put', new Error('injected outage'), 1 + Math.floor(random() * 3));
    };
    const out = new FileOutput({ storage, extension: '.csv', fileIndexWidth: 6 });
    const folders: [DataFolder, string | undefined][] = [
      [orders, undefined],
      [orders, 'd1'],
      [{ schema: 'shop', table: 'items', tableVersion: 9n }, undefined],
    ];
    let failures = 0;
    /** The caller's retry loop: write again after any failure. */
    const writeWithRetries = async (folder: DataFolder, payload: string, dispatcherId: string | undefined) => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await out.writeDataFile(folder, bytesOf(payload), dispatcherId);
        } catch (error) {
          expect(error).to.be.instanceOf(FileOutputError);
          expect((error as Error).message).to.include('memory://faults').and.include('injected outage');
          failures++;
          if (attempt === 100) throw error;
          await tick();
        }
      }
    };
    const written = await Promise.all(
      folders.flatMap(([folder, dispatcherId], f) =>
        Array.from({ length: 15 }, async (_, n) => ({ payload: `folder ${f} payload ${n}`, ...(await writeWithRetries(folder, `folder ${f} payload ${n}`, dispatcherId)) })),
      ),
    );
    expect(failures, 'failures injected').to.be.greaterThan(10);
    expect(storage.calls.filter((call) => /^put! .*\/CDC[^/]*\.csv$/.test(call)).length, 'failed data puts').to.be.greaterThan(0);
    expect(storage.calls.filter((call) => /^put! .*\.index = /.test(call)).length, 'failed index puts').to.be.greaterThan(0);

    // Each resolved write's file holds its payload, and every payload is in exactly one data file.
    for (const { path, payload } of written) expect(textOf(await storage.get(path)), path).to.equal(payload);
    const dataFiles = (await keysUnder(storage, 'shop/')).filter((key) => !key.includes('/meta/'));
    const stored = await Promise.all(dataFiles.map(async (key) => textOf(await storage.get(key))));
    expect([...stored].sort()).to.deep.equal(written.map((write) => write.payload).sort());

    // Per index file: indexes written in increasing order, each skip only over files that hold data,
    // and no index put ever named a data file that was not there.
    for (const [folder, dispatcherId] of folders) {
      const indexKey = dispatcherId === undefined ? `shop/${folder.table}/${folder.tableVersion}${folder.date ? `/${folder.date}` : ''}/meta/CDC.index` : `${ORDERS}/meta/CDC_${dispatcherId}.index`;
      const values = storage.calls
        .filter((call) => call.startsWith(`put< ${indexKey} = `))
        .map((call) => Number(/([0-9]{6})\.csv$/.exec(call)![1]));
      expect(values.length, indexKey).to.equal(15);
      for (let at = 1; at < values.length; at++) {
        expect(values[at], `${indexKey} after ${values[at - 1]}`).to.be.greaterThan(values[at - 1]!);
        for (let skipped = values[at - 1]! + 1; skipped < values[at]!; skipped++) {
          expect(dataFiles.some((key) => key.startsWith(indexKey.replace(/meta\/.*$/, '')) && key.endsWith(`${String(skipped).padStart(6, '0')}.csv`)), `${indexKey} skipped ${skipped}`).to.equal(true);
        }
      }
      expect(values[0]).to.equal(1);
      expect(values.at(-1)).to.equal(15); // contiguous: the retries reused their own never-indexed files
    }
    expect(storage.danglingIndexes).to.deep.equal([]);
  });

  it('reclaims idle folders after idleStateMs on the injected clock and rebuilds them from the index file', async () => {
    let clock = 0;
    const out = new FileOutput({ storage, extension: '.csv', fileIndexWidth: 6, idleStateMs: 1000, now: () => clock });
    const folder = (table: string): DataFolder => ({ schema: 'shop', table, tableVersion: 1n });
    for (const table of ['a', 'b', 'c']) await out.writeDataFile(folder(table), bytesOf(table));
    expect(out.heldFolders).to.equal(3);
    clock = 999;
    await out.writeDataFile(folder('a'), bytesOf('a again'));
    clock = 1000;
    expect(out.heldFolders, 'idle exactly idleStateMs').to.equal(3);
    clock = 1001;
    expect(out.heldFolders, 'b and c idle past idleStateMs').to.equal(1);
    clock = 2000;
    expect(out.heldFolders, 'a idle past idleStateMs').to.equal(0);
    storage.calls.length = 0;
    expect(await out.writeDataFile(folder('b'), bytesOf('b again'))).to.deep.equal({ path: 'shop/b/1/CDC000002.csv', index: 2 });
    expect(await out.writeDataFile(folder('a'), bytesOf('a third'))).to.deep.equal({ path: 'shop/a/1/CDC000003.csv', index: 3 });
    expect(storage.calls.filter((call) => call.startsWith('get>'))).to.deep.equal(['get> shop/b/1/meta/CDC.index', 'get> shop/a/1/meta/CDC.index']);
    expect(out.heldFolders).to.equal(2);
  });

  it('never reclaims a folder while its write is in flight', async () => {
    let clock = 0;
    const out = new FileOutput({ storage, extension: '.csv', fileIndexWidth: 6, idleStateMs: 1000, maxFolders: 1, now: () => clock });
    const held = deferred();
    let holding = false;
    storage.gate = async (key) => {
      if (key === 'shop/a/1/CDC000001.csv') {
        holding = true;
        await held.promise;
      }
    };
    const slow = out.writeDataFile({ schema: 'shop', table: 'a', tableVersion: 1n }, bytesOf('a'));
    await until(() => holding, 'the write of a to reach its data put');
    clock = 5000;
    await out.writeDataFile({ schema: 'shop', table: 'b', tableVersion: 1n }, bytesOf('b'));
    await out.writeDataFile({ schema: 'shop', table: 'c', tableVersion: 1n }, bytesOf('c'));
    expect(out.heldFolders, 'a in flight + one idle folder').to.equal(2);
    held.resolve();
    expect((await slow).index).to.equal(1);
    expect(out.heldFolders).to.equal(1);
    expect(await out.writeDataFile({ schema: 'shop', table: 'a', tableVersion: 1n }, bytesOf('a2'))).to.deep.equal({ path: 'shop/a/1/CDC000002.csv', index: 2 });
    expect(storage.calls.filter((call) => call === 'get> shop/a/1/meta/CDC.index'), 'state of a kept, not rebuilt').to.have.length(1);
  });

  it('holds at most maxFolders idle folders over 1000 folders with 10 writes in flight', async () => {
    const maxFolders = 100;
    const out = new FileOutput({ storage: memory, extension: '.csv', fileIndexWidth: 6, maxFolders });
    let mostHeld = 0;
    const write = (table: string) => {
      const writing = out.writeDataFile({ schema: 'scale', table, tableVersion: 1n }, bytesOf(table));
      mostHeld = Math.max(mostHeld, out.heldFolders);
      return writing;
    };
    // 10 workers, each with one hot folder written between its 100 cold folders.
    await Promise.all(
      Array.from({ length: 10 }, async (_, worker) => {
        for (let n = 0; n < 100; n++) {
          await write(`cold${worker * 100 + n}`);
          await write(`hot${worker}`);
        }
      }),
    );
    expect(mostHeld).to.be.within(maxFolders, maxFolders + 10);
    expect(out.heldFolders).to.equal(maxFolders);
    for (let worker = 0; worker < 10; worker++) expect(textOf(await memory.get(`scale/hot${worker}/1/meta/CDC.index`))).to.equal('CDC000100.csv\n');
    expect(textOf(await memory.get('scale/cold999/1/meta/CDC.index'))).to.equal('CDC000001.csv\n');
    expect((await keysUnder(memory, 'scale/')).length, 'cold: a file and an index each; hot: 100 files and an index each').to.equal(1000 * 2 + 10 * (100 + 1));
  });

  it('reports each durable write through onWrite: kind, path, bytes and duration on the injected clock', async () => {
    let clock = 0;
    const events: FileWriteEvent[] = [];
    storage.gate = async () => {
      clock += 7; // each put takes 7 ms
    };
    const out = new FileOutput({ storage, extension: '.csv', fileIndexWidth: 6, now: () => clock, onWrite: (event) => events.push(event) });
    await out.writeDataFile(orders, bytesOf('12345'));
    const schema = await out.writeSchemaFile(addColumn);
    await out.writeCheckpoint(4351n);
    expect(events).to.deep.equal([
      { kind: 'data', path: `${ORDERS}/CDC000001.csv`, bytes: 5, durationMs: 7 },
      { kind: 'index', path: `${ORDERS}/meta/CDC.index`, bytes: 'CDC000001.csv\n'.length, durationMs: 7 },
      { kind: 'schema', path: schema.path, bytes: Buffer.byteLength(encodeSchemaFile(addColumn).text), durationMs: 7 },
      { kind: 'metadata', path: 'metadata', bytes: '{"checkpoint-ts":4351}'.length, durationMs: 7 },
    ]);
  });

  it('rejects a call whose onWrite throws, after its files are durable, and goes on with the next index', async () => {
    const thrown = new Error('metrics broke');
    let throwing = true;
    const out = new FileOutput({
      storage,
      extension: '.csv',
      fileIndexWidth: 6,
      onWrite: () => {
        if (throwing) throw thrown;
      },
    });
    const error = await rejectionOf(out.writeDataFile(orders, bytesOf('x')));
    expect(error).to.be.instanceOf(FileOutputError).with.property('cause', thrown);
    expect(error.message).to.include('onWrite threw').and.include(`${ORDERS}/CDC000001.csv`);
    expect(textOf(await storage.get(`${ORDERS}/meta/CDC.index`))).to.equal('CDC000001.csv\n');
    throwing = false;
    expect((await out.writeDataFile(orders, bytesOf('y'))).index).to.equal(2);
  });
});
