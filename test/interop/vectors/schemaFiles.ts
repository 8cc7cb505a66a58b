/**
 * Schema files as TiCDC writes them, built outside sluice's codec: TiCDC marshals its `SchemaFile`
 * struct with Go's `json.MarshalIndent(v, "", "    ")` (pingcap/ticdc pkg/cloudstorage/schema_file.go,
 * `Marshal`), and names the file `schema_{TableVersion}_{checksum:%010d}.json`, the checksum being
 * CRC32-IEEE of the same marshalling of `{Table, Schema, Version: 0, TableColumns sorted by
 * ColumnName, TableColumnsTotal}` (`marshalForChecksum`, pkg/hash/position_inertia.go).
 *
 * Invariant guarded here: the text is exactly Go's. `JSON.stringify(v, null, 4)` and Go's MarshalIndent
 * agree byte for byte on objects of strings, integers and null whose text is printable ASCII without
 * `<`, `>` and `&` (Go escapes those three); anything else is refused rather than written wrong.
 * test/interop/sinkOutput.test.ts checks this helper against TiCDC's own golden files.
 */
import { crc32 } from 'node:zlib';
import type { LayoutFile } from './types.ts';

/** A `TableCol` of TiCDC's schema file, fields in its struct order (empty ones omitted, as `omitempty`). */
export interface TiCdcColumn {
  ColumnName: string;
  ColumnType: string;
  ColumnDefault?: string | number;
  ColumnPrecision?: string;
  ColumnScale?: string;
  ColumnNullable?: 'false';
  ColumnIsPk?: 'true';
  ColumnElems?: string[];
}

export interface TiCdcSchemaFile {
  Table: string;
  Schema: string;
  TableVersion: bigint;
  Query: string;
  /** TiDB's DDL action code (3 CREATE TABLE, 5 ADD COLUMN, 1 CREATE SCHEMA, ...). */
  Type: number;
  /** null for a database-level DDL (TiCDC leaves the slice nil). */
  TableColumns: TiCdcColumn[] | null;
}

const FIELD_ORDER: ReadonlyArray<keyof TiCdcColumn> = ['ColumnName', 'ColumnType', 'ColumnDefault', 'ColumnPrecision', 'ColumnScale', 'ColumnNullable', 'ColumnIsPk', 'ColumnElems'];
const PLAIN = /^[\x20-\x7e]*$/;

function ordered(column: TiCdcColumn): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of FIELD_ORDER) if (column[key] !== undefined) out[key] = column[key];
  return out;
}

/** JSON.stringify with 4 spaces, refusing text where it and Go's MarshalIndent differ. */
function goIndent(value: unknown, tableVersion?: bigint): string {
  const text = JSON.stringify(value, null, 4);
  if (!PLAIN.test(text.replaceAll('\n', '')) || /[<>&]/.test(text)) {
    throw new Error(`schema file vector ${text.slice(0, 80)}: only printable ASCII without <, > and & is written here (Go escapes or encodes the rest differently)`);
  }
  return tableVersion === undefined ? text : text.replace('"TableVersion": "__TABLE_VERSION__"', `"TableVersion": ${tableVersion}`);
}

/** The checksum in the file name (TiCDC's `Checksum`). */
export function ticdcChecksum(file: Pick<TiCdcSchemaFile, 'Table' | 'Schema' | 'TableColumns'>): number {
  // marshalForChecksum copies the columns into a fresh slice: `[]`, never null, when there are none.
  const columns = [...(file.TableColumns ?? [])].sort((a, b) => (a.ColumnName < b.ColumnName ? -1 : a.ColumnName > b.ColumnName ? 1 : 0)).map(ordered);
  const payload = { Table: file.Table, Schema: file.Schema, Version: 0, TableColumns: columns, TableColumnsTotal: file.TableColumns?.length ?? 0 };
  return crc32(Buffer.from(goIndent(payload), 'utf8'));
}

/** The schema file TiCDC writes for `file`: `{schema}[/{table}]/meta/schema_{version}_{checksum}.json` and its text. */
export function ticdcSchemaFile(file: TiCdcSchemaFile): LayoutFile {
  const body = {
    Table: file.Table,
    Schema: file.Schema,
    Version: 1,
    // A uint64 that may pass 2^53: put in as text, then unquoted.
    TableVersion: '__TABLE_VERSION__',
    Query: file.Query,
    Type: file.Type,
    TableColumns: file.TableColumns === null ? null : file.TableColumns.map(ordered),
    TableColumnsTotal: file.TableColumns?.length ?? 0,
  };
  const checksum = String(ticdcChecksum(file)).padStart(10, '0');
  const folder = file.Table === '' ? file.Schema : `${file.Schema}/${file.Table}`;
  return { path: `${folder}/meta/schema_${file.TableVersion}_${checksum}.json`, text: goIndent(body, file.TableVersion) };
}

/**
 * TiCDC's golden schema file: test.table1 after ADD COLUMN, `test/table1/meta/schema_100_4192708364.json`
 * (pingcap/ticdc downstreamadapter/sink/cloudstorage/sink_test.go TestWriteDDLEvent; the file is
 * json.MarshalIndent with 4 spaces, pkg/cloudstorage/schema_file.go Marshal).
 */
export const GOLDEN_SCHEMA_100_TEXT = [
  '{',
  '    "Table": "table1",',
  '    "Schema": "test",',
  '    "Version": 1,',
  '    "TableVersion": 100,',
  '    "Query": "alter table test.table1 add col2 varchar(64)",',
  '    "Type": 5,',
  '    "TableColumns": [',
  '        {',
  '            "ColumnName": "col1",',
  '            "ColumnType": "INT",',
  '            "ColumnPrecision": "11"',
  '        },',
  '        {',
  '            "ColumnName": "col2",',
  '            "ColumnType": "VARCHAR",',
  '            "ColumnPrecision": "5"',
  '        }',
  '    ],',
  '    "TableColumnsTotal": 2',
  '}',
].join('\n');
