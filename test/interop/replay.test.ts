/**
 * Interop, TiCDC to sluice: layouts exactly as TiCDC's storage sink writes them (test/interop/vectors,
 * each reconstructed from pingcap/ticdc's own tests and integration tests) replayed by
 * `storageConsumer` into a throwaway MariaDB with the changefeed's settings, then compared row by row
 * with the state the upstream workload leaves.
 *
 * Invariant guarded here: every TiCDC-written layout replays exactly (no row lost, skipped or left
 * at an older version), whatever the csv dialect, date separator, partition separator, dispatcher
 * split, table-version switch or key swap.
 *
 * The layouts use upstream's database names (`test`, `partition_table`): each test drops the
 * databases its layout names before replaying, so it runs only on a server this run started
 * (`throwawayMariaDb`: with MYSQL_URL set it starts one of its own rather than touch that server).
 */
import { expect } from 'chai';
import { createPool, type Pool } from 'mysql2/promise';
import { lastValueFrom, toArray } from 'rxjs';
import { MemoryStorage } from '../../lib/storage/memoryStorage.ts';
import { storageConsumer } from '../../pipelines/storageConsumer/storageConsumer.ts';
import type { ConsumerProgress } from '../../pipelines/storageConsumer/progress.ts';
import { freshDatabase, throwawayMariaDb, type MariaDbService } from '../support/mariadb.ts';
import { serviceOrSkip } from '../support/services.ts';
import { CANAL_JSON_LAYOUTS } from './vectors/canalJson.ts';
import { CSV_DIALECT_LAYOUTS } from './vectors/csvDialects.ts';
import { DATE_LAYOUTS } from './vectors/dates.ts';
import { DISPATCHER_LAYOUT } from './vectors/dispatchers.ts';
import { PARTITION_LAYOUTS } from './vectors/partitions.ts';
import { TABLE_VERSION_LAYOUT } from './vectors/tableVersion.ts';
import type { ExpectedTable, Layout } from './vectors/types.ts';
import { UPDATE_PK_LAYOUTS } from './vectors/updatePk.ts';

const UTF8 = new TextEncoder();

/** The databases a layout writes to: the first segment of every key but `metadata`. */
function databasesOf(layout: Layout): string[] {
  return [...new Set(layout.files.filter((f) => f.path !== 'metadata').map((f) => f.path.slice(0, f.path.indexOf('/'))))];
}

async function storageOf(layout: Layout): Promise<MemoryStorage> {
  const storage = new MemoryStorage({ name: 'ticdc' });
  for (const file of layout.files) await storage.put(file.path, UTF8.encode(file.text));
  return storage;
}

/** A table's rows as strings (BLOBs as UTF-8 text), in `orderBy` order. */
async function readTable(pool: Pool, table: ExpectedTable): Promise<Array<Array<string | null>>> {
  const columns = table.columns.map((c) => `\`${c}\``).join(', ');
  const [rows] = await pool.query({ sql: `SELECT ${columns} FROM \`${table.schema}\`.\`${table.table}\` ORDER BY \`${table.orderBy}\``, rowsAsArray: true });
  return (rows as unknown[][]).map((row) => row.map((value) => (value === null ? null : Buffer.isBuffer(value) ? value.toString('utf8') : String(value))));
}

describe('interop: TiCDC-written layouts replay into MariaDB', function () {
  this.timeout(30_000);
  let url: string;
  let pool: Pool;
  let server: MariaDbService | undefined;

  before(async function () {
    this.timeout(40_000);
    // Upstream's database names (`test`, ...) are dropped and made again: only on a server of our own.
    server = await serviceOrSkip(this, 'mariadb', throwawayMariaDb);
    url = server.url;
    pool = createPool({ uri: url, supportBigNumbers: true, bigNumberStrings: true, dateStrings: true, connectionLimit: 2 });
  });
  after(async () => {
    await pool?.end();
    await server?.stop();
  });

  /** Replays `layout` once into fresh databases; returns the progress reports. */
  async function replay(layout: Layout): Promise<ConsumerProgress[]> {
    for (const database of databasesOf(layout)) await pool.query(`DROP DATABASE IF EXISTS \`${database}\``);
    const checkpointDatabase = await freshDatabase(url, 'interop');
    const storage = await storageOf(layout);
    try {
      return await lastValueFrom(storageConsumer({ from: storage, to: url, once: true, checkpointDatabase, ...layout.settings }).pipe(toArray()));
    } finally {
      await storage.close();
    }
  }

  async function expectReplayed(layout: Layout): Promise<void> {
    const progress = await replay(layout);
    const dataFiles = layout.files.filter((f) => /\/CDC[^/]*\.(csv|json)$/.test(f.path)).length;
    expect(progress.filter((p) => p.kind === 'data').length, 'every data file applied').to.equal(dataFiles);
    for (const table of layout.expected) {
      expect(await readTable(pool, table), `${table.schema}.${table.table}`).to.deep.equal(table.rows);
    }
  }

  const groups: Array<[string, Layout[]]> = [
    ['csv dialects (pkg/sink/codec/csv tests)', CSV_DIALECT_LAYOUTS],
    ['unique-key and primary-key swaps (csv_storage_update_pk_clustered)', UPDATE_PK_LAYOUTS],
    ['partitioned tables (csv_storage_partition_table)', PARTITION_LAYOUTS],
    ['canal-json (canal_json_storage_partition_table)', CANAL_JSON_LAYOUTS],
    ['date folders (path_test.go)', DATE_LAYOUTS],
    ['dispatchers and table versions', [DISPATCHER_LAYOUT, TABLE_VERSION_LAYOUT]],
  ];
  for (const [title, layouts] of groups) {
    describe(title, () => {
      for (const layout of layouts) {
        it(`${layout.name} [${layout.source}]`, () => expectReplayed(layout));
      }
    });
  }

  it('a second replay of a TiCDC layout applies nothing (its checkpoint is at the last file of every folder)', async () => {
    const layout = PARTITION_LAYOUTS.find((l) => l.settings.dateSeparator === 'none' && l.settings.enablePartitionSeparator === true)!;
    for (const database of databasesOf(layout)) await pool.query(`DROP DATABASE IF EXISTS \`${database}\``);
    const checkpointDatabase = await freshDatabase(url, 'interop');
    const storage = await storageOf(layout);
    try {
      const options = { from: storage, to: url, once: true, checkpointDatabase, ...layout.settings };
      const first = await lastValueFrom(storageConsumer(options).pipe(toArray()));
      expect(first.filter((p) => p.kind === 'data').length).to.equal(8);
      const second = await lastValueFrom(storageConsumer(options).pipe(toArray()));
      expect(second.filter((p) => p.kind !== 'round')).to.deep.equal([]);
      expect(await readTable(pool, layout.expected[0]!)).to.deep.equal(layout.expected[0]!.rows);
    } finally {
      await storage.close();
    }
  });
});
