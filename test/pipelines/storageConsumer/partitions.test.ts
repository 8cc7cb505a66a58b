/**
 * A partitioned table replayed into MariaDB: each physical partition folder (`{version}/{partitionId}`)
 * is a stream of its own, read by the sink's date-separator and enable-partition-separator, never by
 * the shape of its folders (issue 13: with date-separator=none, five partition folders were read as
 * five years, collapsed into one stream, and rows of later "years" were skipped as older).
 */
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createPool, type Pool } from 'mysql2/promise';
import { lastValueFrom, toArray } from 'rxjs';
import { DecodeError, type RowChange } from '../../../lib/codec/index.ts';
import type { DateSeparator } from '../../../lib/codec/layout.ts';
import { InvalidOptionError } from '../../../lib/core/errors.ts';
import { FileStorage } from '../../../lib/storage/fileStorage.ts';
import { MemoryStorage } from '../../../lib/storage/memoryStorage.ts';
import type { ExternalStorage } from '../../../lib/storage/storage.ts';
import { run } from '../../../pipelines/storageConsumer/cli.ts';
import type { ConsumerProgress } from '../../../pipelines/storageConsumer/progress.ts';
import { storageConsumer, type StorageConsumerOptions } from '../../../pipelines/storageConsumer/index.ts';
import { checkOptions } from '../../../pipelines/storageConsumer/options.ts';
import { freshDatabase, sharedMariaDb } from '../../support/mariadb.ts';
import { serviceOrSkip } from '../../support/services.ts';
import { rejectionOf } from '../../support/waiting.ts';
import { ddl, def, insert, putDataFiles, putMetadata, putSchema } from './layout.ts';

const T = 1n << 40n;
const PARTITIONS = [1093n, 1094n, 1095n, 1096n, 1097n];
/** The date folder each separator writes for the same day. */
const DATES: Record<DateSeparator, string> = { none: '', year: '2024', month: '2024-05', day: '2024-05-01' };

describe('storageConsumer layout options', () => {
  const base = { from: new MemoryStorage(), to: 'mysql://root@127.0.0.1:3306/' };

  it("default to TiCDC's: date-separator day, enable-partition-separator true", () => {
    expect(checkOptions(base)).to.include({ dateSeparator: 'day', enablePartitionSeparator: true });
    expect(checkOptions({ ...base, dateSeparator: 'none', enablePartitionSeparator: false })).to.include({ dateSeparator: 'none', enablePartitionSeparator: false });
  });

  it('refuse other values, naming the option and the accepted values', () => {
    expect(() => checkOptions({ ...base, dateSeparator: 'hour' as DateSeparator })).to.throw(InvalidOptionError, `storageConsumer: option dateSeparator must be 'none', 'year', 'month' or 'day', got "hour"`);
    expect(() => checkOptions({ ...base, enablePartitionSeparator: 'yes' as unknown as boolean })).to.throw(InvalidOptionError, 'storageConsumer: option enablePartitionSeparator must be a boolean, got "yes"');
  });
});

describe('storageConsumer: partitioned tables (MariaDB)', function () {
  this.timeout(30_000);
  let url: string;
  let pool: Pool;

  before(async function () {
    this.timeout(40_000);
    url = (await serviceOrSkip(this, 'mariadb', sharedMariaDb)).url;
    pool = createPool({ uri: url, connectionLimit: 2 });
  });
  after(async () => {
    await pool?.end();
  });

  /**
   * Table `db.p` in five partition folders, two data files of two rows each per partition. Commit ts
   * fall as the partition id rises: read as one stream in folder order, the later partitions' rows
   * would all be below the applied commit ts.
   */
  async function partitionedLayout<S extends ExternalStorage = MemoryStorage>(db: string, separator: DateSeparator, storage: S = new MemoryStorage() as unknown as S) {
    const table = def(db, 'p', T);
    await putSchema(storage, ddl('CREATE TABLE', 'CREATE TABLE p (id INT PRIMARY KEY, name VARCHAR(64))', db, 'p', T, table));
    const ids: number[] = [];
    for (const [n, partition] of PARTITIONS.entries()) {
      const base = T + 1000n - BigInt(100 * n);
      const files: RowChange[][] = [0, 1].map((file) =>
        [0, 1].map((row) => {
          const id = 100 * n + 10 * file + row;
          ids.push(id);
          return insert(table, base + BigInt(10 * file + row), { id, name: `partition ${partition}` });
        }),
      );
      await putDataFiles(storage, table, files, 'csv', DATES[separator], partition);
    }
    await putMetadata(storage, T + 2000n);
    return { storage, ids: ids.sort((a, b) => a - b) };
  }

  const replay = (storage: MemoryStorage, db: string, layout: Partial<StorageConsumerOptions> = {}) =>
    lastValueFrom(storageConsumer({ from: storage, to: url, once: true, checkpointDatabase: db, csv: { includeCommitTs: true }, ...layout }).pipe(toArray()));
  const ids = async (db: string) => ((await pool.query(`SELECT id FROM \`${db}\`.p ORDER BY id`))[0] as Array<{ id: number }>).map((r) => r.id);

  it('date-separator none: five partitions replay as five streams, nothing skipped, files 1..2 each; a second run applies nothing', async () => {
    const db = await freshDatabase(url, 'parts');
    const { storage, ids: expected } = await partitionedLayout(db, 'none');
    const progress = await replay(storage, db, { dateSeparator: 'none', enablePartitionSeparator: true });
    const data = progress.filter((p): p is Extract<ConsumerProgress, { kind: 'data' }> => p.kind === 'data');
    expect(data.map((p) => p.path).sort()).to.deep.equal(PARTITIONS.flatMap((id) => [`${db}/p/${T}/${id}/CDC000001.csv`, `${db}/p/${T}/${id}/CDC000002.csv`]));
    expect(data.every((p) => p.rows === 2 && p.skipped === 0), 'every row of every file applied').to.equal(true);
    expect(await ids(db)).to.deep.equal(expected);
    const [streams] = await pool.query(`SELECT stream, file_index FROM \`${db}\`.replay_checkpoint WHERE stream <> '#ddl' ORDER BY stream`);
    expect(streams).to.deep.equal(PARTITIONS.map((id) => ({ stream: `${id}/`, file_index: 2 })));
    expect((await replay(storage, db, { dateSeparator: 'none' })).filter((p) => p.kind !== 'round')).to.deep.equal([]);
  });

  for (const separator of ['year', 'month', 'day'] as const) {
    it(`date-separator ${separator} with partitions: every row of every partition`, async () => {
      const db = await freshDatabase(url, `parts_${separator}`);
      const { storage, ids: expected } = await partitionedLayout(db, separator);
      await replay(storage, db, separator === 'day' ? {} : { dateSeparator: separator });
      expect(await ids(db)).to.deep.equal(expected);
    });
  }

  it("fails, naming the index file and the setting that reads it, when replay's settings are not the sink's", async () => {
    const db = await freshDatabase(url, 'parts_wrong');
    const { storage } = await partitionedLayout(db, 'none');
    const error = await rejectionOf(replay(storage, db));
    expect(error).to.be.instanceOf(DecodeError);
    expect(error.message).to.match(new RegExp(`^${db}/p/${T}/1093/meta/CDC\\.index: one level after the table version \\("1093"\\), but date-separator=day and enable-partition-separator=true expect`));
    expect(error.message).to.contain('it reads with date-separator=none (partition 1093) or with date-separator=year (date 1093)');
    const unpartitioned = await rejectionOf(replay(storage, db, { dateSeparator: 'none', enablePartitionSeparator: false }));
    expect(unpartitioned.message).to.contain('it reads with enable-partition-separator=true (partition 1093)');
    const [tables] = await pool.query('SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND table_name = ?', [db, 'p']);
    expect(tables, 'nothing applied').to.deep.equal([]);
  });

  describe('sluice replay --date-separator, --enable-partition-separator', () => {
    const capture = () => {
      let text = '';
      return { stream: { write: (t: string) => (text += t), isTTY: false }, text: () => text };
    };
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'sluice-replay-parts-'));
    });
    after(async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('take the sink\'s settings: a partitioned layout without date folders replays whole; other settings exit 1 naming the flag to pass', async () => {
      const db = await freshDatabase(url, 'parts_cli');
      const root = join(dir, 'none');
      const storage = new FileStorage(root);
      const { ids: expected } = await partitionedLayout(db, 'none', storage);
      await storage.close();
      const from = pathToFileURL(root).href;
      const wrong = capture();
      const flags = ['--from', from, '--to', url, '--once', '--include-commit-ts', '--checkpoint-database', db];
      expect(await run([...flags, '--date-separator', 'none', '--enable-partition-separator=false'], { stdout: capture().stream, stderr: wrong.stream })).to.equal(1);
      expect(wrong.text()).to.contain(`${db}/p/${T}/1093/meta/CDC.index: one level after the table version`).and.contain('--enable-partition-separator');
      const out = capture();
      const err = capture();
      expect(await run([...flags, '--date-separator', 'none', '--enable-partition-separator'], { stdout: out.stream, stderr: err.stream })).to.equal(0);
      expect(err.text()).to.equal('');
      expect(out.text()).to.contain(`applied ${db}/p/${T}/1097/CDC000002.csv: 2 rows`).and.contain('sluice replay: 11 files, 20 rows');
      expect(await ids(db)).to.deep.equal(expected);
    });

    it('refuses an unknown --date-separator (exit 2) and documents both flags', async () => {
      const err = capture();
      expect(await run(['--from', 'file:///tmp/x', '--to', 'mysql://u@h/', '--date-separator', 'hour'], { stdout: capture().stream, stderr: err.stream })).to.equal(2);
      expect(err.text()).to.contain('sluice replay: --date-separator must be none, year, month or day (the sink\'s date-separator), got "hour"');
      const help = capture();
      expect(await run(['--help'], { stdout: help.stream })).to.equal(0);
      expect(help.text()).to.match(/--date-separator none\|year\|month\|day .*default day/).and.match(/--enable-partition-separator\[=false\] .*\n.*default true/);
    });
  });
});
