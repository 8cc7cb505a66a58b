import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createPool } from 'mysql2/promise';
import { FileStorage } from '../../../lib/storage/fileStorage.ts';
import { run } from '../../../pipelines/storageConsumer/cli.ts';
import { parseMysqlUri } from '../../../lib/mysql/uri.ts';
import { freshDatabase, sharedMariaDb } from '../../support/mariadb.ts';
import { serviceOrSkip } from '../../support/services.ts';
import { startTcpFaultProxy } from '../../support/tcpFaultProxy.ts';
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

  it('exit 2 for a checkpoint database that is not a name, a bad --retry-for, a memory:// or missing --from', async () => {
    const to = 'mysql://u:hunter2@127.0.0.1:1/';
    const cases: [string[], string][] = [
      [['--from', 'file:///tmp/x', '--to', to, '--checkpoint-database', '../x'], '--checkpoint-database must be a database name'],
      [['--from', 'file:///tmp/x', '--to', to, '--retry-for', 'soon'], '--retry-for must be a duration'],
      [['--from', 'memory://cdc', '--to', to], 'a memory:// storage lives inside one process'],
      [['--from', pathToFileURL(join(dir, 'no-such-folder')).href, '--to', to, '--once'], `--from ${pathToFileURL(join(dir, 'no-such-folder')).href}: the folder ${join(dir, 'no-such-folder')} does not exist`],
    ];
    for (const [args, message] of cases) {
      const err = capture();
      expect(await run(args, { stdout: capture().stream, stderr: err.stream }), args.join(' ')).to.equal(2);
      expect(err.text()).to.contain(message).and.not.contain('hunter2');
    }
  });

  it('--retry-for: a stall line on stderr while MySQL is unreachable; exit 1 naming the cause once the budget runs out', async function () {
    const url = (await serviceOrSkip(this, 'mariadb', sharedMariaDb)).url;
    const db = await freshDatabase(url, 'clistall');
    const root = join(dir, 'stall');
    const storage = new FileStorage(root);
    const table = def(db, 't', 100n);
    await putSchema(storage, ddl('CREATE TABLE', 'CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(64))', db, 't', 100n, table));
    await putMetadata(storage, 200n);
    const { host, port, user } = parseMysqlUri(url);
    const proxy = await startTcpFaultProxy({ host, port }, 'refuse');
    try {
      const err = capture();
      const code = await run(['--from', pathToFileURL(root).href, '--to', `mysql://${user}:hunter2@127.0.0.1:${proxy.port}/`, '--once', '--checkpoint-database', db, '--retry-for', '1500ms'], { stdout: capture().stream, stderr: err.stream });
      expect(code).to.equal(1);
      expect(err.text()).to.match(new RegExp(`MySQL at 127\\.0\\.0\\.1:${proxy.port} unreachable for \\d+ s, retrying until 1\\.5s: ECONNREFUSED`));
      expect(err.text()).to.contain('kept failing (ECONNREFUSED)').and.contain('--retry-for').and.not.contain('hunter2');
    } finally {
      await proxy.stop();
      await storage.close();
    }
  });

  it('MySQL refused at start and back after three stall lines: the replay goes on and exits 0 with every row', async function () {
    const url = (await serviceOrSkip(this, 'mariadb', sharedMariaDb)).url;
    const db = await freshDatabase(url, 'cliback');
    const root = join(dir, 'back');
    const storage = new FileStorage(root);
    const table = def(db, 't', 100n);
    await putSchema(storage, ddl('CREATE TABLE', 'CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(64))', db, 't', 100n, table));
    await putDataFiles(storage, table, [[insert(table, 101n, { id: 1, name: 'a' })], [insert(table, 102n, { id: 2, name: 'b' })]]);
    await putMetadata(storage, 200n);
    const { host, port, user } = parseMysqlUri(url);
    const proxy = await startTcpFaultProxy({ host, port }, 'refuse');
    try {
      let stallLines = 0;
      let errText = '';
      const err = {
        write: (text: string) => {
          errText += text;
          if (/unreachable for \d+ s, retrying until 1m: ECONNREFUSED/.test(text) && ++stallLines === 3) void proxy.setMode('forward');
        },
      };
      const out = capture();
      const code = await run(['--from', pathToFileURL(root).href, '--to', `mysql://${user}@127.0.0.1:${proxy.port}/`, '--once', '--include-commit-ts', '--checkpoint-database', db, '--retry-for', '1m'], { stdout: out.stream, stderr: err });
      expect(code, errText).to.equal(0);
      expect(stallLines).to.be.at.least(3);
      expect(out.text()).to.contain('sluice replay: 3 files, 2 rows in 1 round(s)');
      const check = createPool(url);
      try {
        const [rows] = await check.query(`SELECT id FROM \`${db}\`.t ORDER BY id`);
        expect(rows).to.deep.equal([{ id: 1 }, { id: 2 }]);
      } finally {
        await check.end();
      }
    } finally {
      await proxy.stop();
      await storage.close();
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
