/**
 * TableRegistry: definitions by exact table version, DDL apply and drop, register, forget, the
 * missing-definition error, and the bounds (LRU by use, idle reclaim on an injected clock, versions).
 */
import { expect } from 'chai';
import { InvalidChangeEventError, type DdlEvent, type RowChange, type TableDef } from '../../../lib/codec/changeEvent.ts';
import { InvalidOptionError } from '../../../lib/core/errors.ts';
import { TableRegistry, UnknownTableVersionError } from '../../../pipelines/storageSink/tableRegistry.ts';

function def(schema: string, table: string, version: bigint, ...columns: string[]): TableDef {
  return { schema, table, version, columns: columns.map((name) => ({ name, type: 'INT' })) };
}

function ddl(ddlType: string, schema: string, commitTs: bigint, table?: string, tableDef?: TableDef): DdlEvent {
  const event: DdlEvent = { kind: 'ddl', commitTs, query: `${ddlType} ...`, ddlType, schema, blockedDispatchers: 'all' };
  if (table !== undefined) event.table = table;
  if (tableDef !== undefined) event.tableDef = tableDef;
  return event;
}

function row(schema: string, table: string, tableVersion: bigint): RowChange {
  return { kind: 'row', op: 'insert', schema, table, tableVersion, commitTs: tableVersion + 10n, dispatcherId: 'd1', columns: { id: 1 } };
}

function errorOf(action: () => unknown): Error {
  try {
    action();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error');
}

const HINT = "send the table's DDL, or register its definition, before its rows";

describe('TableRegistry', () => {
  it('returns the definition of exactly the row table version, keeping older versions after a newer DDL', () => {
    const tables = new TableRegistry();
    const v1 = def('shop', 'orders', 100n, 'id');
    const v2 = def('shop', 'orders', 200n, 'id', 'price');
    tables.apply(ddl('CREATE TABLE', 'shop', 100n, 'orders', v1));
    tables.apply(ddl('ADD COLUMN', 'shop', 200n, 'orders', v2));
    expect(tables.definitionFor(row('shop', 'orders', 100n))).to.equal(v1);
    expect(tables.definitionFor(row('shop', 'orders', 200n))).to.equal(v2);
    expect(tables.size).to.equal(1);
  });

  it('registers a table first seen without DDL at its start ts', () => {
    const tables = new TableRegistry();
    const start = def('shop', 'items', 4350n, 'id');
    tables.register(start);
    expect(tables.definitionFor(row('shop', 'items', 4350n))).to.equal(start);
  });

  it('fails a row of an unknown version with the exact message naming table, version and known versions', () => {
    const tables = new TableRegistry();
    tables.register(def('shop', 'orders', 300n, 'id'));
    tables.register(def('shop', 'orders', 100n, 'id'));
    const error = errorOf(() => tables.definitionFor(row('shop', 'orders', 200n)));
    expect(error).to.be.instanceOf(UnknownTableVersionError);
    expect(error.message).to.equal(`TableRegistry: no definition of shop.orders at table version 200 (versions known: 100, 300); ${HINT}`);
    expect((error as UnknownTableVersionError).knownVersions).to.deep.equal([100n, 300n]);
    expect(errorOf(() => tables.definitionFor(row('shop', 'nope', 5n))).message).to.equal(
      `TableRegistry: no definition of shop.nope at table version 5 (versions known: none); ${HINT}`,
    );
  });

  it('DROP TABLE removes the table, DROP SCHEMA every table of that schema only', () => {
    const tables = new TableRegistry();
    tables.register(def('shop', 'orders', 1n, 'id'));
    tables.register(def('shop', 'items', 1n, 'id'));
    tables.register(def('shop', 'users', 1n, 'id'));
    tables.register(def('shopx', 'orders', 1n, 'id'));
    tables.apply(ddl('DROP TABLE', 'shop', 5n, 'orders'));
    expect(() => tables.definitionFor(row('shop', 'orders', 1n))).to.throw(UnknownTableVersionError, 'versions known: none');
    expect(tables.definitionFor(row('shop', 'items', 1n)).table).to.equal('items');
    tables.apply(ddl('DROP SCHEMA', 'shop', 6n));
    expect(() => tables.definitionFor(row('shop', 'items', 1n))).to.throw(UnknownTableVersionError);
    expect(() => tables.definitionFor(row('shop', 'users', 1n))).to.throw(UnknownTableVersionError);
    expect(tables.definitionFor(row('shopx', 'orders', 1n)).schema).to.equal('shopx');
    expect(tables.size).to.equal(1);
  });

  it('a DDL without tableDef (database level, or a table DDL such as ADD INDEX) changes nothing', () => {
    const tables = new TableRegistry();
    const v1 = def('shop', 'orders', 1n, 'id');
    tables.register(v1);
    tables.apply(ddl('CREATE SCHEMA', 'shop', 7n));
    tables.apply(ddl('ADD INDEX', 'shop', 8n, 'orders'));
    expect(tables.definitionFor(row('shop', 'orders', 1n))).to.equal(v1);
    expect(errorOf(() => tables.definitionFor(row('shop', 'orders', 8n))).message).to.contain('(versions known: 1)');
    expect(tables.size).to.equal(1);
  });

  it('forget drops the versions below the bound but always keeps the newest', () => {
    const tables = new TableRegistry();
    for (const version of [10n, 20n, 30n]) tables.register(def('shop', 'orders', version, 'id'));
    tables.forget('shop', 'orders', 30n);
    expect(errorOf(() => tables.definitionFor(row('shop', 'orders', 10n))).message).to.contain('(versions known: 30)');
    tables.forget('shop', 'orders', 1000n);
    expect(tables.definitionFor(row('shop', 'orders', 30n)).version).to.equal(30n);
    tables.forget('shop', 'unknown', 5n);
    expect(tables.size).to.equal(1);
  });

  it('keeps at most maxVersionsPerTable versions, dropping the oldest', () => {
    const tables = new TableRegistry({ maxVersionsPerTable: 2 });
    for (const version of [30n, 10n, 20n]) tables.register(def('shop', 'orders', version, 'id'));
    expect(errorOf(() => tables.definitionFor(row('shop', 'orders', 10n))).message).to.contain('(versions known: 20, 30)');
  });

  it('holds at most maxTables tables, reclaiming the least recently used', () => {
    const tables = new TableRegistry({ maxTables: 2 });
    tables.register(def('s', 'a', 1n, 'id'));
    tables.register(def('s', 'b', 1n, 'id'));
    tables.definitionFor(row('s', 'a', 1n)); // a is now the most recent
    tables.register(def('s', 'c', 1n, 'id'));
    expect(tables.size).to.equal(2);
    expect(errorOf(() => tables.definitionFor(row('s', 'b', 1n))).message).to.equal(
      `TableRegistry: no definition of s.b at table version 1 (versions known: none); ${HINT}`,
    );
    expect(tables.definitionFor(row('s', 'a', 1n)).table).to.equal('a');
    expect(tables.definitionFor(row('s', 'c', 1n)).table).to.equal('c');
  });

  it('reclaims a table idle for idleMs on the injected clock; each use restarts its idle time', () => {
    let now = 5_000;
    const tables = new TableRegistry({ idleMs: 1_000, now: () => now });
    tables.register(def('s', 'a', 1n, 'id'));
    tables.register(def('s', 'b', 1n, 'id'));
    now += 999;
    expect(tables.definitionFor(row('s', 'a', 1n)).table).to.equal('a');
    now += 999; // a used 999 ms ago, b idle for 1998 ms
    expect(tables.definitionFor(row('s', 'a', 1n)).table).to.equal('a');
    expect(errorOf(() => tables.definitionFor(row('s', 'b', 1n))).message).to.equal(
      `TableRegistry: no definition of s.b at table version 1 (versions known: none); ${HINT}`,
    );
    now += 1_000; // exactly idleMs: still kept
    expect(tables.definitionFor(row('s', 'a', 1n)).table).to.equal('a');
    now += 1_001;
    expect(() => tables.definitionFor(row('s', 'a', 1n))).to.throw(UnknownTableVersionError, 's.a at table version 1');
  });

  it('a table read row after row (a remembered lookup) stays in use for the idle clock and the LRU order', () => {
    let now = 0;
    const tables = new TableRegistry({ idleMs: 1_000, maxTables: 2, now: () => now });
    tables.register(def('s', 'a', 1n, 'id'));
    // Rows of a every 300 ms for 5 s: far past idleMs since the first lookup, never idle for it.
    for (; now <= 5_000; now += 300) expect(tables.definitionFor(row('s', 'a', 1n)).table).to.equal('a');
    tables.register(def('s', 'b', 1n, 'id'));
    tables.definitionFor(row('s', 'a', 1n));
    tables.register(def('s', 'c', 1n, 'id')); // evicts b, the least recently used
    expect(tables.definitionFor(row('s', 'a', 1n)).table).to.equal('a');
    expect(() => tables.definitionFor(row('s', 'b', 1n))).to.throw(UnknownTableVersionError);
    // A DROP right after a remembered lookup is seen by the next row.
    tables.apply(ddl('DROP TABLE', 's', 10n, 'a'));
    expect(() => tables.definitionFor(row('s', 'a', 1n))).to.throw(UnknownTableVersionError);
    now += 1_001;
    expect(() => tables.definitionFor(row('s', 'c', 1n))).to.throw(UnknownTableVersionError);
  });

  it('never reclaims idle tables by default', () => {
    let now = 0;
    const tables = new TableRegistry({ now: () => now });
    tables.register(def('s', 'a', 1n, 'id'));
    now += 1e12;
    expect(tables.definitionFor(row('s', 'a', 1n)).table).to.equal('a');
  });

  it('rejects malformed DDL, a row passed as DDL and a malformed definition', () => {
    const tables = new TableRegistry();
    const wrongVersion = ddl('CREATE TABLE', 'shop', 100n, 'orders', def('shop', 'orders', 99n, 'id'));
    expect(errorOf(() => tables.apply(wrongVersion)).message).to.equal(
      "invalid change event at TableRegistry.apply (ddl CREATE TABLE shop.orders commitTs 100): tableDef.version (99) must equal the DDL's commitTs",
    );
    expect(() => tables.apply(row('shop', 'orders', 1n) as unknown as DdlEvent)).to.throw(InvalidChangeEventError, 'expected a DDL event');
    expect(errorOf(() => tables.register(def('shop', 'orders', 1n))).message).to.equal(
      'TableRegistry.register: option def must be a valid table definition (columns must be a non-empty list), got "shop.orders"',
    );
    expect(tables.size).to.equal(0);
  });

  it('checks its options when created', () => {
    expect(() => new TableRegistry({ maxTables: 0 })).to.throw(InvalidOptionError, 'TableRegistry: option maxTables must be an integer >= 1, got 0');
    expect(() => new TableRegistry({ idleMs: -1 })).to.throw(InvalidOptionError, 'option idleMs');
    expect(() => new TableRegistry({ maxVersionsPerTable: 1.5 })).to.throw(InvalidOptionError, 'option maxVersionsPerTable');
    expect(() => new TableRegistry({ now: 5 as unknown as () => number })).to.throw(InvalidOptionError, 'option now must be a function');
  });
  it('rowProblem checks a row against the definition of its table version, or fails as definitionFor does', () => {
    const tables = new TableRegistry();
    tables.register({ ...def('shop', 'orders', 100n, 'id'), columns: [{ name: 'id', type: 'INT', nullable: false }] });
    expect(tables.rowProblem(row('shop', 'orders', 100n))).to.equal(undefined);
    expect(tables.rowProblem({ ...row('shop', 'orders', 100n), columns: { id: null } })).to.equal('columns.id: NULL in a NOT NULL column (INT)');
    expect(() => tables.rowProblem(row('shop', 'orders', 101n))).to.throw(UnknownTableVersionError, 'no definition of shop.orders at table version 101');
  });
});
