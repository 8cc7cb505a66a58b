/**
 * `sluice sink`: change events from a JSON-lines file (or stdin) into TiCDC-compatible files on any
 * storage URI, through `storageSink`, with progress on the terminal and a summary at the end. A
 * storage outage (transient failures) is ridden out for --retry-for, with stall lines on stderr.
 *
 * Invariant guarded here: the exit code says what happened and the message says what to do: 2 for a
 * command line that cannot run (nothing is read or written), 1 for a failure while running (the
 * `metadata` checkpoint then still only covers durable rows), 0 once every event is durable.
 */
import { join } from 'node:path';
import { concat, defer, EMPTY, throwError } from 'rxjs';
import { fromPaced } from '../../lib/core/paced.ts';
import { BAD_RECORDS_FLAG, BadRecords, badRecordsUsage, parseBadRecords, type BadRecordsPolicy } from '../../lib/cli/badRecords.ts';
import { parseFlags, printFailure, runCommandLine, UsageError, type CommandOutput, type TextOutput } from '../../lib/cli/commandLine.ts';
import { drain } from '../../lib/cli/drain.ts';
import { startJob } from '../../lib/cli/job.ts';
import { METRICS_FLAGS, metricsEndpointFromFlags, metricsFlagsUsage, type MetricsEndpointOptions } from '../../lib/cli/metricsFlags.ts';
import { nonBlankLines, openInput } from '../../lib/cli/inputLines.ts';
import { ProgressLine } from '../../lib/cli/progressLine.ts';
import { outageCause, parseRetryFor, RETRY_FOR_DEFAULT, RETRY_FOR_FLAG, StallLines, type RetryFor } from '../../lib/cli/retryFor.ts';
import { formatBytes, formatSeconds, parseDuration, parseSize } from '../../lib/cli/units.ts';
import { DecodeError, formatChangeEventLine, InvalidChangeEventError, type ChangeEvent, type DateSeparator } from '../../lib/codec/index.ts';
import type { CsvOptions } from '../../lib/codec/csv.ts';
import { MAX_FILE_INDEX_WIDTH, MIN_FILE_INDEX_WIDTH } from '../../lib/codec/layout.ts';
import { parseChangeEventLine } from '../../lib/codec/jsonLines.ts';
import { RetriesExhaustedError } from '../../lib/core/retry.ts';
import { badRecordsMetric } from '../../lib/metrics/badRecords.ts';
import { InvalidStorageUriError, openStorage, redactUri } from '../../lib/storage/index.ts';
import type { ExternalStorage } from '../../lib/storage/storage.ts';
import { UnreadableCheckpointError } from './resumePoint.ts';
import { canalJsonOptionsFromFlags, CSV_FLAGS, csvFlagsGiven, csvFlagsUsage, csvOptionsFromFlags } from './csvFlags.ts';
import { UnknownTableVersionError } from './tableRegistry.ts';
import { storageSink, STORAGE_SINK_DEFAULTS, type SinkProgress } from './storageSink.ts';

/** Where the command reads and writes; the process's own streams unless a caller (a test) injects others. */
export interface SinkCommandIo {
  stdin?: NodeJS.ReadableStream;
  stdout?: TextOutput;
  stderr?: TextOutput;
}

export const SINK_CLI_DEFAULTS = Object.freeze({
  /** Events read ahead of the sink's pace (lines). */
  readWindow: 64,
  /** A TTY progress line is redrawn at most this often (ms). */
  redrawIntervalMs: 200,
});

const FLAGS = {
  from: { type: 'string' },
  to: { type: 'string' },
  protocol: { type: 'string' },
  'flush-interval': { type: 'string' },
  'file-size': { type: 'string' },
  'date-separator': { type: 'string' },
  'file-index-width': { type: 'string' },
  'table-across-dispatchers': { type: 'boolean' },
  ...CSV_FLAGS,
  resume: { type: 'boolean' },
  'enable-tidb-extension': { type: 'boolean' },
  ...BAD_RECORDS_FLAG,
  ...RETRY_FOR_FLAG,
  ...METRICS_FLAGS,
  help: { type: 'boolean', short: 'h' },
} as const;

export const SINK_USAGE = `usage: sluice sink --from <events.jsonl|-> --to <storage-uri> [options]

Writes change events (JSON lines, one event per line; blank lines skipped) as TiCDC storage-sink
files: data files, index files, schema files and the root metadata checkpoint.
Every table needs its DDL event (CREATE TABLE with its tableDef) before its rows: the command has no
other source of table definitions. Each row is checked against it (columns, value types, NOT NULL),
and a dispatcher's commit ts must not go back. One line of each kind (the full format: docs/formats.md):

  {"kind":"ddl","commitTs":"4350","query":"CREATE TABLE orders (id INT PRIMARY KEY, total DECIMAL(10,2))","ddlType":"CREATE TABLE","schema":"shop","table":"orders","tableDef":{"schema":"shop","table":"orders","version":"4350","columns":[{"name":"id","type":"INT","nullable":false,"primaryKey":true},{"name":"total","type":"DECIMAL","precision":10,"scale":2}]},"blockedDispatchers":"all"}
  {"kind":"row","op":"insert","schema":"shop","table":"orders","tableVersion":"4350","commitTs":"4356","dispatcherId":"7","columns":{"id":1,"total":"9.50"}}
  {"kind":"row","op":"update","schema":"shop","table":"orders","tableVersion":"4350","commitTs":"4360","dispatcherId":"7","columns":{"id":1,"total":"12.00"},"oldColumns":{"id":1,"total":"9.50"}}
  {"kind":"row","op":"delete","schema":"shop","table":"orders","tableVersion":"4350","commitTs":"4371","dispatcherId":"7","columns":{"id":1,"total":"12.00"}}

  --from <path|->              the JSON-lines file to read; '-' reads stdin
  --to <uri>                   file:///abs/path, s3://bucket/prefix or azure://container/prefix
                               (credentials come from the environment, never the URI)
  --protocol csv|canal-json    row format (default csv)
  --flush-interval <duration>  a data file is cut this long after its first row at the latest: 500ms, 5s, 1m (default 5s, at least 100ms)
  --file-size <size>           a data file is cut at this size: 1048576, 512KiB, 64MiB, 1GiB (default 64MiB)
  --date-separator none|year|month|day   date folder of data files (default day)
  --file-index-width <N>       digits of the data file index, ${MIN_FILE_INDEX_WIDTH}..${MAX_FILE_INDEX_WIDTH} (default 20)
  --table-across-dispatchers   each dispatcher writes its own files of a table (CDC_{dispatcher}_{index});
                               use it when one table's rows come from several dispatchers
  --enable-tidb-extension[=false]  canal-json: write _tidb.commitTs in every row (default true; TiCDC's
                               default is false: =false gives its bytes, rows without a commit ts)
  --resume[=false]             resume from the metadata checkpoint N already in --to (default true): a rerun
                               on the same input skips the events at or below N (durable from the run
                               before) and reports how many; =false writes every event again
  --retry-for <duration>       ride out a storage outage this long (refused or reset connections, 5xx,
                               a busy disk): every read and write is retried with backoff and a stall
                               line on stderr, then it goes on where it was; past it, exit 1
                               (default ${RETRY_FOR_DEFAULT}; 0 fails at once). Permanent errors (no permission,
                               disk full, a refused credential) fail at once
${badRecordsUsage(31)}
                               (a bad line: bad JSON, an unknown key, a row that does not fit its table...)
${csvFlagsUsage('sink')}
${metricsFlagsUsage(31)}
  -h, --help                   this text

Exit codes: 0 every event is durable, 1 failed while running (also a storage outage longer than
--retry-for), 2 the command line cannot run;
130 (SIGINT), 143 (SIGTERM), 141 (stdout closed): stopped, what was read made durable and checkpointed
(a second signal exits at once).`;

interface SinkCommand {
  from: string;
  to: string;
  protocol: 'csv' | 'canal-json';
  flushIntervalMs: number;
  fileSizeBytes: number;
  dateSeparator: DateSeparator;
  fileIndexWidth?: number;
  tableAcrossDispatchers: boolean;
  resume: boolean;
  /** csv only: the csv flags given (the sink's defaults fill the rest). */
  csv?: CsvOptions;
  /** canal-json only: the flags given (--enable-tidb-extension, --terminator); the sink's defaults fill the rest. */
  canalJson?: { enableTidbExtension?: boolean; terminator?: string };
  /** --bad-records: what a bad line (or event) does. */
  badRecords: BadRecordsPolicy;
  /** --retry-for: how long a storage outage is ridden out. */
  retryFor: RetryFor;
  /** --metrics-port / --metrics-host, or undefined. */
  metricsEndpoint: MetricsEndpointOptions | undefined;
}

function parseCommand(args: string[]): SinkCommand | 'help' {
  const values = parseFlags(args, FLAGS);
  if (values.help) return 'help';
  if (values.from === undefined || values.from === '') throw new UsageError('--from is required: a JSON-lines file of change events, or - for stdin');
  if (values.to === undefined || values.to === '') throw new UsageError('--to is required: a storage URI such as file:///tmp/cdc or s3://bucket/prefix');
  const protocol = values.protocol ?? STORAGE_SINK_DEFAULTS.protocol;
  if (protocol !== 'csv' && protocol !== 'canal-json') throw new UsageError(`--protocol must be csv or canal-json, got ${JSON.stringify(protocol)}`);
  const dateSeparator = values['date-separator'] ?? 'day';
  if (!['none', 'year', 'month', 'day'].includes(dateSeparator)) {
    throw new UsageError(`--date-separator must be none, year, month or day, got ${JSON.stringify(dateSeparator)}`);
  }
  if (/^memory:/i.test(values.to)) {
    throw new UsageError(`--to ${values.to}: memory storage ends with the process, so nothing would persist; give file:///abs/path, s3://bucket/prefix or azure://container/prefix`);
  }
  const flushIntervalMs = values['flush-interval'] === undefined ? STORAGE_SINK_DEFAULTS.flushIntervalMs : parseDuration('flush-interval', inRange('flush-interval', values['flush-interval'], 'at least 100ms'));
  if (flushIntervalMs < 100) throw new UsageError(`--flush-interval must be at least 100ms, got ${values['flush-interval']}`);
  const command: SinkCommand = {
    from: values.from,
    to: values.to,
    protocol,
    flushIntervalMs,
    fileSizeBytes: values['file-size'] === undefined ? STORAGE_SINK_DEFAULTS.fileSizeBytes : parseSize('file-size', inRange('file-size', values['file-size'], 'at least 1 byte')),
    dateSeparator: dateSeparator as DateSeparator,
    tableAcrossDispatchers: values['table-across-dispatchers'] === true,
    resume: values.resume !== false,
    badRecords: parseBadRecords(values['bad-records']),
    retryFor: parseRetryFor(values['retry-for'] === undefined ? undefined : inRange('retry-for', values['retry-for'], 'a duration such as 30s or 10m, or 0')),
    metricsEndpoint: metricsEndpointFromFlags(values),
  };
  const tidbExtension = values['enable-tidb-extension'];
  if (protocol === 'csv') {
    command.csv = csvOptionsFromFlags(values, STORAGE_SINK_DEFAULTS.csv);
    if (tidbExtension !== undefined) throw new UsageError(`--enable-tidb-extension applies to --protocol canal-json only, got --protocol ${protocol}`);
  } else {
    // --terminator ends canal-json rows too, as TiCDC's sink terminator does; the other csv flags do not apply.
    const csvOnly = csvFlagsGiven(values).filter((flag) => flag !== '--terminator');
    if (csvOnly.length > 0) throw new UsageError(`${csvOnly.join(', ')}: csv settings, for --protocol csv only, got --protocol ${protocol}`);
    command.canalJson = canalJsonOptionsFromFlags(values.terminator, tidbExtension);
  }
  const width = values['file-index-width'];
  if (width !== undefined) {
    const digits = /^\d+$/.test(width) ? Number(width) : NaN;
    if (!(digits >= MIN_FILE_INDEX_WIDTH && digits <= MAX_FILE_INDEX_WIDTH)) {
      throw new UsageError(`--file-index-width must be an integer from ${MIN_FILE_INDEX_WIDTH} to ${MAX_FILE_INDEX_WIDTH}, got ${JSON.stringify(width)}`);
    }
    command.fileIndexWidth = digits;
  }
  return command;
}

/**
 * `text` unless it is negative: a duration or size below zero is refused with the valid `range`
 * (parseArgs takes `--flag -1` for two flags; parseFlags hands `-1` on as the value).
 */
function inRange(flag: string, text: string, range: string): string {
  if (text.trim().startsWith('-')) throw new UsageError(`--${flag} must be ${range}, got ${JSON.stringify(text)}`);
  return text;
}

/**
 * The input's change events, one per non-blank line, each remembered with its line number in
 * `lines` (for the sink's messages). A line that does not parse goes to `bad`: with `fail` reading
 * stops there (`bad.failure` holds the error); otherwise it is counted (and dead-lettered) and
 * reading goes on.
 */
async function* readEvents(input: NodeJS.ReadableStream, name: string, bad: BadRecords, lines: WeakMap<ChangeEvent, number>): AsyncGenerator<ChangeEvent> {
  for await (const { text, lineNumber } of nonBlankLines(input)) {
    let event: ChangeEvent;
    try {
      event = parseChangeEventLine(text, lineNumber);
    } catch (error) {
      if (!(error instanceof DecodeError || error instanceof InvalidChangeEventError)) throw error;
      if ((await bad.take({ source: name, lineNumber, text, error })) === 'stop') return;
      continue;
    }
    lines.set(event, lineNumber);
    yield event;
  }
}

/**
 * Counts what the sink reports and prints it: a redrawn line on a TTY, one line per report
 * otherwise; a storage outage as stall lines on stderr (lib/cli/retryFor.ts) and a line when the
 * storage answers again.
 */
class ProgressPrinter {
  dataFiles = 0;
  schemaFiles = 0;
  rows = 0;
  bytes = 0;
  checkpointTs: bigint | undefined;
  /** Events skipped at or below the checkpoint resumed from, and that checkpoint. */
  skipped: { events: number; upToTs: bigint } | undefined;
  readonly line: ProgressLine;
  readonly #err: TextOutput;
  readonly #stalls: StallLines;

  constructor(out: TextOutput, err: TextOutput, retryFor: string) {
    this.line = new ProgressLine(out, { redrawIntervalMs: SINK_CLI_DEFAULTS.redrawIntervalMs });
    this.#err = err;
    this.#stalls = new StallLines(retryFor);
  }

  report(progress: SinkProgress): void {
    if (progress.kind === 'stall') {
      const text = this.#stalls.stall('storage', progress.target, progress.elapsedMs, outageCause(progress.error));
      if (text !== undefined) this.#errLine(text);
      return;
    }
    const answered = this.#stalls.answered();
    if (answered !== undefined) this.#errLine(answered);
    if (progress.kind === 'data') {
      this.dataFiles++;
      this.rows += progress.rows;
      this.bytes += progress.bytes;
      this.line.event(() => `wrote ${progress.path}: ${progress.rows} rows, ${formatBytes(progress.bytes)} (cut by ${progress.reason})`);
    } else if (progress.kind === 'schema') {
      this.schemaFiles++;
      this.line.event(() => `wrote ${progress.path}: schema at commit ts ${progress.commitTs}`);
    } else if (progress.kind === 'skipped') {
      this.skipped = { events: progress.events, upToTs: progress.upToTs };
      this.line.event(() => `skipped ${progress.events} events at or below the checkpoint ${progress.upToTs} (already durable)`);
    } else {
      this.checkpointTs = progress.checkpointTs;
      this.line.event(() => `checkpoint ${progress.checkpointTs}`);
    }
    this.line.status(() => `${this.rows} rows, ${this.dataFiles + this.schemaFiles} files, checkpoint ${this.checkpointTs ?? '-'}`);
  }

  /** A line of its own on stderr, with the status line cleared first. */
  #errLine(text: string): void {
    this.line.clear();
    this.#err.write(`sluice sink: ${text}\n`);
  }

  summary(to: string, elapsedMs: number): string {
    const { skipped } = this;
    // With every event skipped no checkpoint is written: the one resumed from stands.
    const checkpointTs = this.checkpointTs ?? skipped?.upToTs;
    return (
      `sluice sink: ${this.dataFiles + this.schemaFiles} files (${this.dataFiles} data, ${this.schemaFiles} schema), ` +
      `${this.rows} rows, ${formatBytes(this.bytes)}, checkpoint ${checkpointTs ?? 'none'}, ` +
      `${formatSeconds(elapsedMs)} -> ${redactUri(to)}` +
      (skipped === undefined ? '' : `; skipped ${skipped.events} events at or below the checkpoint ${skipped.upToTs} (already durable)`)
    );
  }
}

/** The summary's words on bad lines: none with `fail` (a bad line fails the run). */
function badSummary(bad: BadRecords): string {
  if (bad.policy.mode === 'fail') return '';
  return `; ${bad.count} bad line${bad.count === 1 ? '' : 's'} ${bad.policy.mode === 'skip' ? 'skipped' : `in the ${bad.where}`}`;
}

/** The retries that ran out of --retry-for, when that is why the run failed. */
function outOfBudget(error: unknown): RetriesExhaustedError | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 16 && typeof current === 'object' && current !== null; depth++) {
    if (current instanceof RetriesExhaustedError && current.elapsedMs !== undefined) return current;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The failure's message; for a storage outage longer than --retry-for: the storage, how long, the budget and the last cause. */
function messageFor(error: unknown, command: SinkCommand): string {
  const exhausted = outOfBudget(error);
  if (exhausted === undefined) return (error as Error).message;
  const seconds = ((exhausted.elapsedMs ?? 0) / 1000).toFixed(1);
  return (
    `storage ${redactUri(command.to)} unreachable for ${seconds} s (${exhausted.operation}, ${exhausted.attempts} attempts), ` +
    `longer than --retry-for ${command.retryFor.text}: ${outageCause(exhausted.cause)}`
  );
}

/** What a person can do about a failure while running. */
function hintFor(error: unknown, command: SinkCommand): string {
  const goOn = 'or pass --bad-records skip or dead-letter:<path> to go on past bad lines';
  if (error instanceof UnknownTableVersionError || (error instanceof Error && error.cause instanceof UnknownTableVersionError)) {
    return `put the table's DDL event (with its tableDef) before its rows in the input and run again (every event before this line is durable and checkpointed), ${goOn}`;
  }
  if (error instanceof DecodeError || error instanceof InvalidChangeEventError) {
    return (
      `every event before it is durable and checkpointed; fix that line of ${command.from === '-' ? 'stdin' : command.from} and run again ` +
      `(it resumes after the checkpoint), ${goOn}`
    );
  }
  if (outOfBudget(error) !== undefined) {
    return `bring ${redactUri(command.to)} back (or raise --retry-for) and run again: the metadata checkpoint there covers only durable rows and the run resumes after it`;
  }
  if (error instanceof UnreadableCheckpointError) return `restore ${redactUri(command.to)}/metadata, or run with --resume=false to write every event again`;
  return `the metadata checkpoint in ${redactUri(command.to)} covers only durable rows; fix the cause and run again (it resumes after that checkpoint)`;
}

/**
 * Runs `sluice sink` with `args` (the words after `sink`) and returns the exit code: 0 success,
 * 1 failed while running, 2 unusable command line. `io` replaces stdin/stdout/stderr (tests).
 *
 * @example
 * process.exitCode = await run(['--from', 'events.jsonl', '--to', 'file:///tmp/cdc', '--file-size', '8MiB']);
 */
export function run(args: string[], io: SinkCommandIo = {}): Promise<number> {
  return runCommandLine(
    { name: 'sluice sink', usage: SINK_USAGE, parse: parseCommand, execute: (command, output) => execute(command, output, io.stdin ?? process.stdin) },
    args,
    io,
  );
}

async function execute(command: SinkCommand, { stdout, stderr }: CommandOutput, stdin: NodeJS.ReadableStream): Promise<number> {
  let storage: ExternalStorage;
  try {
    // No retries of the storage's own: the sink's, within --retry-for, are the one budget.
    storage = await openStorage(command.to, { retry: { maxRetries: 0 } });
  } catch (error) {
    const hint = error instanceof InvalidStorageUriError ? '' : ' (credentials come from the environment; see --help)';
    throw new UsageError(`--to: ${(error as Error).message}${hint}`);
  }

  let input;
  try {
    input = await openInput('from', command.from, stdin);
  } catch (error) {
    await storage.close();
    throw error;
  }

  const job = await startJob('sluice sink', { stdout, stderr }, { metrics: command.metricsEndpoint }).catch(async (error: unknown) => {
    await input.close();
    await storage.close();
    throw error;
  });
  const metrics = job.metricsOption('sink');
  const bad = await BadRecords.open(command.badRecords, metrics.metrics === undefined ? undefined : badRecordsMetric(metrics.metrics, 'sink')).catch(async (error: unknown) => {
    await input.close();
    await storage.close();
    await job.close();
    throw error;
  });
  // Each event's input line, for the sink's messages; an event leaves it once nothing holds it.
  const lines = new WeakMap<ChangeEvent, number>();
  const lineOf = (event: ChangeEvent) => `line ${lines.get(event) ?? '?'}`;
  // Events the sink finds bad (a row that does not fit its table...) that --bad-records lets pass,
  // stored in order. The sink holds each one's position until its verdict (stored: 'skip') comes, so
  // the checkpoint never passes a dead letter not yet on disk; a failed store fails the run at once.
  let badEventsStored: Promise<unknown> = Promise.resolve();
  const onBadEvent = (error: InvalidChangeEventError, event: ChangeEvent): 'skip' | 'stop' | Promise<'skip'> => {
    if (bad.policy.mode === 'fail') return 'stop';
    const record = { source: input.name, lineNumber: lines.get(event) ?? 0, text: formatChangeEventLine(event), error };
    if (bad.policy.mode === 'skip') {
      void bad.take(record); // counted at once: nothing to store
      return 'skip';
    }
    const stored = badEventsStored.then(() => bad.take(record)).then(() => 'skip' as const);
    badEventsStored = stored.catch(() => undefined);
    return stored;
  };
  const printer = new ProgressPrinter(stdout, stderr, command.retryFor.text);
  const started = performance.now();
  try {
    // Removed by job.close(), at exit, or by the next run when this process is killed.
    const spoolRoot = await job.tempFolder('sink');
    const read$ = fromPaced(job.untilStopped(readEvents(input.stream, input.name, bad, lines), input.stream), { window: SINK_CLI_DEFAULTS.readWindow });
    // Reading stopped at a bad line or by a signal ends the input with an error, not as an input
    // that ended: the sink then makes what came before durable and checkpoints no further than that
    // (an ended input would let the checkpoint reach the greatest commit ts read, skipping on a rerun
    // the events after the stop that share it or lie below it).
    const stoppedReading = new Error('reading stopped');
    const events$ = concat(
      read$,
      defer(() => (bad.failure !== undefined ? throwError(() => bad.failure) : job.stopReason !== undefined ? throwError(() => stoppedReading) : EMPTY)),
    );
    const progress$ = events$.pipe(
      storageSink({
        storage,
        protocol: command.protocol,
        flushIntervalMs: command.flushIntervalMs,
        fileSizeBytes: command.fileSizeBytes,
        dateSeparator: command.dateSeparator,
        ...(command.fileIndexWidth === undefined ? {} : { fileIndexWidth: command.fileIndexWidth }),
        tableAcrossDispatchers: command.tableAcrossDispatchers,
        ...(command.csv === undefined ? {} : { csv: command.csv }),
        ...(command.canalJson === undefined ? {} : { canalJson: command.canalJson }),
        resume: command.resume,
        retry: { maxRetries: Infinity, maxElapsedMs: command.retryFor.ms },
        spool: { dir: join(spoolRoot, 'spool') },
        onBadEvent,
        eventPosition: lineOf,
        ...metrics,
      }),
    );
    await drain(progress$, (report) => printer.report(report)).catch((error: unknown) => {
      if (error !== stoppedReading) throw error;
    });
    printer.line.clear();
    stdout.write(`${printer.summary(command.to, performance.now() - started)}${badSummary(bad)}\n`);
    return job.exitCode(0);
  } catch (error) {
    printer.line.clear();
    // A bad line stopped the run after what came before was made durable: say what that was.
    if (error instanceof DecodeError || error instanceof InvalidChangeEventError) stdout.write(`${printer.summary(command.to, performance.now() - started)}\n`);
    return printFailure(stderr, 'sluice sink', messageFor(error, command), hintFor(error, command));
  } finally {
    await badEventsStored;
    await input.close();
    await bad.close();
    await storage.close();
    await job.close();
  }
}

export const sinkCommand = Object.freeze({
  summary: 'change events (JSON lines) -> TiCDC storage-sink files on a storage URI',
  run: (args: string[]) => run(args),
});
