import { expect } from 'chai';
import { checkChangeEvent, InvalidChangeEventError, pathNameProblem, rowTableProblem, type ColumnValue, type DdlEvent, type RowChange, type TableDef } from '../../lib/codec/changeEvent.ts';

const row: RowChange = {
  kind: 'row',
  op: 'insert',
  schema: 'shop',
  table: 'orders',
  tableVersion: 4350n,
  commitTs: 4356n,
  dispatcherId: '7',
  columns: { id: 1, name: 'a', raw: new Uint8Array([1]), big: 1n, ok: true, gone: null },
};

const ddl: DdlEvent = {
  kind: 'ddl',
  commitTs: 4350n,
  query: 'CREATE TABLE shop.orders (id INT)',
  ddlType: 'CREATE TABLE',
  schema: 'shop',
  table: 'orders',
  tableDef: { schema: 'shop', table: 'orders', version: 4350n, columns: [{ name: 'id', type: 'INT' }] },
  blockedDispatchers: 'all',
};

const refuses = (event: unknown, message: string | RegExp) => {
  expect(() => checkChangeEvent(event, 'line 17')).to.throw(InvalidChangeEventError, message);
};

describe('checkChangeEvent', () => {
  it('accepts well-formed rows and DDL, including commit ts 0 and uint64 max', () => {
    expect(() => checkChangeEvent(row, 'x')).to.not.throw();
    expect(() => checkChangeEvent({ ...row, commitTs: 0n, tableVersion: (1n << 64n) - 1n }, 'x')).to.not.throw();
    expect(() => checkChangeEvent({ ...row, op: 'update', oldColumns: { ...row.columns, id: 0 } }, 'x')).to.not.throw();
    expect(() => checkChangeEvent(ddl, 'x')).to.not.throw();
    expect(() => checkChangeEvent({ ...ddl, tableDef: undefined, table: undefined, blockedDispatchers: ['1', '2'] }, 'x')).to.not.throw();
  });

  it('names the event (kind, schema.table, commit ts) and where it came from', () => {
    refuses({ ...row, table: 'a/b' }, `invalid change event at line 17 (row insert shop.a/b commitTs 4356): table must not contain '/' ("a/b")`);
    refuses({ ...ddl, schema: '' }, `invalid change event at line 17 (ddl CREATE TABLE .orders commitTs 4350): schema must not be empty`);
    try {
      checkChangeEvent({ ...row, dispatcherId: '..' }, 'dispatcher 3');
      expect.fail('no error');
    } catch (error) {
      expect(error).to.be.an.instanceOf(InvalidChangeEventError);
      const e = error as InvalidChangeEventError;
      expect([e.where, e.event, e.problem]).to.deep.equal(['dispatcher 3', 'row insert shop.orders commitTs 4356', `dispatcherId must not contain '..' ("..")`]);
    }
  });

  it('refuses names that would not be safe path segments', () => {
    refuses({ ...row, schema: '.' }, /schema must not be '\.'/);
    refuses({ ...row, schema: 'a..b' }, /schema must not contain '\.\.'/);
    refuses({ ...row, table: 'a\u0000b' }, /table must not contain control characters/);
    refuses({ ...row, table: 'a\u007fb' }, /table must not contain control characters/);
    refuses({ ...row, dispatcherId: 'a\ud800' }, /dispatcherId must be well-formed Unicode/);
    refuses({ ...row, columns: { 'a/b': 1 } }, /columns name must not contain '\/'/);
    refuses({ ...ddl, blockedDispatchers: ['ok', 'a/b'] }, /blockedDispatchers entry must not contain '\/'/);
    refuses({ ...ddl, tableDef: { ...ddl.tableDef!, columns: [{ name: '', type: 'INT' }] } }, /tableDef column name must not be empty/);
    expect(pathNameProblem('a.b c-中😀')).to.equal(undefined);
  });

  it('still checks every name right after a valid row with the same table and columns (names are remembered)', () => {
    checkChangeEvent(row, 'line 1');
    refuses({ ...row, schema: '' }, /schema must not be empty/);
    checkChangeEvent(row, 'line 2');
    refuses({ ...row, table: 'a/b' }, /table must not contain '\/'/);
    checkChangeEvent(row, 'line 3');
    const names = Object.keys(row.columns);
    const renamed = Object.fromEntries(names.map((name, i) => [i === 0 ? '..' : name, row.columns[name]]));
    refuses({ ...row, columns: renamed }, /columns name must not contain '\.\.'/);
    checkChangeEvent(row, 'line 4');
    refuses({ ...row, schema: undefined }, /schema must be a string/);
    // Remembered names, checked values: the same columns with one bad value, an extra or a missing one.
    checkChangeEvent(row, 'line 5');
    refuses({ ...row, columns: { ...row.columns, ok: {} } }, /columns\.ok must be a string, number, bigint, boolean, null or Uint8Array/);
    refuses({ ...row, columns: { ...row.columns, 'a/b': 1 } }, /columns name must not contain '\/'/);
    const inherited = Object.assign(Object.create({ 'x/y': 1 }) as object, row.columns);
    checkChangeEvent({ ...row, columns: inherited }, 'line 6');
  });

  it('refuses timestamps outside uint64 and values of unsupported kinds', () => {
    refuses({ ...row, commitTs: -1n }, 'invalid change event at line 17 (row insert shop.orders commitTs -1): commitTs must be in [0, 2^64-1], got -1');
    refuses({ ...row, commitTs: 1n << 64n }, /commitTs must be in \[0, 2\^64-1\]/);
    refuses({ ...row, commitTs: 5 }, /commitTs must be a bigint, got number/);
    refuses({ ...row, tableVersion: undefined }, /tableVersion must be a bigint, got undefined/);
    refuses({ ...row, columns: { x: NaN } }, /columns\.x must be a finite number, got NaN/);
    refuses({ ...row, columns: { x: {} } }, /columns\.x must be a string, number, bigint, boolean, null or Uint8Array, got object/);
    refuses({ ...row, columns: {} }, /columns must hold at least one column/);
  });

  it('refuses shapes that do not hang together', () => {
    refuses(null, /at line 17 \(not an object \(object\)\): must be an object/);
    refuses({ ...row, kind: 'rows' }, /kind must be 'row' or 'ddl', got "rows"/);
    refuses({ ...row, op: 'upsert' }, /op must be 'insert', 'update' or 'delete', got "upsert"/);
    refuses({ ...row, oldColumns: { id: 1 } }, /oldColumns is only for an update, not for an insert/);
    refuses({ ...row, op: 'update', oldColumns: { id: 1 } }, /oldColumns must name the same columns as columns/);
    refuses({ ...ddl, ddlType: 'CREATE THING' }, /ddlType must be an upper-case TiDB DDL type name such as 'CREATE TABLE', got "CREATE THING"/);
    refuses({ ...ddl, query: undefined }, /query must be a string/);
    refuses({ ...ddl, blockedDispatchers: 'some' }, /blockedDispatchers must be 'all' or a list/);
    refuses({ ...ddl, commitTs: 4351n }, /tableDef\.version \(4350\) must equal the DDL's commitTs/);
  });

  it('refuses table definitions that a schema file could not carry', () => {
    const withColumns = (columns: unknown[]) => ({ ...ddl, tableDef: { ...ddl.tableDef!, columns } });
    refuses(withColumns([]), /tableDef columns must be a non-empty list/);
    refuses(withColumns([{ name: 'a', type: 'INT' }, { name: 'a', type: 'INT' }]), /tableDef column "a" appears twice/);
    refuses(withColumns([{ name: 'a', type: 'int' }]), /"a" type must be an upper-case MySQL type without UNSIGNED/);
    refuses(withColumns([{ name: 'a', type: 'INT UNSIGNED' }]), /use unsigned: true/);
    refuses(withColumns([{ name: 'a', type: 'INT', nullable: 'no' }]), /"a" nullable must be a boolean/);
    refuses(withColumns([{ name: 'a', type: 'INT', precision: -1 }]), /"a" precision must be a non-negative integer/);
    refuses(withColumns([{ name: 'a', type: 'INT', default: Infinity }]), /"a" default must be a string or a finite number/);
    refuses(withColumns([{ name: 'a', type: 'ENUM', elems: [1] }]), /"a" elems must be a list of strings/);
  });
});

describe('rowTableProblem', () => {
  const table: TableDef = {
    schema: 'shop',
    table: 'orders',
    version: 4350n,
    columns: [
      { name: 'id', type: 'BIGINT', nullable: false, primaryKey: true },
      { name: 'qty', type: 'INT' },
      { name: 'price', type: 'DECIMAL' },
      { name: 'weight', type: 'FLOAT' },
      { name: 'raw', type: 'BLOB' },
      { name: 'note', type: 'VARCHAR', nullable: false },
    ],
  };
  const fits = { id: 1n, qty: 2, price: '9.50', weight: 1.5, raw: new Uint8Array([1]), note: 'a' };
  const problemOf = (columns: Record<string, ColumnValue>, oldColumns?: Record<string, ColumnValue>) =>
    rowTableProblem({ ...row, op: oldColumns ? 'update' : 'insert', columns, ...(oldColumns ? { oldColumns } : {}) }, table);

  it('accepts a row whose columns are the table columns, with values their types take and NULL where allowed', () => {
    expect(problemOf(fits)).to.equal(undefined);
    expect(problemOf({ ...fits, id: 7, qty: null, price: 3, raw: 'text as bytes' })).to.equal(undefined);
    expect(problemOf(fits, { ...fits, qty: 1 })).to.equal(undefined);
  });

  it('names the column and what is wrong: NULL in a NOT NULL column, a wrong type, a missing or extra column', () => {
    expect(problemOf({ ...fits, note: null })).to.equal('columns.note: NULL in a NOT NULL column (VARCHAR)');
    expect(problemOf(fits, { ...fits, id: null })).to.equal('oldColumns.id: NULL in a NOT NULL column (BIGINT)');
    expect(problemOf({ ...fits, qty: 1.5 })).to.equal('columns.qty: INT takes an integer, got 1.5');
    expect(problemOf({ ...fits, qty: 2 ** 60 })).to.match(/^columns\.qty: INT takes an integer|^columns\.qty: INT value/);
    expect(problemOf({ ...fits, price: 'cheap' })).to.equal('columns.price: DECIMAL takes decimal text or a number, got "cheap"');
    expect(problemOf({ ...fits, weight: 1e300 })).to.equal('columns.weight: FLOAT value 1e+300 is outside the float32 range');
    expect(problemOf({ ...fits, note: 5 })).to.equal('columns.note: VARCHAR takes a string, got 5');
    expect(problemOf({ ...fits, raw: true })).to.match(/^columns\.raw: BLOB takes bytes/);
    const { note: _note, ...withoutNote } = fits;
    expect(problemOf(withoutNote)).to.equal('columns: the columns of shop.orders at table version 4350 are id, qty, price, weight, raw, note; missing note');
    const colors: TableDef = { ...table, columns: [{ name: 'one', type: 'ENUM', elems: ['red', 'blue'] }, { name: 'many', type: 'SET', elems: ['a', 'b'] }] };
    expect(rowTableProblem({ ...row, columns: { one: 'red', many: 'a,b' } }, colors)).to.equal(undefined);
    expect(rowTableProblem({ ...row, columns: { one: '', many: '' } }, colors)).to.equal(undefined);
    expect(rowTableProblem({ ...row, columns: { one: 'green', many: 'a' } }, colors)).to.equal(`columns.one: "green" is not one of the ENUM's elems (red, blue)`);
    expect(rowTableProblem({ ...row, columns: { one: 'red', many: 'a,c' } }, colors)).to.equal(`columns.many: "c" is not one of the SET's elems (a, b)`);
    expect(problemOf({ ...fits, color: 'red' })).to.equal('columns: the columns of shop.orders at table version 4350 are id, qty, price, weight, raw, note; not in the table: color');
  });
});
