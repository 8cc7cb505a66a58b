/**
 * `sluice lines`: JSON-lines records from stdin (or a file) into InfluxDB 1.x / OpenGemini through
 * `lineProtocolSink`, with a summary at the end.
 *
 * Record: `{"measurement":"cpu","tags":{"host":"a"},"fields":{"load":0.5,"procs":{"int":12},"up":true,"os":"linux"},"time":1700000000000}`
 * (a JSON number is a float field; `{"int": n}` or `{"int": "digits"}` an integer; `time` in the
 * precision, a number or a string of digits; absent lets the server stamp the point).
 *
 * Invariant guarded here: the exit code says what happened: 2 for a command line that cannot run
 * (nothing read or written), 1 for a failure while running (with --checkpoint the unflushed lines stay
 * there and the next run with the same --checkpoint writes them first), for a bad record under
 * `--bad-records fail` (reading stops at it, every record before it is written first, the message
 * names its line) and for lines the server refused (unless --allow-refused); 0 once every record was
 * written. A server that cannot be reached is retried for --retry-for before the run fails.
 */
import { isAbsolute, resolve } from 'node:path';
import { fromPaced } from '../../lib/core/paced.ts';
import { parseFlags, printFailure, runCommandLine, UsageError, type CommandOutput, type TextOutput } from '../../lib/cli/commandLine.ts';
import { drain } from '../../lib/cli/drain.ts';
import { startJob } from '../../lib/cli/job.ts';
import { METRICS_FLAGS, metricsEndpointFromFlags, metricsFlagsUsage, type MetricsEndpointOptions } from '../../lib/cli/metricsFlags.ts';
import { nonBlankLines, openInput } from '../../lib/cli/inputLines.ts';
import { formatSeconds, parseDuration } from '../../lib/cli/units.ts';
import { parseRetryFor, RETRY_FOR_DEFAULT, RETRY_FOR_FLAG } from '../../lib/cli/retryFor.ts';
import { LineProtocolError, PRECISIONS, type Precision } from '../../lib/codec/lineProtocol.ts';
import { BAD_RECORDS_FLAG, BadRecords, badRecordsUsage, parseBadRecords, type BadRecordsPolicy } from '../../lib/cli/badRecords.ts';
import { escapeControl } from '../../lib/cli/terminalText.ts';
import { badRecordsMetric } from '../../lib/metrics/badRecords.ts';
import { RetriesExhaustedError } from '../../lib/core/retry.ts';
import { recordToLine } from './jsonRecord.ts';
import { LinesProgress } from './linesProgress.ts';
import { redactUri } from '../../lib/storage/index.ts';
import { lineProtocolSink } from './lineProtocolSink.ts';
import { LINE_SINK_DEFAULTS } from './options.ts';

export interface LinesCommandIo {
  stdin?: NodeJS.ReadableStream;
  stdout?: TextOutput;
  stderr?: TextOutput;
}

/** Records read ahead of the sink; they wait for a checkpoint (or a write) before more are read. */
const READ_WINDOW = 20_000;

export const LINES_CLI_DEFAULTS = Object.freeze({
  /** --retry-for: how long an unreachable or failing server is retried before the run fails. */
  retryFor: RETRY_FOR_DEFAULT,
  /** --progress-every: off a terminal, a progress line this often. */
  progressEvery: '10s',
});

const FLAGS = {
  to: { type: 'string' },
  db: { type: 'string' },
  precision: { type: 'string' },
  from: { type: 'string' },
  'retention-policy': { type: 'string' },
  checkpoint: { type: 'string' },
  'dead-letter': { type: 'string' },
  'max-in-flight': { type: 'string' },
  ...BAD_RECORDS_FLAG,
  'allow-refused': { type: 'boolean' },
  ...RETRY_FOR_FLAG,
  'progress-every': { type: 'string' },
  ...METRICS_FLAGS,
  help: { type: 'boolean', short: 'h' },
} as const;

export const LINES_USAGE = `usage: sluice lines --to http://127.0.0.1:8086 --db NAME [options] < records.jsonl

Writes JSON-lines records as line protocol to InfluxDB 1.x / OpenGemini (POST /write), in batches
sized by AIMD, retrying 5xx/429/network errors; lines the server refuses are isolated and listed.
One record per line (blank lines skipped):
  {"measurement":"cpu","tags":{"host":"a"},"fields":{"load":0.5,"procs":{"int":12},"up":true},"time":1700000000000}
A JSON number is a float field, {"int": 12} (or {"int": "9007199254740993"}) an integer field.

  --to <url>                 the server, http(s)://host:port; or a storage URI (file:///dir) to write .lp files
  --db <name>                the database
  --precision ns|us|ms|s     unit of "time" (default ms)
  --from <path|->            read this file instead of stdin
  --retention-policy <name>  the retention policy (default the database's)
  --checkpoint <dir|uri>     keep unflushed lines here (a folder or storage URI); a later run writes them first
  --dead-letter <uri>        store refused lines here as JSON lines (storage URI)
  --max-in-flight <n>        concurrent writes (default ${LINE_SINK_DEFAULTS.maxInFlight})
${badRecordsUsage(29)}
  --allow-refused            exit 0 even when the server refused lines (default: exit 1 once all is written)
  --retry-for <duration>     keep retrying an unreachable or failing server (5xx, resets, timeouts) this
                             long, printing a stall line, then fail (default ${LINES_CLI_DEFAULTS.retryFor})
  --progress-every <duration>  off a terminal, a progress line this often (default ${LINES_CLI_DEFAULTS.progressEvery})
${metricsFlagsUsage(29)}
  -h, --help                 this text

Credentials: INFLUX_USERNAME and INFLUX_PASSWORD, or INFLUX_TOKEN, from the environment.
Exit codes: 0 every record answered, 1 failed while running, 2 the command line cannot run;
130 (SIGINT), 143 (SIGTERM), 141 (stdout closed): stopped, the records read written (or kept in
--checkpoint) first (a second signal exits at once).`;

interface LinesCommand {
  to: string;
  db: string;
  precision: Precision;
  from: string;
  retentionPolicy?: string;
  checkpoint?: string;
  deadLetter?: string;
  maxInFlight: number;
  badRecords: BadRecordsPolicy;
  allowRefused: boolean;
  /** --retry-for as typed, and in ms. */
  retryFor: { text: string; ms: number };
  progressEveryMs: number;
  /** --metrics-port / --metrics-host, or undefined. */
  metricsEndpoint: MetricsEndpointOptions | undefined;
}

function progressEvery(text: string | undefined): number {
  const ms = parseDuration('progress-every', text ?? LINES_CLI_DEFAULTS.progressEvery);
  if (!(ms >= 1)) throw new UsageError(`--progress-every must be at least 1ms, got ${JSON.stringify(text)}`);
  return ms;
}

function parseCommand(args: string[]): LinesCommand | 'help' {
  const values = parseFlags(args, FLAGS);
  if (values.help) return 'help';
  if (!values.to) throw new UsageError('--to is required: the server, such as http://127.0.0.1:8086');
  if (!/^(https?|file|memory|s3|azure):\/\//i.test(values.to)) throw new UsageError(`--to must be an http(s):// URL or a storage URI, got ${JSON.stringify(redactUri(values.to))}`);
  if (!values.db) throw new UsageError('--db is required: the database to write into');
  const precision = (values.precision ?? 'ms') as Precision;
  if (!PRECISIONS.includes(precision)) throw new UsageError(`--precision must be one of ${PRECISIONS.join(', ')}, got ${JSON.stringify(values.precision)}`);
  const maxInFlight = values['max-in-flight'] === undefined ? LINE_SINK_DEFAULTS.maxInFlight : Number(values['max-in-flight']);
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1) throw new UsageError(`--max-in-flight must be a whole number >= 1, got ${values['max-in-flight']}`);
  return {
    to: values.to,
    db: values.db,
    precision,
    from: values.from ?? '-',
    maxInFlight,
    metricsEndpoint: metricsEndpointFromFlags(values),
    badRecords: parseBadRecords(values['bad-records']),
    allowRefused: values['allow-refused'] === true,
    retryFor: parseRetryFor(values['retry-for']),
    progressEveryMs: progressEvery(values['progress-every']),
    ...(values['retention-policy'] === undefined ? {} : { retentionPolicy: values['retention-policy'] }),
    ...(values.checkpoint === undefined ? {} : { checkpoint: values.checkpoint }),
    ...(values['dead-letter'] === undefined ? {} : { deadLetter: values['dead-letter'] }),
  };
}

/**
 * The input's records as lines of line protocol, read as consumed. A bad line goes to `bad`: with
 * `fail` reading stops there (the input ends, so what came before is written) and `bad.failure` keeps
 * the error; with `skip` or `dead-letter` it is counted (and stored) and reading goes on.
 */
async function* readRecords(input: NodeJS.ReadableStream, name: string, precision: Precision, bad: BadRecords): AsyncGenerator<string> {
  for await (const { text, lineNumber } of nonBlankLines(input)) {
    let line: string;
    try {
      line = recordToLine(text, `${name}:${lineNumber}`, precision);
    } catch (error) {
      if (!(error instanceof LineProtocolError)) throw error;
      if ((await bad.take({ source: name, lineNumber, text, error })) === 'stop') return;
      continue;
    }
    yield line;
  }
}

function credentials(env: NodeJS.ProcessEnv) {
  if (env.INFLUX_TOKEN) return { token: env.INFLUX_TOKEN };
  if (env.INFLUX_USERNAME) return { username: env.INFLUX_USERNAME, password: env.INFLUX_PASSWORD ?? '' };
  return undefined;
}

/**
 * Runs `sluice lines` with `args` and returns the exit code (0, 1 or 2); `io` replaces the process's
 * streams (tests).
 *
 * @example
 * process.exitCode = await run(['--to', 'http://127.0.0.1:8086', '--db', 'metrics', '--precision', 's']);
 */
export function run(args: string[], io: LinesCommandIo = {}): Promise<number> {
  return runCommandLine({ name: 'sluice lines', usage: LINES_USAGE, parse: parseCommand, execute: (command, output) => execute(command, output, io.stdin ?? process.stdin) }, args, io);
}

async function execute(command: LinesCommand, { stdout, stderr }: CommandOutput, stdin: NodeJS.ReadableStream): Promise<number> {
  const input = await openInput('from', command.from, stdin);
  const job = await startJob('sluice lines', { stdout, stderr }, { metrics: command.metricsEndpoint }).catch(async (error: unknown) => {
    await input.close();
    throw error;
  });
  const checkpoint = command.checkpoint === undefined
    ? undefined
    : /^[a-z0-9]+:\/\//i.test(command.checkpoint)
      ? { storage: command.checkpoint }
      : { dir: isAbsolute(command.checkpoint) ? command.checkpoint : resolve(command.checkpoint) };
  const auth = credentials(process.env);
  const metrics = job.metricsOption('lines');
  const bad = await BadRecords.open(command.badRecords, metrics.metrics === undefined ? undefined : badRecordsMetric(metrics.metrics, 'lines')).catch(async (error: unknown) => {
    await input.close();
    await job.close();
    throw error;
  });
  const progress = new LinesProgress(stderr, { everyMs: command.progressEveryMs, retryFor: command.retryFor.text });
  const started = performance.now();
  try {
    const events$ = fromPaced(job.untilStopped(readRecords(input.stream, input.name, command.precision, bad), input.stream), { window: READ_WINDOW }).pipe(
      lineProtocolSink<string>({
        url: command.to,
        db: command.db,
        precision: command.precision,
        maxInFlight: command.maxInFlight,
        retry: { maxRetries: Infinity, maxElapsedMs: command.retryFor.ms },
        ...(command.retentionPolicy === undefined ? {} : { retentionPolicy: command.retentionPolicy }),
        ...(auth === undefined ? {} : { auth }),
        ...(checkpoint === undefined ? {} : { checkpoint }),
        ...(command.deadLetter === undefined ? {} : { deadLetter: command.deadLetter }),
        ...metrics,
      }),
    );
    await drain(events$, (event) => progress.report(event));
    progress.close();
    stdout.write(`${summary(command, progress, bad, performance.now() - started)}\n`);
    if (bad.failure !== undefined) {
      return job.exitCode(
        printFailure(
          stderr,
          'sluice lines',
          bad.failure.message,
          `every record before it was written; fix the line and feed ${escapeControl(input.name)} again from it (points written again are overwritten, not duplicated), ` +
            'or pass --bad-records skip or dead-letter:<path> to go on past bad lines',
        ),
      );
    }
    if (progress.refused > 0 && !command.allowRefused) {
      const where = progress.storedIn.length === 0 ? 'listed above (pass --dead-letter <uri> to keep them)' : `stored in ${progress.storedIn.map(escapeControl).join(', ')}`;
      return job.exitCode(
        printFailure(stderr, 'sluice lines', `the server refused ${progress.refused} line${progress.refused === 1 ? '' : 's'}, ${where}`, 'fix them and write them again, or pass --allow-refused when refused lines are expected'),
      );
    }
    return job.exitCode(0);
  } catch (error) {
    progress.close();
    const kept = checkpoint === undefined
      ? 'lines not yet written are lost; pass --checkpoint to keep them across runs'
      : `unwritten lines are kept in the checkpoint ${command.checkpoint}; run again with the same --checkpoint to write them first`;
    const outOfTime = error instanceof RetriesExhaustedError && error.elapsedMs !== undefined;
    const hint = outOfTime ? `the server stayed unreachable for --retry-for ${command.retryFor.text}: raise it for longer outages; ${kept}` : kept;
    return printFailure(stderr, 'sluice lines', (error as Error).message, hint);
  } finally {
    await input.close();
    await bad.close();
    await job.close();
  }
}

/** The last line on stdout: what was written, refused and skipped, and where it went. */
function summary(command: LinesCommand, progress: LinesProgress, bad: BadRecords, elapsedMs: number): string {
  const refusedTo = progress.storedIn.length === 0 ? '' : ` (stored in ${progress.storedIn.map(escapeControl).join(', ')})`;
  const badLines = bad.policy.mode === 'fail' ? '' : `, ${bad.count} bad line${bad.count === 1 ? '' : 's'} ${bad.policy.mode === 'skip' ? 'skipped' : `in the ${bad.where}`}`;
  return (
    `sluice lines: ${progress.written} points written (${progress.restored} restored from the checkpoint), ${progress.refused} refused${refusedTo}${badLines}, ` +
    `${formatSeconds(elapsedMs)} -> ${redactUri(command.to)} db=${command.db}`
  );
}

export const linesCommand = Object.freeze({
  summary: 'JSON-lines records -> InfluxDB 1.x / OpenGemini line protocol (AIMD batches, retries, checkpoint)',
  run: (args: string[]) => run(args),
});
