/**
 * Where a batch of lines goes: `POST /write` of an InfluxDB-1.x-compatible server (InfluxDB,
 * OpenGemini), or line-protocol files on an ExternalStorage (file://, s3://..., for runs without a
 * database).
 *
 * Invariant guarded here: every answer is classified exactly once: 2xx is written; 400, 413 and 422
 * are a rejection of (some of) the lines, returned with the server's message so the caller can
 * isolate them; 408, 429, 5xx, timeouts and network errors throw a retryable `LineWriteError`; any
 * other status (401, 403, 404 database not found...) throws a fatal one, since no retry or split can
 * fix it. Response bodies are read up to a cap, so a misbehaving server cannot fill memory.
 */
import { randomBytes } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { PRECISION_PARAM, type Precision } from '../../lib/codec/lineProtocol.ts';
import { redactUri } from '../../lib/storage/index.ts';
import type { ExternalStorage } from '../../lib/storage/storage.ts';

const gzipAsync = promisify(gzip);
const NEWLINE = Buffer.from('\n');

/** The server refused the lines it was sent (some or all): 400, 413 or 422 with its message. */
export interface WriteRejected {
  readonly ok: false;
  readonly status: number;
  readonly message: string;
}

export type WriteOutcome = { readonly ok: true } | WriteRejected;

/** Writes whole batches of lines; the sink owns batching, retries and isolation of bad lines. */
export interface LineWriter {
  /** The destination for messages, without credentials. */
  readonly target: string;
  /** Bytes sent so far (after compression). */
  readonly bytesSent: number;
  /** Writes lines: strings, or their UTF-8 bytes joined by '\n' (no trailing '\n'). */
  write(lines: readonly string[] | Buffer): Promise<WriteOutcome>;
  close(): Promise<void>;
}

/** A write that failed without a verdict on the lines: `retryable` says whether trying again can help. */
export class LineWriteError extends Error {
  override readonly name = 'LineWriteError';
  readonly retryable: boolean;
  /** The HTTP status, or undefined for a network error or timeout. */
  readonly status: number | undefined;

  constructor(message: string, retryable: boolean, status?: number, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.retryable = retryable;
    this.status = status;
  }
}

export type InfluxAuth = { readonly username: string; readonly password: string } | { readonly token: string };

export interface InfluxHttpWriterOptions {
  /** http(s)://host:port of the server (a path prefix is kept). */
  url: string;
  db: string;
  precision: Precision;
  retentionPolicy?: string;
  auth?: InfluxAuth;
  /** Bodies larger than this are sent gzip-compressed (bytes; Infinity = never). */
  gzipAboveBytes: number;
  /** A request with no answer after this long is abandoned and retried (ms). */
  requestTimeoutMs: number;
  /** Connections kept open to the server. */
  maxSockets: number;
}

const REJECTED = new Set([400, 413, 422]);
const RETRYABLE = new Set([408, 429]);
/** The most of an error body kept for the message. */
const MAX_ERROR_BODY = 64 * 1024;

/** POST /write to an InfluxDB 1.x API over keep-alive connections. */
export class InfluxHttpWriter implements LineWriter {
  readonly target: string;
  #bytesSent = 0;
  readonly #url: URL;
  readonly #headers: Record<string, string>;
  readonly #options: InfluxHttpWriterOptions;
  readonly #agent: HttpAgent;
  readonly #request: typeof httpRequest;

  constructor(options: InfluxHttpWriterOptions) {
    this.#options = options;
    const base = new URL(options.url);
    const url = new URL(`${base.pathname.replace(/\/$/, '')}/write`, base);
    url.searchParams.set('db', options.db);
    if (options.retentionPolicy !== undefined) url.searchParams.set('rp', options.retentionPolicy);
    url.searchParams.set('precision', PRECISION_PARAM[options.precision]);
    this.#url = url;
    this.target = `${redactUri(base.origin + base.pathname.replace(/\/$/, ''))} db=${options.db}`;
    this.#headers = { 'content-type': 'text/plain; charset=utf-8' };
    const auth = options.auth;
    if (auth !== undefined) {
      this.#headers.authorization =
        'token' in auth ? `Token ${auth.token}` : `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
    }
    const https = base.protocol === 'https:';
    const agentOptions = { keepAlive: true, maxSockets: options.maxSockets };
    this.#agent = https ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
    this.#request = https ? (httpsRequest as typeof httpRequest) : httpRequest;
  }

  get bytesSent(): number {
    return this.#bytesSent;
  }

  async write(lines: readonly string[] | Buffer): Promise<WriteOutcome> {
    let body = Buffer.isBuffer(lines) ? lines : Buffer.from(lines.join('\n'), 'utf8');
    const headers = { ...this.#headers };
    if (body.length > this.#options.gzipAboveBytes) {
      body = await gzipAsync(body, { level: 1 });
      headers['content-encoding'] = 'gzip';
    }
    headers['content-length'] = String(body.length);
    const { status, text } = await this.#post(body, headers);
    this.#bytesSent += body.length;
    if (status >= 200 && status < 300) return { ok: true };
    const message = serverMessage(text) || `HTTP ${status}`;
    if (REJECTED.has(status)) return { ok: false, status, message };
    const what = `POST /write to ${this.target} answered ${status}: ${message}`;
    if (status >= 500 || RETRYABLE.has(status)) throw new LineWriteError(what, true, status);
    throw new LineWriteError(`${what} (not retryable: check the url, db, retention policy and credentials)`, false, status);
  }

  #post(body: Buffer, headers: Record<string, string>): Promise<{ status: number; text: string }> {
    const timeoutMs = this.#options.requestTimeoutMs;
    return new Promise((resolve, reject) => {
      const request = this.#request(this.#url, { method: 'POST', headers, agent: this.#agent, timeout: timeoutMs }, (response: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let kept = 0;
        response.on('data', (chunk: Buffer) => {
          if (kept < MAX_ERROR_BODY) chunks.push(chunk);
          kept += chunk.length;
        });
        response.once('end', () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8').slice(0, MAX_ERROR_BODY) }));
        response.once('error', (error) => reject(new LineWriteError(`POST /write to ${this.target}: response failed: ${error.message}`, true, undefined, error)));
      });
      request.once('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      request.once('error', (error) => reject(new LineWriteError(`POST /write to ${this.target} failed: ${error.message}`, true, undefined, error)));
      request.end(body);
    });
  }

  async close(): Promise<void> {
    this.#agent.destroy();
  }
}

/** The `error` of InfluxDB's JSON error body, else the body text, trimmed. */
function serverMessage(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: unknown };
    if (typeof parsed?.error === 'string') return parsed.error.trim();
  } catch {
    // not JSON
  }
  return text.trim();
}

/**
 * Line-protocol files on a storage instead of a server: each batch becomes one object
 * `{prefix}/{run}-{n}.lp` (lines joined with '\n'), written atomically. Never rejects lines.
 */
export class StorageLineWriter implements LineWriter {
  readonly target: string;
  #bytesSent = 0;
  #files = 0;
  #numbered = 0;
  readonly #storage: ExternalStorage;
  readonly #prefix: string;
  readonly #run = `${Date.now().toString().padStart(15, '0')}-${randomBytes(3).toString('hex')}`;

  constructor(storage: ExternalStorage, prefix: string) {
    this.#storage = storage;
    this.#prefix = prefix;
    this.target = `${storage.uri} ${prefix}/`;
  }

  get bytesSent(): number {
    return this.#bytesSent;
  }

  /** Files written so far. */
  get files(): number {
    return this.#files;
  }

  async write(lines: readonly string[] | Buffer): Promise<WriteOutcome> {
    const body = Buffer.isBuffer(lines) ? Buffer.concat([lines, NEWLINE]) : Buffer.from(`${lines.join('\n')}\n`, 'utf8');
    // Numbered before the put: writes run concurrently and each needs its own name.
    const key = `${this.#prefix}/${this.#run}-${String(++this.#numbered).padStart(10, '0')}.lp`;
    try {
      await this.#storage.put(key, body);
    } catch (error) {
      throw new LineWriteError(`writing ${key} to ${this.#storage.uri} failed: ${(error as Error).message}`, true, undefined, error);
    }
    this.#files++;
    this.#bytesSent += body.length;
    return { ok: true };
  }

  async close(): Promise<void> {
    await this.#storage.close();
  }
}
