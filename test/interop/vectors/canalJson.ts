/**
 * canal-json rows with and without TiCDC's `_tidb` extension, in the layout of
 * pingcap/ticdc tests/integration_tests/canal_json_storage_partition_table (conf/changefeed.toml:
 * protocol canal-json, terminator "\n", date-separator 'day', enable-partition-separator = true; its
 * run.sh does not set enable-tidb-extension, so no `_tidb`; canal_json_storage_basic/run.sh sets
 * `enable-tidb-extension=true` "to generate the commit ts").
 *
 * Each row is one JSON object in the key order of pingcap/ticdc
 * pkg/sink/codec/canal/canal_json_encoder.go (`newJSONMessageForDML`): id 0, database, table, pkNames,
 * isDdl, type, es (commit ts >> 18), ts (the wall clock: reconstructed as es + 7), sql "", sqlType
 * (java.sql.Types: INT is 4), mysqlType ("int"), old (null for insert and delete), data, then
 * `_tidb: {commitTs}` only with the extension; each followed by the terminator
 * (canal_json_txn_encoder.go). The update `a=a+10 where a=2` changes the primary key, so TiCDC splits
 * it into a DELETE and an INSERT (as csv_storage_update_pk_clustered/result/changefeed1_pk.res shows
 * for a single-row key update); 12 hashes to p2 like 2.
 */
import { DATE_FOLDERS, folderFiles, folderOf, INSERT_TS, PARTITION_IDS, PARTITION_SCHEMA_FILES, UPDATE_TS } from './partitions.ts';
import { metadataFile, type Layout } from './types.ts';

/** One canal-json row of table partition_table.t as TiCDC writes it (without terminator); `ts` is es + 7. */
export function canalRow(type: 'INSERT' | 'DELETE', a: number, commitTs: bigint, tidbExtension: boolean): string {
  const es = commitTs >> 18n;
  const tidb = tidbExtension ? `,"_tidb":{"commitTs":${commitTs}}` : '';
  return (
    `{"id":0,"database":"partition_table","table":"t","pkNames":["a"],"isDdl":false,"type":"${type}","es":${es},"ts":${es + 7n},"sql":"",` +
    `"sqlType":{"a":4},"mysqlType":{"a":"int"},"old":null,"data":[{"a":"${a}"}]${tidb}}`
  );
}

const STATEMENTS = [
  [1, 2, 3, 4, 5, 6],
  [7, 8, 9],
];

function canalLayout(tidbExtension: boolean): Layout {
  const date = DATE_FOLDERS.day;
  const data = PARTITION_IDS.flatMap((id, p) => {
    const batches = STATEMENTS.map((rows, s) => rows.filter((a) => a % 5 === p).map((a) => canalRow('INSERT', a, INSERT_TS[s]!, tidbExtension)));
    if (p === 2) batches.push([canalRow('DELETE', 2, UPDATE_TS, tidbExtension), canalRow('INSERT', 12, UPDATE_TS, tidbExtension)]);
    return folderFiles(folderOf(date, id), batches, '\n', '.json');
  });
  return {
    name: `canal-json ${tidbExtension ? 'with' : 'without'} the _tidb extension (partitioned, date-separator=day)`,
    source: 'pingcap/ticdc tests/integration_tests/canal_json_storage_partition_table (conf/changefeed.toml, data/prepare.sql); pkg/sink/codec/canal/canal_json_encoder.go',
    settings: { dateSeparator: 'day', enablePartitionSeparator: true },
    files: [...PARTITION_SCHEMA_FILES, ...data, metadataFile(UPDATE_TS)],
    expected: [{ schema: 'partition_table', table: 't', columns: ['a'], orderBy: 'a', rows: [1, 3, 4, 5, 6, 7, 8, 9, 12].map((a) => [String(a)]) }],
  };
}

export const CANAL_JSON_LAYOUTS: Layout[] = [canalLayout(true), canalLayout(false)];
