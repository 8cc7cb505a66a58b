/**
 * SQL text for MySQL and MariaDB: quoted identifiers and literals of column values, for statements
 * built in bulk (multi-row INSERTs) where placeholders would cost a second pass over every value.
 *
 * Invariant guarded here: a value becomes exactly one literal that reads back as the same value
 * (strings escaped for a session without NO_BACKSLASH_ESCAPES, which `createMysqlPool` guarantees;
 * bytes as hex; integers whole, never through a double), and a name becomes exactly one identifier.
 */
import { Buffer } from 'node:buffer';

export type SqlValue = string | number | bigint | boolean | null | Uint8Array;

/** A value that has no SQL literal (NaN, Infinity, an object). */
export class SqlValueError extends Error {
  override readonly name = 'SqlValueError';
}

/**
 * A backquoted identifier: inner backquotes doubled. Rejects '' and NUL, which MySQL refuses.
 *
 * @example quoteIdentifier('order`s') // '`order``s`'
 */
export function quoteIdentifier(name: string): string {
  if (typeof name !== 'string' || name === '' || name.includes('\u0000')) {
    throw new SqlValueError(`not a valid MySQL identifier: ${JSON.stringify(name)}`);
  }
  return `\`${name.replaceAll('`', '``')}\``;
}

/** `schema`.`table` */
export function quoteTable(schema: string, table: string): string {
  return `${quoteIdentifier(schema)}.${quoteIdentifier(table)}`;
}

const NEEDS_ESCAPE = /[\u0000\b\t\n\r\u001a"'\\]/;
const ESCAPED = /[\u0000\b\t\n\r\u001a"'\\]/g;
const ESCAPES: Readonly<Record<string, string>> = {
  '\u0000': '\\0',
  '\b': '\\b',
  '\t': '\\t',
  '\n': '\\n',
  '\r': '\\r',
  '\u001a': '\\Z',
  '"': '\\"',
  "'": "\\'",
  '\\': '\\\\',
};

/** A quoted string literal, backslash-escaped as mysql_real_escape_string does. */
export function quoteString(text: string): string {
  if (!NEEDS_ESCAPE.test(text)) return `'${text}'`;
  return `'${text.replace(ESCAPED, (c) => ESCAPES[c]!)}'`;
}

/**
 * The SQL literal of a value: NULL, a number, a whole integer (bigint), 1/0 for booleans, X'..' for
 * bytes, a quoted string otherwise (decimals, dates, JSON travel as strings). Throws `SqlValueError`.
 *
 * @example sqlLiteral(18446744073709551615n) // '18446744073709551615'
 */
export function sqlLiteral(value: SqlValue): string {
  switch (typeof value) {
    case 'string':
      return quoteString(value);
    case 'number':
      if (!Number.isFinite(value)) throw new SqlValueError(`${value} has no SQL literal`);
      return String(value);
    case 'bigint':
      return value.toString();
    case 'boolean':
      return value ? '1' : '0';
    default:
      if (value === null) return 'NULL';
      if (value instanceof Uint8Array) {
        return value.byteLength === 0 ? "X''" : `X'${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}'`;
      }
      throw new SqlValueError(`a ${typeof value} has no SQL literal`);
  }
}
