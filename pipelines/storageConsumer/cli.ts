/**
 * `sluice replay`: a storage sink's files replayed into MySQL through `storageConsumer`, with a live
 * progress line on a terminal (files, rows, lag behind the sink's checkpoint) and plain lines
 * otherwise.
 *
 * Invariant guarded here: the exit code says what happened: 2 for a command line that cannot run
 * (nothing is read or written), 1 for a failure while running (the checkpoint table then covers
 * exactly the files committed), 0 when `--once` finished, 130/143 when stopped by SIGINT/SIGTERM (after
 * the file in flight: its transaction commits with its checkpoint or rolls back). The password in --to
 * never appears in any output.
 */
import { parseFlags, printFailure, runCommandLine, UsageError, type CommandOutput, type TextOutput } from '../../lib/cli/commandLine.ts';
import { drain } from '../../lib/cli/drain.ts';
import { startJob } from '../../lib/cli/job.ts';
import { METRICS_FLAGS, metricsEndpointFromFlags, metricsFlagsUsage, type MetricsEndpointOptions } from '../../lib/cli/metricsFlags.ts';
import { ProgressLine } from '../../lib/cli/progressLine.ts';
import { formatSeconds, parseDuration } from '../../lib/cli/units.ts';
import { formatRetryFor, parseRetryFor, RETRY_FOR_FLAG } from '../../lib/cli/retryFor.ts';
import { DATE_SEPARATORS, type DateSeparator } from '../../lib/codec/layout.ts';
import { parseMysqlUri, redactMysqlUri, redactPassword } from '../../lib/mysql/uri.ts';
import { parseStorageUri, StorageRootMissingError } from '../../lib/storage/index.ts';
import type { CsvOptions } from '../../lib/codec/csv.ts';
import { CSV_FLAGS, csvFlagsUsage, csvOptionsFromFlags } from '../storageSink/csvFlags.ts';
import { STORAGE_CONSUMER_DEFAULTS } from './options.ts';
import type { ConsumerProgress } from './progress.ts';
import { storageConsumer } from './storageConsumer.ts';

export interface ReplayCommandIo {
  stdout?: TextOutput;
  stderr?: TextOutput;
  /** Resolves when the command should stop (default: SIGINT or SIGTERM). */
  stopSignal?: Promise<void>;
}

const FLAGS = {
  from: { type: 'string' },
  to: { type: 'string' },
  once: { type: 'boolean' },
  interval: { type: 'string' },
  ...CSV_FLAGS,
  'date-separator': { type: 'string' },
  'enable-partition-separator': { type: 'boolean' },
  'checkpoint-database': { type: 'string' },
  ...RETRY_FOR_FLAG,
  ...METRICS_FLAGS,
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
  --date-separator none|year|month|day  the sink's date-separator: the date level of data folders (default day, as TiCDC)
  --enable-partition-separator[=false]  the sink's enable-partition-separator: partitioned tables have a
                             {partitionId} folder level, each partition its own stream (default true, as TiCDC)
  --checkpoint-database <db> where the checkpoint table lives (default ${STORAGE_CONSUMER_DEFAULTS.checkpointDatabase})
  --retry-for <duration>     ride out an outage this long: MySQL refused, reset, gone away or deadlocked (the
                             failed file's transaction is retried whole), s3/azure 5xx, 429 or resets; with
                             backoff and a stall line on stderr, then exit 1 (default ${formatRetryFor(STORAGE_CONSUMER_DEFAULTS.retryForMs)}; 0 fails at once)
${csvFlagsUsage('replay')}
${metricsFlagsUsage(29)}
  -h, --help                 this text

Exit codes: 0 done (--once), 1 failed while running (also a MySQL outage longer than --retry-for),
2 the command line cannot run (also --from naming a folder, bucket or container that does not exist); 130 (SIGINT),
143 (SIGTERM), 141 (stdout closed): stopped; the file in flight commits with its checkpoint or rolls back
(a second signal exits at once).`;

interface ReplayCommand {
  from: string;
  to: string;
  /** The password in `to`, kept out of every message. */
  password: string;
  once: boolean;
  intervalMs: number;
  /** The csv flags given (the consumer's defaults fill the rest). */
  csv: CsvOptions;
  dateSeparator: DateSeparator;
  enablePartitionSeparator: boolean;
  checkpointDatabase?: string;
  /** --retry-for, in ms. */
  retryForMs: number;
  /** --metrics-port / --metrics-host, or undefined. */
  metricsEndpoint: MetricsEndpointOptions | undefined;
}

function parseCommand(args: string[]): ReplayCommand | 'help' {
  const values = parseFlags(args, FLAGS);
  if (values.help) return 'help';
  if (!values.from) throw new UsageError('--from is required: the storage URI the sink wrote to');
  if (!values.to) throw new UsageError('--to is required: mysql://user:pass@host:port/');
  if (parseStorageUri(values.from).scheme === 'memory') {
    throw new UsageError(`--from ${JSON.stringify(values.from)}: a memory:// storage lives inside one process, so replay cannot read what a sink wrote there; use file://, s3:// or azure://`);
  }
  const checkpointDatabase = values['checkpoint-database'];
  if (checkpointDatabase !== undefined && !/^[A-Za-z0-9_$]{1,64}$/.test(checkpointDatabase)) {
    throw new UsageError(`--checkpoint-database must be a database name of 1..64 letters, digits, _ or $, got ${JSON.stringify(checkpointDatabase)}`);
  }
  // Its errors quote the URI redacted, so the password cannot leak from here.
  const { password } = parseMysqlUri(values.to);
  const dateSeparator = values['date-separator'] ?? STORAGE_CONSUMER_DEFAULTS.dateSeparator;
  if (!(DATE_SEPARATORS as readonly string[]).includes(dateSeparator)) {
    throw new UsageError(`--date-separator must be none, year, month or day (the sink's date-separator), got ${JSON.stringify(dateSeparator)}`);
  }
  return {
    from: values.from,
    to: values.to,
    password,
    once: values.once === true,
    intervalMs: values.interval === undefined ? STORAGE_CONSUMER_DEFAULTS.intervalMs : parseDuration('interval', values.interval),
    csv: csvOptionsFromFlags(values, STORAGE_CONSUMER_DEFAULTS.csv),
    dateSeparator: dateSeparator as DateSeparator,
    enablePartitionSeparator: values['enable-partition-separator'] ?? STORAGE_CONSUMER_DEFAULTS.enablePartitionSeparator,
    ...(checkpointDatabase ? { checkpointDatabase } : {}),
    retryForMs: values['retry-for'] === undefined ? STORAGE_CONSUMER_DEFAULTS.retryForMs : parseRetryFor(values['retry-for']).ms,
    metricsEndpoint: metricsEndpointFromFlags(values),
  };
}

/** Prints progress: one redrawn line on a TTY, a line per file and per round otherwise. */
class ReplayPrinter {
  files = 0;
  rows = 0;
  rounds = 0;
  lagMs = 0;
  readonly line: ProgressLine;
  readonly #err: TextOutput;

  constructor(out: TextOutput, err: TextOutput) {
    this.line = new ProgressLine(out);
    this.#err = err;
  }

  report(p: ConsumerProgress): void {
    if (p.kind === 'data') {
      this.files++;
      this.rows += p.rows;
      this.line.event(() => `applied ${p.path}: ${p.rows} rows${p.skipped > 0 ? `, ${p.skipped} already applied` : ''}`);
    } else if (p.kind === 'ddl') {
      this.files++;
      this.line.event(() => `applied ${p.path}: ${p.effect} ${p.table}`);
    } else if (p.kind === 'stall') {
      // Always a line of its own, on stderr: a person must see why nothing moves.
      this.line.clear();
      const state = p.unreachable ? 'unreachable' : 'failing';
      this.#err.write(`${p.service === 'MySQL' ? `MySQL at ${p.target}` : `storage ${p.target}`} ${state} for ${Math.round(p.elapsedMs / 1000)} s, retrying until ${formatRetryFor(p.retryForMs)}: ${p.code} (${p.operation}; next try in ${formatSeconds(p.delayMs, 1)})\n`);
      return;
    } else {
      this.rounds++;
      this.lagMs = p.lagMs;
      if (p.files > 0 || p.round === 1) {
        this.line.event(() => `round ${p.round}: ${p.files} files, ${p.rows} rows, sink checkpoint ${p.sinkCheckpointTs ?? 'none'}, lag ${formatSeconds(p.lagMs, 1)}`);
      }
    }
    this.line.status(() => `${this.files} files, ${this.rows} rows, round ${this.rounds}, lag ${formatSeconds(this.lagMs, 1)}`);
  }
}

/**
 * Runs `sluice replay` with `args` and returns the exit code.
 *
 * @example process.exitCode = await run(['--from', 'file:///tmp/cdc', '--to', 'mysql://root@127.0.0.1:3306/', '--once']);
 */
export function run(args: string[], io: ReplayCommandIo = {}): Promise<number> {
  return runCommandLine({ name: 'sluice replay', usage: REPLAY_USAGE, parse: parseCommand, execute: (command, output) => execute(command, output, io.stopSignal) }, args, io);
}

async function execute(command: ReplayCommand, { stdout, stderr }: CommandOutput, stopSignal: Promise<void> | undefined): Promise<number> {
  const printer = new ReplayPrinter(stdout, stderr);
  // Signals, a closed stdout and the metrics endpoint (lib/cli/job.ts); `stopSignal` (tests) stops it too.
  const job = await startJob('sluice replay', { stdout, stderr }, { metrics: command.metricsEndpoint });
  try {
    const progress$ = storageConsumer({
      from: command.from,
      to: command.to,
      once: command.once,
      intervalMs: command.intervalMs,
      csv: command.csv,
      dateSeparator: command.dateSeparator,
      enablePartitionSeparator: command.enablePartitionSeparator,
      ...(command.checkpointDatabase === undefined ? {} : { checkpointDatabase: command.checkpointDatabase }),
      retryForMs: command.retryForMs,
      ...job.metricsOption('replay'),
    });
    await drain(progress$, (p) => printer.report(p), stopSignal === undefined ? job.stopped.then(() => undefined) : Promise.race([stopSignal, job.stopped.then(() => undefined)]));
    printer.line.clear();
    stdout.write(`sluice replay: ${printer.files} files, ${printer.rows} rows in ${printer.rounds} round(s) -> ${redactMysqlUri(command.to)}\n`);
    return job.exitCode(0);
  } catch (error) {
    printer.line.clear();
    // --from names nothing that exists: an unusable argument (exit 2), found before anything was applied.
    if (error instanceof StorageRootMissingError) {
      stderr.write(`sluice replay: --from ${error.message}\n`);
      return 2;
    }
    const hint = 'the checkpoint table covers exactly the files committed; fix the cause and run again to resume';
    return printFailure(stderr, 'sluice replay', redactPassword((error as Error).message, command.password), hint);
  } finally {
    await job.close();
  }
}

export const replayCommand = Object.freeze({
  summary: 'a storage sink\'s files -> MySQL, incrementally, exactly once in effect',
  run: (args: string[]) => run(args),
});
