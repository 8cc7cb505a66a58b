/**
 * Date folders across a year boundary, each separator: a row written on 2022-12-31 and its update
 * on 2023-01-01 land in two date folders, each numbered from 1, since TiCDC's generator resets a
 * table's file index when the date changes (pingcap/ticdc pkg/cloudstorage/generator.go; path_test.go
 * TestGenerateDataFilePath: `test/table1/5/2022-12-31/CDC…000001` then, "day changed",
 * `test/table1/5/2023-01-01/CDC…000001`, likewise `2022`/`2023` and `2022-12`/`2023-01`, at the mock
 * clock's 2022-12-31 23:59:59 and 2023-01-01 00:00:20 UTC). With date-separator none both files share
 * one folder: 000001 then 000002.
 *
 * The csv dialect is TiCDC's default (CRLF, no commit ts: pkg/config/replica_config.go), so only the
 * order in which the consumer takes the folders decides the final value: dates in order, or the
 * table ends at the older row.
 *
 * Reconstructed: the table (test.table1 with id and v), its rows, the commit ts (the clock's times
 * << 18) and the file-index width 6 of testFilePathGenerator.
 */
import { ticdcSchemaFile } from './schemaFiles.ts';
import { indexFile, metadataFile, records, type Layout, type LayoutFile } from './types.ts';

const tsAt = (iso: string) => BigInt(Date.parse(iso)) << 18n;
const BEFORE = tsAt('2022-12-31T23:59:59Z');
const AFTER = tsAt('2023-01-01T00:00:20Z');
const name = (index: number) => `CDC${String(index).padStart(6, '0')}.csv`;

const SCHEMA_FILES: LayoutFile[] = [
  ticdcSchemaFile({ Table: '', Schema: 'test', TableVersion: 4n, Query: 'CREATE DATABASE `test`', Type: 1, TableColumns: null }),
  ticdcSchemaFile({
    Table: 'table1',
    Schema: 'test',
    TableVersion: 5n,
    Query: 'create table test.table1 (id int primary key, v varchar(64))',
    Type: 3,
    TableColumns: [
      { ColumnName: 'id', ColumnType: 'INT', ColumnPrecision: '11', ColumnNullable: 'false', ColumnIsPk: 'true' },
      { ColumnName: 'v', ColumnType: 'VARCHAR', ColumnPrecision: '64' },
    ],
  }),
];

const FIRST = records(['"I","table1","test",1,"written on 2022-12-31"', '"I","table1","test",2,"kept"'], '\r\n');
const SECOND = records(['"U","table1","test",1,"updated on 2023-01-01"'], '\r\n');

function dateLayout(separator: 'none' | 'year' | 'month' | 'day', before: string, after: string): Layout {
  const data: LayoutFile[] =
    separator === 'none'
      ? [{ path: `test/table1/5/${name(1)}`, text: FIRST }, { path: `test/table1/5/${name(2)}`, text: SECOND }, indexFile('test/table1/5', name(2))]
      : [
          { path: `test/table1/5/${before}/${name(1)}`, text: FIRST },
          indexFile(`test/table1/5/${before}`, name(1)),
          { path: `test/table1/5/${after}/${name(1)}`, text: SECOND },
          indexFile(`test/table1/5/${after}`, name(1)),
        ];
  return {
    name: `date-separator=${separator} across a year boundary${separator === 'none' ? '' : `: ${before}/CDC000001 then ${after}/CDC000001`}`,
    source: 'pingcap/ticdc pkg/cloudstorage/path_test.go TestGenerateDataFilePath; pkg/cloudstorage/generator.go',
    settings: { csv: { includeCommitTs: false }, dateSeparator: separator },
    files: [...SCHEMA_FILES, ...data, metadataFile(AFTER)],
    expected: [{ schema: 'test', table: 'table1', columns: ['id', 'v'], orderBy: 'id', rows: [['1', 'updated on 2023-01-01'], ['2', 'kept']] }],
  };
}

export const DATE_LAYOUTS: Layout[] = [
  dateLayout('none', '', ''),
  dateLayout('year', '2022', '2023'),
  dateLayout('month', '2022-12', '2023-01'),
  dateLayout('day', '2022-12-31', '2023-01-01'),
];

export { BEFORE as YEAR_END_TS, AFTER as NEW_YEAR_TS };
