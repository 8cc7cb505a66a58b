/**
 * The statements path: csv straight to SQL (csvStatements.ts) must equal decoding rows and
 * formatting them (the general path), take exactly what it takes, and report the same errors;
 * applyPrepared drops rows below the applied commit ts; the scheduler's rules hold.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import type { PoolConnection } from 'mysql2/promise';
import type { RowChange, TableDef } from '../../../lib/codec/changeEvent.ts';
import { checkCsvOptions, csvHeaderLine, decodeCsvRows, encodeCsvRows, type CsvDialect } from '../../../lib/codec/csv.ts';
import { csvDialectArb, fastCsvDialectArb } from '../../codec/csvDialects.ts';
import { prepareCsvStatements } from '../../../pipelines/storageConsumer/csvStatements.ts';
import { decodeDataFile, prepareDataFile } from '../../../pipelines/storageConsumer/decodeFile.ts';
import { applyPrepared, prepareRows, StatementBuilder, tableWriter, type PreparedFile } from '../../../pipelines/storageConsumer/rowWriter.ts';
import { ItemScheduler } from '../../../pipelines/storageConsumer/schedule.ts';

const TABLE: TableDef = {
  schema: 'db',
  table: 'all',
  version: 1n,
  columns: [
    { name: 'id', type: 'INT', primaryKey: true, nullable: false },
    { name: 'k', type: 'VARCHAR', precision: 16, primaryKey: true, nullable: false },
    { name: 'u', type: 'BIGINT', unsigned: true },
    { name: 'f', type: 'DOUBLE' },
    { name: 'r', type: 'FLOAT' },
    { name: 'd', type: 'DECIMAL', precision: 30, scale: 5 },
    { name: 's', type: 'TEXT' },
    { name: 'b', type: 'BLOB' },
    { name: 'bits', type: 'BIT', precision: 8 },
    { name: 'e', type: 'ENUM', elems: ['a', 'b,c'] },
    { name: 'dt', type: 'DATETIME' },
  ],
};
const LIMITS = { maxRowsPerStatement: 7, maxStatementBytes: 4096 };
const CSV = checkCsvOptions('test', { includeCommitTs: true, outputOldValue: false });

const nullable = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: null, freq: 5 });
const rowArb = fc.record({
  op: fc.constantFrom('insert' as const, 'update' as const, 'delete' as const),
  ts: fc.bigInt(1n, (1n << 64n) - 1n),
  columns: fc.record({
    id: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
    k: fc.string({ unit: 'grapheme', maxLength: 6 }),
    u: nullable(fc.bigInt(0n, (1n << 64n) - 1n)),
    f: nullable(fc.double({ noNaN: true, noDefaultInfinity: true })),
    r: nullable(fc.float({ noNaN: true, noDefaultInfinity: true })),
    d: nullable(fc.tuple(fc.bigInt(-(10n ** 20n), 10n ** 20n), fc.integer({ min: 0, max: 99999 })).map(([i, f]) => `${i}.${String(f).padStart(5, '0')}`)),
    s: nullable(fc.oneof(fc.string({ unit: 'grapheme' }), fc.constantFrom('\\N', '"', '""', ',', '\r\n', "'\\", '\u0000\u001a'))),
    b: nullable(fc.uint8Array({ maxLength: 12 })),
    bits: nullable(fc.bigInt(0n, 255n)),
    e: nullable(fc.constantFrom('a', 'b,c')),
    dt: nullable(fc.constant('2024-05-01 12:00:00')),
  }),
});

type RowSpec = typeof rowArb extends fc.Arbitrary<infer T> ? T : never;

function rowsOf(specs: RowSpec[]): RowChange[] {
  return specs.map(({ op, ts, columns }) => ({ kind: 'row', op, schema: 'db', table: 'all', tableVersion: 1n, commitTs: ts, dispatcherId: 'd', columns }));
}

function drain(text: string, csv: CsvDialect = CSV): PreparedFile | undefined {
  const steps = prepareCsvStatements(text, tableWriter(TABLE, 'schema'), csv, LIMITS);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

const shape = (file: PreparedFile) => ({
  rows: file.rows,
  maxTs: file.maxTs,
  statements: file.statements.map((s) => ({ kind: s.kind, sql: s.sql, records: [...s.records], ts: s.ts && [...s.ts], parts: [...s.starts].map((start, i) => s.sql.slice(start, s.ends[i])) })),
});

describe('storageConsumer statements', () => {
  it('csv straight to SQL equals decoding rows and formatting them, for every column type (property)', () => {
    fc.assert(
      fc.property(fc.array(rowArb, { maxLength: 30 }), (specs) => {
        const text = encodeCsvRows(rowsOf(specs), TABLE, CSV);
        const fast = drain(text);
        expect(fast, 'the fast path takes what the encoder writes').to.not.equal(undefined);
        const general = prepareRows(tableWriter(TABLE, 'schema'), decodeCsvRows(text, TABLE, CSV), 'x', LIMITS);
        expect(shape(fast!)).to.deep.equal(shape(general));
      }),
      { numRuns: 300 },
    );
  });

  it('csv straight to SQL equals the general path in every dialect it reads: delimiter, quote, terminator, null, hex, header (property)', () => {
    fc.assert(
      fc.property(fastCsvDialectArb, fc.array(rowArb, { maxLength: 12 }), (csv, specs) => {
        const text = (csv.outputFieldHeader ? csvHeaderLine(TABLE, csv) : '') + encodeCsvRows(rowsOf(specs), TABLE, csv);
        const fast = drain(text, csv);
        expect(fast, 'the fast path takes what the encoder writes').to.not.equal(undefined);
        const general = prepareRows(tableWriter(TABLE, 'schema'), decodeCsvRows(text, TABLE, csv), 'x', LIMITS);
        expect(shape(fast!)).to.deep.equal(shape(general));
      }),
      { numRuns: 100 },
    );
  });

  it("prepareDataFile replays a file of every dialect, those the fast path hands over (quote '', long delimiters, old values) too (property)", async () => {
    await fc.assert(
      fc.asyncProperty(csvDialectArb, fc.array(rowArb, { maxLength: 8 }), async (csv, specs) => {
        const text = (csv.outputFieldHeader ? csvHeaderLine(TABLE, csv) : '') + encodeCsvRows(rowsOf(specs), TABLE, csv);
        const bytes = new TextEncoder().encode(text);
        const path = 'db/all/1/CDC000001.csv';
        const prepared = await prepareDataFile(bytes, path, tableWriter(TABLE, 'schema'), csv, LIMITS);
        const general = prepareRows(tableWriter(TABLE, 'schema'), decodeDataFile(bytes, path, TABLE, csv), path, LIMITS);
        expect(shape(prepared)).to.deep.equal(shape(general));
        expect(prepared.rows).to.equal(specs.length);
        const fastReads = csv.quote !== '' && csv.delimiter.length === 1 && !csv.outputOldValue;
        expect(drain(text, csv) !== undefined, 'the fast path reads exactly the dialects it claims').to.equal(fastReads);
      }),
      { numRuns: 60 },
    );
  });

  it('the fast path hands a file without the expected header, or of another terminator, to the general path, which names the setting', async () => {
    const good = encodeCsvRows(rowsOf(fc.sample(rowArb, { numRuns: 3, seed: 5 })), TABLE, CSV);
    const writer = tableWriter(TABLE, 'schema');
    const path = 'db/all/1/CDC000001.csv';
    const withHeader = checkCsvOptions('test', { ...CSV, outputFieldHeader: true });
    expect(drain(good, withHeader)).to.equal(undefined);
    await prepareDataFile(new TextEncoder().encode(good), path, writer, withHeader, LIMITS).then(
      () => expect.fail('a file without its header must fail'),
      (error: Error) => expect(error.message).to.match(/line 1: expected the header line .*drop --output-field-header$/),
    );
    const lf = checkCsvOptions('test', { ...CSV, terminator: '\n' });
    expect(drain(good, lf)).to.equal(undefined);
    await prepareDataFile(new TextEncoder().encode(good), path, writer, lf, LIMITS).then(
      () => expect.fail('a CRLF file read as LF must fail'),
      (error: Error) => expect(error.message).to.contain("pass --terminator '\\r\\n'"),
    );
  });

  it('a malformed or foreign file gets the same DecodeError as the general decoder (file and line)', async () => {
    const good = encodeCsvRows(rowsOf(fc.sample(rowArb, { numRuns: 5, seed: 3 })), TABLE, CSV);
    const lines = good.split('\r\n');
    const cases = [
      good.slice(0, -1), // truncated: no CRLF at the end
      good.replace('"I"', '"X"').replace('"U"', '"X"').replace('"D"', '"X"'),
      `${lines[0]}\r\n${lines[1]!.replace(',"all",', ',"other",')}\r\n`,
      `${lines[0]}\r\n${lines[1]},1\r\n`, // one field too many
      `${lines[0]}\r\n"I","all","db",5,notanint,"k",\\N,\\N,\\N,\\N,\\N,\\N,\\N,\\N,\\N,\\N\r\n`,
      `"I","all","db",18446744073709551616,1,"k",\\N,\\N,\\N,\\N,\\N,\\N,\\N,\\N,\\N,\\N\r\n`,
      `"I","all","db",5,1,"k",\\N,\\N,\\N,\\N,\\N,"!!notbase64",\\N,\\N,\\N\r\n`,
      `"I","all","db",5,1,"k",\\N,\\N,\\N,"1.2.3",\\N,\\N,\\N,\\N,\\N\r\n`,
      `"I","all","db",5,1,"k",\\N,\\N,\\N,\\N,"unterminated\r\n`,
    ];
    const writer = tableWriter(TABLE, 'schema');
    for (const text of cases) {
      const bytes = new TextEncoder().encode(text);
      let expected: unknown;
      try {
        decodeDataFile(bytes, 'db/all/1/CDC000001.csv', TABLE, CSV);
      } catch (error) {
        expected = error;
      }
      expect(expected, JSON.stringify(text)).to.be.instanceOf(Error);
      expect(drain(text), JSON.stringify(text)).to.equal(undefined);
      let actual: unknown;
      try {
        await prepareDataFile(bytes, 'db/all/1/CDC000001.csv', writer, CSV, LIMITS);
      } catch (error) {
        actual = error;
      }
      expect((actual as Error).message).to.equal((expected as Error).message).and.contain('db/all/1/CDC000001.csv');
    }
  });

  it('applyPrepared drops the rows below the applied commit ts and counts them once per record', async () => {
    const table = { ...TABLE, columns: TABLE.columns.slice(0, 2) };
    const writer = tableWriter(table, 'schema');
    const row = (op: RowChange['op'], ts: bigint, id: number, old?: number): RowChange => ({
      kind: 'row', op, schema: 'db', table: 'all', tableVersion: 1n, commitTs: ts, dispatcherId: 'd', columns: { id, k: 'x' }, ...(old === undefined ? {} : { oldColumns: { id: old, k: 'x' } }),
    });
    // An update that moves its key is two parts (delete old key, upsert) of one record.
    const rows = [row('insert', 10n, 1), row('update', 20n, 3, 2), row('insert', 30n, 4), row('delete', 40n, 1)];
    const file = prepareRows(writer, decodeCsvRows(encodeCsvRows(rows, table, { includeCommitTs: true, outputOldValue: true }), table, { includeCommitTs: true, outputOldValue: true }), 'f', { maxRowsPerStatement: 100, maxStatementBytes: 1 << 20 });
    const sent: string[] = [];
    const connection = { query: async (sql: string) => (sent.push(sql), [{}]) } as unknown as PoolConnection;
    const result = await applyPrepared(connection, writer, file, { path: 'f', skipBelowTs: 30n });
    expect(result).to.deep.include({ applied: 2, skipped: 2, maxCommitTs: 40n });
    expect(sent).to.deep.equal(['REPLACE INTO `db`.`all` (`id`, `k`) VALUES (4, \'x\')', 'DELETE FROM `db`.`all` WHERE (`id`, `k`) IN ((1, \'x\'))']);
    sent.length = 0;
    expect(await applyPrepared(connection, writer, file, { path: 'f', skipBelowTs: 50n })).to.deep.include({ applied: 0, skipped: 4, maxCommitTs: undefined });
    expect(sent).to.deep.equal([]);
  });

  it('the scheduler: one item per table at a time, DDLs in order, barriers alone, data of other tables side by side', () => {
    type Item = { kind: 'ddl' | 'data'; tableKey: string; name: string; barrier?: boolean };
    const items: Item[] = [
      { kind: 'ddl', tableKey: 'a', name: 'ddl a' },
      { kind: 'data', tableKey: 'a', name: 'a0' },
      { kind: 'data', tableKey: 'a', name: 'a1' },
      { kind: 'ddl', tableKey: 'b', name: 'ddl b' },
      { kind: 'data', tableKey: 'b', name: 'b0' },
      { kind: 'ddl', tableKey: 'db/', name: 'drop db', barrier: true },
      { kind: 'data', tableKey: 'c', name: 'c0' },
    ];
    const scheduler = new ItemScheduler(items, (item) => item.barrier === true);
    const names = (list: Array<Item | undefined>) => list.map((i) => i?.name);
    const running: Item[] = [];
    const start = () => {
      const item = scheduler.next(running);
      if (item) running.push(item);
      return item;
    };
    const finish = (name: string) => running.splice(running.findIndex((i) => i.name === name), 1);
    expect(names([start(), start()])).to.deep.equal(['ddl a', undefined]); // a's data waits for a's DDL; b's DDL for a's
    expect(names(scheduler.upcoming(running, 4))).to.deep.equal(['a0', 'b0']);
    finish('ddl a');
    expect(names([start(), start(), start()])).to.deep.equal(['a0', 'ddl b', undefined]);
    finish('ddl b');
    expect(names([start(), start()])).to.deep.equal(['b0', undefined]); // a1 waits for a0
    finish('a0');
    expect(names([start()])).to.deep.equal(['a1']);
    expect(names([start()])).to.deep.equal([undefined]); // the barrier waits for a1 and b0 to finish
    finish('a1');
    finish('b0');
    expect(names([start(), start()])).to.deep.equal(['drop db', undefined]); // alone; c0 after it
    finish('drop db');
    expect(names([start()])).to.deep.equal(['c0']);
    expect(scheduler.allStarted).to.equal(true);
  });
});

describe('storageConsumer statements: updates that change a key', () => {
  // pingcap/ticdc tests/integration_tests/csv_storage_update_pk_nonclustered: `update_pk (id int
  // PRIMARY KEY NONCLUSTERED, pad varchar(100))`.
  const UPDATE_PK: TableDef = {
    schema: 'test',
    table: 'update_pk',
    version: 1n,
    columns: [
      { name: 'id', type: 'INT', primaryKey: true, nullable: false },
      { name: 'pad', type: 'VARCHAR', precision: 100, nullable: false },
    ],
  };
  const csv = { includeCommitTs: true, outputOldValue: true };
  const statementsOf = (text: string) =>
    prepareRows(tableWriter(UPDATE_PK, 'schema'), decodeCsvRows(text, UPDATE_PK, csv), 'f', { maxRowsPerStatement: 100, maxStatementBytes: 1 << 20 }).statements.map((s) => s.sql);

  it('writes row images as REPLACE INTO (a row displaces every row it collides with on any unique key)', () => {
    const text = '"I","update_pk","test",5,false,1,"example1"\r\n"U","update_pk","test",6,true,1,"example2"\r\n';
    expect(statementsOf(text)).to.deep.equal(["REPLACE INTO `test`.`update_pk` (`id`, `pad`) VALUES (1, 'example1'), (1, 'example2')"]);
  });

  it("a primary-key swap as D/I pairs in any order: each old key's delete removes only a row holding the old image", () => {
    // pingcap/ticdc tests/integration_tests/csv_storage_update_pk_nonclustered/result/changefeed2_pk.res
    // (commit ts shortened): the transaction "id 1->3, 2->1, 3->2" as two D/I pairs. TiCDC's consumer
    // loses id=2 here ("delete are not sorted before insert within single txn"). The second delete
    // finds (2, 'example1'), which the first pair wrote, and leaves it.
    const text =
      '"D","update_pk","test",7,true,1,"example1"\r\n"I","update_pk","test",7,true,2,"example1"\r\n' +
      '"D","update_pk","test",7,true,2,"example2"\r\n"I","update_pk","test",7,true,1,"example2"\r\n';
    expect(statementsOf(text)).to.deep.equal([
      "DELETE FROM `test`.`update_pk` WHERE (`id` = 1 AND `pad` <=> 'example1')",
      "REPLACE INTO `test`.`update_pk` (`id`, `pad`) VALUES (2, 'example1')",
      "DELETE FROM `test`.`update_pk` WHERE (`id` = 2 AND `pad` <=> 'example2')",
      "REPLACE INTO `test`.`update_pk` (`id`, `pad`) VALUES (1, 'example2')",
    ]);
  });

  it('a row moved twice in one file (A 1->3, then A 3->2): the second move deletes the row the first wrote', () => {
    const text =
      '"D","update_pk","test",7,true,1,"a"\r\n"I","update_pk","test",7,true,3,"a"\r\n' +
      '"D","update_pk","test",7,true,3,"a"\r\n"I","update_pk","test",7,true,2,"a"\r\n';
    expect(statementsOf(text)).to.deep.equal([
      "DELETE FROM `test`.`update_pk` WHERE (`id` = 1 AND `pad` <=> 'a')",
      "REPLACE INTO `test`.`update_pk` (`id`, `pad`) VALUES (3, 'a')",
      "DELETE FROM `test`.`update_pk` WHERE (`id` = 3 AND `pad` <=> 'a')",
      "REPLACE INTO `test`.`update_pk` (`id`, `pad`) VALUES (2, 'a')",
    ]);
  });

  it('the old-image check: key columns by =, the others by <=>, FLOAT/DOUBLE/JSON left out, BINARY(n) padded; a plain delete stays by key', () => {
    const table: TableDef = {
      schema: 'db',
      table: 'm',
      version: 1n,
      columns: [
        { name: 'a', type: 'INT', primaryKey: true, nullable: false },
        { name: 'f', type: 'FLOAT' },
        { name: 'b', type: 'VARCHAR', precision: 8, primaryKey: true, nullable: false },
        { name: 'd', type: 'DOUBLE' },
        { name: 'j', type: 'JSON' },
        { name: 'bin', type: 'BINARY', precision: 3 },
        { name: 'raw', type: 'BINARY' },
        { name: 'n', type: 'DECIMAL', precision: 10, scale: 2 },
      ],
    };
    const image = { f: 1.5, d: 0.1, j: '{}', bin: new Uint8Array([1]), raw: new Uint8Array([2]), n: null };
    const rows: RowChange[] = [
      { kind: 'row', op: 'update', schema: 'db', table: 'm', tableVersion: 1n, commitTs: 5n, dispatcherId: 'd', columns: { a: 2, b: 'y', ...image }, oldColumns: { a: 1, b: "x'", ...image } },
      { kind: 'row', op: 'delete', schema: 'db', table: 'm', tableVersion: 1n, commitTs: 6n, dispatcherId: 'd', columns: { a: 2, b: 'y', ...image } },
    ];
    const sql = prepareRows(tableWriter(table, 'schema'), rows, 'f', LIMITS).statements.map((s) => s.sql);
    expect(sql).to.deep.equal([
      "DELETE FROM `db`.`m` WHERE (`a` = 1 AND `b` = 'x\\'' AND `bin` <=> X'010000' AND `n` <=> NULL)",
      "REPLACE INTO `db`.`m` (`a`, `f`, `b`, `d`, `j`, `bin`, `raw`, `n`) VALUES (2, 1.5, 'y', 0.1, '{}', X'01', X'02', NULL)",
      "DELETE FROM `db`.`m` WHERE (`a`, `b`) IN ((2, 'y'))",
    ]);
    // Nothing but the key left to compare: the old-image delete is a delete by key.
    const floats: TableDef = { ...table, columns: [table.columns[0]!, table.columns[1]!] };
    const move: RowChange = { kind: 'row', op: 'update', schema: 'db', table: 'm', tableVersion: 1n, commitTs: 5n, dispatcherId: 'd', columns: { a: 2, f: 1.5 }, oldColumns: { a: 1, f: 1.5 } };
    expect(prepareRows(tableWriter(floats, 'schema'), [move], 'f', LIMITS).statements.map((s) => s.sql)[0]).to.equal('DELETE FROM `db`.`m` WHERE (`a` = 1)');
  });

  it('old-image deletes of one statement are joined by OR, and applyPrepared drops the parts below the applied commit ts', async () => {
    const writer = tableWriter(UPDATE_PK, 'schema');
    const builder = new StatementBuilder(writer, LIMITS, true);
    builder.add('deleteOld', "(`id` = 1 AND `pad` <=> 'a')", 1, 10n);
    builder.add('deleteOld', "(`id` = 2 AND `pad` <=> 'b')", 2, 20n);
    const file = builder.finish(2);
    expect(file.statements.map((s) => s.sql)).to.deep.equal(["DELETE FROM `test`.`update_pk` WHERE (`id` = 1 AND `pad` <=> 'a') OR (`id` = 2 AND `pad` <=> 'b')"]);
    const sent: string[] = [];
    const connection = { query: async (sql: string) => (sent.push(sql), [{}]) } as unknown as PoolConnection;
    expect(await applyPrepared(connection, writer, file, { path: 'f', skipBelowTs: 15n })).to.deep.include({ applied: 1, skipped: 1 });
    expect(sent).to.deep.equal(["DELETE FROM `test`.`update_pk` WHERE (`id` = 2 AND `pad` <=> 'b')"]);
  });
});
