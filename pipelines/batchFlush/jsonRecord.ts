/**
 * The JSON-lines record `sluice lines` reads, one per line, turned into a line of line protocol:
 *
 *   {"measurement":"cpu","tags":{"host":"a"},"fields":{"load":0.5,"procs":{"int":12},"up":true,"os":"linux"},"time":1700000000000}
 *
 * A JSON number is a float field, `{"int": n}` or `{"int": "digits"}` an integer; `time` is in the
 * precision, a number or a string of digits; absent (or null) lets the server stamp the point.
 *
 * Invariant guarded here: a line either becomes exactly the point it spells or fails with a
 * `LineProtocolError` naming its place (`file:line`), the key and what is wrong; nothing is guessed or
 * dropped: a key the format does not have (`"tag"`, `"timestamp"`, `{"int":1,"x":2}`) is refused, not
 * ignored, and every text from the input in a message has its control characters escaped.
 */
import { escapeControl } from '../../lib/cli/terminalText.ts';
import { LineProtocolError, Point, type Precision } from '../../lib/codec/lineProtocol.ts';

/** The keys a record may have. */
export const RECORD_KEYS: readonly string[] = Object.freeze(['measurement', 'tags', 'fields', 'time']);

/** A key of the input, quoted and with control characters escaped, for messages. */
const quoted = (key: string) => escapeControl(JSON.stringify(key));

/** A value of the input, as JSON and with control characters escaped, for messages. */
const shown = (value: unknown) => escapeControl(JSON.stringify(value) ?? String(value));

/**
 * Turns one JSON line into a Point; errors name `where` (`stdin:5`) and what is wrong.
 *
 * @example recordToPoint('{"measurement":"m","fields":{"v":1}}', 'stdin:1').toLineProtocol('ms') // 'm v=1'
 */
export function recordToPoint(text: string, where: string): Point {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new LineProtocolError(`${where}: not valid JSON: ${escapeControl((error as Error).message)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new LineProtocolError(`${where}: a record must be a JSON object, got ${shown(parsed)}`);
  const record = parsed as Record<string, unknown>;
  try {
    for (const key of Object.keys(record)) {
      if (!RECORD_KEYS.includes(key)) throw new LineProtocolError(`unknown key ${quoted(key)}; a record has the keys ${RECORD_KEYS.join(', ')}`);
    }
    if (typeof record.measurement !== 'string') throw new LineProtocolError(`"measurement" must be a string, got ${shown(record.measurement)}`);
    const point = new Point(record.measurement);
    const tags = record.tags ?? {};
    if (typeof tags !== 'object' || tags === null || Array.isArray(tags)) throw new LineProtocolError(`"tags" must be an object of strings, got ${shown(tags)}`);
    for (const [key, value] of Object.entries(tags)) {
      if (typeof value !== 'string') throw new LineProtocolError(`tag ${quoted(key)} must be a string, got ${shown(value)}`);
      point.tag(key, value);
    }
    const fields = record.fields;
    if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) throw new LineProtocolError(`"fields" must be an object, got ${shown(fields)}`);
    for (const [key, value] of Object.entries(fields)) {
      if (typeof value === 'number') point.floatField(key, value);
      else if (typeof value === 'boolean') point.booleanField(key, value);
      else if (typeof value === 'string') point.stringField(key, value);
      else if (typeof value === 'object' && value !== null && !Array.isArray(value) && 'int' in value) {
        const extra = Object.keys(value).find((name) => name !== 'int');
        if (extra !== undefined) throw new LineProtocolError(`field ${quoted(key)}: unknown key ${quoted(extra)} in {"int": ...}, which has only the key int`);
        const int = (value as { int: unknown }).int;
        if (typeof int === 'number') point.intField(key, int);
        else if (typeof int === 'string' && /^-?\d+$/.test(int)) point.intField(key, BigInt(int));
        else throw new LineProtocolError(`field ${quoted(key)}: {"int": ...} needs a whole number or a string of digits, got ${shown(int)}`);
      } else throw new LineProtocolError(`field ${quoted(key)} must be a number, boolean, string or {"int": n}, got ${shown(value)}`);
    }
    const time = record.time;
    if (typeof time === 'number') point.timestamp(time);
    else if (typeof time === 'string' && /^-?\d+$/.test(time)) point.timestamp(BigInt(time));
    else if (time !== undefined && time !== null) throw new LineProtocolError(`"time" must be an integer or a string of digits, got ${shown(time)}`);
    return point;
  } catch (error) {
    throw new LineProtocolError(`${where}: ${escapeControl((error as Error).message)}`, { cause: error });
  }
}

/**
 * One JSON line as a line of line protocol in `precision`: `recordToPoint` and its encoding, so a
 * point the encoder refuses (no fields, a bad timestamp) fails here with its place too.
 */
export function recordToLine(text: string, where: string, precision: Precision): string {
  const point = recordToPoint(text, where);
  try {
    return point.toLineProtocol(precision);
  } catch (error) {
    throw new LineProtocolError(`${where}: ${escapeControl((error as Error).message)}`, { cause: error });
  }
}
