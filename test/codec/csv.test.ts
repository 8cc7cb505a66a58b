import { expect } from 'chai';
import fc from 'fast-check';
import { DecodeError, InvalidChangeEventError, type ColumnValue, type RowChange, type TableDef } from '../../lib/codec/changeEvent.ts';
import { decodeCsvRows, encodeCsvRow, encodeCsvRows } from '../../lib/codec/csv.ts';
import { decodedFormOf, tableWithRowsArb } from './arbitraries.ts';

const table: TableDef = {
  schema: 'shop',
  table: 'orders',
  version: 4350n,
  columns: [
    { name: 'id', type: 'INT', primaryKey: true, nullable: false },
    { name: 'name', type: 'VARCHAR' },
    { name: 'price', type: 'DECIMAL', precision: 10, scale: 2 },
    { name: 'score', type: 'DOUBLE' },
    { name: 'ratio', type: 'FLOAT' },
    { name: 'big', type: 'BIGINT', unsigned: true },
    { name: 'flag', type: 'TINYINT' },
    { name: 'data', type: 'BLOB' },
    { name: 'created', type: 'DATETIME' },
    { name: 'doc', type: 'JSON' },
    { name: 'color', type: 'ENUM', elems: ['red', 'green'] },
    { name: 'bits', type: 'BIT', precision: 10 },
  ],
};

const values: Record<string, ColumnValue> = {
  id: 1,
  name: 'a "quoted", name',
  price: '9.50',
  score: 1e6,
  ratio: 3.14,
  big: 18446744073709551615n,
  flag: true,
  data: new TextEncoder().encode('hello world'),
  created: '2022-08-31 17:07:00',
  doc: '{"k": "v"}',
  color: 'red',
  bits: 683n,
};
// The values as written, after the meta columns.
const valuesCsv = '1,"a ""quoted"", name","9.50",1e+06,3.14,18446744073709551615,1,"aGVsbG8gd29ybGQ=","2022-08-31 17:07:00","{""k"": ""v""}","red",683';

const row = (op: RowChange['op'], columns: Record<string, ColumnValue>, oldColumns?: Record<string, ColumnValue>): RowChange => ({
  kind: 'row',
  op,
  schema: 'shop',
  table: 'orders',
  tableVersion: 4350n,
  commitTs: 435661838416609281n,
  dispatcherId: '7',
  columns,
  ...(oldColumns === undefined ? {} : { oldColumns }),
});

const nulls: Record<string, ColumnValue> = Object.fromEntries(table.columns.map((c) => [c.name, null]));
const nullsCsv = Array(12).fill('\\N').join(',');

/** FLOAT values come back as the shortest decimal of their float32; compare at float32 precision. */
function atFloat32(def: TableDef, columns: Record<string, ColumnValue> | undefined) {
  if (columns === undefined) return undefined;
  const out = { ...columns };
  for (const c of def.columns) {
    const v = out[c.name];
    if (c.type === 'FLOAT' && typeof v === 'number') out[c.name] = Math.fround(v);
  }
  return out;
}

describe('csv codec', () => {
  describe('encodeCsvRow: exact bytes', () => {
    it('writes an insert with TiCDC defaults: quoted strings, bare numbers, base64 binary, CRLF', () => {
      expect(encodeCsvRow(row('insert', values), table)).to.equal(`"I","orders","shop",${valuesCsv}\r\n`);
    });

    it('writes the commit ts as the 4th column with includeCommitTs', () => {
      expect(encodeCsvRow(row('delete', values), table, { includeCommitTs: true })).to.equal(
        `"D","orders","shop",435661838416609281,${valuesCsv}\r\n`,
      );
    });

    it('writes an update as one U row without outputOldValue', () => {
      expect(encodeCsvRow(row('update', values, nulls), table)).to.equal(`"U","orders","shop",${valuesCsv}\r\n`);
    });

    it('writes an update as a D row of old values then an I row, both is-update true, with outputOldValue', () => {
      expect(encodeCsvRow(row('update', values, nulls), table, { includeCommitTs: true, outputOldValue: true })).to.equal(
        `"D","orders","shop",435661838416609281,true,${nullsCsv}\r\n` + `"I","orders","shop",435661838416609281,true,${valuesCsv}\r\n`,
      );
    });

    it('writes is-update false on inserts and deletes, and a lone U true for an update without old values', () => {
      expect(encodeCsvRow(row('insert', values), table, { outputOldValue: true })).to.equal(`"I","orders","shop",false,${valuesCsv}\r\n`);
      expect(encodeCsvRow(row('update', values), table, { outputOldValue: true })).to.equal(`"U","orders","shop",true,${valuesCsv}\r\n`);
    });

    it('writes NULL as bare \\N and the text "\\N" quoted; keeps backslashes, CR and LF inside quotes', () => {
      const text = { ...nulls, name: '\\N', doc: 'line1\r\nline2 \\ end', id: 0 };
      expect(encodeCsvRow(row('insert', text), table)).to.equal(
        '"I","orders","shop",0,"\\N",\\N,\\N,\\N,\\N,\\N,\\N,\\N,"line1\r\nline2 \\ end",\\N,\\N\r\n',
      );
    });

    it('quotes inner quotes of the table and schema names too', () => {
      const quoted: TableDef = { schema: 'my"db', table: 'a,b', version: 1n, columns: [{ name: 'v', type: 'TEXT' }] };
      const r: RowChange = { ...row('insert', { v: '' }), schema: 'my"db', table: 'a,b' };
      expect(encodeCsvRow(r, quoted)).to.equal('"I","a,b","my""db",""\r\n');
    });

    it("prints floats as Go's %v: exponent below 1e-4 and from 1e6, FLOAT at float32 precision", () => {
      const floats: TableDef = { schema: 's', table: 't', version: 1n, columns: [{ name: 'd', type: 'DOUBLE' }, { name: 'f', type: 'FLOAT' }] };
      const line = (d: number, f: number) => encodeCsvRow({ ...row('insert', { d, f }), schema: 's', table: 't' }, floats);
      expect(line(123456, 0.1)).to.equal('"I","t","s",123456,0.1\r\n');
      expect(line(1234567, 1234567)).to.equal('"I","t","s",1.234567e+06,1.234567e+06\r\n');
      expect(line(0.0001, 0.00001)).to.equal('"I","t","s",0.0001,1e-05\r\n');
      expect(line(-2.5e-300, 16777217)).to.equal('"I","t","s",-2.5e-300,1.6777216e+07\r\n');
      expect(line(0.1 + 0.2, -0)).to.equal('"I","t","s",0.30000000000000004,-0\r\n');
    });

    it('concatenates the records of many rows', () => {
      expect(encodeCsvRows([row('insert', values), row('delete', nulls)], table)).to.equal(
        `"I","orders","shop",${valuesCsv}\r\n"D","orders","shop",${nullsCsv}\r\n`,
      );
    });
  });

  describe('encodeCsvRow: refusals', () => {
    const refuses = (r: RowChange, pattern: RegExp) => {
      expect(() => encodeCsvRow(r, table)).to.throw(InvalidChangeEventError, pattern);
    };

    it('refuses a row of another table', () => {
      refuses({ ...row('insert', values), table: 'other' }, /row is for shop.other but the table definition is shop.orders/);
    });

    it('refuses missing and unknown columns, naming them', () => {
      const { price: _price, ...rest } = values;
      refuses(row('insert', { ...rest, extra: 1 }), /columns do not match shop.orders: missing \[price\], unknown \[extra\]/);
    });

    it('refuses values that do not fit the column type, naming the column and the event', () => {
      refuses(row('insert', { ...values, id: 1.5 }), /csv column "id".*INT takes an integer, got 1\.5/);
      refuses(row('insert', { ...values, id: 2 ** 53 }), /INT value 9007199254740992 is outside/);
      refuses(row('insert', { ...values, big: 1n << 64n }), /BIGINT value 18446744073709551616 is outside/);
      refuses(row('insert', { ...values, ratio: 1e39 }), /FLOAT value 1e\+39 is outside the float32 range/);
      refuses(row('insert', { ...values, price: 'abc' }), /DECIMAL takes decimal text/);
      refuses(row('insert', { ...values, name: new Uint8Array([1]) }), /binary data needs a binary type/);
      refuses(row('insert', { ...values, name: 5 }), /row insert shop\.orders commitTs 435661838416609281/);
    });
  });

  describe('decodeCsvRows', () => {
    it('reads the written records back, typed by the column types', () => {
      const text = `"I","orders","shop",435661838416609281,${valuesCsv}\r\n"D","orders","shop",435661838416609281,${nullsCsv}\r\n`;
      const rows = decodeCsvRows(text, table, { includeCommitTs: true });
      expect(rows).to.deep.equal([
        {
          op: 'insert',
          schema: 'shop',
          table: 'orders',
          commitTs: 435661838416609281n,
          columns: { ...values, flag: 1, data: new Uint8Array(new TextEncoder().encode('hello world')) },
        },
        { op: 'delete', schema: 'shop', table: 'orders', commitTs: 435661838416609281n, columns: nulls },
      ]);
      expect(typeof rows[0]!.columns.price).to.equal('string');
      expect(rows[0]!.columns.data).to.be.an.instanceOf(Uint8Array);
    });

    it('joins the D+I pair of an update back into one update with old values', () => {
      const text = encodeCsvRow(row('update', values, nulls), table, { outputOldValue: true });
      expect(decodeCsvRows(text, table, { outputOldValue: true })).to.deep.equal([
        { op: 'update', schema: 'shop', table: 'orders', columns: { ...values, flag: 1 }, oldColumns: nulls },
      ]);
    });

    it('tells the NULL marker from the quoted text "\\N", and keeps CRLF inside quotes', () => {
      const text = '"I","orders","shop",0,"\\N",\\N,\\N,\\N,\\N,\\N,\\N,\\N,"a\r\nb,""c""",\\N,\\N\r\n';
      const [decoded] = decodeCsvRows(text, table);
      expect(decoded!.columns.name).to.equal('\\N');
      expect(decoded!.columns.price).to.equal(null);
      expect(decoded!.columns.doc).to.equal('a\r\nb,"c"');
    });

    it('reports a truncated file, naming the file and line', () => {
      const text = `"I","orders","shop",${valuesCsv}\r\n"I","orders","shop",${valuesCsv}`;
      expect(() => decodeCsvRows(text, table, { where: 'shop/orders/4350/CDC000001.csv' })).to.throw(
        DecodeError,
        'shop/orders/4350/CDC000001.csv line 2: the last record does not end with CRLF (truncated file?)',
      );
    });

    it('counts lines inside quoted fields when naming a line', () => {
      const first = '"I","orders","shop",0,"x",\\N,\\N,\\N,\\N,\\N,\\N,\\N,"a\r\nb\nc",\\N,\\N\r\n';
      expect(() => decodeCsvRows(`${first}"X","orders","shop",${valuesCsv}\r\n`, table)).to.throw(
        DecodeError,
        'csv line 4: field 1: operation must be I, U or D, got "X"',
      );
    });

    it('reports the wrong number of fields, a bad value and an unterminated quote', () => {
      expect(() => decodeCsvRows('"I","orders","shop",1\r\n', table)).to.throw(DecodeError, /csv line 1: expected 15 fields \(3 meta \+ 12 columns of shop\.orders\), got 4/);
      const badInt = `"I","orders","shop",x${valuesCsv.slice(1)}\r\n`;
      expect(() => decodeCsvRows(badInt, table)).to.throw(DecodeError, 'csv line 1: field 4 (column "id", INT): INT expects an integer, got "x"');
      expect(() => decodeCsvRows('"I","orders\r\n', table)).to.throw(DecodeError, /unterminated quoted field/);
      expect(() => decodeCsvRows(`"I","orders","shop",${valuesCsv}\n`, table)).to.throw(DecodeError, /records end with CRLF/);
      const badBase64 = `"I","orders","shop",${valuesCsv.replace('aGVsbG8gd29ybGQ=', 'not base64!')}\r\n`;
      expect(() => decodeCsvRows(badBase64, table)).to.throw(DecodeError, /column "data", BLOB\): expects base64/);
    });

    it('refuses a D row of an update without its I row', () => {
      const text = encodeCsvRow(row('update', values, nulls), table, { outputOldValue: true }).split('\r\n')[0] + '\r\n';
      expect(() => decodeCsvRows(text, table, { outputOldValue: true })).to.throw(DecodeError, 'csv line 1: the D row of an update (is-update true) has no I row after it');
    });

    it('reads an empty file as no rows', () => {
      expect(decodeCsvRows('', table)).to.deep.equal([]);
    });
  });

  it('property: encode -> decode gives every row back (commas, quotes, CRLF, unicode, NULL, binary, big integers)', () => {
    fc.assert(
      fc.property(tableWithRowsArb, fc.boolean(), fc.boolean(), ([def, rows], includeCommitTs, outputOldValue) => {
        const options = { includeCommitTs, outputOldValue };
        const decoded = decodeCsvRows(encodeCsvRows(rows, def, options), def, options);
        const expected = rows.map((r) => decodedFormOf(r, { commitTs: includeCommitTs, oldColumns: outputOldValue }));
        const normalize = (r: Record<string, unknown>) => {
          const out: Record<string, unknown> = { ...r, columns: atFloat32(def, r.columns as Record<string, ColumnValue>) };
          if (r.oldColumns !== undefined) out.oldColumns = atFloat32(def, r.oldColumns as Record<string, ColumnValue>);
          return out;
        };
        expect(decoded.map((r) => normalize(r as unknown as Record<string, unknown>))).to.deep.equal(expected);
      }),
      { numRuns: 200 },
    );
  });
});
