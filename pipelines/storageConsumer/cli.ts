/**
 * `sluice replay`: a storage sink's files replayed into MySQL through `storageConsumer`, with a live
 * progress line on a terminal (files, rows, lag behind the sink's checkpoint) and plain lines
 * otherwise.
 *
 * Invariant guarded here: the exit code says what happened: 2 for a command line that cannot run
 * (nothing is read or written), 1 for a failure while running (the checkpoint table then covers
 * exactly the files committed), 0 when `--once` finished or the replay was stopped by a signal. The
 * password in --to never appears in any output.
 */
import { parseArgs } from 'node:util';
import { InvalidMysqlUriError, parseMysqlUri, redactMysqlUri, redactPassword } from '../../lib/mysql/uri.ts';
import { InvalidStorageUriError, parseStorageUri } from '../../lib/storage/index.ts';
import { storageConsumer, STORAGE_CONSUMER_DEFAULTS, type ConsumerProgress } from './storageConsumer.ts';

export interface ReplayCommandIo {
  stdout?: { write(text: string): unknown; isTTY?: boolean };
  stderr?: { write(text: string): unknown };
  /** Resolves when the command should stop (default: SIGINT or SIGTERM). */
  stopSignal?: Promise<void>;
}

const FLAGS = {
  from: { type: 'string' },
  to: { type: 'string' },
  once: { type: 'boolean' },
  interval: { type: 'string' },
  'include-commit-ts': { type: 'boolean' },
  'output-old-value': { type: 'boolean' },
  'checkpoint-database': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const REPLAY_USAGE = `usage: sluice replay --from <storage-uri> --to mysql://user:pass@host:port/ [--once] [--interval 2s]

Replays a storage sink's files (schema, index and data files, csv or canal-json) into MySQL: each
table's DDL before its rows, data files in index order, each file in one transaction with the
consumer's checkpoint (table sluice_replay.replay_checkpoint), so a restart neither loses nor repeats rows.

  --from <uri>               file:///abs/path, s3://bucket/prefix or azure://container/prefix (credentials from the environment)
  --to <mysql-uri>           mysql://user:pass@host:port/ (the password is never printed)
  --once                     one round, then exit (default: keep polling)
  --interval <duration>      pause between rounds: 500ms, 2s, 1m (default 2s)
  --include-commit-ts        the csv files carry the commit ts column (the sink's include-commit-ts)
  --output-old-value         the csv files carry is-update and old values (the sink's output-old-value)
  --checkpoint-database <db> where the checkpoint table lives (default ${STORAGE_CONSUMER_DEFAULTS.checkpointDatabase})
  -h, --help                 this text

Exit codes: 0 done (--once) or stopped by SIGINT/SIGTERM, 1 failed while running, 2 the command line cannot run.`;

class UsageError extends Error {
  override readonly name = 'UsageError';
}

function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(text.trim());
  if (!match) throw new UsageError(`--interval must be a duration such as 500ms, 2s or 1m, got ${JSON.stringify(text)}`);
  return Number(match[1]) * { ms: 1, s: 1000, m: 60_000 }[match[2] as 'ms' | 's' | 'm'];
}

/** Prints progress: one redrawn line on a TTY, a line per file and per round otherwise. */
class ReplayPrinter {
  files = 0;
  rows = 0;
  rounds = 0;
  lagMs = 0;
  readonly #out: NonNullable<ReplayCommandIo['stdout']>;
  readonly #tty: boolean;
  #drawn = false;

  constructor(out: NonNullable<ReplayCommandIo['stdout']>) {
    this.#out = out;
    this.#tty = out.isTTY === true;
  }

  report(p: ConsumerProgress): void {
    if (p.kind === 'data') {
      this.files++;
      this.rows += p.rows;
      if (!this.#tty) this.#out.write(`applied ${p.path}: ${p.rows} rows${p.skipped > 0 ? `, ${p.skipped} already applied` : ''}\n`);
    } else if (p.kind === 'ddl') {
      this.files++;
      if (!this.#tty) this.#out.write(`applied ${p.path}: ${p.effect} ${p.table}\n`);
    } else {
      this.rounds++;
      this.lagMs = p.lagMs;
      if (!this.#tty && (p.files > 0 || p.round === 1)) {
        this.#out.write(`round ${p.round}: ${p.files} files, ${p.rows} rows, sink checkpoint ${p.sinkCheckpointTs ?? 'none'}, lag ${(p.lagMs / 1000).toFixed(1)} s\n`);
      }
    }
    if (this.#tty) {
      this.#drawn = true;
      this.#out.write(`\r\x1b[K${this.files} files, ${this.rows} rows, round ${this.rounds}, lag ${(this.lagMs / 1000).toFixed(1)} s`);
    }
  }

  clear(): void {
    if (this.#drawn) this.#out.write('\r\x1b[K');
    this.#drawn = false;
  }
}

function stopOnSignals(): { promise: Promise<void>; dispose(): void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  const onSignal = () => resolve();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return { promise, dispose: () => (process.off('SIGINT', onSignal), process.off('SIGTERM', onSignal)) };
}

/**
 * Runs `sluice replay` with `args` and returns the exit code.
 *
 * @example process.exitCode = await run(['--from', 'file:///tmp/cdc', '--to', 'mysql://root@127.0.0.1:3306/', '--once']);
 */
export async function run(args: string[], io: ReplayCommandIo = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  let values;
  let password = '';
  try {
    values = parseArgs({ args, options: FLAGS, strict: true, allowPositionals: false }).values;
    if (values.help) {
      stdout.write(`${REPLAY_USAGE}\n`);
      return 0;
    }
    if (!values.from) throw new UsageError('--from is required: the storage URI the sink wrote to');
    if (!values.to) throw new UsageError('--to is required: mysql://user:pass@host:port/');
    parseStorageUri(values.from);
    password = parseMysqlUri(values.to).password;
  } catch (error) {
    const message = error instanceof UsageError || error instanceof InvalidMysqlUriError || error instanceof InvalidStorageUriError ? error.message : `${(error as Error).message}`;
    stderr.write(`sluice replay: ${redactPassword(message, password)}\n\n${REPLAY_USAGE}\n`);
    return 2;
  }
  let intervalMs: number = STORAGE_CONSUMER_DEFAULTS.intervalMs;
  try {
    if (values.interval !== undefined) intervalMs = parseDuration(values.interval);
  } catch (error) {
    stderr.write(`sluice replay: ${(error as Error).message}\n`);
    return 2;
  }
  const printer = new ReplayPrinter(stdout);
  const signals = io.stopSignal ? undefined : stopOnSignals();
  const stop = io.stopSignal ?? signals!.promise;
  try {
    await new Promise<void>((resolve, reject) => {
      const subscription = storageConsumer({
        from: values.from!,
        to: values.to!,
        once: values.once === true,
        intervalMs,
        csv: { includeCommitTs: values['include-commit-ts'] === true, outputOldValue: values['output-old-value'] === true },
        ...(values['checkpoint-database'] ? { checkpointDatabase: values['checkpoint-database'] } : {}),
      }).subscribe({ next: (p) => printer.report(p), error: reject, complete: resolve });
      void stop.then(() => {
        subscription.unsubscribe();
        resolve();
      });
    });
    printer.clear();
    stdout.write(`sluice replay: ${printer.files} files, ${printer.rows} rows in ${printer.rounds} round(s) -> ${redactMysqlUri(values.to!)}\n`);
    return 0;
  } catch (error) {
    printer.clear();
    stderr.write(`sluice replay: ${redactPassword((error as Error).message, password)}\n  hint: the checkpoint table covers exactly the files committed; fix the cause and run again to resume\n`);
    return 1;
  } finally {
    signals?.dispose();
  }
}

export const replayCommand = Object.freeze({
  summary: 'a storage sink\'s files -> MySQL, incrementally, exactly once in effect',
  run: (args: string[]) => run(args),
});
