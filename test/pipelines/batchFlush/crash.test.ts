import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLatencyProxy, type LatencyProxy } from '../../support/latencyProxy.ts';
import { freshInfluxDatabase, influxQuery, sharedInfluxDb, type InfluxDbService } from '../../support/influxdb.ts';
import { serviceOrSkip } from '../../support/services.ts';

const CHILD = fileURLToPath(new URL('./crashWriter.ts', import.meta.url));
const TOTAL = 60_000;
const KILLS = 3;

/** The highest id the writer logged as woken (enqueued), -1 when none. */
function lastWoken(wakeLog: string): number {
  let text: string;
  try {
    text = readFileSync(wakeLog, 'utf8');
  } catch {
    return -1;
  }
  const ids = text.split('\n').filter(Boolean).map(Number);
  // A SIGKILL mid-write can leave a partial last line; only whole lines count.
  if (!text.endsWith('\n')) ids.pop();
  return ids.length === 0 ? -1 : Math.max(...ids);
}

describe('lineProtocolSink: SIGKILL at random points loses nothing woken', function () {
  this.timeout(60_000);
  let influx: InfluxDbService;
  let proxy: LatencyProxy;
  let dir: string;
  const children = new Set<ChildProcess>();

  before(async function () {
    influx = await serviceOrSkip(this, 'influxd', sharedInfluxDb);
    // Latency in proportion to the batch keeps lines in flight and buffered when the kill lands.
    proxy = await startLatencyProxy(influx.url, { fixedMs: 10, perKiBMs: 3 });
    dir = mkdtempSync(join(tmpdir(), 'sluice-lines-crash-'));
  });

  after(async () => {
    for (const child of children) child.kill('SIGKILL');
    await proxy?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Checkpoint segments on disk (a put cut by SIGKILL leaves a temp file, which is never read). */
  const segments = () => {
    try {
      return readdirSync(join(dir, 'checkpoint', 'lines-checkpoint')).filter((name) => name.endsWith('.ckpt'));
    } catch {
      return [];
    }
  };

  const spawnWriter = (db: string, from: number) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, proxy.endpoint, db, join(dir, 'checkpoint'), join(dir, 'woken.log'), String(from), String(TOTAL)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => void (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => void (output += chunk.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => {
        children.delete(child);
        resolve({ code, signal });
      }),
    );
    return { child, exited, output: () => output };
  };

  it('restarts from the checkpoint and every woken record reaches the server', async () => {
    const db = await freshInfluxDatabase(influx.url, 'crash');
    let killsWithCheckpoint = 0;
    let from = 0;
    for (let kill = 0; kill < KILLS; kill++) {
      const writer = spawnWriter(db, from);
      // The kill lands at a random point of the writing: once 2000 to 10 000 more records were
      // woken (whatever the machine's speed, never after the writer is done).
      const target = from + 2000 + Math.floor(Math.random() * 8000);
      let running = true;
      void writer.exited.then(() => (running = false));
      while (running && lastWoken(join(dir, 'woken.log')) < target) await new Promise((resolve) => setTimeout(resolve, 10));
      writer.child.kill('SIGKILL');
      const { signal } = await writer.exited;
      if (segments().length > 0) killsWithCheckpoint++;
      const woken = lastWoken(join(dir, 'woken.log'));
      expect(signal, `writer ${kill} exited by itself before the kill: ${writer.output()}`).to.equal('SIGKILL');
      expect(woken, `writer ${kill} made progress`).to.be.at.least(from - 1);
      from = woken + 1;
    }
    // The last run may start with nothing left to read (every record woken): it still writes the checkpoint.
    const last = spawnWriter(db, Math.min(from, TOTAL));
    const { code } = await last.exited;
    expect(code, last.output()).to.equal(0);
    expect(killsWithCheckpoint, 'some kill left unflushed lines in the checkpoint').to.be.at.least(1);

    const series = await influxQuery(influx.url, db, 'SELECT "id" FROM "crash"');
    const seen = new Set(series.flatMap((s) => s.values.map((row) => row[1] as number)));
    const missing = [];
    for (let id = 0; id < TOTAL; id++) if (!seen.has(id)) missing.push(id);
    expect(missing, `${missing.length} ids missing`).to.deep.equal([]);
    // A clean end leaves no checkpoint segment behind.
    expect(segments()).to.deep.equal([]);
  });
});
