/**
 * InfluxDB 1.x / OpenGemini line protocol: `measurement[,tag=value...] field=value[,field=value...] [timestamp]`.
 *
 * Two ways to a line, with the same escaping and checks: `lineConverter` builds a direct converter
 * from tag, field and timestamp extractors (keys escaped and sorted once, no intermediate objects per
 * record), and `Point` is a builder with `toLineProtocol()` for code that assembles points by hand.
 *
 * Invariant guarded here: a line either reads back on the server exactly as given (every name and
 * value byte for byte, every field with the type it was given), or it is refused here with an error
 * naming the measurement, the tag or field and what is wrong. Nothing is silently dropped or mangled:
 * inputs the 1.x parser cannot represent (a measurement starting with '#', which it takes for a
 * comment; a backslash right before a character that must be escaped, or at the end of a name; keys
 * named `time`; NaN and Infinity; integers outside int64) are rejected.
 */

/** Timestamp unit of a write (`precision` of POST /write). */
export type Precision = 'ns' | 'us' | 'ms' | 's';

export const PRECISIONS: readonly Precision[] = ['ns', 'us', 'ms', 's'];

/** The `precision` query parameter InfluxDB 1.x takes for each unit. */
export const PRECISION_PARAM: Readonly<Record<Precision, string>> = { ns: 'ns', us: 'u', ms: 'ms', s: 's' };

/** How a field is written: float (bare number), integer (`i` suffix), boolean (`true`/`false`), string (quoted). */
export type FieldType = 'float' | 'integer' | 'boolean' | 'string';

/** A field's value; a number is a float unless the field is declared `integer`, a bigint is an integer. */
export type FieldValue = number | bigint | boolean | string;

/** A timestamp in the write's precision (number or bigint), or a Date (converted to that precision). */
export type Timestamp = number | bigint | Date;

/** A record, name or value that cannot be written as line protocol; says which one and why. */
export class LineProtocolError extends Error {
  override readonly name = 'LineProtocolError';
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
// Control characters (C0, DEL, C1) have no place in names; newlines would end the line.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const LINE_BREAK = /[\n\r]/;

/** Characters escaped with a backslash in each part of a line. */
const MEASUREMENT_SPECIAL = /[, ]/g;
const KEY_SPECIAL = /[,= ]/g;
const MEASUREMENT_CHECK = /[, \\]/;
const KEY_CHECK = /[,= \\]/;
const STRING_SPECIAL = /["\\]/g;

function quote(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 77)}...` : text);
}

/**
 * The 1.x parser reads a backslash followed by an escaped character as an escape sequence, whatever
 * precedes it, so a literal backslash there (or at the end, where our escape of the separator would
 * follow) cannot be written.
 */
function checkBackslashes(text: string, special: RegExp, what: string): void {
  for (let index = text.indexOf('\\'); index !== -1; index = text.indexOf('\\', index)) {
    let end = index;
    while (text[end] === '\\') end++;
    const after = text[end];
    if (after === undefined || special.test(after)) {
      const where = after === undefined ? 'at the end' : `before ${quote(after)}`;
      throw new LineProtocolError(
        `${what} ${quote(text)} has a backslash ${where}, which line protocol 1.x cannot carry (the server would read it as an escape)`,
      );
    }
    index = end;
  }
}

/** Escapes a measurement name (commas and spaces); refuses empty names, control characters and a leading '#'. */
export function escapeMeasurement(name: string): string {
  if (typeof name !== 'string' || name === '') throw new LineProtocolError(`measurement name must be a non-empty string, got ${describe(name)}`);
  if (!MEASUREMENT_CHECK.test(name) && !CONTROL.test(name) && name.charCodeAt(0) !== 35) return name;
  if (CONTROL.test(name)) throw new LineProtocolError(`measurement ${quote(name)} contains a control character or line break`);
  if (name.startsWith('#')) throw new LineProtocolError(`measurement ${quote(name)} starts with '#', which the server reads as a comment line`);
  checkBackslashes(name, /[, ]/, 'measurement');
  return name.replace(MEASUREMENT_SPECIAL, '\\$&');
}

/** Escapes a tag key or field key (commas, equals signs, spaces); refuses empty keys, control characters and `time`. */
export function escapeKey(key: string, what: string): string {
  if (typeof key !== 'string' || key === '') throw new LineProtocolError(`${what} must be a non-empty string, got ${describe(key)}`);
  if (key === 'time') throw new LineProtocolError(`${what} "time" is reserved by the server (it would drop the point)`);
  if (!KEY_CHECK.test(key) && !CONTROL.test(key)) return key;
  if (CONTROL.test(key)) throw new LineProtocolError(`${what} ${quote(key)} contains a control character or line break`);
  checkBackslashes(key, /[,= ]/, what);
  return key.replace(KEY_SPECIAL, '\\$&');
}

/** Escapes a tag value (commas, equals signs, spaces); refuses line breaks. Empty values are the caller's to skip. */
export function escapeTagValue(value: string, what: string): string {
  if (!KEY_CHECK.test(value) && !LINE_BREAK.test(value)) return value;
  if (LINE_BREAK.test(value)) throw new LineProtocolError(`${what} value ${quote(value)} contains a line break`);
  checkBackslashes(value, /[,= ]/, `${what} value`);
  return value.replace(KEY_SPECIAL, '\\$&');
}

/** Quotes a string field value, escaping double quotes and backslashes (any other character is kept). */
export function quoteFieldString(value: string): string {
  return `"${value.replace(STRING_SPECIAL, '\\$&')}"`;
}

/**
 * Formats a field value: the type is `declared` when given, else taken from the value (number ->
 * float, bigint -> integer). NaN, ±Infinity and integers outside int64 are refused, naming `what`.
 */
export function formatFieldValue(value: FieldValue, what: string, declared?: FieldType): string {
  const type = declared ?? inferType(value, what);
  switch (type) {
    case 'float':
      if (typeof value === 'number') {
        if (!Number.isFinite(value)) throw new LineProtocolError(`${what} is ${value}; line protocol has no NaN or Infinity`);
        return String(value);
      }
      break;
    case 'integer':
      if (typeof value === 'bigint') {
        if (value < INT64_MIN || value > INT64_MAX) throw new LineProtocolError(`${what} is ${value}, outside the int64 range`);
        return `${value}i`;
      }
      if (typeof value === 'number') {
        if (!Number.isFinite(value)) throw new LineProtocolError(`${what} is ${value}; line protocol has no NaN or Infinity`);
        if (!Number.isInteger(value)) throw new LineProtocolError(`${what} is ${value}, not an integer (declared integer)`);
        if (Number.isSafeInteger(value)) return `${value}i`;
        return formatFieldValue(BigInt(value), what, 'integer');
      }
      break;
    case 'boolean':
      if (typeof value === 'boolean') return value ? 'true' : 'false';
      break;
    case 'string':
      if (typeof value === 'string') return quoteFieldString(value);
      break;
  }
  throw new LineProtocolError(`${what} is declared ${type} but got ${describe(value)}`);
}

function inferType(value: unknown, what: string): FieldType {
  switch (typeof value) {
    case 'number':
      return 'float';
    case 'bigint':
      return 'integer';
    case 'boolean':
      return 'boolean';
    case 'string':
      return 'string';
    default:
      throw new LineProtocolError(`${what} must be a number, bigint, boolean or string, got ${describe(value)}`);
  }
}

const DATE_FACTOR: Readonly<Record<Precision, bigint>> = { ns: 1_000_000n, us: 1000n, ms: 1n, s: 1n };

/** Formats a timestamp in `precision`: integers as they are, a Date converted (truncated for `s`). */
export function formatTimestamp(timestamp: Timestamp, precision: Precision, what = 'timestamp'): string {
  if (typeof timestamp === 'number') {
    if (!Number.isSafeInteger(timestamp)) {
      throw new LineProtocolError(`${what} ${timestamp} is not a safe integer in ${precision} (use a bigint for large ns values)`);
    }
    return String(timestamp);
  }
  if (typeof timestamp === 'bigint') {
    if (timestamp < INT64_MIN || timestamp > INT64_MAX) throw new LineProtocolError(`${what} ${timestamp} is outside the int64 range`);
    return String(timestamp);
  }
  if (timestamp instanceof Date) {
    const ms = timestamp.getTime();
    if (!Number.isFinite(ms)) throw new LineProtocolError(`${what} is an invalid Date`);
    if (precision === 's') return String(Math.floor(ms / 1000));
    if (precision === 'ms') return String(ms);
    return String(BigInt(ms) * DATE_FACTOR[precision]);
  }
  throw new LineProtocolError(`${what} must be an integer (number or bigint) or a Date, got ${describe(timestamp)}`);
}

/** Sorts like the server does: by the key's UTF-8 bytes (JS compares UTF-16 units, which differ above U+FFFF). */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Reads a field from a record; null or undefined leaves the field out of that line. */
export type FieldExtractor<T> =
  | ((record: T) => FieldValue | null | undefined)
  | { readonly type: FieldType; readonly get: (record: T) => FieldValue | null | undefined };

/** Reads a tag value from a record; null, undefined or '' leaves the tag out of that line. */
export type TagExtractor<T> = (record: T) => string | number | boolean | bigint | null | undefined;

export interface LineConverterOptions<T> {
  /** The measurement: a fixed name, or read from each record. */
  measurement: string | ((record: T) => string);
  /** Tag key -> extractor; written sorted by key. */
  tags?: Readonly<Record<string, TagExtractor<T>>>;
  /** Field key -> extractor (a function, or `{ type, get }` to fix the type: `integer` for whole numbers). At least one. */
  fields: Readonly<Record<string, FieldExtractor<T>>>;
  /** The point's time in `precision` (or a Date); absent or undefined lets the server stamp it. */
  timestamp?: (record: T) => Timestamp | undefined;
  /** Unit of the timestamps. Default 'ms'. */
  precision?: Precision;
}

interface CompiledTag<T> {
  readonly key: string;
  /** `,escapedKey=` */
  readonly prefix: string;
  /** `tag "key"` for messages, built once (quoting per record cost more than the line itself). */
  readonly what: string;
  readonly get: TagExtractor<T>;
}

interface CompiledField<T> {
  readonly key: string;
  /** `escapedKey=`, with a leading comma for every field but the first written. */
  readonly prefix: string;
  readonly type: FieldType | undefined;
  /** `field "key"` for messages, built once. */
  readonly what: string;
  readonly get: (record: T) => FieldValue | null | undefined;
}

/** Turns one record into one line; throws `LineProtocolError` naming the field or tag. */
export type LineConverter<T> = (record: T) => string;

/**
 * Builds a direct converter: keys are checked, escaped and sorted once here; each call only reads
 * the record and appends to one string (no intermediate point object).
 *
 * @example
 * const toLine = lineConverter<Reading>({
 *   measurement: 'weather',
 *   tags: { station: (r) => r.station },
 *   fields: { celsius: (r) => r.celsius, samples: { type: 'integer', get: (r) => r.samples } },
 *   timestamp: (r) => r.atMs,
 *   precision: 'ms',
 * });
 * toLine({ station: 'Oslo 1', celsius: 4.5, samples: 12, atMs: 1700000000000 });
 * // 'weather,station=Oslo\ 1 celsius=4.5,samples=12i 1700000000000'
 */
export function lineConverter<T>(options: LineConverterOptions<T>): LineConverter<T> {
  const precision = options.precision ?? 'ms';
  if (!PRECISIONS.includes(precision)) throw new LineProtocolError(`precision must be one of ${PRECISIONS.join(', ')}, got ${describe(precision)}`);
  const fixedMeasurement = typeof options.measurement === 'string' ? escapeMeasurement(options.measurement) : undefined;
  const measurementOf = typeof options.measurement === 'function' ? options.measurement : undefined;
  if (fixedMeasurement === undefined && measurementOf === undefined) {
    throw new LineProtocolError(`measurement must be a string or a function, got ${describe(options.measurement)}`);
  }
  const tagEntries = Object.entries(options.tags ?? {}).sort(([a], [b]) => compareKeys(a, b));
  const tags: CompiledTag<T>[] = tagEntries.map(([key, get]) => {
    if (typeof get !== 'function') throw new LineProtocolError(`tag ${quote(key)} needs an extractor function, got ${describe(get)}`);
    return { key, prefix: `,${escapeKey(key, 'tag key')}=`, what: `tag ${quote(key)}`, get };
  });
  const fieldEntries = Object.entries(options.fields ?? {});
  if (fieldEntries.length === 0) throw new LineProtocolError('a line converter needs at least one field');
  const fields: CompiledField<T>[] = fieldEntries.map(([key, extractor]) => {
    if (tagEntries.some(([tag]) => tag === key)) throw new LineProtocolError(`${quote(key)} is both a tag and a field; the server would rename one in queries`);
    const escaped = escapeKey(key, 'field key');
    const what = `field ${quote(key)}`;
    if (typeof extractor === 'function') return { key, prefix: escaped, type: undefined, what, get: extractor };
    if (extractor === null || typeof extractor !== 'object' || typeof extractor.get !== 'function' || !FIELD_TYPES.includes(extractor.type)) {
      throw new LineProtocolError(`field ${quote(key)} needs a function or { type: ${FIELD_TYPES.join('|')}, get }, got ${describe(extractor)}`);
    }
    return { key, prefix: escaped, type: extractor.type, what, get: extractor.get };
  });
  const timestampOf = options.timestamp;

  return (record: T): string => {
    let line = fixedMeasurement ?? escapeMeasurement(measurementOf!(record));
    for (const tag of tags) {
      const raw = tag.get(record);
      if (raw === null || raw === undefined || raw === '') continue;
      line += tag.prefix + escapeTagValue(typeof raw === 'string' ? raw : String(raw), tag.what);
    }
    let written = 0;
    for (const field of fields) {
      const value = field.get(record);
      if (value === null || value === undefined) continue;
      line += (written++ === 0 ? ' ' : ',') + field.prefix + '=' + formatFieldValue(value, field.what, field.type);
    }
    if (written === 0) throw new LineProtocolError(`record has no field values (all of ${fields.map((f) => quote(f.key)).join(', ')} are null or undefined)`);
    if (timestampOf !== undefined) {
      const timestamp = timestampOf(record);
      if (timestamp !== undefined) line += ' ' + formatTimestamp(timestamp, precision);
    }
    return flatten(line);
  };
}

const FIELD_TYPES: readonly FieldType[] = ['float', 'integer', 'boolean', 'string'];

/**
 * Returns `line` flattened: `+=` builds a rope of a dozen small heap objects, and a line usually lives
 * on in a buffer until its batch is written. Reading a character makes V8 copy the rope into one flat
 * string (~4× less memory per line, less GC, and joins of a batch several times faster).
 */
function flatten(line: string): string {
  line.charCodeAt(0);
  return line;
}

/**
 * A point assembled by hand: the compatibility path (one object per point), with the same checks and
 * escaping as `lineConverter`. Setting a tag or field again replaces it.
 *
 * @example
 * new Point('cpu').tag('host', 'a').floatField('load', 0.5).intField('procs', 12).timestamp(1700000000n).toLineProtocol('s');
 * // 'cpu,host=a load=0.5,procs=12i 1700000000'
 */
export class Point {
  readonly measurement: string;
  readonly #tags = new Map<string, string>();
  readonly #fields = new Map<string, { value: FieldValue; type: FieldType }>();
  #timestamp: Timestamp | undefined;

  constructor(measurement: string) {
    escapeMeasurement(measurement);
    this.measurement = measurement;
  }

  /** Sets a tag; an empty value removes it (line protocol has no empty tag values). */
  tag(key: string, value: string): this {
    escapeKey(key, 'tag key');
    if (typeof value !== 'string') throw new LineProtocolError(`tag ${quote(key)} value must be a string, got ${describe(value)}`);
    escapeTagValue(value, `tag ${quote(key)}`);
    if (value === '') this.#tags.delete(key);
    else this.#tags.set(key, value);
    return this;
  }

  floatField(key: string, value: number): this {
    return this.#field(key, value, 'float');
  }

  /** An integer field (`i` suffix): a whole number (up to int64 as a bigint). */
  intField(key: string, value: number | bigint): this {
    return this.#field(key, value, 'integer');
  }

  booleanField(key: string, value: boolean): this {
    return this.#field(key, value, 'boolean');
  }

  stringField(key: string, value: string): this {
    return this.#field(key, value, 'string');
  }

  /** A field typed by its value: number -> float, bigint -> integer, boolean, string. */
  field(key: string, value: FieldValue): this {
    return this.#field(key, value, inferType(value, `field ${quote(key)}`));
  }

  /** The point's time, in the precision given to `toLineProtocol` (or a Date). */
  timestamp(value: Timestamp): this {
    this.#timestamp = value;
    return this;
  }

  #field(key: string, value: FieldValue, type: FieldType): this {
    escapeKey(key, 'field key');
    // Checked now, so a bad value is reported where it was set.
    formatFieldValue(value, `field ${quote(key)}`, type);
    this.#fields.set(key, { value, type });
    return this;
  }

  /** The point as one line (no trailing newline), timestamp in `precision` (default 'ns'). */
  toLineProtocol(precision: Precision = 'ns'): string {
    if (this.#fields.size === 0) throw new LineProtocolError(`point ${quote(this.measurement)} has no fields`);
    let line = escapeMeasurement(this.measurement);
    const keys = [...this.#tags.keys()].sort(compareKeys);
    for (const key of keys) {
      if (this.#fields.has(key)) throw new LineProtocolError(`${quote(key)} is both a tag and a field of point ${quote(this.measurement)}`);
      line += `,${escapeKey(key, 'tag key')}=${escapeTagValue(this.#tags.get(key)!, `tag ${quote(key)}`)}`;
    }
    let first = true;
    for (const [key, { value, type }] of this.#fields) {
      line += `${first ? ' ' : ','}${escapeKey(key, 'field key')}=${formatFieldValue(value, `field ${quote(key)}`, type)}`;
      first = false;
    }
    if (this.#timestamp !== undefined) line += ` ${formatTimestamp(this.#timestamp, precision)}`;
    return flatten(line);
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return quote(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'a function';
  if (value instanceof Date) return Number.isFinite(value.getTime()) ? `Date(${value.toISOString()})` : 'an invalid Date';
  if (typeof value === 'object' && value !== null) return Array.isArray(value) ? 'an array' : 'an object';
  return String(value);
}
