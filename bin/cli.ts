/**
 * The `sluice` command line: one subcommand per flow (they arrive with the flows), plus help and
 * version. Unknown input is an error that says what is available.
 */
import { readFileSync } from 'node:fs';
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

process.exitCode = await main(process.argv.slice(2));
