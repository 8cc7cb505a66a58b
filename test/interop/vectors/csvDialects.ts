/**
 * csv records of every dialect setting, byte for byte as TiCDC's csv codec writes them, each in a
 * one-table layout to replay. The records are upstream's test vectors; what is reconstructed is said
 * next to each (the tables' column types, which the message tests do not state, a row inserted
 * before an upstream delete so that the delete has something to remove, the schema files and paths).
 *
 * Sources: pingcap/ticdc pkg/sink/codec/csv/csv_message_test.go (TestCSVMessageEncode,
 * TestConvertToCSVType, TestEncodeHeader), pkg/sink/codec/csv/csv_encoder_test.go
 * (TestCSVBatchCodecWithHeader), pkg/sink/codec/csv/csv_message.go (formatValue: NULL is written as
 * the configured null string; OutputHandleKey writes nothing: "not support output handle key"),
 * pkg/sink/codec/csv/csv_decoder.go (backslash escapes are read only when quote is empty).
 */
import { ticdcSchemaFile, type TiCdcColumn } from './schemaFiles.ts';
import { indexFile, metadataFile, records, type ConsumerSettings, type Layout } from './types.ts';

/** The commit ts of every TestCSVMessageEncode case. */
const TS = 435661838416609281n;
/** Its day (435661838416609281 >> 18 is 2022-08-31T03:53:43Z), as date-separator 'day' names the folder. */
const DATE = '2022-08-31';
/** Table versions: the CREATE TABLE commit ts (reconstructed, below TS). */
const VERSION = 435661838416609000n;
const DATABASE_VERSION = 435661838416608000n;

const INT_PK: TiCdcColumn = { ColumnName: 'c1', ColumnType: 'INT', ColumnPrecision: '11', ColumnNullable: 'false', ColumnIsPk: 'true' };
const VARCHAR_PK: TiCdcColumn = { ColumnName: 'c1', ColumnType: 'VARCHAR', ColumnPrecision: '64', ColumnNullable: 'false', ColumnIsPk: 'true' };
const varchar = (name: string): TiCdcColumn => ({ ColumnName: name, ColumnType: 'VARCHAR', ColumnPrecision: '64' });

const name = (index: number) => `CDC${String(index).padStart(20, '0')}.csv`;

interface DialectCase {
  name: string;
  source: string;
  table: string;
  columns: TiCdcColumn[];
  /** The CREATE TABLE statement of `columns` (reconstructed). */
  create: string;
  settings: ConsumerSettings;
  /** Data files in order, each a list of records (without terminator). */
  files: string[][];
  terminator: string;
  /** Rows after replay, ordered by the first column (the primary key). */
  rows: Array<Array<string | null>>;
  /** A header line written at the top of each data file (output-field-header). */
  header?: string;
}

function layout(c: DialectCase): Layout {
  const folder = `test/${c.table}/${VERSION}/${DATE}`;
  const files = c.files.map((recordsOfFile, i) => ({
    path: `${folder}/${name(i + 1)}`,
    text: (c.header === undefined ? '' : c.header + c.terminator) + records(recordsOfFile, c.terminator),
  }));
  return {
    name: c.name,
    source: c.source,
    settings: { dateSeparator: 'day', ...c.settings },
    files: [
      ticdcSchemaFile({ Table: '', Schema: 'test', TableVersion: DATABASE_VERSION, Query: 'CREATE DATABASE `test`', Type: 1, TableColumns: null }),
      ticdcSchemaFile({ Table: c.table, Schema: 'test', TableVersion: VERSION, Query: c.create, Type: 3, TableColumns: c.columns }),
      ...files,
      indexFile(folder, name(c.files.length)),
      metadataFile(TS),
    ],
    expected: [{ schema: 'test', table: c.table, columns: c.columns.map((col) => col.ColumnName), orderBy: c.columns[0]!.ColumnName, rows: c.rows }],
  };
}

const MESSAGE_TEST = 'pingcap/ticdc pkg/sink/codec/csv/csv_message_test.go TestCSVMessageEncode';
const T1 = { table: 'table1', columns: [INT_PK, varchar('c2')], create: 'CREATE TABLE `table1` (`c1` INT PRIMARY KEY, `c2` VARCHAR(64))' };
const T2 = { table: 'table2', columns: [VARCHAR_PK, varchar('c2')], create: 'CREATE TABLE `table2` (`c1` VARCHAR(64) PRIMARY KEY, `c2` VARCHAR(64))' };

export const CSV_DIALECT_LAYOUTS: Layout[] = [
  layout({
    name: 'csv "typical configurations": delimiter , quote " terminator \\n, include-commit-ts',
    source: `${MESSAGE_TEST} "csv encode with typical configurations"`,
    ...T1,
    settings: { csv: { delimiter: ',', quote: '"', terminator: '\n', nullString: '\\N', includeCommitTs: true } },
    files: [['"I","table1","test",435661838416609281,123,"hello,world"']],
    terminator: '\n',
    rows: [['123', 'hello,world']],
  }),
  layout({
    name: 'csv output-handle-key: TiCDC writes no handle-key column, so the records are the typical ones',
    source: `${MESSAGE_TEST} "csv encode with typical configurations"; pkg/sink/codec/csv/csv_message.go encodeMeta (OutputHandleKey: "not support output handle key")`,
    ...T1,
    settings: { csv: { delimiter: ',', quote: '"', terminator: '\n', nullString: '\\N', includeCommitTs: true, outputHandleKey: true } },
    files: [['"I","table1","test",435661838416609281,123,"hello,world"']],
    terminator: '\n',
    rows: [['123', 'hello,world']],
  }),
  layout({
    name: 'csv no quote, delimiter !: delimiters in values escaped with backslashes',
    source: `${MESSAGE_TEST} "csv encode values containing single-character delimter string, without quote mark"`,
    ...T2,
    settings: { csv: { delimiter: '!', quote: '', terminator: '\n', nullString: '\\N', includeCommitTs: true } },
    files: [['U!table2!test!435661838416609281!a\\!b\\!c!def']],
    terminator: '\n',
    rows: [['a!b!c', 'def']],
  }),
  layout({
    name: 'csv output-old-value: the is-update column (false on an insert)',
    source: `${MESSAGE_TEST} "csv encode values containing single-character delimter string, without quote mark, update with old value"`,
    ...T2,
    settings: { csv: { delimiter: '!', quote: '', terminator: '\n', nullString: '\\N', includeCommitTs: true, outputOldValue: true } },
    files: [['I!table2!test!435661838416609281!false!a\\!b\\!c!def']],
    terminator: '\n',
    rows: [['a!b!c', 'def']],
  }),
  layout({
    name: 'csv quote ": delimiters inside quoted values, a DATETIME',
    source: `${MESSAGE_TEST} "csv encode values containing single-character delimter string, with quote mark"`,
    table: 'table3',
    columns: [VARCHAR_PK, varchar('c2'), { ColumnName: 'c3', ColumnType: 'DATETIME' }],
    create: 'CREATE TABLE `table3` (`c1` VARCHAR(64) PRIMARY KEY, `c2` VARCHAR(64), `c3` DATETIME)',
    settings: { csv: { delimiter: ',', quote: '"', terminator: '\n', nullString: '\\N', includeCommitTs: true } },
    files: [['"U","table3","test",435661838416609281,"a,b,c","def","2022-08-31 17:07:00"']],
    terminator: '\n',
    rows: [['a,b,c', 'def', '2022-08-31 17:07:00']],
  }),
  layout({
    name: 'csv multi-character delimiter [*], no quote, CRLF, no commit ts: a delete',
    // The first file (an insert of the row the upstream delete removes, and one that stays) is
    // reconstructed with the same rules; the second is upstream's record.
    source: `${MESSAGE_TEST} "csv encode values containing multi-character delimiter string, without quote mark"`,
    ...{ table: 'table4', columns: [VARCHAR_PK, varchar('c2')], create: 'CREATE TABLE `table4` (`c1` VARCHAR(64) PRIMARY KEY, `c2` VARCHAR(64))' },
    settings: { csv: { delimiter: '[*]', quote: '', terminator: '\r\n', nullString: '\\N', includeCommitTs: false } },
    files: [['I[*]table4[*]test[*]a\\[\\*\\]b\\[\\*\\]c[*]def', 'I[*]table4[*]test[*]kept[*]x'], ['D[*]table4[*]test[*]a\\[\\*\\]b\\[\\*\\]c[*]def']],
    terminator: '\r\n',
    rows: [['kept', 'x']],
  }),
  layout({
    name: "csv quote ' with delimiter [*]: a NULL and a DOUBLE",
    source: `${MESSAGE_TEST} "csv encode with values containing multi-character delimiter string, with quote mark"`,
    table: 'table5',
    columns: [VARCHAR_PK, varchar('c2'), varchar('c3'), { ColumnName: 'c4', ColumnType: 'DOUBLE', ColumnPrecision: '22' }],
    create: 'CREATE TABLE `table5` (`c1` VARCHAR(64) PRIMARY KEY, `c2` VARCHAR(64), `c3` VARCHAR(64), `c4` DOUBLE)',
    settings: { csv: { delimiter: '[*]', quote: "'", terminator: '\n', nullString: '\\N', includeCommitTs: false } },
    files: [["'I'[*]'table5'[*]'test'[*]'a[*]b[*]c'[*]'def'[*]\\N[*]12345.678"]],
    terminator: '\n',
    rows: [['a[*]b[*]c', 'def', null, '12345.678']],
  }),
  layout({
    name: 'csv null = "NULL": the configured null string',
    // The upstream record above with its NULL written as the configured null string (csv_message.go formatValue).
    source: `${MESSAGE_TEST} "csv encode with values containing multi-character delimiter string, with quote mark"; pkg/sink/codec/csv/csv_message.go formatValue`,
    table: 'table5',
    columns: [VARCHAR_PK, varchar('c2'), varchar('c3'), { ColumnName: 'c4', ColumnType: 'DOUBLE', ColumnPrecision: '22' }],
    create: 'CREATE TABLE `table5` (`c1` VARCHAR(64) PRIMARY KEY, `c2` VARCHAR(64), `c3` VARCHAR(64), `c4` DOUBLE)',
    settings: { csv: { delimiter: '[*]', quote: "'", terminator: '\n', nullString: 'NULL', includeCommitTs: false } },
    files: [["'I'[*]'table5'[*]'test'[*]'a[*]b[*]c'[*]'def'[*]NULL[*]12345.678", "'I'[*]'table5'[*]'test'[*]'b'[*]'\\N'[*]'NULL'[*]1"]],
    terminator: '\n',
    rows: [['a[*]b[*]c', 'def', null, '12345.678'], ['b', '\\N', 'NULL', '1']],
  }),
  layout({
    name: 'csv no quote: backslash and LF escaped',
    source: `${MESSAGE_TEST} "csv encode with values containing backslash and LF, without quote mark"`,
    table: 'table6',
    columns: [VARCHAR_PK, varchar('c2')],
    create: 'CREATE TABLE `table6` (`c1` VARCHAR(64) PRIMARY KEY, `c2` VARCHAR(64))',
    settings: { csv: { delimiter: ',', quote: '', terminator: '\n', nullString: '\\N', includeCommitTs: true } },
    files: [['U,table6,test,435661838416609281,a\\\\b\\\\c,def\\n']],
    terminator: '\n',
    rows: [['a\\b\\c', 'def\n']],
  }),
  layout({
    name: "csv quote ': backslashes and CR kept as they are inside quotes",
    source: `${MESSAGE_TEST} "csv encode with values containing backslash and CR, with quote mark"; pkg/sink/codec/csv/csv_decoder.go (no backslash escapes with a quote)`,
    table: 'table7',
    columns: [VARCHAR_PK, varchar('c2'), varchar('c3')],
    create: 'CREATE TABLE `table7` (`c1` VARCHAR(64) PRIMARY KEY, `c2` VARCHAR(64), `c3` VARCHAR(64))',
    settings: { csv: { delimiter: ',', quote: "'", terminator: '\n', nullString: '\\N', includeCommitTs: false } },
    files: [["'I','table7','test','\\','\\\r','\\\\'"]],
    terminator: '\n',
    rows: [['\\', '\\\r', '\\\\']],
  }),
  layout({
    name: 'csv tab delimiter, unicode: a delete',
    // The first file (the insert the upstream delete removes, one row that stays) is reconstructed.
    source: `${MESSAGE_TEST} "csv encode with values containing unicode characters"`,
    table: 'table8',
    columns: [VARCHAR_PK, { ColumnName: 'c2', ColumnType: 'DOUBLE', ColumnPrecision: '22' }, varchar('c3')],
    create: 'CREATE TABLE `table8` (`c1` VARCHAR(64) PRIMARY KEY, `c2` DOUBLE, `c3` VARCHAR(64))',
    settings: { csv: { delimiter: '\t', quote: '"', terminator: '\n', nullString: '\\N', includeCommitTs: true } },
    files: [
      ['"I"\t"table8"\t"test"\t435661838416609280\t"a\tb"\t123.456\t"你好，世界"', '"I"\t"table8"\t"test"\t435661838416609280\t"b"\t1.5\t"世界"'],
      ['"D"\t"table8"\t"test"\t435661838416609281\t"a\tb"\t123.456\t"你好，世界"'],
    ],
    terminator: '\n',
    rows: [['b', '1.5', '世界']],
  }),
  layout({
    name: 'csv binary-encoding-method hex',
    source: 'pingcap/ticdc pkg/sink/codec/csv/csv_message_test.go TestConvertToCSVType (varbinary "hello world" as 68656c6c6f20776f726c64 with hex)',
    table: 'binary_hex',
    columns: [INT_PK, { ColumnName: 'c2', ColumnType: 'BLOB', ColumnPrecision: '65535' }],
    create: 'CREATE TABLE `binary_hex` (`c1` INT PRIMARY KEY, `c2` BLOB)',
    settings: { csv: { delimiter: ',', quote: '"', terminator: '\n', nullString: '\\N', includeCommitTs: true, binaryEncodingMethod: 'hex' } },
    files: [['"I","binary_hex","test",435661838416609281,1,"68656c6c6f20776f726c64"']],
    terminator: '\n',
    rows: [['1', 'hello world']],
  }),
  layout({
    name: 'csv binary-encoding-method base64 (the default)',
    source: 'pingcap/ticdc pkg/sink/codec/csv/csv_message_test.go TestConvertToCSVType (varbinary "hello world" as aGVsbG8gd29ybGQ= with base64)',
    table: 'binary_base64',
    columns: [INT_PK, { ColumnName: 'c2', ColumnType: 'BLOB', ColumnPrecision: '65535' }],
    create: 'CREATE TABLE `binary_base64` (`c1` INT PRIMARY KEY, `c2` BLOB)',
    settings: { csv: { delimiter: ',', quote: '"', terminator: '\n', nullString: '\\N', includeCommitTs: true, binaryEncodingMethod: 'base64' } },
    files: [['"I","binary_base64","test",435661838416609281,1,"aGVsbG8gd29ybGQ="']],
    terminator: '\n',
    rows: [['1', 'hello world']],
  }),
  layout({
    name: 'csv output-field-header: a header line at the top of each data file',
    source: 'pingcap/ticdc pkg/sink/codec/csv/csv_encoder_test.go TestCSVBatchCodecWithHeader; downstreamadapter/sink/cloudstorage/buffer_manager.go (the header leads each file)',
    table: 'table1',
    columns: [{ ColumnName: 'col1', ColumnType: 'INT', ColumnPrecision: '11', ColumnNullable: 'false', ColumnIsPk: 'true' }],
    create: 'create table test.table1(col1 int primary key)',
    settings: { csv: { delimiter: ',', quote: '"', terminator: '\n', nullString: '\\N', includeCommitTs: true, outputFieldHeader: true } },
    header: 'ticdc-meta$operation,ticdc-meta$table,ticdc-meta$schema,ticdc-meta$commit-ts,col1',
    files: [['"I","table1","test",435661838416609281,1'], ['"I","table1","test",435661838416609282,2']],
    terminator: '\n',
    rows: [['1'], ['2']],
  }),
];
