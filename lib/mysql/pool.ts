/**
 * mysql2 pools and transactions: a pool opened from a `mysql://` URI with the session settings every
 * sluice writer relies on, and `withTransaction`, which commits or rolls back and always releases.
 *
 * Invariants guarded here: every connection of a pool runs with time_zone '+00:00', utf8mb4 and
 * without NO_BACKSLASH_ESCAPES (so `sqlLiteral` text means what it says); a transaction's callback
 * error rolls the transaction back and reaches the caller unchanged; no error message carries the
 * password.
 */
import { createPool, format, type Pool, type PoolConnection, type PoolOptions } from 'mysql2/promise';
import { parseMysqlUri, redactMysqlUri, redactPassword } from './uri.ts';

export interface MysqlPoolOptions {
  /** Most connections open at once. Default 4. */
  connectionLimit?: number;
  /** Further mysql2 pool options (host, user and password come from the URI). */
  mysql2?: Omit<PoolOptions, 'host' | 'port' | 'user' | 'password' | 'database' | 'uri'>;
}

export const MYSQL_POOL_DEFAULTS = Object.freeze({ connectionLimit: 4, connectTimeoutMs: 10_000 });

/** Session settings of every connection (see the invariant above). */
export const SESSION_SETUP =
  "SET SESSION time_zone = '+00:00', SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', ''), NAMES utf8mb4";

/** A pool and where it points, printable. */
export interface MysqlPool {
  readonly pool: Pool;
  /** The URI without its password. */
  readonly uri: string;
  /** The database the URI names, if any. */
  readonly database: string | undefined;
  /**
   * Closes every connection at once: a statement in flight is abandoned (the server rolls its open
   * transaction back), so a server that stopped answering cannot hold the caller.
   */
  end(): Promise<void>;
}

/**
 * Opens a mysql2 pool on `uri` (`mysql://user:pass@host:port/[db]`); nothing connects until first
 * use. Big integers come back as strings (no rounding), dates as text. Throws
 * `InvalidMysqlUriError` for a bad URI.
 *
 * @example
 * const { pool, end } = createMysqlPool('mysql://root@127.0.0.1:3306/');
 * await withTransaction(pool, (c) => c.query('INSERT ...'));
 * await end();
 */
export function createMysqlPool(uri: string, options: MysqlPoolOptions = {}): MysqlPool {
  const location = parseMysqlUri(uri);
  const pool = createPool({
    connectTimeout: MYSQL_POOL_DEFAULTS.connectTimeoutMs,
    // TCP keepalive from 10 s of silence (the OS default waits 2 h): a server lost to a network
    // partition mid-statement is noticed in minutes (the OS's probes), and the retry budget applies.
    enableKeepAlive: true,
    keepAliveInitialDelay: 10_000,
    // Without values the SQL goes as it is: mysql2's default format scans the whole text for
    // placeholders even then, which costs about as much as building a multi-row statement.
    queryFormat: ((sql: string, values: unknown, timezone?: string) =>
      values === undefined || values === null || (Array.isArray(values) && values.length === 0) ? sql : format(sql, values as Parameters<typeof format>[1], false, timezone as Parameters<typeof format>[3])) as PoolOptions['queryFormat'],
    ...options.mysql2,
    host: location.host,
    port: location.port,
    user: location.user,
    password: location.password,
    ...(location.database === undefined ? {} : { database: location.database }),
    connectionLimit: options.connectionLimit ?? MYSQL_POOL_DEFAULTS.connectionLimit,
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
    charset: 'utf8mb4',
    multipleStatements: false,
  });
  // The core pool's connection event runs before the connection is handed out, so the setup runs
  // before any statement of the caller. The statement is valid on every server: it fails only when
  // the connection is going (reset, server shutting down), and then so do the caller's statements
  // queued behind it. The callback keeps such a failure from being an unhandled 'error' event.
  // Every connection the pool opened, so `end` can drop those busy with a statement: mysql2's own
  // end sends each a QUIT and waits for its reply, forever when the server went silent.
  const connections = new Set<{ destroy(): void }>();
  pool.pool.on('connection', (connection) => {
    connections.add(connection);
    connection.once('end', () => connections.delete(connection));
    // A connection that died may report more errors than the pool's one listener takes; its
    // commands get them through their callbacks, so these must not crash the process.
    connection.on('error', () => undefined);
    connection.query(SESSION_SETUP, () => undefined);
  });
  const end = async () => {
    for (const connection of connections) connection.destroy();
    connections.clear();
    await pool.end();
  };
  return { pool, uri: redactMysqlUri(uri), database: location.database, end };
}

/** A failure talking to MySQL: names the server (without password) and what was being done. */
export class MysqlError extends Error {
  override readonly name = 'MysqlError';
  /** The server's error code (ER_DUP_ENTRY...), when it answered with one. */
  readonly code: string | undefined;
  /** MySQL's numeric error, when it answered with one. */
  readonly errno: number | undefined;

  constructor(uri: string, doing: string, cause: unknown, password = '') {
    const detail = cause instanceof Error ? cause.message : String(cause);
    super(redactPassword(`${redactMysqlUri(uri)}: ${doing}: ${detail}`, password), { cause });
    const c = cause as { code?: unknown; errno?: unknown };
    this.code = typeof c?.code === 'string' ? c.code : undefined;
    this.errno = typeof c?.errno === 'number' ? c.errno : undefined;
  }
}

/**
 * Runs `work` in a transaction on a connection of `pool`: commits when it resolves, rolls back when
 * it throws (and rethrows its error), releases the connection either way.
 */
export async function withTransaction<T>(pool: Pool, work: (connection: PoolConnection) => Promise<T>): Promise<T> {
  const connection = await pool.getConnection();
  try {
    await connection.beginTransaction();
    let result: T;
    try {
      result = await work(connection);
      await connection.commit();
    } catch (error) {
      await connection.rollback().catch(() => undefined); // the connection may be gone; the error that matters is `error`
      throw error;
    }
    return result;
  } finally {
    connection.release();
  }
}
