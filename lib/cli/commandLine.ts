/**
 * The frame every `sluice` subcommand runs in: flags parsed strictly, `--help` printed, a command line
 * that cannot run reported, and the exit code returned (0 done, 1 failed while running, 2 the command
 * line cannot run).
 *
 * Invariant guarded here: a `UsageError` never becomes exit 1, and nothing is executed once one is
 * thrown by `parse`; every message starts with the command's name, so a person knows who spoke, and
 * its control characters are escaped (a value quoted in it cannot mangle the terminal).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { escapeControl } from './terminalText.ts';

/** The flags a command takes, as `parseArgs` wants them (name -> type, short, default). */
export type FlagSpec = NonNullable<ParseArgsConfig['options']>;

/** A command line that cannot run: the message says what to fix. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Where a command writes text: the process's streams, or a capture in tests. */
export interface TextOutput {
  write(text: string): unknown;
  /** True on a terminal: progress is then one redrawn line. */
  isTTY?: boolean;
}

export interface CommandOutput {
  stdout: TextOutput;
  stderr: TextOutput;
}

/** What `runCommandLine` needs of a subcommand. */
export interface CommandLine<C> {
  /** Starts every message, e.g. `sluice sink`. */
  name: string;
  /** Printed for --help (exit 0) and after a parse error (exit 2). */
  usage: string;
  /** The command `args` ask for, or 'help'; throws `UsageError` (or any error) when they cannot run. */
  parse(args: string[]): C | 'help';
  /** Runs the parsed command and returns its exit code; a `UsageError` it throws exits 2. */
  execute(command: C, output: CommandOutput): Promise<number>;
}

/**
 * Parses `args` against `flags`, strictly (no unknown flags, no positionals). A boolean flag also
 * takes `--name=true` or `--name=false` (TiCDC's settings default to true in places, so a user must
 * be able to turn one off); the last of a flag's mentions wins, whatever their forms (`--resume=false
 * --resume` is true, `--resume --resume=false` false). A string flag takes a negative number as its
 * next word (`--flush-interval -1`). A mistake becomes a `UsageError` that lists the flags there are.
 *
 * @example const values = parseFlags(args, { to: { type: 'string' }, help: { type: 'boolean', short: 'h' } });
 */
export function parseFlags<const F extends FlagSpec>(args: string[], flags: F) {
  const list = () => Object.keys(flags).map((name) => `--${name}`).join(', ');
  // The boolean flags whose last mention so far is `=false`; a later plain mention drops the name again.
  const negated: Record<string, false> = {};
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    // `--name -1`: a string flag followed by a negative number takes it as its value (parseArgs would
    // call it ambiguous), so the command can say which values are valid.
    if (arg.startsWith('--') && flags[arg.slice(2)]?.type === 'string' && /^-[0-9.]/.test(args[i + 1] ?? '')) {
      rest.push(`${arg}=${args[++i]}`);
      continue;
    }
    const match = /^--([^=]+)=(.*)$/s.exec(arg);
    const spec = match === null ? undefined : flags[match[1]!];
    if (match === null || spec === undefined || spec.type !== 'boolean') {
      rest.push(arg);
      for (const name of booleansTurnedOn(arg, flags)) delete negated[name];
    } else if (match[2] === 'true') {
      rest.push(`--${match[1]}`);
      delete negated[match[1]!];
    } else if (match[2] === 'false') {
      negated[match[1]!] = false;
    } else {
      throw new UsageError(`--${match[1]} takes no value or =true or =false, got ${JSON.stringify(match[2])}; the flags are ${list()}`);
    }
  }
  try {
    const values = parseArgs({ args: rest, options: flags, strict: true, allowPositionals: false }).values;
    return Object.assign(values, negated) as typeof values;
  } catch (error) {
    throw new UsageError(`${(error as Error).message}; the flags are ${list()}`);
  }
}

/**
 * The boolean flags `arg` turns on when it is a flag of its own: `--name`, or `-abc` (short flags,
 * read up to the first one that takes a value, whose value is the rest).
 */
function booleansTurnedOn(arg: string, flags: FlagSpec): string[] {
  if (arg.startsWith('--')) return flags[arg.slice(2)]?.type === 'boolean' ? [arg.slice(2)] : [];
  if (!arg.startsWith('-') || arg.length < 2) return [];
  const names: string[] = [];
  for (const letter of arg.slice(1)) {
    const name = Object.keys(flags).find((candidate) => flags[candidate]!.short === letter);
    if (name === undefined || flags[name]!.type !== 'boolean') break;
    names.push(name);
  }
  return names;
}

/**
 * Runs a subcommand with `args` (the words after its name) and returns the exit code: `--help` prints
 * the usage on stdout (0); an error from `parse` prints `<name>: <message>`, a blank line and the
 * usage on stderr (2); a `UsageError` from `execute` (a flag whose value fails only when used, such
 * as a file that cannot be read) prints `<name>: <message>` (2). `io` replaces the process's streams.
 */
export async function runCommandLine<C>(command: CommandLine<C>, args: string[], io: Partial<CommandOutput> = {}): Promise<number> {
  const output: CommandOutput = { stdout: io.stdout ?? process.stdout, stderr: io.stderr ?? process.stderr };
  let parsed: C | 'help';
  try {
    parsed = command.parse(args);
  } catch (error) {
    output.stderr.write(`${command.name}: ${escapeControl((error as Error).message)}\n\n${command.usage}\n`);
    return 2;
  }
  if (parsed === 'help') {
    output.stdout.write(`${command.usage}\n`);
    return 0;
  }
  try {
    return await command.execute(parsed, output);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    output.stderr.write(`${command.name}: ${escapeControl(error.message)}\n`);
    return 2;
  }
}

/**
 * Reports a failure while running, with what a person can do about it, and returns exit code 1; the
 * control characters of `message` and `hint` are escaped.
 */
export function printFailure(stderr: TextOutput, name: string, message: string, hint: string): 1 {
  stderr.write(`${name}: ${escapeControl(message)}\n  hint: ${escapeControl(hint)}\n`);
  return 1;
}
