/**
 * The `sluice` command (bin/sluice.js) in child processes whose stdout reader goes away before it
 * writes (`sluice --help | head -0`): every write path exits quietly, 141 and no stack trace, not only
 * the jobs (those are in longRunningJob.test.ts).
 */
import { expect } from 'chai';
import { ChildCommand } from './childCommand.ts';

/** A stack trace line: what a quiet exit never prints. */
const STACK = /\n\s+at /;

describe('sluice with its stdout closed by the reader (EPIPE), child processes', function () {
  this.timeout(60_000);

  for (const args of [['--help'], ['--version'], ['sink', '--help'], ['replay', '--help'], ['lines', '--help']]) {
    it(`sluice ${args.join(' ')}: exits 141 quietly`, async () => {
      const child = new ChildCommand(args);
      child.child.stdout.destroy(); // the reader is gone before the first write
      expect(await child.exited, child.stderr).to.equal(141);
      expect(child.stderr).to.not.match(STACK).and.not.contain('EPIPE');
    });
  }

  it('a usage error still exits 2 when stdout is closed (EPIPE only on stdout changes nothing there)', async () => {
    const child = new ChildCommand(['no-such-command']);
    child.child.stdout.destroy();
    expect(await child.exited, child.stderr).to.equal(2);
    expect(child.stderr).to.contain('unknown command').and.not.match(STACK);
  });

  it('stderr closed too: a usage error exits 2 without an uncaught error', async () => {
    const child = new ChildCommand(['no-such-command']);
    child.child.stdout.destroy();
    child.child.stderr.destroy();
    expect(await child.exited).to.equal(2);
  });
});
