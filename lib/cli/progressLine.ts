/**
 * Progress of a running command: on a terminal one status line redrawn in place (at most every
 * `redrawIntervalMs`), elsewhere (a pipe, a log file) one plain line per event and no control codes.
 *
 * Invariant guarded here: a plain output never receives `\r` or escape codes, and after `clear()` the
 * next text starts at the left margin of an empty line.
 */
import type { TextOutput } from './commandLine.ts';

/** Carriage return + erase to end of line: the status line is drawn over itself. */
const ERASE_LINE = '\r\x1b[K';

export const PROGRESS_LINE_DEFAULTS = Object.freeze({
  /** The status line is redrawn at most this often (ms); 0 redraws on every `status`. */
  redrawIntervalMs: 0,
});

export interface ProgressLineOptions {
  /** See PROGRESS_LINE_DEFAULTS. */
  redrawIntervalMs?: number;
  /** Clock in ms (tests); default performance.now. */
  now?: () => number;
}

/**
 * @example
 * const progress = new ProgressLine(process.stdout, { redrawIntervalMs: 200 });
 * progress.event(() => `wrote ${path}`);          // plain output only
 * progress.status(() => `${rows} rows, ${files} files`); // terminal only
 * progress.clear();
 */
export class ProgressLine {
  /** True when `out` is a terminal. */
  readonly tty: boolean;
  readonly #out: TextOutput;
  readonly #redrawIntervalMs: number;
  readonly #now: () => number;
  #lastDrawMs = -Infinity;
  #drawn = false;

  constructor(out: TextOutput, options: ProgressLineOptions = {}) {
    this.#out = out;
    this.tty = out.isTTY === true;
    this.#redrawIntervalMs = options.redrawIntervalMs ?? PROGRESS_LINE_DEFAULTS.redrawIntervalMs;
    this.#now = options.now ?? (() => performance.now());
  }

  /** On a plain output writes the line `render()` gives; on a terminal nothing (the status line tells). */
  event(render: () => string): void {
    if (!this.tty) this.#out.write(`${render()}\n`);
  }

  /** On a terminal redraws the status line, unless it was drawn less than `redrawIntervalMs` ago. */
  status(render: () => string): void {
    if (!this.tty) return;
    const now = this.#now();
    if (now - this.#lastDrawMs < this.#redrawIntervalMs) return;
    this.#lastDrawMs = now;
    this.#drawn = true;
    this.#out.write(`${ERASE_LINE}${render()}`);
  }

  /** Erases the status line if one is drawn, so the next message starts at the left margin. */
  clear(): void {
    if (this.#drawn) this.#out.write(ERASE_LINE);
    this.#drawn = false;
  }
}
