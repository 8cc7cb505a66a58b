/**
 * The sink's writes under permanent storage failures (issue 14): a failure no retry can fix (a file
 * where the storage's folder must be, a full disk) fails the sink at the first attempt with the
 * storage's own message, not "failed 6 times" under the retry policy; a transient one is still retried.
 */
import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { from, lastValueFrom, tap, toArray } from 'rxjs';
import { createAck } from '../../../lib/core/ack.ts';
import type { ChangeEvent, DdlEvent, RowChange, TableDef } from '../../../lib/codec/index.ts';
import { FileStorage, FileStorageError } from '../../../lib/storage/fileStorage.ts';
import { MemoryStorage } from '../../../lib/storage/memoryStorage.ts';
import type { ExternalStorage } from '../../../lib/storage/storage.ts';
import { storageSink, type StorageSinkOptions } from '../../../pipelines/storageSink/storageSink.ts';
import { rejectionOf } from '../../support/waiting.ts';

const ORDERS: TableDef = { schema: 'shop', table: 'orders', version: 100n, columns: [{ name: 'id', type: 'INT', primaryKey: true, nullable: false }] };
const CREATE: DdlEvent = { kind: 'ddl', commitTs: 100n, query: 'CREATE TABLE shop.orders (id INT PRIMARY KEY)', ddlType: 'CREATE TABLE', schema: 'shop', table: 'orders', tableDef: ORDERS, blockedDispatchers: 'all' };
const row = (id: number): RowChange => ({ kind: 'row', op: 'insert', schema: 'shop', table: 'orders', tableVersion: 100n, commitTs: 100n + BigInt(id), dispatcherId: 'd', columns: { id } });

/** Counts the puts of the storage it wraps; `failPuts` makes the first puts reject with errors of its own. */
class CountingStorage implements ExternalStorage {
  puts = 0;
  /** Each key put, as often as it was put: a retry shows as a key twice. */
  readonly putKeys: string[] = [];
  readonly uri: string;
  readonly inner: ExternalStorage;
  readonly failPuts: Error[];
  constructor(inner: ExternalStorage, failPuts: Error[] = []) {
    this.inner = inner;
    this.failPuts = failPuts;
    this.uri = inner.uri;
  }
  put(key: string, data: Uint8Array) {
    this.puts++;
    this.putKeys.push(key);
    const failure = this.failPuts.shift();
    return failure ? Promise.reject(failure) : this.inner.put(key, data);
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
  list(prefix: string) {
    return this.inner.list(prefix);
  }
  close() {
    return this.inner.close();
  }
}

const options = (storage: ExternalStorage): StorageSinkOptions => ({
  storage,
  flushIntervalMs: 100,
  checkpointIntervalMs: 20,
  dateSeparator: 'none',
  spool: { memoryBytes: 1 << 20, diskQuotaBytes: 1 << 24 },
  retry: { maxRetries: 5, minDelayMs: 1, maxDelayMs: 5, jitter: 0 },
});
const events = (): ChangeEvent[] => [CREATE, row(1), row(2)];
const sink = (storage: ExternalStorage) => lastValueFrom(from(events().map((value) => ({ value, ack: createAck() }))).pipe(storageSink(options(storage)), toArray()));

describe('storageSink: permanent storage failures', function () {
  this.timeout(20_000);
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-sink-permanent-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a file where the storage folder must be: fails at the first put with the real cause', async () => {
    const root = join(dir, 'a-file');
    await writeFile(root, 'in the way');
    const storage = new CountingStorage(new FileStorage(root));
    const kinds: string[] = [];
    const run = lastValueFrom(from(events().map((value) => ({ value, ack: createAck() }))).pipe(storageSink(options(storage)), tap((p) => kinds.push(p.kind)), toArray()));
    const error = await rejectionOf(run);
    // No write is retried: the sink reports a `stall` before every retry. (Writes of other files may
    // have started beside the first, on a slow machine timed checkpoints too: each fails once.)
    expect(storage.putKeys.length).to.be.at.least(1);
    expect(kinds, storage.putKeys.join(', ')).to.not.include('stall');
    expect(error.name).to.not.equal('RetriesExhaustedError');
    expect(error.message).to.contain(`${root} is a file where a folder must be`).and.not.contain('failed 6 times');
  });

  it('a full disk (ENOSPC): fails at the first put saying to free space', async () => {
    const full = new FileStorageError('FileStorage file:///data', 'put', 'shop/orders/meta/schema.json', '/data/x', Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
    const storage = new CountingStorage(new MemoryStorage(), [full]);
    const error = await rejectionOf(sink(storage));
    expect(storage.puts).to.equal(1);
    expect(error.message).to.contain('the disk is full: free space');
  });

  it('a transient failure (a reset connection) is still retried, and the sink completes', async () => {
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    const storage = new CountingStorage(new MemoryStorage(), [reset, reset]);
    await sink(storage);
    expect(storage.puts).to.be.above(3);
    expect(new TextDecoder().decode((await storage.get('metadata'))!)).to.equal('{"checkpoint-ts":102}');
  });
});
