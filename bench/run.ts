/**
 * Benchmark runner: `npm run bench -- <suite> [--key=value ...]` loads bench/<suite>.ts and runs its
 * exported `run(params)`, which prints the result JSON as the last stdout line.
 *
 * Invariant guarded here: only a file of bench/ named by letters, digits and dashes is ever loaded
 * (no paths, no other modules); anything else prints the suites and exits with status 2.
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { InvalidOptionError } from '../lib/core/errors.ts';
import type { BenchParams } from './harness.ts';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
/** Modules of bench/ that are not suites. */
const NOT_SUITES = new Set(['run', 'harness']);
const SUITE_NAME = /^[A-Za-z0-9-]+$/;
const PARAM = /^--([A-Za-z][A-Za-z0-9-]*)=(.*)$/s;

interface Suite {
  run(params: BenchParams): unknown;
}

function suites(): string[] {
  return readdirSync(BENCH_DIR)
    .filter((file) => file.endsWith('.ts'))
    .map((file) => file.slice(0, -'.ts'.length))
    .filter((name) => SUITE_NAME.test(name) && !NOT_SUITES.has(name))
    .sort();
}

function usage(problem: string): never {
  process.stderr.write(
    `${problem}\nusage: npm run bench -- <suite> [--key=value ...]\nsuites: ${suites().join(', ') || '(none)'}\n`,
  );
  process.exit(2);
}

/** `--n=1e6` -> 1000000, `--mode=fast` -> 'fast'. */
function parseParams(args: readonly string[]): BenchParams {
  const params: Record<string, number | string> = {};
  for (const arg of args) {
    const match = PARAM.exec(arg);
    if (!match) usage(`not a --key=value parameter: ${JSON.stringify(arg)}`);
    const key = match[1]!;
    const raw = match[2]!;
    const number = raw.trim() === '' ? NaN : Number(raw);
    params[key] = Number.isFinite(number) ? number : raw;
  }
  return params;
}

async function main(argv: readonly string[]): Promise<void> {
  const [suite, ...rest] = argv;
  if (suite === undefined) usage('no suite given');
  if (!SUITE_NAME.test(suite)) usage(`invalid suite name (letters, digits, dashes): ${JSON.stringify(suite)}`);
  if (NOT_SUITES.has(suite)) usage(`not a suite: ${suite}`);
  const file = join(BENCH_DIR, `${suite}.ts`);
  if (!existsSync(file)) usage(`unknown suite: ${suite}`);
  const params = parseParams(rest);
  const module = (await import(pathToFileURL(file).href)) as Partial<Suite>;
  if (typeof module.run !== 'function') usage(`bench/${suite}.ts does not export run(params)`);
  await module.run(params);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  // A parameter out of range is a usage error, like a bad suite name.
  if (error instanceof InvalidOptionError) usage(error.message);
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
