import { expect } from 'chai';
import fc from 'fast-check';
import { crc32 } from 'node:zlib';
import { DecodeError, InvalidChangeEventError, type ColumnDef, type DdlEvent, type TableDef } from '../../lib/codec/changeEvent.ts';
import { DDL_TYPE_CODES, ddlTypeCode, ddlTypeName } from '../../lib/codec/ddlTypes.ts';
import { decodeSchemaFile, encodeSchemaFile, schemaChecksum } from '../../lib/codec/schemaFile.ts';
import { ddlArb, tableDefArb } from './arbitraries.ts';
import { GOLDEN_SCHEMA_100_TEXT } from '../interop/vectors/schemaFiles.ts';

/** CRC32-IEEE of text as UTF-8: the checksum computed independently of schemaFile.ts. */
const crcOf = (text: string) => crc32(Buffer.from(text, 'utf8'));

// TiCDC's own fixture (pkg/cloudstorage/schema_file_test.go, generateSchemaFile; the same table is in
// tiflow's pkg/sink/cloudstorage/table_definition_test.go).
const ticdcTable1: ColumnDef[] = [
  { name: 'Id', type: 'INT', precision: 11, default: 10, nullable: false, primaryKey: true },
  { name: 'LastName', type: 'VARCHAR', precision: 128, default: 'Default LastName', nullable: false },
  { name: 'FirstName', type: 'VARCHAR', precision: 64, default: 'Default FirstName' },
  { name: 'Birthday', type: 'DATETIME', default: 12345678 },
];

// TiCDC's downstreamadapter/sink/cloudstorage/sink_test.go, TestWriteDDLEvent.
const sinkTestTable: TableDef = {
  schema: 'test',
  table: 'table1',
  version: 100n,
  columns: [
    { name: 'col1', type: 'INT', precision: 11 },
    { name: 'col2', type: 'VARCHAR', precision: 5 },
  ],
};
const sinkTestDdl: DdlEvent = {
  kind: 'ddl',
  commitTs: 100n,
  query: 'alter table test.table1 add col2 varchar(64)',
  ddlType: 'ADD COLUMN',
  schema: 'test',
  table: 'table1',
  tableDef: sinkTestTable,
  blockedDispatchers: 'all',
};

describe('schema files', () => {
  describe('golden checksums from TiCDC tests', () => {
    it('database-level schema1 at version 100 is schema1/meta/schema_100_3233644819.json (schema_file_test.go TestSchemaFileGenFilePath)', () => {
      expect(schemaChecksum({ schema: 'schema1' })).to.equal(3233644819);
      const ddl: DdlEvent = { kind: 'ddl', commitTs: 100n, query: '', ddlType: 'CREATE SCHEMA', schema: 'schema1', blockedDispatchers: 'all' };
      expect(encodeSchemaFile(ddl).path).to.equal('schema1/meta/schema_100_3233644819.json');
    });

    it('schema1.table1 (Id, LastName, FirstName, Birthday with defaults) is schema_100_3752767265 (TestSchemaFileGenFilePath)', () => {
      const def: TableDef = { schema: 'schema1', table: 'table1', version: 100n, columns: ticdcTable1 };
      expect(schemaChecksum(def)).to.equal(3752767265);
      expect(encodeSchemaFile(def).path).to.equal('schema1/table1/meta/schema_100_3752767265.json');
    });

    it('test.table1 (col1 INT, col2 VARCHAR) after ADD COLUMN is schema_100_4192708364.json, content as TestWriteDDLEvent', () => {
      const file = encodeSchemaFile(sinkTestDdl);
      expect(file.checksum).to.equal(4192708364);
      expect(file.path).to.equal('test/table1/meta/schema_100_4192708364.json');
      expect(file.text).to.equal(GOLDEN_SCHEMA_100_TEXT);
    });
  });

  describe('checksums against hand-built Go JSON', () => {
    it('escapes <, >, & as Go does, sorts columns by UTF-8 bytes, writes UNSIGNED, scale, elems', () => {
      // U+E000 sorts before U+1F600 in UTF-8 (EE.. < F0..) but after it in UTF-16 (E000 > D83D).
      const def: TableDef = {
        schema: 's&p',
        table: 't<1>',
        version: 7n,
        columns: [
          { name: '😀', type: 'DECIMAL', unsigned: true, precision: 10, scale: 2, default: '1.5', nullable: false },
          { name: '\ue000', type: 'ENUM', elems: ['x', 'y"z'] },
        ],
      };
      const goJson = [
        '{',
        '    "Table": "t\\u003c1\\u003e",',
        '    "Schema": "s\\u0026p",',
        '    "Version": 0,',
        '    "TableColumns": [',
        '        {',
        '            "ColumnName": "\ue000",',
        '            "ColumnType": "ENUM",',
        '            "ColumnElems": [',
        '                "x",',
        '                "y\\"z"',
        '            ]',
        '        },',
        '        {',
        '            "ColumnName": "😀",',
        '            "ColumnType": "DECIMAL UNSIGNED",',
        '            "ColumnDefault": "1.5",',
        '            "ColumnPrecision": "10",',
        '            "ColumnScale": "2",',
        '            "ColumnNullable": "false"',
        '        }',
        '    ],',
        '    "TableColumnsTotal": 2',
        '}',
      ].join('\n');
      expect(schemaChecksum(def)).to.equal(crcOf(goJson));
    });

    it('writes numeric defaults as Go float64s and escapes controls in string defaults', () => {
      const def: TableDef = {
        schema: 'db',
        table: 'numbers',
        version: 1n,
        columns: [
          { name: 'b', type: 'DOUBLE', default: 1e21 },
          { name: 'a', type: 'DOUBLE', default: 0.000001 },
          { name: 'c', type: 'VARCHAR', default: 'line\n\ttab\b\u0001' },
          { name: 'd', type: 'VARCHAR', default: '' },
        ],
      };
      const goJson = [
        '{',
        '    "Table": "numbers",',
        '    "Schema": "db",',
        '    "Version": 0,',
        '    "TableColumns": [',
        '        {',
        '            "ColumnName": "a",',
        '            "ColumnType": "DOUBLE",',
        '            "ColumnDefault": 0.000001',
        '        },',
        '        {',
        '            "ColumnName": "b",',
        '            "ColumnType": "DOUBLE",',
        '            "ColumnDefault": 1e+21',
        '        },',
        '        {',
        '            "ColumnName": "c",',
        '            "ColumnType": "VARCHAR",',
        '            "ColumnDefault": "line\\n\\ttab\\b\\u0001"',
        '        },',
        '        {',
        '            "ColumnName": "d",',
        '            "ColumnType": "VARCHAR",',
        '            "ColumnDefault": ""',
        '        }',
        '    ],',
        '    "TableColumnsTotal": 4',
        '}',
      ].join('\n');
      expect(schemaChecksum(def)).to.equal(crcOf(goJson));
    });

    it('a table-level file without columns (DROP TABLE without a definition) checks an empty list', () => {
      const goJson = '{\n    "Table": "gone",\n    "Schema": "db",\n    "Version": 0,\n    "TableColumns": [],\n    "TableColumnsTotal": 0\n}';
      const ddl: DdlEvent = { kind: 'ddl', commitTs: 9n, query: 'DROP TABLE db.gone', ddlType: 'DROP TABLE', schema: 'db', table: 'gone', blockedDispatchers: ['1'] };
      const file = encodeSchemaFile(ddl);
      expect(file.checksum).to.equal(crcOf(goJson));
      expect(file.path).to.equal(`db/gone/meta/schema_9_${String(crcOf(goJson)).padStart(10, '0')}.json`);
      expect(file.text).to.equal(
        '{\n    "Table": "gone",\n    "Schema": "db",\n    "Version": 1,\n    "TableVersion": 9,\n    "Query": "DROP TABLE db.gone",\n' +
          '    "Type": 4,\n    "TableColumns": null,\n    "TableColumnsTotal": 0\n}',
      );
    });
  });

  describe('encodeSchemaFile', () => {
    it('writes a table first seen without DDL with Query "" and Type 0 at its version', () => {
      const file = encodeSchemaFile({ ...sinkTestTable, version: 55n });
      expect(file.path).to.equal('test/table1/meta/schema_55_4192708364.json');
      expect(file.text).to.contain('"TableVersion": 55,\n    "Query": "",\n    "Type": 0,');
    });

    it('refuses an unknown DDL type, a bad name and a table version of 0', () => {
      expect(() => encodeSchemaFile({ ...sinkTestDdl, ddlType: 'ALTER TABLE' })).to.throw(InvalidChangeEventError, /ddlType must be an upper-case TiDB DDL type name/);
      expect(() => encodeSchemaFile({ ...sinkTestTable, table: '../x' })).to.throw(InvalidChangeEventError, /table must not contain '\/'/);
      expect(() => encodeSchemaFile({ ...sinkTestTable, version: 0n })).to.throw(/schemaFilePath: option version must be a bigint in \[1, 2\^64-1\]/);
    });
  });

  describe('decodeSchemaFile', () => {
    it('reads back the DDL, the table and the checksum, verifying the name', () => {
      const file = encodeSchemaFile(sinkTestDdl);
      expect(decodeSchemaFile(file.text, file.path)).to.deep.equal({
        schema: 'test',
        table: 'table1',
        version: 1,
        tableVersion: 100n,
        query: 'alter table test.table1 add col2 varchar(64)',
        typeCode: 5,
        ddlType: 'ADD COLUMN',
        checksum: 4192708364,
        tableDef: sinkTestTable,
      });
    });

    it('reads a database-level file with TableColumns null', () => {
      const text = '{\n    "Table": "",\n    "Schema": "schema1",\n    "Version": 1,\n    "TableVersion": 100,\n    "Query": "CREATE DATABASE schema1",\n    "Type": 1,\n    "TableColumns": null,\n    "TableColumnsTotal": 0\n}';
      expect(decodeSchemaFile(text, 'schema1/meta/schema_100_3233644819.json')).to.deep.equal({
        schema: 'schema1',
        version: 1,
        tableVersion: 100n,
        query: 'CREATE DATABASE schema1',
        typeCode: 1,
        ddlType: 'CREATE SCHEMA',
        checksum: 3233644819,
      });
    });

    it('keeps table versions above 2^53 exact and includes ColumnId (output-column-id) in the checksum', () => {
      const version = 435661838416609281n;
      const withIds = [
        '{',
        '    "Table": "t",',
        '    "Schema": "s",',
        '    "Version": 1,',
        `    "TableVersion": ${version},`,
        '    "Query": "",',
        '    "Type": 0,',
        '    "TableColumns": [',
        '        {',
        '            "ColumnId": "1",',
        '            "ColumnName": "a",',
        '            "ColumnType": "BIGINT UNSIGNED"',
        '        }',
        '    ],',
        '    "TableColumnsTotal": 1',
        '}',
      ].join('\n');
      const checksumText = withIds.replace(`    "TableVersion": ${version},\n    "Query": "",\n    "Type": 0,\n`, '').replace('"Version": 1', '"Version": 0');
      const checksum = crcOf(checksumText);
      const decoded = decodeSchemaFile(withIds, `s/t/meta/schema_${version}_${String(checksum).padStart(10, '0')}.json`);
      expect(decoded.tableVersion).to.equal(version);
      expect(decoded.checksum).to.equal(checksum);
      expect(decoded.tableDef!.columns).to.deep.equal([{ name: 'a', type: 'BIGINT', unsigned: true }]);
    });

    it('refuses content that does not match its name', () => {
      const file = encodeSchemaFile(sinkTestDdl);
      expect(() => decodeSchemaFile(file.text, 'test/table1/meta/schema_100_0000000001.json')).to.throw(
        DecodeError,
        'test/table1/meta/schema_100_0000000001.json: checksum mismatch: the name says 1, the content gives 4192708364',
      );
      expect(() => decodeSchemaFile(file.text, 'test/table1/meta/schema_101_4192708364.json')).to.throw(DecodeError, /table version mismatch: the name says 101, the content says 100/);
      expect(() => decodeSchemaFile(file.text, 'test/table1/meta/schema_100_42.json')).to.throw(DecodeError, /is not a schema file name/);
    });

    it('refuses malformed files, naming what is wrong', () => {
      const file = encodeSchemaFile(sinkTestDdl);
      expect(() => decodeSchemaFile(file.text.replace('"TableColumnsTotal": 2', '"TableColumnsTotal": 3'), 'x')).to.throw(DecodeError, 'x: TableColumnsTotal is 3 but TableColumns has 2');
      expect(() => decodeSchemaFile(file.text.replace('"Type": 5', '"Type": "5"'), 'x')).to.throw(DecodeError, 'x: Type must be an integer in [0, 255], got a string');
      expect(() => decodeSchemaFile(file.text.slice(0, -2), 'x')).to.throw(DecodeError, /x: malformed JSON/);
      expect(() => decodeSchemaFile(file.text.replace('"col1"', '"a/b"'), 'x')).to.throw(DecodeError, /table definition column name must not contain '\/'/);
    });

    it('property: encode -> decode gives the DDL and table back and verifies its own name', () => {
      fc.assert(
        fc.property(ddlArb, (ddl) => {
          const file = encodeSchemaFile(ddl);
          const decoded = decodeSchemaFile(file.text, file.path);
          expect(decoded.tableVersion).to.equal(ddl.commitTs);
          expect(decoded.query).to.equal(ddl.query);
          expect(decoded.ddlType).to.equal(ddl.ddlType);
          // nullable: true is the default and is not written
          const withoutNullableTrue = (c: ColumnDef) => (c.nullable === true ? (({ nullable: _n, ...rest }) => rest)(c) : c);
          const expected = ddl.tableDef && { ...ddl.tableDef, columns: ddl.tableDef.columns.map(withoutNullableTrue) };
          expect(decoded.tableDef).to.deep.equal(expected);
          expect(decoded.table).to.equal(ddl.tableDef?.table ?? ddl.table);
        }),
        { numRuns: 200 },
      );
    });

    it('property: the checksum ignores column order and depends on every column attribute', () => {
      fc.assert(
        fc.property(tableDefArb, fc.nat(), (def, seed) => {
          const shuffled = [...def.columns].sort((a, b) => ((a.name.length * 31 + seed) % 7) - ((b.name.length * 31 + seed) % 7));
          expect(schemaChecksum({ ...def, columns: shuffled })).to.equal(schemaChecksum(def));
          const changed = def.columns.map((c, i) => (i === seed % def.columns.length ? { ...c, primaryKey: !c.primaryKey } : c));
          expect(schemaChecksum({ ...def, columns: changed })).to.not.equal(schemaChecksum(def));
        }),
        { numRuns: 200 },
      );
    });
  });

  describe('DDL type codes', () => {
    it("maps names to TiDB's ActionType codes and back", () => {
      expect(ddlTypeCode('CREATE TABLE')).to.equal(3);
      expect(ddlTypeCode('ADD COLUMN')).to.equal(5);
      expect(ddlTypeCode('CREATE SCHEMA')).to.equal(1);
      expect(ddlTypeCode('TRUNCATE TABLE')).to.equal(11);
      expect(ddlTypeCode('RENAME TABLES')).to.equal(47);
      expect(ddlTypeCode('ALTER TABLE MULTI-SCHEMA CHANGE')).to.equal(61);
      expect(ddlTypeCode('create table')).to.equal(undefined);
      expect(ddlTypeCode('toString')).to.equal(undefined);
      expect(ddlTypeName(14)).to.equal('RENAME TABLE');
      expect(ddlTypeName(66)).to.equal(undefined);
      const codes = Object.values(DDL_TYPE_CODES);
      expect(new Set(codes).size).to.equal(codes.length);
    });
  });
});
