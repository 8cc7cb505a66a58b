/**
 * `bin/sluice.js` in a child process, for the tests of what only a real process shows (signals, a
 * closed stdout, exit codes, temporary folders): its output is collected, and a test waits for a
 * line or for the exit (events, never a wall-clock sleep).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/sluice.js', import.meta.url));

export class ChildCommand {
  readonly child: ChildProcessWithoutNullStreams;
  stdout = '';
  stderr = '';
  /** The exit code, or 128 + the signal's number when a signal killed it. */
  readonly exited: Promise<number>;
  readonly #waiters: Array<() => void> = [];

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [BIN, ...args], { stdio: 'pipe' });
    this.child.stdout.setEncoding('utf8').on('data', (text: string) => this.#got(() => (this.stdout += text)));
    this.child.stderr.setEncoding('utf8').on('data', (text: string) => this.#got(() => (this.stderr += text)));
    // A write to a child that has exited fails with EPIPE: the test asserts on the exit instead.
    this.child.stdin.on('error', () => undefined);
    this.exited = new Promise((resolve) => {
      this.child.once('close', (code, signal) => {
        this.#got(() => undefined);
        const signalNumbers: Record<string, number> = { SIGINT: 2, SIGKILL: 9, SIGPIPE: 13, SIGTERM: 15 };
        resolve(code ?? 128 + (signalNumbers[signal ?? ''] ?? 0));
      });
    });
  }

  #got(update: () => void): void {
    update();
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** Resolves once `pattern` matches stdout or stderr (as `which` says); rejects when the child exits first. */
  async waitFor(which: 'stdout' | 'stderr', pattern: RegExp): Promise<RegExpMatchArray> {
    let exited = false;
    void this.exited.then(() => (exited = true));
    for (;;) {
      const match = this[which].match(pattern);
      if (match !== null) return match;
      if (exited) throw new Error(`the child exited before ${which} matched ${pattern}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        void this.exited.then(() => resolve());
      });
    }
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }
}
