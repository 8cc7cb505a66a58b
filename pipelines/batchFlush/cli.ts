/**
 * `sluice lines`: JSON-lines records from stdin (or a file) into InfluxDB 1.x / OpenGemini through
 * `lineProtocolSink`, with a summary at the end.
 *
 * Record: `{"measurement":"cpu","tags":{"host":"a"},"fields":{"load":0.5,"procs":{"int":12},"up":true,"os":"linux"},"time":1700000000000}`
 * (a JSON number is a float field; `{"int": n}` or `{"int": "digits"}` an integer; `time` in the
 * precision, a number or a string of digits; absent lets the server stamp the point).
 *
 * Invariant guarded here: the exit code says what happened: 2 for a command line that cannot run
 * (nothing read or written), 1 for a failure while running (a bad record names its line; with
 * --checkpoint the unflushed lines stay there and the next run with the same --checkpoint writes them
 * first), 0 once every record was answered by the server (refused lines are listed on stderr).
 */
import { isAbsolute, resolve } from 'node:path';
import { fromPaced } from '../../lib/core/paced.ts';
import { parseFlags, printFailure, runCommandLine, UsageError, type CommandOutput, type TextOutput } from '../../lib/cli/commandLine.ts';
import { drain } from '../../lib/cli/drain.ts';
import { nonBlankLines, openInput } from '../../lib/cli/inputLines.ts';
import { formatSeconds } from '../../lib/cli/units.ts';
import { LineProtocolError, Point, PRECISIONS, type Precision } from '../../lib/codec/lineProtocol.ts';
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

const FLAGS = {
  to: { type: 'string' },
  db: { type: 'string' },
  precision: { type: 'string' },
  from: { type: 'string' },
  'retention-policy': { type: 'string' },
  checkpoint: { type: 'string' },
  'dead-letter': { type: 'string' },
  'max-in-flight': { type: 'string' },
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
  -h, --help                 this text

Credentials: INFLUX_USERNAME and INFLUX_PASSWORD, or INFLUX_TOKEN, from the environment.
Exit codes: 0 every record answered, 1 failed while running, 2 the command line cannot run.`;

interface LinesCommand {
  to: string;
  db: string;
  precision: Precision;
  from: string;
  retentionPolicy?: string;
  checkpoint?: string;
  deadLetter?: string;
  maxInFlight: number;
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
    ...(values['retention-policy'] === undefined ? {} : { retentionPolicy: values['retention-policy'] }),
    ...(values.checkpoint === undefined ? {} : { checkpoint: values.checkpoint }),
    ...(values['dead-letter'] === undefined ? {} : { deadLetter: values['dead-letter'] }),
  };
}

/** A record of the input, with where it came from for messages. */
interface JsonRecord {
  readonly point: Point;
}

/** Turns one JSON line into a Point; errors name the line number and what is wrong. */
export function recordToPoint(text: string, where: string): Point {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new LineProtocolError(`${where}: not valid JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new LineProtocolError(`${where}: a record must be a JSON object`);
  const record = parsed as Record<string, unknown>;
  try {
    if (typeof record.measurement !== 'string') throw new LineProtocolError('"measurement" must be a string');
    const point = new Point(record.measurement);
    const tags = record.tags ?? {};
    if (typeof tags !== 'object' || tags === null || Array.isArray(tags)) throw new LineProtocolError('"tags" must be an object of strings');
    for (const [key, value] of Object.entries(tags)) {
      if (typeof value !== 'string') throw new LineProtocolError(`tag ${JSON.stringify(key)} must be a string, got ${JSON.stringify(value)}`);
      point.tag(key, value);
    }
    const fields = record.fields;
    if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) throw new LineProtocolError('"fields" must be an object');
    for (const [key, value] of Object.entries(fields)) {
      if (typeof value === 'number') point.floatField(key, value);
      else if (typeof value === 'boolean') point.booleanField(key, value);
      else if (typeof value === 'string') point.stringField(key, value);
      else if (typeof value === 'object' && value !== null && 'int' in value) {
        const int = (value as { int: unknown }).int;
        if (typeof int === 'number') point.intField(key, int);
        else if (typeof int === 'string' && /^-?\d+$/.test(int)) point.intField(key, BigInt(int));
        else throw new LineProtocolError(`field ${JSON.stringify(key)}: {"int": ...} needs a whole number or a string of digits, got ${JSON.stringify(int)}`);
      } else throw new LineProtocolError(`field ${JSON.stringify(key)} must be a number, boolean, string or {"int": n}, got ${JSON.stringify(value)}`);
    }
    const time = record.time;
    if (typeof time === 'number') point.timestamp(time);
    else if (typeof time === 'string' && /^-?\d+$/.test(time)) point.timestamp(BigInt(time));
    else if (time !== undefined && time !== null) throw new LineProtocolError(`"time" must be an integer or a string of digits, got ${JSON.stringify(time)}`);
    return point;
  } catch (error) {
    throw new LineProtocolError(`${where}: ${(error as Error).message}`, { cause: error });
  }
}

async function* readRecords(input: NodeJS.ReadableStream, name: string): AsyncGenerator<JsonRecord> {
  for await (const { text, lineNumber } of nonBlankLines(input)) yield { point: recordToPoint(text, `${name}:${lineNumber}`) };
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
  const checkpoint = command.checkpoint === undefined
    ? undefined
    : /^[a-z0-9]+:\/\//i.test(command.checkpoint)
      ? { storage: command.checkpoint }
      : { dir: isAbsolute(command.checkpoint) ? command.checkpoint : resolve(command.checkpoint) };
  const auth = credentials(process.env);
  let written = 0;
  let restored = 0;
  let refused = 0;
  const started = performance.now();
  try {
    const events$ = fromPaced(readRecords(input.stream, input.name), { window: READ_WINDOW }).pipe(
      lineProtocolSink<JsonRecord>({
        url: command.to,
        db: command.db,
        precision: command.precision,
        toPoint: (record) => record.point,
        maxInFlight: command.maxInFlight,
        ...(command.retentionPolicy === undefined ? {} : { retentionPolicy: command.retentionPolicy }),
        ...(auth === undefined ? {} : { auth }),
        ...(checkpoint === undefined ? {} : { checkpoint }),
        ...(command.deadLetter === undefined ? {} : { deadLetter: command.deadLetter }),
      }),
    );
    await drain(events$, (event) => {
      if (event.kind === 'written') written += event.points;
      else if (event.kind === 'restored') {
        restored += event.lines;
        stderr.write(`sluice lines: writing ${event.lines} lines restored from the checkpoint first\n`);
      } else {
        refused++;
        stderr.write(`sluice lines: refused (${event.status}): ${event.line}\n  ${event.message}${event.stored ? `\n  stored in ${event.stored}` : ''}\n`);
      }
    });
    stdout.write(
      `sluice lines: ${written} points written (${restored} restored from the checkpoint), ${refused} refused, ` +
        `${formatSeconds(performance.now() - started)} -> ${redactUri(command.to)} db=${command.db}\n`,
    );
    return 0;
  } catch (error) {
    const hint = checkpoint === undefined
      ? 'lines not yet written are lost; pass --checkpoint to keep them across runs'
      : `unwritten lines are kept in the checkpoint ${command.checkpoint}; run again with the same --checkpoint to write them first`;
    return printFailure(stderr, 'sluice lines', (error as Error).message, hint);
  } finally {
    await input.close();
  }
}

export const linesCommand = Object.freeze({
  summary: 'JSON-lines records -> InfluxDB 1.x / OpenGemini line protocol (AIMD batches, retries, checkpoint)',
  run: (args: string[]) => run(args),
});
