import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createPool } from 'mysql2/promise';
import { FileStorage } from '../../../lib/storage/fileStorage.ts';
import { run } from '../../../pipelines/storageConsumer/cli.ts';
import { freshDatabase, sharedMariaDb } from '../../support/mariadb.ts';
import { serviceOrSkip } from '../../support/services.ts';
import { ddl, def, insert, putDataFiles, putMetadata, putSchema } from './layout.ts';

function capture(isTTY = false) {
  let text = '';
  return { stream: { write: (t: string) => (text += t), isTTY }, text: () => text };
}

describe('sluice replay (CLI)', function () {
  this.timeout(30_000);
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-replay-cli-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('--help prints the usage; a bad command line exits 2 without printing the password', async () => {
    const out = capture();
    expect(await run(['--help'], { stdout: out.stream })).to.equal(0);
    expect(out.text()).to.contain('usage: sluice replay --from <storage-uri> --to mysql://');
    for (const args of [['--to', 'mysql://u:hunter2@h/'], ['--from', 'file:///tmp/x', '--to', 'mysql://u:hunter2@h/a/b'], ['--from', 'file:///tmp/x', '--to', 'mysql://u:hunter2@h/', '--interval', 'soon'], ['--from', 'relative', '--to', 'mysql://u:hunter2@h/']]) {
      const err = capture();
      expect(await run(args, { stdout: capture().stream, stderr: err.stream }), args.join(' ')).to.equal(2);
      expect(err.text()).to.match(/sluice replay: /).and.not.contain('hunter2');
    }
  });

  it('--once replays and prints a line per file and round (not a TTY), then a summary; exit 1 names a failure without the password', async function () {
    const url = (await serviceOrSkip(this, 'mariadb', sharedMariaDb)).url;
    const db = await freshDatabase(url, 'cli');
    const root = join(dir, 'cdc');
    const storage = new FileStorage(root);
    const table = def(db, 't', 100n);
    await putSchema(storage, ddl('CREATE TABLE', 'CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(64))', db, 't', 100n, table));
    await putDataFiles(storage, table, [[insert(table, 101n, { id: 1, name: 'a' })], [insert(table, 102n, { id: 2, name: 'b' })]]);
    await putMetadata(storage, 200n);
    const out = capture();
    const err = capture();
    const code = await run(['--from', pathToFileURL(root).href, '--to', url, '--once', '--include-commit-ts', '--checkpoint-database', db], { stdout: out.stream, stderr: err.stream });
    expect(err.text()).to.equal('');
    expect(code).to.equal(0);
    expect(out.text()).to.contain(`applied ${db}/t/100/2024-05-01/CDC000001.csv: 1 rows`).and.contain('round 1: 3 files, 2 rows').and.contain('sluice replay: 3 files, 2 rows in 1 round(s)');
    const pool = createPool(url);
    try {
      const [rows] = await pool.query(`SELECT id FROM \`${db}\`.t ORDER BY id`);
      expect(rows).to.deep.equal([{ id: 1 }, { id: 2 }]);
    } finally {
      await pool.end();
    }
    const bad = capture();
    const refused = url.replace(/^mysql:\/\/([^:@/]+)(:[^@/]*)?@/, 'mysql://$1:hunter2@');
    expect(await run(['--from', pathToFileURL(root).href, '--to', refused, '--once'], { stdout: capture().stream, stderr: bad.stream })).to.equal(1);
    expect(bad.text()).to.contain('Access denied').and.contain(':***@').and.not.contain('hunter2');
    await storage.close();
  });
});
