/**
 * MySQL URIs: `mysql://user:password@host:port/[database]`, parsed into connection settings, and
 * `redactMysqlUri`, which makes any of them safe to print.
 *
 * Invariant guarded here: a password never reaches a message, a log line or an error: every error
 * quotes the redacted URI (`mysql://user:***@host:port/db`).
 */

/** Where and as whom to connect. */
export interface MysqlLocation {
  host: string;
  port: number;
  user: string;
  /** '' when the URI has none. */
  password: string;
  /** The default database, when the URI names one. */
  database?: string;
}

export const MYSQL_DEFAULT_PORT = 3306;

/** A URI that cannot be used: says what is wrong and how to write it, with the password hidden. */
export class InvalidMysqlUriError extends Error {
  override readonly name = 'InvalidMysqlUriError';
  readonly uri: string;

  constructor(uri: string, problem: string) {
    const redacted = redactMysqlUri(uri);
    super(`invalid MySQL URI ${JSON.stringify(redacted)}: ${problem} (expected mysql://user:password@host:port/[database])`);
    this.uri = redacted;
  }
}

/**
 * The URI with its password replaced by `***` (also in anything that merely looks like a URI with
 * user info), so it can be printed.
 *
 * @example redactMysqlUri('mysql://root:s3cret@db:3306/shop') // 'mysql://root:***@db:3306/shop'
 */
export function redactMysqlUri(uri: string): string {
  return String(uri).replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/?#]*):[^@/?#]*@/i, '$1:***@');
}

/** Replaces every occurrence of `password` in `text` (an error from the driver, say) by `***`. */
export function redactPassword(text: string, password: string): string {
  return password === '' ? text : text.split(password).join('***');
}

/**
 * Parses `mysql://user:password@host:port/[database]`. The user, password and database may be
 * percent-encoded; the port defaults to 3306. Throws `InvalidMysqlUriError`.
 *
 * @example parseMysqlUri('mysql://root@127.0.0.1:3306/') // { host: '127.0.0.1', port: 3306, user: 'root', password: '' }
 */
export function parseMysqlUri(uri: string): MysqlLocation {
  if (typeof uri !== 'string' || uri === '') throw new InvalidMysqlUriError(String(uri), 'it is empty');
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new InvalidMysqlUriError(uri, 'it does not parse as a URL');
  }
  if (url.protocol !== 'mysql:') throw new InvalidMysqlUriError(uri, `the scheme must be mysql://, got ${url.protocol}//`);
  if (url.hostname === '') throw new InvalidMysqlUriError(uri, 'the host is missing');
  if (url.search !== '' || url.hash !== '') throw new InvalidMysqlUriError(uri, 'query parameters and fragments are not supported');
  const decode = (part: string, what: string) => {
    try {
      return decodeURIComponent(part);
    } catch {
      throw new InvalidMysqlUriError(uri, `the ${what} has a malformed percent-encoding`);
    }
  };
  const user = decode(url.username, 'user');
  if (user === '') throw new InvalidMysqlUriError(uri, 'the user is missing (mysql://user@host/)');
  const port = url.port === '' ? MYSQL_DEFAULT_PORT : Number(url.port);
  const path = url.pathname.replace(/^\//, '');
  if (path.includes('/')) throw new InvalidMysqlUriError(uri, 'the path must be empty or one database name');
  const location: MysqlLocation = {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port,
    user,
    password: decode(url.password, 'password'),
  };
  if (path !== '') location.database = decode(path, 'database');
  return location;
}
