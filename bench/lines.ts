/**
 * Suite `lines`: points/s into a local InfluxDB 1.x (a throwaway influxd per phase, so neither phase
 * inherits the other's compactions), in one run:
 * (a) `lineProtocolSink` (direct converter, AIMD batch sizes, 2 writes in flight, checkpoint in a temp
 *     folder with wake-after-save), fed by a paced source (window 20000) of Acked readings;
 * (b) baseline: a plain fixed-size writer: the same converter, batches of 5000 lines, one request at
 *     a time, no adaptation, no checkpoint.
 * Both write `points` points (4 tags-series per host, 2 float and 1 integer field) and are checked
 * to have written every point (count query) before the figure counts. Target: ratio a/b >= 1.2.
 * Runs in a child on tsc output (runCompiled), as an application runs the sink; beside wall time it
 * reports CPU per point of this process and of influxd (the two share 2 cores), so a phase that only
 * waited longer on a busy machine is told apart from one that did more work.
 *
 * Invariant guarded here: every influxd started is stopped and its temp dir removed, whatever happens.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lastValueFrom, Observable } from 'rxjs';
import { bindAck, type AckHandler, type Acked } from '../lib/core/ack.ts';
import { lineConverter } from '../lib/codec/lineProtocol.ts';
import { InvalidOptionError } from '../lib/core/errors.ts';
import { InfluxHttpWriter } from '../pipelines/batchFlush/lineWriter.ts';
import { lineProtocolSink } from '../pipelines/batchFlush/lineProtocolSink.ts';
import type { LineSinkStats } from '../pipelines/batchFlush/progress.ts';
import { influxCommand, influxQuery, startInfluxDb } from '../test/support/influxdb.ts';
import { type BenchParams, eventsPerSecond, measure, numberParam, peakRssBytes, printResult, progress, rssBreakdown, runCompiled } from './harness.ts';

interface Reading {
  i: number;
}

const HOSTS = 200;
const BASE_S = 1_700_000_000;

const toLine = lineConverter<Reading>({
  measurement: 'bench',
  tags: { host: (r) => `host-${r.i % HOSTS}`, region: (r) => (r.i % 2 === 0 ? 'eu-west' : 'us-east') },
  fields: { value: (r) => (r.i % 1000) / 7, load: (r) => (r.i % 97) / 3, count: { type: 'integer', get: (r) => r.i } },
  // One point per host per second: distinct series/time pairs, so every point is kept.
  timestamp: (r) => BASE_S + Math.floor(r.i / HOSTS),
  precision: 's',
});

function* readings(points: number): Generator<Reading> {
  for (let i = 0; i < points; i++) yield { i };
}

/**
 * A paced source of `points` readings honouring `window` (at most that many emitted and not yet
 * enqueued), emitting synchronously while the window has room: the generator loop of a real source,
 * without a microtask per item.
 */
function pacedReadings(points: number, window: number): Observable<Acked<Reading>> {
  return new Observable<Acked<Reading>>((subscriber) => {
    let next = 0;
    let outstanding = 0;
    let emitting = false;
    const wake: AckHandler<null> = {
      enqueued: () => {
        outstanding--;
        pump();
      },
    };
    const pump = () => {
      if (emitting) return;
      emitting = true;
      try {
        while (!subscriber.closed && outstanding < window && next < points) {
          outstanding++;
          subscriber.next({ value: { i: next++ }, ack: bindAck(wake, null) });
        }
        if (next >= points && !subscriber.closed) subscriber.complete();
      } finally {
        emitting = false;
      }
    };
    pump();
  });
}

async function countIn(url: string, db: string): Promise<number> {
  const series = await influxQuery(url, db, 'SELECT count("count") FROM "bench"');
  return (series[0]?.values[0]?.[1] as number | undefined) ?? 0;
}

/** CPU time (user + system, ms) of a process so far, from /proc; NaN where there is none. */
function processCpuMs(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

interface Phase {
  elapsedNs: bigint;
  /** CPU of this process during the phase (user + system, ms). */
  cpuMs: number;
  /** CPU of the influxd during the phase (ms; NaN without /proc). */
  influxCpuMs: number;
}

/** Runs `body` against a fresh influxd (so neither phase inherits the other's compactions), timed. */
async function phase(name: string, db: string, points: number, body: (url: string) => Promise<void>): Promise<Phase> {
  const influx = await startInfluxDb();
  try {
    await influxCommand(influx.url, `CREATE DATABASE "${db}"`);
    const influxBefore = processCpuMs(influx.pid);
    const cpuBefore = process.cpuUsage();
    const measured = await measure(name, () => body(influx.url));
    const cpu = process.cpuUsage(cpuBefore);
    const influxCpuMs = processCpuMs(influx.pid) - influxBefore;
    const written = await countIn(influx.url, db);
    if (written !== points) throw new Error(`${name}: ${written} of ${points} points in the database`);
    progress(`${name}: ${Math.round(eventsPerSecond(points, measured.elapsedNs))} points/s; influxd cpu ${influxCpuMs.toFixed(0)} ms; ${rssBreakdown()}`);
    return { elapsedNs: measured.elapsedNs, cpuMs: (cpu.user + cpu.system) / 1000, influxCpuMs };
  } finally {
    await influx.stop();
  }
}

/** The baseline: batches of `batchSize` lines, one POST at a time, no adaptation, no checkpoint. */
async function plainWriter(url: string, db: string, points: number, batchSize: number): Promise<void> {
  const writer = new InfluxHttpWriter({ url, db, precision: 's', gzipAboveBytes: Infinity, requestTimeoutMs: 60_000, maxSockets: 1 });
  try {
    let batch: string[] = [];
    for (const reading of readings(points)) {
      batch.push(toLine(reading));
      if (batch.length === batchSize) {
        const outcome = await writer.write(batch);
        if (!outcome.ok) throw new Error(`plain writer: ${outcome.status} ${outcome.message}`);
        batch = [];
      }
    }
    if (batch.length > 0) await writer.write(batch);
  } finally {
    await writer.close();
  }
}

interface SinkParams {
  maxInFlight: number;
  /** batch options passed to the sink (its defaults when absent). */
  batch: { maxSize?: number; initialSize?: number; targetLatencyMs?: number };
  window: number;
  last?: Readonly<LineSinkStats>;
  checkpointDir: string | undefined;
  sizes: number[];
}

function sinkWriter(url: string, db: string, points: number, params: SinkParams): Promise<void> {
  return lastValueFrom(
    pacedReadings(points, params.window).pipe(
      lineProtocolSink<Reading>({
        url,
        db,
        precision: 's',
        lines: {
          measurement: 'bench',
          tags: { host: (r) => `host-${r.i % HOSTS}`, region: (r) => (r.i % 2 === 0 ? 'eu-west' : 'us-east') },
          fields: { value: (r) => (r.i % 1000) / 7, load: (r) => (r.i % 97) / 3, count: { type: 'integer', get: (r) => r.i } },
          timestamp: (r) => BASE_S + Math.floor(r.i / HOSTS),
        },
        maxInFlight: params.maxInFlight,
        batch: params.batch,
        // Loopback: compressing costs both sides CPU and saves no time (gzip pays off over a network).
        gzipAboveBytes: Infinity,
        ...(params.checkpointDir === undefined ? {} : { checkpoint: { dir: params.checkpointDir, everyMs: 1000 } }),
        onStats: (stats) => {
          if (params.sizes[params.sizes.length - 1] !== stats.batchSize) params.sizes.push(stats.batchSize);
          params.last = stats;
        },
      }),
    ),
    { defaultValue: undefined },
  ).then(() => undefined);
}

/**
 * @param params.points points per phase (default 2e6); params.rounds rounds of (plain, sink), the
 *   order alternating per round (default 1); params.plainBatch (5000); params.maxInFlight (2);
 *   params.checkpoint 1/0 (1); params.window the source's window (20000); params.maxSize,
 *   params.initialSize, params.targetLatencyMs override the sink's batch defaults.
 */
export async function run(params: BenchParams): Promise<void> {
  await runCompiled('lines', 'lines', 'measurePhases', params);
}

/** The measured phases; run in a child on compiled JavaScript (see runCompiled). */
export async function measurePhases(params: BenchParams): Promise<void> {
  const points = numberParam(params, 'points', 2_000_000, { min: 1, integer: true });
  const rounds = numberParam(params, 'rounds', 1, { min: 1, integer: true });
  const plainBatch = numberParam(params, 'plainBatch', 5000, { min: 1, integer: true });
  const maxInFlight = numberParam(params, 'maxInFlight', 2, { min: 1, integer: true });
  const withCheckpoint = numberParam(params, 'checkpoint', 1, { min: 0, max: 1, integer: true }) === 1;
  const window = numberParam(params, 'window', 20_000, { min: 1, integer: true });
  // For profiling one side alone; the result line then has no ratio to report.
  const only = params['only'];
  if (only !== undefined && only !== 'plain' && only !== 'sink') throw new InvalidOptionError('bench', '--only', only, 'plain or sink');
  const batch: SinkParams['batch'] = {};
  for (const key of ['maxSize', 'initialSize', 'targetLatencyMs'] as const) {
    if (params[key] !== undefined) batch[key] = numberParam(params, key, 0, { min: 1, integer: true });
  }
  const checkpointDir = mkdtempSync(join(tmpdir(), 'sluice-bench-lines-'));
  const plain: Phase[] = [];
  const sink: Phase[] = [];
  let sizes: number[] = [];
  try {
    progress(`lines: ${points} points per phase, ${rounds} round(s) of plain writer (batches of ${plainBatch}, 1 in flight) and lineProtocolSink (node ${process.version})`);
    for (let round = 0; round < rounds; round++) {
      const runPlain = async () => plain.push(await phase('plain writer', 'bench_plain', points, (url) => plainWriter(url, 'bench_plain', points, plainBatch)));
      const runSink = async () => {
        sizes = [];
        const dir = withCheckpoint ? join(checkpointDir, `checkpoint-${round}`) : undefined;
        const sinkParams: SinkParams = { maxInFlight, batch, window, checkpointDir: dir, sizes };
        sink.push(await phase('lineProtocolSink', 'bench_sink', points, (url) => sinkWriter(url, 'bench_sink', points, sinkParams)));
        const last = sinkParams.last;
        if (last !== undefined) progress(`lineProtocolSink: ${last.batches} batches, ${last.requests} requests, ${last.checkpointSaves} checkpoint saves`);
      };
      // Alternate the order, so neither side always runs on the warmer (or the more loaded) machine.
      if (only === 'plain') await runPlain();
      else if (only === 'sink') await runSink();
      else if (round % 2 === 0) {
        await runPlain();
        await runSink();
      } else {
        await runSink();
        await runPlain();
      }
    }
    if (sizes.length > 12) sizes = [...sizes.slice(0, 6), -1, ...sizes.slice(-5)];
    progress(`lineProtocolSink batch sizes (last round): ${sizes.map((s) => (s < 0 ? '...' : s)).join(' ')}`);
    const total = (phases: Phase[], key: 'cpuMs' | 'influxCpuMs') => phases.reduce((sum, p) => sum + p[key], 0);
    const elapsed = (phases: Phase[]) => phases.reduce((sum, p) => sum + p.elapsedNs, 0n);
    if (only !== undefined) {
      const phases = only === 'sink' ? sink : plain;
      progress(`${only} only: ${Math.round(eventsPerSecond(points * rounds, elapsed(phases)))} points/s, cpu ${((total(phases, 'cpuMs') * 1000) / (points * rounds)).toFixed(3)} µs/point`);
      return;
    }
    const value = eventsPerSecond(points * rounds, elapsed(sink));
    const baseline = eventsPerSecond(points * rounds, elapsed(plain));
    const perPoint = (ms: number) => Math.round((ms * 1e6) / (points * rounds)) / 1000; // µs per point
    printResult({
      suite: 'lines',
      metric: 'points/s',
      value,
      baseline,
      ratio: value / baseline,
      peakRssBytes: peakRssBytes(),
      points,
      rounds,
      sinkPointsPerSecond: value,
      plainPointsPerSecond: baseline,
      sinkCpuUsPerPoint: perPoint(total(sink, 'cpuMs')),
      plainCpuUsPerPoint: perPoint(total(plain, 'cpuMs')),
      sinkInfluxdCpuUsPerPoint: perPoint(total(sink, 'influxCpuMs')),
      plainInfluxdCpuUsPerPoint: perPoint(total(plain, 'influxCpuMs')),
      plainBatch,
      maxInFlight,
      ...batch,
      window,
      checkpoint: withCheckpoint,
    });
  } finally {
    rmSync(checkpointDir, { recursive: true, force: true });
  }
}
