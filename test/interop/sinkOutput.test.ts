/**
 * Interop, sluice to TiCDC: `storageSink` run on events equivalent to an upstream test's input, its
 * files compared byte for byte with what TiCDC writes for them (test/interop/vectors), and every
 * folder it writes checked against a TiCDC consumer's numbering rule.
 *
 * Invariant guarded here: a real TiCDC consumer reads everything the sink writes. It reads indexes
 * 1..N of each data folder (N from the index file; pingcap/ticdc cmd/storage-consumer/consumer.go
 * `diffDMLMaps` starts at 1), so every folder must hold exactly CDC…1..N, the index file naming N;
 * and the bytes (csv records, schema files, index files, paths) must be TiCDC's for the same input.
 *
 * No clock is involved: the sink cuts files by size or at the end of the input (a minute-long flush
 * interval never fires), and dates come from the rows' commit ts.
 */
import { expect } from 'chai';
import { from, lastValueFrom, toArray } from 'rxjs';
import type { ChangeEvent, ColumnValue, DdlEvent, RowChange, TableDef } from '../../lib/codec/index.ts';
import { createAck } from '../../lib/core/ack.ts';
import { MemoryStorage } from '../../lib/storage/memoryStorage.ts';
import { decodeDataFile } from '../../pipelines/storageConsumer/decodeFile.ts';
import { storageSink, type StorageSinkOptions } from '../../pipelines/storageSink/storageSink.ts';
import { canalRow } from './vectors/canalJson.ts';
import { DISPATCHERS } from './vectors/dispatchers.ts';
import { INSERT_TS, TABLE_VERSION } from './vectors/partitions.ts';
import { GOLDEN_SCHEMA_100_TEXT, ticdcSchemaFile } from './vectors/schemaFiles.ts';
import { records } from './vectors/types.ts';
import { CHANGEFEED1_RECORDS, CHANGEFEED2_RECORDS, UPDATE_PK_DATE, UPDATE_PK_VERSION, UPDATE_UK_VERSION } from './vectors/updatePk.ts';

const DECODER = new TextDecoder();

async function run(storage: MemoryStorage, events: ChangeEvent[], options: Omit<StorageSinkOptions, 'storage'>): Promise<void> {
  const acked = from(events.map((value) => ({ value, ack: createAck() })));
  await lastValueFrom(
    acked.pipe(
      storageSink({ storage, flushIntervalMs: 60_000, checkpointIntervalMs: 20, spool: { memoryBytes: 1 << 20, diskQuotaBytes: 1 << 24 }, ...options }),
      toArray(),
    ),
  );
}

async function keysOf(storage: MemoryStorage): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of storage.list('')) keys.push(key);
  return keys;
}

async function textOf(storage: MemoryStorage, key: string): Promise<string | undefined> {
  const bytes = await storage.get(key);
  return bytes === undefined ? undefined : DECODER.decode(bytes);
}

/**
 * A TiCDC consumer's numbering rule over the whole storage: per data folder and dispatcher, the
 * data files are exactly indexes 1..N and the index file names file N. Returns the folders seen.
 */
async function expectTicdcNumbering(storage: MemoryStorage): Promise<string[]> {
  interface Stream {
    folder: string;
    dispatcher: string | undefined;
    indexes: number[];
    names: Map<number, string>;
  }
  const streams = new Map<string, Stream>();
  for (const key of await keysOf(storage)) {
    const match = /^(.*)\/(CDC(?:_(.+)_)?([0-9]{6,})(\.[a-z]+))$/.exec(key);
    if (match === null || key.includes('/meta/')) continue;
    const [, folder, base, dispatcher, digits] = match as unknown as [string, string, string, string | undefined, string];
    const id = `${folder}|${dispatcher ?? ''}`;
    const stream: Stream = streams.get(id) ?? { folder, dispatcher, indexes: [], names: new Map<number, string>() };
    stream.indexes.push(Number(digits));
    stream.names.set(Number(digits), base);
    streams.set(id, stream);
  }
  expect(streams.size, 'the sink wrote data files').to.be.greaterThan(0);
  for (const { folder, dispatcher, indexes, names } of streams.values()) {
    const sorted = [...indexes].sort((a, b) => a - b);
    expect(sorted, `${folder} (${dispatcher ?? 'no dispatcher'}): data files 1..N`).to.deep.equal(sorted.map((_, i) => i + 1));
    const indexPath = `${folder}/meta/${dispatcher === undefined ? 'CDC' : `CDC_${dispatcher}`}.index`;
    expect(await textOf(storage, indexPath), indexPath).to.equal(`${names.get(sorted.length)}\n`);
  }
  return [...streams.values()].map((s) => s.folder);
}

/** The data files of one folder, in index order, concatenated. */
async function folderText(storage: MemoryStorage, folder: string): Promise<string> {
  const names = (await keysOf(storage)).filter((key) => key.startsWith(`${folder}/CDC`));
  const texts = await Promise.all(names.map((key) => textOf(storage, key)));
  return texts.join('');
}

// The update_pk workload (pingcap/ticdc tests/integration_tests/csv_storage_update_pk_clustered):
// the tables of data/prepare.sql, as the sink receives them (CREATE TABLE DDL events).
const UPDATE_PK: TableDef = {
  schema: 'test',
  table: 'update_pk',
  version: UPDATE_PK_VERSION,
  columns: [
    { name: 'id', type: 'INT', precision: 11, nullable: false, primaryKey: true },
    { name: 'pad', type: 'VARCHAR', precision: 100, nullable: false },
  ],
};
const UPDATE_UK: TableDef = {
  schema: 'test',
  table: 'update_uk',
  version: UPDATE_UK_VERSION,
  columns: [
    { name: 'id', type: 'INT', precision: 11, nullable: false, primaryKey: true },
    { name: 'uk', type: 'INT', precision: 11, nullable: false },
    { name: 'pad', type: 'VARCHAR', precision: 100, nullable: false },
  ],
};
const CREATE_PK_QUERY = 'CREATE TABLE `update_pk` (\n  `id` int PRIMARY KEY /*T![clustered_index] CLUSTERED */,\n  `pad` varchar(100) NOT NULL\n)';
const CREATE_UK_QUERY =
  'CREATE TABLE `update_uk` (\n  `id` int PRIMARY KEY /*T![clustered_index] CLUSTERED */,\n  `uk` int NOT NULL,\n  `pad` varchar(100) NOT NULL,\n  UNIQUE KEY `uk` (`uk`)\n)';

const createTable = (def: TableDef, query: string): DdlEvent => ({
  kind: 'ddl',
  commitTs: def.version,
  query,
  ddlType: 'CREATE TABLE',
  schema: def.schema,
  table: def.table,
  tableDef: def,
  blockedDispatchers: 'all',
});

/** A .res record's fields, quotes removed (these records hold no delimiter inside a value). */
function fieldsOf(record: string): string[] {
  return record.split(',').map((field) => (field.startsWith('"') ? field.slice(1, -1) : field));
}

/**
 * The row events a changefeed's records stand for: with `oldValue`, an is-update D/I pair is one
 * update (old values from D), every other record its own insert or delete; without, U is an update.
 */
function eventsOf(def: TableDef, lines: string[], oldValue: boolean): RowChange[] {
  const events: RowChange[] = [];
  const valuesOf = (fields: string[]): Record<string, ColumnValue> =>
    Object.fromEntries(def.columns.map((column, i) => [column.name, column.type === 'INT' ? Number(fields[i]) : fields[i]!]));
  for (let i = 0; i < lines.length; i++) {
    const fields = fieldsOf(lines[i]!);
    const [letter, , , ts] = fields;
    const commitTs = BigInt(ts!);
    const base = { kind: 'row' as const, schema: def.schema, table: def.table, tableVersion: def.version, commitTs, dispatcherId: def.table };
    if (oldValue && fields[4] === 'true') {
      const after = fieldsOf(lines[++i]!);
      expect(letter, lines[i - 1]).to.equal('D');
      events.push({ ...base, op: 'update', oldColumns: valuesOf(fields.slice(5)), columns: valuesOf(after.slice(5)) });
      continue;
    }
    const values = valuesOf(fields.slice(oldValue ? 5 : 4));
    events.push({ ...base, op: letter === 'I' ? 'insert' : letter === 'D' ? 'delete' : 'update', columns: values });
  }
  return events;
}

/** Both tables' events of a changefeed in commit order (the pk table's rows first at equal order, as the .res files list them). */
function workload(records: { pk: string[]; uk: string[] }, oldValue: boolean): ChangeEvent[] {
  const rows = [...eventsOf(UPDATE_PK, records.pk, oldValue), ...eventsOf(UPDATE_UK, records.uk, oldValue)];
  rows.sort((a, b) => (a.commitTs < b.commitTs ? -1 : a.commitTs > b.commitTs ? 1 : 0));
  return [createTable(UPDATE_PK, CREATE_PK_QUERY), createTable(UPDATE_UK, CREATE_UK_QUERY), ...rows];
}

const PK_FOLDER = `test/update_pk/${UPDATE_PK_VERSION}/${UPDATE_PK_DATE}`;
const UK_FOLDER = `test/update_uk/${UPDATE_UK_VERSION}/${UPDATE_PK_DATE}`;
const FIRST_CSV = 'CDC00000000000000000001.csv';

describe('interop: the storage sink writes what TiCDC writes', () => {
  describe('csv rows (csv_storage_update_pk_clustered, result/*.res)', () => {
    it('changefeed1 dialect (terminator \\n, include-commit-ts): the data files are result/changefeed1_{pk,uk}.res byte for byte', async () => {
      const storage = new MemoryStorage();
      await run(storage, workload(CHANGEFEED1_RECORDS, false), { csv: { terminator: '\n', includeCommitTs: true } });
      expect(await folderText(storage, PK_FOLDER)).to.equal(records(CHANGEFEED1_RECORDS.pk, '\n'));
      expect(await folderText(storage, UK_FOLDER)).to.equal(records(CHANGEFEED1_RECORDS.uk, '\n'));
      expect(await storage.exists(`${PK_FOLDER}/${FIRST_CSV}`), 'the first data file is CDC…0001').to.equal(true);
      expect(await textOf(storage, `${PK_FOLDER}/meta/CDC.index`)).to.equal(`${FIRST_CSV}\n`);
      await expectTicdcNumbering(storage);
    });

    it('changefeed2 dialect (output-old-value): updates as is-update D/I pairs, result/changefeed2_{pk,uk}.res byte for byte', async () => {
      const storage = new MemoryStorage();
      await run(storage, workload(CHANGEFEED2_RECORDS, true), { csv: { terminator: '\n', includeCommitTs: true, outputOldValue: true } });
      expect(await folderText(storage, PK_FOLDER)).to.equal(records(CHANGEFEED2_RECORDS.pk, '\n'));
      expect(await folderText(storage, UK_FOLDER)).to.equal(records(CHANGEFEED2_RECORDS.uk, '\n'));
      await expectTicdcNumbering(storage);
    });

    it("TiCDC's default dialect (include-commit-ts=false, CRLF): changefeed1's records without the commit ts, CRLF-terminated", async () => {
      // pkg/config/replica_config.go (terminator CRLF, include-commit-ts false); pkg/sink/codec/csv/csv_message.go
      // encodeMeta writes the commit ts only with IncludeCommitTs.
      const withoutTs = (lines: string[]) => lines.map((line) => line.replace(/^("[IUD]","[^"]+","[^"]+"),[0-9]+,/, '$1,'));
      const storage = new MemoryStorage();
      await run(storage, workload(CHANGEFEED1_RECORDS, false), { csv: { includeCommitTs: false } });
      expect(await folderText(storage, PK_FOLDER)).to.equal(records(withoutTs(CHANGEFEED1_RECORDS.pk), '\r\n'));
      expect(await folderText(storage, UK_FOLDER)).to.equal(records(withoutTs(CHANGEFEED1_RECORDS.uk), '\r\n'));
      expect(await textOf(storage, `${PK_FOLDER}/meta/CDC.index`)).to.equal(`${FIRST_CSV}\n`);
      await expectTicdcNumbering(storage);
    });

    it('a rerun on the same input after a first run resumes from metadata: the folders still read as one TiCDC run (1..N, the same bytes)', async () => {
      // TiCDC resumes a changefeed from its checkpoint-ts; the files a consumer reads are those of one run.
      const events = workload(CHANGEFEED1_RECORDS, false);
      const lastInsertTs = 450253245446619148n; // changefeed1_uk.res: the last row of prepare.sql
      const storage = new MemoryStorage();
      const options = { csv: { terminator: '\n', includeCommitTs: true } };
      await run(storage, events.filter((e) => e.commitTs <= lastInsertTs), options);
      expect(await textOf(storage, 'metadata')).to.equal(`{"checkpoint-ts":${lastInsertTs}}`);
      await run(storage, events, options);
      expect(await folderText(storage, PK_FOLDER)).to.equal(records(CHANGEFEED1_RECORDS.pk, '\n'));
      expect(await folderText(storage, UK_FOLDER)).to.equal(records(CHANGEFEED1_RECORDS.uk, '\n'));
      expect(await textOf(storage, `${PK_FOLDER}/meta/CDC.index`)).to.equal('CDC00000000000000000002.csv\n');
      await expectTicdcNumbering(storage);
    });

    it('many small files per folder: every folder holds CDC…1..N with the index file naming N, as a TiCDC consumer reads', async () => {
      const storage = new MemoryStorage();
      await run(storage, workload(CHANGEFEED1_RECORDS, false), { csv: { terminator: '\n' }, fileSizeBytes: 60, fileIndexWidth: 6 });
      const folders = await expectTicdcNumbering(storage);
      expect(new Set(folders)).to.deep.equal(new Set([PK_FOLDER, UK_FOLDER]));
      expect((await keysOf(storage)).filter((key) => key.startsWith(`${PK_FOLDER}/CDC`)).length, 'one record per file').to.equal(CHANGEFEED1_RECORDS.pk.length);
      expect(await folderText(storage, PK_FOLDER)).to.equal(records(CHANGEFEED1_RECORDS.pk, '\n'));
    });
  });

  describe('canal-json rows (canal_json_storage_partition_table, pkg/sink/codec/canal/canal_json_encoder.go)', () => {
    // Table t of data/prepare.sql without its partitions (sluice's sink writes no partition level), rows
    // 1..3 of the first INSERT; TiCDC's default terminator CRLF. `ts` is TiCDC's wall clock: the vectors
    // put es + 7 there, sluice writes es, so it is set aside before comparing.
    const def: TableDef = { schema: 'partition_table', table: 't', version: TABLE_VERSION, columns: [{ name: 'a', type: 'INT', precision: 11, nullable: false, primaryKey: true }] };
    const rows: RowChange[] = [1, 2, 3].map((a) => ({ kind: 'row', op: 'insert', schema: 'partition_table', table: 't', tableVersion: TABLE_VERSION, commitTs: INSERT_TS[0], dispatcherId: 'p', columns: { a } }));
    const withoutTs = (text: string) => text.replace(/"ts":[0-9]+,/g, '"ts":_,');
    for (const enableTidbExtension of [false, true]) {
      it(`enable-tidb-extension=${enableTidbExtension}: the rows TiCDC writes, ${enableTidbExtension ? 'each with' : 'none with'} _tidb.commitTs`, async () => {
        const storage = new MemoryStorage();
        await run(storage, rows, { protocol: 'canal-json', canalJson: { enableTidbExtension }, tables: [def] });
        const folder = `partition_table/t/${TABLE_VERSION}/2024-06-05`;
        const expected = records([1, 2, 3].map((a) => canalRow('INSERT', a, INSERT_TS[0], enableTidbExtension)), '\r\n');
        expect(withoutTs(await folderText(storage, folder))).to.equal(withoutTs(expected));
        expect(await textOf(storage, `${folder}/meta/CDC.index`)).to.equal('CDC00000000000000000001.json\n');
        await expectTicdcNumbering(storage);
      });
    }

    it('terminator "\\n" (canal_json_storage_partition_table): the rows TiCDC writes, each ended by LF, and they replay as written', async () => {
      // pingcap/ticdc tests/integration_tests/canal_json_storage_partition_table/conf/changefeed.toml sets
      // terminator = "\n" with protocol canal-json (no enable-tidb-extension in its run.sh); TiCDC's
      // pkg/sink/codec/canal/canal_json_txn_encoder.go writes that terminator after each row.
      const storage = new MemoryStorage();
      await run(storage, rows, { protocol: 'canal-json', canalJson: { enableTidbExtension: false, terminator: '\n' }, tables: [def] });
      const folder = `partition_table/t/${TABLE_VERSION}/2024-06-05`;
      const written = await folderText(storage, folder);
      expect(withoutTs(written)).to.equal(withoutTs(records([1, 2, 3].map((a) => canalRow('INSERT', a, INSERT_TS[0], false)), '\n')));
      expect(written).to.not.contain('\r');
      await expectTicdcNumbering(storage);
      // The consumer's decoder reads the file back with no terminator setting.
      const [key] = (await keysOf(storage)).filter((k) => k.startsWith(`${folder}/CDC`));
      const decoded = decodeDataFile((await storage.get(key!))!, key!, def, {});
      expect(decoded).to.deep.equal([1, 2, 3].map((a) => ({ op: 'insert', schema: 'partition_table', table: 't', columns: { a } })));
    });
  });

  describe('schema files', () => {
    it("TiCDC's golden file: test.table1 after ADD COLUMN is test/table1/meta/schema_100_4192708364.json with upstream's text", async () => {
      // pingcap/ticdc downstreamadapter/sink/cloudstorage/sink_test.go TestWriteDDLEvent (JSONEq of this text; the
      // file is json.MarshalIndent with 4 spaces, pkg/cloudstorage/schema_file.go Marshal).
      const golden = GOLDEN_SCHEMA_100_TEXT;
      const def: TableDef = { schema: 'test', table: 'table1', version: 100n, columns: [{ name: 'col1', type: 'INT', precision: 11 }, { name: 'col2', type: 'VARCHAR', precision: 5 }] };
      const ddl: DdlEvent = { kind: 'ddl', commitTs: 100n, query: 'alter table test.table1 add col2 varchar(64)', ddlType: 'ADD COLUMN', schema: 'test', table: 'table1', tableDef: def, blockedDispatchers: 'all' };
      const storage = new MemoryStorage();
      await run(storage, [ddl], {});
      expect(await textOf(storage, 'test/table1/meta/schema_100_4192708364.json')).to.equal(golden);
      // The vectors' own schema-file builder agrees with the golden file (its checksum and text).
      const vector = ticdcSchemaFile({
        Table: 'table1',
        Schema: 'test',
        TableVersion: 100n,
        Query: ddl.query,
        Type: 5,
        TableColumns: [{ ColumnName: 'col1', ColumnType: 'INT', ColumnPrecision: '11' }, { ColumnName: 'col2', ColumnType: 'VARCHAR', ColumnPrecision: '5' }],
      });
      expect(vector).to.deep.equal({ path: 'test/table1/meta/schema_100_4192708364.json', text: golden });
      // pkg/cloudstorage/schema_file_test.go TestSchemaFileGenFilePath: a database-level file of schema1 at 100.
      expect(ticdcSchemaFile({ Table: '', Schema: 'schema1', TableVersion: 100n, Query: '', Type: 0, TableColumns: null }).path).to.equal('schema1/meta/schema_100_3233644819.json');
    });

    it('the CREATE TABLE and CREATE DATABASE schema files of the update_pk workload are the ones TiCDC writes', async () => {
      const createDatabase: DdlEvent = { kind: 'ddl', commitTs: UPDATE_PK_VERSION - 4n, query: 'create database `test`', ddlType: 'CREATE SCHEMA', schema: 'test', blockedDispatchers: 'all' };
      const storage = new MemoryStorage();
      await run(storage, [createDatabase, ...workload(CHANGEFEED1_RECORDS, false)], { csv: { terminator: '\n' } });
      const expected = [
        ticdcSchemaFile({ Table: '', Schema: 'test', TableVersion: UPDATE_PK_VERSION - 4n, Query: 'create database `test`', Type: 1, TableColumns: null }),
        ticdcSchemaFile({
          Table: 'update_pk',
          Schema: 'test',
          TableVersion: UPDATE_PK_VERSION,
          Query: CREATE_PK_QUERY,
          Type: 3,
          TableColumns: [
            { ColumnName: 'id', ColumnType: 'INT', ColumnPrecision: '11', ColumnNullable: 'false', ColumnIsPk: 'true' },
            { ColumnName: 'pad', ColumnType: 'VARCHAR', ColumnPrecision: '100', ColumnNullable: 'false' },
          ],
        }),
        ticdcSchemaFile({
          Table: 'update_uk',
          Schema: 'test',
          TableVersion: UPDATE_UK_VERSION,
          Query: CREATE_UK_QUERY,
          Type: 3,
          TableColumns: [
            { ColumnName: 'id', ColumnType: 'INT', ColumnPrecision: '11', ColumnNullable: 'false', ColumnIsPk: 'true' },
            { ColumnName: 'uk', ColumnType: 'INT', ColumnPrecision: '11', ColumnNullable: 'false' },
            { ColumnName: 'pad', ColumnType: 'VARCHAR', ColumnPrecision: '100', ColumnNullable: 'false' },
          ],
        }),
      ];
      const written = (await keysOf(storage)).filter((key) => /\/meta\/schema_/.test(key));
      expect(written.sort()).to.deep.equal(expected.map((f) => f.path).sort());
      for (const file of expected) expect(await textOf(storage, file.path), file.path).to.equal(file.text);
    });
  });

  describe('paths (pkg/cloudstorage/path_test.go TestGenerateDataFilePath)', () => {
    // test.table1 at table version 5, file-index-width 6, a dispatcher's files (table across nodes),
    // `.json` files; rows at 2022-12-31 23:59:59 UTC and 2023-01-01 00:00:20 UTC, the mock clock's times.
    const def: TableDef = { schema: 'test', table: 'table1', version: 5n, columns: [{ name: 'id', type: 'INT', primaryKey: true, nullable: false }] };
    const [dispatcher] = DISPATCHERS;
    const tsAt = (iso: string) => BigInt(Date.parse(iso)) << 18n;
    const rows: RowChange[] = ['2022-12-31T23:59:59Z', '2023-01-01T00:00:20Z'].map((iso, i) => ({
      kind: 'row',
      op: 'insert',
      schema: 'test',
      table: 'table1',
      tableVersion: 5n,
      commitTs: tsAt(iso),
      dispatcherId: dispatcher,
      columns: { id: i + 1 },
    }));
    const cases = [
      { separator: 'none', folders: ['test/table1/5'] },
      { separator: 'year', folders: ['test/table1/5/2022', 'test/table1/5/2023'] },
      { separator: 'month', folders: ['test/table1/5/2022-12', 'test/table1/5/2023-01'] },
      { separator: 'day', folders: ['test/table1/5/2022-12-31', 'test/table1/5/2023-01-01'] },
    ] as const;
    for (const { separator, folders } of cases) {
      it(`date-separator=${separator}: ${folders.map((f) => `${f}/CDC_{dispatcher}_000001.json`).join(', ')}`, async () => {
        const storage = new MemoryStorage();
        await run(storage, rows, { protocol: 'canal-json', tables: [def], dateSeparator: separator, fileIndexWidth: 6, tableAcrossDispatchers: true });
        for (const folder of folders) {
          expect(await storage.exists(`${folder}/CDC_${dispatcher}_000001.json`), `${folder}: first file is 000001`).to.equal(true);
          expect(await textOf(storage, `${folder}/meta/CDC_${dispatcher}.index`)).to.equal(`CDC_${dispatcher}_000001.json\n`);
        }
        expect(new Set(await expectTicdcNumbering(storage))).to.deep.equal(new Set(folders));
      });
    }
  });
});
