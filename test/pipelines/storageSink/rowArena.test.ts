/**
 * RowArena and the spool codec of sink items: a row's bytes are the UTF-8 of its text, across
 * chunk boundaries and for big rows; a data file is its rows' bytes in order; a row that goes
 * through the spool's disk codec comes back byte for byte.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import type { EncodedRow } from '../../../pipelines/storageSink/encoder.ts';
import { RowArena, rowsFileBytes, rowText } from '../../../pipelines/storageSink/rowArena.ts';
import { sinkItemCodec, type RowItem } from '../../../pipelines/storageSink/sinkItems.ts';

const folder = { schema: 'shop', table: 'orders', tableVersion: 100n, date: '2024-05-01' };

function encoded(text: string, dispatcherId = 'd1'): EncodedRow {
  return { kind: 'row', folder, dispatcherId, text, bytes: Buffer.byteLength(text) };
}

describe('RowArena', () => {
  it('keeps each row as the UTF-8 of its text, across chunks and for rows bigger than a chunk share', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.string({ unit: 'grapheme', maxLength: 300 }), fc.string({ minLength: 40_000, maxLength: 70_000 })), { maxLength: 40 }), (texts) => {
        const arena = new RowArena();
        const rows = texts.map((text) => arena.rowOf(encoded(`${text}\r\n`)));
        rows.forEach((row, i) => expect(rowText(row)).to.equal(`${texts[i]}\r\n`));
        const bytes = rows.reduce((sum, row) => sum + row.bytes, 0);
        expect(rowsFileBytes(rows, bytes).toString()).to.equal(texts.map((text) => `${text}\r\n`).join(''));
      }),
      { numRuns: 200 },
    );
  });

  it('moves to a new chunk when a row does not fit, and a file copies rows from several chunks in order', () => {
    const arena = new RowArena();
    const rows: RowItem[] = [];
    for (let i = 0; i < 3000; i++) rows.push(arena.rowOf(encoded(`row ${i} ${'x'.repeat(200)}\r\n`)));
    const chunks = new Set(rows.map((row) => row.chunk));
    expect(chunks.size).to.be.greaterThan(1);
    // Every other row, so no two neighbours are next to each other in a chunk.
    const picked = rows.filter((_, i) => i % 2 === 0).reverse();
    const bytes = picked.reduce((sum, row) => sum + row.bytes, 0);
    expect(rowsFileBytes(picked, bytes).toString()).to.equal(picked.map(rowText).join(''));
  });

  it('refuses a file length that does not match its rows', () => {
    const arena = new RowArena();
    const rows = [arena.rowOf(encoded('a\r\n')), arena.rowOf(encoded('bc\r\n'))];
    expect(() => rowsFileBytes(rows, 6)).to.throw(RangeError, 'the rows are more than the 6 bytes given');
    expect(() => rowsFileBytes(rows, 8)).to.throw(RangeError, 'the rows are 7 bytes, not the 8 given');
    expect(() => arena.rowOf({ ...encoded('é\r\n'), bytes: 5 })).to.throw(RangeError, 'RowArena: a row\'s text is 4 bytes of UTF-8 where 5 were given');
    expect(() => arena.rowOf({ ...encoded('éé\r\n'), bytes: 4 })).to.throw(RangeError, 'RowArena: a row\'s text is at least 6 bytes of UTF-8 where 4 were given');
  });
});

describe('sinkItemCodec', () => {
  it('gives back a row byte for byte, and the decoded row does not share the buffer it was read from', () => {
    const arena = new RowArena();
    arena.rowOf(encoded('before\r\n'));
    const row = arena.rowOf(encoded('42,"naïve ☃"\r\n', 'd7'));
    const record = Buffer.from(sinkItemCodec.encode(row));
    const decoded = sinkItemCodec.decode(record) as RowItem;
    record.fill(0);
    expect(decoded).to.include({ kind: 'row', dispatcherId: 'd7', bytes: row.bytes });
    expect(decoded.folder).to.deep.equal(folder);
    expect(rowText(decoded)).to.equal('42,"naïve ☃"\r\n');
  });
});
