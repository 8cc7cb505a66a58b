/**
 * Suite `replay`: storageConsumer throughput from file:// into MariaDB, against a plain mysql2 loop
 * of 1000-row multi-row INSERTs of the same rows, in one run.
 *
 * Setup (not measured): `rows` rows over `tables` tables written as a storage sink layout (schema
 * files, csv data files of `rowsPerFile` rows with the commit ts column, index files, metadata)
 * with the lib/codec encoders into a temp folder. MySQL: `MYSQL_URL`, else a throwaway mariadbd
 * (test/support/mariadb.ts) started and stopped by the suite.
 * Measured: (a) `storageConsumer({ once: true })` from subscribe to complete: discovery, read, decode,
 * apply in one transaction per file with the checkpoint row; (b) baseline: for each table, the same
 * rows as `INSERT INTO t VALUES ?` with 1000 rows per statement through one pooled connection
 * (autocommit). The phases alternate (b a, a b, ...) `repeats` times, each on fresh databases with
 * the other's dropped, and the best of each is kept; progress lines show both phases' CPU time and
 * the server's. Target: ratio a/b >= 0.8. The result line is the last stdout line.
 *
 * Invariant guarded here: both phases are checked to have written every row (COUNT(*)), and the temp
 * folder, the databases and a server started here are removed whatever happens.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { lastValueFrom, toArray } from 'rxjs';
import type { DdlEvent, RowChange, TableDef } from '../lib/codec/changeEvent.ts';
import { encodeCsvRows } from '../lib/codec/csv.ts';
import { dataFilePath, FIRST_FILE_INDEX, formatIndexFile, indexFilePath, metadataFile } from '../lib/codec/layout.ts';
import { encodeSchemaFile } from '../lib/codec/schemaFile.ts';
import { createMysqlPool } from '../lib/mysql/pool.ts';
import { FileStorage } from '../lib/storage/fileStorage.ts';
import { storageConsumer } from '../pipelines/storageConsumer/storageConsumer.ts';
import { startMariaDb } from '../test/support/mariadb.ts';
import { type BenchParams, eventsPerSecond, measure, numberParam, peakRssBytes, printResult, progress } from './harness.ts';

const BASE_TS = BigInt(Date.UTC(2024, 4, 1, 12)) << 18n;
const NOTE = 'lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua, ut enim ad minim veniam';
const BATCH = 1000;

function tableDef(schema: string, t: number): TableDef {
  return {
    schema,
    table: `t${t}`,
    version: BASE_TS + BigInt(t),
    columns: [
      { name: 'id', type: 'BIGINT', primaryKey: true, nullable: false },
      { name: 'name', type: 'VARCHAR', precision: 64 },
      { name: 'amount', type: 'DECIMAL', precision: 12, scale: 2 },
      { name: 'created', type: 'DATETIME' },
      { name: 'note', type: 'VARCHAR', precision: 255 },
    ],
  };
}
const CREATE_COLUMNS = 'id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(64), amount DECIMAL(12,2), created DATETIME, note VARCHAR(255)';

function rowValues(id: number): [number, string, string, string, string] {
  return [id, `name-${id}`, `${id % 100000}.${String(id % 100).padStart(2, '0')}`, `2024-05-01 12:${String(id % 60).padStart(2, '0')}:00`, NOTE];
}

/** The sink layout of `rows` rows over `tables` tables, `rowsPerFile` rows per data file. */
export async function writeLayout(root: string, schema: string, rows: number, tables: number, rowsPerFile: number): Promise<void> {
  const storage = new FileStorage(root);
  let commitTs = BASE_TS + 1000n;
  for (let t = 0; t < tables; t++) {
    const def = tableDef(schema, t);
    const ddl: DdlEvent = { kind: 'ddl', commitTs: def.version, query: `CREATE TABLE t${t} (${CREATE_COLUMNS})`, ddlType: 'CREATE TABLE', schema, table: def.table, tableDef: def, blockedDispatchers: 'all' };
    const schemaFile = encodeSchemaFile(ddl);
    await storage.put(schemaFile.path, new TextEncoder().encode(schemaFile.text));
    const share = Math.floor(rows / tables) + (t < rows % tables ? 1 : 0);
    const folder = { schema, table: def.table, tableVersion: def.version, date: '2024-05-01' };
    let index = FIRST_FILE_INDEX; // TiCDC numbers a folder's data files from 1
    for (let first = 0; first < share; first += rowsPerFile, index++) {
      const batch: RowChange[] = [];
      for (let i = first; i < Math.min(share, first + rowsPerFile); i++) {
        const [id, name, amount, created, note] = rowValues(i * tables + t);
        batch.push({ kind: 'row', op: 'insert', schema, table: def.table, tableVersion: def.version, commitTs: ++commitTs, dispatcherId: `d${t}`, columns: { id, name, amount, created, note } });
      }
      const path = dataFilePath({ ...folder, index, extension: '.csv', fileIndexWidth: 20 });
      await storage.put(path, new TextEncoder().encode(encodeCsvRows(batch, def, { includeCommitTs: true })));
      await storage.put(indexFilePath(folder), new TextEncoder().encode(formatIndexFile(path.slice(path.lastIndexOf('/') + 1))));
    }
  }
  await storage.put('metadata', new TextEncoder().encode(metadataFile(commitTs)));
  await storage.close();
}

/**
 * The server's CPU time so far (ms), when it runs on this machine (its pid file is readable), else
 * NaN: the two phases share 2 cores with the server, so its CPU shows the work apart from waiting.
 */
async function serverCpuReader(pool: ReturnType<typeof createMysqlPool>['pool']): Promise<() => number> {
  try {
    const [result] = await pool.query('SELECT @@pid_file AS f');
    const pid = Number(readFileSync((result as Array<{ f: string }>)[0]!.f, 'utf8').trim());
    return () => {
      // /proc/<pid>/stat: utime and stime (fields 14, 15) in clock ticks of 10 ms.
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
      return (Number(fields[11]) + Number(fields[12])) * 10;
    };
  } catch {
    return () => NaN;
  }
}

async function countRows(pool: ReturnType<typeof createMysqlPool>['pool'], schema: string, tables: number): Promise<number> {
  let total = 0;
  for (let t = 0; t < tables; t++) {
    const [result] = await pool.query(`SELECT COUNT(*) n FROM \`${schema}\`.t${t}`);
    total += Number((result as Array<{ n: string }>)[0]!.n);
  }
  return total;
}

/**
 * @param params.rows rows in all (default 1e6); params.tables (default 10); params.rowsPerFile rows
 *   per data file (default 20000); params.repeats runs of each phase, interleaved, best kept (default 2);
 *   params.concurrency the consumer's applyConcurrency (default 2, its default).
 */
export async function run(params: BenchParams): Promise<void> {
  const rows = numberParam(params, 'rows', 1_000_000, { min: 1, integer: true });
  const tables = numberParam(params, 'tables', 10, { min: 1, integer: true });
  const rowsPerFile = numberParam(params, 'rowsPerFile', 20_000, { min: 1, integer: true });
  const repeats = numberParam(params, 'repeats', 2, { min: 1, integer: true });
  const concurrency = numberParam(params, 'concurrency', 2, { min: 1, max: 64, integer: true });
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-replay-'));
  const server = process.env.MYSQL_URL ? undefined : await startMariaDb();
  const url = process.env.MYSQL_URL ?? server!.url;
  const mysql = createMysqlPool(url, { connectionLimit: 2 });
  const serverCpu = await serverCpuReader(mysql.pool);
  const suffix = `${process.pid}`;
  const replayDb = `bench_replay_${suffix}`;
  const plainDb = `bench_plain_${suffix}`;
  const checkpointDb = `bench_replay_ckpt_${suffix}`;
  progress(`replay: ${rows} rows over ${tables} tables, ${rowsPerFile} rows per file, into ${server ? 'a throwaway mariadbd' : 'MYSQL_URL'} (node ${process.version})`);
  try {
    const root = join(dir, 'cdc');
    await measure('setup: write the sink layout (not part of the result)', () => writeLayout(root, replayDb, rows, tables, rowsPerFile));

    const dropAll = async () => {
      for (const db of [replayDb, plainDb, checkpointDb]) await mysql.pool.query(`DROP DATABASE IF EXISTS \`${db}\``);
    };
    const runPlain = async (repeat: number) => {
      await dropAll();
      await mysql.pool.query(`CREATE DATABASE \`${plainDb}\` DEFAULT CHARACTER SET utf8mb4`);
      for (let t = 0; t < tables; t++) await mysql.pool.query(`CREATE TABLE \`${plainDb}\`.t${t} (${CREATE_COLUMNS})`);
      const cpuBefore = serverCpu();
      const plain = await measure(`(b) plain mysql2 loop, 1000-row INSERTs, run ${repeat}`, async () => {
        const connection = await mysql.pool.getConnection();
        try {
          for (let t = 0; t < tables; t++) {
            const share = Math.floor(rows / tables) + (t < rows % tables ? 1 : 0);
            for (let first = 0; first < share; first += BATCH) {
              const values = [];
              for (let i = first; i < Math.min(share, first + BATCH); i++) values.push(rowValues(i * tables + t));
              await connection.query(`INSERT INTO \`${plainDb}\`.t${t} VALUES ?`, [values]);
            }
          }
        } finally {
          connection.release();
        }
      });
      const serverMs = serverCpu() - cpuBefore;
      const plainRows = await countRows(mysql.pool, plainDb, tables);
      if (plainRows !== rows) throw new Error(`replay: (b) left ${plainRows} of ${rows} rows`);
      return { rate: eventsPerSecond(rows, plain.elapsedNs), serverMs };
    };
    const runReplay = async (repeat: number) => {
      await dropAll();
      const cpuBefore = serverCpu();
      const replayed = await measure(`(a) storageConsumer, file:// -> MariaDB, run ${repeat}`, () =>
        lastValueFrom(storageConsumer({ from: pathToFileURL(root).href, to: url, once: true, checkpointDatabase: checkpointDb, csv: { includeCommitTs: true }, applyConcurrency: concurrency }).pipe(toArray())),
      );
      const serverMs = serverCpu() - cpuBefore;
      const replayedRows = await countRows(mysql.pool, replayDb, tables);
      if (replayedRows !== rows) throw new Error(`replay: (a) left ${replayedRows} of ${rows} rows`);
      return { rate: eventsPerSecond(rows, replayed.elapsedNs), serverMs };
    };

    // Interleaved, best of `repeats` each, the order alternating (b a, a b, ...): the machine is
    // shared, so one slow moment should not decide, and neither phase always follows the other's
    // writes. Each phase starts with the other's database dropped (the server's buffer pool is small).
    let replayRate = 0;
    let plainRate = 0;
    for (let repeat = 1; repeat <= repeats; repeat++) {
      let plain: { rate: number; serverMs: number };
      let replay: { rate: number; serverMs: number };
      if (repeat % 2 === 1) {
        plain = await runPlain(repeat);
        replay = await runReplay(repeat);
      } else {
        replay = await runReplay(repeat);
        plain = await runPlain(repeat);
      }
      plainRate = Math.max(plainRate, plain.rate);
      replayRate = Math.max(replayRate, replay.rate);
      progress(`run ${repeat}: (a) ${Math.round(replay.rate)} rows/s, (b) ${Math.round(plain.rate)} rows/s; server cpu (a) ${replay.serverMs} ms, (b) ${plain.serverMs} ms`);
    }

    printResult({
      suite: 'replay',
      metric: 'rows/s',
      value: replayRate,
      baseline: plainRate,
      ratio: replayRate / plainRate,
      replayRowsPerSecond: replayRate,
      plainRowsPerSecond: plainRate,
      rows,
      tables,
      rowsPerFile,
      repeats,
      concurrency,
      peakRssBytes: peakRssBytes(),
    });
  } finally {
    for (const db of [replayDb, plainDb, checkpointDb]) await mysql.pool.query(`DROP DATABASE IF EXISTS \`${db}\``).catch(() => undefined);
    await mysql.end();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
