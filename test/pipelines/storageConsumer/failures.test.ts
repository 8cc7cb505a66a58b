import { expect } from 'chai';
import { createPool, type Pool } from 'mysql2/promise';
import { lastValueFrom, toArray } from 'rxjs';
import { DecodeError } from '../../../lib/codec/index.ts';
import { MemoryStorage } from '../../../lib/storage/memoryStorage.ts';
import { ApplyError } from '../../../pipelines/storageConsumer/rowWriter.ts';
import { storageConsumer } from '../../../pipelines/storageConsumer/storageConsumer.ts';
import { UnsupportedDdlError } from '../../../pipelines/storageConsumer/ddl.ts';
import { freshDatabase, sharedMariaDb } from '../../support/mariadb.ts';
import { serviceOrSkip } from '../../support/services.ts';
import { rejectionOf } from '../../support/waiting.ts';
import { ddl, def, insert, putDataFiles, putMetadata, putSchema } from './layout.ts';

const T = 1n << 40n;

describe('storageConsumer: bad input and DDL kinds (MariaDB)', function () {
  this.timeout(30_000);
  let url: string;
  let pool: Pool;

  before(async function () {
    this.timeout(40_000);
    url = (await serviceOrSkip(this, 'mariadb', sharedMariaDb)).url;
    pool = createPool({ uri: url, connectionLimit: 2, dateStrings: true });
  });
  after(async () => {
    await pool?.end();
  });

  /** A storage with table `db.t`: CREATE TABLE at T, then `files` of two rows each. */
  async function tableWithFiles(db: string, files: number) {
    const storage = new MemoryStorage();
    const table = def(db, 't', T);
    await putSchema(storage, ddl('CREATE TABLE', 'CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(64))', db, 't', T, table));
    const rows = Array.from({ length: files }, (_, f) => [insert(table, T + BigInt(10 * f + 1), { id: 2 * f, name: `a${f}` }), insert(table, T + BigInt(10 * f + 2), { id: 2 * f + 1, name: `b,"${f}"\n` })]);
    const paths = await putDataFiles(storage, table, rows);
    await putMetadata(storage, T + 1000n);
    return { storage, table, paths };
  }

  const replay = (storage: MemoryStorage, db: string) =>
    lastValueFrom(storageConsumer({ from: storage, to: url, once: true, checkpointDatabase: db, csv: { includeCommitTs: true } }).pipe(toArray()));
  const ids = async (db: string) => ((await pool.query(`SELECT id FROM \`${db}\`.t ORDER BY id`))[0] as Array<{ id: number }>).map((r) => r.id);

  it('a malformed data file: a DecodeError naming file and line; earlier files applied, nothing of it', async () => {
    const db = await freshDatabase(url, 'bad');
    const { storage, paths } = await tableWithFiles(db, 3);
    await storage.put(paths[1]!, new TextEncoder().encode('"I","t","x",5,1,"ok"\r\n"I","t",broken"\r\n'));
    const error = await rejectionOf(replay(storage, db));
    expect(error).to.be.instanceOf(DecodeError);
    expect(error.message).to.contain(`${paths[1]} line 2`);
    expect(await ids(db)).to.deep.equal([0, 1]);
  });

  it('a data file named by the index but missing: an error naming it; nothing after it applied', async () => {
    const db = await freshDatabase(url, 'gone');
    const { storage, paths } = await tableWithFiles(db, 3);
    await storage.delete(paths[1]!);
    const error = await rejectionOf(replay(storage, db));
    expect(error).to.be.instanceOf(DecodeError);
    expect(error.message).to.contain(paths[1]).and.contain('missing');
    expect(await ids(db)).to.deep.equal([0, 1]);
    // Once the file is back, the replay resumes after file 0 and completes.
    const again = await tableWithFiles(db, 3);
    await storage.put(paths[1]!, (await again.storage.get(paths[1]!))!);
    await replay(storage, db);
    expect(await ids(db)).to.deep.equal([0, 1, 2, 3, 4, 5]);
  });

  it('a schema file whose content does not match its checksum: a clear error before anything is applied', async () => {
    const db = await freshDatabase(url, 'sum');
    const { storage } = await tableWithFiles(db, 1);
    const [schemaPath] = await (async () => {
      const keys: string[] = [];
      for await (const key of storage.list(`${db}/t/meta/`)) keys.push(key);
      return keys;
    })();
    const text = new TextDecoder().decode((await storage.get(schemaPath!))!);
    await storage.put(schemaPath!, new TextEncoder().encode(text.replace('"VARCHAR"', '"TEXT"')));
    const error = await rejectionOf(replay(storage, db));
    expect(error.message).to.contain(schemaPath).and.contain('checksum mismatch');
    const [tables] = await pool.query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME <> 'replay_checkpoint'", [db]);
    expect(tables).to.deep.equal([]);
  });

  it('a row the server refuses: an ApplyError naming file and record; that file rolled back whole', async () => {
    const db = await freshDatabase(url, 'refuse');
    const storage = new MemoryStorage();
    const table = def(db, 't', T);
    await putSchema(storage, ddl('CREATE TABLE', 'CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(4))', db, 't', T, table));
    const paths = await putDataFiles(storage, table, [[insert(table, T + 1n, { id: 1, name: 'ok' })], [insert(table, T + 2n, { id: 2, name: 'ok' }), insert(table, T + 3n, { id: 3, name: 'far too long' })]]);
    const error = await rejectionOf(lastValueFrom(storageConsumer({ from: storage, to: url, once: true, checkpointDatabase: db, csv: { includeCommitTs: true } })));
    expect(error).to.be.instanceOf(ApplyError);
    expect(error.message).to.contain(`${paths[1]} record 2`);
    expect(await ids(db)).to.deep.equal([1]);
  });

  it('an unsupported DDL stops the consumer naming the schema file and the statement', async () => {
    const db = await freshDatabase(url, 'view');
    const storage = new MemoryStorage();
    await putSchema(storage, ddl('CREATE SCHEMA', `CREATE DATABASE ${db}`, db, undefined, T));
    const path = await putSchema(storage, ddl('CREATE VIEW', 'CREATE VIEW v AS SELECT 1', db, 'v', T + 5n));
    const error = await rejectionOf(replay(storage, db));
    expect(error).to.be.instanceOf(UnsupportedDdlError);
    expect(error.message).to.contain(path).and.contain('CREATE VIEW v AS SELECT 1');
  });

  it('replays create/drop database, create/drop/truncate/rename table, add/drop/modify column, add/drop index', async () => {
    const db = await freshDatabase(url, 'ddl');
    const other = `${db}_gone`;
    const storage = new MemoryStorage();
    let ts = T;
    const v = () => (ts += 100n);
    await putSchema(storage, ddl('CREATE SCHEMA', `CREATE DATABASE ${db}`, db, undefined, v()));
    await putSchema(storage, ddl('CREATE SCHEMA', `CREATE DATABASE ${other}`, other, undefined, v()));
    const a1 = def(db, 'a', v());
    await putSchema(storage, ddl('CREATE TABLE', 'CREATE TABLE a (id INT PRIMARY KEY, name VARCHAR(64))', db, 'a', a1.version, a1));
    await putDataFiles(storage, a1, [[insert(a1, a1.version + 1n, { id: 1, name: 'one' }), insert(a1, a1.version + 2n, { id: 2, name: 'two' })]]);
    await putSchema(storage, ddl('TRUNCATE TABLE', 'TRUNCATE TABLE a', db, 'a', v(), { ...a1, version: ts }));
    const a2 = { ...a1, version: ts };
    await putDataFiles(storage, a2, [[insert(a2, a2.version + 1n, { id: 3, name: 'three' })]]);
    const a3 = def(db, 'a', v(), [{ name: 'qty', type: 'INT' }]);
    await putSchema(storage, ddl('ADD COLUMN', 'ALTER TABLE a ADD COLUMN qty INT', db, 'a', a3.version, a3));
    await putDataFiles(storage, a3, [[insert(a3, a3.version + 1n, { id: 4, name: 'four', qty: 4 })]], 'canal-json');
    const a4 = { ...a3, version: v() };
    await putSchema(storage, ddl('ADD INDEX', 'CREATE INDEX by_name ON a (name)', db, 'a', a4.version, a4));
    const a5 = { ...a3, version: v(), columns: a3.columns.map((c) => (c.name === 'name' ? { ...c, precision: 128 } : c)) };
    await putSchema(storage, ddl('MODIFY COLUMN', 'ALTER TABLE a MODIFY COLUMN name VARCHAR(128)', db, 'a', a5.version, a5));
    const a6 = { ...a5, version: v() };
    await putSchema(storage, ddl('DROP INDEX', 'DROP INDEX by_name ON a', db, 'a', a6.version, a6));
    const a7 = { ...a6, version: v(), columns: a6.columns.filter((c) => c.name !== 'qty') };
    await putSchema(storage, ddl('DROP COLUMN', 'ALTER TABLE a DROP COLUMN qty', db, 'a', a7.version, a7));
    const b = { ...a7, table: 'b', version: v() };
    await putSchema(storage, ddl('RENAME TABLE', `RENAME TABLE \`${db}\`.a TO \`${db}\`.b`, db, 'b', b.version, b));
    await putDataFiles(storage, b, [[insert(b, b.version + 1n, { id: 5, name: 'five' }), insert(b, b.version + 2n, { id: 3, name: 'three' }, 'delete')]]);
    const c = def(db, 'c', v());
    await putSchema(storage, ddl('CREATE TABLE', 'CREATE TABLE c (id INT PRIMARY KEY, name VARCHAR(64))', db, 'c', c.version, c));
    await putSchema(storage, ddl('DROP TABLE', 'DROP TABLE c', db, 'c', v()));
    await putSchema(storage, ddl('DROP SCHEMA', `DROP DATABASE ${other}`, other, undefined, v()));
    await putMetadata(storage, ts + 10n);

    const progress = await replay(storage, db);
    expect(progress.filter((p) => p.kind === 'ddl').map((p) => (p as { effect: string }).effect)).to.deep.equal([
      'create-schema', 'create-schema', 'create-table', 'truncate-table', 'alter-table', 'alter-table', 'alter-table', 'alter-table', 'alter-table', 'rename-table', 'create-table', 'drop-table', 'drop-schema',
    ]);
    const [tables] = await pool.query('SELECT TABLE_SCHEMA s, TABLE_NAME t FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (?, ?) AND TABLE_NAME <> \'replay_checkpoint\' ORDER BY 1, 2', [db, other]);
    expect(tables).to.deep.equal([{ s: db, t: 'b' }]);
    const [rows] = await pool.query(`SELECT * FROM \`${db}\`.b ORDER BY id`);
    expect(rows).to.deep.equal([{ id: 4, name: 'four' }, { id: 5, name: 'five' }]);
    const [columns] = await pool.query('SELECT COLUMN_TYPE c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = ?', [db, 'b', 'name']);
    expect(columns).to.deep.equal([{ c: 'varchar(128)' }]);

    // The last DDLs again, as after a crash between a DDL and its checkpoint row: no harm done.
    await pool.query(`DELETE FROM \`${db}\`.replay_checkpoint WHERE stream = '#ddl' AND table_name IN ('b', 'c', '')`);
    await replay(storage, db);
    const [after] = await pool.query(`SELECT * FROM \`${db}\`.b ORDER BY id`);
    expect(after).to.deep.equal([{ id: 4, name: 'four' }, { id: 5, name: 'five' }]);
  });
});
