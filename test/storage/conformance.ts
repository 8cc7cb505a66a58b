/**
 * The behaviour every ExternalStorage must show, as one mocha suite each implementation runs:
 * byte-exact round trips, atomic overwrite, missing objects, idempotent delete, listings in UTF-8 byte
 * order (prefix, nested keys, startAfter, more keys than one S3 page), unicode and odd characters,
 * invalid keys rejected before any I/O, close.
 *
 * Each `it` opens a fresh, empty storage and cleans it up afterwards, so a test may rely on listing
 * exactly what it put. `cleanup` runs after the test even when the test closed the storage itself.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import type { ExternalStorage } from '../../lib/storage/storage.ts';
import { compareKeys, InvalidKeyError, type KeyRule } from '../../lib/storage/keys.ts';
import { redactUri } from '../../lib/storage/uri.ts';
import { rejectionOf } from '../support/waiting.ts';

export interface OpenedStorage {
  /** An empty storage (a fresh folder, bucket prefix, container prefix...). */
  storage: ExternalStorage;
  /** Removes what the test left; must work whether or not the storage was closed. */
  cleanup: () => Promise<void>;
}

/** Keys that break one rule each, with the rule every storage must report before touching anything. */
export const INVALID_KEYS: readonly (readonly [key: unknown, rule: KeyRule])[] = [
  ['', 'empty'],
  ['/absolute', 'leading-slash'],
  ['folder/', 'trailing-slash'],
  ['a//b', 'empty-segment'],
  ['./a', 'dot-segment'],
  ['a/./b', 'dot-segment'],
  ['../escape', 'dot-segment'],
  ['a/..', 'dot-segment'],
  ['a\\b', 'backslash'],
  ['..\\escape', 'backslash'],
  ['nul\u0000byte', 'control-character'],
  ['new\nline', 'control-character'],
  ['del\u007f', 'control-character'],
  ['x'.repeat(1025), 'too-long'],
  ['é'.repeat(513), 'too-long'], // 513 characters, 1026 bytes
  [42, 'not-a-string'],
];

/** Listing prefixes that break one rule each ('' and a trailing '/' are fine for a prefix). */
export const INVALID_PREFIXES: readonly (readonly [prefix: unknown, rule: KeyRule])[] = [
  ['/', 'leading-slash'],
  ['/a', 'leading-slash'],
  ['a//', 'empty-segment'],
  ['../', 'dot-segment'],
  ['a\\', 'backslash'],
  ['a\tb', 'control-character'],
];

const MiB = 1024 * 1024;

/**
 * Defines `describe(name + ' conforms to ExternalStorage')` with the shared behaviour. `open` is called
 * before each test and must give an empty storage.
 *
 * @example
 * describeStorageConformance('MemoryStorage', async () => {
 *   const storage = new MemoryStorage();
 *   return { storage, cleanup: () => storage.close() };
 * });
 */
export function describeStorageConformance(name: string, open: () => Promise<OpenedStorage>): void {
  describe(`${name} conforms to ExternalStorage`, function () {
    this.timeout(60_000);
    let storage: ExternalStorage;
    let cleanup: (() => Promise<void>) | undefined;

    beforeEach(async () => {
      ({ storage, cleanup } = await open());
    });

    afterEach(async () => {
      const done = cleanup;
      cleanup = undefined;
      await done?.();
    });

    describe('put and get', () => {
      it('round-trips random binary payloads byte for byte (0 B, 1 B, 64 KiB, 6 MiB)', async () => {
        for (const size of [0, 1, 64 * 1024, 6 * MiB]) {
          const payload = randomBytes(size);
          await storage.put(`payload/${size}.bin`, payload);
          expectBytes(await storage.get(`payload/${size}.bin`), payload, `payload/${size}.bin`);
          expect(await storage.exists(`payload/${size}.bin`), `exists payload/${size}.bin`).to.equal(true);
        }
        expect(await collect(storage.list(''))).to.deep.equal(['payload/0.bin', 'payload/1.bin', 'payload/6291456.bin', 'payload/65536.bin']);
      });

      it('accepts a plain Uint8Array view into a larger buffer and stores only the view', async () => {
        const whole = new Uint8Array([9, 9, 1, 2, 3, 9, 9]);
        await storage.put('view.bin', whole.subarray(2, 5));
        expectBytes(await storage.get('view.bin'), Buffer.from([1, 2, 3]), 'view.bin');
      });

      it("keeps the stored bytes when the caller changes its buffers afterwards", async () => {
        const payload = Buffer.from([1, 2, 3, 4]);
        await storage.put('owned.bin', payload);
        payload.fill(0);
        const first = await storage.get('owned.bin');
        expectBytes(first, Buffer.from([1, 2, 3, 4]), 'owned.bin');
        first!.fill(7);
        expectBytes(await storage.get('owned.bin'), Buffer.from([1, 2, 3, 4]), 'owned.bin after changing a read copy');
      });

      it('overwrites an object with a longer and then a shorter one, exactly', async () => {
        for (const [size, fill] of [[10, 1], [1000, 2], [3, 3], [0, 4], [5, 5]] as const) {
          await storage.put('overwritten.bin', Buffer.alloc(size, fill));
          expectBytes(await storage.get('overwritten.bin'), Buffer.alloc(size, fill), `overwritten.bin (${size} B of ${fill})`);
        }
        expect(await collect(storage.list(''))).to.deep.equal(['overwritten.bin']);
      });

      it('replaces atomically: a get during a put sees the whole old or the whole new object, never a mix or nothing', async () => {
        const versions = [Buffer.alloc(6 * MiB, 0x11), Buffer.alloc(6 * MiB + 17, 0x22), Buffer.alloc(4 * MiB - 3, 0x33)];
        await storage.put('big.bin', versions[0]!);
        let reads = 0;
        for (let index = 1; index < versions.length; index++) {
          const old = versions[index - 1]!;
          const next = versions[index]!;
          let putDone = false;
          const put = storage.put('big.bin', next).finally(() => (putDone = true));
          const readers = [0, 1, 2].map(async () => {
            do {
              const seen = await storage.get('big.bin');
              reads++;
              expect(seen, 'a get during an overwrite found no object').to.not.equal(undefined);
              const whole = sameBytes(seen!, old) || sameBytes(seen!, next);
              expect(whole, `a get during an overwrite returned ${describeBytes(seen!)}, expected ${describeBytes(old)} or ${describeBytes(next)}`).to.equal(true);
            } while (!putDone);
          });
          await Promise.all([put, ...readers]);
          expectBytes(await storage.get('big.bin'), next, 'big.bin after the overwrite');
        }
        expect(reads).to.be.at.least(6);
      });
    });

    describe('missing objects', () => {
      it('get gives undefined and exists false for a key never put', async () => {
        expect(await storage.get('missing/key.csv')).to.equal(undefined);
        expect(await storage.exists('missing/key.csv')).to.equal(false);
      });

      it('a folder-like prefix of an existing key is not an object', async () => {
        await storage.put('folder/inner/file.csv', Buffer.from('x'));
        for (const key of ['folder', 'folder/inner']) {
          expect(await storage.get(key), `get ${key}`).to.equal(undefined);
          expect(await storage.exists(key), `exists ${key}`).to.equal(false);
        }
        expect(await storage.get('folder/inner/file.csv/below'), 'get below a file').to.equal(undefined);
        expect(await storage.exists('folder/inner/file.csv/below'), 'exists below a file').to.equal(false);
      });
    });

    describe('delete', () => {
      it('removes the object: get undefined, exists false, not listed', async () => {
        await storage.put('gone.csv', Buffer.from('bye'));
        expect(await storage.exists('gone.csv')).to.equal(true);
        await storage.delete('gone.csv');
        expect(await storage.get('gone.csv')).to.equal(undefined);
        expect(await storage.exists('gone.csv')).to.equal(false);
        expect(await collect(storage.list(''))).to.deep.equal([]);
      });

      it('is idempotent: deleting a missing key, or the same key twice, succeeds', async () => {
        await storage.delete('never/there.csv');
        await storage.put('twice.csv', Buffer.from('x'));
        await storage.delete('twice.csv');
        await storage.delete('twice.csv');
        expect(await storage.exists('twice.csv')).to.equal(false);
      });

      it('removes only that key, not keys it is a prefix of, nor folders', async () => {
        const keys = ['d/b', 'd/bc', 'd/b-c', 'd/b.csv', 'e/f/g'];
        for (const key of keys) await storage.put(key, Buffer.from(key));
        await storage.delete('d/b');
        await storage.delete('e/f');
        await storage.delete('e');
        expect(await collect(storage.list(''))).to.deep.equal(['d/b-c', 'd/b.csv', 'd/bc', 'e/f/g']);
        for (const key of ['d/bc', 'd/b-c', 'd/b.csv', 'e/f/g']) expectBytes(await storage.get(key), Buffer.from(key), key);
      });

      it('an object can be put again after its delete', async () => {
        await storage.put('again.csv', Buffer.from('1'));
        await storage.delete('again.csv');
        await storage.put('again.csv', Buffer.from('2'));
        expectBytes(await storage.get('again.csv'), Buffer.from('2'), 'again.csv');
      });
    });

    describe('list', () => {
      it('lists nothing in an empty storage', async () => {
        expect(await collect(storage.list(''))).to.deep.equal([]);
        expect(await collect(storage.list('any/prefix'))).to.deep.equal([]);
      });

      it('lists every key in ascending byte order, whatever the put order', async () => {
        const keys = ['~tilde', 'b/a/z', 'a0', 'Z', 'a/b', 'a.b', 'b/a-z', 'a-c', 'B'];
        for (const key of keys) await storage.put(key, Buffer.from(key));
        // '-' 0x2D < '.' 0x2E < '/' 0x2F < '0' 0x30: a key below a folder sorts among its siblings by its '/'.
        expect(await collect(storage.list(''))).to.deep.equal(['B', 'Z', 'a-c', 'a.b', 'a/b', 'a0', 'b/a-z', 'b/a/z', '~tilde']);
      });

      it('filters by prefix, including a prefix that ends in the middle of a name', async () => {
        const keys = ['orders/2024-01.csv', 'orders/2024-02.csv', 'orders/2025-01.csv', 'orders-archive/x.csv', 'ordersx', 'other/y.csv'];
        for (const key of keys) await storage.put(key, Buffer.from(key));
        expect(await collect(storage.list('orders/2024'))).to.deep.equal(['orders/2024-01.csv', 'orders/2024-02.csv']);
        expect(await collect(storage.list('orders/'))).to.deep.equal(['orders/2024-01.csv', 'orders/2024-02.csv', 'orders/2025-01.csv']);
        expect(await collect(storage.list('orders'))).to.deep.equal([
          'orders-archive/x.csv',
          'orders/2024-01.csv',
          'orders/2024-02.csv',
          'orders/2025-01.csv',
          'ordersx',
        ]);
        expect(await collect(storage.list('o'))).to.have.length(6);
        expect(await collect(storage.list('orders/2024-01.csv'))).to.deep.equal(['orders/2024-01.csv']);
        expect(await collect(storage.list('orders/2024-01.csv/'))).to.deep.equal([]);
        expect(await collect(storage.list('nothing'))).to.deep.equal([]);
        expect(await collect(storage.list('orders/2026'))).to.deep.equal([]);
      });

      it('lists nested keys at every depth under a prefix', async () => {
        const keys = ['n/b/c/d/e.bin', 'n/b/f.bin', 'n/g.bin', 'n/b/c/h.bin', 'top.bin'];
        for (const key of keys) await storage.put(key, Buffer.from(key));
        expect(await collect(storage.list('n/b/'))).to.deep.equal(['n/b/c/d/e.bin', 'n/b/c/h.bin', 'n/b/f.bin']);
        expect(await collect(storage.list('n/'))).to.deep.equal(['n/b/c/d/e.bin', 'n/b/c/h.bin', 'n/b/f.bin', 'n/g.bin']);
        expect(await collect(storage.list(''))).to.deep.equal(['n/b/c/d/e.bin', 'n/b/c/h.bin', 'n/b/f.bin', 'n/g.bin', 'top.bin']);
      });

      it('resumes after startAfter, whether or not startAfter is a key', async () => {
        const keys = ['k/00', 'k/01', 'k/02', 'k/03', 'm/a/1', 'm/b/1', 'm/b/y', 'm/c/1'];
        for (const key of keys) await storage.put(key, Buffer.from(key));
        expect(await collect(storage.list('', { startAfter: 'k/01' }))).to.deep.equal(['k/02', 'k/03', 'm/a/1', 'm/b/1', 'm/b/y', 'm/c/1']);
        expect(await collect(storage.list('k/', { startAfter: 'k/01x' }))).to.deep.equal(['k/02', 'k/03']);
        expect(await collect(storage.list('k/', { startAfter: 'k/03' }))).to.deep.equal([]);
        expect(await collect(storage.list('k/', { startAfter: 'a' }))).to.deep.equal(['k/00', 'k/01', 'k/02', 'k/03']);
        expect(await collect(storage.list('k/', { startAfter: 'z' }))).to.deep.equal([]);
        expect(await collect(storage.list('m/', { startAfter: 'm/b/1' }))).to.deep.equal(['m/b/y', 'm/c/1']);
        expect(await collect(storage.list('m/', { startAfter: 'm/b' }))).to.deep.equal(['m/b/1', 'm/b/y', 'm/c/1']);
        expect(await collect(storage.list('m/', { startAfter: 'm/b/' }))).to.deep.equal(['m/b/1', 'm/b/y', 'm/c/1']);
        expect(await collect(storage.list('m/', { startAfter: 'm/b0' }))).to.deep.equal(['m/c/1']);
        expect(await collect(storage.list('', { startAfter: '' }))).to.deep.equal(keys);
      });

      it('stops cleanly when the consumer stops early', async () => {
        for (let index = 0; index < 10; index++) await storage.put(`early/${index}`, Buffer.from([index]));
        const seen: string[] = [];
        for await (const key of storage.list('early/')) {
          seen.push(key);
          if (seen.length === 3) break;
        }
        expect(seen).to.deep.equal(['early/0', 'early/1', 'early/2']);
        expect(await collect(storage.list('early/'))).to.have.length(10);
      });

      it('lists 1500 keys, more than one S3 page, in order and resumes mid-way', async () => {
        const keys = Array.from({ length: 1500 }, (_, index) => `many/${String(index).padStart(5, '0')}.csv`);
        await putAll(storage, shuffled(keys), 25);
        const listed = await collect(storage.list('many/'));
        expect(listed.length).to.equal(1500);
        expect(listed).to.deep.equal(keys);
        expect(await collect(storage.list('many/', { startAfter: keys[999] }))).to.deep.equal(keys.slice(1000));
        expect(await collect(storage.list('many/010'))).to.deep.equal(keys.slice(1000, 1100));
      });
    });

    describe('unicode and odd characters', () => {
      it('round-trips and lists unicode keys', async () => {
        const keys = ['données/表/CDC000002.csv', 'données/表/CDC000001.csv', 'données/schéma.json', 'emoji/🦀/crab.bin'];
        for (const key of keys) await storage.put(key, Buffer.from(`bytes of ${key}`));
        for (const key of keys) expectBytes(await storage.get(key), Buffer.from(`bytes of ${key}`), key);
        expect(await collect(storage.list('données/表/'))).to.deep.equal(['données/表/CDC000001.csv', 'données/表/CDC000002.csv']);
        expect(await collect(storage.list('données/sch'))).to.deep.equal(['données/schéma.json']);
        expect(await storage.exists('emoji/🦀/crab.bin')).to.equal(true);
        await storage.delete('emoji/🦀/crab.bin');
        expect(await storage.exists('emoji/🦀/crab.bin')).to.equal(false);
      });

      it('lists in UTF-8 byte order, which differs from JavaScript string order above U+FFFF', async () => {
        // U+FF61 is EF BD A1 in UTF-8 and U+1F600 is F0 9F 98 80, but in UTF-16 0xD83D < 0xFF61.
        const keys = ['sort/\u{1F600}.txt', 'sort/\uFF61.txt', 'sort/z.txt', 'sort/é.txt'];
        for (const key of keys) await storage.put(key, Buffer.from(key));
        const expected = ['sort/z.txt', 'sort/é.txt', 'sort/\uFF61.txt', 'sort/\u{1F600}.txt'];
        expect([...keys].sort(compareKeys)).to.deep.equal(expected);
        expect(await collect(storage.list('sort/'))).to.deep.equal(expected);
        expect(await collect(storage.list('sort/', { startAfter: 'sort/\uFF61.txt' }))).to.deep.equal(['sort/\u{1F600}.txt']);
      });

      it('resumes exactly after any listed key: startAfter follows the order the storage lists in', async () => {
        // Whatever order a storage lists in, a consumer that resumes after the last key it saw must
        // get exactly the rest: no key skipped, none repeated.
        const keys = ['r/\u{1F600}', 'r/\uFF61', 'r/\uE000', 'r/\u{10000}', 'r/z', 'r/é', 'r/a/b', 'r/a-b', 'r/a0', 'r/A'];
        for (const key of keys) await storage.put(key, Buffer.from(key));
        const listed = await collect(storage.list('r/'));
        expect([...listed].sort()).to.deep.equal([...keys].sort());
        for (let index = 0; index < listed.length; index++) {
          expect(await collect(storage.list('r/', { startAfter: listed[index] })), `after ${listed[index]}`).to.deep.equal(listed.slice(index + 1));
        }
      });

      it('round-trips keys with characters that URLs and signatures treat specially', async () => {
        const keys = [
          "odd/a b+c%20d?e#f&g=h;i,j@k:l$m!n'o(p)q*r~s.txt",
          'odd/%2F%2e%2e',
          'odd/plus+plus',
          'odd/space and  double',
          'odd/.hidden',
          'odd/...',
          'odd/trailing.',
        ];
        for (const key of keys) await storage.put(key, Buffer.from(key));
        for (const key of keys) expectBytes(await storage.get(key), Buffer.from(key), key);
        expect(await collect(storage.list('odd/'))).to.deep.equal([...keys].sort(compareKeys));
        expect(await collect(storage.list('odd/a b+'))).to.deep.equal([keys[0]]);
        for (const key of keys) await storage.delete(key);
        expect(await collect(storage.list(''))).to.deep.equal([]);
      });
    });

    describe('invalid keys', () => {
      for (const [key, rule] of INVALID_KEYS) {
        it(`rejects ${describeKey(key)} (${rule}) in put, get, exists and delete before any I/O`, async () => {
          await expectInvalidKey(() => storage.put(key as string, Buffer.from('x')), key, rule);
          await expectInvalidKey(() => storage.get(key as string), key, rule);
          await expectInvalidKey(() => storage.exists(key as string), key, rule);
          await expectInvalidKey(() => storage.delete(key as string), key, rule);
          expect(await collect(storage.list(''))).to.deep.equal([]);
        });
      }

      for (const [prefix, rule] of INVALID_PREFIXES) {
        it(`rejects the listing prefix ${describeKey(prefix)} (${rule})`, async () => {
          await expectInvalidKey(() => collect(storage.list(prefix as string)), prefix, rule);
        });
      }

      it('accepts what is valid: a 967-byte key of 8 segments and segments made of dots and more', async () => {
        // Kept under 1024 bytes so a storage prefix fits, and under 255 bytes per segment (file names).
        const long = Array.from({ length: 8 }, (_, index) => `${index}${'é'.repeat(59)}x`).join('/');
        expect(Buffer.byteLength(long)).to.equal(967);
        for (const key of ['.../..a/a..', '.x/..x/x.', long]) {
          await storage.put(key, Buffer.from(key));
          expectBytes(await storage.get(key), Buffer.from(key), describeKey(key));
        }
        expect(await collect(storage.list(''))).to.deep.equal(['.../..a/a..', '.x/..x/x.', long]);
      });
    });

    describe('uri and close', () => {
      it('has a uri without credentials', () => {
        expect(storage.uri).to.be.a('string').and.not.equal('');
        expect(redactUri(storage.uri)).to.equal(storage.uri);
      });

      it('close resolves, twice, and later calls fail naming the storage', async () => {
        await storage.put('before-close.csv', Buffer.from('x'));
        await storage.close();
        await storage.close();
        for (const [operation, call] of [
          ['put', () => storage.put('after-close.csv', Buffer.from('x'))],
          ['get', () => storage.get('before-close.csv')],
          ['exists', () => storage.exists('before-close.csv')],
          ['delete', () => storage.delete('before-close.csv')],
          ['list', () => collect(storage.list(''))],
        ] as const) {
          const error = await rejectionOf(call);
          expect(error, `${operation} after close`).to.be.instanceOf(Error);
          expect((error as Error).message, `${operation} after close`).to.match(/closed/i).and.to.include(storage.uri);
        }
      });
    });
  });
}

/** Every key of a listing, in the order given. */
export async function collect(keys: AsyncIterable<string>): Promise<string[]> {
  const all: string[] = [];
  for await (const key of keys) all.push(key);
  return all;
}

/** Puts each key (its bytes: the key itself) with at most `concurrency` puts in flight. */
export async function putAll(storage: ExternalStorage, keys: readonly string[], concurrency: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < keys.length) {
      const key = keys[next++]!;
      await storage.put(key, Buffer.from(key));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** Asserts `actual` holds exactly `expected`, saying where they differ (chai's deep equal is slow on MiBs). */
export function expectBytes(actual: Uint8Array | undefined, expected: Uint8Array, what: string): void {
  expect(actual, `${what}: no object`).to.not.equal(undefined);
  expect(actual, `${what}: not a Uint8Array`).to.be.instanceOf(Uint8Array);
  if (sameBytes(actual!, expected)) return;
  const limit = Math.min(actual!.length, expected.length);
  let offset = 0;
  while (offset < limit && actual![offset] === expected[offset]) offset++;
  expect.fail(`${what}: got ${describeBytes(actual!)}, expected ${describeBytes(expected)}; first difference at byte ${offset}`);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function describeBytes(bytes: Uint8Array): string {
  if (bytes.length === 0) return '0 B';
  const samples = [bytes[0]!, bytes[bytes.length >> 1]!, bytes[bytes.length - 1]!].map((byte) => `0x${byte.toString(16)}`);
  return `${bytes.length} B (first/middle/last ${samples.join('/')})`;
}

function describeKey(key: unknown): string {
  if (typeof key !== 'string') return String(key);
  return key.length > 24 ? `${JSON.stringify(key.slice(0, 12))}… (${Buffer.byteLength(key)} B)` : JSON.stringify(key);
}


async function expectInvalidKey(call: () => Promise<unknown>, key: unknown, rule: KeyRule): Promise<void> {
  const error = await rejectionOf(call);
  expect(error, `expected an InvalidKeyError for ${describeKey(key)}, got ${String(error)}`).to.be.instanceOf(InvalidKeyError);
  expect((error as InvalidKeyError).rule).to.equal(rule);
  expect((error as InvalidKeyError).key).to.equal(key);
}

function shuffled<T>(items: readonly T[]): T[] {
  const copy = [...items];
  let seed = 12345;
  for (let index = copy.length - 1; index > 0; index--) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    const other = seed % (index + 1);
    [copy[index], copy[other]] = [copy[other]!, copy[index]!];
  }
  return copy;
}
