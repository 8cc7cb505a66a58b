/**
 * MySQL outages under a replay (issue 14): connections refused at start, connections reset in the
 * middle, a server gone for longer than one retry round and then back: the consumer retries each
 * failed file's transaction within `retryForMs`, reports a 'stall' before each retry, and ends with
 * exactly the rows expected (nothing lost, nothing applied twice); a budget that runs out fails with
 * the cause. MariaDB sits behind a TCP fault proxy; an s3:// storage's 503s are ridden out within the
 * same budget.
 */
import { expect } from 'chai';
import { createPool, type Pool } from 'mysql2/promise';
import { lastValueFrom, tap, toArray, type Observable } from 'rxjs';
import { MysqlError } from '../../../lib/mysql/pool.ts';
import { parseMysqlUri } from '../../../lib/mysql/uri.ts';
import { MemoryStorage } from '../../../lib/storage/memoryStorage.ts';
import { S3Storage } from '../../../lib/storage/s3Storage.ts';
import type { ConsumerProgress } from '../../../pipelines/storageConsumer/progress.ts';
import { storageConsumer } from '../../../pipelines/storageConsumer/storageConsumer.ts';
import { freshDatabase, sharedMariaDb } from '../../support/mariadb.ts';
import { createS3Bucket, S3RVER_CREDENTIALS, serviceOrSkip, startFaultProxy, startS3rver, type FaultProxy } from '../../support/services.ts';
import { startTcpFaultProxy, type TcpFaultProxy } from '../../support/tcpFaultProxy.ts';
import { rejectionOf } from '../../support/waiting.ts';
import { ddl, def, insert, putDataFiles, putMetadata, putSchema } from './layout.ts';

const T = 1n << 40n;
type Stall = Extract<ConsumerProgress, { kind: 'stall' }>;

describe('storageConsumer: outages (MariaDB behind a TCP fault proxy, s3rver behind an HTTP one)', function () {
  this.timeout(60_000);
  let url: string;
  let pool: Pool;
  let proxy: TcpFaultProxy | undefined;

  before(async function () {
    this.timeout(40_000);
    url = (await serviceOrSkip(this, 'mariadb', sharedMariaDb)).url;
    pool = createPool({ uri: url, connectionLimit: 2 });
  });
  afterEach(async () => {
    await proxy?.stop();
    proxy = undefined;
  });
  after(async () => {
    await pool?.end();
  });

  /** Two tables, `files` data files of `rowsPerFile` rows each; returns the storage and the expected ids per table. */
  async function layout(db: string, files: number, rowsPerFile: number) {
    const storage = new MemoryStorage();
    for (const name of ['a', 'b']) {
      const table = def(db, name, T);
      await putSchema(storage, ddl('CREATE TABLE', `CREATE TABLE ${name} (id INT PRIMARY KEY, name VARCHAR(64))`, db, name, T, table));
      const rows = Array.from({ length: files }, (_, f) =>
        Array.from({ length: rowsPerFile }, (_, r) => insert(table, T + BigInt(f * rowsPerFile + r + 1), { id: f * rowsPerFile + r, name: `${name}${f}.${r}` })),
      );
      await putDataFiles(storage, table, rows);
    }
    await putMetadata(storage, T + 1_000_000n);
    return { storage, expected: Array.from({ length: files * rowsPerFile }, (_, i) => i) };
  }

  const proxied = (port: number) => {
    const { user } = parseMysqlUri(url);
    return `mysql://${user}@127.0.0.1:${port}/`;
  };
  const ids = async (db: string, table: string) => ((await pool.query(`SELECT id FROM \`${db}\`.${table} ORDER BY id`))[0] as Array<{ id: number }>).map((r) => r.id);
  const names = async (db: string, table: string) => ((await pool.query(`SELECT COUNT(*) n, COUNT(DISTINCT name) d FROM \`${db}\`.${table}`))[0] as Array<{ n: number; d: number }>)[0];

  /** Runs `progress$` to its end, calling `onEvent` with each event (and the stalls so far). */
  function replay(progress$: Observable<ConsumerProgress>, onEvent: (p: ConsumerProgress, stalls: Stall[]) => void = () => undefined) {
    const stalls: Stall[] = [];
    const done = lastValueFrom(
      progress$.pipe(
        tap((p) => {
          if (p.kind === 'stall') stalls.push(p);
          onEvent(p, stalls);
        }),
        toArray(),
      ),
    );
    return { stalls, done };
  }

  it('ECONNREFUSED at start: retries until the server comes up, then replays everything once', async () => {
    const db = await freshDatabase(url, 'refused');
    const { storage, expected } = await layout(db, 3, 5);
    const { host, port } = parseMysqlUri(url);
    proxy = await startTcpFaultProxy({ host, port }, 'refuse');
    const p = proxy;
    const { stalls, done } = replay(
      storageConsumer({ from: storage, to: proxied(p.port), once: true, checkpointDatabase: db, retry: { minDelayMs: 10, maxDelayMs: 100 } }),
      (event, seen) => {
        // Longer than one retry round: the server comes back only after the third retry was announced.
        if (event.kind === 'stall' && seen.length === 3) void p.setMode('forward');
      },
    );
    const progress = await done;
    expect(stalls.length).to.be.at.least(3);
    expect(stalls[0]).to.include({ target: `127.0.0.1:${p.port}`, code: 'ECONNREFUSED', unreachable: true, attempt: 1, retryForMs: 600_000 });
    expect(stalls[0]!.operation).to.contain('checkpoint table');
    expect(progress.filter((e) => e.kind === 'data')).to.have.length(6);
    expect(await ids(db, 'a')).to.deep.equal(expected);
    expect(await ids(db, 'b')).to.deep.equal(expected);
  });

  it('connections reset mid-replay and refused for a while: each failed file retried whole, nothing lost or applied twice', async () => {
    const db = await freshDatabase(url, 'reset');
    const { storage, expected } = await layout(db, 12, 200);
    const { host, port } = parseMysqlUri(url);
    proxy = await startTcpFaultProxy({ host, port });
    const p = proxy;
    let dataEvents = 0;
    let outage: 'none' | 'on' | 'over' = 'none';
    const { stalls, done } = replay(
      storageConsumer({ from: storage, to: proxied(p.port), once: true, checkpointDatabase: db, maxRowsPerStatement: 20, retry: { minDelayMs: 10, maxDelayMs: 100 } }),
      (event, seen) => {
        if (event.kind === 'data' && ++dataEvents === 5 && outage === 'none') {
          // Cut the connections (a transaction may be in flight), then reset every new one.
          outage = 'on';
          void p.setMode('reset');
        }
        if (event.kind === 'stall' && outage === 'on' && seen.length === 4) {
          void p.setMode('refuse');
        }
        if (event.kind === 'stall' && outage === 'on' && seen.length === 8) {
          outage = 'over';
          void p.setMode('forward');
        }
      },
    );
    const progress = await done;
    expect(outage).to.equal('over');
    expect(stalls.length).to.be.at.least(8);
    expect(stalls.some((s) => s.operation.startsWith('apply '))).to.equal(true);
    expect(p.resets).to.be.above(0);
    // Every data file reported applied exactly once.
    const applied = progress.filter((e): e is Extract<ConsumerProgress, { kind: 'data' }> => e.kind === 'data').map((e) => e.path);
    expect(applied).to.have.length(24);
    expect(new Set(applied).size).to.equal(24);
    expect(await ids(db, 'a')).to.deep.equal(expected);
    expect(await ids(db, 'b')).to.deep.equal(expected);
    expect(await names(db, 'a')).to.deep.equal({ n: expected.length, d: expected.length });
    // The checkpoint stands at the last file of each table.
    const [positions] = await pool.query(`SELECT table_name, file_index FROM \`${db}\`.replay_checkpoint WHERE stream <> '#ddl' ORDER BY table_name`);
    expect(positions).to.deep.equal([{ table_name: 'a', file_index: 12 }, { table_name: 'b', file_index: 12 }]);
  });

  it('a connection lost during COMMIT after the server committed: the file is not applied again', async () => {
    const db = await freshDatabase(url, 'commit');
    const { storage, expected } = await layout(db, 4, 10);
    // A trigger counts every row written to `a`: a file applied twice would count its rows twice.
    await pool.query(`CREATE DATABASE \`${db}\``);
    await pool.query(`CREATE TABLE \`${db}\`.a (id INT PRIMARY KEY, name VARCHAR(64))`);
    await pool.query(`CREATE TABLE \`${db}\`.writes (n INT NOT NULL)`);
    await pool.query(`INSERT INTO \`${db}\`.writes VALUES (0)`);
    await pool.query(`CREATE TRIGGER \`${db}\`.count_writes AFTER INSERT ON \`${db}\`.a FOR EACH ROW UPDATE \`${db}\`.writes SET n = n + 1`);
    const target = createPool({ uri: url, connectionLimit: 2, supportBigNumbers: true, bigNumberStrings: true, dateStrings: true });
    let lostCommits = 0;
    // The second and third COMMITs reach the server, then their answer is lost.
    let commits = 0;
    const flaky = new Proxy(target, {
      get(pool, name, receiver) {
        if (name !== 'getConnection') return Reflect.get(pool, name, receiver);
        return async () => {
          const connection = await pool.getConnection();
          return new Proxy(connection, {
            get(inner, key, innerReceiver) {
              if (key !== 'commit') return Reflect.get(inner, key, innerReceiver);
              return async () => {
                await inner.commit();
                if (++commits === 2 || commits === 3) {
                  lostCommits++;
                  throw Object.assign(new Error('Connection lost: The server closed the connection.'), { code: 'PROTOCOL_CONNECTION_LOST', fatal: true });
                }
              };
            },
          });
        };
      },
    });
    try {
      const { stalls, done } = replay(storageConsumer({ from: storage, to: flaky, once: true, checkpointDatabase: db, applyConcurrency: 1, retry: { minDelayMs: 1, maxDelayMs: 5 } }));
      const progress = await done;
      expect(lostCommits).to.equal(2);
      expect(stalls.map((s) => s.code)).to.deep.equal(['PROTOCOL_CONNECTION_LOST', 'PROTOCOL_CONNECTION_LOST']);
      expect(progress.filter((e) => e.kind === 'data')).to.have.length(8);
      expect(await ids(db, 'a')).to.deep.equal(expected);
      expect(await ids(db, 'b')).to.deep.equal(expected);
      const [[writes]] = (await pool.query(`SELECT n FROM \`${db}\`.writes`)) as unknown as [[{ n: number }]];
      expect(writes.n).to.equal(expected.length);
    } finally {
      await target.end();
    }
  });

  it('an s3:// storage answering 503 for longer than its own retry count: ridden out within retryForMs, with storage stalls', async function () {
    const s3rver = await serviceOrSkip(this, 's3rver', startS3rver);
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    let s3proxy: FaultProxy | undefined;
    try {
      await createS3Bucket(s3rver.endpoint, 'outage');
      const db = await freshDatabase(url, 's3');
      const env = { AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey };
      const writer = new S3Storage({ scheme: 's3', bucket: 'outage', prefix: 'cdc', endpoint: s3rver.endpoint, forcePathStyle: true }, { env });
      const table = def(db, 't', T);
      await putSchema(writer, ddl('CREATE TABLE', 'CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(64))', db, 't', T, table));
      await putDataFiles(writer, table, [[insert(table, T + 1n, { id: 1, name: 'one' })], [insert(table, T + 2n, { id: 2, name: 'two' })]]);
      await putMetadata(writer, T + 100n);
      await writer.close();
      s3proxy = await startFaultProxy(s3rver.endpoint);
      s3proxy.inject({ status: 503, code: 'SlowDown' }, 9); // more than the 5 retries of a storage's default policy
      Object.assign(process.env, env);
      const from = `s3://outage/cdc?endpoint=${s3proxy.endpoint}`;
      const { stalls, done } = replay(storageConsumer({ from, to: url, once: true, checkpointDatabase: db, retry: { minDelayMs: 1, maxDelayMs: 5 } }));
      await done;
      expect(stalls).to.have.length(9);
      expect(stalls[0]).to.include({ service: 'storage', target: 's3://outage/cdc?endpoint=' + s3proxy.endpoint, code: 'HTTP 503', unreachable: true });
      expect(await ids(db, 't')).to.deep.equal([1, 2]);
    } finally {
      process.env.AWS_ACCESS_KEY_ID = saved.id;
      process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
      if (saved.id === undefined) delete process.env.AWS_ACCESS_KEY_ID;
      if (saved.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
      await s3proxy?.stop();
      await s3rver.stop();
    }
  });

  it('a budget that runs out fails with the cause, the server and the budget, after stalls', async () => {
    const db = await freshDatabase(url, 'budget');
    const { storage } = await layout(db, 1, 1);
    const { host, port } = parseMysqlUri(url);
    proxy = await startTcpFaultProxy({ host, port }, 'refuse');
    const { stalls, done } = replay(storageConsumer({ from: storage, to: proxied(proxy.port), once: true, checkpointDatabase: db, retryForMs: 300, retry: { minDelayMs: 10, maxDelayMs: 50 } }));
    const error = await rejectionOf(done);
    expect(error).to.be.instanceOf(MysqlError);
    expect(error.message).to.contain(`MySQL at 127.0.0.1:${proxy.port} kept failing (ECONNREFUSED)`).and.contain('retryForMs 300 ms').and.contain('ECONNREFUSED');
    expect(stalls.length).to.be.at.least(2);
    expect(stalls.every((s) => s.elapsedMs <= 300)).to.equal(true);
  });

  it('retryForMs 0: the first connection error fails at once, without a stall', async () => {
    const db = await freshDatabase(url, 'nobudget');
    const { storage } = await layout(db, 1, 1);
    const { host, port } = parseMysqlUri(url);
    proxy = await startTcpFaultProxy({ host, port }, 'refuse');
    const { stalls, done } = replay(storageConsumer({ from: storage, to: proxied(proxy.port), once: true, checkpointDatabase: db, retryForMs: 0 }));
    const error = await rejectionOf(done);
    expect(error.message).to.contain('ECONNREFUSED');
    expect(stalls).to.deep.equal([]);
  });

  it('an error that is not an outage (access denied) fails at once, without retries', async () => {
    const db = await freshDatabase(url, 'denied');
    const { storage } = await layout(db, 1, 1);
    const denied = url.replace(/^mysql:\/\/([^:@/]+)(:[^@/]*)?@/, 'mysql://nobody_$1:wrong@');
    const { stalls, done } = replay(storageConsumer({ from: storage, to: denied, once: true, checkpointDatabase: db }));
    const error = await rejectionOf(done);
    expect(error.message).to.contain('Access denied').and.not.contain('wrong@');
    expect(stalls).to.deep.equal([]);
  });
});
