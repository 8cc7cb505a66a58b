import { expect } from 'chai';
import fc from 'fast-check';
import { easyJsonString, goJsonString, JsonNumber, JsonSyntaxError, parseJson, type JsonValue } from '../../lib/codec/json.ts';
import { formatGoFloatFixed, formatGoFloatV } from '../../lib/codec/columnValue.ts';

/** The parsed value in plain JS form (Maps as objects, numbers as their text) for comparison. */
function plain(value: JsonValue): unknown {
  if (value instanceof JsonNumber) return `#${value.text}`;
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [k, plain(v)]));
  if (Array.isArray(value)) return value.map(plain);
  return value;
}

describe('JSON helpers', () => {
  describe('parseJson', () => {
    it('keeps numbers as their text and key order', () => {
      const parsed = parseJson(' {"b":18446744073709551615,"a":[1.5e-7,-0,true,null,"x\\u00e9\\ud83d\\ude00\\n"]} ');
      expect(plain(parsed)).to.deep.equal({ b: '#18446744073709551615', a: ['#1.5e-7', '#-0', true, null, 'xé😀\n'] });
      expect([...(parsed as Map<string, JsonValue>).keys()]).to.deep.equal(['b', 'a']);
    });

    it('refuses what JSON does not allow, saying where', () => {
      const refuses = (text: string, message: string) => expect(() => parseJson(text)).to.throw(JsonSyntaxError, message);
      refuses('{"a":1,"a":2}', 'duplicate key "a" at offset 7');
      refuses('[01]', "expected ',' or ']' at offset 2");
      refuses('"a\nb"', 'control character in string at offset 2');
      refuses('"\\x"', 'bad escape at offset 1');
      refuses('{"a":1} x', 'trailing characters at offset 8');
      refuses('[1,]', 'unexpected "]" at offset 3');
      refuses('[', 'unexpected end at offset 1');
      refuses('"abc', 'unterminated string at offset 4');
      refuses('['.repeat(100), 'nesting deeper than 64 at offset 65');
    });

    it('property: parses what JSON.stringify writes to the same value', () => {
      fc.assert(
        fc.property(fc.jsonValue(), (value) => {
          const reparsed = JSON.parse(JSON.stringify(plainToJson(parseJson(JSON.stringify(value)))));
          expect(reparsed).to.deep.equal(JSON.parse(JSON.stringify(value)));
        }),
        { numRuns: 200 },
      );
    });
  });

  describe('Go string escaping', () => {
    it("goJsonString escapes as Go's encoding/json: \\b \\f short, HTML characters and U+2028/9 as \\u", () => {
      expect(goJsonString('a<b>&"c"\\\b\f\n\r\t\u0001\u001f\u007f\u2028\u2029é😀')).to.equal(
        '"a\\u003cb\\u003e\\u0026\\"c\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\u007f\\u2028\\u2029é😀"',
      );
    });

    it('easyJsonString escapes as easyjson (canal-json): \\b and \\f as \\u0008 and \\u000c', () => {
      expect(easyJsonString('<\b\f\n"')).to.equal('"\\u003c\\u0008\\u000c\\n\\""');
    });

    it('property: both escapes parse back to the string (any UTF-16 units, lone surrogates too)', () => {
      fc.assert(
        fc.property(fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code)), maxLength: 20 }), (s) => {
          expect(JSON.parse(goJsonString(s))).to.equal(s);
          expect(JSON.parse(easyJsonString(s))).to.equal(s);
        }),
        { numRuns: 200 },
      );
    });
  });

  describe('Go float formatting', () => {
    it("formatGoFloatV prints as fmt's %v (strconv 'g', shortest, exponent when < -4 or >= 6)", () => {
      const cases: [number, string][] = [
        [0, '0'], [-0, '-0'], [1, '1'], [999999, '999999'], [1234567, '1.234567e+06'], [1e6, '1e+06'],
        [0.0001, '0.0001'], [0.00001, '1e-05'], [1.5e-7, '1.5e-07'], [1e21, '1e+21'], [1e100, '1e+100'],
        [608863452348.1149, '6.088634523481149e+11'], [-2.5, '-2.5'], [5e-324, '5e-324'], [0.1 + 0.2, '0.30000000000000004'],
      ];
      for (const [x, expected] of cases) expect(formatGoFloatV(x, false), String(x)).to.equal(expected);
    });

    it('uses the shortest float32 digits for FLOAT', () => {
      expect(formatGoFloatV(Math.fround(3.14), true)).to.equal('3.14');
      expect(formatGoFloatV(Math.fround(0.1), true)).to.equal('0.1');
      expect(formatGoFloatV(Math.fround(16777217), true)).to.equal('1.6777216e+07');
      expect(formatGoFloatV(Math.fround(3.4028234663852886e38), true)).to.equal('3.4028235e+38');
      expect(formatGoFloatV(Math.fround(1e-45), true)).to.equal('1e-45');
    });

    it("formatGoFloatFixed prints as strconv.FormatFloat(x, 'f', -1): never an exponent", () => {
      expect(formatGoFloatFixed(1e21, false)).to.equal('1000000000000000000000');
      expect(formatGoFloatFixed(1.5e-7, false)).to.equal('0.00000015');
      expect(formatGoFloatFixed(-123.456, false)).to.equal('-123.456');
      expect(formatGoFloatFixed(Math.fround(3.14), true)).to.equal('3.14');
      expect(formatGoFloatFixed(Math.fround(1e10), true)).to.equal('10000000000');
    });

    it('property: both forms read back to the same double (float32 for FLOAT)', () => {
      fc.assert(
        fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.float({ noNaN: true, noDefaultInfinity: true }), (d, f) => {
          expect(Object.is(Number(formatGoFloatV(d, false)), d)).to.equal(true);
          expect(Object.is(Number(formatGoFloatFixed(d, false)), d)).to.equal(true);
          expect(Object.is(Math.fround(Number(formatGoFloatV(f, true))), f)).to.equal(true);
          expect(Object.is(Math.fround(Number(formatGoFloatFixed(f, true))), f)).to.equal(true);
        }),
        { numRuns: 300 },
      );
    });
  });
});

function plainToJson(value: JsonValue): unknown {
  if (value instanceof JsonNumber) return Number(value.text);
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [k, plainToJson(v)]));
  if (Array.isArray(value)) return value.map(plainToJson);
  return value;
}
