/**
 * `--retry-for <duration>`, one definition for every command that rides out an outage (`sluice sink`,
 * `sluice lines`, `sluice replay`): the flag, its default, its parsing, how a budget is printed back,
 * and the stall lines a command prints while it waits ("storage s3://bucket/cdc unreachable for
 * 12 s, retrying until 10m: HTTP 503 SlowDown"), throttled, and the line when it answers again
 * ("s3://bucket/cdc answers again; going on where it was").
 *
 * Invariant guarded here: the first stall of an outage is printed at once, later ones at most every
 * `STALL_LINE_EVERY_MS`; "answers again" is printed once per outage, and only after a stall line;
 * every text from outside is printed with its control characters escaped.
 */
import { escapeControl } from './terminalText.ts';
import { parseDuration } from './units.ts';

/** The default budget, as typed: an outage up to this long is ridden out. */
export const RETRY_FOR_DEFAULT = '10m';

/** After the first stall line of an outage, another at most this often (ms). */
export const STALL_LINE_EVERY_MS = 2000;

/** The flag, for a command's parseFlags options. */
export const RETRY_FOR_FLAG = { 'retry-for': { type: 'string' } } as const;

/** The budget as typed (for messages) and in ms. */
export interface RetryFor {
  text: string;
  ms: number;
}

/**
 * The value of `--retry-for` (undefined: the default `10m`), checked: `0` fails at once, a negative
 * or malformed value is a UsageError naming the flag.
 *
 * @example parseRetryFor('30s') // { text: '30s', ms: 30000 }
 */
export function parseRetryFor(text: string | undefined): RetryFor {
  const given = text ?? RETRY_FOR_DEFAULT;
  return { text: given, ms: given.trim() === '0' ? 0 : parseDuration('retry-for', given) };
}

/**
 * A budget in ms as `--retry-for` takes it: `10m`, `30s`, `1.5s`, `500ms`; `forever` for Infinity.
 *
 * @example formatRetryFor(600_000) // '10m'
 */
export function formatRetryFor(ms: number): string {
  if (ms === Infinity) return 'forever';
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1000) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/**
 * What failed, in a few words, from the innermost error of a chain of causes: its code
 * (ECONNREFUSED), or HTTP status and error name, then its message.
 *
 * @example outageCause(error) // 'ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9000'
 */
export function outageCause(error: unknown): string {
  let inner: unknown = error;
  for (let depth = 0; depth < 16; depth++) {
    const cause = (inner as { cause?: unknown } | null)?.cause;
    if (typeof cause !== 'object' || cause === null) break;
    inner = cause;
  }
  if (!(inner instanceof Error)) return String(inner);
  const code = (inner as { code?: unknown }).code;
  const status = (inner as { $metadata?: { httpStatusCode?: unknown } }).$metadata?.httpStatusCode ?? (inner as { statusCode?: unknown }).statusCode;
  const label = typeof code === 'string' ? code : typeof status === 'number' ? `HTTP ${status} ${inner.name}` : inner.name;
  return inner.message === '' || inner.message === label ? label : `${label}: ${inner.message}`;
}

/**
 * The stall lines of one service (influxd at `http://…`, storage `s3://…`): `stall` returns the line
 * to print for a retry, or undefined when one was printed less than `STALL_LINE_EVERY_MS` ago;
 * `answered` returns the "answers again" line once after an outage, undefined otherwise.
 */
export class StallLines {
  readonly #retryFor: string;
  readonly #now: () => number;
  /** The outage going on: when its stall line was last printed. */
  #lastPrintedMs: number | undefined;
  #target = '';

  /** `retryFor` is the budget as typed (`10m`); `now` the clock in ms (default performance.now). */
  constructor(retryFor: string, now: () => number = () => performance.now()) {
    this.#retryFor = retryFor;
    this.#now = now;
  }

  /** True while an outage goes on (a stall since the last `answered`). */
  get stalled(): boolean {
    return this.#lastPrintedMs !== undefined;
  }

  /**
   * A retry of `target` (a URL, a storage URI) after `elapsedMs` of failures, last with `cause`;
   * `service` says what it is (`influxd at`, `storage`). Texts are printed escaped.
   */
  stall(service: string, target: string, elapsedMs: number, cause: string): string | undefined {
    const nowMs = this.#now();
    this.#target = target;
    if (this.#lastPrintedMs !== undefined && nowMs - this.#lastPrintedMs < STALL_LINE_EVERY_MS) return undefined;
    this.#lastPrintedMs = nowMs;
    return `${service} ${escapeControl(target)} unreachable for ${Math.round(elapsedMs / 1000)} s, retrying until ${this.#retryFor}: ${escapeControl(cause)}`;
  }

  /** The service did something again: the line saying so after an outage, else undefined. */
  answered(): string | undefined {
    if (this.#lastPrintedMs === undefined) return undefined;
    this.#lastPrintedMs = undefined;
    return `${escapeControl(this.#target)} answers again; going on where it was`;
  }
}
