/** Writes a storage sink layout directly with the lib/codec encoders, for consumer tests that need exact files. */
import type { DdlEvent, RowChange, TableDef } from '../../../lib/codec/index.ts';
import { encodeCanalJsonRows, encodeCsvRows, encodeSchemaFile } from '../../../lib/codec/index.ts';
import { dataFilePath, FIRST_FILE_INDEX, formatIndexFile, indexFilePath, metadataFile, type DataFolder } from '../../../lib/codec/layout.ts';
import type { ExternalStorage } from '../../../lib/storage/storage.ts';

const UTF8 = new TextEncoder();

export function def(schema: string, table: string, version: bigint, extra: TableDef['columns'] = []): TableDef {
  return {
    schema,
    table,
    version,
    columns: [{ name: 'id', type: 'INT', primaryKey: true, nullable: false }, { name: 'name', type: 'VARCHAR', precision: 64 }, ...extra],
  };
}

export function ddl(ddlType: string, query: string, schema: string, table: string | undefined, commitTs: bigint, tableDef?: TableDef): DdlEvent {
  return { kind: 'ddl', commitTs, query, ddlType, schema, ...(table ? { table } : {}), ...(tableDef ? { tableDef } : {}), blockedDispatchers: 'all' };
}

export function insert(table: TableDef, commitTs: bigint, columns: RowChange['columns'], op: RowChange['op'] = 'insert'): RowChange {
  return { kind: 'row', op, schema: table.schema, table: table.table, tableVersion: table.version, commitTs, dispatcherId: 'd', columns };
}

export async function putSchema(storage: ExternalStorage, event: DdlEvent | TableDef): Promise<string> {
  const file = encodeSchemaFile(event);
  await storage.put(file.path, UTF8.encode(file.text));
  return file.path;
}

/**
 * Data files of one folder, numbered from 1 as TiCDC numbers them, and its index file naming the
 * last. `date` '' writes no date level; `partitionId` adds a partition level. Returns their paths.
 */
export async function putDataFiles(
  storage: ExternalStorage,
  table: TableDef,
  files: RowChange[][],
  protocol: 'csv' | 'canal-json' = 'csv',
  date = '2024-05-01',
  partitionId?: bigint,
): Promise<string[]> {
  const folder: DataFolder = { schema: table.schema, table: table.table, tableVersion: table.version };
  if (partitionId !== undefined) folder.partitionId = partitionId;
  if (date !== '') folder.date = date;
  const paths: string[] = [];
  for (const [offset, rows] of files.entries()) {
    const path = dataFilePath({ ...folder, index: FIRST_FILE_INDEX + offset, extension: protocol === 'csv' ? '.csv' : '.json', fileIndexWidth: 6 });
    const text = protocol === 'csv' ? encodeCsvRows(rows, table, { includeCommitTs: true }) : encodeCanalJsonRows(rows, table);
    await storage.put(path, UTF8.encode(text));
    paths.push(path);
  }
  const last = paths[paths.length - 1]!;
  await storage.put(indexFilePath(folder), UTF8.encode(formatIndexFile(last.slice(last.lastIndexOf('/') + 1))));
  return paths;
}

export async function putMetadata(storage: ExternalStorage, checkpointTs: bigint): Promise<void> {
  await storage.put('metadata', UTF8.encode(metadataFile(checkpointTs)));
}
