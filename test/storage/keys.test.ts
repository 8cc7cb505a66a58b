import { expect } from 'chai';
import fc from 'fast-check';
import { checkKey, checkPrefix, compareKeys, InvalidKeyError, joinKey, keyProblem, MAX_KEY_BYTES } from '../../lib/storage/keys.ts';

const HOW = `; keys are relative '/'-separated paths such as "2024/orders/CDC000001.csv"`;

function thrown(call: () => unknown): InvalidKeyError {
  try {
    call();
  } catch (error) {
    expect(error).to.be.instanceOf(InvalidKeyError);
    return error as InvalidKeyError;
  }
  return expect.fail('expected an InvalidKeyError');
}

describe('storage keys', () => {
  describe('checkKey', () => {
    const valid = [
      'a',
      'CDC000001.csv',
      'données/表/CDC000001.csv',
      'emoji/🦀.bin',
      'a b/c+d/e%20f?g#h&i=j',
      '.hidden/..x/x../...',
      'x'.repeat(MAX_KEY_BYTES),
      `${'é'.repeat(511)}ab`, // 1024 bytes
      'tab-less\u0080\u00a0 (C1 and NBSP are not control characters in the rule)',
    ];
    for (const key of valid) {
      it(`accepts ${JSON.stringify(key.length > 40 ? `${key.slice(0, 20)}…` : key)}`, () => {
        expect(checkKey(key)).to.equal(key);
        expect(keyProblem(key)).to.equal(undefined);
      });
    }

    const invalid: [unknown, string, string][] = [
      ['', 'empty', 'storage: invalid key "": it is empty'],
      ['/etc/passwd', 'leading-slash', `storage: invalid key "/etc/passwd": it starts with '/' (keys are relative to the storage root)`],
      ['orders/', 'trailing-slash', `storage: invalid key "orders/": it ends with '/' (a key names an object, not a folder)`],
      ['orders//x.csv', 'empty-segment', `storage: invalid key "orders//x.csv": it has an empty segment ('//')`],
      ['./x.csv', 'dot-segment', `storage: invalid key "./x.csv": it has a '.' segment`],
      ['a/./x.csv', 'dot-segment', `storage: invalid key "a/./x.csv": it has a '.' segment`],
      ['../x.csv', 'dot-segment', `storage: invalid key "../x.csv": it has a '..' segment`],
      ['a/b/..', 'dot-segment', `storage: invalid key "a/b/..": it has a '..' segment`],
      ['..', 'dot-segment', `storage: invalid key "..": it has a '..' segment`],
      ['a\\b.csv', 'backslash', `storage: invalid key "a\\\\b.csv": it contains a backslash (use '/' between segments)`],
      ['a\u0000b', 'control-character', 'storage: invalid key "a\\u0000b": it contains the control character U+0000 at index 1'],
      ['line\nbreak', 'control-character', 'storage: invalid key "line\\nbreak": it contains the control character U+000A at index 4'],
      ['unit\u001fsep', 'control-character', 'storage: invalid key "unit\\u001fsep": it contains the control character U+001F at index 4'],
      ['del\u007f', 'control-character', 'storage: invalid key "del\u007f": it contains the control character U+007F at index 3'],
      [42, 'not-a-string', 'storage: invalid key of type number: it is not a string'],
      [undefined, 'not-a-string', 'storage: invalid key undefined: it is not a string'],
    ];
    for (const [key, rule, message] of invalid) {
      it(`rejects ${JSON.stringify(key) ?? String(key)} (${rule}) with an exact message`, () => {
        const error = thrown(() => checkKey(key));
        expect(error.rule).to.equal(rule);
        expect(error.key).to.equal(key);
        expect(error.name).to.equal('InvalidKeyError');
        expect(error.message).to.equal(message + HOW);
        expect(keyProblem(key)).to.equal(rule);
      });
    }

    it('rejects more than 1024 bytes of UTF-8, counting bytes not characters, and cuts the key in the message', () => {
      const ascii = thrown(() => checkKey('x'.repeat(1025), 'S3Storage s3://cdc'));
      expect(ascii.rule).to.equal('too-long');
      expect(ascii.message).to.equal(`S3Storage s3://cdc: invalid key "${'x'.repeat(120)}…": it is 1025 bytes in UTF-8, more than the 1024 allowed${HOW}`);
      const accents = thrown(() => checkKey(`${'é'.repeat(512)}x`));
      expect(accents.message).to.equal(`storage: invalid key "${'é'.repeat(120)}…": it is 1025 bytes in UTF-8, more than the 1024 allowed${HOW}`);
      expect(thrown(() => checkKey('🦀'.repeat(257))).rule).to.equal('too-long'); // 514 UTF-16 units, 1028 bytes
      expect(checkKey('🦀'.repeat(256))).to.have.length(512);
    });

    it('names the owner given', () => {
      expect(thrown(() => checkKey('a//b', 'FileStorage file:///srv/x')).message).to.match(/^FileStorage file:\/\/\/srv\/x: invalid key "a\/\/b"/);
    });

    it('a key that passes never climbs out of a folder when joined as a path', () => {
      fc.assert(
        fc.property(fc.array(fc.constantFrom('a', '.', '..', '', '/', '\\', 'é', '\n', '.a', 'a.'), { maxLength: 12 }), (parts) => {
          const key = parts.join('');
          if (keyProblem(key) !== undefined) return;
          const segments = key.split('/');
          expect(segments.every((segment) => segment !== '' && segment !== '.' && segment !== '..' && !segment.includes('\\'))).to.equal(true);
        }),
        { numRuns: 500 },
      );
    });
  });

  describe('checkPrefix', () => {
    it("accepts '', keys, folder prefixes ending in '/' and prefixes ending mid-name", () => {
      for (const prefix of ['', 'a', 'a/', 'orders/2024-0', 'données/表/', '.x/']) expect(checkPrefix(prefix)).to.equal(prefix);
    });

    const invalid: [unknown, string, string][] = [
      ['/', 'leading-slash', `storage: invalid key "/": it starts with '/' (keys are relative to the storage root)`],
      ['a//', 'empty-segment', `storage: invalid key "a//": it has an empty segment ('//')`],
      ['../', 'dot-segment', `storage: invalid key "../": it has a '..' segment`],
      ['a/./', 'dot-segment', `storage: invalid key "a/./": it has a '.' segment`],
      ['a/..', 'dot-segment', `storage: invalid key "a/..": it has a '..' segment`],
      ['a\\', 'backslash', `storage: invalid key "a\\\\": it contains a backslash (use '/' between segments)`],
      ['a\t/', 'control-character', 'storage: invalid key "a\\t/": it contains the control character U+0009 at index 1'],
      [7, 'not-a-string', 'storage: invalid key of type number: it is not a string'],
    ];
    for (const [prefix, rule, message] of invalid) {
      it(`rejects the prefix ${JSON.stringify(prefix)} (${rule})`, () => {
        const error = thrown(() => checkPrefix(prefix));
        expect(error.rule).to.equal(rule);
        expect(error.message).to.equal(message + HOW);
      });
    }

    it('rejects a folder prefix no key can fit under', () => {
      const prefix = `${'x'.repeat(1023)}/`;
      const error = thrown(() => checkPrefix(prefix));
      expect(error.rule).to.equal('too-long');
      expect(error.message).to.equal(`storage: invalid key "${'x'.repeat(120)}…": it is 1024 bytes in UTF-8, so no key under it fits in 1024${HOW}`);
      expect(checkPrefix(`${'x'.repeat(1022)}/`)).to.have.length(1023);
    });
  });

  describe('joinKey', () => {
    it("puts a key under a prefix with one '/', and leaves it alone under ''", () => {
      expect(joinKey('', 'a/b.csv')).to.equal('a/b.csv');
      expect(joinKey('tenant', 'a/b.csv')).to.equal('tenant/a/b.csv');
      expect(joinKey('tenant/', 'a/b.csv')).to.equal('tenant/a/b.csv');
      expect(joinKey('t/1', '')).to.equal('t/1/');
      expect(joinKey('', '')).to.equal('');
      expect(joinKey('t', 'orders/20')).to.equal('t/orders/20');
    });

    it('rejects a joined key over 1024 bytes, naming it and the prefix', () => {
      const error = thrown(() => joinKey('tenant', 'k'.repeat(1018), 'S3Storage'));
      expect(error.rule).to.equal('too-long');
      expect(error.key).to.equal(`tenant/${'k'.repeat(1018)}`);
      expect(error.message).to.equal(
        `S3Storage: invalid key "tenant/${'k'.repeat(113)}…": it is 1025 bytes in UTF-8 with the storage prefix "tenant", more than the 1024 allowed${HOW}`,
      );
      expect(joinKey('tenant', 'k'.repeat(1017))).to.have.length(1024);
    });
  });

  describe('compareKeys', () => {
    it('orders by UTF-8 bytes, unlike JavaScript string order above U+FFFF', () => {
      const keys = ['\u{1F600}', '\uFF61', 'z', 'a/b', 'a-b', 'a0', 'é', ''];
      expect([...keys].sort(compareKeys)).to.deep.equal(['', 'a-b', 'a/b', 'a0', 'z', 'é', '\uFF61', '\u{1F600}']);
      expect(['\u{1F600}', '\uFF61'].sort()).to.deep.equal(['\u{1F600}', '\uFF61']); // what plain sort would do
      expect(compareKeys('a', 'a')).to.equal(0);
      expect(compareKeys('a', 'ab')).to.be.below(0);
      expect(compareKeys('ab', 'a')).to.be.above(0);
    });

    it('agrees with Buffer.compare of the UTF-8 bytes for any strings', () => {
      fc.assert(
        fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), (a, b) => {
          expect(Math.sign(compareKeys(a, b))).to.equal(Buffer.compare(Buffer.from(a), Buffer.from(b)));
        }),
        { numRuns: 1000 },
      );
      fc.assert(
        fc.property(fc.string({ unit: fc.constantFrom('a', '\uE000', '\uFFFF', '\u{10000}', '\u{1F600}', '\u{10FFFF}', '/') }), fc.string({ unit: fc.constantFrom('a', '\uE000', '\uFFFF', '\u{10000}', '\u{1F600}', '/') }), (a, b) => {
          expect(Math.sign(compareKeys(a, b))).to.equal(Buffer.compare(Buffer.from(a), Buffer.from(b)));
        }),
        { numRuns: 1000 },
      );
    });
  });
});
