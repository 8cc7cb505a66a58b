import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { InvalidOptionError } from '../../lib/core/errors.ts';
import { RetriesExhaustedError } from '../../lib/core/retry.ts';
import type { RetryInfo } from '../../lib/core/retry.ts';
import { AzureStorage, AzureStorageError } from '../../lib/storage/azureStorage.ts';
import type { AzureStorageOptions } from '../../lib/storage/azureStorage.ts';
import { serviceOrSkip, startAzurite, startFaultProxy } from '../support/services.ts';
import type { AzuriteService, FaultProxy } from '../support/services.ts';
import { collect, describeStorageConformance, expectBytes } from './conformance.ts';
import { rejectionOf } from '../support/waiting.ts';

const CONTAINER = 'sluice-test';
const MiB = 1024 * 1024;

/**
 * Conformance tests Azure's listing order cannot pass, whatever the client does. Each is skipped with
 * its reason on stderr, so a skip is visible and a renamed test runs (and fails) again.
 */
const AZURITE_QUIRKS: readonly (readonly [titleStart: string, reason: string])[] = [
  // Azure itself lists in UTF-16 code unit order too (blobfile/blobfile#238 wrote a blob per code point to find out).
  ['lists in UTF-8 byte order', 'Azure and azurite list blob names in UTF-16 code unit order, so U+1F600 lists before U+FF61'],
];

describe('AzureStorage against azurite', function () {
  let azurite: AzuriteService | undefined;
  let prefixes = 0;

  before(async function () {
    this.timeout(30_000);
    azurite = await serviceOrSkip(this, 'azurite', startAzurite);
    await openStorage().containerClient.create();
  });

  beforeEach(function () {
    const title = this.currentTest?.title ?? '';
    const quirk = AZURITE_QUIRKS.find(([titleStart]) => title.startsWith(titleStart));
    if (quirk) {
      process.stderr.write(`skipping "${title}" on azurite: ${quirk[1]}\n`);
      this.skip();
    }
  });

  after(async () => {
    await azurite?.stop();
  });

  /** A storage on a prefix no other test uses, so it starts empty. */
  const openStorage = (options: AzureStorageOptions = {}, endpoint = azurite!.endpoint, container = CONTAINER) =>
    new AzureStorage(
      { scheme: 'azure', container, prefix: `t${++prefixes}`, endpoint },
      {
        env: { AZURE_STORAGE_ACCOUNT: azurite!.account, AZURE_STORAGE_KEY: azurite!.key },
        retry: { maxRetries: 3, minDelayMs: 1, maxDelayMs: 5, jitter: 0 },
        ...options,
      },
    );

  describeStorageConformance('AzureStorage (azurite)', async () => {
    const storage = openStorage();
    return { storage, cleanup: () => storage.close() };
  });

  describe('AzureStorage adapter', () => {
    it('stores every byte value exactly, in a single put and as staged blocks', async () => {
      const storage = openStorage({ multipartThresholdBytes: 1024, blockSizeBytes: 1000 });
      const allBytes = Uint8Array.from({ length: 256 * 3 }, (_, index) => (255 - index) % 256);
      await storage.put('binary/all-256.bin', allBytes);
      expectBytes(await storage.get('binary/all-256.bin'), allBytes, 'binary/all-256.bin');
      const blocks = Uint8Array.from({ length: 256 * 20 + 1 }, (_, index) => (index * 7) % 256);
      await storage.put('binary/blocks.bin', blocks);
      expectBytes(await storage.get('binary/blocks.bin'), blocks, 'binary/blocks.bin');
    });

    it('accepts the connection string form of the credentials', async () => {
      const storage = openStorage({ env: { AZURE_STORAGE_CONNECTION_STRING: azurite!.connectionString } });
      await storage.put('cs.bin', Buffer.from('via connection string'));
      expectBytes(await storage.get('cs.bin'), Buffer.from('via connection string'), 'cs.bin');
      const fromString = new AzureStorage(
        { scheme: 'azure', container: CONTAINER, prefix: storage.prefix },
        { env: { AZURE_STORAGE_CONNECTION_STRING: azurite!.connectionString } },
      );
      expect(await collect(fromString.list(''))).to.deep.equal(['cs.bin']);
    });

    it('fails when created without credentials, naming the variables to set', () => {
      expect(() => openStorage({ env: {} })).to.throw(
        /^AzureStorage: no credentials for azure:\/\/sluice-test\/t\d+\?endpoint=http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1: set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY$/,
      );
      expect(() => openStorage({ blockConcurrency: 0 })).to.throw(InvalidOptionError, 'AzureStorage: option blockConcurrency must be an integer >= 1, got 0');
    });

    describe('through a fault-injecting proxy', () => {
      let proxy: FaultProxy;
      let retries: RetryInfo[];

      beforeEach(async () => {
        proxy = await startFaultProxy(azurite!.endpoint);
        retries = [];
      });

      afterEach(async () => {
        await proxy.stop();
      });

      const proxiedStorage = (options: AzureStorageOptions = {}) =>
        openStorage({ onRetry: (info) => retries.push(info), ...options }, proxy.endpoint);

      it('uses one Put Blob up to the threshold and staged blocks + one commit above it', async () => {
        const storage = proxiedStorage({ multipartThresholdBytes: 1 * MiB, blockSizeBytes: 2 * MiB, blockConcurrency: 2 });
        const small = randomBytes(1 * MiB);
        await storage.put('small.bin', small);
        const large = randomBytes(5 * MiB + 7); // blocks of 2, 2 and 1 MiB + 7 B
        await storage.put('large.bin', large);
        const path = `/devstoreaccount1/${CONTAINER}/${storage.prefix}`;
        const writes = proxy.requests.map((line) => line.replace(/blockid=[^&]+/, 'blockid=ID'));
        expect(writes).to.have.length(5);
        expect(writes[0]).to.equal(`PUT ${path}/small.bin`);
        expect(writes.slice(1, 4)).to.deep.equal(Array(3).fill(`PUT ${path}/large.bin?comp=block&blockid=ID`));
        expect(writes[4]).to.equal(`PUT ${path}/large.bin?comp=blocklist`);
        const committed = await storage.containerClient.getBlockBlobClient(`${storage.prefix}/large.bin`).getBlockList('committed');
        expect(committed.committedBlocks?.map((block) => block.size)).to.deep.equal([2 * MiB, 2 * MiB, 1 * MiB + 7]);
        expectBytes(await storage.get('large.bin'), large, 'large.bin');
        expectBytes(await storage.get('small.bin'), small, 'small.bin');
      });

      it('retries 503 answers, then puts the exact bytes', async () => {
        const storage = proxiedStorage();
        const payload = randomBytes(64 * 1024);
        proxy.inject({ status: 503, code: 'ServerBusy' }, 2);
        await storage.put('retried.bin', payload);
        expect(proxy.faultsServed).to.equal(2);
        expect(retries.map(({ attempt, delayMs }) => ({ attempt, delayMs }))).to.deep.equal([
          { attempt: 1, delayMs: 1 },
          { attempt: 2, delayMs: 2 },
        ]);
        expect(retries[0]!.operation).to.equal(`AzureStorage: put azure://${CONTAINER}/${storage.prefix}/retried.bin`);
        expect(proxy.requests.filter((line) => line.startsWith('PUT '))).to.have.length(3);
        expectBytes(await storage.get('retried.bin'), payload, 'retried.bin');
      });

      it('retries a reset connection on put and on get, a 429 on a staged block, and a 500 on list', async () => {
        const storage = proxiedStorage({ multipartThresholdBytes: 10, blockSizeBytes: 10 });
        proxy.inject('reset');
        await storage.put('reset.bin', Buffer.from('after a reset'));
        proxy.inject('reset');
        expectBytes(await storage.get('reset.bin'), Buffer.from('after a reset'), 'reset.bin');
        proxy.inject({ status: 429, code: 'TooManyRequests' });
        await storage.put('blocks.bin', Buffer.from('0123456789abcdefghij'));
        proxy.inject({ status: 500, code: 'InternalError' });
        expect(await collect(storage.list(''))).to.deep.equal(['blocks.bin', 'reset.bin']);
        expect(retries.map(({ operation }) => operation.replace(/ azure:.*/, ''))).to.deep.equal([
          'AzureStorage: put (stage block 1 of 2)',
          'AzureStorage: get',
          'AzureStorage: put (stage block 1 of 2)',
          'AzureStorage: list',
        ]);
        for (const { error } of retries.slice(0, 2)) expect(`${(error as { code?: string }).code} ${(error as Error).message}`).to.match(/ECONNRESET|socket hang up/);
        expect(retries.slice(2).map(({ error }) => (error as { statusCode?: number }).statusCode)).to.deep.equal([429, 500]);
        expectBytes(await storage.get('blocks.bin'), Buffer.from('0123456789abcdefghij'), 'blocks.bin');
      });

      it('retries a request that gets no answer within requestTimeoutMs', async () => {
        const storage = proxiedStorage({ requestTimeoutMs: 200 });
        proxy.inject('stall');
        await storage.put('stalled.bin', Buffer.from('late'));
        expect(retries).to.have.length(1);
        expect((retries[0]!.error as Error).name).to.equal('AbortError');
        expectBytes(await storage.get('stalled.bin'), Buffer.from('late'), 'stalled.bin');
      });

      it('gives up after maxRetries with a RetriesExhaustedError naming the operation, container and key', async () => {
        const storage = proxiedStorage({ retry: { maxRetries: 2, minDelayMs: 1, maxDelayMs: 1, jitter: 0 } });
        proxy.inject({ status: 503, code: 'ServerBusy' }, 3);
        const error = await rejectionOf(storage.delete('busy.bin'));
        expect(error).to.be.instanceOf(RetriesExhaustedError);
        expect((error as RetriesExhaustedError).attempts).to.equal(3);
        expect((error as Error).message).to.match(
          new RegExp(`^AzureStorage: delete azure://${CONTAINER}/${storage.prefix}/busy\\.bin: failed 3 times in a row, giving up `),
        );
        expect(retries).to.have.length(2);
        expect(proxy.faultsServed).to.equal(3);
      });

      it('does not retry a 403 and names the operation, container and key', async () => {
        const storage = proxiedStorage();
        proxy.inject({ status: 403, code: 'AuthorizationFailure' });
        const error = await rejectionOf(storage.put('denied.bin', Buffer.from('x')));
        expect(error).to.be.instanceOf(AzureStorageError);
        expect((error as AzureStorageError).statusCode).to.equal(403);
        expect((error as AzureStorageError).errorCode).to.equal('AuthorizationFailure');
        expect((error as AzureStorageError).container).to.equal(CONTAINER);
        expect((error as AzureStorageError).key).to.equal(`${storage.prefix}/denied.bin`);
        expect((error as Error).message).to.match(
          new RegExp(`^AzureStorage: put azure://${CONTAINER}/${storage.prefix}/denied\\.bin failed with HTTP 403 \\(AuthorizationFailure\\): RestError: `),
        );
        expect(retries).to.deep.equal([]);
        expect(proxy.requests).to.have.length(1);
        expect(await storage.exists('denied.bin')).to.equal(false);
      });
    });

    it('does not retry a missing container (404 ContainerNotFound), and exists reports it instead of false', async () => {
      const retries: RetryInfo[] = [];
      const storage = openStorage({ onRetry: (info) => retries.push(info) }, azurite!.endpoint, 'no-such-container');
      for (const [operation, call] of [
        ['put', () => storage.put('k.bin', Buffer.from('x'))],
        ['get', () => storage.get('k.bin')],
        ['exists', () => storage.exists('k.bin')],
        ['list', () => collect(storage.list('k'))],
      ] as const) {
        const error = await rejectionOf(call());
        expect(error, operation).to.be.instanceOf(AzureStorageError);
        expect((error as AzureStorageError).statusCode, operation).to.equal(404);
        expect((error as AzureStorageError).errorCode, operation).to.equal('ContainerNotFound');
        const target = operation === 'list' ? `${storage.prefix}/k` : `${storage.prefix}/k.bin`;
        expect((error as Error).message, operation).to.match(new RegExp(`^AzureStorage: ${operation} azure://no-such-container/${target} failed with HTTP 404 \\(ContainerNotFound\\)`));
      }
      expect(retries).to.deep.equal([]);
    });

    it('reports its uri from the location, without credentials', () => {
      const storage = openStorage({}, 'http://127.0.0.1:10000/devstoreaccount1');
      expect(storage.uri).to.equal(`azure://${CONTAINER}/${storage.prefix}?endpoint=http://127.0.0.1:10000/devstoreaccount1`);
    });
  });
});

