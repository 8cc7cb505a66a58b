/**
 * A table-version switch: a DDL mid-stream (ADD COLUMN) moves a table's rows to a new table-version
 * folder, after a schema file for the new version. The workload of pingcap/ticdc
 * downstreamadapter/sink/cloudstorage/sink_test.go (verifyWriteDDLEventFlushDMLBeforeBlock: `create
 * table t_flush_before_ddl (id int primary key, v int)`, `insert ... values (1, 1)`, then `alter table
 * t_flush_before_ddl add column c2 int` committed 10 after the insert); the csv dialect is TiCDC's
 * default (pkg/config/replica_config.go: delimiter ',', quote '"', null '\N', terminator CRLF,
 * include-commit-ts false) with date-separator 'day'. The ADD COLUMN schema file's type is 5
 * (ActionAddColumn), as TestWriteDDLEvent's `schema_100_4192708364.json`.
 *
 * Reconstructed: the commit ts, and two rows after the DDL (an insert and an update of row 1, in the
 * new version's folder).
 */
import { ticdcSchemaFile } from './schemaFiles.ts';
import { indexFile, metadataFile, records, type Layout } from './types.ts';

const V1 = 450253247000000000n;
const INSERT_TS = V1 + 100n;
const V2 = INSERT_TS + 10n;
/** 450253247000000000 >> 18 is 2024-06-05T09:30:30Z. */
const DATE = '2024-06-05';
const name = (index: number) => `CDC${String(index).padStart(20, '0')}.csv`;

const ID = { ColumnName: 'id', ColumnType: 'INT', ColumnPrecision: '11', ColumnNullable: 'false', ColumnIsPk: 'true' } as const;
const V = { ColumnName: 'v', ColumnType: 'INT', ColumnPrecision: '11' } as const;
const C2 = { ColumnName: 'c2', ColumnType: 'INT', ColumnPrecision: '11' } as const;

const folder1 = `test/t_flush_before_ddl/${V1}/${DATE}`;
const folder2 = `test/t_flush_before_ddl/${V2}/${DATE}`;

export const TABLE_VERSION_LAYOUT: Layout = {
  name: 'table-version switch: ADD COLUMN mid-stream, TiCDC default csv (CRLF, no commit ts)',
  source: 'pingcap/ticdc downstreamadapter/sink/cloudstorage/sink_test.go (verifyWriteDDLEventFlushDMLBeforeBlock, TestWriteDDLEvent); pkg/config/replica_config.go',
  settings: { csv: { delimiter: ',', quote: '"', terminator: '\r\n', nullString: '\\N', includeCommitTs: false }, dateSeparator: 'day' },
  files: [
    ticdcSchemaFile({ Table: '', Schema: 'test', TableVersion: V1 - 100n, Query: 'CREATE DATABASE `test`', Type: 1, TableColumns: null }),
    ticdcSchemaFile({ Table: 't_flush_before_ddl', Schema: 'test', TableVersion: V1, Query: 'create table t_flush_before_ddl (id int primary key, v int)', Type: 3, TableColumns: [ID, V] }),
    { path: `${folder1}/${name(1)}`, text: records(['"I","t_flush_before_ddl","test",1,1'], '\r\n') },
    indexFile(folder1, name(1)),
    ticdcSchemaFile({ Table: 't_flush_before_ddl', Schema: 'test', TableVersion: V2, Query: 'alter table t_flush_before_ddl add column c2 int', Type: 5, TableColumns: [ID, V, C2] }),
    { path: `${folder2}/${name(1)}`, text: records(['"I","t_flush_before_ddl","test",2,2,3'], '\r\n') },
    { path: `${folder2}/${name(2)}`, text: records(['"U","t_flush_before_ddl","test",1,5,7'], '\r\n') },
    indexFile(folder2, name(2)),
    metadataFile(V2 + 20n),
  ],
  expected: [{ schema: 'test', table: 't_flush_before_ddl', columns: ['id', 'v', 'c2'], orderBy: 'id', rows: [['1', '5', '7'], ['2', '2', '3']] }],
};
