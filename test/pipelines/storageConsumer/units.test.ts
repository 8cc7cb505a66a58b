import { expect } from 'chai';
import { createPool } from 'mysql2/promise';
import { decodeSchemaFile, encodeCanalJsonRows, encodeCsvRows, encodeSchemaFile, type RowChange, type TableDef } from '../../../lib/codec/index.ts';
import { MemoryStorage } from '../../../lib/storage/memoryStorage.ts';
import type { ExternalStorage, ListOptions } from '../../../lib/storage/storage.ts';
import { alterFromDiff, createTableSql, planDdl, UnsupportedDdlError } from '../../../pipelines/storageConsumer/ddl.ts';
import { decodeDataFile } from '../../../pipelines/storageConsumer/decodeFile.ts';
import { Discovery } from '../../../pipelines/storageConsumer/discovery.ts';
import { classifyKey, parseIndexPath } from '../../../pipelines/storageConsumer/pathKey.ts';
import { planRound, type AppliedState } from '../../../pipelines/storageConsumer/roundPlan.ts';
import { tableWriter, writeRows } from '../../../pipelines/storageConsumer/rowWriter.ts';
import { freshDatabase, sharedMariaDb } from '../../support/mariadb.ts';
import { serviceOrSkip } from '../../support/services.ts';
import { ddl, def, insert, putDataFiles, putMetadata, putSchema } from './layout.ts';

const NOTHING_APPLIED: AppliedState = { ddlVersion: () => undefined, position: () => undefined };

describe('storageConsumer pieces', () => {
  describe('pathKey', () => {
    it('classifies schema, index and data keys and reads folders (date, partition, dispatcher)', () => {
      expect(classifyKey('metadata')).to.deep.equal({ kind: 'metadata' });
      expect(classifyKey('s/t/meta/schema_5_0000000001.json')).to.deep.include({ kind: 'schema' });
      expect(classifyKey('s/meta/schema_5_0000000001.json')).to.deep.equal({ kind: 'schema', ref: { path: 's/meta/schema_5_0000000001.json', schema: 's', tableVersion: 5n, checksum: 1 } });
      expect(classifyKey('s/t/5/2024-05-01/CDC000001.csv')).to.deep.equal({ kind: 'data', folderPath: 's/t/5/2024-05-01' });
      expect(parseIndexPath('s/t/5/77/2024-05/meta/CDC_d1.index')).to.deep.include({ tableVersion: 5n, partitionId: '77', date: '2024-05', dispatcherId: 'd1', folderPath: 's/t/5/77/2024-05' });
      expect(parseIndexPath('s/t/5/meta/CDC.index')).to.deep.include({ date: '', folderPath: 's/t/5' });
      expect(() => parseIndexPath('s/t/x5/meta/CDC.index')).to.throw(/not a number/);
      expect(() => classifyKey('s/t/meta/schema_5_1.json')).to.throw(/not a schema file name/);
    });
  });

  describe('planRound (FORMATS.md order)', () => {
    const ref = (table: string, v: bigint) => ({ path: `s/${table}/meta/schema_${v}_0000000000.json`, schema: 's', table, tableVersion: v, checksum: 0 });
    const folder = (table: string, v: bigint, date: string, newestIndex: number) => ({
      folder: { indexPath: `s/${table}/${v}/${date}/meta/CDC.index`, folderPath: `s/${table}/${v}/${date}`, schema: 's', table, tableVersion: v, date },
      newestName: `CDC${String(newestIndex).padStart(6, '0')}.csv`,
      newestIndex,
    });

    it('orders by table version, DDL before its DML, then date, then table, then file index', () => {
      const plan = planRound([ref('b', 10n), ref('a', 10n), ref('a', 20n)], [folder('a', 20n, '2024-05-02', 0), folder('a', 10n, '2024-05-02', 0), folder('a', 10n, '2024-05-01', 1), folder('b', 10n, '2024-05-01', 0)], NOTHING_APPLIED);
      expect(plan.items.map((i) => (i.kind === 'ddl' ? `ddl ${i.tableKey}@${i.tableVersion}` : i.path))).to.deep.equal([
        'ddl s/a@10',
        'ddl s/b@10',
        's/a/10/2024-05-01/CDC000000.csv',
        's/a/10/2024-05-01/CDC000001.csv',
        's/b/10/2024-05-01/CDC000000.csv',
        's/a/10/2024-05-02/CDC000000.csv',
        'ddl s/a@20',
        's/a/20/2024-05-02/CDC000000.csv',
      ]);
    });

    it('skips what is applied and holds a version whose schema file is not there yet', () => {
      const state: AppliedState = {
        ddlVersion: (key) => (key === 's/a' ? 10n : undefined),
        position: (key) => (key === 's/a' ? { tableVersion: 10n, date: '2024-05-01', fileIndex: 1, commitTs: 15n } : undefined),
      };
      const plan = planRound([ref('a', 10n)], [folder('a', 10n, '2024-05-01', 3), folder('a', 30n, '2024-05-01', 0), folder('a', 5n, '2024-05-01', 9)], state);
      expect(plan.items.map((i) => (i.kind === 'data' ? i.path : 'ddl'))).to.deep.equal(['s/a/10/2024-05-01/CDC000002.csv', 's/a/10/2024-05-01/CDC000003.csv']);
      expect(plan.missingSchema.map((f) => f.tableVersion)).to.deep.equal([30n]);
    });
  });

  describe('planDdl (DDL translation)', () => {
    const t1 = def('s', 't', 100n);
    const content = (event: Parameters<typeof encodeSchemaFile>[0]) => {
      const file = encodeSchemaFile(event);
      return { content: decodeSchemaFile(file.text, file.path), path: file.path };
    };

    it('maps each supported DDL type to statements scoped to its database', () => {
      const cases: Array<[string, string, string | undefined, TableDef | undefined, string, string]> = [
        ['CREATE SCHEMA', 'CREATE DATABASE s', undefined, undefined, 'create-schema', 'CREATE DATABASE IF NOT EXISTS `s` DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin'],
        ['DROP SCHEMA', 'DROP DATABASE s', undefined, undefined, 'drop-schema', 'DROP DATABASE IF EXISTS `s`'],
        ['DROP TABLE', 'DROP TABLE t', 't', undefined, 'drop-table', 'DROP TABLE IF EXISTS `s`.`t`'],
        ['TRUNCATE TABLE', 'TRUNCATE TABLE t', 't', t1, 'truncate-table', 'TRUNCATE TABLE `s`.`t`'],
        ['RENAME TABLE', 'RENAME TABLE old_t TO `t`', 't', t1, 'rename-table', 'RENAME TABLE `s`.`old_t` TO `s`.`t`'],
        ['ADD COLUMN', 'ALTER TABLE t ADD COLUMN q INT', 't', t1, 'alter-table', 'ALTER TABLE t ADD COLUMN q INT'],
        ['ADD INDEX', 'CREATE INDEX i ON t (name)', 't', t1, 'alter-table', 'CREATE INDEX i ON t (name)'],
        ['DROP INDEX', '/* c */ ALTER TABLE t DROP INDEX i', 't', t1, 'alter-table', '/* c */ ALTER TABLE t DROP INDEX i'],
      ];
      for (const [type, query, table, tableDef, effect, statement] of cases) {
        const { content: c, path } = content(ddl(type, query, 's', table, 100n, tableDef));
        const plan = planDdl(c, path);
        expect(plan.effect, type).to.equal(effect);
        expect(plan.statements[plan.statements.length - 1], type).to.equal(statement);
        expect(plan.database).to.equal('s');
      }
      const created = planDdl(content(ddl('CREATE TABLE', 'CREATE TABLE t (id INT PRIMARY KEY)', 's', 't', 100n, t1)).content, 'p');
      expect(created.statements).to.deep.equal(['CREATE DATABASE IF NOT EXISTS `s` DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin', 'CREATE TABLE t (id INT PRIMARY KEY)']);
      expect([...created.alreadyApplied]).to.deep.equal([1050]);
    });

    it('refuses other DDL, and queries that do not match their type, naming file and statement', () => {
      for (const [type, query] of [['CREATE VIEW', 'CREATE VIEW v AS SELECT 1'], ['ADD COLUMN', 'DROP TABLE t'], ['CREATE TABLE', 'CREATE TABLE t AS SELECT 1'], ['RENAME TABLE', 'RENAME TABLE a TO b, c TO d']]) {
        const { content: c, path } = content(ddl(type!, query!, 's', 't', 100n, t1));
        expect(() => planDdl(c, path), type).to.throw(UnsupportedDdlError, path).with.property('statement', query);
      }
    });

    it('a schema file without a query: CREATE TABLE from its columns, or the column changes against the previous version', () => {
      const t2: TableDef = {
        ...t1,
        version: 200n,
        columns: [
          { name: 'id', type: 'INT', primaryKey: true, nullable: false },
          { name: 'name', type: 'VARCHAR', precision: 128 },
          { name: 'price', type: 'DECIMAL', precision: 10, scale: 2, unsigned: true, default: '0.00' },
          { name: 'kind', type: 'ENUM', elems: ['a', "b'c"] },
          { name: 'at', type: 'DATETIME', scale: 3 },
        ],
      };
      expect(createTableSql(t2)).to.equal(
        "CREATE TABLE IF NOT EXISTS `s`.`t` (`id` INT NOT NULL, `name` VARCHAR(128), `price` DECIMAL(10,2) UNSIGNED DEFAULT '0.00', `kind` ENUM('a','b\\'c'), `at` DATETIME(3), PRIMARY KEY (`id`))",
      );
      const t3: TableDef = { ...t2, version: 300n, columns: t2.columns.filter((c) => c.name !== 'kind').concat([{ name: 'note', type: 'TEXT' }]) };
      expect(alterFromDiff(t2, t3)).to.deep.equal(['ALTER TABLE `s`.`t` DROP COLUMN `kind`', 'ALTER TABLE `s`.`t` ADD COLUMN `note` TEXT AFTER `at`']);
      const file = content(t3);
      expect(planDdl(file.content, file.path, t2).statements).to.deep.equal(alterFromDiff(t2, t3));
      expect(planDdl(file.content, file.path).statements[1]).to.match(/^CREATE TABLE IF NOT EXISTS/);
    });
  });

  describe('Discovery', () => {
    /** Counts the storage calls a round makes. */
    function counting(storage: ExternalStorage) {
      const calls = { list: 0, listed: 0, get: [] as string[] };
      const wrapped: ExternalStorage = {
        uri: storage.uri,
        put: (k, d) => storage.put(k, d),
        exists: (k) => storage.exists(k),
        delete: (k) => storage.delete(k),
        close: () => storage.close(),
        get: (k) => {
          calls.get.push(k);
          return storage.get(k);
        },
        list: (prefix: string, options?: ListOptions) => {
          calls.list++;
          const inner = storage.list(prefix, options);
          return (async function* () {
            for await (const key of inner) {
              calls.listed++;
              yield key;
            }
          })();
        },
      };
      return { wrapped, calls };
    }

    it('lists on the first round without walking data files; a round with nothing new reads only index and metadata files; a moved checkpoint lists again', async () => {
      const storage = new MemoryStorage();
      const tables = [def('s', 'a', 10n), def('s', 'b', 10n)];
      for (const table of tables) {
        await putSchema(storage, table);
        await putDataFiles(storage, table, Array.from({ length: 40 }, (_, i) => [insert(table, 11n + BigInt(i), { id: i, name: 'x' })]));
      }
      await putMetadata(storage, 100n);
      const { wrapped, calls } = counting(storage);
      const discovery = new Discovery(wrapped, { relistIntervalMs: 60_000, readConcurrency: 4, now: () => 0 });
      const done = { schemaFileDone: () => false, folderDone: () => false };
      const first = await discovery.round(done);
      expect(first.listed).to.equal(true);
      expect(first.folders.map((f) => f.newestIndex)).to.deep.equal([39, 39]);
      expect(first.schemaFiles).to.have.length(2);
      expect(calls.listed, 'keys listed (80 data files exist)').to.be.lessThan(20);

      calls.list = 0;
      calls.get = [];
      const quiet = await discovery.round(done);
      expect(quiet.listed).to.equal(false);
      expect(calls.list).to.equal(0);
      expect(calls.get.sort()).to.deep.equal(['metadata', 's/a/10/2024-05-01/meta/CDC.index', 's/b/10/2024-05-01/meta/CDC.index']);

      const c = def('s', 'c', 50n);
      await putSchema(storage, c);
      await putDataFiles(storage, c, [[insert(c, 51n, { id: 1, name: 'x' })]]);
      await putMetadata(storage, 200n);
      const moved = await discovery.round({ schemaFileDone: () => false, folderDone: (f) => f.table === 'a' });
      expect(moved.listed).to.equal(true);
      expect(moved.folders.map((f) => f.folder.table).sort()).to.deep.equal(['b', 'c']);
    });
  });

  describe('values: decode (csv, canal-json) and write to MariaDB', function () {
    this.timeout(30_000);
    let url: string;
    before(async function () {
      this.timeout(40_000);
      url = (await serviceOrSkip(this, 'mariadb', sharedMariaDb)).url;
    });

    it('NULL, binary, decimals, dates and times, unsigned, JSON, strings with commas, quotes and newlines come back equal', async () => {
      const db = await freshDatabase(url, 'values');
      const table: TableDef = {
        schema: db,
        table: 'v',
        version: 1n,
        columns: [
          { name: 'id', type: 'INT', primaryKey: true, nullable: false },
          { name: 's', type: 'VARCHAR', precision: 64 },
          { name: 'b', type: 'VARBINARY', precision: 16 },
          { name: 'd', type: 'DECIMAL', precision: 30, scale: 10 },
          { name: 'dt', type: 'DATETIME', scale: 6 },
          { name: 'day', type: 'DATE' },
          { name: 'tm', type: 'TIME' },
          { name: 'u', type: 'BIGINT', unsigned: true },
          { name: 'j', type: 'JSON' },
          { name: 'f', type: 'DOUBLE' },
          { name: 'e', type: 'ENUM', elems: ['x', 'y,z'] },
        ],
      };
      const values = [
        { id: 1, s: 'a,b "c"\r\nd\\e \'f\' \\N', b: new Uint8Array([0, 10, 13, 34, 44, 255]), d: '-12345678901234567890.0123456789', dt: '2024-05-01 23:59:59.123456', day: '1999-12-31', tm: '-838:59:59', u: 18446744073709551615n, j: '{"a": [1, "x,y\\n"]}', f: 1e-7, e: 'y,z' },
        { id: 2, s: null, b: null, d: null, dt: null, day: null, tm: null, u: null, j: null, f: null, e: null },
        { id: 3, s: '', b: new Uint8Array(), d: '0.0000000000', dt: '1970-01-01 00:00:00.000000', day: '2024-02-29', tm: '00:00:00', u: 0n, j: '[]', f: 12345.678, e: 'x' },
      ];
      const rows: RowChange[] = values.map((columns, i) => insert(table, 10n + BigInt(i), columns));
      const pool = createPool({ uri: url, supportBigNumbers: true, bigNumberStrings: true, dateStrings: true, connectionLimit: 1 });
      try {
        await pool.query(`CREATE DATABASE \`${db}\` DEFAULT CHARACTER SET utf8mb4`);
        await pool.query(
          `CREATE TABLE \`${db}\`.v (id INT PRIMARY KEY, s VARCHAR(64), b VARBINARY(16), d DECIMAL(30,10), dt DATETIME(6), day DATE, tm TIME, u BIGINT UNSIGNED, j JSON, f DOUBLE, e ENUM('x','y,z'))`,
        );
        for (const [protocol, text] of [['csv', encodeCsvRows(rows, table, { includeCommitTs: true })], ['json', encodeCanalJsonRows(rows, table)]] as const) {
          const decoded = decodeDataFile(new TextEncoder().encode(text), `${db}/v/1/CDC000000.${protocol}`, table, { includeCommitTs: true, outputOldValue: false });
          const connection = await pool.getConnection();
          try {
            await connection.query(`DELETE FROM \`${db}\`.v`);
            await writeRows(connection, tableWriter(table, 'schema'), decoded, { path: protocol, skipBelowTs: undefined, maxRowsPerStatement: 2, maxStatementBytes: 1 << 20 });
          } finally {
            connection.release();
          }
          const [back] = await pool.query(`SELECT id, s, HEX(b) b, d, dt, day, tm, u, CONCAT(j) j, f, e FROM \`${db}\`.v ORDER BY id`);
          const hex = (v: Uint8Array | null) => (v === null ? null : Buffer.from(v).toString('hex').toUpperCase());
          expect(back, protocol).to.deep.equal(
            values.map((v) => ({ ...v, b: hex(v.b), u: v.u === null ? null : String(v.u), j: v.j === null ? null : v.j })),
          );
        }
      } finally {
        await pool.end();
      }
    });
  });
});
