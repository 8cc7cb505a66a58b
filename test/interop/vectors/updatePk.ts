/**
 * Unique-key and primary-key swaps, as TiCDC's storage sink wrote them in its integration test
 * csv_storage_update_pk_clustered: the csv records are the test's own `result/changefeed{1..4}_{pk,uk}.res`
 * files verbatim (pingcap/ticdc tests/integration_tests/csv_storage_update_pk_clustered/result/*.res),
 * each changefeed's dialect from its `conf/changefeed{N}.toml`, the final state from `data/prepare.sql`
 * then `data/run.sql`.
 *
 * Reconstructed (not in upstream's files): the DDL commit ts (just below the first row of each table),
 * the split of each table's records into two data files (prepare.sql's inserts, then run.sql's changes),
 * and the CREATE TABLE query text: prepare.sql's statement with `CLUSTERED` in TiDB's special-comment form
 * (`/*T![clustered_index] CLUSTERED *\/`, as TiDB's restorer writes TiDB-only syntax, pingcap/ticdc
 * pkg/common/event/util.go `Restore`), since MySQL and MariaDB have no such keyword.
 */
import { ticdcSchemaFile } from './schemaFiles.ts';
import { indexFile, metadataFile, records, resRecords, type ExpectedTable, type Layout } from './types.ts';

// pingcap/ticdc tests/integration_tests/csv_storage_update_pk_clustered/result/changefeed1_pk.res
const CHANGEFEED1_PK_RES = `"I","update_pk","test",450253245302439944,1,"example1"
"I","update_pk","test",450253245302439944,2,"example2"
"I","update_pk","test",450253245302439946,10,"example10"
"I","update_pk","test",450253245302439946,20,"example20"
"I","update_pk","test",450253245302439947,100,"example100"
"I","update_pk","test",450253245302439948,1000,"example1000"

# translate to normal update in upstream
"U","update_pk","test",450253245485940746,1,"example2"
"U","update_pk","test",450253245485940746,2,"example1"

# split and sort in upstream
"D","update_pk","test",450253245485940749,10,"example10"
"D","update_pk","test",450253245485940749,20,"example20"
"I","update_pk","test",450253245485940749,30,"example10"
"I","update_pk","test",450253245485940749,40,"example20"

# split and sort in upstream
"D","update_pk","test",450253245485940752,100,"example100"
"I","update_pk","test",450253245485940752,200,"example100"

"U","update_pk","test",450253245485940753,1000,"example1001"
`;

// pingcap/ticdc tests/integration_tests/csv_storage_update_pk_clustered/result/changefeed1_uk.res
const CHANGEFEED1_UK_RES = `"I","update_uk","test",450253245446619144,1,1,"example1"
"I","update_uk","test",450253245446619144,2,2,"example2"
"I","update_uk","test",450253245446619146,10,10,"example10"
"I","update_uk","test",450253245446619146,20,20,"example20"
"I","update_uk","test",450253245446619147,100,100,"example100"
"I","update_uk","test",450253245446619148,1000,1000,"example1000"

# split and sort in table sink
"D","update_uk","test",450253245499047940,1,1,"example1"
"D","update_uk","test",450253245499047940,2,2,"example2"
"I","update_uk","test",450253245499047940,1,2,"example1"
"I","update_uk","test",450253245499047940,2,1,"example2"

# split and sort in table sink
"D","update_uk","test",450253245499047943,10,10,"example10"
"D","update_uk","test",450253245499047943,20,20,"example20"
"I","update_uk","test",450253245499047943,10,30,"example10"
"I","update_uk","test",450253245499047943,20,40,"example20"

# split and sort in table sink
"D","update_uk","test",450253245499047946,100,100,"example100"
"I","update_uk","test",450253245499047946,100,200,"example100"

"U","update_uk","test",450253245512155140,1000,1000,"example1001"`;

// pingcap/ticdc tests/integration_tests/csv_storage_update_pk_clustered/result/changefeed2_pk.res
const CHANGEFEED2_PK_RES = `"I","update_pk","test",450253245302439944,false,1,"example1"
"I","update_pk","test",450253245302439944,false,2,"example2"
"I","update_pk","test",450253245302439946,false,10,"example10"
"I","update_pk","test",450253245302439946,false,20,"example20"
"I","update_pk","test",450253245302439947,false,100,"example100"
"I","update_pk","test",450253245302439948,false,1000,"example1000"

# translate to normal update in upstream, split in csv encoder
"D","update_pk","test",450253245485940746,true,1,"example1"
"I","update_pk","test",450253245485940746,true,1,"example2"
"D","update_pk","test",450253245485940746,true,2,"example2"
"I","update_pk","test",450253245485940746,true,2,"example1"

# split and sort in upstream
"D","update_pk","test",450253245485940749,false,10,"example10"
"D","update_pk","test",450253245485940749,false,20,"example20"
"I","update_pk","test",450253245485940749,false,30,"example10"
"I","update_pk","test",450253245485940749,false,40,"example20"

# split and sort in upstream
"D","update_pk","test",450253245485940752,false,100,"example100"
"I","update_pk","test",450253245485940752,false,200,"example100"

# normal update event, split in csv encoder
"D","update_pk","test",450253245485940753,true,1000,"example1000"
"I","update_pk","test",450253245485940753,true,1000,"example1001"
`;

// pingcap/ticdc tests/integration_tests/csv_storage_update_pk_clustered/result/changefeed2_uk.res
const CHANGEFEED2_UK_RES = `"I","update_uk","test",450253245446619144,false,1,1,"example1"
"I","update_uk","test",450253245446619144,false,2,2,"example2"
"I","update_uk","test",450253245446619146,false,10,10,"example10"
"I","update_uk","test",450253245446619146,false,20,20,"example20"
"I","update_uk","test",450253245446619147,false,100,100,"example100"
"I","update_uk","test",450253245446619148,false,1000,1000,"example1000"

# split in csv encoder, data is consistent since delete by pk
"D","update_uk","test",450253245499047940,true,1,1,"example1"
"I","update_uk","test",450253245499047940,true,1,2,"example1"
"D","update_uk","test",450253245499047940,true,2,2,"example2"
"I","update_uk","test",450253245499047940,true,2,1,"example2"

# split in csv encoder
"D","update_uk","test",450253245499047943,true,10,10,"example10"
"I","update_uk","test",450253245499047943,true,10,30,"example10"
"D","update_uk","test",450253245499047943,true,20,20,"example20"
"I","update_uk","test",450253245499047943,true,20,40,"example20"

# split in csv encoder
"D","update_uk","test",450253245499047946,true,100,100,"example100"
"I","update_uk","test",450253245499047946,true,100,200,"example100"

# normal update event, also split in csv encoder
"D","update_uk","test",450253245512155140,true,1000,1000,"example1000"
"I","update_uk","test",450253245512155140,true,1000,1000,"example1001"`;

// pingcap/ticdc tests/integration_tests/csv_storage_update_pk_clustered/result/changefeed3_pk.res
const CHANGEFEED3_PK_RES = `"I","update_pk","test",450253245302439944,1,"example1"
"I","update_pk","test",450253245302439944,2,"example2"
"I","update_pk","test",450253245302439946,10,"example10"
"I","update_pk","test",450253245302439946,20,"example20"
"I","update_pk","test",450253245302439947,100,"example100"
"I","update_pk","test",450253245302439948,1000,"example1000"

# output raw change event
# translate to normal update in upstream
"U","update_pk","test",450253245485940746,1,"example2"
"U","update_pk","test",450253245485940746,2,"example1"

# split and sort in upstream
"D","update_pk","test",450253245485940749,10,"example10"
"D","update_pk","test",450253245485940749,20,"example20"
"I","update_pk","test",450253245485940749,30,"example10"
"I","update_pk","test",450253245485940749,40,"example20"

# split and sort in upstream
"D","update_pk","test",450253245485940752,100,"example100"
"I","update_pk","test",450253245485940752,200,"example100"

# normal update event
"U","update_pk","test",450253245485940753,1000,"example1001"`;

// pingcap/ticdc tests/integration_tests/csv_storage_update_pk_clustered/result/changefeed3_uk.res
const CHANGEFEED3_UK_RES = `"I","update_uk","test",450253245446619144,1,1,"example1"
"I","update_uk","test",450253245446619144,2,2,"example2"
"I","update_uk","test",450253245446619146,10,10,"example10"
"I","update_uk","test",450253245446619146,20,20,"example20"
"I","update_uk","test",450253245446619147,100,100,"example100"
"I","update_uk","test",450253245446619148,1000,1000,"example1000"

# output raw change event, data is consistent since replace by pk/uk
"U","update_uk","test",450253245499047940,1,2,"example1"
"U","update_uk","test",450253245499047940,2,1,"example2"
"U","update_uk","test",450253245499047943,10,30,"example10"
"U","update_uk","test",450253245499047943,20,40,"example20"
"U","update_uk","test",450253245499047946,100,200,"example100"
"U","update_uk","test",450253245512155140,1000,1000,"example1001"
`;

// pingcap/ticdc tests/integration_tests/csv_storage_update_pk_clustered/result/changefeed4_pk.res
const CHANGEFEED4_PK_RES = `"I","update_pk","test",450253245302439944,false,1,"example1"
"I","update_pk","test",450253245302439944,false,2,"example2"
"I","update_pk","test",450253245302439946,false,10,"example10"
"I","update_pk","test",450253245302439946,false,20,"example20"
"I","update_pk","test",450253245302439947,false,100,"example100"
"I","update_pk","test",450253245302439948,false,1000,"example1000"

# translate to normal update in upstream, split in csv encoder
"D","update_pk","test",450253245485940746,true,1,"example1"
"I","update_pk","test",450253245485940746,true,1,"example2"
"D","update_pk","test",450253245485940746,true,2,"example2"
"I","update_pk","test",450253245485940746,true,2,"example1"

# split and sort in upstream
"D","update_pk","test",450253245485940749,false,10,"example10"
"D","update_pk","test",450253245485940749,false,20,"example20"
"I","update_pk","test",450253245485940749,false,30,"example10"
"I","update_pk","test",450253245485940749,false,40,"example20"

# split and sort in upstream
"D","update_pk","test",450253245485940752,false,100,"example100"
"I","update_pk","test",450253245485940752,false,200,"example100"

# normal update event, split in csv encoder
"D","update_pk","test",450253245485940753,true,1000,"example1000"
"I","update_pk","test",450253245485940753,true,1000,"example1001"
`;

// pingcap/ticdc tests/integration_tests/csv_storage_update_pk_clustered/result/changefeed4_uk.res
const CHANGEFEED4_UK_RES = `"I","update_uk","test",450253245446619144,false,1,1,"example1"
"I","update_uk","test",450253245446619144,false,2,2,"example2"
"I","update_uk","test",450253245446619146,false,10,10,"example10"
"I","update_uk","test",450253245446619146,false,20,20,"example20"
"I","update_uk","test",450253245446619147,false,100,100,"example100"
"I","update_uk","test",450253245446619148,false,1000,1000,"example1000"

# split and sort in table sink
"D","update_uk","test",450253245499047940,false,1,1,"example1"
"D","update_uk","test",450253245499047940,false,2,2,"example2"
"I","update_uk","test",450253245499047940,false,1,2,"example1"
"I","update_uk","test",450253245499047940,false,2,1,"example2"

# split and sort in table sink
"D","update_uk","test",450253245499047943,false,10,10,"example10"
"D","update_uk","test",450253245499047943,false,20,20,"example20"
"I","update_uk","test",450253245499047943,false,10,30,"example10"
"I","update_uk","test",450253245499047943,false,20,40,"example20"

# split and sort in table sink
"D","update_uk","test",450253245499047946,false,100,100,"example100"
"I","update_uk","test",450253245499047946,false,100,200,"example100"

# normal update event, split in csv encoder
"D","update_uk","test",450253245512155140,true,1000,1000,"example1000"
"I","update_uk","test",450253245512155140,true,1000,1000,"example1001"
`;

/** Commit ts of `create database test` and of each CREATE TABLE (reconstructed: just below each table's first row). */
const CREATE_DATABASE_TS = 450253245302439936n;
const UPDATE_PK_VERSION = 450253245302439940n;
const UPDATE_UK_VERSION = 450253245446619140n;
/** The last commit ts of the workload (changefeed1_uk.res, last record). */
const LAST_TS = 450253245512155140n;
/** The day of the commit ts (450253245302439944 >> 18 is 2024-06-05T09:30:23Z); date-separator = 'day'. */
const DATE = '2024-06-05';

// pingcap/ticdc tests/integration_tests/csv_storage_update_pk_clustered/data/prepare.sql (see the header on CLUSTERED).
const SCHEMA_FILES = [
  ticdcSchemaFile({ Table: '', Schema: 'test', TableVersion: CREATE_DATABASE_TS, Query: 'create database `test`', Type: 1, TableColumns: null }),
  ticdcSchemaFile({
    Table: 'update_pk',
    Schema: 'test',
    TableVersion: UPDATE_PK_VERSION,
    Query: 'CREATE TABLE `update_pk` (\n  `id` int PRIMARY KEY /*T![clustered_index] CLUSTERED */,\n  `pad` varchar(100) NOT NULL\n)',
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
    Query: 'CREATE TABLE `update_uk` (\n  `id` int PRIMARY KEY /*T![clustered_index] CLUSTERED */,\n  `uk` int NOT NULL,\n  `pad` varchar(100) NOT NULL,\n  UNIQUE KEY `uk` (`uk`)\n)',
    Type: 3,
    TableColumns: [
      { ColumnName: 'id', ColumnType: 'INT', ColumnPrecision: '11', ColumnNullable: 'false', ColumnIsPk: 'true' },
      { ColumnName: 'uk', ColumnType: 'INT', ColumnPrecision: '11', ColumnNullable: 'false' },
      { ColumnName: 'pad', ColumnType: 'VARCHAR', ColumnPrecision: '100', ColumnNullable: 'false' },
    ],
  }),
];

/** The state after prepare.sql and run.sql (what sync_diff checks downstream). */
export const UPDATE_PK_FINAL: ExpectedTable[] = [
  {
    schema: 'test',
    table: 'update_pk',
    columns: ['id', 'pad'],
    orderBy: 'id',
    rows: [['1', 'example2'], ['2', 'example1'], ['30', 'example10'], ['40', 'example20'], ['200', 'example100'], ['1000', 'example1001']],
  },
  {
    schema: 'test',
    table: 'update_uk',
    columns: ['id', 'uk', 'pad'],
    orderBy: 'id',
    rows: [['1', '2', 'example1'], ['2', '1', 'example2'], ['10', '30', 'example10'], ['20', '40', 'example20'], ['100', '200', 'example100'], ['1000', '1000', 'example1001']],
  },
];

const name = (index: number) => `CDC${String(index).padStart(20, '0')}.csv`;

/** One table's records in two data files (6 inserts, then the rest) with its index file, terminator "\n". */
function tableFiles(table: string, version: bigint, res: string) {
  const lines = resRecords(res);
  const folder = `test/${table}/${version}/${DATE}`;
  return [
    { path: `${folder}/${name(1)}`, text: records(lines.slice(0, 6), '\n') },
    { path: `${folder}/${name(2)}`, text: records(lines.slice(6), '\n') },
    indexFile(folder, name(2)),
  ];
}

function changefeed(n: number, description: string, outputOldValue: boolean, pk: string, uk: string): Layout {
  return {
    name: `csv_storage_update_pk_clustered changefeed${n}: ${description}`,
    source: `pingcap/ticdc tests/integration_tests/csv_storage_update_pk_clustered/conf/changefeed${n}.toml, result/changefeed${n}_{pk,uk}.res`,
    // [sink] terminator = "\n", date-separator = 'day'; [sink.csv] delimiter ',', quote '"', null '\N', include-commit-ts = true.
    settings: {
      csv: { delimiter: ',', quote: '"', terminator: '\n', nullString: '\\N', includeCommitTs: true, outputOldValue },
      dateSeparator: 'day',
    },
    files: [...SCHEMA_FILES, ...tableFiles('update_pk', UPDATE_PK_VERSION, pk), ...tableFiles('update_uk', UPDATE_UK_VERSION, uk), metadataFile(LAST_TS)],
    expected: UPDATE_PK_FINAL,
  };
}

export const UPDATE_PK_LAYOUTS: Layout[] = [
  changefeed(1, 'updates of a key split into D/I and sorted upstream', false, CHANGEFEED1_PK_RES, CHANGEFEED1_UK_RES),
  changefeed(2, 'output-raw-change-event with output-old-value: unique-key swaps as D/I pairs', true, CHANGEFEED2_PK_RES, CHANGEFEED2_UK_RES),
  changefeed(3, 'output-raw-change-event: unique-key swaps as U rows', false, CHANGEFEED3_PK_RES, CHANGEFEED3_UK_RES),
  changefeed(4, 'split and sorted, other updates as D/I pairs (output-old-value)', true, CHANGEFEED4_PK_RES, CHANGEFEED4_UK_RES),
];

/** The csv records of changefeed1 (TiCDC's bytes for its dialect), for the sink-output tests. */
export const CHANGEFEED1_RECORDS = { pk: resRecords(CHANGEFEED1_PK_RES), uk: resRecords(CHANGEFEED1_UK_RES) };
/** The csv records of changefeed2 (output-old-value), for the sink-output tests. */
export const CHANGEFEED2_RECORDS = { pk: resRecords(CHANGEFEED2_PK_RES), uk: resRecords(CHANGEFEED2_UK_RES) };
export { UPDATE_PK_VERSION, UPDATE_UK_VERSION, DATE as UPDATE_PK_DATE };
