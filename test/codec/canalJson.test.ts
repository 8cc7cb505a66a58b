import { expect } from 'chai';
import fc from 'fast-check';
import { DecodeError, InvalidChangeEventError, type ColumnValue, type RowChange, type TableDef } from '../../lib/codec/changeEvent.ts';
import { checkCanalJsonOptions, decodeCanalJsonRow, decodeCanalJsonRows, encodeCanalJsonRow, encodeCanalJsonRows } from '../../lib/codec/canalJson.ts';
import { InvalidOptionError } from '../../lib/core/errors.ts';
import { decodedFormOf, tableWithRowsArb } from './arbitraries.ts';

const table: TableDef = {
  schema: 'shop',
  table: 'orders',
  version: 4350n,
  columns: [
    { name: 'id', type: 'INT', primaryKey: true, nullable: false },
    { name: 'name', type: 'VARCHAR' },
    { name: 'price', type: 'DECIMAL' },
    { name: 'data', type: 'VARBINARY' },
    { name: 'color', type: 'ENUM', elems: ['red', 'green'] },
    { name: 'tags', type: 'SET', elems: ['a', 'b', 'c'] },
    { name: 'score', type: 'FLOAT' },
    { name: 'u', type: 'TINYINT', unsigned: true },
    { name: 'big', type: 'BIGINT', unsigned: true },
  ],
};

const values: Record<string, ColumnValue> = {
  id: 1,
  name: 'a<b>&"c"\u2028\b',
  price: '9.50',
  data: new Uint8Array([0, 0xe9, 0xff]),
  color: 'green',
  tags: 'a,c',
  score: 3.14,
  u: 200,
  big: 18446744073709551615n,
};
const oldValues: Record<string, ColumnValue> = { ...values, name: null, u: 7, big: 1n, score: 1e21 };

const commitTs = 435661838416609281n; // physical ms 1661918023745
const row = (op: RowChange['op'], columns: Record<string, ColumnValue>, old?: Record<string, ColumnValue>): RowChange => ({
  kind: 'row',
  op,
  schema: 'shop',
  table: 'orders',
  tableVersion: 4350n,
  commitTs,
  dispatcherId: '7',
  columns,
  ...(old === undefined ? {} : { oldColumns: old }),
});

const head = (type: string, uJavaType: number, bigJavaType: number) =>
  `{"id":0,"database":"shop","table":"orders","pkNames":["id"],"isDdl":false,"type":"${type}","es":1661918023745,"ts":1661918023745,"sql":""` +
  `,"sqlType":{"id":4,"name":12,"price":3,"data":2004,"color":4,"tags":-7,"score":7,"u":${uJavaType},"big":${bigJavaType}}` +
  `,"mysqlType":{"id":"int","name":"varchar","price":"decimal","data":"varbinary","color":"enum","tags":"set","score":"float","u":"tinyint unsigned","big":"bigint unsigned"}`;
const dataJson =
  '{"id":"1","name":"a\\u003cb\\u003e\\u0026\\"c\\"\\u2028\\u0008","price":"9.50","data":"\\u0000\u00e9\u00ff","color":"2","tags":"5","score":"3.14","u":"200","big":"18446744073709551615"}';
const oldJson = '{"id":"1","name":null,"price":"9.50","data":"\\u0000\u00e9\u00ff","color":"2","tags":"5","score":"1000000000000000000000","u":"7","big":"1"}';
const tidb = '"_tidb":{"commitTs":435661838416609281}}';

describe('canal-json codec', () => {
  describe('encodeCanalJsonRow: exact bytes', () => {
    it("writes an insert with TiCDC's key order, easyjson escaping, latin1 binary, ENUM index, SET mask", () => {
      expect(encodeCanalJsonRow(row('insert', values), table)).to.equal(`${head('INSERT', 5, 3)},"old":null,"data":[${dataJson}],${tidb}`);
    });

    it('writes an update with its old values, the java types of the new values', () => {
      expect(encodeCanalJsonRow(row('update', values, oldValues), table)).to.equal(
        `${head('UPDATE', 5, 3)},"old":[${oldJson}],"data":[${dataJson}],${tidb}`,
      );
    });

    it('writes a delete with the deleted row as data and java types of small unsigned values unwidened', () => {
      expect(encodeCanalJsonRow(row('delete', oldValues), table)).to.equal(`${head('DELETE', -6, -5)},"old":null,"data":[${oldJson}],${tidb}`);
    });

    it('writes pkNames null without primary key, and ts from buildTimeMs', () => {
      const plain: TableDef = { schema: 's', table: 't', version: 1n, columns: [{ name: 'v', type: 'DOUBLE' }] };
      const r: RowChange = { ...row('insert', { v: 1e-7 }), schema: 's', table: 't', commitTs: (5n << 18n) + 3n };
      expect(encodeCanalJsonRow(r, plain, { buildTimeMs: 99 })).to.equal(
        '{"id":0,"database":"s","table":"t","pkNames":null,"isDdl":false,"type":"INSERT","es":5,"ts":99,"sql":"","sqlType":{"v":8},"mysqlType":{"v":"double"},"old":null,"data":[{"v":"0.0000001"}],"_tidb":{"commitTs":1310723}}',
      );
      expect(() => encodeCanalJsonRow(r, plain, { buildTimeMs: -1 })).to.throw(InvalidOptionError, /buildTimeMs/);
    });

    it('writes no _tidb without the TiDB extension, the object ending after data', () => {
      // pingcap/ticdc pkg/sink/codec/canal/canal_json_encoder.go (newJSONMessageForDML): the `_tidb`
      // object is written only `if config.EnableTiDBExtension`; the message closes right after `data`.
      // Its default is false (pkg/sink/codec/common/config.go NewConfig: EnableTiDBExtension: false).
      expect(encodeCanalJsonRow(row('insert', values), table, { enableTidbExtension: false })).to.equal(`${head('INSERT', 5, 3)},"old":null,"data":[${dataJson}]}`);
      expect(encodeCanalJsonRow(row('update', values, oldValues), table, { enableTidbExtension: false })).to.equal(`${head('UPDATE', 5, 3)},"old":[${oldJson}],"data":[${dataJson}]}`);
      expect(encodeCanalJsonRow(row('insert', values), table, { enableTidbExtension: true })).to.equal(`${head('INSERT', 5, 3)},"old":null,"data":[${dataJson}],${tidb}`);
    });

    it('ends each row with CRLF in a file', () => {
      const line = encodeCanalJsonRow(row('insert', values), table);
      expect(encodeCanalJsonRows([row('insert', values), row('insert', values)], table)).to.equal(`${line}\r\n${line}\r\n`);
    });

    it('ends each row with the terminator given (TiCDC\'s sink terminator applies to canal-json)', () => {
      // pingcap/ticdc pkg/sink/codec/canal/canal_json_txn_encoder.go (AppendTxnEvent) writes the
      // configured terminator after each object; tests/integration_tests/canal_json_storage_basic/conf/changefeed.toml
      // sets terminator = "\n".
      const line = encodeCanalJsonRow(row('insert', values), table);
      expect(encodeCanalJsonRows([row('insert', values), row('insert', values)], table, { terminator: '\n' })).to.equal(`${line}\n${line}\n`);
      expect(encodeCanalJsonRows([row('insert', values)], table, { terminator: '\r' })).to.equal(`${line}\r`);
    });

    it('takes control characters only as the terminator, naming the option', () => {
      expect(checkCanalJsonOptions('t', { terminator: '\n' })).to.deep.equal({ enableTidbExtension: true, terminator: '\n' });
      expect(checkCanalJsonOptions('t', undefined)).to.deep.equal({ enableTidbExtension: true, terminator: '\r\n' });
      for (const bad of ['', '|', '\n|', ' ', '\u2028', 'ab']) {
        expect(() => checkCanalJsonOptions('t', { terminator: bad }), JSON.stringify(bad)).to.throw(InvalidOptionError, 't: option canalJson.terminator must be one or more control characters');
        expect(() => encodeCanalJsonRows([row('insert', values)], table, { terminator: bad })).to.throw(InvalidOptionError, 'option canalJson.terminator must be');
      }
      expect(() => checkCanalJsonOptions('t', { terminator: 10 })).to.throw(InvalidOptionError, 'option canalJson.terminator must be');
      expect(() => checkCanalJsonOptions('t', { enableTidbExtension: 'yes' })).to.throw(InvalidOptionError, 't: option canalJson.enableTidbExtension must be a boolean, got "yes"');
      expect(() => checkCanalJsonOptions('t', 'x')).to.throw(InvalidOptionError, 't: option canalJson must be an object');
    });

    it('refuses an unknown key, naming it and the settings there are, rather than giving the defaults', () => {
      // Misspelt settings (extention, termintor) must not silently become the TiDB extension on and CRLF.
      expect(() => checkCanalJsonOptions('storageSink', { enableTidbExtention: false, terminator: '\n' })).to.throw(
        InvalidOptionError,
        'storageSink: option canalJson.enableTidbExtention must be absent: the canalJson settings are enableTidbExtension, terminator, got false',
      );
      expect(() => checkCanalJsonOptions('storageSink', { enableTidbExtension: false, termintor: '\n' })).to.throw(InvalidOptionError, 'option canalJson.termintor must be absent');
      // buildTimeMs is the sink's own option, not a file-level canal-json setting.
      expect(() => checkCanalJsonOptions('t', { buildTimeMs: 5 })).to.throw(InvalidOptionError, 'option canalJson.buildTimeMs must be absent');
      expect(checkCanalJsonOptions('t', { enableTidbExtension: false, terminator: undefined })).to.deep.equal({ enableTidbExtension: false, terminator: '\r\n' });
    });

    it('refuses an ENUM value outside its elems, an ENUM without elems, and a row of another table', () => {
      expect(() => encodeCanalJsonRow(row('insert', { ...values, color: 'blue' }), table)).to.throw(
        InvalidChangeEventError,
        /canal-json column "color".*"blue" is not one of the ENUM's elems/,
      );
      const noElems: TableDef = { ...table, columns: table.columns.map((c) => (c.name === 'tags' ? { name: 'tags', type: 'SET' } : c)) };
      expect(() => encodeCanalJsonRow(row('insert', values), noElems)).to.throw(InvalidChangeEventError, /SET needs the column's elems/);
      expect(() => encodeCanalJsonRow({ ...row('insert', values), schema: 'x' }, table)).to.throw(InvalidChangeEventError, /row is for x.orders/);
    });
  });

  describe('decodeCanalJsonRows', () => {
    it('reads rows back typed by the table', () => {
      const text = encodeCanalJsonRows([row('update', values, oldValues), row('delete', oldValues)], table);
      expect(decodeCanalJsonRows(text, table)).to.deep.equal([
        { op: 'update', schema: 'shop', table: 'orders', commitTs, columns: { ...values, score: 3.14 }, oldColumns: oldValues },
        { op: 'delete', schema: 'shop', table: 'orders', commitTs, columns: oldValues },
      ]);
    });

    it('reads a row without the TiDB extension, with no commit ts', () => {
      const line = encodeCanalJsonRow(row('insert', values), table).replace(`,${tidb}`, '}');
      expect(decodeCanalJsonRow(line, table)).to.not.have.property('commitTs');
    });

    it('reads a file without the TiDB extension back with the same rows, none with a commit ts', () => {
      const rows = [row('update', values, oldValues), row('delete', oldValues)];
      const without = decodeCanalJsonRows(encodeCanalJsonRows(rows, table, { enableTidbExtension: false }), table);
      const withTs = decodeCanalJsonRows(encodeCanalJsonRows(rows, table), table);
      expect(without).to.deep.equal(withTs.map(({ commitTs: _, ...rest }) => rest));
      for (const r of without) expect(r).to.not.have.property('commitTs');
    });

    it('reads files of any terminator the encoder takes with no setting, and still detects a truncated file', () => {
      const rows = [row('update', values, oldValues), row('delete', oldValues), row('insert', values)];
      const expected = decodeCanalJsonRows(encodeCanalJsonRows(rows, table), table);
      expect(expected).to.have.length(3);
      for (const terminator of ['\n', '\r\n', '\r', '\t', '\n\r', '\u0000', '\u001e\n']) {
        const text = encodeCanalJsonRows(rows, table, { terminator });
        expect(decodeCanalJsonRows(text, table), JSON.stringify(terminator)).to.deep.equal(expected);
        expect(() => decodeCanalJsonRows(text.slice(0, -terminator.length), table, 'f.json'), JSON.stringify(terminator)).to.throw(
          DecodeError,
          'f.json line 3: the last line does not end with a line break or other terminator (truncated file?)',
        );
      }
    });

    it('refuses a file that mixes rows with and without _tidb, naming the line', () => {
      const file = 'shop/orders/4350/CDC000001.json';
      const withTs = encodeCanalJsonRow(row('insert', values), table);
      const without = encodeCanalJsonRow(row('insert', values), table, { enableTidbExtension: false });
      expect(() => decodeCanalJsonRows(`${withTs}\r\n${withTs}\r\n${without}\r\n`, table, file)).to.throw(
        DecodeError,
        `${file} line 3: line 1 carries _tidb.commitTs but line 3 does not`,
      );
      expect(() => decodeCanalJsonRows(`${without}\r\n${withTs}\r\n`, table, file)).to.throw(DecodeError, `${file} line 2: line 2 carries _tidb.commitTs but line 1 does not`);
    });

    it('takes the columns an update leaves out of old from data (only-output-updated-columns)', () => {
      // pingcap/ticdc pkg/sink/codec/canal/canal_json_encoder.go fillUpdateColumns skips a column of
      // `old` whose value equals the new one when OnlyOutputUpdatedColumns; canal_json_decoder.go
      // (canalJSONMessage2DMLEvent) fills the missing ones from `data`.
      const small: TableDef = { schema: 'test', table: 't', version: 1n, columns: [{ name: 'id', type: 'INT', primaryKey: true }, { name: 'uk', type: 'INT' }, { name: 'pad', type: 'VARCHAR' }] };
      const line =
        '{"id":0,"database":"test","table":"t","pkNames":["id"],"isDdl":false,"type":"UPDATE","es":1,"ts":1,"sql":"","sqlType":{"id":4,"uk":4,"pad":12},' +
        '"mysqlType":{"id":"int","uk":"int","pad":"varchar"},"old":[{"uk":"1"}],"data":[{"id":"1","uk":"2","pad":"example1"}]}';
      expect(decodeCanalJsonRow(line, small)).to.deep.equal({ op: 'update', schema: 'test', table: 't', columns: { id: 1, uk: 2, pad: 'example1' }, oldColumns: { id: 1, uk: 1, pad: 'example1' } });
      expect(() => decodeCanalJsonRow(line.replace('"id":"1",', ''), small)).to.throw(DecodeError, /data: column "id" is missing/);
    });

    it('reports malformed rows, naming the file and line', () => {
      const good = encodeCanalJsonRow(row('insert', values), table);
      const file = 'shop/orders/4350/CDC000001.json';
      expect(() => decodeCanalJsonRows(`${good}\r\n{"id":0`, table, file)).to.throw(DecodeError, `${file} line 2: the last line does not end with a line break`);
      expect(() => decodeCanalJsonRows(`${good}\r\n{"id":0\r\n`, table, file)).to.throw(DecodeError, /line 2: malformed JSON: expected ',' or '}' at offset 7/);
      expect(() => decodeCanalJsonRows(good.replace('"INSERT"', '"MERGE"') + '\n', table, file)).to.throw(DecodeError, /line 1: type must be INSERT, UPDATE or DELETE, got "MERGE"/);
      expect(() => decodeCanalJsonRow(good.replace('"id":"1"', '"id":1'), table)).to.throw(DecodeError, 'canal-json: data.id must be a string or null, got a number');
      expect(() => decodeCanalJsonRow(good.replace('"id":"1"', '"idx":"1"'), table)).to.throw(DecodeError, /data: column "idx" is not in shop\.orders/);
      expect(() => decodeCanalJsonRow(good.replace('"color":"2"', '"color":"3"'), table)).to.throw(DecodeError, /data\.color \(ENUM\): ENUM index 3 is past the 2 elems/);
      expect(() => decodeCanalJsonRow(good.replace('"tags":"5"', '"tags":"8"'), table)).to.throw(DecodeError, /SET mask 8 has bits past the 3 elems/);
      expect(() => decodeCanalJsonRow(good.replace('"u":"200"', '"u":"2x"'), table)).to.throw(DecodeError, /data\.u \(TINYINT\): TINYINT expects an integer, got "2x"/);
      expect(() => decodeCanalJsonRow(good.replace(tidb, '"_tidb":{"commitTs":-1}}'), table)).to.throw(DecodeError, /_tidb\.commitTs must be a uint64, got -1/);
      expect(() => decodeCanalJsonRow(good.replace('"\\u0000', '"\u0100'), table)).to.throw(DecodeError, /character above U\+00FF/);
    });
  });

  it('property: encode -> decode gives every row back (unicode, HTML characters, NULL, binary, uint64; any terminator)', () => {
    fc.assert(
      fc.property(tableWithRowsArb, fc.constantFrom('\r\n', '\n', '\r', '\t'), ([def, rows], terminator) => {
        const decoded = decodeCanalJsonRows(encodeCanalJsonRows(rows, def, { terminator }), def);
        const float32 = (columns: Record<string, ColumnValue> | undefined) => {
          if (columns === undefined) return undefined;
          const out = { ...columns };
          for (const c of def.columns) if (c.type === 'FLOAT' && typeof out[c.name] === 'number') out[c.name] = Math.fround(out[c.name] as number);
          return out;
        };
        const normalized = decoded.map((r) => {
          const out: Record<string, unknown> = { ...r, columns: float32(r.columns) };
          if (r.oldColumns !== undefined) out.oldColumns = float32(r.oldColumns);
          return out;
        });
        expect(normalized).to.deep.equal(rows.map((r) => decodedFormOf(r)));
      }),
      { numRuns: 200 },
    );
  });
});
