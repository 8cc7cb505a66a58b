/**
 * A partitioned table as TiCDC's storage sink lays it out, with each date separator and with the
 * partition separator on and off: the workload and changefeed settings of pingcap/ticdc
 * tests/integration_tests/csv_storage_partition_table (data/prepare.sql: `create table t (a int,
 * primary key (a)) partition by hash(a) partitions 5`, then rows 1..6 and 7..9 in two statements;
 * conf/changefeed.toml: protocol csv, terminator "\n", enable-partition-separator = true, csv
 * delimiter ',', quote '"', null '\N', include-commit-ts = true) and the canal-json twin
 * tests/integration_tests/canal_json_storage_partition_table (the same workload plus
 * `update t set a=a+10 where a=2`).
 *
 * Paths after pingcap/ticdc pkg/cloudstorage/path_key.go and path_key_test.go
 * (`schema1/table1/123456/55/2023-05-09/CDC…`: table version, physical partition id, date), one
 * folder per physical partition, each numbered from 1 (generator.go).
 *
 * Reconstructed: the commit ts, the physical table ids (TiDB numbers the partitions after the table:
 * 1092 for t, 1093..1097 for p0..p4, four digits like a year on purpose), rows per partition by
 * TiDB's hash partitioning (a mod 5), and the data-file split (one file per statement). prepare.sql's
 * later steps (TRUNCATE/ADD/DROP/EXCHANGE/REORGANIZE PARTITION, table t1, t2) are left out: they are
 * partition DDL, not layout.
 */
import { ticdcSchemaFile } from './schemaFiles.ts';
import { indexFile, metadataFile, records, type ConsumerSettings, type Layout, type LayoutFile } from './types.ts';

export const CREATE_DATABASE_TS = 450253246000000000n;
export const TABLE_VERSION = 450253246000000100n;
/** The commit ts of the two INSERT statements, and (canal-json) of the update of a=2. */
export const INSERT_TS = [450253246000001000n, 450253246000002000n] as const;
export const UPDATE_TS = 450253246000003000n;
/** Physical ids of p0..p4. */
export const PARTITION_IDS = [1093, 1094, 1095, 1096, 1097] as const;

/** The day of those commit ts (450253246000000000 >> 18 is 2024-06-05T09:30:26Z) per date separator. */
export const DATE_FOLDERS = { none: '', year: '2024', month: '2024-06', day: '2024-06-05' } as const;
export type DateSeparator = keyof typeof DATE_FOLDERS;

export const PARTITION_SCHEMA_FILES: LayoutFile[] = [
  ticdcSchemaFile({ Table: '', Schema: 'partition_table', TableVersion: CREATE_DATABASE_TS, Query: 'create database `partition_table`', Type: 1, TableColumns: null }),
  ticdcSchemaFile({
    Table: 't',
    Schema: 'partition_table',
    TableVersion: TABLE_VERSION,
    Query: 'create table t (a int, primary key (a)) partition by hash(a) partitions 5',
    Type: 3,
    TableColumns: [{ ColumnName: 'a', ColumnType: 'INT', ColumnPrecision: '11', ColumnNullable: 'false', ColumnIsPk: 'true' }],
  }),
];

/** The INSERT statements' rows: [statement][row] = a. */
const STATEMENTS = [
  [1, 2, 3, 4, 5, 6],
  [7, 8, 9],
];

export const name = (index: number, extension = '.csv') => `CDC${String(index).padStart(20, '0')}${extension}`;

/** `partition_table/t/{version}[/{partition}][/{date}]` */
export function folderOf(date: string, partitionId?: number): string {
  return ['partition_table/t', String(TABLE_VERSION), ...(partitionId === undefined ? [] : [String(partitionId)]), ...(date === '' ? [] : [date])].join('/');
}

/** A data folder's files (one per non-empty batch, numbered from 1) and its index file. */
export function folderFiles(folder: string, batches: string[][], terminator: string, extension = '.csv'): LayoutFile[] {
  const nonEmpty = batches.filter((batch) => batch.length > 0);
  const files = nonEmpty.map((batch, i) => ({ path: `${folder}/${name(i + 1, extension)}`, text: records(batch, terminator) }));
  return [...files, indexFile(folder, name(nonEmpty.length, extension))];
}

const csvInsert = (a: number, ts: bigint) => `"I","t","partition_table",${ts},${a}`;

const CSV_SETTINGS = { delimiter: ',', quote: '"', terminator: '\n', nullString: '\\N', includeCommitTs: true };

function partitionLayout(separator: DateSeparator, partitions: boolean): Layout {
  const date = DATE_FOLDERS[separator];
  const settings: ConsumerSettings = { csv: CSV_SETTINGS, dateSeparator: separator, enablePartitionSeparator: partitions };
  const data = partitions
    ? PARTITION_IDS.flatMap((id, p) =>
        folderFiles(
          folderOf(date, id),
          STATEMENTS.map((rows, s) => rows.filter((a) => a % 5 === p).map((a) => csvInsert(a, INSERT_TS[s]!))),
          '\n',
        ),
      )
    : folderFiles(folderOf(date), STATEMENTS.map((rows, s) => rows.map((a) => csvInsert(a, INSERT_TS[s]!))), '\n');
  return {
    name: `partitioned table, date-separator=${separator}, enable-partition-separator=${partitions}`,
    source: 'pingcap/ticdc tests/integration_tests/csv_storage_partition_table (conf/changefeed.toml, data/prepare.sql); pkg/cloudstorage/path_key_test.go',
    settings,
    files: [...PARTITION_SCHEMA_FILES, ...data, metadataFile(INSERT_TS[1])],
    expected: [{ schema: 'partition_table', table: 't', columns: ['a'], orderBy: 'a', rows: [1, 2, 3, 4, 5, 6, 7, 8, 9].map((a) => [String(a)]) }],
  };
}

export const PARTITION_LAYOUTS: Layout[] = (['none', 'year', 'month', 'day'] as const).flatMap((separator) => [
  partitionLayout(separator, true),
  partitionLayout(separator, false),
]);
