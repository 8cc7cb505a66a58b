/**
 * Durations and sizes as a person types them on a command line (`500ms`, `5s`, `1m`; `1048576`,
 * `512KiB`, `64MiB`, `1GiB`) and as a command prints them back (`1.5 MiB`, `2.40 s`).
 *
 * Invariant guarded here: a value that does not parse is a `UsageError` naming the flag and quoting
 * what was typed; nothing is guessed (`64MB` is refused, not read as MiB or as 64 bytes).
 */
import { UsageError } from './commandLine.ts';

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000 };
const SIZE_UNITS: Record<string, number> = { b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

/**
 * Milliseconds of a duration such as `500ms`, `5s`, `1.5s` or `1m` given to `--<flag>`.
 *
 * @example parseDuration('flush-interval', '5s') // 5000
 */
export function parseDuration(flag: string, text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(text.trim());
  if (!match) throw new UsageError(`--${flag} must be a duration such as 500ms, 5s or 1m, got ${JSON.stringify(text)}`);
  return Number(match[1]) * DURATION_UNITS[match[2]!]!;
}

/**
 * Whole bytes (at least 1) of a size such as `1048576`, `512KiB`, `64MiB` or `1GiB` (units in any
 * case) given to `--<flag>`.
 *
 * @example parseSize('file-size', '64MiB') // 67108864
 */
export function parseSize(flag: string, text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(b|kib|mib|gib)?$/i.exec(text.trim());
  const bytes = match ? Math.floor(Number(match[1]) * SIZE_UNITS[(match[2] ?? 'b').toLowerCase()]!) : NaN;
  if (!(bytes >= 1) || !Number.isSafeInteger(bytes)) {
    throw new UsageError(`--${flag} must be a size such as 1048576, 512KiB, 64MiB or 1GiB (at least 1 byte), got ${JSON.stringify(text)}`);
  }
  return bytes;
}

/**
 * `bytes` for a person: `512 B`, `1.5 KiB`, `64.0 MiB`, `2.0 GiB` (GiB is the largest unit).
 *
 * @example formatBytes(1536) // '1.5 KiB'
 */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/**
 * Milliseconds as seconds with `fractionDigits` decimals (default 2) and the unit.
 *
 * @example formatSeconds(2400) // '2.40 s'
 */
export function formatSeconds(ms: number, fractionDigits = 2): string {
  return `${(ms / 1000).toFixed(fractionDigits)} s`;
}
