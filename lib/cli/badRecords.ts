/**
 * `--bad-records fail|skip|dead-letter:<path>`: what a command does with an input line it cannot
 * read (bad JSON, an unknown key, a wrong type). `fail` (the default) stops reading there, so what
 * came before is made durable and the command exits 1 naming the line; `skip` drops the line and goes
 * on; `dead-letter:<path>` appends the line, its number and the error to a JSON-lines file, durably
 * (fsync) before the next line is read, and goes on. Skipped and dead-lettered lines are counted.
 *
 * Invariant guarded here: a bad line is never dropped silently: it stops the run (`fail`), or is
 * counted (`skip`), or is on disk in the dead-letter file before reading goes on; a dead-letter file
 * that cannot be opened is a `UsageError` (exit 2) before anything is read.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { resolve } from 'node:path';
import { UsageError } from './commandLine.ts';
import { escapeControl } from './terminalText.ts';

/** The flag as `parseFlags` takes it: spread into a command's flags. */
export const BAD_RECORDS_FLAG = { 'bad-records': { type: 'string' } } as const;

export type BadRecordsPolicy = { readonly mode: 'fail' } | { readonly mode: 'skip' } | { readonly mode: 'dead-letter'; readonly path: string };

/** The usage line of the flag, its description starting at `column` (as the command's others do). */
export function badRecordsUsage(column: number): string {
  const line = (flag: string, text: string) => `  ${flag.padEnd(column - 3)} ${text}`;
  return [
    line('--bad-records <what>', 'a line that cannot be read: fail (default: stop there, exit 1, what came before is kept),'),
    line('', 'skip (drop it, count it), dead-letter:<path> (append it, its number and the error to <path>)'),
  ].join('\n');
}

/**
 * The policy `--bad-records <text>` asks for (undefined: `fail`); a bad value is a `UsageError`.
 *
 * @example parseBadRecords('dead-letter:/var/log/bad.jsonl') // { mode: 'dead-letter', path: '/var/log/bad.jsonl' }
 */
export function parseBadRecords(text: string | undefined): BadRecordsPolicy {
  if (text === undefined || text === 'fail') return { mode: 'fail' };
  if (text === 'skip') return { mode: 'skip' };
  if (text.startsWith('dead-letter:') && text.length > 'dead-letter:'.length) return { mode: 'dead-letter', path: text.slice('dead-letter:'.length) };
  throw new UsageError(`--bad-records must be fail, skip or dead-letter:<path> (a file to append bad lines to), got ${escapeControl(JSON.stringify(text))}`);
}

/** A line that could not be read. */
export interface BadRecord {
  /** Where it was read from: a path or `stdin`. */
  source: string;
  /** 1-based, counting blank lines. */
  lineNumber: number;
  /** The line as read. */
  text: string;
  /** What is wrong with it (its message names the line). */
  error: Error;
}

/**
 * Applies a `BadRecordsPolicy` to the bad lines of one run.
 *
 * @example
 * const bad = await BadRecords.open(parseBadRecords(values['bad-records']));
 * if ((await bad.take(record)) === 'stop') return; // `fail`: bad.failure is the error to report
 */
export class BadRecords {
  readonly policy: BadRecordsPolicy;
  /** Lines skipped or dead-lettered so far. */
  count = 0;
  /** With `fail`: the first bad line's error, once there is one. */
  failure: Error | undefined;
  readonly #file: FileHandle | undefined;
  readonly #onBad: (() => void) | undefined;

  private constructor(policy: BadRecordsPolicy, file: FileHandle | undefined, onBad: (() => void) | undefined) {
    this.policy = policy;
    this.#file = file;
    this.#onBad = onBad;
  }

  /**
   * Opens the dead-letter file (created if absent, appended to) for `dead-letter:`; `onBad` is called
   * for each line skipped or dead-lettered (a metric). A file that cannot be opened is a `UsageError`.
   */
  static async open(policy: BadRecordsPolicy, onBad?: () => void): Promise<BadRecords> {
    if (policy.mode !== 'dead-letter') return new BadRecords(policy, undefined, onBad);
    try {
      return new BadRecords(policy, await open(resolve(policy.path), 'a'), onBad);
    } catch (error) {
      throw new UsageError(`--bad-records dead-letter:${escapeControl(policy.path)}: cannot open the file for appending: ${escapeControl((error as Error).message)}`);
    }
  }

  /** Where bad lines go, for the summary: `dead-letter file <path>` or the mode. */
  get where(): string {
    return this.policy.mode === 'dead-letter' ? `dead-letter file ${escapeControl(this.policy.path)}` : this.policy.mode;
  }

  /**
   * Takes a bad line: `fail` keeps its error in `failure` and answers 'stop' (read no further);
   * `skip` counts it; `dead-letter` appends `{"source","line","error","text"}` and syncs it to disk
   * before answering 'continue'.
   */
  async take(record: BadRecord): Promise<'stop' | 'continue'> {
    if (this.policy.mode === 'fail') {
      this.failure ??= record.error;
      return 'stop';
    }
    if (this.#file !== undefined) {
      const entry = { source: record.source, line: record.lineNumber, error: record.error.message, text: record.text };
      try {
        await this.#file.appendFile(`${JSON.stringify(entry)}\n`, 'utf8');
        await this.#file.datasync();
      } catch (error) {
        throw new Error(`--bad-records ${this.where}: cannot store ${record.source}:${record.lineNumber}: ${(error as Error).message}`, { cause: error });
      }
    }
    this.count++;
    this.#onBad?.();
    return 'continue';
  }

  /** Closes the dead-letter file; never rejects. */
  async close(): Promise<void> {
    await this.#file?.close().catch(() => undefined);
  }
}
