/**
 * The storage consumer end to end: the storage sink example's stream (two tables, rows from three
 * dispatchers, an ALTER TABLE mid-stream) written to a temp folder, then replayed into MySQL with
 * `storageConsumer`, twice: the second run finds everything applied (the checkpoint table says so).
 * MySQL comes from `MYSQL_URL` (mysql://user:pass@host:port/), else 127.0.0.1:3306 as root if one
 * answers; with neither, it says how to point it at one and exits cleanly.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { lastValueFrom, toArray } from 'rxjs';
import { fromPaced } from '../lib/core/paced.ts';
import { createMysqlPool, redactMysqlUri } from '../lib/mysql/index.ts';
import { openStorage } from '../lib/storage/index.ts';
import { storageConsumer, type ConsumerProgress } from '../pipelines/storageConsumer/index.ts';
import { storageSink } from '../pipelines/storageSink/storageSink.ts';
import { sampleChangeEvents } from './storageSink.ts';

const LOCAL_MYSQL = 'mysql://root@127.0.0.1:3306/';
/** The example's own databases: the sink example's schema, renamed so nothing of the user's is touched. */
const CHECKPOINT_DATABASE = 'sluice_example_replay';

/** MYSQL_URL, or a local root server if one answers within a second; undefined otherwise. */
async function findMysql(): Promise<string | undefined> {
  const candidate = process.env.MYSQL_URL ?? LOCAL_MYSQL;
  const mysql = createMysqlPool(candidate, { connectionLimit: 1, mysql2: { connectTimeout: 1000 } });
  try {
    await mysql.pool.query('SELECT 1');
    return candidate;
  } catch (error) {
    if (process.env.MYSQL_URL) throw new Error(`MYSQL_URL ${redactMysqlUri(candidate)} does not answer: ${(error as Error).message}`);
    return undefined;
  } finally {
    await mysql.end().catch(() => undefined);
  }
}

export async function run(): Promise<void> {
  const mysqlUrl = await findMysql();
  if (mysqlUrl === undefined) {
    console.log('  no MySQL configured: set MYSQL_URL=mysql://user:pass@host:port/ (or run one on 127.0.0.1:3306 for root) and run again;');
    console.log('  the example writes the databases `shop` and `sluice_example_replay` there. Skipped.');
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), 'sluice-replay-example-'));
  const uri = pathToFileURL(join(dir, 'cdc')).href;
  const storage = await openStorage(uri);
  const mysql = createMysqlPool(mysqlUrl);
  try {
    await lastValueFrom(
      fromPaced(sampleChangeEvents(), { window: 16 }).pipe(
        storageSink({ storage, protocol: 'csv', flushIntervalMs: 200, fileSizeBytes: 4 * 1024, checkpointIntervalMs: 200, spool: { dir: join(dir, 'spool') } }),
      ),
      { defaultValue: undefined },
    );
    console.log(`  the sink example's stream is in ${uri}; replaying into ${redactMysqlUri(mysqlUrl)}`);
    // A clean slate, but only of what the example made: a `shop` database without the example's
    // checkpoint database beside it is someone else's, and is left alone.
    const [found] = await mysql.pool.query('SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN (?, ?)', ['shop', CHECKPOINT_DATABASE]);
    const names = new Set((found as { name: string }[]).map((row) => row.name));
    if (names.has('shop') && !names.has(CHECKPOINT_DATABASE)) {
      console.log(`  ${redactMysqlUri(mysqlUrl)} already has a database \`shop\` that this example did not make; it is left alone.`);
      console.log('  Point MYSQL_URL at a scratch server (mysql://user:pass@host:port/) and run again. Skipped.');
      return;
    }
    await mysql.pool.query('DROP DATABASE IF EXISTS shop');
    await mysql.pool.query(`DROP DATABASE IF EXISTS ${CHECKPOINT_DATABASE}`);

    const replay = () => lastValueFrom(storageConsumer({ from: storage, to: mysql.pool, once: true, checkpointDatabase: CHECKPOINT_DATABASE }).pipe(toArray()));
    const first = await replay();
    for (const p of first) {
      if (p.kind === 'ddl') console.log(`  ${p.effect.padEnd(12)} ${p.table} (${p.path})`);
    }
    const round = (progress: ConsumerProgress[]) => progress.find((p) => p.kind === 'round') as Extract<ConsumerProgress, { kind: 'round' }>;
    console.log(`  first run: ${round(first).files} files, ${round(first).rows} rows applied`);
    const [counts] = await mysql.pool.query('SELECT (SELECT COUNT(*) FROM shop.customers) customers, (SELECT COUNT(*) FROM shop.orders) orders, (SELECT COUNT(*) FROM shop.orders WHERE coupon = \'SPRING\') spring');
    console.log(`  MySQL now holds: ${JSON.stringify((counts as unknown[])[0])}`);
    const second = await replay();
    console.log(`  second run: ${round(second).files} files applied (the checkpoint table ${CHECKPOINT_DATABASE}.replay_checkpoint already covers them)`);
    if (round(second).files !== 0) throw new Error('the second run applied files again');
  } finally {
    await mysql.end();
    await storage.close();
    await rm(dir, { recursive: true, force: true });
  }
}
