import { expect } from 'chai';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  closeSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidOptionError } from '../../lib/core/errors.ts';
import {
  CorruptRecordError,
  RECORD_HEADER_BYTES,
  SegmentStore,
  segmentFileName,
  SPOOL_MARKER_FILE,
  WRITE_BUFFER_BYTES,
  type DiskPointer,
  type SegmentStoreOptions,
  type SegmentStoreStats,
} from '../../lib/core/segmentStore.ts';
import { tick, until, openFds, segmentFiles, rejectionOf } from '../support/waiting.ts';

const HEADER = RECORD_HEADER_BYTES;
const bytes = (length: number, fill: number) => Buffer.alloc(length, fill);
const readlinkOrEmpty = (path: string) => {
  try {
    return readlinkSync(path);
  } catch {
    return ''; // the fd readdir itself used, closed since
  }
};

type OnWritten = (error?: Error) => void;

/** A store whose token is the record's own callback, so tests can say per append what happens. */
function callbackStore(options: Omit<SegmentStoreOptions<OnWritten>, 'onWritten'>): SegmentStore<OnWritten> {
  return new SegmentStore<OnWritten>({ ...options, onWritten: (callback, error) => callback(error) });
}

/** Records appended through `add`, with the outcome of each onWritten in call order. */
class Appender {
  readonly store: SegmentStore<OnWritten>;
  readonly calls: { index: number; error: Error | undefined }[] = [];
  private appended = 0;

  constructor(store: SegmentStore<OnWritten>) {
    this.store = store;
  }

  add(payload: Uint8Array): DiskPointer {
    const index = this.appended;
    const pointer = this.store.append(payload, (error?: Error) => void this.calls.push({ index, error }));
    this.appended++;
    return pointer;
  }

  /** Resolves once every record appended so far has had its onWritten. */
  written(): Promise<void> {
    return until(() => this.calls.length === this.appended, 'every onWritten');
  }
}


describe('SegmentStore', () => {
  let root: string;
  let stores: SegmentStore<OnWritten>[];
  let folder = 0;

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'sluice-segment-store-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));
  beforeEach(() => {
    stores = [];
  });
  afterEach(async () => {
    for (const store of stores) store.close();
    // An fd used by a request in flight closes when the request returns: wait, so fd counts stay exact.
    await until(() => stores.every((store) => store.stats.openFiles === 0), 'every store fd to close');
  });

  const nextDir = () => join(root, `store-${folder++}`);
  const openStore = (segmentBytes = 1024 * 1024, dir = nextDir()) => {
    const store = callbackStore({ dir, segmentBytes });
    stores.push(store);
    store.open();
    return { store, dir, appender: new Appender(store) };
  };

  describe('options', () => {
    it('rejects a dir that is not an absolute path without control characters, naming option and value', () => {
      for (const dir of ['', 'relative/spool', './spool', '/tmp/a\nb', '/tmp/a\u0000b', 42]) {
        expect(() => callbackStore({ dir: dir as string, segmentBytes: 64 }))
          .to.throw(InvalidOptionError, /^spool: option dir must be an absolute path without control characters, got /)
          .with.property('value', dir);
      }
    });

    it('rejects segmentBytes that is not an integer >= 64, with the owner in the message', () => {
      for (const segmentBytes of [63, 0, -1, 64.5, Number.NaN, Infinity]) {
        expect(() => callbackStore({ dir: '/tmp/x', segmentBytes, owner: 'cdcSpool' }))
          .to.throw(InvalidOptionError, `cdcSpool: option segmentBytes must be an integer >= 64, got ${segmentBytes}`);
      }
      expect(() => callbackStore({ dir: '/tmp/x', segmentBytes: 64 })).not.to.throw();
    });

    it('touches nothing on disk before open()', () => {
      const dir = nextDir();
      const store = callbackStore({ dir, segmentBytes: 64 });
      store.close();
      expect(existsSync(dir)).to.equal(false);
    });
  });

  describe('folder', () => {
    it('creates a missing folder (and its parents) with the marker and no segment file until the first append', () => {
      const dir = join(nextDir(), 'nested', 'spool');
      const { store } = openStore(1024, dir);
      expect(readdirSync(dir)).to.deep.equal([SPOOL_MARKER_FILE]);
      store.append(bytes(1, 1), () => {});
      expect(readdirSync(dir).sort()).to.deep.equal([SPOOL_MARKER_FILE, segmentFileName(0)]);
    });

    it('wipes a spool folder left behind at open: old segments, folders and links go, what links point to stays', () => {
      const outside = join(nextDir(), 'outside');
      mkdirSync(outside, { recursive: true });
      writeFileSync(join(outside, 'keep.txt'), 'keep');
      const dir = nextDir();
      mkdirSync(join(dir, 'leftover', 'deep'), { recursive: true });
      writeFileSync(join(dir, SPOOL_MARKER_FILE), '');
      writeFileSync(join(dir, segmentFileName(0)), bytes(100, 7));
      writeFileSync(join(dir, segmentFileName(1)), bytes(100, 7));
      writeFileSync(join(dir, 'leftover', 'deep', 'x'), 'x');
      symlinkSync(outside, join(dir, 'link'));

      const { store, appender } = openStore(1024, dir);
      expect(readdirSync(dir)).to.deep.equal([SPOOL_MARKER_FILE]);
      expect(readFileSync(join(outside, 'keep.txt'), 'utf8')).to.equal('keep');
      appender.add(bytes(10, 1));
      expect(statSync(join(dir, segmentFileName(0))).size).to.equal(0); // a fresh file, not the old one
      expect(store.stats.segments).to.equal(1);
    });

    it('uses an existing empty folder', () => {
      const dir = nextDir();
      mkdirSync(dir);
      openStore(1024, dir);
      expect(readdirSync(dir)).to.deep.equal([SPOOL_MARKER_FILE]);
    });

    it('refuses to wipe a non-empty folder without the marker, names it, says what to do, and leaves it alone', () => {
      const dir = nextDir();
      mkdirSync(dir);
      writeFileSync(join(dir, 'thesis.tex'), 'precious');
      const store = callbackStore({ dir, segmentBytes: 1024 });
      expect(() => store.open()).to.throw(
        Error,
        `spool: refuses to wipe ${dir}: it is not empty and has no ${SPOOL_MARKER_FILE} marker, so it is not a spool folder; set the dir option to a new or empty folder`,
      );
      store.close();
      expect(readdirSync(dir)).to.deep.equal(['thesis.tex']);
    });

    it('refuses a symbolic link and a file as the folder', () => {
      const target = nextDir();
      mkdirSync(target);
      writeFileSync(join(target, SPOOL_MARKER_FILE), '');
      const link = nextDir();
      symlinkSync(target, link);
      expect(() => callbackStore({ dir: link, segmentBytes: 64 }).open()).to.throw(
        `spool: refuses to use ${link} as a spool folder: it is a symbolic link`,
      );
      const file = nextDir();
      writeFileSync(file, 'x');
      expect(() => callbackStore({ dir: file, segmentBytes: 64 }).open()).to.throw(`spool: cannot use ${file} as a spool folder: it is not a folder`);
      expect(readdirSync(target)).to.deep.equal([SPOOL_MARKER_FILE]);
    });

    it('open() twice, or after close, throws', () => {
      const { store, dir } = openStore();
      expect(() => store.open()).to.throw(`spool: the segment store in ${dir} is already open`);
      store.close();
      expect(() => store.open()).to.throw(`spool: the segment store in ${dir} is closed; create a new one`);
    });
  });

  describe('append and read', () => {
    it('round-trips random payloads (0..10 KiB) byte for byte, also while their writes are on their way', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.uint8Array({ maxLength: 10 * 1024 }), { maxLength: 12 }),
          fc.integer({ min: 64, max: 32 * 1024 }),
          fc.array(fc.nat(), { maxLength: 6 }),
          async (payloads, segmentBytes, cuts) => {
            const { store, dir, appender } = openStore(segmentBytes);
            const pointers = payloads.map((payload) => appender.add(payload));
            // Read in random slices straight away, before any write has run, and in reverse once written.
            const slices: DiskPointer[][] = [];
            let from = 0;
            for (const cut of cuts) {
              const to = from + (cut % (pointers.length - from + 1));
              slices.push(pointers.slice(from, to));
              from = to;
            }
            slices.push(pointers.slice(from));
            const early = (await Promise.all(slices.map((slice) => store.read(slice)))).flat();
            await appender.written();
            const late = await store.read(pointers.slice().reverse());
            expect(early.map((payload) => Buffer.from(payload))).to.deep.equal(payloads.map((payload) => Buffer.from(payload)));
            expect(late.reverse().map((payload) => Buffer.from(payload))).to.deep.equal(payloads.map((payload) => Buffer.from(payload)));
            expect(appender.calls).to.deep.equal(payloads.map((_, index) => ({ index, error: undefined })));
            const onDisk = segmentFiles(dir).reduce((sum, name) => sum + statSync(join(dir, name)).size, 0);
            expect(onDisk).to.equal(payloads.reduce((sum, payload) => sum + HEADER + payload.length, 0));
            store.close();
          },
        ),
        { numRuns: 100 },
      );
    });

    it('writes [u32 BE length][u32 BE CRC32][payload] records, one after another', async () => {
      const { store, dir, appender } = openStore();
      const first = appender.add(Buffer.from('hello'));
      const second = appender.add(new Uint8Array(0));
      expect(first).to.deep.equal({ segment: 0, offset: 0, length: 5 });
      expect(second).to.deep.equal({ segment: 0, offset: 13, length: 0 });
      await appender.written();
      const file = readFileSync(join(dir, segmentFileName(0)));
      expect(file.toString('hex')).to.equal('00000005' + '3610a686' + Buffer.from('hello').toString('hex') + '00000000' + '00000000');
      expect(Buffer.from((await store.read([first]))[0]!).toString()).to.equal('hello');
    });

    it('calls onWritten in append order across segments, each once the bytes are in the file', async () => {
      const { dir, store } = openStore(100);
      const seen: string[] = [];
      const pointers: DiskPointer[] = [];
      for (let i = 0; i < 9; i++) {
        const pointer = store.append(bytes(40, i), (error?: Error) => {
          const size = statSync(join(dir, segmentFileName(pointer.segment))).size;
          seen.push(`${i}:${error === undefined && size >= pointer.offset + HEADER + 40}`);
        });
        pointers.push(pointer);
      }
      await until(() => seen.length === 9, 'every onWritten');
      expect(seen).to.deep.equal(['0:true', '1:true', '2:true', '3:true', '4:true', '5:true', '6:true', '7:true', '8:true']);
      expect(pointers.map((p) => p.segment)).to.deep.equal([0, 0, 1, 1, 2, 2, 3, 3, 4]);
    });

    it('cuts a backlog into writes of at most one write buffer: the first records are reported before the last are written', async () => {
      const { dir, store } = openStore(64 * 1024 * 1024);
      const file = join(dir, segmentFileName(0));
      const sizesSeen: number[] = [];
      const record = 64 * 1024;
      for (let i = 0; i < 200; i++) store.append(bytes(record, i), () => void sizesSeen.push(statSync(file).size));
      await until(() => sizesSeen.length === 200, 'every onWritten');
      const perBuffer = Math.floor(WRITE_BUFFER_BYTES / (record + HEADER)); // records that fit one write buffer
      const perWrite = perBuffer * (record + HEADER);
      // While a write's callbacks run, at most the next write (issued just before them) has landed too.
      expect(sizesSeen[0]).to.be.within(perWrite, 2 * perWrite);
      expect(sizesSeen[perBuffer - 1]).to.be.within(perWrite, 2 * perWrite);
      expect(sizesSeen[perBuffer]).to.be.within(2 * perWrite, 3 * perWrite);
      expect(sizesSeen[199]).to.equal(200 * (record + HEADER));
    });

    it('a read of a record still being written resolves only after its onWritten', async () => {
      const { store } = openStore();
      const log: string[] = [];
      const pointer = store.append(bytes(3000, 9), () => void log.push('written'));
      const payloads = await store.read([pointer]).then((result) => {
        log.push('read');
        return result;
      });
      expect(log).to.deep.equal(['written', 'read']);
      expect(Buffer.from(payloads[0]!)).to.deep.equal(bytes(3000, 9));
    });

    it('reads contiguous records with one positioned read, and a gap or another segment starts another', async () => {
      const { store, appender } = openStore(64 * 1024);
      const pointers = Array.from({ length: 100 }, (_, i) => appender.add(bytes(100 + i, i)));
      await appender.written();
      expect(store.stats.reads).to.equal(0);

      const all = await store.read(pointers);
      expect(store.stats.reads).to.equal(1);
      expect(all.map((payload) => payload.length)).to.deep.equal(pointers.map((_, i) => 100 + i));
      expect(all.every((payload, i) => payload.every((byte) => byte === i))).to.equal(true);

      const everyOther = pointers.filter((_, i) => i % 2 === 0);
      await store.read(everyOther);
      expect(store.stats.reads).to.equal(1 + 50);

      await store.read([pointers[5]!, pointers[6]!, pointers[7]!, pointers[3]!, pointers[4]!]);
      expect(store.stats.reads).to.equal(51 + 2);

      // Across a rotation: one read per segment.
      const { store: small, appender: smallAppender } = openStore(200);
      const spread = Array.from({ length: 6 }, (_, i) => smallAppender.add(bytes(50, i)));
      expect(spread.map((p) => p.segment)).to.deep.equal([0, 0, 0, 1, 1, 1]);
      await smallAppender.written();
      await small.read(spread);
      expect(small.stats.reads).to.equal(2);
    });

    it('caps one read at 8 MiB; a single larger record is read alone', async () => {
      const { store, appender } = openStore(64 * 1024 * 1024);
      const mib = 1024 * 1024;
      const pointers = [appender.add(bytes(3 * mib, 1)), appender.add(bytes(3 * mib, 2)), appender.add(bytes(3 * mib, 3)), appender.add(bytes(9 * mib, 4))];
      await appender.written();
      const payloads = await store.read(pointers);
      expect(store.stats.reads).to.equal(3); // [3 + 3] [3] [9]
      expect(payloads.map((payload) => [payload.length, payload[0], payload[payload.length - 1]])).to.deep.equal([
        [3 * mib, 1, 1],
        [3 * mib, 2, 2],
        [3 * mib, 3, 3],
        [9 * mib, 4, 4],
      ]);
    });

    it('rejects reading a released, unknown or forged pointer, before reading anything', async () => {
      const { store, dir, appender } = openStore();
      const kept = appender.add(bytes(10, 1));
      const released = appender.add(bytes(10, 2));
      await appender.written();
      store.release(released);
      const cases: [DiskPointer, string][] = [
        [released, `spool: cannot read record { segment: 0, offset: 18, length: 10 } in ${dir}: it is not live (released already, or never appended here)`],
        [{ segment: 7, offset: 0, length: 10 }, `spool: cannot read record { segment: 7, offset: 0, length: 10 } in ${dir}: it is not live`],
        [{ segment: 0, offset: 5, length: 10 }, `spool: cannot read record { segment: 0, offset: 5, length: 10 } in ${dir}: it is not live`],
        [{ segment: 0, offset: 0, length: 11 }, `spool: cannot read record { segment: 0, offset: 0, length: 11 } in ${dir}: the record appended there has 10 payload bytes`],
      ];
      for (const [pointer, message] of cases) {
        const error = await rejectionOf(store.read([kept, pointer]));
        expect(error.message).to.contain(message);
      }
      expect(store.stats.reads).to.equal(0);
    });

    it('rejects a payload that is not a Uint8Array, or over the u32 length limit, without touching the store', () => {
      const { store } = openStore();
      expect(() => store.append('text' as unknown as Uint8Array, () => {})).to.throw(TypeError, 'spool: append takes a Uint8Array payload, got string');
      const huge = new Uint8Array(0);
      Object.defineProperty(huge, 'byteLength', { value: 2 ** 32 });
      expect(() => store.append(huge, () => {})).to.throw(RangeError, 'spool: a record of 4294967296 bytes is over the 4294967295-byte limit');
      expect(store.stats).to.deep.include({ diskBytes: 0, diskRecords: 0, segments: 0, unwrittenBytes: 0 });
    });
  });

  describe('corruption', () => {
    const setUp = async () => {
      const { store, dir, appender } = openStore();
      const pointers = [appender.add(bytes(100, 1)), appender.add(bytes(100, 2)), appender.add(bytes(100, 3))];
      await appender.written();
      return { store, pointers, file: join(dir, segmentFileName(0)) };
    };
    const patch = (file: string, position: number, patchBytes: Uint8Array) => {
      const fd = openSync(file, 'r+');
      writeSync(fd, patchBytes, 0, patchBytes.length, position);
      closeSync(fd);
    };

    it('a flipped payload byte: CorruptRecordError naming the file, the offset and a bad checksum', async () => {
      const { store, pointers, file } = await setUp();
      patch(file, 108 + HEADER + 50, Buffer.from([0xff]));
      const error = await rejectionOf(store.read(pointers));
      expect(error).to.be.instanceOf(CorruptRecordError);
      expect(error).to.include({ file, offset: 108 });
      expect(error.message).to.match(
        new RegExp(`^spool: corrupt record in ${file} at byte offset 108: bad checksum: the header has CRC32 0x[0-9a-f]{8}, the payload's is 0x[0-9a-f]{8}$`),
      );
      // The records around it still read.
      const intact = await store.read([pointers[0]!, pointers[2]!]);
      expect(intact.map((payload) => payload[0])).to.deep.equal([1, 3]);
    });

    it('a header length that disagrees with the pointer: CorruptRecordError (length mismatch)', async () => {
      const { store, pointers, file } = await setUp();
      patch(file, 216, Buffer.from([0, 0, 0, 99]));
      const error = await rejectionOf(store.read([pointers[2]!]));
      expect(error).to.be.instanceOf(CorruptRecordError).and.include({ file, offset: 216 });
      expect(error.message).to.equal(`spool: corrupt record in ${file} at byte offset 216: length mismatch: the header says 99 payload bytes, the pointer 100`);
    });

    it('a truncated segment file: CorruptRecordError (truncated), inside the payload or before the header', async () => {
      const { store, pointers, file } = await setUp();
      truncateSync(file, 216 + HEADER + 40);
      const inPayload = await rejectionOf(store.read(pointers));
      expect(inPayload).to.be.instanceOf(CorruptRecordError).and.include({ file, offset: 216 });
      expect(inPayload.message).to.equal(`spool: corrupt record in ${file} at byte offset 216: truncated: the file ends at byte 264, short of the record's 100-byte payload`);
      truncateSync(file, 110);
      const beforeHeader = await rejectionOf(store.read([pointers[2]!]));
      expect(beforeHeader.message).to.equal(`spool: corrupt record in ${file} at byte offset 216: truncated: the file ends at or before byte 216, short of the record's 8-byte header`);
      const second = await rejectionOf(store.read([pointers[1]!]));
      expect(second.message).to.equal(`spool: corrupt record in ${file} at byte offset 108: truncated: the file ends at byte 110, short of the record's 8-byte header`);
    });
  });

  describe('rotation, release and stats', () => {
    it('rotates before a record would pass segmentBytes; a larger record gets a segment of its own', async () => {
      const { store, dir, appender } = openStore(100);
      const stats: Partial<SegmentStoreStats>[] = [];
      const snapshot = () => {
        const { diskBytes, diskRecords, segments, unwrittenBytes } = store.stats;
        stats.push({ diskBytes, diskRecords, segments, unwrittenBytes });
      };
      const pointers: DiskPointer[] = [];
      for (const length of [300, 40, 40, 44, 10, 0]) {
        pointers.push(appender.add(bytes(length, length)));
        snapshot();
      }
      expect(pointers).to.deep.equal([
        { segment: 0, offset: 0, length: 300 }, // alone: bigger than the segment, in an empty one
        { segment: 1, offset: 0, length: 40 },
        { segment: 1, offset: 48, length: 40 }, // 96 <= 100
        { segment: 2, offset: 0, length: 44 }, // 96 + 52 > 100
        { segment: 2, offset: 52, length: 10 }, // 52 + 18 = 70
        { segment: 2, offset: 70, length: 0 }, // 78
      ]);
      expect(stats).to.deep.equal([
        { diskBytes: 308, diskRecords: 1, segments: 1, unwrittenBytes: 308 },
        { diskBytes: 356, diskRecords: 2, segments: 2, unwrittenBytes: 356 },
        { diskBytes: 404, diskRecords: 3, segments: 2, unwrittenBytes: 404 },
        { diskBytes: 456, diskRecords: 4, segments: 3, unwrittenBytes: 456 },
        { diskBytes: 474, diskRecords: 5, segments: 3, unwrittenBytes: 474 },
        { diskBytes: 482, diskRecords: 6, segments: 3, unwrittenBytes: 482 },
      ]);
      await appender.written();
      expect(store.stats).to.deep.include({ diskBytes: 482, diskRecords: 6, segments: 3, unwrittenBytes: 0 });
      expect(segmentFiles(dir).map((name) => [name, statSync(join(dir, name)).size])).to.deep.equal([
        ['segment-00000000.spool', 308],
        ['segment-00000001.spool', 96],
        ['segment-00000002.spool', 78],
      ]);
      const payloads = await store.read(pointers);
      expect(payloads.map((payload) => payload.length)).to.deep.equal([300, 40, 40, 44, 10, 0]);
    });

    it('deletes a segment once all its records are released, keeps the active one until it rotates', async () => {
      const { store, dir, appender } = openStore(100);
      const [a, b, c, d] = [appender.add(bytes(40, 1)), appender.add(bytes(40, 2)), appender.add(bytes(40, 3)), appender.add(bytes(40, 4))];
      await appender.written();
      expect(segmentFiles(dir)).to.deep.equal([segmentFileName(0), segmentFileName(1)]);
      expect(store.stats).to.deep.include({ diskBytes: 192, diskRecords: 4, segments: 2 });

      store.release(b!);
      expect(segmentFiles(dir)).to.deep.equal([segmentFileName(0), segmentFileName(1)]);
      expect(store.stats).to.deep.include({ diskBytes: 192, diskRecords: 3, segments: 2 });
      store.release(a!);
      expect(segmentFiles(dir)).to.deep.equal([segmentFileName(1)]);
      expect(store.stats).to.deep.include({ diskBytes: 96, diskRecords: 2, segments: 1 });

      // The active segment stays, even with nothing live in it...
      store.release(c!);
      store.release(d!);
      expect(segmentFiles(dir)).to.deep.equal([segmentFileName(1)]);
      expect(store.stats).to.deep.include({ diskBytes: 96, diskRecords: 0, segments: 1 });
      // ...until the next append rotates it away.
      const e = appender.add(bytes(60, 5));
      expect(e).to.deep.equal({ segment: 2, offset: 0, length: 60 });
      expect(segmentFiles(dir)).to.deep.equal([segmentFileName(2)]);
      expect(store.stats).to.deep.include({ diskBytes: 68, diskRecords: 1, segments: 1 });
      await appender.written();
      expect((await store.read([e]))[0]!.length).to.equal(60);
      expect(store.stats.openFiles).to.equal(1);
    });

    it('release of a record that is not live throws; release after close does nothing', async () => {
      const { store, dir, appender } = openStore();
      const pointer = appender.add(bytes(10, 1));
      store.release(pointer);
      expect(() => store.release(pointer)).to.throw(
        `spool: cannot release record { segment: 0, offset: 0, length: 10 } in ${dir}: it is not live (released already, or never appended here)`,
      );
      expect(store.stats.diskRecords).to.equal(0);
      store.close();
      expect(() => store.release(pointer)).not.to.throw();
    });

    it('a deleted segment with its write still on the way keeps its fd until the write returns', async () => {
      const { store, dir, appender } = openStore(100);
      const first = appender.add(bytes(40, 1));
      appender.add(bytes(80, 2)); // rotates
      store.release(first); // segment 0 goes before any write ran
      expect(segmentFiles(dir)).to.deep.equal([segmentFileName(1)]);
      expect(store.stats).to.deep.include({ diskBytes: 88, diskRecords: 1, segments: 1, openFiles: 2 });
      await appender.written();
      expect(appender.calls).to.deep.equal([
        { index: 0, error: undefined },
        { index: 1, error: undefined },
      ]);
      await until(() => store.stats.openFiles === 1, 'the deleted segment fd to close');
    });

    it('keeps exact stats and files through random appends, releases and reads (model check)', async () => {
      type Command = { kind: 'append'; length: number } | { kind: 'release'; pick: number } | { kind: 'read'; picks: number[] } | { kind: 'tick' };
      const command = fc.oneof(
        { weight: 4, arbitrary: fc.record({ kind: fc.constant('append' as const), length: fc.integer({ min: 0, max: 300 }) }) },
        { weight: 3, arbitrary: fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }) },
        { weight: 1, arbitrary: fc.record({ kind: fc.constant('read' as const), picks: fc.array(fc.nat(), { maxLength: 5 }) }) },
        { weight: 1, arbitrary: fc.constant({ kind: 'tick' as const }) },
      );
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 64, max: 1024 }), fc.array(command, { maxLength: 40 }), async (segmentBytes, commands: Command[]) => {
          const { store, dir, appender } = openStore(segmentBytes);
          interface ModelSegment { number: number; size: number; live: Set<number> }
          const model = { next: 0, active: undefined as ModelSegment | undefined, segments: new Map<number, ModelSegment>() };
          const live: { pointer: DiskPointer; payload: Buffer }[] = [];
          let records = 0;
          for (const step of commands) {
            if (step.kind === 'append') {
              const recordBytes = HEADER + step.length;
              let active = model.active;
              if (active === undefined || (active.size > 0 && active.size + recordBytes > segmentBytes)) {
                const previous = active;
                active = { number: model.next++, size: 0, live: new Set() };
                model.segments.set(active.number, active);
                model.active = active;
                if (previous && previous.live.size === 0) model.segments.delete(previous.number);
              }
              const expected = { segment: active.number, offset: active.size, length: step.length };
              active.size += recordBytes;
              active.live.add(expected.offset);
              const payload = randomBytes(step.length);
              const pointer = appender.add(payload);
              expect(pointer).to.deep.equal(expected);
              live.push({ pointer, payload });
              records++;
            } else if (step.kind === 'release' && live.length > 0) {
              const [{ pointer }] = live.splice(step.pick % live.length, 1) as [{ pointer: DiskPointer; payload: Buffer }];
              store.release(pointer);
              const segment = model.segments.get(pointer.segment)!;
              segment.live.delete(pointer.offset);
              if (segment.live.size === 0 && segment !== model.active) model.segments.delete(segment.number);
              records--;
            } else if (step.kind === 'read' && live.length > 0) {
              const chosen = step.picks.map((pick) => live[pick % live.length]!);
              const payloads = await store.read(chosen.map((entry) => entry.pointer));
              expect(payloads.map((payload) => Buffer.from(payload))).to.deep.equal(chosen.map((entry) => entry.payload));
            } else if (step.kind === 'tick') {
              await tick();
            }
            const segments = [...model.segments.values()];
            expect(store.stats).to.deep.include({
              diskBytes: segments.reduce((sum, segment) => sum + segment.size, 0),
              diskRecords: records,
              segments: segments.length,
            });
            expect(segmentFiles(dir)).to.deep.equal(segments.map((segment) => segmentFileName(segment.number)));
          }
          await appender.written();
          expect(store.stats.unwrittenBytes).to.equal(0);
          expect(appender.calls.map((call) => call.index)).to.deep.equal(appender.calls.map((_, index) => index));
          expect(appender.calls.every((call) => call.error === undefined)).to.equal(true);
          const all = await store.read(live.map((entry) => entry.pointer));
          expect(all.map((payload) => Buffer.from(payload))).to.deep.equal(live.map((entry) => entry.payload));
          store.close();
          expect(existsSync(dir)).to.equal(false);
        }),
        { numRuns: 100 },
      );
    });
  });

  describe('close', () => {
    it('removes the folder, zeroes the stats, is idempotent; later appends throw and reads reject', async () => {
      const { store, dir, appender } = openStore(100);
      const pointer = appender.add(bytes(40, 1));
      appender.add(bytes(80, 2));
      await appender.written();
      store.close();
      store.close();
      expect(existsSync(dir)).to.equal(false);
      expect(store.stats).to.deep.equal({ diskBytes: 0, diskRecords: 0, segments: 0, unwrittenBytes: 0, reads: 0, openFiles: 0 });
      expect(() => store.append(bytes(1, 1), () => {})).to.throw(`spool: cannot append to the segment store in ${dir}: it is closed`);
      const error = await rejectionOf(store.read([pointer]));
      expect(error.message).to.equal(`spool: cannot read from the segment store in ${dir}: it is closed`);
    });

    it('append and read before open() throw and reject', async () => {
      const dir = nextDir();
      const store = callbackStore({ dir, segmentBytes: 64 });
      stores.push(store);
      expect(() => store.append(bytes(1, 1), () => {})).to.throw(`spool: cannot append to the segment store in ${dir}: call open() first`);
      expect((await rejectionOf(store.read([]))).message).to.equal(`spool: cannot read from the segment store in ${dir}: call open() first`);
    });

    it('leaves the fd count where it started after use and close', async () => {
      const before = openFds();
      const { store, appender } = openStore(4096);
      const pointers = Array.from({ length: 50 }, (_, i) => appender.add(bytes(1000, i)));
      await appender.written();
      expect(store.stats.openFiles).to.equal(13); // 4 records of 1008 bytes per 4096-byte segment
      expect(openFds()).to.equal(before + 13);
      await store.read(pointers);
      for (const pointer of pointers.slice(0, 20)) store.release(pointer);
      expect(store.stats.openFiles).to.equal(8);
      store.close();
      expect(store.stats.openFiles).to.equal(0);
      expect(openFds()).to.equal(before);
    });

    it('with writes in flight: every pending onWritten gets the closed error in order, and no fd leaks', async () => {
      const before = openFds();
      const { store, dir, appender } = openStore(64 * 1024 * 1024);
      for (let i = 0; i < 200; i++) appender.add(bytes(64 * 1024, i));
      const waiting = store.read([appender.add(bytes(10, 1))]).then(
        () => 'resolved',
        (error: Error) => error.message,
      );
      await Promise.resolve(); // the flush microtask has run: the first write is in flight, none has returned
      expect(store.stats.unwrittenBytes).to.equal(200 * (64 * 1024 + HEADER) + HEADER + 10);
      store.close();
      expect(existsSync(dir)).to.equal(false);
      expect(store.stats.unwrittenBytes).to.equal(0);
      expect(appender.calls).to.have.length(201);
      expect(appender.calls.map((call) => call.index)).to.deep.equal([...Array(201).keys()]);
      for (const call of appender.calls) {
        expect(call.error?.message).to.equal(`spool: the segment store in ${dir} was closed before the record was written`);
      }
      expect(await waiting).to.equal(`spool: the segment store in ${dir} was closed before the record was written`);
      expect(store.stats.openFiles).to.equal(1); // held by the write in flight, closed when it returns
      await until(() => store.stats.openFiles === 0, 'the in-flight write to return');
      expect(openFds()).to.equal(before);
      expect(appender.calls).to.have.length(201);
    });

    it('a failed write: every record not yet written gets the error naming the file, in order; the next append starts a new segment', async () => {
      const { store, dir, appender } = openStore();
      const file = join(dir, segmentFileName(0));
      const first = appender.add(bytes(10, 1));
      await appender.written();
      appender.add(bytes(10, 2));
      const third = appender.add(bytes(10, 3));
      const waiting = store.read([third]).then(
        () => 'resolved',
        (error: Error) => error.message,
      );
      // Swap the store's fd for a read-only file under the same number (the lowest free one), so its next write fails.
      const fd = Number(readdirSync('/proc/self/fd').find((name) => readlinkOrEmpty(`/proc/self/fd/${name}`) === file));
      closeSync(fd);
      expect(openSync(join(dir, SPOOL_MARKER_FILE), 'r')).to.equal(fd);
      await appender.written();
      const failure = new RegExp(`^spool: write to ${file} at byte offset 18 failed: EBADF`);
      expect(appender.calls.map((call) => call.index)).to.deep.equal([0, 1, 2]);
      expect(appender.calls[0]!.error).to.equal(undefined);
      expect(appender.calls[1]!.error?.message).to.match(failure);
      expect(appender.calls[2]!.error).to.equal(appender.calls[1]!.error);
      expect(await waiting).to.match(failure);
      expect(store.stats).to.deep.include({ unwrittenBytes: 0, diskRecords: 3, segments: 1 });
      expect(first).to.deep.equal({ segment: 0, offset: 0, length: 10 });

      const fourth = appender.add(bytes(10, 4));
      expect(fourth).to.deep.equal({ segment: 1, offset: 0, length: 10 });
      await appender.written();
      expect(appender.calls[3]).to.deep.equal({ index: 3, error: undefined });
      expect((await store.read([fourth]))[0]![0]).to.equal(4);
    });

    it('a segment file that cannot be created makes append throw with its path, leaving the store usable', async () => {
      const { store, dir, appender } = openStore(100);
      const first = appender.add(bytes(80, 1));
      mkdirSync(join(dir, segmentFileName(1)));
      expect(() => appender.add(bytes(80, 2))).to.throw(`spool: cannot create segment file ${join(dir, segmentFileName(1))}: EEXIST`);
      expect(store.stats).to.deep.include({ diskBytes: 88, diskRecords: 1, segments: 1 });
      rmSync(join(dir, segmentFileName(1)), { recursive: true });
      expect(appender.add(bytes(80, 3))).to.deep.equal({ segment: 1, offset: 0, length: 80 });
      await appender.written();
      expect((await store.read([first]))[0]![0]).to.equal(1);
    });
  });

  it('stores side by side in their own folders do not interfere', async () => {
    const one = openStore(128);
    const two = openStore(128);
    const onePointers: DiskPointer[] = [];
    const twoPointers: DiskPointer[] = [];
    for (let i = 0; i < 10; i++) {
      onePointers.push(one.appender.add(bytes(50, i)));
      twoPointers.push(two.appender.add(bytes(30, 100 + i)));
    }
    expect(onePointers.slice(0, 3).map((p) => p.segment)).to.deep.equal([0, 0, 1]);
    expect(twoPointers.slice(0, 4).map((p) => p.segment)).to.deep.equal([0, 0, 0, 1]);
    await Promise.all([one.appender.written(), two.appender.written()]);
    expect(segmentFiles(one.dir)).to.have.length(5);
    expect(segmentFiles(two.dir)).to.have.length(4);
    one.store.close();
    expect(existsSync(one.dir)).to.equal(false);
    const payloads = await two.store.read(twoPointers);
    expect(payloads.map((payload) => payload[0])).to.deep.equal([100, 101, 102, 103, 104, 105, 106, 107, 108, 109]);
    expect(two.store.stats).to.deep.include({ diskRecords: 10, segments: 4, diskBytes: 380 });
  });
});
