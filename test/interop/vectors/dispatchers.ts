/**
 * A table spread across dispatchers (TiCDC's enable-table-across-nodes): each dispatcher writes its
 * own data files `CDC_{dispatcherId}_{index}` and index file `meta/CDC_{dispatcherId}.index`, each
 * numbered from 1. Paths as pingcap/ticdc pkg/cloudstorage/path_test.go TestGenerateDataFilePath
 * (`test/table1/5/CDC_%s_000001.json` with file-index-width 6 and date-separator none) and
 * TestGenerateDataFilePathResyncIndexFile (`CDC_%s_000002` ... after an index file naming 000001);
 * generator.go `generateDataFileName` / `generateIndexFileName`. A dispatcher id prints as its
 * low and high uint64 in decimal, one after the other (pkg/common/types.go `GID.String`).
 *
 * Reconstructed: the dispatcher ids' numbers, the rows, their commit ts and the canal-json rows
 * (key order of pkg/sink/codec/canal/canal_json_encoder.go, with `_tidb`).
 */
import { ticdcSchemaFile } from './schemaFiles.ts';
import { indexFile, metadataFile, records, type Layout } from './types.ts';

/** GID{Low: 4426918934213548932, High: 10982744219306426111} and GID{Low: 1569807135924731431, High: 8260393004582341212}. */
export const DISPATCHERS = ['442691893421354893210982744219306426111', '15698071359247314318260393004582341212'] as const;

const VERSION = 5n;
const FOLDER = `test/table1/${VERSION}`;
const file = (dispatcher: string, index: number) => `CDC_${dispatcher}_${String(index).padStart(6, '0')}.json`;

function row(type: 'INSERT' | 'UPDATE', id: number, v: string, commitTs: bigint, old?: string): string {
  const es = commitTs >> 18n;
  const oldJson = old === undefined ? 'null' : `[{"id":"${id}","v":"${old}"}]`;
  return (
    `{"id":0,"database":"test","table":"table1","pkNames":["id"],"isDdl":false,"type":"${type}","es":${es},"ts":${es},"sql":"",` +
    `"sqlType":{"id":4,"v":12},"mysqlType":{"id":"int","v":"varchar"},"old":${oldJson},"data":[{"id":"${id}","v":"${v}"}],"_tidb":{"commitTs":${commitTs}}}`
  );
}

const [D1, D2] = DISPATCHERS;

export const DISPATCHER_LAYOUT: Layout = {
  name: 'one table across two dispatchers: CDC_{dispatcher}_{index}.json, meta/CDC_{dispatcher}.index',
  source: 'pingcap/ticdc pkg/cloudstorage/path_test.go (TestGenerateDataFilePath, TestGenerateDataFilePathResyncIndexFile), pkg/cloudstorage/generator.go',
  settings: { dateSeparator: 'none' },
  files: [
    ticdcSchemaFile({ Table: '', Schema: 'test', TableVersion: 4n, Query: 'CREATE DATABASE `test`', Type: 1, TableColumns: null }),
    ticdcSchemaFile({
      Table: 'table1',
      Schema: 'test',
      TableVersion: VERSION,
      Query: 'create table test.table1 (id int primary key, v varchar(64))',
      Type: 3,
      TableColumns: [
        { ColumnName: 'id', ColumnType: 'INT', ColumnPrecision: '11', ColumnNullable: 'false', ColumnIsPk: 'true' },
        { ColumnName: 'v', ColumnType: 'VARCHAR', ColumnPrecision: '64' },
      ],
    }),
    { path: `${FOLDER}/${file(D1, 1)}`, text: records([row('INSERT', 1, 'a', 10n), row('INSERT', 2, 'a', 10n)], '\r\n') },
    { path: `${FOLDER}/${file(D1, 2)}`, text: records([row('UPDATE', 1, 'b', 30n, 'a')], '\r\n') },
    indexFile(FOLDER, file(D1, 2), D1),
    { path: `${FOLDER}/${file(D2, 1)}`, text: records([row('INSERT', 3, 'c', 20n)], '\r\n') },
    { path: `${FOLDER}/${file(D2, 2)}`, text: records([row('INSERT', 4, 'd', 25n)], '\r\n') },
    { path: `${FOLDER}/${file(D2, 3)}`, text: records([row('UPDATE', 3, 'e', 40n, 'c')], '\r\n') },
    indexFile(FOLDER, file(D2, 3), D2),
    metadataFile(40n),
  ],
  expected: [{ schema: 'test', table: 'table1', columns: ['id', 'v'], orderBy: 'id', rows: [['1', 'b'], ['2', 'a'], ['3', 'e'], ['4', 'd']] }],
};
