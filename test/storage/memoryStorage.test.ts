import { expect } from 'chai';
import { InvalidOptionError } from '../../lib/core/errors.ts';
import { InvalidKeyError } from '../../lib/storage/keys.ts';
import { MemoryStorage } from '../../lib/storage/memoryStorage.ts';
import { collect, describeStorageConformance, expectBytes } from './conformance.ts';

describeStorageConformance('MemoryStorage', async () => {
  const storage = new MemoryStorage({ name: 'conformance' });
  return { storage, cleanup: () => storage.close() };
});

async function failure(call: () => Promise<unknown>): Promise<unknown> {
  try {
    await call();
  } catch (error) {
    return error;
  }
  return expect.fail('expected a rejection');
}

describe('MemoryStorage', () => {
  it('is named by its uri', () => {
    expect(new MemoryStorage().uri).to.equal('memory://');
    expect(new MemoryStorage({ name: 'cdc-1' }).uri).to.equal('memory://cdc-1');
    expect(() => new MemoryStorage({ name: 'a/b' }))
      .to.throw(InvalidOptionError)
      .with.property('message', `MemoryStorage: option name must be letters, digits, '.', '_' and '-', got "a/b"`);
  });

  it('instances do not share objects', async () => {
    const one = new MemoryStorage({ name: 'same' });
    const two = new MemoryStorage({ name: 'same' });
    await one.put('k', Buffer.from('1'));
    expect(await two.get('k')).to.equal(undefined);
  });

  it('returns plain Uint8Array copies', async () => {
    const storage = new MemoryStorage();
    await storage.put('k', Buffer.from([1, 2]));
    const first = await storage.get('k');
    const second = await storage.get('k');
    expect(first).to.not.equal(second);
    expect(Object.getPrototypeOf(first)).to.equal(Uint8Array.prototype);
    expect([...first!]).to.deep.equal([1, 2]);
  });

  describe('failNext', () => {
    it('fails the next call of that operation only, then works again', async () => {
      const storage = new MemoryStorage();
      const injected = new Error('injected put failure');
      storage.failNext('put', injected);
      expect(await failure(() => storage.put('k', Buffer.from('1')))).to.equal(injected);
      expect(await storage.exists('k')).to.equal(false);
      await storage.put('k', Buffer.from('2'));
      expectBytes(await storage.get('k'), Buffer.from('2'), 'k');
    });

    it('fails `times` calls in a row, and queues failures in order', async () => {
      const storage = new MemoryStorage();
      const first = new Error('first');
      const second = new Error('second');
      storage.failNext('get', first, 2);
      storage.failNext('get', second);
      const outcomes: unknown[] = [];
      for (let call = 0; call < 4; call++) outcomes.push(await storage.get('k').catch((error: unknown) => error));
      expect(outcomes).to.deep.equal([first, first, second, undefined]);
    });

    it('makes each operation fail on its own: exists, delete, list', async () => {
      const storage = new MemoryStorage();
      await storage.put('a', Buffer.from('a'));
      const errors = { exists: new Error('exists'), delete: new Error('delete'), list: new Error('list') };
      storage.failNext('exists', errors.exists);
      storage.failNext('delete', errors.delete);
      storage.failNext('list', errors.list);
      const list = storage.list(''); // fails on the first step, not when called
      expect(await failure(() => storage.exists('a'))).to.equal(errors.exists);
      expect(await failure(() => storage.delete('a'))).to.equal(errors.delete);
      expect(await failure(() => collect(list))).to.equal(errors.list);
      expect(await storage.exists('a')).to.equal(true);
      expect(await collect(storage.list(''))).to.deep.equal(['a']);
      await storage.delete('a');
      expect(await storage.exists('a')).to.equal(false);
    });

    it('an invalid key is rejected first and does not use up an injected failure', async () => {
      const storage = new MemoryStorage();
      const injected = new Error('injected');
      storage.failNext('put', injected);
      expect(await failure(() => storage.put('../x', Buffer.from('x')))).to.be.instanceOf(InvalidKeyError);
      expect(await failure(() => storage.put('ok', Buffer.from('x')))).to.equal(injected);
    });

    it('checks its arguments', () => {
      const storage = new MemoryStorage();
      expect(() => storage.failNext('rename' as 'put', new Error('x')))
        .to.throw(InvalidOptionError)
        .with.property('message', 'MemoryStorage.failNext: option operation must be one of put, get, list, delete, exists, got "rename"');
      expect(() => storage.failNext('put', new Error('x'), 0))
        .to.throw(InvalidOptionError)
        .with.property('message', 'MemoryStorage.failNext: option times must be an integer >= 1, got 0');
      expect(() => storage.failNext('put', 'boom' as unknown as Error))
        .to.throw(InvalidOptionError)
        .with.property('message', 'MemoryStorage.failNext: option error must be an Error, got "boom"');
    });
  });

  describe('list', () => {
    it('sees keys put ahead of the cursor during a listing, not behind it', async () => {
      const storage = new MemoryStorage();
      for (const key of ['b', 'd']) await storage.put(key, Buffer.from(key));
      const keys = storage.list('')[Symbol.asyncIterator]();
      expect((await keys.next()).value).to.equal('b');
      await storage.put('a', Buffer.from('behind'));
      await storage.put('c', Buffer.from('ahead'));
      await storage.delete('d');
      await storage.put('e', Buffer.from('ahead'));
      expect([(await keys.next()).value, (await keys.next()).value, (await keys.next()).done]).to.deep.equal(['c', 'e', true]);
    });

    it('fails naming the storage when closed during a listing', async () => {
      const storage = new MemoryStorage({ name: 'x' });
      for (const key of ['a', 'b']) await storage.put(key, Buffer.from(key));
      const keys = storage.list('')[Symbol.asyncIterator]();
      expect((await keys.next()).value).to.equal('a');
      await storage.close();
      expect(((await failure(() => keys.next())) as Error).message).to.equal('MemoryStorage memory://x is closed; open a new storage to use it again');
    });
  });
});
