/**
 * `sluice replay` in a child process (bin/sluice.js), stopped while a file's apply is stalled (MariaDB
 * behind a proxy that stops answering in the middle of the apply): the first SIGINT abandons the
 * file's transaction (nothing of it committed; the connection waiting on the silent server is
 * dropped, so it cannot hold the process), prints the summary and exits 130. A second signal, for a
 * stop that still hangs, is tested with `sluice lines` in longRunningJob.test.ts. */
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createPool } from 'mysql2/promise';
import { FileStorage } from '../../lib/storage/fileStorage.ts';
import { parseMysqlUri } from '../../lib/mysql/uri.ts';
import { freshDatabase, sharedMariaDb } from '../support/mariadb.ts';
import { serviceOrSkip } from '../support/services.ts';
import { ddl, def, insert, putDataFiles, putMetadata, putSchema } from '../pipelines/storageConsumer/layout.ts';
import { ChildCommand } from './childCommand.ts';

/** A stack trace line: what a quiet exit never prints. */
const STACK = /\n\s+at /;

/**
 * A TCP proxy to MariaDB that forwards until the client sends a statement containing `marker`; from
 * then on it forwards nothing either way (the server seems to stop answering mid-statement) and
 * `stalled` resolves. Connections stay open until `stop()`.
 */
async function stallingProxy(target: { host: string; port: number }, marker: string) {
  const sockets = new Set<Socket>();
  let frozen = false;
  let onStall!: () => void;
  const stalled = new Promise<void>((resolve) => (onStall = resolve));
  const server: Server = createServer((client) => {
    const upstream = createConnection(target);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
    }
    client.on('data', (chunk: Buffer) => {
      if (!frozen && chunk.includes(marker)) {
        frozen = true;
        onStall();
      }
      if (!frozen) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!frozen) client.write(chunk);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    stalled,
    stop: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('sluice replay: stopped while MySQL is silent (child process)', function () {
  this.timeout(60_000);
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-replay-signal-test-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true, maxRetries: 20, retryDelay: 50 });
  });

  it("a SIGINT while a file's apply is stalled (MariaDB stops answering) exits 130 after the summary; the file's row not applied", async function () {
    const url = (await serviceOrSkip(this, 'mariadb', sharedMariaDb)).url;
    const db = await freshDatabase(url, 'signal2');
    const root = join(dir, 'cdc');
    const storage = new FileStorage(root);
    const table = def(db, 't', 100n);
    await putSchema(storage, ddl('CREATE TABLE', 'CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(64))', db, 't', 100n, table));
    await putDataFiles(storage, table, [[insert(table, 101n, { id: 1, name: 'stalled-row' })]]);
    await putMetadata(storage, 200n);
    await storage.close();

    const { host, port, user } = parseMysqlUri(url);
    // The apply's statement carries the row's value: the server "stops answering" right there.
    const proxy = await stallingProxy({ host, port }, 'stalled-row');
    try {
      const child = new ChildCommand(['replay', '--from', pathToFileURL(root).href, '--to', `mysql://${user}@127.0.0.1:${proxy.port}/`, '--include-commit-ts', '--checkpoint-database', db]);
      await Promise.race([proxy.stalled, child.exited.then(() => Promise.reject(new Error(`exited early: ${child.stderr}`)))]);
      child.kill('SIGINT');
      expect(await child.exited, child.stderr).to.equal(130);
      expect(child.stderr).to.match(/SIGINT: stopping/).and.not.match(/exiting at once/).and.not.match(STACK);
      // The stalled file's transaction was abandoned (never committed): its row is not there.
      expect(child.stdout).to.not.contain('stalled-row').and.not.match(/CDC\d+\.csv/);
      const pool = createPool(url);
      try {
        const [applied] = await pool.query(`SELECT id FROM \`${db}\`.t`);
        expect(applied).to.deep.equal([]);
      } finally {
        await pool.end();
      }
    } finally {
      await proxy.stop();
    }
  });
});
