/**
 * A command run as a long-running job: what `sluice sink`, `sluice replay` and `sluice lines` share
 * once their command line is parsed. SIGINT/SIGTERM and a closed stdout stop it gracefully, its
 * temporary folders go at exit, and its metrics are served while it runs.
 *
 * Invariant guarded here: a job stopped by a signal or a broken stdout pipe never exits 0 (130 SIGINT,
 * 143 SIGTERM, 141 EPIPE); `close()` releases all it holds (handlers, endpoint, folders), once.
 *
 * @example
 * const job = await startJob('sluice sink', output, { metrics: command.metricsEndpoint });
 * try {
 *   const flow$ = fromPaced(job.untilStopped(readEvents(input.stream), input.stream)).pipe(
 *     storageSink({ ...options, spool: { dir: await job.tempFolder('sink') }, ...job.metricsOption('sink') }));
 *   await drain(flow$, report);
 *   stdout.write(summary);
 *   return job.exitCode(0); // 130, 143 or 141 when stopped
 * } finally {
 *   await job.close();
 * }
 */
import type { CommandOutput } from './commandLine.ts';
import { startMetricsEndpoint, type MetricsEndpoint, type MetricsEndpointOptions } from './metricsFlags.ts';
import { stopOnSignals, STOP_SIGNALS, type SignalStop, type StopOnSignalsOptions } from './signals.ts';
import { createTempFolder, type TempFolder } from './tempFolders.ts';
import { untilStopped } from './untilStopped.ts';
import type { AnyRegistry } from '../metrics/registry.ts';

/** Exit code of a job whose stdout pipe was closed by its reader (128 + SIGPIPE, as a shell reports it). */
export const BROKEN_PIPE_EXIT_CODE = 141;

export interface JobOptions {
  /** Serve the flow's metrics here (`--metrics-port`, `--metrics-host`); none when undefined. */
  metrics?: MetricsEndpointOptions | undefined;
  /** Signals and exit, replaced in tests. */
  signals?: StopOnSignalsOptions;
}

/** What stopped a job before its end. */
export type JobStopReason = keyof typeof STOP_SIGNALS | 'EPIPE';

export class Job {
  /** Resolves when the job is asked to stop (a signal, a closed stdout); never rejects. */
  readonly stopped: Promise<JobStopReason>;
  readonly #signals: SignalStop;
  readonly #endpoint: MetricsEndpoint | undefined;
  readonly #folders: TempFolder[] = [];
  readonly #detachPipe: () => void;
  #reason: JobStopReason | undefined;
  #closed: Promise<void> | undefined;

  constructor(name: string, output: CommandOutput, endpoint: MetricsEndpoint | undefined, options: JobOptions) {
    this.#endpoint = endpoint;
    this.#signals = stopOnSignals(name, output.stderr, options.signals);
    let brokenPipe!: () => void;
    const pipe = new Promise<'EPIPE'>((resolve) => (brokenPipe = () => resolve('EPIPE')));
    this.#detachPipe = watchBrokenPipes(output, brokenPipe);
    this.stopped = Promise.race([this.#signals.promise, pipe]).then((reason) => (this.#reason = reason));
  }

  /** Why the job was stopped, or undefined while it was not. */
  get stopReason(): JobStopReason | undefined {
    return this.#reason;
  }

  /** The flow's `metrics` option to spread into its options: `{ metrics: { registry, pipeline } }` when metrics are served, else `{}`. */
  metricsOption(pipeline: string): { metrics?: { registry: AnyRegistry; pipeline: string } } {
    return this.#endpoint === undefined ? {} : { metrics: { registry: this.#endpoint.registry, pipeline } };
  }

  /**
   * `source` read until the job is stopped; then it ends and `input` (the stream under it) is paused
   * and destroyed, so an open stdin does not keep the process alive. See `untilStopped`.
   */
  untilStopped<T>(source: AsyncIterable<T>, input?: NodeJS.ReadableStream): AsyncIterable<T> {
    return untilStopped(source, this.stopped, () => {
      input?.pause();
      (input as { destroy?: () => void } | undefined)?.destroy?.();
    });
  }

  /** A temporary folder (see `createTempFolder`), removed by `close()` or at exit. */
  async tempFolder(label: string): Promise<string> {
    const folder = await createTempFolder(label);
    this.#folders.push(folder);
    return folder.path;
  }

  /** `code` when the job ran to its end; 130, 143 or 141 when a signal or a closed stdout stopped it. */
  exitCode(code: number): number {
    if (this.#reason === undefined) return code;
    return this.#reason === 'EPIPE' ? BROKEN_PIPE_EXIT_CODE : STOP_SIGNALS[this.#reason];
  }

  /**
   * Removes the signal handlers (kept when a signal stopped the job: a second one still exits at
   * once), closes the metrics endpoint and removes the temporary folders; never rejects.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      // Stopped by a signal, the process is on its way out, yet something may still hold it (a
      // connection to a server that stopped answering): a second signal must still exit at once.
      if (this.#signals.received === undefined) this.#signals.dispose();
      this.#detachPipe();
      await this.#endpoint?.server.close().catch(() => undefined);
      await Promise.all(this.#folders.map((folder) => folder.remove()));
    })();
    return this.#closed;
  }
}

/**
 * Starts a job for the command `name`: its signal handlers, and its metrics endpoint when `options.metrics`
 * is given (the bound address printed on stderr; a port that cannot be bound is a `UsageError`).
 */
export async function startJob(name: string, output: CommandOutput, options: JobOptions = {}): Promise<Job> {
  const endpoint = options.metrics === undefined ? undefined : await startMetricsEndpoint(options.metrics);
  if (endpoint !== undefined) output.stderr.write(`${name}: metrics at ${endpoint.server.url}\n`);
  return new Job(name, output, endpoint, options);
}

/**
 * Listens for write errors on the process's stdout and stderr (a test's captured outputs have none):
 * EPIPE on stdout (its reader went away, as in `sluice sink ... | head -1`) calls `onBroken` until
 * detached; every write error is kept from becoming an uncaught exception with a stack trace, also
 * after the detach (an error of the last write arrives after the job closed). Returns the detach.
 * Also used by bin/cli.ts for the whole process (help, usage errors, anything before a job starts).
 */
export function watchBrokenPipes(output: CommandOutput, onBroken: () => void): () => void {
  let attached = true;
  for (const stream of [output.stdout, output.stderr]) {
    if (stream !== process.stdout && stream !== process.stderr) continue;
    (stream as NodeJS.WriteStream).on('error', (error: NodeJS.ErrnoException) => {
      if (attached && stream === process.stdout && error.code === 'EPIPE') onBroken();
    });
  }
  return () => {
    attached = false;
  };
}
