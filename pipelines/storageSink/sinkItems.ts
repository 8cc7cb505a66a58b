/**
 * What travels from the encode stage through the spool to the writer: encoded rows, DDLs (barriers)
 * and drain markers, with the codec the spool stores them with.
 *
 * Invariant guarded here: decode(encode(item)) is the same item, byte for byte for row payloads, so
 * a row spilled to disk is written to its data file exactly as encoded.
 */
import { formatChangeEventLine, parseChangeEventLine, type DataFolder, type DdlEvent } from '../../lib/codec/index.ts';
import type { SpoolCodec } from '../../operators/spool.ts';

/**
 * One encoded row (or the D+I pair of an update), bound for the data file of `folder`: its UTF-8
 * bytes are `chunk[offset, offset + bytes)`, off the V8 heap (see RowArena).
 */
export interface RowItem {
  readonly kind: 'row';
  readonly folder: DataFolder;
  readonly dispatcherId: string;
  readonly chunk: Buffer;
  readonly offset: number;
  /** The row's length in bytes. */
  readonly bytes: number;
}

/** A DDL released by the drain: its schema file is written after every data file before it. */
export interface DdlItem {
  readonly kind: 'ddl';
  readonly ddl: DdlEvent;
}

/** Sent ahead of a waiting DDL so the writer cuts its batch now instead of at the interval. */
export interface DrainMarkerItem {
  readonly kind: 'drain-marker';
}

export type SinkItem = RowItem | DdlItem | DrainMarkerItem;

/** Bytes an item stands for in the spool and the watermark: its payload plus a fixed overhead. */
export function sinkItemBytes(item: SinkItem): number {
  return item.kind === 'row' ? item.bytes + ITEM_OVERHEAD_BYTES : ITEM_OVERHEAD_BYTES;
}

const ITEM_OVERHEAD_BYTES = 64;
const NEWLINE = 0x0a;

interface RowHeader {
  k: 'r';
  s: string;
  t: string;
  v: string;
  d?: string;
  p?: string;
  id: string;
}

/** A JSON header line, then (for rows) the row's text as UTF-8. */
export const sinkItemCodec: SpoolCodec<SinkItem> = {
  encode(item) {
    if (item.kind === 'ddl') return Buffer.from(`{"k":"d"}\n${formatChangeEventLine(item.ddl)}`);
    if (item.kind === 'drain-marker') return Buffer.from('{"k":"m"}\n');
    const { folder } = item;
    const header: RowHeader = { k: 'r', s: folder.schema, t: folder.table, v: String(folder.tableVersion), id: item.dispatcherId };
    if (folder.date !== undefined) header.d = folder.date;
    if (folder.partitionId !== undefined) header.p = String(folder.partitionId);
    const head = Buffer.from(`${JSON.stringify(header)}\n`);
    const record = Buffer.allocUnsafe(head.byteLength + item.bytes);
    head.copy(record);
    item.chunk.copy(record, head.byteLength, item.offset, item.offset + item.bytes);
    return record;
  },
  decode(bytes) {
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const end = buffer.indexOf(NEWLINE);
    const header = JSON.parse(buffer.toString('utf8', 0, end)) as Partial<Omit<RowHeader, 'k'>> & { k: string };
    if (header.k === 'm') return { kind: 'drain-marker' };
    if (header.k === 'd') return { kind: 'ddl', ddl: parseChangeEventLine(buffer.toString('utf8', end + 1), 0) as DdlEvent };
    const folder: DataFolder = { schema: header.s!, table: header.t!, tableVersion: BigInt(header.v!) };
    if (header.d !== undefined) folder.date = header.d;
    if (header.p !== undefined) folder.partitionId = BigInt(header.p);
    // A copy: the spool may reuse the buffer it read into.
    const chunk = Buffer.from(buffer.subarray(end + 1));
    return { kind: 'row', folder, dispatcherId: header.id!, chunk, offset: 0, bytes: chunk.byteLength };
  },
};
