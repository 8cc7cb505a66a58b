import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTempFolder, processIsAlive, removeLeftovers } from '../../lib/cli/tempFolders.ts';

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

describe('lib/cli/tempFolders', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'sluice-temp-folders-test-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('names a folder after the label and this pid; remove() deletes it with its content', async () => {
    const folder = await createTempFolder('unit', { root });
    expect(folder.path).to.match(new RegExp(`/sluice-unit-pid${process.pid}-[A-Za-z0-9]{6}$`));
    await writeFile(join(folder.path, 'segment'), 'x');
    await folder.remove();
    expect(await readdir(root)).to.deep.equal([]);
  });

  it("removes what a dead process left under the label, and nothing else: a live process's, another label's, other names", async () => {
    const dead = await deadPid();
    expect(processIsAlive(dead)).to.equal(false);
    const names = [`sluice-unit-pid${dead}-abc123`, `sluice-unit-pid${process.ppid}-abc123`, `sluice-other-pid${dead}-abc123`, `sluice-unit-pid${dead}-x`, 'sluice-unit-cli-abc123'];
    for (const name of names) await mkdir(join(root, name, 'spool'), { recursive: true });
    expect(await removeLeftovers('unit', { root })).to.deep.equal([join(root, names[0]!)]);
    expect((await readdir(root)).sort()).to.deep.equal(names.slice(1).sort());
  });

  it('a folder under our own pid that this process did not make is a leftover (a restarted container runs as pid 1 again); ours stays', async () => {
    const earlier = `sluice-unit-pid${process.pid}-abc123`;
    await mkdir(join(root, earlier, 'spool'), { recursive: true });
    const folder = await createTempFolder('unit', { root });
    expect(await readdir(root)).to.deep.equal([folder.path.slice(root.length + 1)]);
    expect(await removeLeftovers('unit', { root })).to.deep.equal([]);
    expect(await readdir(root)).to.deep.equal([folder.path.slice(root.length + 1)]);
    await folder.remove();
  });

  it('a new folder first removes the leftovers of its label', async () => {
    const left = join(root, `sluice-unit-pid${await deadPid()}-abc123`);
    await mkdir(left);
    const folder = await createTempFolder('unit', { root });
    expect(await readdir(root)).to.deep.equal([folder.path.slice(root.length + 1)]);
    await folder.remove();
  });

  it('a folder not removed is removed when the process exits', async () => {
    const script = `import { createTempFolder } from ${JSON.stringify(new URL('../../lib/cli/tempFolders.ts', import.meta.url).href)};
      const folder = await createTempFolder('unit', { root: ${JSON.stringify(root)} });
      console.log(folder.path);
      process.exit(3);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk));
    const code = await new Promise((resolve) => child.once('close', resolve));
    expect(code).to.equal(3);
    expect(out).to.contain(`sluice-unit-pid${child.pid}-`);
    expect(await readdir(root)).to.deep.equal([]);
  });
});
