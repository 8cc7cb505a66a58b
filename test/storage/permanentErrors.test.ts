/**
 * Permanent storage failures fail at once with the real cause (issue 14): each storage marks what no
 * retry can fix (`transient: false`), `isTransientStorageError` follows that mark through a chain of
 * causes, and `checkRoot` tells a missing folder, bucket or container from an empty one.
 *
 * What can be provoked here, as root: a file where a folder must be (root or key), a folder where a
 * file must be (EISDIR), a name too long (ENAMETOOLONG), /sys (EPERM as root, EACCES otherwise), and
 * refused credentials on s3rver and azurite. What cannot: ENOSPC and EROFS need a full or read-only
 * file system (no tmpfs or loop mount in this sandbox), and EACCES on a chmod-ed folder does not
 * happen to root; those codes are checked as classified errors instead.
 */
import { expect } from 'chai';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RetriesExhaustedError } from '../../lib/core/retry.ts';
import type { RetryInfo } from '../../lib/core/retry.ts';
import { AzureStorage, AzureStorageError } from '../../lib/storage/azureStorage.ts';
import { FileStorage, FileStorageError } from '../../lib/storage/fileStorage.ts';
import { InvalidKeyError } from '../../lib/storage/keys.ts';
import { S3Storage, S3StorageError } from '../../lib/storage/s3Storage.ts';
import { isTransientStorageError, StorageRootMissingError } from '../../lib/storage/transient.ts';
import { createS3Bucket, S3RVER_CREDENTIALS, serviceOrSkip, startAzurite, startS3rver, type AzuriteService, type S3rverService } from '../support/services.ts';
import { rejectionOf } from '../support/waiting.ts';

const BYTES = new TextEncoder().encode('x');

describe('storage: permanent failures fail at once, transient ones are retried', function () {
  this.timeout(30_000);

  describe('isTransientStorageError', () => {
    const coded = (code: string) => Object.assign(new Error(`${code}: boom`), { code });
    it('follows the first mark along the cause chain; unmarked errors stay retryable', () => {
      const full = new FileStorageError('FileStorage file:///d', 'put', 'k', '/d/k', coded('ENOSPC'));
      expect(full.transient).to.equal(false);
      expect(full.message).to.contain('free space');
      expect(isTransientStorageError(full)).to.equal(false);
      expect(isTransientStorageError(new Error('wrapper', { cause: full }))).to.equal(false);
      for (const code of ['EROFS', 'EACCES', 'EPERM', 'EISDIR', 'ENOTDIR', 'EDQUOT', 'ENAMETOOLONG']) {
        expect(isTransientStorageError(new FileStorageError('o', 'put', 'k', '/d/k', coded(code))), code).to.equal(false);
      }
      for (const code of ['EMFILE', 'EAGAIN', 'EBUSY', 'EIO']) {
        expect(isTransientStorageError(new FileStorageError('o', 'put', 'k', '/d/k', coded(code))), code).to.equal(true);
      }
      expect(isTransientStorageError(new InvalidKeyError('o', '../x', 'dot-segment'))).to.equal(false);
      expect(isTransientStorageError(new StorageRootMissingError('file:///x', 'the folder /x', 'create it'))).to.equal(false);
      expect(isTransientStorageError(new S3StorageError('put', 'b', 'k', Object.assign(new Error('denied'), { $metadata: { httpStatusCode: 403 } })))).to.equal(false);
      expect(isTransientStorageError(new RetriesExhaustedError('put', 6, coded('ECONNRESET')))).to.equal(true);
      expect(isTransientStorageError(new Error('a storage of its own failed'))).to.equal(true);
    });
  });

  describe('FileStorage (as whoever runs the tests)', () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'sluice-permanent-'));
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('a root that is a file: put fails naming the file in the way and what to do, not retryable', async () => {
      const root = join(dir, 'root-is-a-file');
      await writeFile(root, 'not a folder');
      const error = await rejectionOf(new FileStorage(root).put('shop/orders/CDC000001.csv', BYTES));
      expect(error).to.be.instanceOf(FileStorageError);
      expect((error as FileStorageError).transient).to.equal(false);
      expect(error.message).to.contain(`${root} is a file where a folder must be`).and.contain('choose another storage root');
      expect(isTransientStorageError(error)).to.equal(false);
    });

    it('a key under a key, and a folder where a file must be (EISDIR): permanent, each with its hint', async () => {
      const storage = new FileStorage(join(dir, 'keys'));
      await storage.put('a', BYTES);
      const under = await rejectionOf(storage.put('a/b', BYTES));
      expect((under as FileStorageError).transient).to.equal(false);
      expect(under.message).to.contain('a key above "a/b" is an object');
      await mkdir(join(dir, 'keys', 'folder', 'inside'), { recursive: true });
      const folder = await rejectionOf(storage.put('folder', BYTES));
      expect((folder as FileStorageError).transient).to.equal(false);
      expect(folder.message).to.contain('"folder" is a folder of other keys');
    });

    it('a name longer than the file system allows (ENAMETOOLONG): permanent', async () => {
      const error = await rejectionOf(new FileStorage(join(dir, 'long')).put(`t/${'n'.repeat(300)}`, BYTES));
      expect((error as FileStorageError).code).to.equal('ENAMETOOLONG');
      expect(isTransientStorageError(error)).to.equal(false);
    });

    it('a root where nobody may write (/sys: EPERM as root, EACCES otherwise): permanent, with the hint', async function () {
      const error = await rejectionOf(new FileStorage('/sys/sluice-test-root').put('k', BYTES));
      expect(error).to.be.instanceOf(FileStorageError);
      expect(['EPERM', 'EACCES', 'EROFS']).to.include((error as FileStorageError).code);
      expect(error.message).to.match(/permission denied|not permitted|read-only/);
      expect(isTransientStorageError(error)).to.equal(false);
    });

    it('checkRoot: a missing folder is StorageRootMissingError, a file is a FileStorageError, an empty folder is fine', async () => {
      const missing = await rejectionOf(new FileStorage(join(dir, 'never-made')).checkRoot());
      expect(missing).to.be.instanceOf(StorageRootMissingError);
      expect(missing.message).to.contain(`the folder ${join(dir, 'never-made')} does not exist`);
      await writeFile(join(dir, 'plain-file'), '');
      const file = await rejectionOf(new FileStorage(join(dir, 'plain-file')).checkRoot());
      expect(file).to.be.instanceOf(FileStorageError);
      expect(file.message).to.contain('is a file where the storage');
      await mkdir(join(dir, 'empty'));
      await new FileStorage(join(dir, 'empty')).checkRoot();
    });
  });

  describe('S3Storage against s3rver', () => {
    let s3rver: S3rverService | undefined;
    before(async function () {
      s3rver = await serviceOrSkip(this, 's3rver', startS3rver);
      await createS3Bucket(s3rver.endpoint, 'permanent');
    });
    after(async () => {
      await s3rver?.stop();
    });
    const open = (bucket: string, env: Record<string, string>, retries: RetryInfo[]) =>
      new S3Storage({ scheme: 's3', bucket, prefix: 'p', endpoint: s3rver!.endpoint, forcePathStyle: true }, { env, retry: { minDelayMs: 1, maxDelayMs: 2 }, onRetry: (info) => retries.push(info) });

    it('wrong credentials: fails at the first attempt (no retry), naming the bucket and what to check', async () => {
      const retries: RetryInfo[] = [];
      const storage = open('permanent', { AWS_ACCESS_KEY_ID: 'WRONG', AWS_SECRET_ACCESS_KEY: 'WRONG' }, retries);
      try {
        const error = await rejectionOf(storage.put('k', BYTES));
        expect(error).to.be.instanceOf(S3StorageError);
        expect((error as S3StorageError).statusCode).to.equal(403);
        expect(error.message).to.contain('s3://permanent/p/k').and.contain('check AWS_ACCESS_KEY_ID');
        expect(retries).to.deep.equal([]);
        expect(isTransientStorageError(error)).to.equal(false);
      } finally {
        await storage.close();
      }
    });

    it('checkRoot: a missing bucket is StorageRootMissingError, an existing one passes', async () => {
      const env = { AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey };
      const retries: RetryInfo[] = [];
      const missing = open('no-such-bucket', env, retries);
      const present = open('permanent', env, retries);
      try {
        const error = await rejectionOf(missing.checkRoot());
        expect(error).to.be.instanceOf(StorageRootMissingError);
        expect(error.message).to.contain('the bucket no-such-bucket does not exist');
        await present.checkRoot();
        expect(retries).to.deep.equal([]);
      } finally {
        await missing.close();
        await present.close();
      }
    });
  });

  describe('AzureStorage against azurite', () => {
    let azurite: AzuriteService | undefined;
    before(async function () {
      this.timeout(30_000);
      azurite = await serviceOrSkip(this, 'azurite', startAzurite);
    });
    after(async () => {
      await azurite?.stop();
    });
    const open = (container: string, key: string, retries: RetryInfo[]) =>
      new AzureStorage(
        { scheme: 'azure', container, prefix: 'p', endpoint: azurite!.endpoint },
        { env: { AZURE_STORAGE_ACCOUNT: azurite!.account, AZURE_STORAGE_KEY: key }, retry: { minDelayMs: 1, maxDelayMs: 2 }, onRetry: (info) => retries.push(info) },
      );

    it('a wrong key: fails at the first attempt (no retry), naming the container and what to check', async () => {
      const retries: RetryInfo[] = [];
      const storage = open('permanent', Buffer.from('not the key').toString('base64'), retries);
      const error = await rejectionOf(storage.put('k', BYTES));
      expect(error).to.be.instanceOf(AzureStorageError);
      expect((error as AzureStorageError).statusCode).to.equal(403);
      expect(error.message).to.contain('azure://permanent/p/k').and.contain('check AZURE_STORAGE_CONNECTION_STRING');
      expect(retries).to.deep.equal([]);
      expect(isTransientStorageError(error)).to.equal(false);
      await storage.close();
    });

    it('a container name Azure refuses (400): fails at the first attempt, saying the name was refused', async () => {
      const retries: RetryInfo[] = [];
      const storage = open('Not_A-Valid-Container', azurite!.key, retries);
      const error = await rejectionOf(storage.put('k', BYTES));
      expect(error).to.be.instanceOf(AzureStorageError);
      expect((error as AzureStorageError).statusCode).to.equal(400);
      expect(error.message).to.contain('Azure refused the request as malformed');
      expect(retries).to.deep.equal([]);
      await storage.close();
    });

    it('checkRoot: a missing container is StorageRootMissingError, an existing one passes', async () => {
      const retries: RetryInfo[] = [];
      const missing = open('no-such-container', azurite!.key, retries);
      const error = await rejectionOf(missing.checkRoot());
      expect(error).to.be.instanceOf(StorageRootMissingError);
      expect(error.message).to.contain('the container no-such-container does not exist');
      const present = open('present', azurite!.key, retries);
      await present.containerClient.create();
      await present.checkRoot();
      expect(retries).to.deep.equal([]);
      await missing.close();
      await present.close();
    });
  });
});
