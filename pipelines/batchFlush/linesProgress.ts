/**
 * What `sluice lines` tells while it runs, from the sink's events: on a terminal one status line
 * redrawn in place (points written, refused, rate); elsewhere the same as a plain line every `everyMs`; the
 * refused lines; a stall line while influxd cannot be reached ("influxd at URL unreachable for 12 s,
 * retrying until 10m: ECONNREFUSED") and a line when it answers again; and the totals for the summary.
 *
 * Invariant guarded here: counts only come from the sink's events (a point is counted once the
 * server accepted it), every text from outside is printed with its control characters escaped, and
 * `close()` stops the timer, so nothing is printed after the summary.
 */
import { escapeControl } from '../../lib/cli/terminalText.ts';
import { ProgressLine } from '../../lib/cli/progressLine.ts';
import { StallLines, STALL_LINE_EVERY_MS } from '../../lib/cli/retryFor.ts';
import type { TextOutput } from '../../lib/cli/commandLine.ts';
import type { LineSinkEvent } from './progress.ts';

export const LINES_PROGRESS_DEFAULTS = Object.freeze({
  /** The terminal's status line is redrawn at most this often (ms). */
  redrawIntervalMs: 200,
  /** After the first stall line of an outage, another at most this often (ms): lib/cli/retryFor.ts's. */
  stallEveryMs: STALL_LINE_EVERY_MS,
});

export interface LinesProgressOptions {
  /** A plain output gets a progress line this often (ms). */
  everyMs: number;
  /** The retry budget as typed (`10m`), for the stall line. */
  retryFor: string;
  /** Clock in ms (tests); default performance.now. */
  now?: () => number;
}

export class LinesProgress {
  written = 0;
  restored = 0;
  refused = 0;
  /** Where refused lines were stored (dead-letter objects), in order, without repeats. */
  readonly storedIn: string[] = [];
  readonly #line: ProgressLine;
  readonly #err: TextOutput;
  readonly #now: () => number;
  readonly #startedMs: number;
  readonly #timer: NodeJS.Timeout | undefined;
  /** The stall lines of an outage, throttled (lib/cli/retryFor.ts, shared by the commands). */
  readonly #stalls: StallLines;

  constructor(err: TextOutput, options: LinesProgressOptions) {
    this.#err = err;
    this.#now = options.now ?? (() => performance.now());
    this.#line = new ProgressLine(err, { redrawIntervalMs: LINES_PROGRESS_DEFAULTS.redrawIntervalMs, now: this.#now });
    this.#startedMs = this.#now();
    this.#stalls = new StallLines(options.retryFor, this.#now);
    if (!this.#line.tty) {
      this.#timer = setInterval(() => this.#line.event(() => `sluice lines: ${this.#counts()}`), options.everyMs);
      this.#timer.unref();
    }
  }

  /** Counts an event of the sink and prints what it has to say. */
  report(event: LineSinkEvent): void {
    if (event.kind === 'written') {
      this.written += event.points;
      const answered = this.#stalls.answered();
      if (answered !== undefined) this.#print(`sluice lines: ${answered}`);
    } else if (event.kind === 'restored') {
      this.restored += event.lines;
      this.#print(`sluice lines: writing ${event.lines} lines restored from the checkpoint first`);
    } else if (event.kind === 'deadLetter') {
      this.refused++;
      if (event.stored !== undefined && !this.storedIn.includes(event.stored)) this.storedIn.push(event.stored);
      this.#print(
        `sluice lines: refused (${event.status}): ${escapeControl(event.line)}\n  ${escapeControl(event.message)}` +
          (event.stored ? `\n  stored in ${escapeControl(event.stored)}` : ''),
      );
    } else {
      const stall = this.#stalls.stall('influxd at', event.target, event.elapsedMs, event.reason);
      if (stall !== undefined) this.#print(`sluice lines: ${stall}`);
    }
    this.#line.status(() => `sluice lines: ${this.#counts()}${this.#stalls.stalled ? ', waiting for influxd' : ''}`);
  }

  /** Points written (and restored), refused, and the rate since the start. */
  #counts(): string {
    const seconds = (this.#now() - this.#startedMs) / 1000;
    const rate = seconds > 0 ? Math.round(this.written / seconds) : 0;
    return `${this.written} points written, ${this.refused} refused, ${rate} points/s`;
  }

  /** A line of its own, on a terminal above the status line. */
  #print(text: string): void {
    this.#line.clear();
    this.#err.write(`${text}\n`);
  }

  /** Stops the plain lines and clears the status line. */
  close(): void {
    clearInterval(this.#timer);
    this.#line.clear();
  }
}
