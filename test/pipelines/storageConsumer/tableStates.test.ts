/**
 * What the consumer keeps per table: definitions read from schema files are a cache, released when
 * the table is idle for idleStateMs or dropped, and read again when needed.
 */
import { expect } from 'chai';
import { encodeSchemaFile, type DdlEvent, type TableDef } from '../../../lib/codec/index.ts';
import { MemoryStorage } from '../../../lib/storage/memoryStorage.ts';
import { checkOptions } from '../../../pipelines/storageConsumer/options.ts';
import { tableKeyOf, type SchemaFileRef } from '../../../pipelines/storageConsumer/pathKey.ts';
import { TableStates } from '../../../pipelines/storageConsumer/tableStates.ts';

const ORDERS: TableDef = { schema: 'shop', table: 'orders', version: 100n, columns: [{ name: 'id', type: 'INT', primaryKey: true, nullable: false }] };
const CREATE: DdlEvent = { kind: 'ddl', commitTs: 100n, query: 'CREATE TABLE orders (id INT PRIMARY KEY)', ddlType: 'CREATE TABLE', schema: 'shop', table: 'orders', tableDef: ORDERS, blockedDispatchers: 'all' };
const KEY = tableKeyOf('shop', 'orders');

async function withSchemaFile(idleStateMs: number) {
  const storage = new MemoryStorage();
  const { path, text, checksum } = encodeSchemaFile(CREATE);
  await storage.put(path, new TextEncoder().encode(text));
  const ref: SchemaFileRef = { path, schema: 'shop', table: 'orders', tableVersion: 100n, checksum };
  const states = new TableStates(storage, checkOptions({ from: storage, to: 'mysql://root@127.0.0.1:3306/', idleStateMs }));
  return { states, schemaByVersion: new Map([[`${KEY}@100`, ref]]), ref };
}

describe('storage consumer table states', () => {
  it('releases the definitions of a table idle for idleStateMs, and reads them again when needed', async () => {
    const { states, schemaByVersion } = await withSchemaFile(1);
    const first = await states.definition(KEY, 100n, schemaByVersion);
    expect(first.def?.columns.map((c) => c.name)).to.deep.equal(['id']);
    expect(states.heldDefinitions).to.equal(1);
    await new Promise((resolve) => setTimeout(resolve, 10));
    states.reclaimIdle();
    expect(states.heldDefinitions).to.equal(0);
    expect(states.heldDefinition(KEY, 100n)).to.equal(undefined);
    const again = await states.definition(KEY, 100n, schemaByVersion);
    expect(again.def).to.deep.equal(first.def);
  });

  it('keeps the definitions of a table active within idleStateMs', async () => {
    const { states, schemaByVersion } = await withSchemaFile(60_000);
    await states.definition(KEY, 100n, schemaByVersion);
    states.reclaimIdle();
    expect(states.heldDefinitions).to.equal(1);
  });

  it('keeps each partition (and dispatcher) stream of a table at its own position', async () => {
    const { states } = await withSchemaFile(60_000);
    const at = (stream: string, fileIndex: number, commitTs: bigint) => ({ schema: 'shop', table: 'orders', stream, tableVersion: 100n, date: '', fileIndex, commitTs });
    states.load([at('1093/', 7, 500n), at('1094/', 2, 300n), at('1094/d1', 4, 400n), { ...at('#ddl', -1, 100n) }]);
    expect(states.position(KEY, '1093/')).to.deep.equal({ tableVersion: 100n, date: '', fileIndex: 7, commitTs: 500n });
    expect(states.position(KEY, '1094/')).to.deep.equal({ tableVersion: 100n, date: '', fileIndex: 2, commitTs: 300n });
    expect(states.position(KEY, '1094/d1')).to.deep.equal({ tableVersion: 100n, date: '', fileIndex: 4, commitTs: 400n });
    expect(states.position(KEY, '1095/'), 'a partition never applied').to.equal(undefined);
    expect(states.ddlVersion(KEY)).to.equal(100n);
  });

  it('drops the definitions of a dropped table, keeping its applied DDL version', async () => {
    const { states, schemaByVersion, ref } = await withSchemaFile(60_000);
    await states.definition(KEY, 100n, schemaByVersion);
    states.ddlApplied({ kind: 'ddl', tableKey: KEY, tableVersion: 120n, ref } as never, { effect: 'drop-table' } as never);
    expect(states.heldDefinitions).to.equal(0);
    expect(states.ddlVersion(KEY)).to.equal(120n);
  });
});
