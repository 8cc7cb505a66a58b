/**
 * Which MySQL failures are an outage that passes (the server unreachable, restarting, a connection
 * reset, a deadlock or lock wait that a second try resolves) rather than a refusal a person must fix
 * (access denied, a bad statement, a row the table refuses).
 *
 * Invariant guarded here: only failures after which the transaction is gone are called transient:
 * the connection died (so the server rolled the transaction back) or InnoDB rolled it back itself
 * (deadlock) or the caller rolls it back (lock wait timeout); retrying the whole transaction then
 * neither loses nor repeats anything.
 */

/** mysql2 error codes (and Node socket codes) of failures that pass. */
const TRANSIENT_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'PROTOCOL_CONNECTION_LOST',
  'ER_LOCK_DEADLOCK',
  'ER_LOCK_WAIT_TIMEOUT',
  'ER_SERVER_SHUTDOWN',
  'ER_CON_COUNT_ERROR',
  'ER_CONNECTION_KILLED',
  'ER_CLIENT_INTERACTION_TIMEOUT',
]);

/** Server error numbers of the same (when a code is missing): deadlock, lock wait, shutdown, too many connections, gone away, lost. */
const TRANSIENT_ERRNOS: ReadonlySet<number> = new Set([1213, 1205, 1053, 1040, 1927, 2006, 2013, 4031]);

/** What mysql2 says when a command is given to a connection that already died. */
const CLOSED_CONNECTION = /closed state|Connection lost|server has gone away|Lost connection/i;

/**
 * True when `error`, or an error in its `cause` chain, is a MySQL outage or a conflict that another
 * attempt of the whole transaction can get past.
 *
 * @example isTransientMysqlError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:3306'), { code: 'ECONNREFUSED' })) // true
 */
export function isTransientMysqlError(error: unknown): boolean {
  return transientCodeOf(error) !== undefined;
}

/**
 * The code that makes `error` transient (ECONNREFUSED, PROTOCOL_CONNECTION_LOST, ER_LOCK_DEADLOCK...),
 * looked up along its `cause` chain, or undefined when it is not transient.
 */
export function transientCodeOf(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 16 && typeof current === 'object' && current !== null; depth++) {
    const { code, errno, message } = current as { code?: unknown; errno?: unknown; message?: unknown };
    if (typeof code === 'string' && TRANSIENT_CODES.has(code)) return code;
    if (typeof errno === 'number' && TRANSIENT_ERRNOS.has(errno)) return typeof code === 'string' ? code : `errno ${errno}`;
    if (typeof message === 'string' && CLOSED_CONNECTION.test(message) && (code === undefined || code === null)) return 'connection closed';
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The codes `transientCodeOf` gives for a lock conflict (the server answered, another transaction was in the way). */
const LOCK_CONFLICTS: ReadonlySet<string> = new Set(['ER_LOCK_DEADLOCK', 'ER_LOCK_WAIT_TIMEOUT', 'errno 1213', 'errno 1205']);

/** Whether a code from `transientCodeOf` means the server is out of reach (rather than a lock conflict such as a deadlock). */
export function isUnreachable(code: string): boolean {
  return !LOCK_CONFLICTS.has(code);
}
