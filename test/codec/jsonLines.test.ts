import { expect } from 'chai';
import fc from 'fast-check';
import { DecodeError, InvalidChangeEventError, type ColumnValue, type DdlEvent, type RowChange } from '../../lib/codec/changeEvent.ts';
import { formatChangeEventLine, parseChangeEventLine } from '../../lib/codec/jsonLines.ts';
import { ddlArb, tableWithRowsArb } from './arbitraries.ts';

const row: RowChange = {
  kind: 'row',
  op: 'update',
  schema: 'shop',
  table: 'orders',
  tableVersion: 4350n,
  commitTs: 4356n,
  dispatcherId: '7',
  columns: { id: 1, total: '9.50', raw: new Uint8Array([0, 1]), big: 18446744073709551615n, ok: true, note: null },
  oldColumns: { id: 1, total: '9.00', raw: new Uint8Array([]), big: -1n, ok: false, note: 'x"y' },
};
const rowLine =
  '{"kind":"row","op":"update","schema":"shop","table":"orders","tableVersion":"4350","commitTs":"4356","dispatcherId":"7",' +
  '"columns":{"id":1,"total":"9.50","raw":{"base64":"AAE="},"big":{"bigint":"18446744073709551615"},"ok":true,"note":null},' +
  '"oldColumns":{"id":1,"total":"9.00","raw":{"base64":""},"big":{"bigint":"-1"},"ok":false,"note":"x\\"y"}}';

const ddl: DdlEvent = {
  kind: 'ddl',
  commitTs: 4350n,
  query: 'CREATE TABLE orders (id INT PRIMARY KEY)',
  ddlType: 'CREATE TABLE',
  schema: 'shop',
  table: 'orders',
  tableDef: {
    schema: 'shop',
    table: 'orders',
    version: 4350n,
    columns: [
      { name: 'id', type: 'INT', unsigned: true, nullable: false, primaryKey: true, default: 0, precision: 11 },
      { name: 'c', type: 'ENUM', default: 'a', elems: ['a', 'b'] },
    ],
  },
  blockedDispatchers: ['7', '8'],
};
const ddlLine =
  '{"kind":"ddl","commitTs":"4350","query":"CREATE TABLE orders (id INT PRIMARY KEY)","ddlType":"CREATE TABLE","schema":"shop","table":"orders",' +
  '"tableDef":{"schema":"shop","table":"orders","version":"4350","columns":[' +
  '{"name":"id","type":"INT","unsigned":true,"nullable":false,"primaryKey":true,"default":0,"precision":11},' +
  '{"name":"c","type":"ENUM","default":"a","elems":["a","b"]}]},"blockedDispatchers":["7","8"]}';

/** JSON has no -0: it is written as 0. */
function withoutNegativeZero<E extends DdlEvent | RowChange>(event: E): E {
  if (event.kind === 'ddl') return event;
  const zero = (columns: Record<string, ColumnValue>) =>
    Object.fromEntries(Object.entries(columns).map(([k, v]) => [k, Object.is(v, -0) ? 0 : v])) as Record<string, ColumnValue>;
  const copy: RowChange = { ...event, columns: zero(event.columns) };
  if (event.oldColumns !== undefined) copy.oldColumns = zero(event.oldColumns);
  return copy as E;
}

describe('JSON-lines change events', () => {
  it('formats a row: bigints as decimal strings, bytes as {"base64"}, column bigints as {"bigint"}', () => {
    expect(formatChangeEventLine(row)).to.equal(rowLine);
  });

  it('formats a DDL with its table definition, optional keys left out', () => {
    expect(formatChangeEventLine(ddl)).to.equal(ddlLine);
    const bare: DdlEvent = { kind: 'ddl', commitTs: 1n, query: 'CREATE DATABASE d', ddlType: 'CREATE SCHEMA', schema: 'd', blockedDispatchers: 'all' };
    expect(formatChangeEventLine(bare)).to.equal('{"kind":"ddl","commitTs":"1","query":"CREATE DATABASE d","ddlType":"CREATE SCHEMA","schema":"d","blockedDispatchers":"all"}');
  });

  it('parses both back', () => {
    expect(parseChangeEventLine(rowLine, 1)).to.deep.equal(row);
    expect(parseChangeEventLine(ddlLine, 2)).to.deep.equal(ddl);
  });

  it('reads an integer literal beyond 2^53 as a bigint rather than rounding it, and accepts a trailing CR', () => {
    const line = rowLine.replace('"id":1,"total":"9.50"', '"id":9007199254740993,"total":"9.50"') + '\r';
    expect(parseChangeEventLine(line, 3).kind === 'row' && (parseChangeEventLine(line, 3) as RowChange).columns.id).to.equal(9007199254740993n);
  });

  it('keeps a column named __proto__ as a column', () => {
    const line = '{"kind":"row","op":"insert","schema":"s","table":"t","tableVersion":"1","commitTs":"2","dispatcherId":"d","columns":{"__proto__":5}}';
    const parsed = parseChangeEventLine(line, 1) as RowChange;
    expect(Object.keys(parsed.columns)).to.deep.equal(['__proto__']);
    expect(Object.getPrototypeOf(parsed.columns)).to.equal(Object.prototype);
  });

  describe('errors name the line and what is wrong', () => {
    const fails = (line: string, message: string | RegExp, type: typeof DecodeError | typeof InvalidChangeEventError = DecodeError) => {
      expect(() => parseChangeEventLine(line, 17)).to.throw(type, message);
    };

    it('malformed JSON', () => {
      fails('{"kind":"row",', /^line 17: malformed JSON: expected a key at offset 14$/);
      fails('', 'line 17: malformed JSON: unexpected end at offset 0');
      fails('[1]', 'line 17: the event must be a JSON object, got an array');
    });

    it('missing, unknown and mistyped fields', () => {
      fails(rowLine.replace('"dispatcherId":"7",', ''), 'line 17: the event: missing field "dispatcherId"');
      // Issue 14: an unknown key names the keys the object takes (it said 'unknown field "extra"').
      fails(
        rowLine.replace('"kind":"row"', '"kind":"row","extra":1'),
        'line 17: the event: unknown key "extra"; a row event takes kind, op, schema, table, tableVersion, commitTs, dispatcherId, columns, oldColumns',
      );
      // A misspelt key is reported as unknown, not as the key it stands for, missing.
      fails(rowLine.replace('"commitTs"', '"comitTs"'), 'line 17: the event: unknown key "comitTs"; a row event takes kind, op, ');
      fails(ddlLine.replace('"query"', '"sql"'), 'line 17: the event: unknown key "sql"; a ddl event takes kind, commitTs, query, ddlType, schema, table, tableDef, blockedDispatchers');
      fails(ddlLine.replace('"version":"4350"', '"version":"4350","v":1'), 'line 17: tableDef: unknown key "v"; a tableDef takes schema, table, version, columns');
      fails(rowLine.replace('"commitTs":"4356"', '"commitTs":4356'), 'line 17: the event: commitTs must be a decimal string such as "4356", got 4356');
      fails(rowLine.replace('"commitTs":"4356"', '"commitTs":"-1"'), 'line 17: the event: commitTs -1 is out of range');
      fails(rowLine.replace('"kind":"row"', '"kind":"rows"'), 'line 17: the event: kind must be "row" or "ddl", got "rows"');
      fails(rowLine.replace('{"base64":"AAE="}', '{"base64":"A"}'), 'line 17: columns.raw: base64 is not valid standard base64');
      fails(rowLine.replace('{"base64":"AAE="}', '[1]'), 'line 17: columns: raw must be a string, number, boolean, null, {"bigint":"..."} or {"base64":"..."}, got an array');
      fails(ddlLine.replace('"precision":11', '"precision":"11"'), 'line 17: tableDef.columns[0]: precision must be an integer, got a string');
      fails(ddlLine.replace('"elems":["a","b"]', '"elems":["a","b"],"size":2'), 'line 17: tableDef.columns[1]: unknown key "size"; a column of a tableDef takes name, type, unsigned, nullable, primaryKey, default, precision, scale, elems');
    });

    it('well-formed but invalid events, naming the event', () => {
      fails(rowLine.replace('"table":"orders"', '"table":"../etc"'), "invalid change event at line 17 (row update shop.../etc commitTs 4356): table must not contain '/' (\"../etc\")", InvalidChangeEventError);
      fails(rowLine.replace('"op":"update"', '"op":"insert"'), /line 17 \(row insert shop\.orders commitTs 4356\): oldColumns is only for an update/, InvalidChangeEventError);
      fails(ddlLine.replace('"ddlType":"CREATE TABLE"', '"ddlType":"create table"'), /ddlType must be an upper-case TiDB DDL type name/, InvalidChangeEventError);
      fails(ddlLine.replace('"version":"4350"', '"version":"4351"'), /tableDef\.version \(4351\) must equal the DDL's commitTs/, InvalidChangeEventError);
    });
  });

  it('property: format -> parse gives any event back exactly', () => {
    const events = fc.oneof(
      tableWithRowsArb.map(([, rows]) => rows[0]!),
      ddlArb,
    );
    fc.assert(
      fc.property(events, fc.nat(), (event, lineNumber) => {
        const line = formatChangeEventLine(event);
        expect(line).to.not.contain('\n');
        const parsed = parseChangeEventLine(line, lineNumber + 1);
        expect(parsed).to.deep.equal(withoutNegativeZero(event));
        expect(formatChangeEventLine(parsed)).to.equal(line);
      }),
      { numRuns: 200 },
    );
  });
});
