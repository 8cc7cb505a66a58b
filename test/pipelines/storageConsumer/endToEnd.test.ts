import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createPool, type Pool } from 'mysql2/promise';
import { lastValueFrom, toArray } from 'rxjs';
import { createMetricsRegistry } from '../../../lib/metrics/index.ts';
import { FileStorage } from '../../../lib/storage/fileStorage.ts';
import { S3Storage } from '../../../lib/storage/s3Storage.ts';
import { storageConsumer } from '../../../pipelines/storageConsumer/storageConsumer.ts';
import type { ConsumerProgress } from '../../../pipelines/storageConsumer/progress.ts';
import { freshDatabase, sharedMariaDb } from '../../support/mariadb.ts';
import { createS3Bucket, S3RVER_CREDENTIALS, serviceOrSkip, startS3rver, type S3rverService } from '../../support/services.ts';
import { actualTables, expectedTables, generateWorkload, random, sinkInto } from './workload.ts';

const CHILD = fileURLToPath(new URL('./replayChild.ts', import.meta.url));

describe('storageConsumer end to end (MariaDB)', function () {
  this.timeout(60_000);
  let url: string;
  let pool: Pool;
  let dir: string;

  before(async function () {
    this.timeout(40_000);
    url = (await serviceOrSkip(this, 'mariadb', sharedMariaDb)).url;
    pool = createPool({ uri: url, supportBigNumbers: true, bigNumberStrings: true, dateStrings: true, connectionLimit: 2 });
    dir = await mkdtemp(join(tmpdir(), 'sluice-replay-e2e-'));
  });
  after(async () => {
    await pool?.end();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const replayOnce = (from: string | FileStorage | S3Storage, checkpointDatabase: string, extra: object = {}) =>
    lastValueFrom(storageConsumer({ from, to: url, once: true, checkpointDatabase, csv: { includeCommitTs: true }, ...extra }).pipe(toArray()));

  it('50 tables with DML and DDL mid-stream, csv on file://: MariaDB equals the model, and a second run applies nothing', async () => {
    const db = await freshDatabase(url, 'e2e');
    const workload = generateWorkload({ seed: 1, prefix: db, tables: 50, rowEvents: 700 });
    const storage = new FileStorage(join(dir, 'csv'));
    await sinkInto(storage, workload.events, { csv: { includeCommitTs: true }, spool: { dir: join(dir, 'spool-csv') } });
    const registry = createMetricsRegistry();
    const progress = await replayOnce(pathToFileURL(join(dir, 'csv')).href, db, { metrics: { registry, pipeline: 'replay' } });
    const round = progress.find((p) => p.kind === 'round') as Extract<ConsumerProgress, { kind: 'round' }>;
    expect(round.rows).to.be.greaterThan(0);
    expect(progress.filter((p) => p.kind === 'ddl').length).to.be.greaterThan(50);
    expect(await actualTables(pool, workload)).to.deep.equal(expectedTables(workload));
    const metrics = await registry.metrics();
    expect(metrics).to.match(new RegExp(`replay_rows_applied_total\\{pipeline="replay"\\} ${round.rows}\\b`));
    expect(metrics).to.match(/replay_files_applied_total\{pipeline="replay",kind="schema"\} [1-9]/);
    expect(metrics).to.contain('replay_apply_duration_seconds_bucket');
    const again = await replayOnce(pathToFileURL(join(dir, 'csv')).href, db);
    expect(again.filter((p) => p.kind !== 'round')).to.deep.equal([]);
  });

  it('restarts at >= 20 random stop points (in-process unsubscribe and SIGKILLed child) and still equals the model', async function () {
    this.timeout(240_000); // ~56 s on a quiet 2-core machine, ~100 s when other work shares it
    const db = await freshDatabase(url, 'stops');
    const workload = generateWorkload({ seed: 7, prefix: db, tables: 50, rowEvents: 900 });
    const root = join(dir, 'stops');
    await sinkInto(new FileStorage(root), workload.events, { csv: { includeCommitTs: true }, fileSizeBytes: 1024, spool: { dir: join(dir, 'spool-stops') } });
    const uri = pathToFileURL(root).href;
    const rnd = random(99);
    const seen: number[] = [];
    const failures: unknown[] = [];
    // In-process: the consumer's own pool is ended at unsubscribe, so a transaction in flight is cut off.
    for (let stop = 0; stop < 12; stop++) {
      let applied = 0;
      const subscription = storageConsumer({ from: uri, to: url, intervalMs: 10, checkpointDatabase: db, maxRowsPerStatement: 7, csv: { includeCommitTs: true } }).subscribe({
        next: (p) => {
          if (p.kind === 'data') applied++;
        },
        error: (error: unknown) => failures.push(error),
      });
      await new Promise((resolve) => setTimeout(resolve, 30 + rnd() * 250));
      subscription.unsubscribe();
      seen.push(applied);
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    // A process of its own, killed with SIGKILL at a random moment.
    for (let kill = 0; kill < 8; kill++) {
      const child = spawn(process.execPath, ['--import', 'tsx', CHILD, uri, url, db], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
      // Wait for the first applied file (or the child giving up), then a random extra delay.
      const started = Date.now();
      while (out.length === 0 && child.exitCode === null && Date.now() - started < 15_000) await new Promise((resolve) => setTimeout(resolve, 10));
      await new Promise((resolve) => setTimeout(resolve, rnd() * 150));
      child.kill('SIGKILL');
      await exited;
      expect(err, 'child stderr').to.equal('');
      seen.push(out.length);
    }
    expect(failures).to.deep.equal([]);
    const final = await replayOnce(uri, db, { maxRowsPerStatement: 7 });
    expect(final.filter((p) => p.kind === 'data').length, 'files left after the stops').to.be.greaterThanOrEqual(0);
    expect(seen.filter((n) => n > 0).length, `files applied per stop: ${seen.join(',')}`).to.be.greaterThan(5);
    expect(await actualTables(pool, workload)).to.deep.equal(expectedTables(workload));
  });

  describe('on s3:// (s3rver), canal-json', () => {
    let s3rver: S3rverService | undefined;
    before(async function () {
      s3rver = await serviceOrSkip(this, 's3rver', startS3rver);
      await createS3Bucket(s3rver.endpoint, 'replay');
    });
    after(async () => {
      await s3rver?.stop();
    });

    it('replays 50 tables into MariaDB equal to the model', async () => {
      const db = await freshDatabase(url, 's3');
      const workload = generateWorkload({ seed: 3, prefix: db, tables: 50, rowEvents: 250 });
      const location = { scheme: 's3' as const, bucket: 'replay', prefix: 'cdc', endpoint: s3rver!.endpoint, region: 'us-east-1', forcePathStyle: true };
      const env = { AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey };
      const storage = new S3Storage(location, { env });
      try {
        await sinkInto(storage, workload.events, { protocol: 'canal-json', fileSizeBytes: 16 * 1024, spool: { dir: join(dir, 'spool-s3') } });
        await replayOnce(storage, db);
        expect(await actualTables(pool, workload)).to.deep.equal(expectedTables(workload));
      } finally {
        await storage.close();
      }
    });
  });
});
