/**
 * A throwaway MariaDB for tests (SERVICES.md): `mariadb-install-db` into a fresh temp datadir owned by
 * the `mysql` user, then `mariadbd` on 127.0.0.1 and a port chosen at run time, stopped by its PID.
 * When `MYSQL_URL` is set, that server is used instead and nothing is started.
 *
 * Invariant: nothing outlives the test run. One server is shared by every suite that asks for it
 * (startup takes a few seconds) and stopped by the root `after` hook below; suites stay independent
 * by each working in a database of its own (`freshDatabase`).
 */
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';

const run = promisify(execFile);

const MARIADBD = '/usr/sbin/mariadbd';
const INSTALL_DB = 'mariadb-install-db';

export interface MariaDbService {
  /** mysql://root@127.0.0.1:PORT/ (no database). */
  url: string;
  stop(): Promise<void>;
}

/** A port on 127.0.0.1 that was free a moment ago. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.listen(0, '127.0.0.1', resolve).once('error', reject));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function ownerIds(user: string): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${user}:`));
  if (line === undefined) throw new Error(`no user ${user} (install mariadb-server: apt-get install -y mariadb-server)`);
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

async function waitForServer(url: string, pidFile: string, logFile: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const connection = await mysql.createConnection(url);
      await connection.end();
      return;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2000) : '(no log)';
  throw new Error(`mariadbd did not accept connections within ${timeoutMs} ms (pid file ${existsSync(pidFile) ? 'written' : 'absent'}): ${String(last)}\n${log}`);
}

/** Starts a mariadbd of its own; rejects with its log when it does not come up. */
export async function startMariaDb(timeoutMs = 30_000): Promise<MariaDbService> {
  if (!existsSync(MARIADBD)) throw new Error(`${MARIADBD} not found (apt-get install -y mariadb-server)`);
  const dir = mkdtempSync(join(tmpdir(), 'sluice-mariadb-'));
  const { uid, gid } = ownerIds('mysql');
  // mariadbd refuses to run as root: the whole folder belongs to mysql.
  chownSync(dir, uid, gid);
  const datadir = join(dir, 'data');
  const pidFile = join(dir, 'mariadbd.pid');
  const launcherPid = join(dir, 'launcher.pid');
  const logFile = join(dir, 'error.log');
  const port = await freePort();
  let started = false;
  try {
    await run(INSTALL_DB, ['--no-defaults', `--datadir=${datadir}`, '--user=mysql', '--auth-root-authentication-method=normal', '--skip-test-db'], {
      timeout: timeoutMs,
    });
    await run('start-stop-daemon', [
      '--start', '--background', '--make-pidfile', '--pidfile', launcherPid, '--exec', MARIADBD, '--',
      '--no-defaults', '--user=mysql', `--datadir=${datadir}`, '--bind-address=127.0.0.1', `--port=${port}`,
      `--socket=${join(dir, 'mariadbd.sock')}`, `--pid-file=${pidFile}`, `--log-error=${logFile}`,
      '--skip-name-resolve', '--innodb-buffer-pool-size=256M', '--innodb-flush-log-at-trx-commit=2', '--max-connections=200',
    ]);
    started = true;
    const url = `mysql://root@127.0.0.1:${port}/`;
    await waitForServer(url, pidFile, logFile, timeoutMs);
    return { url, stop: () => stopServer(dir, launcherPid) };
  } catch (error) {
    if (started) await stopServer(dir, launcherPid);
    else rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

/** SIGTERM to the PID we started, SIGKILL after 10 s, then the folder goes. */
async function stopServer(dir: string, launcherPid: string): Promise<void> {
  const pid = existsSync(launcherPid) ? Number(readFileSync(launcherPid, 'utf8').trim()) : NaN;
  if (Number.isInteger(pid) && pid > 0) {
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
    const deadline = Date.now() + 10_000;
    while (alive() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    if (alive()) process.kill(pid, 'SIGKILL');
  }
  rmSync(dir, { recursive: true, force: true });
}

let shared: Promise<MariaDbService> | undefined;

/**
 * The server the tests share: `MYSQL_URL` when set, else one started on first use and stopped by the
 * root `after` hook. A failed start is remembered, so every suite skips (or fails under CI) alike.
 */
export function sharedMariaDb(): Promise<MariaDbService> {
  if (process.env.MYSQL_URL) return Promise.resolve({ url: process.env.MYSQL_URL, stop: async () => {} });
  shared ??= startMariaDb();
  return shared;
}

/**
 * A server this run started itself, for suites whose databases have fixed names (upstream's `test`):
 * the shared one unless `MYSQL_URL` points at somebody's server, else one of its own (its `stop`
 * stops it). Such a suite never drops a database on a server it did not start.
 */
export function throwawayMariaDb(): Promise<MariaDbService> {
  return process.env.MYSQL_URL ? startMariaDb() : sharedMariaDb().then((service) => ({ url: service.url, stop: async () => {} }));
}

let databases = 0;

/** A database name no other test of this run uses, created on `url`'s server. */
export async function freshDatabase(url: string, label = 't'): Promise<string> {
  const name = `sluice_${label}_${process.pid}_${++databases}`;
  const connection = await mysql.createConnection(url);
  try {
    await connection.query(`DROP DATABASE IF EXISTS \`${name}\``);
  } finally {
    await connection.end();
  }
  return name;
}

/** Root hook (mocha runs it once after every test file): stops the shared server if one started. */
if (typeof after === 'function') {
  after(async function () {
    this.timeout(20_000);
    if (shared === undefined) return;
    const pending = shared;
    shared = undefined;
    await pending.then((service) => service.stop(), () => undefined);
  });
}
