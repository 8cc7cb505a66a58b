/**
 * Batch flush end to end: weather readings from three stations (tags with spaces and commas, float,
 * integer, boolean and string fields) through `lineProtocolSink` with AIMD batch sizes and a
 * checkpoint of the unflushed buffer.
 *
 * With no database configured (INFLUX_URL unset) it writes line-protocol files through the storage
 * layer into a temp folder (removed at the end) and prints the first lines; set INFLUX_URL (and
 * INFLUX_DB, default sluice_example) to write to InfluxDB 1.x / OpenGemini instead.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { lastValueFrom, tap } from 'rxjs';
import { fromPaced } from '../lib/core/paced.ts';
import { openStorage, redactUri } from '../lib/storage/index.ts';
import { lineProtocolSink } from '../pipelines/batchFlush/lineProtocolSink.ts';
import type { LineSinkEvent } from '../pipelines/batchFlush/progress.ts';

export interface Reading {
  station: string;
  region: string;
  celsius: number;
  samples: number;
  sunny: boolean;
  note: string;
  atMs: number;
}

const STATIONS = [
  { station: 'Oslo Blindern', region: 'north,east' },
  { station: 'Bergen=Florida', region: 'west' },
  { station: 'Tromsø "Holt"', region: 'north' },
];
const READINGS = 3000;
const START_MS = Date.UTC(2024, 4, 1, 12);

/** READINGS readings, round-robin over the stations, one minute apart per station. */
export function* sampleReadings(count = READINGS): Generator<Reading> {
  for (let i = 0; i < count; i++) {
    const { station, region } = STATIONS[i % STATIONS.length]!;
    yield {
      station,
      region,
      celsius: Math.round((8 + 6 * Math.sin(i / 50)) * 100) / 100,
      samples: 10 + (i % 7),
      sunny: i % 3 === 0,
      note: i % 500 === 0 ? 'calibrated, "ok"' : '',
      atMs: START_MS + Math.floor(i / STATIONS.length) * 60_000,
    };
  }
}

export async function run(): Promise<void> {
  const influx = process.env.INFLUX_URL;
  const db = process.env.INFLUX_DB ?? 'sluice_example';
  const own = await mkdtemp(join(tmpdir(), 'sluice-batchflush-example-'));
  const url = influx ?? pathToFileURL(join(own, 'lines')).href;
  const counts = { batches: 0, points: 0, refused: 0, sizes: [] as number[] };
  try {
    if (influx) {
      const response = await fetch(`${influx.replace(/\/$/, '')}/query`, { method: 'POST', body: new URLSearchParams({ q: `CREATE DATABASE "${db}"` }) });
      if (!response.ok) throw new Error(`CREATE DATABASE ${db} on ${redactUri(influx)} answered ${response.status}`);
    }
    const count = (event: LineSinkEvent) => {
      if (event.kind === 'written') {
        counts.batches++;
        counts.points += event.points;
        counts.sizes.push(event.batchSize);
      } else if (event.kind === 'deadLetter') counts.refused++;
    };
    await lastValueFrom(
      fromPaced(sampleReadings(), { window: 500 }).pipe(
        lineProtocolSink<Reading>({
          url,
          db,
          precision: 'ms',
          lines: {
            measurement: 'weather',
            tags: { station: (r) => r.station, region: (r) => r.region },
            fields: {
              celsius: (r) => r.celsius,
              samples: { type: 'integer', get: (r) => r.samples },
              sunny: (r) => r.sunny,
              note: (r) => r.note || undefined,
            },
            timestamp: (r) => r.atMs,
          },
          batch: { minSize: 50, initialSize: 200, maxSize: 2000, maxDelayMs: 100 },
          checkpoint: { dir: join(own, 'checkpoint'), everyMs: 200 },
        }),
        tap(count),
      ),
      { defaultValue: undefined },
    );
    console.log(`  wrote ${counts.points} points in ${counts.batches} batches (sizes ${counts.sizes.join(', ')}), ${counts.refused} refused -> ${redactUri(url)}`);
    if (!influx) {
      const storage = await openStorage(url);
      try {
        const keys: string[] = [];
        for await (const key of storage.list(`${db}/`)) keys.push(key);
        console.log(`  ${keys.length} line-protocol files under ${db}/; the first lines of ${keys[0]}:`);
        const first = Buffer.from((await storage.get(keys[0]!))!).toString('utf8').split('\n').slice(0, 3);
        for (const line of first) console.log(`    ${line}`);
      } finally {
        await storage.close();
      }
      console.log('  To write to InfluxDB 1.x / OpenGemini instead: INFLUX_URL=http://127.0.0.1:8086 [INFLUX_DB=name] npm run example -- batchFlush');
    } else {
      console.log(`  query them: curl -G ${redactUri(influx)}/query --data-urlencode db=${db} --data-urlencode "q=SELECT count(*) FROM weather"`);
    }
  } finally {
    await rm(own, { recursive: true, force: true });
  }
}
