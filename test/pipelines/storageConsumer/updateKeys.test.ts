/**
 * Updates that change a unique key or the primary key, and canal-json without the TiDB extension,
 * replayed into a throwaway MariaDB from TiCDC-shaped layouts and compared row by row with the
 * source's final state.
 *
 * The source is pingcap/ticdc tests/integration_tests/csv_storage_update_pk_clustered and
 * csv_storage_update_pk_nonclustered: data/prepare.sql (tables `update_pk (id PRIMARY KEY, pad)` and
 * `update_uk (id PRIMARY KEY, uk UNIQUE, pad)`, six rows each), data/run.sql (a key swap in one
 * transaction, two moves in one, one single move, one plain update), and result/changefeed*_{pk,uk}.res
 * (the csv rows TiCDC writes for each configuration: conf/changefeed*.toml). Those rows are used as
 * they are, with the schema `test` renamed to this test's database; `PRIMARY KEY CLUSTERED` /
 * `NONCLUSTERED` (TiDB syntax) is left out of the DDL MariaDB runs. The expected final state is
 * what run.sql leaves in the source (what check_sync_diff compares). Beyond upstream's cases: a
 * primary-key swap of one transaction cut across two data files (also with the consumer restarted
 * between them), and key changes in tables of every column type, those the old-image delete leaves
 * out of its check (FLOAT, DOUBLE, JSON) included.
 */
import { expect } from 'chai';
import { createPool, type Pool } from 'mysql2/promise';
import { lastValueFrom, toArray } from 'rxjs';
import { encodeCanalJsonRows } from '../../../lib/codec/canalJson.ts';
import type { ColumnValue, RowChange, TableDef } from '../../../lib/codec/changeEvent.ts';
import type { CsvOptions } from '../../../lib/codec/csv.ts';
import { dataFilePath, FIRST_FILE_INDEX, formatIndexFile, indexFilePath, metadataFile } from '../../../lib/codec/layout.ts';
import { MemoryStorage } from '../../../lib/storage/memoryStorage.ts';
import type { ConsumerProgress } from '../../../pipelines/storageConsumer/progress.ts';
import { storageConsumer } from '../../../pipelines/storageConsumer/storageConsumer.ts';
import { freshDatabase, sharedMariaDb } from '../../support/mariadb.ts';
import { serviceOrSkip } from '../../support/services.ts';
import { ddl, putSchema } from './layout.ts';

const UTF8 = new TextEncoder();
/** Below every commit ts of the upstream result files: the tables' version (their CREATE TABLE). */
const VERSION = 450250000000000000n;

// pingcap/ticdc tests/integration_tests/csv_storage_update_pk_*/data/prepare.sql, without CLUSTERED.
const CREATE_PK = 'CREATE TABLE `update_pk` (`id` int PRIMARY KEY, `pad` varchar(100) NOT NULL)';
const CREATE_UK = 'CREATE TABLE `update_uk` (`id` int PRIMARY KEY, `uk` int NOT NULL, `pad` varchar(100) NOT NULL, UNIQUE KEY `uk` (`uk`))';

// What data/run.sql leaves in the source.
const FINAL_PK = [
  { id: 1, pad: 'example2' },
  { id: 2, pad: 'example1' },
  { id: 30, pad: 'example10' },
  { id: 40, pad: 'example20' },
  { id: 200, pad: 'example100' },
  { id: 1000, pad: 'example1001' },
];
const FINAL_UK = [
  { id: 1, uk: 2, pad: 'example1' },
  { id: 2, uk: 1, pad: 'example2' },
  { id: 10, uk: 30, pad: 'example10' },
  { id: 20, uk: 40, pad: 'example20' },
  { id: 100, uk: 200, pad: 'example100' },
  { id: 1000, uk: 1000, pad: 'example1001' },
];

function tableDef(schema: string, table: 'update_pk' | 'update_uk'): TableDef {
  const columns: TableDef['columns'] = [{ name: 'id', type: 'INT', primaryKey: true, nullable: false }];
  if (table === 'update_uk') columns.push({ name: 'uk', type: 'INT', nullable: false });
  columns.push({ name: 'pad', type: 'VARCHAR', precision: 100, nullable: false });
  return { schema, table, version: VERSION, columns };
}

/** The rows of an upstream .res file (comments and blank lines dropped), in `schema`, ended by `terminator`. */
function resRows(text: string, schema: string, terminator = '\n'): string {
  return text
    .split('\n')
    .filter((line) => line.startsWith('"'))
    .map((line) => line.replace(',"test",', `,"${schema}",`) + terminator)
    .join('');
}

describe('storageConsumer: updates that change a key, canal-json without _tidb (MariaDB)', function () {
  this.timeout(60_000);
  let url: string;
  let pool: Pool;

  before(async function () {
    this.timeout(40_000);
    url = (await serviceOrSkip(this, 'mariadb', sharedMariaDb)).url;
    pool = createPool({ uri: url, supportBigNumbers: true, bigNumberStrings: true, connectionLimit: 2 });
  });
  after(async () => {
    await pool?.end();
  });

  /** Schema files of both tables, then each table's data files (texts) numbered from 1 with their index file. */
  async function layout(storage: MemoryStorage, schema: string, files: { update_pk?: string[]; update_uk?: string[] }, extension: '.csv' | '.json'): Promise<void> {
    await putSchema(storage, ddl('CREATE TABLE', CREATE_PK, schema, 'update_pk', VERSION, tableDef(schema, 'update_pk')));
    await putSchema(storage, ddl('CREATE TABLE', CREATE_UK, schema, 'update_uk', VERSION, tableDef(schema, 'update_uk')));
    for (const table of ['update_pk', 'update_uk'] as const) {
      const texts = files[table];
      if (texts === undefined) continue;
      await putFiles(storage, schema, table, texts, extension, FIRST_FILE_INDEX);
    }
    await storage.put('metadata', UTF8.encode(metadataFile(VERSION + (1n << 40n))));
  }

  async function putFiles(storage: MemoryStorage, schema: string, table: string, texts: string[], extension: '.csv' | '.json', first: number): Promise<void> {
    const folder = { schema, table, tableVersion: VERSION };
    let last = '';
    for (const [offset, text] of texts.entries()) {
      const path = dataFilePath({ ...folder, index: first + offset, extension, fileIndexWidth: 6 });
      await storage.put(path, UTF8.encode(text));
      last = path.slice(path.lastIndexOf('/') + 1);
    }
    await storage.put(indexFilePath(folder), UTF8.encode(formatIndexFile(last)));
  }

  const replay = (storage: MemoryStorage, schema: string, csv?: CsvOptions): Promise<ConsumerProgress[]> =>
    lastValueFrom(storageConsumer({ from: storage, to: url, once: true, checkpointDatabase: schema, dateSeparator: 'none', ...(csv ? { csv } : {}) }).pipe(toArray()));

  async function rows(schema: string, table: string): Promise<unknown[]> {
    const [result] = await pool.query(`SELECT * FROM \`${schema}\`.\`${table}\` ORDER BY id`);
    return result as unknown[];
  }

  describe('csv, TiCDC result files of csv_storage_update_pk_clustered and _nonclustered', () => {
    // output-raw-change-event = true, output-old-value = false: an update is one U row with no old
    // values (conf/changefeed3.toml). A unique-key swap as U rows collides on `uk` when applied as an
    // upsert by primary key; REPLACE displaces the row holding the unique key.
    const cases: Array<{ name: string; csv: CsvOptions; pk?: string; uk: string }> = [
      {
        name: 'U rows, unique-key swap (clustered changefeed3_uk.res; changefeed3_pk.res: pk changes already split into D/I by TiCDC)',
        csv: { terminator: '\n', includeCommitTs: true },
        // pingcap/ticdc tests/integration_tests/csv_storage_update_pk_clustered/result/changefeed3_pk.res
        pk: `"I","update_pk","test",450253245302439944,1,"example1"
"I","update_pk","test",450253245302439944,2,"example2"
"I","update_pk","test",450253245302439946,10,"example10"
"I","update_pk","test",450253245302439946,20,"example20"
"I","update_pk","test",450253245302439947,100,"example100"
"I","update_pk","test",450253245302439948,1000,"example1000"
"U","update_pk","test",450253245485940746,1,"example2"
"U","update_pk","test",450253245485940746,2,"example1"
"D","update_pk","test",450253245485940749,10,"example10"
"D","update_pk","test",450253245485940749,20,"example20"
"I","update_pk","test",450253245485940749,30,"example10"
"I","update_pk","test",450253245485940749,40,"example20"
"D","update_pk","test",450253245485940752,100,"example100"
"I","update_pk","test",450253245485940752,200,"example100"
"U","update_pk","test",450253245485940753,1000,"example1001"`,
        // pingcap/ticdc tests/integration_tests/csv_storage_update_pk_clustered/result/changefeed3_uk.res
        uk: `"I","update_uk","test",450253245446619144,1,1,"example1"
"I","update_uk","test",450253245446619144,2,2,"example2"
"I","update_uk","test",450253245446619146,10,10,"example10"
"I","update_uk","test",450253245446619146,20,20,"example20"
"I","update_uk","test",450253245446619147,100,100,"example100"
"I","update_uk","test",450253245446619148,1000,1000,"example1000"
"U","update_uk","test",450253245499047940,1,2,"example1"
"U","update_uk","test",450253245499047940,2,1,"example2"
"U","update_uk","test",450253245499047943,10,30,"example10"
"U","update_uk","test",450253245499047943,20,40,"example20"
"U","update_uk","test",450253245499047946,100,200,"example100"
"U","update_uk","test",450253245512155140,1000,1000,"example1001"`,
      },
      {
        name: 'D/I pairs, pk swap in any order (nonclustered changefeed2_pk.res, where TiCDC\'s consumer loses id=2) and uk swap (changefeed2_uk.res)',
        csv: { terminator: '\n', includeCommitTs: true, outputOldValue: true },
        // pingcap/ticdc tests/integration_tests/csv_storage_update_pk_nonclustered/result/changefeed2_pk.res
        pk: `"I","update_pk","test",450250823741472787,false,1,"example1"
"I","update_pk","test",450250823741472787,false,2,"example2"
"I","update_pk","test",450250823741472790,false,10,"example10"
"I","update_pk","test",450250823741472790,false,20,"example20"
"I","update_pk","test",450250823741472791,false,100,"example100"
"I","update_pk","test",450250823741472792,false,1000,"example1000"
"D","update_pk","test",450250823807270922,true,1,"example1"
"I","update_pk","test",450250823807270922,true,2,"example1"
"D","update_pk","test",450250823807270922,true,2,"example2"
"I","update_pk","test",450250823807270922,true,1,"example2"
"D","update_pk","test",450250823807270925,true,10,"example10"
"I","update_pk","test",450250823807270925,true,30,"example10"
"D","update_pk","test",450250823807270925,true,20,"example20"
"I","update_pk","test",450250823807270925,true,40,"example20"
"D","update_pk","test",450250823807270927,true,100,"example100"
"I","update_pk","test",450250823807270927,true,200,"example100"
"D","update_pk","test",450250823807270928,true,1000,"example1000"
"I","update_pk","test",450250823807270928,true,1000,"example1001"`,
        // pingcap/ticdc tests/integration_tests/csv_storage_update_pk_nonclustered/result/changefeed2_uk.res
        uk: `"I","update_uk","test",450250823780794385,false,1,1,"example1"
"I","update_uk","test",450250823780794385,false,2,2,"example2"
"I","update_uk","test",450250823780794387,false,10,10,"example10"
"I","update_uk","test",450250823780794387,false,20,20,"example20"
"I","update_uk","test",450250823780794389,false,100,100,"example100"
"I","update_uk","test",450250823780794390,false,1000,1000,"example1000"
"D","update_uk","test",450250823807270931,true,1,1,"example1"
"I","update_uk","test",450250823807270931,true,1,2,"example1"
"D","update_uk","test",450250823807270931,true,2,2,"example2"
"I","update_uk","test",450250823807270931,true,2,1,"example2"
"D","update_uk","test",450250823820115970,true,10,10,"example10"
"I","update_uk","test",450250823820115970,true,10,30,"example10"
"D","update_uk","test",450250823820115970,true,20,20,"example20"
"I","update_uk","test",450250823820115970,true,20,40,"example20"
"D","update_uk","test",450250823820115973,true,100,100,"example100"
"I","update_uk","test",450250823820115973,true,100,200,"example100"
"D","update_uk","test",450250823820115977,true,1000,1000,"example1000"
"I","update_uk","test",450250823820115977,true,1000,1000,"example1001"`,
      },
      {
        name: 'split and sorted D/I (clustered changefeed4_*.res: deletes first, then inserts, is-update false)',
        csv: { terminator: '\n', includeCommitTs: true, outputOldValue: true },
        // pingcap/ticdc tests/integration_tests/csv_storage_update_pk_clustered/result/changefeed4_uk.res
        uk: `"I","update_uk","test",450253245446619144,false,1,1,"example1"
"I","update_uk","test",450253245446619144,false,2,2,"example2"
"I","update_uk","test",450253245446619146,false,10,10,"example10"
"I","update_uk","test",450253245446619146,false,20,20,"example20"
"I","update_uk","test",450253245446619147,false,100,100,"example100"
"I","update_uk","test",450253245446619148,false,1000,1000,"example1000"
"D","update_uk","test",450253245499047940,false,1,1,"example1"
"D","update_uk","test",450253245499047940,false,2,2,"example2"
"I","update_uk","test",450253245499047940,false,1,2,"example1"
"I","update_uk","test",450253245499047940,false,2,1,"example2"
"D","update_uk","test",450253245499047943,false,10,10,"example10"
"D","update_uk","test",450253245499047943,false,20,20,"example20"
"I","update_uk","test",450253245499047943,false,10,30,"example10"
"I","update_uk","test",450253245499047943,false,20,40,"example20"
"D","update_uk","test",450253245499047946,false,100,100,"example100"
"I","update_uk","test",450253245499047946,false,100,200,"example100"
"D","update_uk","test",450253245512155140,true,1000,1000,"example1000"
"I","update_uk","test",450253245512155140,true,1000,1000,"example1001"`,
      },
    ];

    for (const c of cases) {
      it(`${c.name}: MariaDB ends equal to the source, and a second replay changes nothing`, async () => {
        const db = await freshDatabase(url, 'keys');
        const storage = new MemoryStorage();
        await layout(storage, db, { ...(c.pk ? { update_pk: [resRows(c.pk, db)] } : {}), update_uk: [resRows(c.uk, db)] }, '.csv');
        await replay(storage, db, c.csv);
        if (c.pk) expect(await rows(db, 'update_pk'), 'update_pk').to.deep.equal(FINAL_PK);
        expect(await rows(db, 'update_uk'), 'update_uk').to.deep.equal(FINAL_UK);
        const again = await replay(storage, db, c.csv);
        expect(again.filter((p) => p.kind === 'data')).to.deep.equal([]);
      });
    }

    it('TiCDC\'s default csv (no commit-ts column, U rows): the unique-key swap lands, one row per file applied in file order', async () => {
      // changefeed3_uk.res with include-commit-ts = false (TiCDC's default): the same rows without the
      // commit ts field, cut into one file per transaction.
      const db = await freshDatabase(url, 'keys');
      const storage = new MemoryStorage();
      const text = resRows(cases[0]!.uk, db).replace(/,"update_uk","([^"]+)",[0-9]+,/g, ',"update_uk","$1",');
      const lines = text.split(/(?<=\n)/);
      await layout(storage, db, { update_uk: [lines.slice(0, 6).join(''), lines.slice(6, 8).join(''), lines.slice(8, 10).join(''), lines.slice(10).join('')] }, '.csv');
      await replay(storage, db, { terminator: '\n', includeCommitTs: false });
      expect(await rows(db, 'update_uk')).to.deep.equal(FINAL_UK);
    });
  });

  describe('canal-json', () => {
    const PK = (db: string) => tableDef(db, 'update_pk');
    const row = (table: TableDef, op: RowChange['op'], commitTs: bigint, columns: Record<string, ColumnValue>, oldColumns?: Record<string, ColumnValue>): RowChange => ({
      kind: 'row', op, schema: table.schema, table: table.table, tableVersion: VERSION, commitTs, dispatcherId: 'd', columns, ...(oldColumns ? { oldColumns } : {}),
    });
    // data/run.sql of csv_storage_update_pk_nonclustered as canal-json UPDATEs with `old` (a
    // nonclustered key change is one row change upstream; output-raw-change-event keeps it one
    // UPDATE), the swap written in TiCDC's row order: row 1 (1 -> 2) before row 2 (2 -> 1).
    const pkRows = (t: TableDef): RowChange[] => [
      row(t, 'insert', 450250823741472787n, { id: 1, pad: 'example1' }),
      row(t, 'insert', 450250823741472787n, { id: 2, pad: 'example2' }),
      row(t, 'insert', 450250823741472790n, { id: 10, pad: 'example10' }),
      row(t, 'insert', 450250823741472790n, { id: 20, pad: 'example20' }),
      row(t, 'insert', 450250823741472791n, { id: 100, pad: 'example100' }),
      row(t, 'insert', 450250823741472792n, { id: 1000, pad: 'example1000' }),
      row(t, 'update', 450250823807270922n, { id: 2, pad: 'example1' }, { id: 1, pad: 'example1' }),
      row(t, 'update', 450250823807270922n, { id: 1, pad: 'example2' }, { id: 2, pad: 'example2' }),
      row(t, 'update', 450250823807270925n, { id: 30, pad: 'example10' }, { id: 10, pad: 'example10' }),
      row(t, 'update', 450250823807270925n, { id: 40, pad: 'example20' }, { id: 20, pad: 'example20' }),
      row(t, 'update', 450250823807270927n, { id: 200, pad: 'example100' }, { id: 100, pad: 'example100' }),
      row(t, 'update', 450250823807270928n, { id: 1000, pad: 'example1001' }, { id: 1000, pad: 'example1000' }),
    ];

    it('UPDATE with old that changes the primary key (with _tidb): the old row goes, the swap lands', async () => {
      const db = await freshDatabase(url, 'keys');
      const storage = new MemoryStorage();
      const t = PK(db);
      await layout(storage, db, { update_pk: [encodeCanalJsonRows(pkRows(t), t)] }, '.json');
      await replay(storage, db);
      expect(await rows(db, 'update_pk')).to.deep.equal(FINAL_PK);
    });

    it('without _tidb: files applied in order, no row skipped by commit ts, each file once, the checkpoint ts kept', async () => {
      const db = await freshDatabase(url, 'keys');
      const storage = new MemoryStorage();
      const t = PK(db);
      const all = pkRows(t);
      const plain = (list: RowChange[]) => encodeCanalJsonRows(list, t, { enableTidbExtension: false });
      // Files 1..3: the inserts, the swap, the rest. The rows carry no commit ts, so the consumer
      // cannot skip any: it relies on the file index alone.
      await layout(storage, db, { update_pk: [plain(all.slice(0, 6)), plain(all.slice(6, 8)), plain(all.slice(8))] }, '.json');
      const first = await replay(storage, db);
      expect(first.filter((p) => p.kind === 'data').map((p) => (p as { rows: number }).rows)).to.deep.equal([6, 2, 4]);
      expect(await rows(db, 'update_pk')).to.deep.equal(FINAL_PK);
      const [positions] = await pool.query(`SELECT file_index, commit_ts FROM \`${db}\`.replay_checkpoint WHERE table_name = 'update_pk' AND file_index >= 0`);
      expect(positions).to.deep.equal([{ file_index: '3', commit_ts: String(VERSION) }]);

      // File 4 arrives: only it is applied; its rows (older versions of id 1 and 2, as a sink rerun
      // would write them) are applied in file order, with nothing to skip them by.
      const rerun = [row(t, 'update', 1n, { id: 1, pad: 'again' }, { id: 1, pad: 'example2' }), row(t, 'delete', 1n, { id: 2, pad: 'example1' })];
      await putFiles(storage, db, 'update_pk', [plain(rerun)], '.json', FIRST_FILE_INDEX + 3);
      const second = await replay(storage, db);
      expect(second.filter((p) => p.kind === 'data').map((p) => (p as { path: string }).path)).to.deep.equal([`${db}/update_pk/${VERSION}/CDC000004.json`]);
      expect(await rows(db, 'update_pk')).to.deep.equal([{ id: 1, pad: 'again' }, ...FINAL_PK.slice(2)]);
    });

    // One transaction (one commit ts) cut across two data files: the sink cuts files by size,
    // interval or quota whatever the commit ts. File 1 inserts (1,'a') and (2,'b'); files 2 and 3
    // hold the swap "1 -> 2, 2 -> 1" of one transaction. Applying file 3's old-key delete by key
    // alone would remove the row file 2 wrote at id 2.
    const splitSwap = (t: TableDef): string[] =>
      [
        [row(t, 'insert', VERSION + 1n, { id: 1, pad: 'a' }), row(t, 'insert', VERSION + 1n, { id: 2, pad: 'b' })],
        [row(t, 'update', VERSION + 2n, { id: 2, pad: 'a' }, { id: 1, pad: 'a' })],
        [row(t, 'update', VERSION + 2n, { id: 1, pad: 'b' }, { id: 2, pad: 'b' })],
      ].map((list) => encodeCanalJsonRows(list, t));
    const SWAPPED = [{ id: 1, pad: 'b' }, { id: 2, pad: 'a' }];

    it('a primary-key swap of one transaction cut across two files: both rows land, and a second replay changes nothing', async () => {
      const db = await freshDatabase(url, 'keys');
      const storage = new MemoryStorage();
      await layout(storage, db, { update_pk: splitSwap(PK(db)) }, '.json');
      await replay(storage, db);
      expect(await rows(db, 'update_pk')).to.deep.equal(SWAPPED);
      const again = await replay(storage, db);
      expect(again.filter((p) => p.kind === 'data')).to.deep.equal([]);
    });

    it('the same swap with the consumer restarted between the two files: the new consumer applies file 3 only, both rows land', async () => {
      const db = await freshDatabase(url, 'keys');
      const storage = new MemoryStorage();
      const files = splitSwap(PK(db));
      await layout(storage, db, { update_pk: files.slice(0, 2) }, '.json');
      await replay(storage, db);
      expect(await rows(db, 'update_pk')).to.deep.equal([{ id: 2, pad: 'a' }]);
      await putFiles(storage, db, 'update_pk', files.slice(2), '.json', FIRST_FILE_INDEX + 2);
      const second = await replay(storage, db);
      expect(second.filter((p) => p.kind === 'data').map((p) => (p as { path: string }).path)).to.deep.equal([`${db}/update_pk/${VERSION}/CDC000003.json`]);
      expect(await rows(db, 'update_pk')).to.deep.equal(SWAPPED);
    });

    it('a key change in tables with FLOAT, DOUBLE and JSON columns (left out of the old-image check): the old row goes', async () => {
      const db = await freshDatabase(url, 'keys');
      const storage = new MemoryStorage();
      const mixed: TableDef = {
        schema: db,
        table: 'float_pk',
        version: VERSION,
        columns: [
          { name: 'id', type: 'INT', primaryKey: true, nullable: false },
          { name: 'f', type: 'FLOAT', nullable: false },
          { name: 'd', type: 'DOUBLE', nullable: false },
          { name: 'j', type: 'JSON' },
          { name: 'pad', type: 'VARCHAR', precision: 100, nullable: false },
        ],
      };
      // Nothing but the key compares exactly: the old-key delete is a delete by key.
      const floatOnly: TableDef = { schema: db, table: 'float_only', version: VERSION, columns: [mixed.columns[0]!, mixed.columns[1]!] };
      await putSchema(storage, ddl('CREATE TABLE', 'CREATE TABLE `float_pk` (`id` int PRIMARY KEY, `f` float NOT NULL, `d` double NOT NULL, `j` json, `pad` varchar(100) NOT NULL)', db, 'float_pk', VERSION, mixed));
      await putSchema(storage, ddl('CREATE TABLE', 'CREATE TABLE `float_only` (`id` int PRIMARY KEY, `f` float NOT NULL)', db, 'float_only', VERSION, floatOnly));
      const image = { f: 1.1, d: 0.1, j: '{"a": [1, 2.5]}', pad: 'x' };
      await putFiles(storage, db, 'float_pk', [encodeCanalJsonRows([
        row(mixed, 'insert', VERSION + 1n, { id: 1, ...image }),
        row(mixed, 'insert', VERSION + 1n, { id: 5, ...image, pad: 'stays' }),
      ], mixed), encodeCanalJsonRows([row(mixed, 'update', VERSION + 2n, { id: 2, ...image }, { id: 1, ...image })], mixed)], '.json', FIRST_FILE_INDEX);
      await putFiles(storage, db, 'float_only', [encodeCanalJsonRows([
        row(floatOnly, 'insert', VERSION + 1n, { id: 1, f: 1.1 }),
        row(floatOnly, 'update', VERSION + 2n, { id: 2, f: 1.1 }, { id: 1, f: 1.1 }),
      ], floatOnly)], '.json', FIRST_FILE_INDEX);
      await storage.put('metadata', UTF8.encode(metadataFile(VERSION + (1n << 40n))));
      await replay(storage, db);
      const [left] = await pool.query(`SELECT id, pad FROM \`${db}\`.float_pk ORDER BY id`);
      expect(left).to.deep.equal([{ id: 2, pad: 'x' }, { id: 5, pad: 'stays' }]);
      expect(await rows(db, 'float_only')).to.deep.equal([{ id: 2, f: 1.1 }]);
    });

    it('a key change in a table of every other column type (compared in the old-image check, a short BINARY(4) value padded as stored): the old row goes', async () => {
      const db = await freshDatabase(url, 'keys');
      const storage = new MemoryStorage();
      const types: TableDef = {
        schema: db,
        table: 'types_pk',
        version: VERSION,
        columns: [
          { name: 'id', type: 'INT', primaryKey: true, nullable: false },
          { name: 'ti', type: 'TINYINT' },
          { name: 'bu', type: 'BIGINT', unsigned: true },
          { name: 'de', type: 'DECIMAL', precision: 30, scale: 5 },
          { name: 'bits', type: 'BIT', precision: 8 },
          { name: 'c', type: 'CHAR', precision: 4 },
          { name: 'vc', type: 'VARCHAR', precision: 16 },
          { name: 't', type: 'TEXT' },
          { name: 'bin', type: 'BINARY', precision: 4 },
          { name: 'vb', type: 'VARBINARY', precision: 8 },
          { name: 'bl', type: 'BLOB' },
          { name: 'e', type: 'ENUM', elems: ['a', 'b,c'] },
          { name: 'st', type: 'SET', elems: ['x', 'y'] },
          { name: 'da', type: 'DATE' },
          { name: 'dt', type: 'DATETIME', precision: 6 },
          { name: 'ts', type: 'TIMESTAMP', precision: 3 },
          { name: 'tm', type: 'TIME' },
          { name: 'y', type: 'YEAR' },
          { name: 'n', type: 'VARCHAR', precision: 8 },
        ],
      };
      const create =
        'CREATE TABLE `types_pk` (`id` int PRIMARY KEY, `ti` tinyint, `bu` bigint unsigned, `de` decimal(30,5), `bits` bit(8), `c` char(4), ' +
        "`vc` varchar(16), `t` text, `bin` binary(4), `vb` varbinary(8), `bl` blob, `e` enum('a','b,c'), `st` set('x','y'), `da` date, " +
        '`dt` datetime(6), `ts` timestamp(3) NULL, `tm` time, `y` year, `n` varchar(8))';
      await putSchema(storage, ddl('CREATE TABLE', create, db, 'types_pk', VERSION, types));
      const image: Record<string, ColumnValue> = {
        ti: -5, bu: 18446744073709551615n, de: '123456789012345678901234.50000', bits: 5n, c: 'ab', vc: "It's", t: 'a\\b\n"c"', bin: new Uint8Array([1, 2]),
        vb: new Uint8Array([0, 255]), bl: new Uint8Array([0, 1, 2]), e: 'b,c', st: 'x,y', da: '2024-05-01', dt: '2024-05-01 12:00:00.123456',
        ts: '2024-05-01 12:00:00.123', tm: '-12:30:00', y: 2024, n: null,
      };
      await putFiles(storage, db, 'types_pk', [encodeCanalJsonRows([
        row(types, 'insert', VERSION + 1n, { id: 1, ...image }),
        row(types, 'update', VERSION + 2n, { id: 2, ...image }, { id: 1, ...image }),
      ], types)], '.json', FIRST_FILE_INDEX);
      await storage.put('metadata', UTF8.encode(metadataFile(VERSION + (1n << 40n))));
      await replay(storage, db);
      const [left] = await pool.query(`SELECT id, vc FROM \`${db}\`.types_pk ORDER BY id`);
      expect(left).to.deep.equal([{ id: 2, vc: "It's" }]);
    });

    it('refuses a file that mixes rows with and without _tidb, naming the file and line', async () => {
      const db = await freshDatabase(url, 'keys');
      const storage = new MemoryStorage();
      const t = PK(db);
      const all = pkRows(t);
      const mixed = encodeCanalJsonRows(all.slice(0, 2), t) + encodeCanalJsonRows(all.slice(2, 3), t, { enableTidbExtension: false });
      await layout(storage, db, { update_pk: [mixed] }, '.json');
      let failure: unknown;
      try {
        await replay(storage, db);
      } catch (error) {
        failure = error;
      }
      expect(String(failure)).to.contain(`${db}/update_pk/${VERSION}/CDC000001.json line 3: line 1 carries _tidb.commitTs but line 3 does not`);
    });
  });
});
