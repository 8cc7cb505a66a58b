import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { InvalidOptionError } from '../../lib/core/errors.ts';
import { RetriesExhaustedError } from '../../lib/core/retry.ts';
import type { RetryInfo } from '../../lib/core/retry.ts';
import { S3Storage, S3StorageError } from '../../lib/storage/s3Storage.ts';
import type { S3StorageOptions } from '../../lib/storage/s3Storage.ts';
import { S3RVER_CREDENTIALS, serviceOrSkip, startFaultProxy, startS3rver, createS3Bucket } from '../support/services.ts';
import type { FaultProxy, S3rverService } from '../support/services.ts';
import { collect, describeStorageConformance, expectBytes } from './conformance.ts';
import { rejectionOf } from '../support/waiting.ts';

const BUCKET = 'sluice-test';
const ENV = { AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey };
const MiB = 1024 * 1024;

/**
 * Conformance tests s3rver cannot pass, whatever the client does; real S3 passes them. Each is
 * skipped with its reason on stderr, so a skip is visible and a renamed test runs (and fails) again.
 */
const S3RVER_QUIRKS: readonly (readonly [titleStart: string, reason: string])[] = [
  ['replaces atomically', 's3rver writes an overwrite into the object file in place, so a concurrent GET reads new bytes under the old length'],
  [
    'overwrites an object with a longer and then a shorter one',
    's3rver rewrites an overwritten object file in place and may answer the PUT before the bytes are in it: a GET right after read 0 of 3 bytes once in CI',
  ],
  ['lists every key in ascending byte order', "s3rver lists in directory-walk order ('a/b' before 'a-c'), not byte order"],
  ['filters by prefix, including a prefix that ends', "s3rver lists in directory-walk order ('orders/...' before 'orders-archive/...')"],
  ['lists in UTF-8 byte order', 's3rver sorts and filters start-after by UTF-16 code units'],
  ['resumes exactly after any listed key', "s3rver lists in directory-walk order but filters start-after by string order, so after 'r/a/b' it drops 'r/a-b'"],
];

describe('S3Storage against s3rver', function () {
  let s3rver: S3rverService | undefined;
  let prefixes = 0;
  const opened: S3Storage[] = [];

  before(async function () {
    s3rver = await serviceOrSkip(this, 's3rver', startS3rver);
    await createS3Bucket(s3rver.endpoint, BUCKET);
  });

  beforeEach(function () {
    const title = this.currentTest?.title ?? '';
    const quirk = S3RVER_QUIRKS.find(([titleStart]) => title.startsWith(titleStart));
    if (quirk) {
      process.stderr.write(`skipping "${title}" on s3rver: ${quirk[1]}\n`);
      this.skip();
    }
  });

  after(async () => {
    await Promise.all(opened.map((storage) => storage.close()));
    await s3rver?.stop();
  });

  /** A storage on a prefix no other test uses (so it starts empty), closed in `after` at the latest. */
  const openStorage = (options: S3StorageOptions = {}, endpoint = s3rver!.endpoint, bucket = BUCKET) => {
    const storage = new S3Storage(
      { scheme: 's3', bucket, prefix: `t${++prefixes}`, endpoint, region: 'us-east-1', forcePathStyle: true },
      { env: ENV, retry: { maxRetries: 3, minDelayMs: 1, maxDelayMs: 5, jitter: 0 }, ...options },
    );
    opened.push(storage);
    return storage;
  };

  describeStorageConformance('S3Storage (s3rver)', async () => {
    const storage = openStorage();
    return { storage, cleanup: () => storage.close() };
  });

  describe('S3Storage adapter', () => {
    /** The command names the storage's client sends, in order, recorded by a client middleware. */
    const recordCommands = (storage: S3Storage): string[] => {
      const commands: string[] = [];
      storage.client.middlewareStack.add(
        (next, context) => async (args) => {
          commands.push(context.commandName ?? '?');
          return next(args);
        },
        { step: 'initialize', name: 'recordCommands' },
      );
      return commands;
    };

    it('stores every byte value exactly, in a single put and in a multipart upload', async () => {
      const storage = openStorage({ multipartThresholdBytes: 5 * MiB, partSizeBytes: 5 * MiB });
      const allBytes = Uint8Array.from({ length: 256 * 3 }, (_, index) => (255 - index) % 256);
      await storage.put('binary/all-256.bin', allBytes);
      expectBytes(await storage.get('binary/all-256.bin'), allBytes, 'binary/all-256.bin');
      const large = Uint8Array.from({ length: 6 * MiB + 1 }, (_, index) => (index * 7) % 256);
      await storage.put('binary/large.bin', large);
      expectBytes(await storage.get('binary/large.bin'), large, 'binary/large.bin');
    });

    it('uses one PutObject up to the threshold and a multipart upload of >= 5 MiB parts above it', async () => {
      const storage = openStorage({ multipartThresholdBytes: 1 * MiB, partSizeBytes: 5 * MiB, partConcurrency: 2 });
      const commands = recordCommands(storage);
      const small = randomBytes(1 * MiB);
      await storage.put('small.bin', small);
      expect(commands).to.deep.equal(['PutObjectCommand']);

      commands.length = 0;
      const large = randomBytes(11 * MiB + 3); // parts of 5, 5 and 1 MiB + 3 B
      await storage.put('large.bin', large);
      expect(commands).to.deep.equal([
        'CreateMultipartUploadCommand',
        'UploadPartCommand',
        'UploadPartCommand',
        'UploadPartCommand',
        'CompleteMultipartUploadCommand',
      ]);
      expectBytes(await storage.get('large.bin'), large, 'large.bin');
      expectBytes(await storage.get('small.bin'), small, 'small.bin');
    });

    it('aborts a multipart upload whose part is refused, and leaves no object behind', async () => {
      const storage = openStorage({ multipartThresholdBytes: 1 * MiB, partSizeBytes: 5 * MiB, partConcurrency: 1 });
      const commands = recordCommands(storage);
      storage.client.middlewareStack.add(
        (next, context) => async (args) => {
          const input = args.input as { PartNumber?: number };
          if (context.commandName === 'UploadPartCommand' && input.PartNumber === 2) {
            throw Object.assign(new Error('Access Denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
          }
          return next(args);
        },
        { step: 'initialize', name: 'refusePartTwo' },
      );
      const error = await rejectionOf(storage.put('refused.bin', randomBytes(11 * MiB)));
      expect(error).to.be.instanceOf(S3StorageError);
      expect((error as S3StorageError).statusCode).to.equal(403);
      expect((error as Error).message).to.equal(
        `S3Storage: put (upload part 2 of 3) s3://${BUCKET}/${storage.prefix}/refused.bin failed with HTTP 403: AccessDenied: Access Denied; ` +
          `S3 refused the credentials: check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) and that they may use bucket ${BUCKET}`,
      );
      expect(commands).to.deep.equal(['CreateMultipartUploadCommand', 'UploadPartCommand', 'UploadPartCommand', 'AbortMultipartUploadCommand']);
      expect(await storage.exists('refused.bin')).to.equal(false);
      expect(await collect(storage.list(''))).to.deep.equal([]);
    });

    it('rejects a part size under 5 MiB and other impossible options when created', () => {
      expect(() => openStorage({ partSizeBytes: 5 * MiB - 1 })).to.throw(InvalidOptionError, 'S3Storage: option partSizeBytes must be an integer >= 5242880, got 5242879');
      expect(() => openStorage({ listPageSize: 1001 })).to.throw(InvalidOptionError, 'listPageSize');
      expect(() => openStorage({ retry: { maxRetries: -1 } })).to.throw(InvalidOptionError, 'maxRetries');
    });

    describe('through a fault-injecting proxy', () => {
      let proxy: FaultProxy;
      let retries: RetryInfo[];

      beforeEach(async () => {
        proxy = await startFaultProxy(s3rver!.endpoint);
        retries = [];
      });

      afterEach(async () => {
        await proxy.stop();
      });

      const proxiedStorage = (options: S3StorageOptions = {}) =>
        openStorage({ onRetry: (info) => retries.push(info), ...options }, proxy.endpoint);

      it('retries 503 answers, then puts the exact bytes', async () => {
        const storage = proxiedStorage();
        const payload = randomBytes(64 * 1024);
        proxy.inject({ status: 503, code: 'SlowDown' }, 2);
        await storage.put('retried.bin', payload);
        expect(proxy.faultsServed).to.equal(2);
        expect(retries.map(({ attempt, delayMs }) => ({ attempt, delayMs }))).to.deep.equal([
          { attempt: 1, delayMs: 1 },
          { attempt: 2, delayMs: 2 },
        ]);
        expect(retries[0]!.operation).to.equal(`S3Storage: put s3://${BUCKET}/${storage.prefix}/retried.bin`);
        expect(proxy.requests.filter((line) => line.startsWith('PUT '))).to.have.length(3);
        expectBytes(await storage.get('retried.bin'), payload, 'retried.bin');
      });

      it('retries a reset connection on put and on get, and 500 on list', async () => {
        const storage = proxiedStorage();
        proxy.inject('reset');
        await storage.put('reset.bin', Buffer.from('after a reset'));
        proxy.inject('reset');
        expectBytes(await storage.get('reset.bin'), Buffer.from('after a reset'), 'reset.bin');
        proxy.inject({ status: 500, code: 'InternalError' });
        expect(await collect(storage.list(''))).to.deep.equal(['reset.bin']);
        expect(retries.map(({ attempt }) => attempt)).to.deep.equal([1, 1, 1]);
        expect(retries.map(({ operation }) => operation.split(' ')[1])).to.deep.equal(['put', 'get', 'list']);
        for (const { error } of retries.slice(0, 2)) expect(`${(error as { code?: string }).code} ${(error as Error).message}`).to.match(/ECONNRESET|socket hang up/);
        expect((retries[2]!.error as Error).name).to.equal('InternalError');
      });

      it('retries a request that gets no answer once the socket timeout passes', async () => {
        const storage = proxiedStorage({ socketTimeoutMs: 200 });
        proxy.inject('stall');
        await storage.put('stalled.bin', Buffer.from('late'));
        expect(retries).to.have.length(1);
        expect((retries[0]!.error as Error).name).to.equal('TimeoutError');
        expectBytes(await storage.get('stalled.bin'), Buffer.from('late'), 'stalled.bin');
      });

      it('gives up after maxRetries with a RetriesExhaustedError naming the operation, bucket and key', async () => {
        const storage = proxiedStorage({ retry: { maxRetries: 2, minDelayMs: 1, maxDelayMs: 1, jitter: 0 } });
        proxy.inject({ status: 503, code: 'ServiceUnavailable' }, 3);
        const error = await rejectionOf(storage.put('unavailable.bin', Buffer.from('x')));
        expect(error).to.be.instanceOf(RetriesExhaustedError);
        expect((error as RetriesExhaustedError).attempts).to.equal(3);
        expect((error as Error).message).to.match(
          new RegExp(`^S3Storage: put s3://${BUCKET}/${storage.prefix}/unavailable\\.bin: failed 3 times in a row, giving up .*last error: ServiceUnavailable: `),
        );
        expect(retries).to.have.length(2);
        expect(proxy.faultsServed).to.equal(3);
      });

      it('does not retry a 403 and names the operation, bucket and key', async () => {
        const storage = proxiedStorage();
        proxy.inject({ status: 403, code: 'AccessDenied' });
        const error = await rejectionOf(storage.put('denied.bin', Buffer.from('x')));
        expect(error).to.be.instanceOf(S3StorageError);
        expect((error as S3StorageError).statusCode).to.equal(403);
        expect((error as S3StorageError).bucket).to.equal(BUCKET);
        expect((error as S3StorageError).key).to.equal(`${storage.prefix}/denied.bin`);
        expect((error as Error).message).to.match(new RegExp(`^S3Storage: put s3://${BUCKET}/${storage.prefix}/denied\\.bin failed with HTTP 403: AccessDenied: `));
        expect(retries).to.deep.equal([]);
        expect(proxy.requests).to.have.length(1);
        expect(await storage.exists('denied.bin')).to.equal(false);
      });
    });

    it('does not retry a missing bucket (404 NoSuchBucket), on put, get and list', async () => {
      const retries: RetryInfo[] = [];
      const storage = openStorage({ onRetry: (info) => retries.push(info) }, s3rver!.endpoint, 'no-such-bucket');
      for (const [operation, call] of [
        ['put', () => storage.put('k.bin', Buffer.from('x'))],
        ['get', () => storage.get('k.bin')],
        ['list', () => collect(storage.list('k'))],
      ] as const) {
        const error = await rejectionOf(call());
        expect(error, operation).to.be.instanceOf(S3StorageError);
        expect((error as S3StorageError).statusCode, operation).to.equal(404);
        const target = operation === 'list' ? `${storage.prefix}/k` : `${storage.prefix}/k.bin`;
        expect((error as Error).message, operation).to.match(new RegExp(`^S3Storage: ${operation} s3://no-such-bucket/${target} failed with HTTP 404: NoSuchBucket: `));
      }
      expect(retries).to.deep.equal([]);
    });

    it('retries a refused connection, then gives up naming the endpoint operation and key', async () => {
      const port = await closedPort();
      const retries: RetryInfo[] = [];
      const storage = openStorage({ onRetry: (info) => retries.push(info), retry: { maxRetries: 2, minDelayMs: 1, maxDelayMs: 1, jitter: 0 } }, `http://127.0.0.1:${port}`);
      const error = await rejectionOf(storage.get('k.bin'));
      expect(error).to.be.instanceOf(RetriesExhaustedError);
      expect((error as Error).message).to.match(new RegExp(`^S3Storage: get s3://${BUCKET}/${storage.prefix}/k\\.bin: failed 3 times`));
      expect(retries.map(({ error: cause }) => (cause as { code?: string }).code)).to.deep.equal(['ECONNREFUSED', 'ECONNREFUSED']);
    });

    it('configures the client for exact bytes and one retry policy: checksums only when required, no SDK retries', async () => {
      const { config } = openStorage().client;
      expect(await config.requestChecksumCalculation()).to.equal('WHEN_REQUIRED');
      expect(await config.responseChecksumValidation()).to.equal('WHEN_REQUIRED');
      expect(await config.maxAttempts()).to.equal(1);
      expect(config.forcePathStyle).to.equal(true);
    });

    it('reports its uri from the location, without credentials', () => {
      const storage = openStorage({}, 'http://127.0.0.1:9000');
      expect(storage.uri).to.equal(`s3://${BUCKET}/${storage.prefix}?endpoint=http://127.0.0.1:9000&region=us-east-1`);
      const aws = new S3Storage({ scheme: 's3', bucket: 'b-1', prefix: '', forcePathStyle: false }, { env: {} });
      opened.push(aws);
      expect(aws.uri).to.equal('s3://b-1/');
    });
  });
});


/** A port on 127.0.0.1 that nothing listens on (just released by a server of ours). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
