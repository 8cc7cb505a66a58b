/**
 * The `sluice` command line: one subcommand per flow (they arrive with the flows), plus help and
 * version. Unknown input is an error that says what is available.
 */
import { readFileSync } from 'node:fs';
import { BROKEN_PIPE_EXIT_CODE, watchBrokenPipes } from '../lib/cli/job.ts';
import { linesCommand } from '../pipelines/batchFlush/cli.ts';
import { replayCommand } from '../pipelines/storageConsumer/cli.ts';
import { sinkCommand } from '../pipelines/storageSink/cli.ts';

interface Subcommand {
  summary: string;
  run(args: string[]): Promise<number>;
}

const subcommands: Record<string, Subcommand> = { sink: sinkCommand, replay: replayCommand, lines: linesCommand };

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function usage(): string {
  const names = Object.keys(subcommands);
  const lines = names.length
    ? names.map((name) => `  ${name.padEnd(10)} ${subcommands[name]!.summary}`)
    : ['  (none yet: the flows add theirs)'];
  return ['usage: sluice <command> [options]', '', 'commands:', ...lines, '', 'options: --help, --version'].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return 0;
  }
  if (name === '--version' || name === '-v') {
    console.log(version());
    return 0;
  }
  const command = subcommands[name];
  if (!command) {
    console.error(`sluice: unknown command ${JSON.stringify(name)}\n\n${usage()}`);
    return 2;
  }
  return command.run(rest);
}

// A reader that goes away (`sluice --help | head -0`) ends the command quietly with 141, as a job does,
// instead of an unhandled 'error' event and its stack trace: one guard for every write of the process.
let brokenPipe = false;
const brokenPipeExit = (code: number): number => (brokenPipe && code === 0 ? BROKEN_PIPE_EXIT_CODE : code);
watchBrokenPipes({ stdout: process.stdout, stderr: process.stderr }, () => {
  brokenPipe = true;
  // The error of the last write may arrive after main() returned.
  if (process.exitCode !== undefined) process.exitCode = brokenPipeExit(Number(process.exitCode));
});
process.exitCode = brokenPipeExit(await main(process.argv.slice(2)));
