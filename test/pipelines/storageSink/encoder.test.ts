/**
 * The storage sink's row encoder: exact bytes against the codec functions (csv, canal-json), the data
 * folder from table version and commit date, the per-dispatcher file key, concatenation, and the
 * errors for malformed rows, unknown table versions and bad options.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { encodeCanalJsonRows } from '../../../lib/codec/canalJson.ts';
import { InvalidChangeEventError, type DdlEvent, type RowChange, type TableDef } from '../../../lib/codec/changeEvent.ts';
import { encodeCsvRow, encodeCsvRows } from '../../../lib/codec/csv.ts';
import { InvalidOptionError } from '../../../lib/core/errors.ts';
import { createRowEncoder, folderKey, type EncodedRow } from '../../../pipelines/storageSink/encoder.ts';
import { RowArena, rowsFileBytes } from '../../../pipelines/storageSink/rowArena.ts';
import { TableRegistry, UnknownTableVersionError } from '../../../pipelines/storageSink/tableRegistry.ts';
import { tableWithRowsArb } from '../../codec/arbitraries.ts';
import { csvDialectArb } from '../../codec/csvDialects.ts';

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
/** A data file of encoded rows, as the sink's writer assembles it. */
/** A data file of encoded rows, made as the sink makes it (row arena, then the file's bytes). */
const fileOf = (rows: readonly EncodedRow[]) => {
  const arena = new RowArena();
  return rowsFileBytes(rows.map((row) => arena.rowOf(row)), rows.reduce((sum, row) => sum + row.bytes, 0));
};

const orders: TableDef = {
  schema: 'shop',
  table: 'orders',
  version: 4350n,
  columns: [
    { name: 'id', type: 'INT', primaryKey: true, nullable: false },
    { name: 'name', type: 'VARCHAR' },
    { name: 'price', type: 'DECIMAL', precision: 10, scale: 2 },
  ],
};
const ordersV2: TableDef = { ...orders, version: 5000n, columns: [...orders.columns, { name: 'note', type: 'TEXT' }] };

/** A TiDB ts at 2024-05-01T23:30:00Z (physical ms << 18, plus logical bits). */
const LATE_EVENING = (BigInt(Date.UTC(2024, 4, 1, 23, 30)) << 18n) | 7n;

function insert(overrides: Partial<RowChange> = {}): RowChange {
  return { kind: 'row', op: 'insert', schema: 'shop', table: 'orders', tableVersion: 4350n, commitTs: LATE_EVENING, dispatcherId: 'd1', columns: { id: 1, name: 'a "b", c', price: '9.50' }, ...overrides };
}

const update = insert({ op: 'update', columns: { id: 1, name: 'new', price: '1.00' }, oldColumns: { id: 1, name: 'old', price: '2.00' } });

function registry(...defs: TableDef[]): TableRegistry {
  // Small: lru-cache allocates its slots for maxTables up front.
  const tables = new TableRegistry({ maxTables: 8 });
  for (const def of defs) tables.register(def);
  return tables;
}

describe('storage sink row encoder', () => {
  it('encodes a csv row as encodeCsvRow does, into the day folder of its commit (UTC)', () => {
    const encode = createRowEncoder({ protocol: 'csv', dateSeparator: 'day', tables: registry(orders) });
    const encoded = encode(insert());
    expect(encoded).to.deep.equal({
      kind: 'row',
      folder: { schema: 'shop', table: 'orders', tableVersion: 4350n, date: '2024-05-01' },
      dispatcherId: 'd1',
      text: '"I","orders","shop",1,"a ""b"", c","9.50"\r\n',
      bytes: Buffer.byteLength('"I","orders","shop",1,"a ""b"", c","9.50"\r\n'),
    });
    expect(encoded.text).to.equal(encodeCsvRow(insert(), orders));
  });

  it('writes an update with old values as D+I with outputOldValue, and the commit ts with includeCommitTs', () => {
    const csv = { outputOldValue: true, includeCommitTs: true };
    const encode = createRowEncoder({ protocol: 'csv', tables: registry(orders), csv });
    const bytes = encode(update).text;
    expect(bytes).to.equal(`"D","orders","shop",${LATE_EVENING},true,1,"old","2.00"\r\n"I","orders","shop",${LATE_EVENING},true,1,"new","1.00"\r\n`);
    expect(bytes).to.equal(encodeCsvRow(update, orders, csv));
    const plain = createRowEncoder({ protocol: 'csv', tables: registry(orders) });
    expect(plain(update).text).to.equal('"U","orders","shop",1,"new","1.00"\r\n');
  });

  it('encodes a canal-json row as encodeCanalJsonRows does (line + CRLF), ts from the clock when given', () => {
    const deterministic = createRowEncoder({ protocol: 'canal-json', tables: registry(orders) });
    expect(deterministic(update).text).to.equal(encodeCanalJsonRows([update], orders));
    let clockMs = 1_714_606_200_123.7;
    const clocked = createRowEncoder({ protocol: 'canal-json', tables: registry(orders), buildTimeMs: () => clockMs });
    const bytes = clocked(insert()).text;
    expect(bytes).to.equal(encodeCanalJsonRows([insert()], orders, { buildTimeMs: 1_714_606_200_123 }));
    expect(bytes).to.contain(',"ts":1714606200123,');
    expect(bytes.endsWith('}\r\n')).to.equal(true);
    clockMs = 5;
    expect(clocked(insert()).text).to.contain(',"ts":5,');
  });

  it('writes canal-json without _tidb with canalJson.enableTidbExtension false, with it by default', () => {
    const plain = createRowEncoder({ protocol: 'canal-json', tables: registry(orders), canalJson: { enableTidbExtension: false } });
    expect(plain(update).text).to.equal(encodeCanalJsonRows([update], orders, { enableTidbExtension: false }));
    expect(plain(update).text).to.not.contain('_tidb');
    expect(plain(update).text).to.match(/\]\}\r\n$/);
    let clockMs = 7;
    const clocked = createRowEncoder({ protocol: 'canal-json', tables: registry(orders), canalJson: { enableTidbExtension: false }, buildTimeMs: () => clockMs });
    expect(clocked(insert()).text).to.contain(',"ts":7,');
    expect(clocked(insert()).text).to.not.contain('_tidb');
    clockMs = 8;
    expect(createRowEncoder({ protocol: 'canal-json', tables: registry(orders) })(insert()).text).to.contain(`"_tidb":{"commitTs":${LATE_EVENING}}`);
  });

  it('ends canal-json rows with canalJson.terminator (CRLF by default), as the codec writes a file', () => {
    for (const terminator of ['\n', '\r', '\t\n']) {
      const encode = createRowEncoder({ protocol: 'canal-json', tables: registry(orders), canalJson: { terminator } });
      const { text, bytes } = encode(update);
      expect(text).to.equal(encodeCanalJsonRows([update], orders, { terminator }));
      expect(text.endsWith(`}${terminator}`) && !text.slice(0, -terminator.length).includes(terminator), JSON.stringify(terminator)).to.equal(true);
      expect(bytes).to.equal(Buffer.byteLength(text));
    }
    expect(createRowEncoder({ protocol: 'canal-json', tables: registry(orders) })(update).text).to.match(/\}\r\n$/);
  });

  it('computes the folder with each date separator, without a date for none', () => {
    const folders = (['none', 'year', 'month', 'day'] as const).map((dateSeparator) => createRowEncoder({ protocol: 'csv', dateSeparator, tables: registry(orders) })(insert()).folder);
    expect(folders).to.deep.equal([
      { schema: 'shop', table: 'orders', tableVersion: 4350n },
      { schema: 'shop', table: 'orders', tableVersion: 4350n, date: '2024' },
      { schema: 'shop', table: 'orders', tableVersion: 4350n, date: '2024-05' },
      { schema: 'shop', table: 'orders', tableVersion: 4350n, date: '2024-05-01' },
    ]);
    expect(Object.keys(folders[0]!)).to.not.include('date');
    const midnight = BigInt(Date.UTC(2024, 4, 2)) << 18n;
    const encode = createRowEncoder({ protocol: 'csv', tables: registry(orders) });
    expect(encode(insert({ commitTs: midnight })).folder.date).to.equal('2024-05-02');
    expect(encode(insert({ commitTs: midnight - (1n << 18n) })).folder.date).to.equal('2024-05-01');
  });

  it('encodes each row with the definition of its own table version, into that version folder', () => {
    const encode = createRowEncoder({ protocol: 'csv', dateSeparator: 'none', tables: registry(orders, ordersV2) });
    const old = encode(insert());
    const current = encode(insert({ tableVersion: 5000n, columns: { id: 2, name: 'x', price: '1.00', note: 'n' } }));
    expect(old.text).to.equal('"I","orders","shop",1,"a ""b"", c","9.50"\r\n');
    expect(current.text).to.equal('"I","orders","shop",2,"x","1.00","n"\r\n');
    expect(current.folder).to.deep.equal({ schema: 'shop', table: 'orders', tableVersion: 5000n });
  });

  it('fails a row whose table version has no definition with the registry error', () => {
    const encode = createRowEncoder({ protocol: 'csv', tables: registry(orders) });
    expect(() => encode(insert({ tableVersion: 1n }))).to.throw(
      UnknownTableVersionError,
      "TableRegistry: no definition of shop.orders at table version 1 (versions known: 4350); send the table's DDL, or register its definition, before its rows",
    );
  });

  it('rejects an invalid row, naming it, before looking up its table', () => {
    const encode = createRowEncoder({ protocol: 'csv', tables: new TableRegistry() });
    const bad = insert({ table: 'a/b' });
    expect(() => encode(bad)).to.throw(
      InvalidChangeEventError,
      `invalid change event at storage sink encoder (row insert shop.a/b commitTs ${LATE_EVENING}): table must not contain '/' ("a/b")`,
    );
    const ddl: DdlEvent = { kind: 'ddl', commitTs: 5n, query: 'CREATE SCHEMA s', ddlType: 'CREATE SCHEMA', schema: 's', blockedDispatchers: 'all' };
    expect(() => encode(ddl as unknown as RowChange)).to.throw(InvalidChangeEventError, '(ddl CREATE SCHEMA s commitTs 5): expected a row change');
    const mismatch = createRowEncoder({ protocol: 'canal-json', tables: registry(orders) });
    expect(() => mismatch(insert({ columns: { id: 1 } }))).to.throw(InvalidChangeEventError, `(row insert shop.orders commitTs ${LATE_EVENING})`);
  });

  it('with rowsChecked, leaves the check to its caller: same bytes for a valid row, and a DDL is still refused', () => {
    const checked = createRowEncoder({ protocol: 'csv', tables: registry(orders) });
    const trusting = createRowEncoder({ protocol: 'csv', tables: registry(orders), rowsChecked: true });
    const row = insert();
    expect(trusting(row)).to.deep.equal(checked(row));
    const ddl: DdlEvent = { kind: 'ddl', commitTs: 5n, query: 'CREATE SCHEMA s', ddlType: 'CREATE SCHEMA', schema: 's', blockedDispatchers: 'all' };
    expect(() => trusting(ddl as unknown as RowChange)).to.throw(InvalidChangeEventError, 'expected a row change');
  });

  it('folderKey differs per dispatcher and per folder, and is equal for equal pairs', () => {
    const folder = { schema: 'shop', table: 'orders', tableVersion: 4350n, date: '2024-05-01' };
    expect(folderKey(folder, 'd1')).to.equal('shop/orders/4350/2024-05-01\td1');
    expect(folderKey({ ...folder }, 'd1')).to.equal(folderKey(folder, 'd1'));
    const keys = [folderKey(folder, 'd1'), folderKey(folder, 'd2'), folderKey({ ...folder, date: '2024-05-02' }, 'd1'), folderKey({ ...folder, tableVersion: 5000n }, 'd1')];
    expect(new Set(keys).size).to.equal(4);
  });

  it('the rows of one data file are joined exactly', () => {
    const encode = createRowEncoder({ protocol: 'csv', tables: registry(orders) });
    const rows = [encode(insert()), encode(update), encode(insert({ op: 'delete' }))];
    expect(text(fileOf(rows))).to.equal('"I","orders","shop",1,"a ""b"", c","9.50"\r\n"U","orders","shop",1,"new","1.00"\r\n"D","orders","shop",1,"a ""b"", c","9.50"\r\n');
    expect(fileOf([])).to.deep.equal(Buffer.alloc(0));
  });

  it('counts UTF-8 bytes, not UTF-16 units, and writes multi-byte text exactly', () => {
    const encode = createRowEncoder({ protocol: 'csv', tables: registry(orders) });
    const wide = encode(insert({ columns: { id: 7, name: 'Zürich 東京 🚀', price: '1.00' } }));
    expect(wide.bytes).to.equal(Buffer.byteLength(wide.text, 'utf8')).and.to.be.greaterThan(wide.text.length);
    const file = fileOf([wide, { ...wide, text: 'x\r\n', bytes: 3 }]);
    expect(file.toString('utf8')).to.equal(`${wide.text}x\r\n`);
    expect(() => fileOf([{ ...wide, bytes: wide.text.length }])).to.throw(RangeError);
  });

  it('a data file of encoded rows equals the codec output for those rows (csv and canal-json)', () => {
    fc.assert(
      fc.property(tableWithRowsArb, fc.boolean(), ([table, rows], outputOldValue) => {
        const csv = createRowEncoder({ protocol: 'csv', dateSeparator: 'none', tables: registry(table), csv: { outputOldValue } });
        const json = createRowEncoder({ protocol: 'canal-json', dateSeparator: 'none', tables: registry(table) });
        // One dispatcher, one commit date: every row in one data file.
        const sameFile = rows.map((row) => ({ ...row, dispatcherId: 'd', commitTs: LATE_EVENING }));
        expect(text(fileOf(sameFile.map(csv)))).to.equal(encodeCsvRows(sameFile, table, { outputOldValue }));
        expect(text(fileOf(sameFile.map(json)))).to.equal(encodeCanalJsonRows(sameFile, table));
      }),
      { numRuns: 200 },
    );
  });

  it('a data file of encoded rows equals the codec output in every csv dialect (terminator, quote, delimiter, null, hex)', () => {
    fc.assert(
      fc.property(csvDialectArb, tableWithRowsArb, (csv, [table, rows]) => {
        const encode = createRowEncoder({ protocol: 'csv', dateSeparator: 'none', tables: registry(table), csv });
        const sameFile = rows.map((row) => ({ ...row, dispatcherId: 'd', commitTs: LATE_EVENING }));
        const encoded = sameFile.map(encode);
        expect(encoded.every((row) => row.text.endsWith(csv.terminator))).to.equal(true);
        expect(text(fileOf(encoded))).to.equal(encodeCsvRows(sameFile, table, csv));
      }),
      { numRuns: 100 },
    );
  });

  it('a data file starts with its header bytes when given (output-field-header), and counts the rows\' bytes alone', () => {
    const encode = createRowEncoder({ protocol: 'csv', tables: registry(orders) });
    const rows = [encode(insert()), encode(insert({ op: 'delete' }))];
    const arena = new RowArena();
    const items = rows.map((row) => arena.rowOf(row));
    const length = rows.reduce((sum, row) => sum + row.bytes, 0);
    const header = Buffer.from('ticdc-meta$operation,ticdc-meta$table,ticdc-meta$schema,id,name,price\r\n');
    expect(rowsFileBytes(items, length, header).toString()).to.equal(header.toString() + rows[0]!.text + rows[1]!.text);
    expect(() => rowsFileBytes(items, length + 1, header)).to.throw(RangeError, `rowsFileBytes: the rows are ${length} bytes, not the ${length + 1} given`);
  });

  it('checks its csv dialect when created, naming the option', () => {
    const tables = new TableRegistry();
    expect(() => createRowEncoder({ protocol: 'csv', tables, csv: { terminator: '' } })).to.throw(InvalidOptionError, 'createRowEncoder: option csv.terminator must be not empty');
    expect(() => createRowEncoder({ protocol: 'csv', tables, csv: { quote: '', delimiter: '\\' } })).to.throw(InvalidOptionError, 'createRowEncoder: option csv.delimiter must be free of backslashes');
  });

  it('checks its options when created', () => {
    const tables = new TableRegistry();
    expect(() => createRowEncoder({ protocol: 'avro' as 'csv', tables })).to.throw(InvalidOptionError, `createRowEncoder: option protocol must be 'csv' or 'canal-json', got "avro"`);
    expect(() => createRowEncoder({ protocol: 'csv', dateSeparator: 'hour' as 'day', tables })).to.throw(InvalidOptionError, 'option dateSeparator');
    expect(() => createRowEncoder({ protocol: 'csv', tables: {} as TableRegistry })).to.throw(InvalidOptionError, 'option tables must be a TableRegistry');
    expect(() => createRowEncoder({ protocol: 'canal-json', tables, csv: {} })).to.throw(InvalidOptionError, "option csv must be absent with protocol 'canal-json'");
    expect(() => createRowEncoder({ protocol: 'csv', tables, buildTimeMs: () => 1 })).to.throw(InvalidOptionError, "option buildTimeMs must be absent with protocol 'csv'");
    expect(() => createRowEncoder({ protocol: 'csv', tables, canalJson: {} })).to.throw(InvalidOptionError, "option canalJson must be absent with protocol 'csv'");
    expect(() => createRowEncoder({ protocol: 'canal-json', tables, canalJson: { enableTidbExtension: 'no' as unknown as boolean } })).to.throw(
      InvalidOptionError,
      'option canalJson.enableTidbExtension must be a boolean',
    );
    expect(() => createRowEncoder({ protocol: 'canal-json', tables, canalJson: { terminator: '|' } })).to.throw(
      InvalidOptionError,
      'createRowEncoder: option canalJson.terminator must be one or more control characters',
    );
  });
});
