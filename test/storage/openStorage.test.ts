import { expect } from 'chai';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { RetriesExhaustedError } from '../../lib/core/retry.ts';
import type { RetryInfo } from '../../lib/core/retry.ts';
import {
  AzureStorage,
  FileStorage,
  InvalidStorageUriError,
  MemoryStorage,
  openStorage,
  parseStorageUri,
  S3Storage,
} from '../../lib/storage/index.ts';
import type { ExternalStorage } from '../../lib/storage/index.ts';
import { S3RVER_CREDENTIALS, serviceOrSkip, startAzurite, startS3rver, createS3Bucket } from '../support/services.ts';
import type { AzuriteService, S3rverService } from '../support/services.ts';
import { collect, expectBytes } from './conformance.ts';
import { rejectionOf } from '../support/waiting.ts';

const S3_ENV = { AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey };

describe('openStorage', () => {
  const opened: ExternalStorage[] = [];
  const open = async (uri: string, options?: Parameters<typeof openStorage>[1]) => {
    const storage = await openStorage(uri, options);
    opened.push(storage);
    return storage;
  };

  after(async () => {
    await Promise.all(opened.map((storage) => storage.close()));
  });

  /** Puts, reads back, lists, deletes: the storage opened is the one the URI names, and works. */
  const roundTrip = async (storage: ExternalStorage) => {
    const bytes = Uint8Array.from({ length: 256 }, (_, index) => index);
    await storage.put('opened/all-bytes.bin', bytes);
    expectBytes(await storage.get('opened/all-bytes.bin'), bytes, 'opened/all-bytes.bin');
    expect(await collect(storage.list('opened/'))).to.deep.equal(['opened/all-bytes.bin']);
    await storage.delete('opened/all-bytes.bin');
    expect(await storage.exists('opened/all-bytes.bin')).to.equal(false);
  };

  describe('file://', () => {
    let root: string;

    before(async () => {
      root = await mkdtemp(join(tmpdir(), 'sluice-open-storage-'));
    });

    after(async () => {
      await rm(root, { recursive: true, force: true });
    });

    it('opens a FileStorage on the absolute path, whose files land under it', async () => {
      const uri = pathToFileURL(join(root, 'data folder')).href;
      expect(uri).to.include('data%20folder');
      const storage = await open(uri);
      expect(storage).to.be.instanceOf(FileStorage);
      expect(storage.uri).to.equal(uri);
      await roundTrip(storage);
      await storage.put('a/b.csv', Buffer.from('on disk'));
      expect(await readFile(join(root, 'data folder', 'a', 'b.csv'), 'utf8')).to.equal('on disk');
    });
  });

  describe('memory://', () => {
    it('opens a new, empty MemoryStorage per call, named by the URI', async () => {
      const first = await open('memory://cache');
      expect(first).to.be.instanceOf(MemoryStorage);
      expect(first.uri).to.equal('memory://cache');
      await roundTrip(first);
      await first.put('kept.bin', Buffer.from('x'));
      const second = await open('memory://cache');
      expect(await collect(second.list(''))).to.deep.equal([]);
      expect((await open('memory://')).uri).to.equal('memory://');
    });
  });

  describe('s3:// against s3rver', () => {
    let s3rver: S3rverService | undefined;

    before(async function () {
      s3rver = await serviceOrSkip(this, 's3rver', startS3rver);
      await createS3Bucket(s3rver.endpoint, 'opened');
    });

    after(async () => {
      await s3rver?.stop();
    });

    it('opens an S3Storage on the bucket and prefix, with credentials from env', async () => {
      const uri = `s3://opened/tenant-1/cdc?endpoint=${s3rver!.endpoint}&region=us-east-1`;
      const storage = await open(uri, { env: S3_ENV });
      expect(storage).to.be.instanceOf(S3Storage);
      expect(storage.uri).to.equal(uri);
      expect((storage as S3Storage).prefix).to.equal('tenant-1/cdc');
      await roundTrip(storage);
    });

    it('passes the retry policy and onRetry on, a per-scheme policy winning', async () => {
      const uri = `s3://opened/p?endpoint=http://127.0.0.1:${await closedPort()}`;
      const retries: RetryInfo[] = [];
      const shared = { env: S3_ENV, retry: { maxRetries: 2, minDelayMs: 1, maxDelayMs: 1 }, onRetry: (info: RetryInfo) => retries.push(info) };
      const error = await rejectionOf((await open(uri, shared)).get('k'));
      expect(error).to.be.instanceOf(RetriesExhaustedError);
      expect((error as RetriesExhaustedError).attempts).to.equal(3);
      expect(retries).to.have.length(2);

      retries.length = 0;
      const own = await rejectionOf((await open(uri, { ...shared, s3: { retry: { maxRetries: 0 } } })).get('k'));
      expect((own as RetriesExhaustedError).attempts).to.equal(1);
      expect(retries).to.deep.equal([]);
    });
  });

  describe('azure:// against azurite', () => {
    let azurite: AzuriteService | undefined;

    before(async function () {
      this.timeout(30_000);
      azurite = await serviceOrSkip(this, 'azurite', startAzurite);
      const storage = await open(`azure://opened?endpoint=${azurite.endpoint}`, { env: { AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString } });
      await (storage as AzureStorage).containerClient.create();
    });

    after(async () => {
      await azurite?.stop();
    });

    it('opens an AzureStorage on the container and prefix, with the account and key from env', async () => {
      const uri = `azure://opened/tenant-1?endpoint=${azurite!.endpoint}`;
      const storage = await open(uri, { env: { AZURE_STORAGE_ACCOUNT: azurite!.account, AZURE_STORAGE_KEY: azurite!.key } });
      expect(storage).to.be.instanceOf(AzureStorage);
      expect(storage.uri).to.equal(uri);
      expect((storage as AzureStorage).prefix).to.equal('tenant-1');
      await roundTrip(storage);
    });

    it('rejects, naming the variables to set, when env has no credentials', async () => {
      const uri = `azure://opened/tenant-1?endpoint=${azurite!.endpoint}`;
      const error = await rejectionOf(openStorage(uri, { env: {} }));
      expect((error as Error).message).to.equal(
        `AzureStorage: no credentials for ${uri}: set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY`,
      );
    });
  });

  describe('a URI it cannot use', () => {
    for (const uri of [
      'ftp://host/path',
      's3://',
      'file://relative/path',
      's3://bucket-1/a/../b',
      'azure://container-1/p?sig=abc123',
      's3://bucket-1/p?region=us-east-1&colour=blue',
      '/no/scheme',
    ]) {
      it(`rejects ${uri} with the parser's InvalidStorageUriError`, async () => {
        const expected = thrown(() => parseStorageUri(uri));
        expect(expected).to.be.instanceOf(InvalidStorageUriError);
        const error = await rejectionOf(openStorage(uri));
        expect(error).to.be.instanceOf(InvalidStorageUriError);
        expect((error as Error).message).to.equal((expected as Error).message);
        expect((error as Error).message).to.not.include('abc123');
      });
    }
  });
});


function thrown(call: () => unknown): unknown {
  try {
    call();
  } catch (error) {
    return error;
  }
  return expect.fail('expected a throw');
}

/** A port on 127.0.0.1 that nothing listens on (just released by a server of ours). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
