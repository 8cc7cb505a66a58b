/**
 * Real services for tests: an in-process S3 emulator (s3rver) and the Azure Blob emulator (azurite)
 * as a child process, each on a port chosen at run time, with its data in a fresh temp dir.
 *
 * Invariant: nothing outlives its handle. `stop()` closes exactly what `start*()` opened (the server
 * and its connections, the process by its own PID) and removes the temp dir, so mocha can end
 * without `--exit` and no service is left running.
 *
 * Emulator quirks to know (real S3/Azure do not have them): s3rver lists in directory-walk order
 * ('a/b' before 'a-c'), overwrites an object file in place (a concurrent GET can see a mix), and
 * answers every truncated ListObjectsV2 page with 500 InternalError (its continuation tokens use DES,
 * which OpenSSL 3 refuses). Azure and azurite list blob names in UTF-16 code unit order.
 *
 * `startFaultProxy(target)` puts a tiny HTTP proxy in front of either, which answers the next
 * requests with a chosen fault (a status, a reset socket, no answer at all) to test retries.
 *
 * Skipping: a suite starts its service through `serviceOrSkip(this, name, start)` in a `before` hook.
 * When the service cannot start, the suite is skipped with a line on stderr naming the service and the
 * error; with `SLUICE_REQUIRE_SERVICES=1` (CI) the hook fails instead, so a missing service is never
 * silently green.
 */
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, createServer, request as httpRequest } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A running s3rver: its endpoint (path-style, any bucket name), its data dir, and how to stop it. */
export interface S3rverService {
  endpoint: string;
  dir: string;
  stop(): Promise<void>;
}

/** A running azurite blob service with the well-known development account. */
export interface AzuriteService {
  /** http://127.0.0.1:PORT/devstoreaccount1 */
  endpoint: string;
  account: string;
  key: string;
  connectionString: string;
  stop(): Promise<void>;
}

/** s3rver accepts any credentials that sign consistently; these are its documented ones. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

/** Azurite's built-in development account and its published key (not a secret). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

// s3rver ships no type declarations; this is the part of its API used here.
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer?: Server;
}
type S3rverConstructor = new (options: Record<string, unknown>) => S3rverInstance;

const require = createRequire(import.meta.url);
const AZURITE_BLOB_BIN = fileURLToPath(new URL('../../node_modules/.bin/azurite-blob', import.meta.url));

/**
 * Starts s3rver in this process on 127.0.0.1, port 0, silent, storing under a fresh temp dir; it
 * creates no bucket. Fails after `startupTimeoutMs` (s3rver never settles when listen fails).
 */
export async function startS3rver(startupTimeoutMs = 10_000): Promise<S3rverService> {
  const S3rver = require('s3rver') as S3rverConstructor;
  const dir = await mkdtemp(join(tmpdir(), 'sluice-s3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir });
  let address: AddressInfo;
  let timer: NodeJS.Timeout | undefined;
  try {
    address = await Promise.race([
      server.run(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`s3rver did not listen on 127.0.0.1 within ${startupTimeoutMs} ms`)), startupTimeoutMs);
      }),
    ]);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  } finally {
    clearTimeout(timer);
  }
  let stopped: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    dir,
    stop: () =>
      (stopped ??= (async () => {
        const closing = server.close();
        // Clients keep connections alive; close() alone would wait for them.
        server.httpServer?.closeAllConnections();
        await closing;
        await rm(dir, { recursive: true, force: true });
      })()),
  };
}

export interface StartAzuriteOptions {
  /** How long to wait for "successfully listens on" before giving up (ms). */
  startupTimeoutMs?: number;
  /** How long to wait for the process to exit after SIGTERM before sending SIGKILL (ms). */
  stopTimeoutMs?: number;
}

/**
 * Spawns `azurite-blob` on 127.0.0.1, port 0, with a fresh temp dir, and reads the real port from
 * its stdout. Fails after `startupTimeoutMs` (or when the process exits early) with its output.
 */
export async function startAzurite(options: StartAzuriteOptions = {}): Promise<AzuriteService> {
  const { startupTimeoutMs = 15_000, stopTimeoutMs = 5_000 } = options;
  const dir = await mkdtemp(join(tmpdir(), 'sluice-azurite-'));
  const args = [
    AZURITE_BLOB_BIN,
    '--blobHost', '127.0.0.1',
    '--blobPort', '0',
    '--location', dir,
    '--silent',
    '--skipApiVersionCheck',
    '--disableTelemetry',
  ];
  // process.execPath runs the bin script directly, so the PID we hold is azurite's own.
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), stopTimeoutMs);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      const fail = (why: string) =>
        reject(new Error(`azurite-blob ${why}; its output:\n${output.trim() || '(none)'}`));
      const timer = setTimeout(() => fail(`did not report its port within ${startupTimeoutMs} ms`), startupTimeoutMs);
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        const match = /successfully listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(output);
        if (match) {
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      };
      // These listeners stay attached: they also drain the pipes so azurite never blocks writing.
      child.stdout.on('data', onData);
      child.stderr.on('data', (chunk: Buffer) => void (output += chunk.toString()));
      child.once('error', (error) => {
        clearTimeout(timer);
        fail(`could not be spawned (${AZURITE_BLOB_BIN}): ${error.message}`);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        fail(`exited before listening (code ${code}, signal ${signal})`);
      });
    });
  } catch (error) {
    await stop();
    throw error;
  }
  const endpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  let stopped: Promise<void> | undefined;
  return {
    endpoint,
    account: AZURITE_ACCOUNT,
    key: AZURITE_KEY,
    connectionString:
      `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${endpoint};`,
    stop: () => (stopped ??= stop()),
  };
}

/**
 * Starts a service for a suite, from its `before` hook: `svc = await serviceOrSkip(this, 'azurite', startAzurite)`.
 * When `start` fails the suite is skipped (a stderr line names the service and the error), or,
 * with `SLUICE_REQUIRE_SERVICES=1`, the hook fails with that error.
 */
export async function serviceOrSkip<T>(context: Mocha.Context, name: string, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    if (process.env.SLUICE_REQUIRE_SERVICES === '1') {
      throw new Error(`${name} did not start and SLUICE_REQUIRE_SERVICES=1 requires it: ${reason}`, { cause: error });
    }
    process.stderr.write(`skipping "${context.test?.parent?.fullTitle() ?? name}": ${name} did not start: ${reason}\n`);
    context.skip();
  }
}

/** What the proxy does to a request instead of forwarding it. */
export type Fault =
  /** Answers with this status (and an S3/Azure-style XML error body naming `code`). */
  | { status: number; code?: string }
  /** Reads the request, then destroys the socket without answering (the client sees a reset). */
  | 'reset'
  /** Reads the request and never answers (the client's timeout must fire). */
  | 'stall';

/** An HTTP proxy on 127.0.0.1 forwarding to one service, with faults injected on demand. */
export interface FaultProxy {
  /** The proxy's base URL with the target's path (e.g. http://127.0.0.1:PORT/devstoreaccount1). */
  endpoint: string;
  /** `METHOD /path?query` of every request received, faulted or forwarded, in arrival order. */
  readonly requests: string[];
  /** Faults served so far. */
  readonly faultsServed: number;
  /** The next `count` requests get `fault` instead of being forwarded (queued after earlier injections). */
  inject(fault: Fault, count?: number): void;
  stop(): Promise<void>;
}

/**
 * Starts a forwarding proxy in this process on 127.0.0.1, port 0, in front of `target` (a service
 * endpoint such as s3rver's or azurite's). Headers go through unchanged (Host included, so request
 * signatures made for the proxy's address still verify at the target).
 */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const targetUrl = new URL(target);
  const upstream = new Agent({ keepAlive: true });
  const pending: Fault[] = [];
  const requests: string[] = [];
  const stalled = new Set<Socket>();
  let faultsServed = 0;

  const serveFault = (fault: Fault, req: IncomingMessage, res: ServerResponse) => {
    faultsServed++;
    if (fault === 'stall') {
      stalled.add(req.socket);
      return;
    }
    if (fault === 'reset') {
      req.socket.destroy();
      return;
    }
    const code = fault.code ?? 'InjectedFault';
    const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>injected by the test proxy</Message></Error>`;
    res.writeHead(fault.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body), 'x-ms-error-code': code });
    res.end(body);
  };

  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const fault = pending.shift();
    if (fault !== undefined) {
      // Read the whole request first, so the fault hits a complete request, as a server's would.
      req.resume();
      req.once('end', () => serveFault(fault, req, res));
      return;
    }
    const forwarded = httpRequest(
      { host: targetUrl.hostname, port: targetUrl.port, method: req.method, path: req.url, headers: req.headers, agent: upstream },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forwarded.once('error', () => req.socket.destroy());
    req.pipe(forwarded);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  let stopped: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${port}${targetUrl.pathname.replace(/\/$/, '')}`,
    requests,
    get faultsServed() {
      return faultsServed;
    },
    inject(fault: Fault, count = 1) {
      for (let index = 0; index < count; index++) pending.push(fault);
    },
    stop: () =>
      (stopped ??= (async () => {
        const closing = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const socket of stalled) socket.destroy();
        server.closeAllConnections();
        upstream.destroy();
        await closing;
      })()),
  };
}

/** Creates a bucket on an s3rver (or any S3 endpoint with its credentials) for a test suite. */
export async function createS3Bucket(endpoint: string, bucket: string): Promise<void> {
  const admin = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3RVER_CREDENTIALS });
  try {
    await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    admin.destroy();
  }
}
