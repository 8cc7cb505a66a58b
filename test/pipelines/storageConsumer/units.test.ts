import { expect } from 'chai';
import { createPool } from 'mysql2/promise';
import { decodeSchemaFile, encodeCanalJsonRows, encodeCsvRows, encodeSchemaFile, type RowChange, type TableDef } from '../../../lib/codec/index.ts';
import { MemoryStorage } from '../../../lib/storage/memoryStorage.ts';
import type { ExternalStorage, ListOptions } from '../../../lib/storage/storage.ts';
import { alterFromDiff, createTableSql, planDdl, UnsupportedDdlError } from '../../../pipelines/storageConsumer/ddl.ts';
import { decodeDataFile } from '../../../pipelines/storageConsumer/decodeFile.ts';
import { Discovery, type DoneFilter } from '../../../pipelines/storageConsumer/discovery.ts';
import { DecodeError } from '../../../lib/codec/changeEvent.ts';
import type { DateSeparator, FolderLayout } from '../../../lib/codec/layout.ts';
import { classifyKey, parseIndexPath, type IndexFolder } from '../../../pipelines/storageConsumer/pathKey.ts';
import { fileApplied, folderDone, planRound, schemaFileDone, type AppliedState } from '../../../pipelines/storageConsumer/roundPlan.ts';
import type { Position } from '../../../pipelines/storageConsumer/checkpointStore.ts';
import { tableWriter, writeRows } from '../../../pipelines/storageConsumer/rowWriter.ts';
import { freshDatabase, sharedMariaDb } from '../../support/mariadb.ts';
import { serviceOrSkip } from '../../support/services.ts';
import { ddl, def, insert, putDataFiles, putMetadata, putSchema } from './layout.ts';

const NOTHING_APPLIED: AppliedState = { ddlVersion: () => undefined, position: () => undefined };
/** TiCDC's default layout: date-separator day, enable-partition-separator true. */
const TICDC_DEFAULT: FolderLayout = { dateSeparator: 'day', enablePartitionSeparator: true };
const layoutOf = (dateSeparator: DateSeparator, enablePartitionSeparator: boolean): FolderLayout => ({ dateSeparator, enablePartitionSeparator });

describe('storageConsumer pieces', () => {
  describe('pathKey', () => {
    it('classifies schema, index and data keys and reads folders (date, partition, dispatcher)', () => {
      expect(classifyKey('metadata', TICDC_DEFAULT)).to.deep.equal({ kind: 'metadata' });
      expect(classifyKey('s/t/meta/schema_5_0000000001.json', TICDC_DEFAULT)).to.deep.include({ kind: 'schema' });
      expect(classifyKey('s/meta/schema_5_0000000001.json', TICDC_DEFAULT)).to.deep.equal({ kind: 'schema', ref: { path: 's/meta/schema_5_0000000001.json', schema: 's', tableVersion: 5n, checksum: 1 } });
      expect(classifyKey('s/t/5/2024-05-01/CDC000001.csv', TICDC_DEFAULT)).to.deep.equal({ kind: 'data', folderPath: 's/t/5/2024-05-01', name: 'CDC000001.csv' });
      expect(parseIndexPath('s/t/5/77/2024-05/meta/CDC_d1.index', layoutOf('month', true))).to.deep.include({ tableVersion: 5n, partitionId: '77', date: '2024-05', dispatcherId: 'd1', folderPath: 's/t/5/77/2024-05' });
      expect(parseIndexPath('s/t/5/meta/CDC.index', layoutOf('none', false))).to.deep.include({ date: '', folderPath: 's/t/5' });
      expect(() => parseIndexPath('s/t/x5/meta/CDC.index', layoutOf('none', false))).to.throw(/not a number/);
      expect(() => classifyKey('s/t/meta/schema_5_1.json', TICDC_DEFAULT)).to.throw(/not a schema file name/);
    });

    it("reads upstream's index file paths by the configured date separator (pingcap/ticdc pkg/cloudstorage path_test.go, path_key_test.go)", () => {
      // pingcap/ticdc pkg/cloudstorage/path_test.go TestGenerateAndParseIndexFilePath: "schema table with date"
      // (table across nodes) and "partition with date" (TableID 55, IsPartition, enable-partition-separator).
      expect(parseIndexPath('test/table1/5/2023-05-09/meta/CDC_0a1b.index', layoutOf('day', true))).to.deep.equal({
        indexPath: 'test/table1/5/2023-05-09/meta/CDC_0a1b.index',
        folderPath: 'test/table1/5/2023-05-09',
        schema: 'test',
        table: 'table1',
        tableVersion: 5n,
        date: '2023-05-09',
        dispatcherId: '0a1b',
      });
      expect(parseIndexPath('test/table1/5/55/2023-05-09/meta/CDC.index', layoutOf('day', true))).to.deep.include({ partitionId: '55', date: '2023-05-09', folderPath: 'test/table1/5/55/2023-05-09' });
      // pingcap/ticdc pkg/cloudstorage/path_key_test.go TestGenerateDMLFilePath: the folders of
      // schema1/table1/123456/2023-05-09/CDC_{id}_...010.csv and schema1/table1/123456/55/2023-05-09/CDC_{id}_...010.csv (day).
      expect(parseIndexPath('schema1/table1/123456/2023-05-09/meta/CDC.index', layoutOf('day', true))).to.deep.include({ tableVersion: 123456n, date: '2023-05-09' }).and.not.have.property('partitionId');
      expect(parseIndexPath('schema1/table1/123456/55/2023-05-09/meta/CDC.index', layoutOf('day', true))).to.deep.include({ tableVersion: 123456n, partitionId: '55', date: '2023-05-09' });
      // pingcap/ticdc pkg/cloudstorage/path_key_test.go TestParseIndexFilePathRejectsUnsupportedPath: all three refused.
      expect(() => parseIndexPath('test/binary_columns_dummy/2026-06-23/meta/CDC.index', layoutOf('day', true))).to.throw(DecodeError);
      expect(() => classifyKey('schema1/table1/123456/meta/notCDC.index', layoutOf('none', true))).to.throw(DecodeError, /is not an index file name/);
      expect(() => parseIndexPath('schema1/table1/123456/2023-05-09/meta/CDC.index', layoutOf('month', true))).to.throw(DecodeError, /date-separator=month .*it reads with date-separator=day \(date 2023-05-09\)/);
    });

    it('every date separator, with and without partitions: the configuration decides, never the shape', () => {
      const dates: Record<DateSeparator, string> = { none: '', year: '2024', month: '2024-05', day: '2024-05-01' };
      for (const separator of ['none', 'year', 'month', 'day'] as const) {
        const date = dates[separator];
        const plain = date === '' ? 's/t/5' : `s/t/5/${date}`;
        const partitioned = date === '' ? 's/t/5/1093' : `s/t/5/1093/${date}`;
        for (const partitions of [true, false]) {
          const layout = layoutOf(separator, partitions);
          const what = `${separator}, partitions ${partitions}`;
          const folder = parseIndexPath(`${plain}/meta/CDC.index`, layout);
          expect(folder, what).to.deep.include({ folderPath: plain, date }).and.not.have.property('partitionId');
          if (partitions) expect(parseIndexPath(`${partitioned}/meta/CDC.index`, layout), what).to.deep.include({ folderPath: partitioned, partitionId: '1093', date });
          else expect(() => parseIndexPath(`${partitioned}/meta/CDC.index`, layout), what).to.throw(DecodeError, /enable-partition-separator=true/);
        }
      }
    });

    it('a level the configuration does not expect fails naming the key and the setting that reads it', () => {
      // The case of issue 13: with date-separator=none, …/{version}/1093/ is a partition, never a year.
      expect(parseIndexPath('s/t/5/1093/meta/CDC.index', layoutOf('none', true))).to.deep.include({ partitionId: '1093', date: '' });
      expect(parseIndexPath('s/t/5/1093/meta/CDC.index', layoutOf('year', true))).to.deep.include({ date: '1093' }).and.not.have.property('partitionId');
      expect(() => parseIndexPath('s/t/5/1093/meta/CDC.index', layoutOf('none', false))).to.throw(
        DecodeError,
        's/t/5/1093/meta/CDC.index: one level after the table version ("1093"), but date-separator=none and enable-partition-separator=false expect none; ' +
          'it reads with enable-partition-separator=true (partition 1093) or with date-separator=year (date 1093): was the sink run with one of those? ' +
          "Pass the sink's settings (--date-separator, --enable-partition-separator)",
      );
      expect(() => parseIndexPath('s/t/5/meta/CDC.index', TICDC_DEFAULT)).to.throw(
        DecodeError,
        's/t/5/meta/CDC.index: no level after the table version, but date-separator=day and enable-partition-separator=true expect {date YYYY-MM-DD} or {partitionId}/{date YYYY-MM-DD}; ' +
          "it reads with date-separator=none (no partition, no date): was the sink run with that? Pass the sink's settings (--date-separator, --enable-partition-separator)",
      );
      expect(() => parseIndexPath('s/t/5/2024-05-01/meta/CDC.index', layoutOf('none', true))).to.throw(DecodeError, /it reads with date-separator=day \(date 2024-05-01\)/);
      expect(() => parseIndexPath('s/t/5/x/meta/CDC.index', TICDC_DEFAULT)).to.throw(DecodeError, /no date-separator or enable-partition-separator setting reads it/);
      expect(() => parseIndexPath('s/t/5/0093/meta/CDC.index', layoutOf('none', true)), 'a partition id has no leading zero').to.throw(DecodeError, /date-separator=year \(date 0093\)/);
      expect(() => parseIndexPath('s/t/5/9223372036854775808/meta/CDC.index', layoutOf('none', true)), 'past int64').to.throw(DecodeError);
    });
  });

  describe('planRound (FORMATS.md order)', () => {
    const ref = (table: string, v: bigint) => ({ path: `s/${table}/meta/schema_${v}_0000000000.json`, schema: 's', table, tableVersion: v, checksum: 0 });
    const folder = (table: string, v: bigint, date: string, newestIndex: number, partitionId?: string) => {
      const folderPath = [`s/${table}/${v}`, partitionId, date].filter((level) => level !== undefined && level !== '').join('/');
      const indexed: IndexFolder = { indexPath: `${folderPath}/meta/CDC.index`, folderPath, schema: 's', table, tableVersion: v, date };
      if (partitionId !== undefined) indexed.partitionId = partitionId;
      return { folder: indexed, newestName: `CDC${String(newestIndex).padStart(6, '0')}.csv`, newestIndex };
    };
    const paths = (plan: ReturnType<typeof planRound>) => plan.items.map((i) => (i.kind === 'ddl' ? `ddl ${i.tableKey}@${i.tableVersion}` : i.path));

    it('orders by table version, DDL before its DML, then date, then table, then file index; files from 1 to the index', () => {
      const plan = planRound([ref('b', 10n), ref('a', 10n), ref('a', 20n)], [folder('a', 20n, '2024-05-02', 1), folder('a', 10n, '2024-05-02', 1), folder('a', 10n, '2024-05-01', 2), folder('b', 10n, '2024-05-01', 1)], NOTHING_APPLIED);
      expect(paths(plan)).to.deep.equal([
        'ddl s/a@10',
        'ddl s/b@10',
        's/a/10/2024-05-01/CDC000001.csv',
        's/a/10/2024-05-01/CDC000002.csv',
        's/b/10/2024-05-01/CDC000001.csv',
        's/a/10/2024-05-02/CDC000001.csv',
        'ddl s/a@20',
        's/a/20/2024-05-02/CDC000001.csv',
      ]);
    });

    it('reads indexes 1..N: never a file 0', () => {
      // pingcap/ticdc cmd/storage-consumer/consumer.go diffDMLMaps: a new folder's range is start 1 to the index file's value.
      const plan = planRound([ref('a', 10n)], [folder('a', 10n, '2024-05-01', 3)], NOTHING_APPLIED);
      expect(plan.items.filter((i) => i.kind === 'data').map((i) => i.kind === 'data' && i.fileIndex)).to.deep.equal([1, 2, 3]);
    });

    it('orders partitions (by number, none first) before dates, as upstream CompareDMLPathKey', () => {
      // pingcap/ticdc pkg/cloudstorage/path_key.go CompareDMLPathKey: table version, partition, date, then table.
      const plan = planRound(
        [ref('a', 10n), ref('b', 10n)],
        [folder('a', 10n, '2024-05-02', 1, '1093'), folder('a', 10n, '2024-05-01', 1, '1093'), folder('a', 10n, '2024-05-02', 1, '99'), folder('b', 10n, '2024-05-03', 1)],
        NOTHING_APPLIED,
      );
      expect(paths(plan)).to.deep.equal([
        'ddl s/a@10',
        'ddl s/b@10',
        's/b/10/2024-05-03/CDC000001.csv',
        's/a/10/99/2024-05-02/CDC000001.csv',
        's/a/10/1093/2024-05-01/CDC000001.csv',
        's/a/10/1093/2024-05-02/CDC000001.csv',
      ]);
    });

    it('skips what is applied and holds a version whose schema file is not there yet', () => {
      const state: AppliedState = {
        ddlVersion: (key) => (key === 's/a' ? 10n : undefined),
        position: (key) => (key === 's/a' ? { tableVersion: 10n, date: '2024-05-01', fileIndex: 1, commitTs: 15n } : undefined),
      };
      const plan = planRound([ref('a', 10n)], [folder('a', 10n, '2024-05-01', 3), folder('a', 30n, '2024-05-01', 1), folder('a', 5n, '2024-05-01', 9)], state);
      expect(plan.items.map((i) => (i.kind === 'data' ? i.path : 'ddl'))).to.deep.equal(['s/a/10/2024-05-01/CDC000002.csv', 's/a/10/2024-05-01/CDC000003.csv']);
      expect(plan.missingSchema.map((f) => f.tableVersion)).to.deep.equal([30n]);
    });

    it('issue 13: date-separator none and five partitions are five streams; one applied partition skips nothing of the others', () => {
      const layout = layoutOf('none', true);
      const partitions = ['1093', '1094', '1095', '1096', '1097'];
      const folders = partitions.map((id) => ({ folder: parseIndexPath(`s/a/10/${id}/meta/CDC.index`, layout), newestName: 'CDC000002.csv', newestIndex: 2 }));
      const all = planRound([ref('a', 10n)], folders, NOTHING_APPLIED);
      const data = all.items.filter((i) => i.kind === 'data');
      expect(new Set(data.map((i) => i.kind === 'data' && i.stream)).size, 'streams').to.equal(5);
      expect(data.map((i) => i.kind === 'data' && i.path)).to.deep.equal(partitions.flatMap((id) => [`s/a/10/${id}/CDC000001.csv`, `s/a/10/${id}/CDC000002.csv`]));
      // Partition 1097 fully applied (its own stream's position); the four others are still planned whole.
      const applied = data.find((i) => i.kind === 'data' && i.folder.partitionId === '1097')!;
      const state: AppliedState = {
        ddlVersion: () => 10n,
        position: (_key, stream) => (applied.kind === 'data' && stream === applied.stream ? { tableVersion: 10n, date: '', fileIndex: 2, commitTs: 50n } : undefined),
      };
      const next = planRound([ref('a', 10n)], folders, state);
      expect(next.items.map((i) => i.kind === 'data' && i.path)).to.deep.equal(partitions.slice(0, 4).flatMap((id) => [`s/a/10/${id}/CDC000001.csv`, `s/a/10/${id}/CDC000002.csv`]));
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
      const discovery = new Discovery(wrapped, { relistIntervalMs: 60_000, readConcurrency: 4, now: () => 0, layout: TICDC_DEFAULT });
      const done = { schemaFileDone: () => false, folderDone: () => false, fileApplied: () => false };
      const first = await discovery.round(done);
      expect(first.listed).to.equal(true);
      expect(first.folders.map((f) => f.newestIndex)).to.deep.equal([40, 40]);
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
      const moved = await discovery.round({ schemaFileDone: () => false, folderDone: (f) => f.table === 'a', fileApplied: () => false });
      expect(moved.listed).to.equal(true);
      expect(moved.folders.map((f) => f.folder.table).sort()).to.deep.equal(['b', 'c']);
    });

    it('reads folders by its layout: date-separator none, five partitions are five folders', async () => {
      const storage = new MemoryStorage();
      const table = def('s', 'p', 10n);
      await putSchema(storage, table);
      for (const id of [1093n, 1094n, 1095n, 1096n, 1097n]) await putDataFiles(storage, table, [[insert(table, 11n, { id: Number(id), name: 'x' })]], 'csv', '', id);
      const discovery = new Discovery(storage, { relistIntervalMs: 60_000, readConcurrency: 4, now: () => 0, layout: layoutOf('none', true) });
      const round = await discovery.round({ schemaFileDone: () => false, folderDone: () => false, fileApplied: () => false });
      expect(round.folders.map((f) => [f.folder.partitionId, f.folder.date, f.newestIndex]).sort()).to.deep.equal([
        ['1093', '', 1],
        ['1094', '', 1],
        ['1095', '', 1],
        ['1096', '', 1],
        ['1097', '', 1],
      ]);
      const wrong = new Discovery(storage, { relistIntervalMs: 60_000, readConcurrency: 4, now: () => 0, layout: layoutOf('none', false) });
      const error = await wrong.round({ schemaFileDone: () => false, folderDone: () => false, fileApplied: () => false }).then(() => undefined, (e: unknown) => e);
      expect(error).to.be.instanceOf(DecodeError).with.property('message').that.matches(/^s\/p\/10\/1093\/meta\/CDC\.index: one level after the table version .*enable-partition-separator=true \(partition 1093\)/);
    });

    it('refuses a data file numbered 0 (named by an index file, or met by the listing), which TiCDC never reads', async () => {
      const table = def('s', 'z', 10n);
      const indexOnly = new MemoryStorage();
      await putSchema(indexOnly, table);
      await indexOnly.put('s/z/10/2024-05-01/meta/CDC.index', new TextEncoder().encode('CDC000000.csv\n'));
      const discovery = (storage: MemoryStorage) => new Discovery(storage, { relistIntervalMs: 60_000, readConcurrency: 4, now: () => 0, layout: TICDC_DEFAULT });
      const never = { schemaFileDone: () => false, folderDone: () => false, fileApplied: () => false };
      const named = await discovery(indexOnly).round(never).then(() => undefined, (e: unknown) => e);
      expect(named).to.be.instanceOf(DecodeError).with.property('message').that.matches(/^s\/z\/10\/2024-05-01\/meta\/CDC\.index: "CDC000000\.csv" is numbered 0, but TiCDC numbers .* from 1 .*read 1\.\.N/);
      // An old sluice layout across dispatchers: files 0..1, the index naming 1. Reading 1 alone would lose file 0 in silence.
      const old = new MemoryStorage();
      await putSchema(old, table);
      for (const name of ['CDC_d7_000000.csv', 'CDC_d7_000001.csv']) await old.put(`s/z/10/2024-05-01/${name}`, new TextEncoder().encode('"I","z","s",11,1,"a"\r\n'));
      await old.put('s/z/10/2024-05-01/meta/CDC_d7.index', new TextEncoder().encode('CDC_d7_000001.csv\n'));
      const listed = await discovery(old).round(never).then(() => undefined, (e: unknown) => e);
      expect(listed).to.be.instanceOf(DecodeError).with.property('message').that.matches(/^s\/z\/10\/2024-05-01\/CDC_d7_000000\.csv: "CDC_d7_000000\.csv" is numbered 0/);
      const plain = new MemoryStorage();
      await putSchema(plain, table);
      await putDataFiles(plain, table, [[insert(table, 12n, { id: 2, name: 'b' })]]);
      expect((await discovery(plain).round(never)).folders.map((f) => f.newestIndex), 'a TiCDC layout (1..N) passes').to.deep.equal([1]);
      await plain.put('s/z/10/2024-05-01/CDC000000.csv', new TextEncoder().encode('"I","z","s",11,1,"a"\r\n'));
      expect(await discovery(plain).round(never).then(() => undefined, (e: unknown) => e)).to.be.instanceOf(DecodeError).with.property('message').that.contains('CDC000000.csv: "CDC000000.csv" is numbered 0');
    });

    it('lets a file 0 pass once its stream applied it (an old layout an earlier replay read from 0), every round, and says what to do when not', async () => {
      const table = def('s', 'z', 10n);
      const old = new MemoryStorage();
      await putSchema(old, table);
      for (const name of ['CDC000000.csv', 'CDC000001.csv']) await old.put(`s/z/10/2024-05-01/${name}`, new TextEncoder().encode('"I","z","s",11,1,"a"\r\n'));
      await old.put('s/z/10/2024-05-01/meta/CDC.index', new TextEncoder().encode('CDC000001.csv\n'));
      const applied = (position: Position | undefined): DoneFilter & AppliedState => {
        const state: AppliedState = { ddlVersion: () => 10n, position: () => position };
        return { ...state, schemaFileDone: (ref) => schemaFileDone(ref, state), folderDone: (f) => folderDone(f, state), fileApplied: (f, index) => fileApplied(f, index, state) };
      };
      const at = (date: string, fileIndex: number): Position => ({ tableVersion: 10n, date, fileIndex, commitTs: 11n });
      const dataPaths = (plan: ReturnType<typeof planRound>) => plan.items.flatMap((i) => (i.kind === 'data' ? [i.path] : []));

      // The earlier consumer applied 0..1: nothing is refused, round after round, and nothing is left to apply.
      const whole = applied(at('2024-05-01', 1));
      const discovery = new Discovery(old, { relistIntervalMs: 0, readConcurrency: 4, now: () => 0, layout: TICDC_DEFAULT });
      for (const round of [1, 2]) {
        const found = await discovery.round(whole);
        expect(found.listed, `round ${round}`).to.equal(true);
        expect(found.folders.map((f) => f.newestIndex), `round ${round}`).to.deep.equal([1]);
        expect(dataPaths(planRound(found.schemaFiles, found.folders, whole)), `round ${round}`).to.deep.equal([]);
      }
      // It applied file 0 only: the files after it are replayed.
      const first = applied(at('2024-05-01', 0));
      const found = await new Discovery(old, { relistIntervalMs: 0, readConcurrency: 4, now: () => 0, layout: TICDC_DEFAULT }).round(first);
      expect(dataPaths(planRound(found.schemaFiles, found.folders, first))).to.deep.equal(['s/z/10/2024-05-01/CDC000001.csv']);
      // A position before the folder, or none: file 0 was never applied and would be lost.
      for (const position of [at('2024-04-30', 7), undefined]) {
        const refused = await new Discovery(old, { relistIntervalMs: 0, readConcurrency: 4, now: () => 0, layout: TICDC_DEFAULT }).round(applied(position)).then(() => undefined, (e: unknown) => e);
        expect(refused, JSON.stringify(position, (_, v) => (typeof v === 'bigint' ? String(v) : v))).to.be.instanceOf(DecodeError).with.property('message').that.matches(
          /^s\/z\/10\/2024-05-01\/CDC000000\.csv: "CDC000000\.csv" is numbered 0, .*no earlier replay into this database applied it\. .*To replay it, either rename the data files .* one number up, highest first .*or write the changes again with the current sink/,
        );
      }
      // An index file naming file 0, applied: passes, nothing planned.
      const indexOnly = new MemoryStorage();
      await putSchema(indexOnly, table);
      await indexOnly.put('s/z/10/2024-05-01/meta/CDC.index', new TextEncoder().encode('CDC000000.csv\n'));
      const zeroOnly = await new Discovery(indexOnly, { relistIntervalMs: 0, readConcurrency: 4, now: () => 0, layout: TICDC_DEFAULT }).round(applied(at('2024-05-01', 0)));
      expect(zeroOnly.folders.map((f) => f.newestIndex)).to.deep.equal([0]);
      expect(dataPaths(planRound(zeroOnly.schemaFiles, zeroOnly.folders, applied(at('2024-05-01', 0))))).to.deep.equal([]);
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
          const decoded = decodeDataFile(new TextEncoder().encode(text), `${db}/v/1/CDC000001.${protocol}`, table, { includeCommitTs: true, outputOldValue: false });
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
