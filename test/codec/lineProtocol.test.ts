import { expect } from 'chai';
import fc from 'fast-check';
import {
  escapeKey,
  escapeMeasurement,
  escapeTagValue,
  formatFieldValue,
  formatTimestamp,
  lineConverter,
  LineProtocolError,
  Point,
  quoteFieldString,
} from '../../lib/codec/index.ts';

const refused = (fn: () => unknown, pattern: RegExp) => {
  expect(fn).to.throw(LineProtocolError, pattern);
};

describe('line protocol codec', () => {
  describe('escaping', () => {
    it('escapes commas and spaces in measurements, and nothing else', () => {
      expect(escapeMeasurement('cpu load,avg')).to.equal('cpu\\ load\\,avg');
      expect(escapeMeasurement('a=b"c\\d')).to.equal('a=b"c\\d');
      expect(escapeMeasurement('plain')).to.equal('plain');
    });

    it('escapes commas, equals signs and spaces in keys and tag values', () => {
      expect(escapeKey('a b,c=d', 'tag key')).to.equal('a\\ b\\,c\\=d');
      expect(escapeTagValue('x=1, y', 'tag "t"')).to.equal('x\\=1\\,\\ y');
      expect(escapeTagValue('quote"s\\ok', 'tag "t"')).to.equal('quote"s\\ok');
    });

    it('quotes string fields, escaping double quotes and backslashes only', () => {
      expect(quoteFieldString('say "hi" \\ a,b=c d\nnext')).to.equal('"say \\"hi\\" \\\\ a,b=c d\nnext"');
    });

    it('refuses names the server cannot carry, naming them', () => {
      refused(() => escapeMeasurement(''), /measurement name must be a non-empty string/);
      refused(() => escapeMeasurement('#comment'), /starts with '#'/);
      refused(() => escapeMeasurement('a\nb'), /control character/);
      refused(() => escapeKey('time', 'field key'), /field key "time" is reserved/);
      refused(() => escapeKey('a\tb', 'tag key'), /tag key "a\\tb" contains a control character/);
      refused(() => escapeTagValue('a\nb', 'tag "host"'), /tag "host" value "a\\nb" contains a line break/);
      refused(() => escapeTagValue('ends\\', 'tag "host"'), /backslash at the end/);
      refused(() => escapeKey('a\\ b', 'field key'), /backslash before " "/);
      refused(() => escapeMeasurement('a\\\\,b'), /backslash before ","/);
    });

    it('keeps backslashes that are followed by a plain character', () => {
      expect(escapeTagValue('C:\\temp\\\\x', 'tag')).to.equal('C:\\temp\\\\x');
      expect(escapeMeasurement('a\\b c')).to.equal('a\\b\\ c');
    });
  });

  describe('field values', () => {
    it('writes floats, integers (i), booleans and strings', () => {
      expect(formatFieldValue(1.5, 'f')).to.equal('1.5');
      expect(formatFieldValue(3, 'f')).to.equal('3');
      expect(formatFieldValue(1e21, 'f')).to.equal('1e+21');
      expect(formatFieldValue(3, 'f', 'integer')).to.equal('3i');
      expect(formatFieldValue(-(2n ** 63n), 'f')).to.equal('-9223372036854775808i');
      expect(formatFieldValue(2 ** 60, 'f', 'integer')).to.equal('1152921504606846976i');
      expect(formatFieldValue(true, 'f')).to.equal('true');
      expect(formatFieldValue(false, 'f')).to.equal('false');
      expect(formatFieldValue('x', 'f')).to.equal('"x"');
    });

    it('refuses NaN, Infinity, fractions declared integer, int64 overflow and wrong types, naming the field', () => {
      refused(() => formatFieldValue(NaN, 'field "load"'), /field "load" is NaN/);
      refused(() => formatFieldValue(-Infinity, 'field "load"'), /field "load" is -Infinity/);
      refused(() => formatFieldValue(1.5, 'field "n"', 'integer'), /field "n" is 1.5, not an integer/);
      refused(() => formatFieldValue(2n ** 63n, 'field "n"'), /outside the int64 range/);
      refused(() => formatFieldValue('1', 'field "n"', 'integer'), /declared integer but got "1"/);
      refused(() => formatFieldValue({} as never, 'field "o"'), /must be a number, bigint, boolean or string/);
    });
  });

  describe('timestamps', () => {
    it('writes integers as given and converts Dates to the precision', () => {
      const date = new Date(Date.UTC(2024, 0, 1, 0, 0, 1, 500));
      expect(formatTimestamp(date, 'ms')).to.equal('1704067201500');
      expect(formatTimestamp(date, 's')).to.equal('1704067201');
      expect(formatTimestamp(date, 'us')).to.equal('1704067201500000');
      expect(formatTimestamp(date, 'ns')).to.equal('1704067201500000000');
      expect(formatTimestamp(1704067201500000000n, 'ns')).to.equal('1704067201500000000');
      expect(formatTimestamp(-5, 's')).to.equal('-5');
    });

    it('refuses fractions, unsafe numbers and invalid dates', () => {
      refused(() => formatTimestamp(1.5, 'ms'), /not a safe integer/);
      refused(() => formatTimestamp(2 ** 60, 'ns'), /use a bigint/);
      refused(() => formatTimestamp(new Date(NaN), 'ms'), /invalid Date/);
    });
  });

  describe('lineConverter (direct)', () => {
    interface Reading {
      host?: string;
      region: string;
      load: number;
      procs: number;
      up: boolean;
      note?: string;
      at: number;
    }
    const toLine = lineConverter<Reading>({
      measurement: 'cpu stats',
      tags: { region: (r) => r.region, host: (r) => r.host },
      fields: { load: (r) => r.load, procs: { type: 'integer', get: (r) => r.procs }, up: (r) => r.up, note: (r) => r.note },
      timestamp: (r) => r.at,
      precision: 's',
    });

    it('writes tags sorted by key, fields in order, the timestamp last', () => {
      expect(toLine({ host: 'a b', region: 'eu,west', load: 0.5, procs: 12, up: true, note: 'x "y"', at: 1700000000 })).to.equal(
        'cpu\\ stats,host=a\\ b,region=eu\\,west load=0.5,procs=12i,up=true,note="x \\"y\\"" 1700000000',
      );
    });

    it('leaves out empty tags and absent fields', () => {
      expect(toLine({ host: '', region: 'eu', load: 1, procs: 1, up: false, at: 1 })).to.equal('cpu\\ stats,region=eu load=1,procs=1i,up=false 1');
    });

    it('names the field of a bad value', () => {
      refused(() => toLine({ region: 'eu', load: NaN, procs: 1, up: true, at: 1 }), /field "load" is NaN/);
      refused(() => toLine({ region: 'eu', load: 1, procs: 1.25, up: true, at: 1 }), /field "procs" is 1.25/);
    });

    it('refuses a record without field values and bad converter definitions', () => {
      const onlyNote = lineConverter<{ note?: string }>({ measurement: 'm', fields: { note: (r) => r.note } });
      refused(() => onlyNote({}), /no field values/);
      refused(() => lineConverter({ measurement: 'm', fields: {} }), /at least one field/);
      refused(() => lineConverter({ measurement: 'm', tags: { k: () => 'v' }, fields: { k: () => 1 } }), /both a tag and a field/);
      refused(() => lineConverter({ measurement: '#m', fields: { f: () => 1 } }), /starts with '#'/);
      refused(() => lineConverter({ measurement: 'm', fields: { time: () => 1 } }), /reserved/);
    });

    it('reads the measurement from the record when given a function', () => {
      const byKind = lineConverter<{ kind: string; v: number }>({ measurement: (r) => r.kind, fields: { v: (r) => r.v } });
      expect(byKind({ kind: 'disk io', v: 2 })).to.equal('disk\\ io v=2');
      refused(() => byKind({ kind: '', v: 2 }), /non-empty/);
    });
  });

  describe('Point', () => {
    it('builds the same line as the direct converter', () => {
      const line = new Point('cpu').tag('z', '1').tag('a', 'x y').floatField('load', 0.5).intField('procs', 12n).booleanField('up', true).stringField('s', 'q"').timestamp(99).toLineProtocol('ms');
      expect(line).to.equal('cpu,a=x\\ y,z=1 load=0.5,procs=12i,up=true,s="q\\"" 99');
    });

    it('refuses bad values where they are set', () => {
      refused(() => new Point('m').floatField('f', NaN), /field "f" is NaN/);
      refused(() => new Point('m').tag('k', 'a\\'), /backslash at the end/);
      refused(() => new Point('m').toLineProtocol(), /has no fields/);
      refused(() => new Point(''), /non-empty/);
    });

    it('agrees with lineConverter on arbitrary records (property)', () => {
      const name = fc.string({ minLength: 1, maxLength: 8, unit: fc.constantFrom('a', 'b', ' ', ',', '=', '"', 'é', '😀', 'x') });
      const record = fc.record({
        measurement: name.filter((n) => !n.startsWith('#')),
        tag: fc.string({ maxLength: 8, unit: fc.constantFrom('a', ' ', ',', '=', '"', '\\x', 'ß') }),
        float: fc.double({ noNaN: true, noDefaultInfinity: true }),
        int: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
        text: fc.string({ maxLength: 12 }),
        flag: fc.boolean(),
        at: fc.integer({ min: 0, max: 2 ** 40 }),
      });
      const direct = lineConverter<{ measurement: string; tag: string; float: number; int: bigint; text: string; flag: boolean; at: number }>({
        measurement: (r) => r.measurement,
        tags: { 't a,g': (r) => r.tag },
        fields: { 'f=1': (r) => r.float, i: (r) => r.int, s: (r) => r.text, b: (r) => r.flag },
        timestamp: (r) => r.at,
        precision: 'us',
      });
      fc.assert(
        fc.property(record, (r) => {
          const point = new Point(r.measurement);
          if (r.tag !== '') point.tag('t a,g', r.tag);
          point.floatField('f=1', r.float).intField('i', r.int).stringField('s', r.text).booleanField('b', r.flag).timestamp(r.at);
          expect(point.toLineProtocol('us')).to.equal(direct(r));
        }),
        { numRuns: 300 },
      );
    });
  });
});
