import { expect } from 'chai';
import { parseFlags, printFailure, runCommandLine, UsageError, type CommandLine } from '../../lib/cli/commandLine.ts';

const FLAGS = {
  to: { type: 'string' },
  once: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function capture() {
  let out = '';
  let err = '';
  return { stdout: { write: (t: string) => (out += t) }, stderr: { write: (t: string) => (err += t) }, out: () => out, err: () => err };
}

/** A command that records what it executed; `parse` and `execute` can be replaced per test. */
function demo(overrides: Partial<CommandLine<{ to: string }>> = {}) {
  const executed: { to: string }[] = [];
  const command: CommandLine<{ to: string }> = {
    name: 'sluice demo',
    usage: 'usage: sluice demo --to <x>',
    parse: (args) => {
      const values = parseFlags(args, FLAGS);
      if (values.help) return 'help';
      if (!values.to) throw new UsageError('--to is required');
      return { to: values.to };
    },
    execute: async (parsed, { stdout }) => {
      executed.push(parsed);
      stdout.write(`to ${parsed.to}\n`);
      return 0;
    },
    ...overrides,
  };
  return { command, executed };
}

describe('lib/cli/commandLine', () => {
  describe('parseFlags', () => {
    it('returns the values of known flags, long and short', () => {
      expect(parseFlags(['--to', 'x', '--once'], FLAGS)).to.deep.include({ to: 'x', once: true });
      expect(parseFlags(['-h'], FLAGS).help).to.equal(true);
      expect(parseFlags(['--to=y'], FLAGS).to).to.equal('y');
    });

    it('gives a string flag a negative number as its next word, so the command can say the valid range (issue 14)', () => {
      expect(parseFlags(['--to', '-1', '--once'], FLAGS)).to.deep.include({ to: '-1', once: true });
      expect(parseFlags(['--to', '-0.5s'], FLAGS).to).to.equal('-0.5s');
      expect(() => parseFlags(['--to', '-x'], FLAGS)).to.throw(UsageError);
    });

    it('turns an unknown flag, a positional or a missing value into a UsageError listing the flags', () => {
      for (const args of [['--nope'], ['stray'], ['--to']]) {
        let caught: unknown;
        try {
          parseFlags(args, FLAGS);
        } catch (error) {
          caught = error;
        }
        expect(caught, args.join(' ')).to.be.instanceOf(UsageError);
        expect((caught as Error).message, args.join(' ')).to.match(/; the flags are --to, --once, --help$/);
      }
      expect(() => parseFlags(['--nope'], FLAGS)).to.throw(UsageError, "'--nope'");
    });

    it('takes --flag=false and --flag=true for a boolean flag (a TiCDC setting that defaults to true can be turned off)', () => {
      expect(parseFlags(['--once=false'], FLAGS).once).to.equal(false);
      expect(parseFlags(['--once=true'], FLAGS).once).to.equal(true);
      expect(parseFlags(['--to', 'x'], FLAGS).once).to.equal(undefined);
      expect(() => parseFlags(['--once=no'], FLAGS)).to.throw(UsageError, '--once takes no value or =true or =false, got "no"; the flags are --to, --once, --help');
      // A string flag keeps its `=` value as it is.
      expect(parseFlags(['--to=false'], FLAGS).to).to.equal('false');
    });

    it('gives a boolean flag its last mention, whatever the forms (=false, =true, plain, short)', () => {
      expect(parseFlags(['--once=false', '--once'], FLAGS).once, '--once=false --once').to.equal(true);
      expect(parseFlags(['--once=false', '--once=true'], FLAGS).once, '--once=false --once=true').to.equal(true);
      expect(parseFlags(['--once', '--once=false'], FLAGS).once, '--once --once=false').to.equal(false);
      expect(parseFlags(['--once=true', '--once=false'], FLAGS).once, '--once=true --once=false').to.equal(false);
      expect(parseFlags(['--once=false', '--once', '--to', 'x', '--once=false'], FLAGS).once, 'false, plain, false').to.equal(false);
      expect(parseFlags(['--help=false', '-h'], FLAGS).help, '--help=false -h').to.equal(true);
      expect(parseFlags(['-h', '--help=false'], FLAGS).help, '-h --help=false').to.equal(false);
      // Another flag between them changes nothing.
      expect(parseFlags(['--once=false', '--to', 'x'], FLAGS)).to.deep.include({ once: false, to: 'x' });
    });
  });

  describe('runCommandLine', () => {
    it('executes the parsed command and returns its exit code', async () => {
      const io = capture();
      const { command, executed } = demo();
      expect(await runCommandLine(command, ['--to', 'x'], io)).to.equal(0);
      expect(executed).to.deep.equal([{ to: 'x' }]);
      expect(io.out()).to.equal('to x\n');
      expect(io.err()).to.equal('');
      expect(await runCommandLine(demo({ execute: async () => 7 }).command, ['--to', 'x'], capture())).to.equal(7);
    });

    it('prints the usage on stdout for --help and exits 0 without executing', async () => {
      const io = capture();
      const { command, executed } = demo();
      expect(await runCommandLine(command, ['--help'], io)).to.equal(0);
      expect(io.out()).to.equal('usage: sluice demo --to <x>\n');
      expect(io.err()).to.equal('');
      expect(executed).to.deep.equal([]);
    });

    it('on a parse error prints the name, the message and the usage on stderr and exits 2 without executing', async () => {
      const io = capture();
      const { command, executed } = demo();
      expect(await runCommandLine(command, [], io)).to.equal(2);
      expect(io.err()).to.equal('sluice demo: --to is required\n\nusage: sluice demo --to <x>\n');
      expect(io.out()).to.equal('');
      expect(executed).to.deep.equal([]);
    });

    it('on a UsageError from execute prints the name and the message (no usage) and exits 2', async () => {
      const io = capture();
      const { command } = demo({
        execute: async () => {
          throw new UsageError('--to: cannot open x');
        },
      });
      expect(await runCommandLine(command, ['--to', 'x'], io)).to.equal(2);
      expect(io.err()).to.equal('sluice demo: --to: cannot open x\n');
    });

    it('lets any other error from execute through: the command reports its own failures', async () => {
      const { command } = demo({
        execute: async () => {
          throw new TypeError('a bug');
        },
      });
      let caught: unknown;
      try {
        await runCommandLine(command, ['--to', 'x'], capture());
      } catch (error) {
        caught = error;
      }
      expect(caught).to.be.instanceOf(TypeError).with.property('message', 'a bug');
    });
  });

  it('printFailure writes the message and the hint and returns 1', () => {
    const io = capture();
    expect(printFailure(io.stderr, 'sluice demo', 'disk full', 'free some space and run again')).to.equal(1);
    expect(io.err()).to.equal('sluice demo: disk full\n  hint: free some space and run again\n');
  });
});
