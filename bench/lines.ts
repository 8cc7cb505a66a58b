/**
 * Suite `lines`: points/s into a local InfluxDB 1.x (a throwaway influxd per phase, so neither phase
 * inherits the other's compactions), in one run:
 * (a) `lineProtocolSink` (direct converter, AIMD batch sizes, 2 writes in flight, checkpoint in a temp
 *     folder with wake-after-save), fed by a paced source (window 20000) of Acked readings;
 * (b) baseline: a plain fixed-size writer: the same converter, batches of 5000 lines, one request at
 *     a time, no adaptation, no checkpoint.
 * Both write `points` points (4 tags-series per host, 2 float and 1 integer field) and are checked
 * to have written every point (count query) before the figure counts. Target: ratio a/b >= 1.2.
 *
 * Invariant guarded here: every influxd started is stopped and its temp dir removed, whatever happens.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lastValueFrom, Observable } from 'rxjs';
import { bindAck, type AckHandler, type Acked } from '../lib/core/ack.ts';
import { lineConverter } from '../lib/codec/lineProtocol.ts';
import { InfluxHttpWriter } from '../pipelines/batchFlush/lineWriter.ts';
import { lineProtocolSink } from '../pipelines/batchFlush/lineProtocolSink.ts';
import { influxCommand, influxQuery, startInfluxDb } from '../test/support/influxdb.ts';
import { type BenchParams, eventsPerSecond, measure, numberParam, peakRssBytes, printResult, progress } from './harness.ts';

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

async function withInflux<T>(db: string, body: (url: string) => Promise<T>): Promise<T> {
  const influx = await startInfluxDb();
  try {
    await influxCommand(influx.url, `CREATE DATABASE "${db}"`);
    return await body(influx.url);
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

export async function run(params: BenchParams): Promise<void> {
  const points = numberParam(params, 'points', 2_000_000, { min: 1, integer: true });
  const plainBatch = numberParam(params, 'plainBatch', 5000, { min: 1, integer: true });
  const maxInFlight = numberParam(params, 'maxInFlight', 2, { min: 1, integer: true });
  const withCheckpoint = numberParam(params, 'checkpoint', 1, { min: 0, max: 1, integer: true }) === 1;
  const checkpointDir = mkdtempSync(join(tmpdir(), 'sluice-bench-lines-'));
  try {
    progress(`lines: ${points} points; plain writer (batches of ${plainBatch}, 1 in flight) first`);
    const plain = await withInflux('bench_plain', async (url) => {
      const measured = await measure('plain writer', () => plainWriter(url, 'bench_plain', points, plainBatch));
      const written = await countIn(url, 'bench_plain');
      if (written !== points) throw new Error(`plain writer: ${written} of ${points} points in the database`);
      return measured;
    });
    let sizes: number[] = [];
    const sink = await withInflux('bench_sink', async (url) => {
      const measured = await measure('lineProtocolSink', () =>
        lastValueFrom(
          pacedReadings(points, 20_000).pipe(
            lineProtocolSink<Reading>({
              url,
              db: 'bench_sink',
              precision: 's',
              lines: {
                measurement: 'bench',
                tags: { host: (r) => `host-${r.i % HOSTS}`, region: (r) => (r.i % 2 === 0 ? 'eu-west' : 'us-east') },
                fields: { value: (r) => (r.i % 1000) / 7, load: (r) => (r.i % 97) / 3, count: { type: 'integer', get: (r) => r.i } },
                timestamp: (r) => BASE_S + Math.floor(r.i / HOSTS),
              },
              maxInFlight,
              // Loopback: compressing costs both sides CPU and saves no time (gzip pays off over a network).
              gzipAboveBytes: Infinity,
              ...(withCheckpoint ? { checkpoint: { dir: join(checkpointDir, 'checkpoint'), everyMs: 1000 } } : {}),
              onStats: (stats) => void (sizes[sizes.length - 1] !== stats.batchSize && sizes.push(stats.batchSize)),
            }),
          ),
          { defaultValue: undefined },
        ),
      );
      const written = await countIn(url, 'bench_sink');
      if (written !== points) throw new Error(`lineProtocolSink: ${written} of ${points} points in the database`);
      return measured;
    });
    if (sizes.length > 12) sizes = [...sizes.slice(0, 6), -1, ...sizes.slice(-5)];
    progress(`lineProtocolSink batch sizes: ${sizes.map((s) => (s < 0 ? '...' : s)).join(' ')}`);
    const value = eventsPerSecond(points, sink.elapsedNs);
    const baseline = eventsPerSecond(points, plain.elapsedNs);
    printResult({
      suite: 'lines',
      metric: 'points/s',
      value,
      baseline,
      ratio: value / baseline,
      peakRssBytes: peakRssBytes(),
      points,
      sinkPointsPerSecond: value,
      plainPointsPerSecond: baseline,
      plainBatch,
      maxInFlight,
      checkpoint: withCheckpoint,
    });
  } finally {
    rmSync(checkpointDir, { recursive: true, force: true });
  }
}
