/**
 * JSON helpers the codecs share: a strict parser that keeps numbers as their source text (TiDB's
 * uint64 timestamps do not fit a double), and string escapers byte-compatible with the two Go JSON
 * writers TiCDC uses (encoding/json for schema files, easyjson for canal-json).
 *
 * Invariant guarded here: no number is ever rounded on the way in, no duplicate key is silently
 * dropped, and an escaped string is exactly what the Go writer would have produced for it.
 */

/** A JSON number kept as its source text. */
export class JsonNumber {
  readonly text: string;

  constructor(text: string) {
    this.text = text;
  }
}

/** A parsed JSON value; objects are Maps (key order kept, no prototype keys). */
export type JsonValue = string | boolean | null | JsonNumber | JsonValue[] | JsonObject;
export type JsonObject = Map<string, JsonValue>;

/** Malformed JSON; `offset` is the UTF-16 index where parsing stopped. */
export class JsonSyntaxError extends Error {
  override readonly name = 'JsonSyntaxError';
  readonly offset: number;

  constructor(problem: string, offset: number) {
    super(`${problem} at offset ${offset}`);
    this.offset = offset;
  }
}

const WHITESPACE = /[ \t\n\r]*/y;
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const PLAIN_CHARS = /[^"\\\u0000-\u001f]*/y;
const ESCAPES: Readonly<Record<string, string>> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
const MAX_DEPTH = 64;

/** Parses one JSON document strictly (RFC 8259); throws `JsonSyntaxError`. */
export function parseJson(text: string): JsonValue {
  let pos = 0;

  const skipWhitespace = () => {
    WHITESPACE.lastIndex = pos;
    WHITESPACE.test(text);
    pos = WHITESPACE.lastIndex;
  };

  const parseString = (): string => {
    pos++; // opening quote
    let out = '';
    for (;;) {
      PLAIN_CHARS.lastIndex = pos;
      PLAIN_CHARS.test(text);
      out += text.slice(pos, PLAIN_CHARS.lastIndex);
      pos = PLAIN_CHARS.lastIndex;
      const c = text[pos];
      if (c === '"') {
        pos++;
        return out;
      }
      if (c === undefined) throw new JsonSyntaxError('unterminated string', pos);
      if (c !== '\\') throw new JsonSyntaxError('control character in string', pos);
      const e = text[pos + 1];
      if (e === 'u') {
        const hex = text.slice(pos + 2, pos + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) throw new JsonSyntaxError('bad \\u escape', pos);
        out += String.fromCharCode(parseInt(hex, 16));
        pos += 6;
      } else if (e !== undefined && Object.hasOwn(ESCAPES, e)) {
        out += ESCAPES[e];
        pos += 2;
      } else {
        throw new JsonSyntaxError('bad escape', pos);
      }
    }
  };

  const parseValue = (depth: number): JsonValue => {
    if (depth > MAX_DEPTH) throw new JsonSyntaxError(`nesting deeper than ${MAX_DEPTH}`, pos);
    skipWhitespace();
    const c = text[pos];
    if (c === '"') return parseString();
    if (c === '{') {
      pos++;
      const object: JsonObject = new Map();
      skipWhitespace();
      if (text[pos] === '}') {
        pos++;
        return object;
      }
      for (;;) {
        skipWhitespace();
        if (text[pos] !== '"') throw new JsonSyntaxError('expected a key', pos);
        const keyAt = pos;
        const key = parseString();
        if (object.has(key)) throw new JsonSyntaxError(`duplicate key ${JSON.stringify(key)}`, keyAt);
        skipWhitespace();
        if (text[pos] !== ':') throw new JsonSyntaxError("expected ':'", pos);
        pos++;
        object.set(key, parseValue(depth + 1));
        skipWhitespace();
        if (text[pos] === ',') {
          pos++;
          continue;
        }
        if (text[pos] === '}') {
          pos++;
          return object;
        }
        throw new JsonSyntaxError("expected ',' or '}'", pos);
      }
    }
    if (c === '[') {
      pos++;
      const array: JsonValue[] = [];
      skipWhitespace();
      if (text[pos] === ']') {
        pos++;
        return array;
      }
      for (;;) {
        array.push(parseValue(depth + 1));
        skipWhitespace();
        if (text[pos] === ',') {
          pos++;
          continue;
        }
        if (text[pos] === ']') {
          pos++;
          return array;
        }
        throw new JsonSyntaxError("expected ',' or ']'", pos);
      }
    }
    for (const [word, value] of [['true', true], ['false', false], ['null', null]] as const) {
      if (text.startsWith(word, pos)) {
        pos += word.length;
        return value;
      }
    }
    NUMBER.lastIndex = pos;
    if (NUMBER.test(text)) {
      const number = new JsonNumber(text.slice(pos, NUMBER.lastIndex));
      pos = NUMBER.lastIndex;
      return number;
    }
    throw new JsonSyntaxError(c === undefined ? 'unexpected end' : `unexpected ${JSON.stringify(c)}`, pos);
  };

  const value = parseValue(0);
  skipWhitespace();
  if (pos !== text.length) throw new JsonSyntaxError('trailing characters', pos);
  return value;
}

const HEX = '0123456789abcdef';

function unicodeEscape(code: number): string {
  return `\\u${HEX[(code >> 12) & 15]}${HEX[(code >> 8) & 15]}${HEX[(code >> 4) & 15]}${HEX[code & 15]}`;
}

// Characters Go's encoding/json escapes: controls, quote, backslash, the HTML three, U+2028/U+2029.
const GO_ESCAPED = /["\\\u0000-\u001f<>&\u2028\u2029]/g;
const GO_SHORT: Readonly<Record<string, string>> = { '"': '\\"', '\\': '\\\\', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t' };
// easyjson (canal-json) has no short forms for \b and \f.
const EASYJSON_SHORT: Readonly<Record<string, string>> = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * A JSON string literal as Go's encoding/json (Go >= 1.22) writes it: `\b \f \n \r \t \" \\`, other
 * controls as `\u00xx`, and `<`, `>`, `&`, U+2028, U+2029 as `\u003c`... (HTML-safe escaping).
 */
export function goJsonString(value: string): string {
  return `"${value.replace(GO_ESCAPED, (c) => GO_SHORT[c] ?? unicodeEscape(c.charCodeAt(0)))}"`;
}

/** A JSON string literal as easyjson's jwriter writes it (TiCDC's canal-json): `\b`, `\f` as `\u0008`, `\u000c`. */
export function easyJsonString(value: string): string {
  return `"${value.replace(GO_ESCAPED, (c) => EASYJSON_SHORT[c] ?? unicodeEscape(c.charCodeAt(0)))}"`;
}

/** Describes a parsed value's JSON type for error messages. */
export function jsonTypeOf(value: JsonValue | undefined): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  if (value instanceof JsonNumber) return 'a number';
  if (value instanceof Map) return 'an object';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'string' ? 'a string' : 'a boolean';
}
