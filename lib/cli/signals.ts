/**
 * SIGINT and SIGTERM as a request to stop a long-running command: the first asks the command to
 * finish what it accepted (it stops reading, makes that durable, writes its checkpoint, prints its
 * summary); a second one exits at once.
 *
 * Invariant guarded here: the exit code tells which signal ended the run (128 + its number: 130
 * SIGINT, 143 SIGTERM), whether the run stopped gracefully or at once; the handlers are removed by
 * `dispose`, after which a signal has its default effect again.
 */
import type { TextOutput } from './commandLine.ts';

/** The signals a command stops on, with the exit code each gives (128 + the signal's number). */
export const STOP_SIGNALS = Object.freeze({ SIGINT: 130, SIGTERM: 143 } as const);

export type StopSignalName = keyof typeof STOP_SIGNALS;

/** The part of `process` this module uses (a test passes an EventEmitter and a fake exit). */
export interface SignalSource {
  on(signal: StopSignalName, listener: () => void): unknown;
  off(signal: StopSignalName, listener: () => void): unknown;
}

export interface StopOnSignalsOptions {
  /** Where the signals come from; default `process`. */
  source?: SignalSource;
  /** Ends the process at once with a code; default `process.exit`. */
  exit?: (code: number) => void;
}

/** A stop requested by a signal, awaited by a running command. */
export interface SignalStop {
  /** Resolves with the first signal's name. */
  readonly promise: Promise<StopSignalName>;
  /** The first signal received, or undefined. */
  readonly received: StopSignalName | undefined;
  /** Removes the handlers. */
  dispose(): void;
}

/**
 * Listens for SIGINT and SIGTERM for the command `name`. The first resolves `promise` and prints one
 * line on `stderr` saying the command is stopping; the second prints one line and calls `exit` with
 * its own code (130 or 143), without waiting for anything.
 *
 * @example
 * const signals = stopOnSignals('sluice sink', process.stderr);
 * await drain(flow$, report, signals.promise.then(() => undefined));
 * signals.dispose();
 */
export function stopOnSignals(name: string, stderr: TextOutput, options: StopOnSignalsOptions = {}): SignalStop {
  const source = options.source ?? process;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let resolve!: (signal: StopSignalName) => void;
  const promise = new Promise<StopSignalName>((r) => (resolve = r));
  let received: StopSignalName | undefined;
  const handlers = (Object.keys(STOP_SIGNALS) as StopSignalName[]).map((signal) => {
    const handler = () => {
      if (received === undefined) {
        received = signal;
        stderr.write(`${name}: ${signal}: stopping; what was accepted is being made durable (${signal} again exits at once)\n`);
        resolve(signal);
      } else {
        stderr.write(`${name}: ${signal} again: exiting at once; the checkpoint covers what was durable before\n`);
        exit(STOP_SIGNALS[signal]);
      }
    };
    source.on(signal, handler);
    return { signal, handler };
  });
  return {
    promise,
    get received() {
      return received;
    },
    dispose: () => {
      for (const { signal, handler } of handlers) source.off(signal, handler);
    },
  };
}
