/**
 * The writer the crash test kills: records `from..total-1` (a source that resumes after the last record
 * it saw woken, as a log consumer committing on wake would) through `lineProtocolSink` with a
 * checkpoint. Each woken record's id is appended to a log with a synchronous write before anything
 * else happens, so the log survives a SIGKILL exactly as far as the wakes went.
 *
 * argv: url db checkpointDir wakeLog from total
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { lastValueFrom, map, tap } from 'rxjs';
import { createAck } from '../../../lib/core/ack.ts';
import { fromPaced } from '../../../lib/core/paced.ts';
import { lineProtocolSink } from '../../../pipelines/batchFlush/lineProtocolSink.ts';

const [url, db, checkpointDir, wakeLog, fromText, totalText] = process.argv.slice(2);
const from = Number(fromText);
const total = Number(totalText);
const log = openSync(wakeLog!, 'a');

function* ids(): Generator<number> {
  for (let id = from; id < total; id++) yield id;
}

await lastValueFrom(
  fromPaced(ids(), { window: 2000 }).pipe(
    map(({ value, ack }) => ({
      value,
      ack: createAck({
        onEnqueued: () => {
          writeSync(log, `${value}\n`);
          ack.enqueued();
        },
        onFlushed: () => ack.flushed(),
        onFailed: (error) => ack.failed(error),
      }),
    })),
    lineProtocolSink<number>({
      url: url!,
      db: db!,
      precision: 's',
      lines: { measurement: 'crash', tags: { shard: (id) => `s${id % 3}` }, fields: { id: { type: 'integer', get: (id) => id } }, timestamp: (id) => id },
      batch: { minSize: 200, initialSize: 1000, maxSize: 3000, maxDelayMs: 50, targetLatencyMs: 400 },
      maxInFlight: 2,
      // A long interval: records are covered by the saves their held wakes trigger, not by the timer.
      checkpoint: { dir: checkpointDir!, everyMs: 5000 },
    }),
    tap((event) => {
      if (event.kind === 'restored') process.stdout.write(`restored ${event.lines}\n`);
    }),
  ),
  { defaultValue: undefined },
);
closeSync(log);
process.stdout.write('done\n');
