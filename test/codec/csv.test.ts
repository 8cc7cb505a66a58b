import { expect } from 'chai';
import fc from 'fast-check';
import { DecodeError, InvalidChangeEventError, type ColumnValue, type RowChange, type TableDef } from '../../lib/codec/changeEvent.ts';
import { checkCsvOptions, createCsvRowEncoder, csvHeaderLine, decodeCsvRows, encodeCsvRow, encodeCsvRows, type CsvOptions } from '../../lib/codec/csv.ts';
import { InvalidOptionError } from '../../lib/core/errors.ts';
import { decodedFormOf, tableWithRowsArb } from './arbitraries.ts';
import { csvDialectArb } from './csvDialects.ts';

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

  describe('dialects: TiCDC vectors', () => {
    const TS = 435661838416609281n;
    /** A table of `types` named c1.., and a row of it with `values`. */
    const tableOf = (tableName: string, ...types: string[]): TableDef => ({
      schema: 'test',
      table: tableName,
      version: 1n,
      columns: types.map((type, i) => ({ name: `c${i + 1}`, type })),
    });
    const rowOf = (def: TableDef, op: RowChange['op'], ...vals: ColumnValue[]): RowChange => ({
      kind: 'row',
      op,
      schema: def.schema,
      table: def.table,
      tableVersion: def.version,
      commitTs: TS,
      dispatcherId: '1',
      columns: Object.fromEntries(def.columns.map((c, i) => [c.name, vals[i]!])),
    });
    // pingcap/ticdc pkg/sink/codec/csv/csv_message_test.go TestCSVMessageEncode: settings, row, bytes.
    const vectors: Array<{ name: string; options: CsvOptions; row: RowChange; def: TableDef; bytes: string }> = (() => {
      const t1 = tableOf('table1', 'INT', 'VARCHAR');
      const t2 = tableOf('table2', 'VARCHAR', 'VARCHAR');
      const t3 = tableOf('table3', 'VARCHAR', 'VARCHAR', 'DATETIME');
      const t4 = tableOf('table4', 'VARCHAR', 'VARCHAR');
      const t5 = tableOf('table5', 'VARCHAR', 'VARCHAR', 'VARCHAR', 'DOUBLE');
      const t6 = tableOf('table6', 'VARCHAR', 'VARCHAR');
      const t7 = tableOf('table7', 'VARCHAR', 'VARCHAR', 'VARCHAR');
      const t8 = tableOf('table8', 'VARCHAR', 'DOUBLE', 'VARCHAR');
      const base = { nullString: '\\N', terminator: '\n' };
      return [
        { name: 'typical settings', options: { ...base, delimiter: ',', quote: '"', includeCommitTs: true }, def: t1, row: rowOf(t1, 'insert', 123, 'hello,world'), bytes: '"I","table1","test",435661838416609281,123,"hello,world"\n' },
        { name: "one-character delimiter, quote ''", options: { ...base, delimiter: '!', quote: '', includeCommitTs: true }, def: t2, row: rowOf(t2, 'update', 'a!b!c', 'def'), bytes: 'U!table2!test!435661838416609281!a\\!b\\!c!def\n' },
        { name: "quote '' with output-old-value", options: { ...base, delimiter: '!', quote: '', includeCommitTs: true, outputOldValue: true }, def: t2, row: rowOf(t2, 'insert', 'a!b!c', 'def'), bytes: 'I!table2!test!435661838416609281!false!a\\!b\\!c!def\n' },
        { name: 'delimiter inside quotes', options: { ...base, delimiter: ',', quote: '"', includeCommitTs: true }, def: t3, row: rowOf(t3, 'update', 'a,b,c', 'def', '2022-08-31 17:07:00'), bytes: '"U","table3","test",435661838416609281,"a,b,c","def","2022-08-31 17:07:00"\n' },
        { name: "three-character delimiter, quote '', CRLF", options: { ...base, delimiter: '[*]', quote: '', terminator: '\r\n' }, def: t4, row: rowOf(t4, 'delete', 'a[*]b[*]c', 'def'), bytes: 'D[*]table4[*]test[*]a\\[\\*\\]b\\[\\*\\]c[*]def\r\n' },
        { name: "three-character delimiter, quote ', NULL, a float", options: { ...base, delimiter: '[*]', quote: "'" }, def: t5, row: rowOf(t5, 'insert', 'a[*]b[*]c', 'def', null, 12345.678), bytes: "'I'[*]'table5'[*]'test'[*]'a[*]b[*]c'[*]'def'[*]\\N[*]12345.678\n" },
        { name: "backslash and LF, quote ''", options: { ...base, delimiter: ',', quote: '', includeCommitTs: true }, def: t6, row: rowOf(t6, 'update', 'a\\b\\c', 'def\n'), bytes: 'U,table6,test,435661838416609281,a\\\\b\\\\c,def\\n\n' },
        { name: "backslash and CR, quote '", options: { ...base, delimiter: ',', quote: "'" }, def: t7, row: rowOf(t7, 'insert', '\\', '\\\r', '\\\\'), bytes: "'I','table7','test','\\','\\\r','\\\\'\n" },
        { name: 'tab delimiter, unicode', options: { ...base, delimiter: '\t', quote: '"', includeCommitTs: true }, def: t8, row: rowOf(t8, 'delete', 'a\tb', 123.456, '你好，世界'), bytes: '"D"\t"table8"\t"test"\t435661838416609281\t"a\tb"\t123.456\t"你好，世界"\n' },
      ];
    })();

    for (const { name, options, def, row: r, bytes } of vectors) {
      it(`${name}: the bytes TiCDC writes, and back`, () => {
        expect(encodeCsvRow(r, def, options)).to.equal(bytes);
        const [decoded] = decodeCsvRows(bytes, def, options);
        expect(decoded).to.deep.equal(decodedFormOf(r, { commitTs: options.includeCommitTs === true, oldColumns: false }));
      });
    }

    it("quote '' escapes CR, LF, backslashes and whole delimiters only (TestFormatWithEscape)", () => {
      // pingcap/ticdc pkg/sink/codec/csv/csv_message_test.go TestFormatWithEscape
      const def = tableOf('t', 'TEXT');
      const field = (delimiter: string, text: string) => encodeCsvRow(rowOf(def, 'insert', text), def, { delimiter, quote: '' }).split(delimiter).slice(3).join(delimiter).slice(0, -2);
      expect(field(',', 'abcdef')).to.equal('abcdef');
      expect(field(',', 'abc\r\ndef')).to.equal('abc\\r\\ndef');
      expect(field(',', 'abc\\def')).to.equal('abc\\\\def');
      expect(field(',', 'abc,def')).to.equal('abc\\,def');
      expect(field('?', 'abc\\def?ghi\\r\\n')).to.equal('abc\\\\def\\?ghi\\\\r\\\\n');
      for (const text of ['abcdef', 'abc\r\ndef', 'abc\\def', 'abc,def', 'abc\\def?ghi\\r\\n', '\\N', '']) {
        for (const delimiter of [',', '?']) {
          const options = { delimiter, quote: '' };
          expect(decodeCsvRows(encodeCsvRow(rowOf(def, 'insert', text), def, options), def, options)[0]!.columns.c1).to.equal(text);
        }
      }
    });

    it('doubles the quote character inside quotes (TestFormatWithQuotes), whichever it is', () => {
      // pingcap/ticdc pkg/sink/codec/csv/csv_message_test.go TestFormatWithQuotes
      const def = tableOf('t', 'TEXT');
      expect(encodeCsvRow(rowOf(def, 'insert', '"a,b,c'), def)).to.equal('"I","t","test","""a,b,c"\r\n');
      expect(encodeCsvRow(rowOf(def, 'insert', ''), def)).to.equal('"I","t","test",""\r\n');
      expect(encodeCsvRow(rowOf(def, 'insert', "it's"), def, { quote: "'" })).to.equal("'I','t','test','it''s'\r\n");
      expect(decodeCsvRows("'I','t','test','it''s'\r\n", def, { quote: "'" })[0]!.columns.c1).to.equal("it's");
    });

    it('binary columns as base64 or lowercase hex (binary-encoding-method), read back either way', () => {
      // pingcap/ticdc pkg/sink/codec/csv/csv_message_test.go csvTestColumnsGroup: "hello world"
      const def = tableOf('t', 'BLOB');
      const hello = new TextEncoder().encode('hello world');
      expect(encodeCsvRow(rowOf(def, 'insert', hello), def)).to.equal('"I","t","test","aGVsbG8gd29ybGQ="\r\n');
      expect(encodeCsvRow(rowOf(def, 'insert', hello), def, { binaryEncodingMethod: 'hex' })).to.equal('"I","t","test","68656c6c6f20776f726c64"\r\n');
      expect(decodeCsvRows('"I","t","test","68656C6C6F20776F726C64"\r\n', def, { binaryEncodingMethod: 'hex' })[0]!.columns.c1).to.deep.equal(new Uint8Array(hello));
      expect(() => decodeCsvRows('"I","t","test","aGVsbG8gd29ybGQ="\r\n', def, { binaryEncodingMethod: 'hex' })).to.throw(DecodeError, /field 4 \(column "c1", BLOB\): expects hex, got "aGVsbG8gd29ybGQ="/);
    });

    it('reads the rows of TiCDC\'s decoder test, LF-terminated (TestCSVBatchDecoder)', () => {
      // pingcap/ticdc pkg/sink/codec/csv/csv_decoder_test.go TestCSVBatchDecoder
      const text =
        '"I","employee","hr",433305438660591626,101,"Smith","Bob","2014-06-04","New York"\n' +
        '"U","employee","hr",433305438660591627,101,"Smith","Bob","2015-10-08","Los Angeles"\n' +
        '"D","employee","hr",433305438660591629,101,"Smith","Bob","2017-03-13","Dallas"\n' +
        '"I","employee","hr",433305438660591630,102,"Alex","Alice","2017-03-14","Shanghai"\n' +
        '"U","employee","hr",433305438660591630,102,"Alex","Alice","2018-06-15","Beijing"\n';
      const employee: TableDef = {
        schema: 'hr',
        table: 'employee',
        version: 1n,
        columns: [{ name: 'Id', type: 'INT' }, { name: 'LastName', type: 'VARCHAR' }, { name: 'FirstName', type: 'VARCHAR' }, { name: 'HireDate', type: 'DATE' }, { name: 'OfficeLocation', type: 'VARCHAR' }],
      };
      const options = { terminator: '\n', includeCommitTs: true };
      const rows = decodeCsvRows(text, employee, options);
      expect(rows.map((r) => [r.op, r.commitTs, r.columns.OfficeLocation])).to.deep.equal([
        ['insert', 433305438660591626n, 'New York'],
        ['update', 433305438660591627n, 'Los Angeles'],
        ['delete', 433305438660591629n, 'Dallas'],
        ['insert', 433305438660591630n, 'Shanghai'],
        ['update', 433305438660591630n, 'Beijing'],
      ]);
      expect(encodeCsvRows(rows.map((r) => ({ ...r, kind: 'row' as const, tableVersion: 1n, commitTs: r.commitTs!, dispatcherId: '1' })), employee, options)).to.equal(text);
    });

    it('the header line: meta names by setting, then the column names, bare (TestEncodeHeader)', () => {
      // pingcap/ticdc pkg/sink/codec/csv/csv_message_test.go TestEncodeHeader
      const def: TableDef = { schema: 's', table: 't', version: 1n, columns: [{ name: 'col1', type: 'INT' }, { name: 'col2', type: 'INT' }] };
      expect(csvHeaderLine(def, { delimiter: ' ', includeCommitTs: true, outputOldValue: true, terminator: '\n' })).to.equal(
        'ticdc-meta$operation ticdc-meta$table ticdc-meta$schema ticdc-meta$commit-ts ticdc-meta$is-update col1 col2\n',
      );
      expect(csvHeaderLine(def, { delimiter: ' ', includeCommitTs: true, terminator: '\n' })).to.equal('ticdc-meta$operation ticdc-meta$table ticdc-meta$schema ticdc-meta$commit-ts col1 col2\n');
      expect(csvHeaderLine(def, { delimiter: ',', terminator: '\n' })).to.equal('ticdc-meta$operation,ticdc-meta$table,ticdc-meta$schema,col1,col2\n');
    });

    it('NULL: the bare null string is NULL, quoted text is text, with any null string', () => {
      const def = tableOf('t', 'TEXT', 'INT');
      const options = { quote: "'", nullString: 'NULL', terminator: '\n' };
      const text = encodeCsvRow(rowOf(def, 'insert', 'NULL', null), def, options);
      expect(text).to.equal("'I','t','test','NULL',NULL\n");
      expect(decodeCsvRows(text, def, options)[0]!.columns).to.deep.equal({ c1: 'NULL', c2: null });
      const empty = { nullString: '' };
      expect(encodeCsvRow(rowOf(def, 'insert', '', null), def, empty)).to.equal('"I","t","test","",\r\n');
      expect(decodeCsvRows('"I","t","test","",\r\n', def, empty)[0]!.columns).to.deep.equal({ c1: '', c2: null });
    });

    it("NULL with quote '': \\N stays apart from the text \\N; a null string text can spell reads as NULL (documented)", () => {
      const def = tableOf('t', 'TEXT', 'TEXT');
      const text = encodeCsvRow(rowOf(def, 'insert', '\\N', null), def, { quote: '' });
      expect(text).to.equal('I,t,test,\\\\N,\\N\r\n');
      expect(decodeCsvRows(text, def, { quote: '' })[0]!.columns).to.deep.equal({ c1: '\\N', c2: null });
      const ambiguous = { quote: '', nullString: 'NULL' };
      expect(decodeCsvRows(encodeCsvRow(rowOf(def, 'insert', 'NULL', 'x'), def, ambiguous), def, ambiguous)[0]!.columns).to.deep.equal({ c1: null, c2: 'x' });
    });

    it('outputHandleKey writes nothing, as TiCDC ("not support output handle key")', () => {
      const def = tableOf('t', 'INT');
      expect(encodeCsvRow(rowOf(def, 'insert', 1), def, { outputHandleKey: true })).to.equal(encodeCsvRow(rowOf(def, 'insert', 1), def));
    });
  });

  describe('dialects: decoding errors name the file, the place and the likely setting', () => {
    const where = 'shop/orders/4350/CDC000001.csv';

    it('a truncated last record, whatever the terminator', () => {
      const lf = encodeCsvRows([row('insert', values), row('insert', values)], table, { terminator: '\n' });
      expect(() => decodeCsvRows(lf.slice(0, -1), table, { terminator: '\n', where })).to.throw(DecodeError, `${where} line 2: the last record does not end with LF (truncated file?)`);
      const cr = encodeCsvRows([row('insert', values), row('insert', values)], table, { terminator: '\r' });
      expect(() => decodeCsvRows(cr.slice(0, -1), table, { terminator: '\r', where })).to.throw(DecodeError, `${where} record 2: the last record does not end with CR (truncated file?)`);
      const escaped = encodeCsvRows([row('insert', { ...values, name: 'a\\' })], table, { quote: '', terminator: '\n' });
      expect(() => decodeCsvRows(escaped.slice(0, -1), table, { quote: '', terminator: '\n', where })).to.throw(DecodeError, /the last record does not end with LF \(truncated file\?\)/);
    });

    it('a CRLF file cut right after the CR is truncated, not a file of terminator CR', () => {
      const crlf = encodeCsvRows([row('insert', values), row('insert', values)], table);
      expect(crlf.endsWith('\r\n')).to.equal(true);
      const cut = crlf.slice(0, -1);
      expect(() => decodeCsvRows(cut, table, { where })).to.throw(DecodeError, `${where} line 2: the last record does not end with CRLF, only with its start "\\r" (truncated file?)`);
      let message = '';
      try {
        decodeCsvRows(cut, table, { where });
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).to.not.contain('--terminator');
      // With quote '' (the last field unquoted) and with another delimiter alike.
      const bare = encodeCsvRows([row('insert', values)], table, { quote: '', delimiter: '|' });
      expect(() => decodeCsvRows(bare.slice(0, -1), table, { quote: '', delimiter: '|', where })).to.throw(DecodeError, `${where} line 1: the last record does not end with CRLF, only with its start "\\r" (truncated file?)`);
      // A CR that is not the end of the text is still a record of another terminator.
      expect(() => decodeCsvRows(crlf.replaceAll('\r\n', '\r'), table, { where })).to.throw(DecodeError, /was the sink run with terminator '\\r'\? pass --terminator '\\r'/);
    });

    it("a file of another terminator: the error says which to pass", () => {
      const lf = encodeCsvRows([row('insert', values)], table, { terminator: '\n' });
      expect(() => decodeCsvRows(lf, table, { where })).to.throw(DecodeError, `${where} line 1: unexpected "\\n" after field 15 (fields are separated by ",", records end with CRLF); was the sink run with terminator '\\n'? pass --terminator '\\n'`);
      const crlf = encodeCsvRows([row('insert', values)], table);
      expect(() => decodeCsvRows(crlf, table, { terminator: '\n', where })).to.throw(DecodeError, /records end with LF\); was the sink run with terminator '\\r\\n'\? pass --terminator '\\r\\n'/);
    });

    it('a field count off by the commit ts or is-update: the error names the setting', () => {
      const plain = encodeCsvRows([row('insert', values)], table, { includeCommitTs: false });
      expect(() => decodeCsvRows(plain, table, { includeCommitTs: true, where })).to.throw(
        DecodeError,
        `${where} line 1: expected 16 fields (4 meta + 12 columns of shop.orders), got 15; was the sink run with include-commit-ts=false? pass --include-commit-ts=false`,
      );
      const withTs = encodeCsvRows([row('insert', values)], table, { includeCommitTs: true });
      expect(() => decodeCsvRows(withTs, table, { where })).to.throw(DecodeError, /got 16; was the sink run with include-commit-ts\? pass --include-commit-ts$/);
      const withOld = encodeCsvRows([row('insert', values)], table, { includeCommitTs: true, outputOldValue: true });
      expect(() => decodeCsvRows(withOld, table, { includeCommitTs: true, where })).to.throw(DecodeError, /got 17; was the sink run with output-old-value\? pass --output-old-value$/);
      const piped = encodeCsvRows([row('insert', values)], table, { delimiter: '|' });
      expect(() => decodeCsvRows(piped, table, { where })).to.throw(DecodeError, `${where} line 1: unexpected "|" after field 1 (fields are separated by ",", records end with CRLF); was the sink run with another delimiter or quote? pass --delimiter, --quote`);
      const bare = encodeCsvRows([row('insert', nulls)], table, { delimiter: '|', quote: '' });
      expect(() => decodeCsvRows(bare, table, { quote: '', where })).to.throw(DecodeError, /got 1; is the delimiter right\? \(records here have no ","; pass --delimiter\)$/);
    });

    it('the header line: checked and skipped; missing, different or unexpected ones are named', () => {
      const options = { outputFieldHeader: true, terminator: '\n', includeCommitTs: true };
      const header = csvHeaderLine(table, options);
      expect(header).to.equal('ticdc-meta$operation,ticdc-meta$table,ticdc-meta$schema,ticdc-meta$commit-ts,id,name,price,score,ratio,big,flag,data,created,doc,color,bits\n');
      const body = encodeCsvRows([row('insert', values), row('delete', nulls)], table, options);
      expect(decodeCsvRows(header + body, table, options)).to.deep.equal(decodeCsvRows(body, table, { ...options, outputFieldHeader: false }));
      expect(() => decodeCsvRows(`${header}"X"${body.slice(3)}`, table, { ...options, where })).to.throw(DecodeError, `${where} line 2: field 1: operation must be I, U or D, got "X"`);
      expect(() => decodeCsvRows(body, table, { ...options, where })).to.throw(DecodeError, /line 1: expected the header line "ticdc-meta\$operation,.*\(output-field-header\), got "\\"I\\",.*; was the sink run without output-field-header\? drop --output-field-header$/);
      expect(() => decodeCsvRows(header.replace(',bits', ',other') + body, table, { ...options, where })).to.throw(DecodeError, /; does the table definition match the file \(columns of shop\.orders version 4350\)\?$/);
      expect(() => decodeCsvRows(header + body, table, { terminator: '\n', includeCommitTs: true, where })).to.throw(DecodeError, `${where} line 1: field 1: operation must be I, U or D, got "ticdc-meta$operation"; the file starts with a header line: pass --output-field-header`);
      expect(decodeCsvRows('', table, options)).to.deep.equal([]);
    });

    it("quote '': a dangling backslash, and a stray quote is text", () => {
      const def: TableDef = { schema: 's', table: 't', version: 1n, columns: [{ name: 'v', type: 'TEXT' }] };
      expect(() => decodeCsvRows('I,t,s,ab\\', def, { quote: '', where })).to.throw(DecodeError, /unexpected "\\\\" after field 4/);
      expect(decodeCsvRows('I,t,s,a"b\r\n', def, { quote: '' })[0]!.columns.v).to.equal('a"b');
    });
  });

  describe('checkCsvOptions', () => {
    const refuses = (options: unknown, message: string | RegExp) => {
      expect(() => checkCsvOptions('storageSink', options), JSON.stringify(options)).to.throw(InvalidOptionError, message);
    };

    it("fills TiCDC's defaults (or the caller's) and accepts its documented settings", () => {
      expect(checkCsvOptions('x', undefined)).to.deep.equal({
        delimiter: ',', quote: '"', terminator: '\r\n', nullString: '\\N', includeCommitTs: false, binaryEncodingMethod: 'base64', outputOldValue: false, outputHandleKey: false, outputFieldHeader: false,
      });
      expect(checkCsvOptions('x', { terminator: '\n' }, { ...checkCsvOptions('x', {}), includeCommitTs: true })).to.deep.include({ terminator: '\n', includeCommitTs: true });
      // pingcap/docs ticdc-csv.md: delimiters of 1 to 3 characters such as `$^` or `|@|`.
      for (const delimiter of [',', '$^', '|@|', '\t', '[*]', '，']) expect(checkCsvOptions('x', { delimiter }).delimiter).to.equal(delimiter);
    });

    it("refuses what TiCDC refuses (pkg/config/sink.go validateAndAdjust), naming the option", () => {
      refuses({ quote: '""' }, `storageSink: option csv.quote must be '' (no quoting) or one ASCII character, got "\\"\\""`);
      refuses({ quote: '\n' }, /option csv.quote must be not a line break/);
      refuses({ delimiter: '' }, /option csv.delimiter must be 1 to 3 bytes \(UTF-8\), got ""/);
      refuses({ delimiter: '||||' }, /csv.delimiter must be 1 to 3 bytes/);
      refuses({ delimiter: '中中' }, /csv.delimiter must be 1 to 3 bytes/);
      refuses({ delimiter: ',\n' }, /csv.delimiter must be free of line breaks/);
      refuses({ delimiter: '"|' }, /csv.delimiter must be free of the quote character "\\""/);
      refuses({ binaryEncodingMethod: 'base32' }, `storageSink: option csv.binaryEncodingMethod must be 'base64' or 'hex', got "base32"`);
    });

    it('refuses dialects whose files cannot be split back into fields (sluice departure)', () => {
      refuses({ terminator: '' }, /csv.terminator must be not empty/);
      refuses({ delimiter: 'x' }, /csv.delimiter must be free of letters, digits/);
      refuses({ delimiter: '.' }, /csv.delimiter must be free of letters, digits/);
      refuses({ quote: 'e' }, /csv.quote must be free of letters, digits/);
      refuses({ terminator: '0\n' }, /csv.terminator must be free of letters, digits/);
      refuses({ terminator: '"\n' }, /csv.terminator must be free of the quote character/);
      refuses({ delimiter: '|', terminator: '|\n' }, /csv.terminator must be free of the delimiter's characters \(both have "\|"\)/);
      refuses({ nullString: 'a\nb' }, /csv.nullString must be free of line breaks/);
      refuses({ nullString: '0' }, /csv.nullString must be not a number/);
      refuses({ nullString: 'N,A' }, /csv.nullString must be free of the characters of the delimiter, the terminator and the quote \(it has ","\)/);
      refuses({ quote: '', terminator: '#\n' }, /csv.terminator must be made of CR and LF only with quote ''/);
      refuses({ quote: '', delimiter: '\\' }, /csv.delimiter must be free of backslashes with quote ''/);
      refuses({ quote: '', delimiter: '|@|' }, /csv.delimiter must be without a border with quote ''/);
      refuses({ quote: '', delimiter: '***' }, /csv.delimiter must be without a border/);
      refuses({ quote: '', nullString: 'N\\' }, /csv.nullString must be not ending with a backslash/);
      // With quotes the same delimiters are fine: strings are quoted, not escaped.
      expect(checkCsvOptions('x', { delimiter: '|@|' }).delimiter).to.equal('|@|');
    });

    it('refuses values of the wrong type and unknown settings', () => {
      refuses({ includeCommitTs: 'yes' }, 'storageSink: option csv.includeCommitTs must be a boolean, got "yes"');
      refuses({ delimiter: 44 }, /csv.delimiter must be a string/);
      refuses({ null: 'x' }, /option csv.null must be absent: the csv settings are delimiter, quote, terminator, nullString, includeCommitTs/);
      refuses('csv', /option csv must be an object of csv settings/);
    });
  });

  it('property: every accepted dialect round-trips every row, with the header line when asked (small run count)', () => {
    fc.assert(
      fc.property(csvDialectArb, tableWithRowsArb, (dialect, [def, rows]) => {
        const encode = createCsvRowEncoder(dialect);
        let text = dialect.outputFieldHeader ? csvHeaderLine(def, dialect) : '';
        for (const r of rows) text += encode(r, def);
        const decoded = decodeCsvRows(text, def, dialect);
        const expected = rows.map((r) => decodedFormOf(r, { commitTs: dialect.includeCommitTs, oldColumns: dialect.outputOldValue }));
        const normalize = (r: Record<string, unknown>) => {
          const out: Record<string, unknown> = { ...r, columns: atFloat32(def, r.columns as Record<string, ColumnValue>) };
          if (r.oldColumns !== undefined) out.oldColumns = atFloat32(def, r.oldColumns as Record<string, ColumnValue>);
          return out;
        };
        expect(decoded.map((r) => normalize(r as unknown as Record<string, unknown>))).to.deep.equal(expected);
      }),
      { numRuns: 150 },
    );
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
