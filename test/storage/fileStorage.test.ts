import { expect } from 'chai';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, open, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidOptionError } from '../../lib/core/errors.ts';
import { FileStorage, FileStorageError, TEMP_FILE_PREFIX } from '../../lib/storage/fileStorage.ts';
import { InvalidKeyError } from '../../lib/storage/keys.ts';
import { parseStorageUri } from '../../lib/storage/uri.ts';
import { collect, describeStorageConformance, expectBytes } from './conformance.ts';

describeStorageConformance('FileStorage', async () => {
  const folder = await mkdtemp(join(tmpdir(), 'sluice-file-storage-'));
  const storage = new FileStorage(join(folder, 'root'));
  return { storage, cleanup: () => rm(folder, { recursive: true, force: true }) };
});

/** Every file and folder under `folder`, relative, sorted ('/' after folders). */
function tree(folder: string): string[] {
  return readdirSync(folder, { recursive: true, withFileTypes: true })
    .map((entry) => join(entry.parentPath, entry.name).slice(folder.length + 1) + (entry.isDirectory() ? '/' : ''))
    .sort();
}

async function failure(call: () => Promise<unknown>): Promise<Error> {
  try {
    await call();
  } catch (error) {
    expect(error).to.be.instanceOf(Error);
    return error as Error;
  }
  return expect.fail('expected a rejection');
}

describe('FileStorage on disk', () => {
  let folder: string;
  let root: string;
  let storage: FileStorage;

  beforeEach(async () => {
    folder = await mkdtemp(join(tmpdir(), 'sluice-file-storage-'));
    root = join(folder, 'root');
    storage = new FileStorage(root);
  });

  afterEach(async () => {
    await chmod(folder, 0o755).catch(() => undefined);
    await rm(folder, { recursive: true, force: true });
  });

  describe('root and uri', () => {
    it('needs an absolute root, naming the value', () => {
      expect(() => new FileStorage('relative/data'))
        .to.throw(InvalidOptionError)
        .with.property('message', 'FileStorage: option root must be an absolute folder path (a relative one would depend on the working directory), got "relative/data"');
    });

    it('normalises the root and gives a file:// uri that parses back to it', () => {
      const odd = new FileStorage(`${folder}/a b#c?d%e/../表/`);
      expect(odd.root).to.equal(`${folder}/表`);
      expect(odd.uri).to.equal(`file://${folder}/%E8%A1%A8`);
      const spaced = new FileStorage(join(folder, 'a b#c?d%e'));
      expect(parseStorageUri(spaced.uri)).to.deep.equal({ scheme: 'file', root: join(folder, 'a b#c?d%e') });
    });

    it('creates the root on the first put, and lists nothing while it is missing', async () => {
      expect(existsSync(root)).to.equal(false);
      expect(await collect(storage.list(''))).to.deep.equal([]);
      expect(await storage.get('a')).to.equal(undefined);
      await storage.delete('a');
      await storage.put('x/y.csv', Buffer.from('1'));
      expect(readFileSync(join(root, 'x', 'y.csv'), 'utf8')).to.equal('1');
    });
  });

  describe('atomic writes', () => {
    it('leaves no temp file behind after puts, overwrites and a failed put', async () => {
      await storage.put('a/b.csv', Buffer.alloc(1000, 1));
      await storage.put('a/b.csv', Buffer.alloc(10, 2));
      await storage.put('c.csv', Buffer.alloc(0));
      await mkdir(join(root, 'folder-key', 'inner'), { recursive: true });
      await failure(() => storage.put('folder-key', Buffer.from('x')));
      expect(tree(root)).to.deep.equal(['a/', 'a/b.csv', 'c.csv', 'folder-key/', 'folder-key/inner/']);
    });

    it('writes through a .tmp- file in the target folder, visible on disk but never listed', async () => {
      await storage.put('t/old.csv', Buffer.from('old'));
      const seen = new Set<string>();
      let done = false;
      const put = storage.put('t/new.csv', Buffer.alloc(8 * 1024 * 1024, 7)).finally(() => (done = true));
      while (!done) {
        for (const name of await readdir(join(root, 't'))) seen.add(name.startsWith(TEMP_FILE_PREFIX) ? 'temp' : name);
        expect(await collect(storage.list('t/'))).to.satisfy((keys: string[]) => keys.every((key) => key === 't/old.csv' || key === 't/new.csv'));
      }
      await put;
      expect(seen.has('temp'), 'a temp file was seen in the target folder while writing').to.equal(true);
      expect(await collect(storage.list(''))).to.deep.equal(['t/new.csv', 't/old.csv']);
    });

    it('after a crash between write and rename: the leftover temp file is not listed and the key keeps its old bytes', async () => {
      await storage.put('orders/CDC000001.csv', Buffer.from('old complete object'));
      // What a crash leaves: a half-written temp file beside the target, never renamed.
      await writeFile(join(root, 'orders', `${TEMP_FILE_PREFIX}0123456789abcdef01234567`), 'new but half');
      await writeFile(join(root, 'orders', `${TEMP_FILE_PREFIX}fedcba`), 'a new object, half written');
      expect(await collect(storage.list(''))).to.deep.equal(['orders/CDC000001.csv']);
      expect(await collect(storage.list('orders/.t'))).to.deep.equal([]);
      expect(await collect(storage.list('orders/', { startAfter: 'orders/' }))).to.deep.equal(['orders/CDC000001.csv']);
      expectBytes(await storage.get('orders/CDC000001.csv'), Buffer.from('old complete object'), 'orders/CDC000001.csv');
      expect(await storage.get('orders/CDC000002.csv')).to.equal(undefined);
      expect(await storage.exists('orders/CDC000002.csv')).to.equal(false);
      // The next put of the key works despite the leftovers.
      await storage.put('orders/CDC000001.csv', Buffer.from('new'));
      expectBytes(await storage.get('orders/CDC000001.csv'), Buffer.from('new'), 'orders/CDC000001.csv');
    });

    it('refuses keys whose last segment is reserved for temp files, so a leftover is never read', async () => {
      await mkdir(join(root, 'orders'), { recursive: true });
      await writeFile(join(root, 'orders', '.tmp-abc'), 'half');
      for (const call of [
        () => storage.get('orders/.tmp-abc'),
        () => storage.put('orders/.tmp-abc', Buffer.from('x')),
        () => storage.exists('.tmp-'),
        () => storage.delete('orders/.tmp-abc'),
      ]) {
        const error = await failure(call);
        expect(error).to.be.instanceOf(InvalidKeyError);
        expect((error as InvalidKeyError).rule).to.equal('reserved-name');
      }
      expect((await failure(() => storage.get('orders/.tmp-abc'))).message).to.equal(
        `FileStorage ${storage.uri}: invalid key "orders/.tmp-abc": it ends in a name starting with '.tmp-', which a file storage keeps for files being written; ` +
          `keys are relative '/'-separated paths such as "2024/orders/CDC000001.csv"`,
      );
      // Only the last segment is reserved: a folder may have such a name.
      await storage.put('.tmp-folder/x.csv', Buffer.from('ok'));
      expect(await collect(storage.list(''))).to.deep.equal(['.tmp-folder/x.csv']);
    });

    it('fsyncs the file and every folder whose entries changed before put resolves', async () => {
      const handle = await open(folder, 'r');
      const prototype = Object.getPrototypeOf(handle) as { sync: () => Promise<void> };
      await handle.close();
      const original = prototype.sync;
      let syncs = 0;
      prototype.sync = function (this: unknown) {
        syncs++;
        return original.call(this);
      };
      try {
        await storage.put('n1/n2/key.csv', Buffer.from('x')); // makes root, n1, n2: file + n2 + n1 + root + folder
        expect(syncs).to.equal(5);
        syncs = 0;
        await storage.put('n1/n2/other.csv', Buffer.from('y')); // file + n2
        expect(syncs).to.equal(2);
        syncs = 0;
        await storage.put('n1/n3/k.csv', Buffer.from('z')); // file + n3 + n1
        expect(syncs).to.equal(3);
      } finally {
        prototype.sync = original;
      }
    });
  });

  describe('keys stay inside the root', () => {
    it('rejects every escaping key and writes nothing outside the root', async () => {
      await storage.put('inside.csv', Buffer.from('x'));
      for (const key of ['../outside.csv', 'a/../../outside.csv', '..\\outside.csv', '/etc/passwd', '..', 'a/..']) {
        for (const call of [() => storage.put(key, Buffer.from('evil')), () => storage.get(key), () => storage.delete(key), () => storage.exists(key)]) {
          expect(await failure(call)).to.be.instanceOf(InvalidKeyError);
        }
      }
      expect(tree(folder)).to.deep.equal(['root/', 'root/inside.csv']);
    });

    it('does not list symbolic links or names that are not valid keys', async () => {
      await storage.put('ok.csv', Buffer.from('x'));
      await writeFile(join(root, 'back\\slash.csv'), 'x');
      await writeFile(join(root, 'line\nbreak.csv'), 'x');
      await mkdir(join(root, 'bad\\folder'));
      await writeFile(join(root, 'bad\\folder', 'x.csv'), 'x');
      await symlink(folder, join(root, 'link-to-outside'));
      await symlink(join(root, 'ok.csv'), join(root, 'link.csv'));
      expect(await collect(storage.list(''))).to.deep.equal(['ok.csv']);
    });
  });

  describe('what a file system cannot hold', () => {
    it('a key under an object fails naming both and why', async () => {
      await storage.put('a', Buffer.from('object'));
      const error = await failure(() => storage.put('a/b', Buffer.from('under it')));
      expect(error).to.be.instanceOf(FileStorageError);
      expect(error.message).to.match(new RegExp(`^FileStorage ${storage.uri}: cannot put "a/b" \\(${join(root, 'a', 'b')}\\): `));
      expect(error.message).to.include(`; a key above "a/b" is an object, and a file storage cannot hold a key under another key ("a" and "a/b")`);
      expect(await storage.get('a/b')).to.equal(undefined);
      expectBytes(await storage.get('a'), Buffer.from('object'), 'a');
    });

    it('an object where a folder of keys is fails naming the key', async () => {
      await storage.put('a/b', Buffer.from('under'));
      const error = (await failure(() => storage.put('a', Buffer.from('x')))) as FileStorageError;
      expect(error).to.be.instanceOf(FileStorageError);
      expect(error.key).to.equal('a');
      expect(error.path).to.equal(join(root, 'a'));
      expect(error.message).to.include(`; "a" is a folder of other keys, and a file storage cannot hold a key that also prefixes others`);
      expect(await collect(storage.list(''))).to.deep.equal(['a/b']);
    });

    it('a segment longer than the file system allows fails with a hint', async () => {
      const error = (await failure(() => storage.put(`long/${'x'.repeat(300)}`, Buffer.from('x')))) as FileStorageError;
      expect(error.code).to.equal('ENAMETOOLONG');
      expect(error.message).to.include('a segment of the key is longer than the file system allows (usually 255 bytes per name)');
      // No object can have that name here, so there is none to get, find or delete.
      expect(await storage.get(`long/${'x'.repeat(300)}`)).to.equal(undefined);
      expect(await storage.exists(`long/${'x'.repeat(300)}`)).to.equal(false);
      await storage.delete(`long/${'x'.repeat(300)}`);
    });

    it('a folder it may not write fails naming the file and the fix', async function () {
      if (process.getuid?.() === 0) this.skip(); // root ignores permissions
      await storage.put('ro/x.csv', Buffer.from('x'));
      await chmod(join(root, 'ro'), 0o500);
      const error = (await failure(() => storage.put('ro/y.csv', Buffer.from('y')))) as FileStorageError;
      await chmod(join(root, 'ro'), 0o755);
      expect(error.code).to.equal('EACCES');
      expect(error.message).to.include('let this process read and write the storage root');
    });
  });

  describe('listing', () => {
    it('reads folders as it goes: a folder is read only when the walk reaches it', async () => {
      for (const key of ['a/1', 'b/1', 'b/2', 'd/1']) await storage.put(key, Buffer.from(key));
      const keys = storage.list('')[Symbol.asyncIterator]();
      expect((await keys.next()).value).to.equal('a/1');
      // The root and 'a' have been read; 'b' and 'd' not yet.
      await rm(join(root, 'b'), { recursive: true });
      await storage.put('d/0', Buffer.from('ahead of the walk'));
      await storage.put('a/0', Buffer.from('behind the walk'));
      const rest: string[] = [];
      for (let step = await keys.next(); !step.done; step = await keys.next()) rest.push(step.value);
      expect(rest).to.deep.equal(['d/0', 'd/1']);
    });

    it('sorts a folder among files by its name followed by /', async () => {
      for (const key of ['x/a.b', 'x/a/c', 'x/a0', 'x/a-', 'x/a']) {
        if (key !== 'x/a') await storage.put(key, Buffer.from(key));
      }
      expect(await collect(storage.list('x/'))).to.deep.equal(['x/a-', 'x/a.b', 'x/a/c', 'x/a0']);
      expect(await collect(storage.list('x/a', { startAfter: 'x/a.b' }))).to.deep.equal(['x/a/c', 'x/a0']);
    });

    it('fails naming the storage when closed during a listing', async () => {
      for (const key of ['a/1', 'b/1']) await storage.put(key, Buffer.from(key));
      const keys = storage.list('')[Symbol.asyncIterator]();
      expect((await keys.next()).value).to.equal('a/1');
      await storage.close();
      expect((await failure(() => keys.next())).message).to.equal(`FileStorage ${storage.uri} is closed; open a new storage to use it again`);
    });
  });
});
