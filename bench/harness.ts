/**
 * Benchmark helpers shared by the suites in bench/: timing, peak memory, parameters and the result
 * line.
 *
 * Invariant guarded here: stdout carries exactly one line per suite run, the result JSON, and it is
 * the last line; everything else (progress) goes to stderr, so scripts can read `tail -n 1`.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkNumber } from '../lib/core/errors.ts';

/** Parameters from the command line (`--key=value`): numbers when they parse as one, else strings. */
export type BenchParams = Readonly<Record<string, number | string>>;

/** What every suite prints (DESIGN.md section 5); suites add their own fields. */
export interface BenchResult {
  suite: string;
  metric: string;
  value: number;
  baseline: number;
  /** value / baseline, higher is better. */
  ratio: number;
  peakRssBytes: number;
  [field: string]: unknown;
}

export interface MeasureOptions {
  /** Untimed runs of `fn` before the timed one (JIT warm-up). Default 0. */
  warmupRuns?: number;
}

export interface Measurement<T> {
  name: string;
  elapsedNs: bigint;
  elapsedMs: number;
  /** What the timed run of `fn` returned. */
  result: T;
}

/**
 * Times one run of `fn` with `process.hrtime.bigint()` after `warmupRuns` untimed runs, and logs it
 * to stderr. A synchronous `fn` is timed without awaiting anything.
 */
export async function measure<T>(
  name: string,
  fn: () => T | PromiseLike<T>,
  options: MeasureOptions = {},
): Promise<Measurement<T>> {
  const warmupRuns = checkNumber('measure', 'warmupRuns', options.warmupRuns ?? 0, { min: 0, integer: true });
  for (let i = 0; i < warmupRuns; i++) await fn();
  const cpuBefore = process.cpuUsage();
  const start = process.hrtime.bigint();
  const returned = fn();
  const result = isPromiseLike(returned) ? await returned : returned;
  const elapsedNs = process.hrtime.bigint() - start;
  const elapsedMs = Number(elapsedNs) / 1e6;
  // CPU time (all threads) beside wall time: on a busy machine it shows the work apart from waiting.
  const cpu = process.cpuUsage(cpuBefore);
  progress(`${name}: ${elapsedMs.toFixed(1)} ms (cpu: user ${(cpu.user / 1000).toFixed(0)} ms, system ${(cpu.system / 1000).toFixed(0)} ms)`);
  return { name, elapsedNs, elapsedMs, result };
}

/** Events per second for `events` handled in `elapsedNs`. */
export function eventsPerSecond(events: number, elapsedNs: bigint): number {
  return (events * 1e9) / Number(elapsedNs);
}

/** Peak resident set size of this process so far, in bytes. */
export function peakRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}

/** RSS now, split as Linux counts it (anonymous memory, mapped files), for progress lines; '' elsewhere. */
export function rssBreakdown(): string {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
    return `rss ${(kib('VmRSS') / 1024).toFixed(1)} MiB = anon ${(kib('RssAnon') / 1024).toFixed(1)} + file ${(kib('RssFile') / 1024).toFixed(1)} + shmem ${(kib('RssShmem') / 1024).toFixed(1)}`;
  } catch {
    return '';
  }
}

/** A numeric parameter with its default, checked like an operator option. */
export function numberParam(
  params: BenchParams,
  name: string,
  fallback: number,
  range: { min?: number; max?: number; integer?: boolean } = {},
): number {
  return checkNumber('bench', `--${name}`, params[name] ?? fallback, range);
}

/** A progress line, on stderr. */
export function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}

/**
 * Prints the suite's result as one JSON line on stdout (call it once, last) and a readable summary
 * on stderr. Throws when a required field is missing or not a finite number.
 */
export function printResult(result: BenchResult): void {
  for (const field of ['value', 'baseline', 'ratio', 'peakRssBytes'] as const) {
    if (typeof result[field] !== 'number' || !Number.isFinite(result[field])) {
      throw new TypeError(`bench result of ${result.suite}: ${field} must be a finite number, got ${String(result[field])}`);
    }
  }
  progress(
    `${result.suite}: ${result.metric} ${formatNumber(result.value)} vs baseline ${formatNumber(result.baseline)}, ratio ${result.ratio.toFixed(3)}, peak RSS ${(result.peakRssBytes / 2 ** 20).toFixed(1)} MiB`,
  );
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function formatNumber(value: number): string {
  return value >= 1000 ? Math.round(value).toLocaleString('en-US') : value.toPrecision(4);
}

function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as PromiseLike<T> | null)?.then === 'function';
}

const PROJECT = dirname(dirname(fileURLToPath(import.meta.url)));

/** The project compiled by tsc for a suite's measuring children (see compileBench). */
export interface CompiledBench {
  /**
   * Runs `exportName(params)` of bench/<module>.js in a fresh child `node`, progress on stderr. With
   * `result`, resolves with what the child printed last on stdout (one JSON line, see printPhase),
   * parsed; otherwise the child's stdout is this process's.
   */
  run(module: string, exportName: string, params: BenchParams, options?: { nodeFlags?: readonly string[]; result?: boolean }): Promise<unknown>;
  /** Removes the compiled output. */
  close(): void;
}

/**
 * Compiles the project with tsc for children that run a suite's measured phases on JavaScript, as an
 * application runs sluice: under tsx the loader alone holds ~50 MiB and esbuild's keepNames gives
 * every closure a property table, which would be measured as ours. Extra flags for the children (say
 * `--cpu-prof` or `--trace-gc`) come from SLUICE_BENCH_NODE_FLAGS.
 */
export function compileBench(suite: string): CompiledBench {
  const outDir = join(PROJECT, '.tmp', `bench-${suite}-js`);
  progress(`${suite}: compiling to ${outDir} (tsc)`);
  rmSync(outDir, { recursive: true, force: true });
  const close = () => rmSync(outDir, { recursive: true, force: true });
  try {
    execFileSync(process.execPath, [join(PROJECT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', PROJECT, '--noEmit', 'false', '--outDir', outDir], {
      stdio: 'inherit',
    });
  } catch (error) {
    // tsc still emits on type errors (`npm run typecheck` is where they count); stop only without output.
    if (!existsSync(join(outDir, 'bench', 'harness.js'))) {
      close();
      throw error;
    }
    progress(`${suite}: tsc reported type errors (above); running the JavaScript it emitted`);
  }
  const extraFlags = (process.env['SLUICE_BENCH_NODE_FLAGS'] ?? '').split(/\s+/).filter(Boolean);
  return {
    close,
    async run(module, exportName, params, options = {}) {
      const entry = JSON.stringify(join(outDir, 'bench', `${module}.js`));
      const script = `import { ${exportName} } from ${entry}; await ${exportName}(${JSON.stringify(params)});`;
      const child = spawn(process.execPath, [...(options.nodeFlags ?? []), ...extraFlags, '--input-type=module', '-e', script], {
        stdio: ['ignore', options.result ? 'pipe' : 'inherit', 'inherit'],
        cwd: PROJECT,
      });
      let out = '';
      child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      if (code !== 0) throw new Error(`${suite} bench: the measuring process (${exportName}) exited with ${code}`);
      if (!options.result) return undefined;
      const last = out.trimEnd().split('\n').at(-1) ?? '';
      try {
        return JSON.parse(last) as unknown;
      } catch {
        throw new Error(`${suite} bench: ${exportName} printed no result line (last stdout line: ${JSON.stringify(last.slice(0, 200))})`);
      }
    },
  };
}

/** Runs `exportName(params)` of bench/<module>.ts in one child on compiled JavaScript (compileBench); the child prints the result. */
export async function runCompiled(suite: string, module: string, exportName: string, params: BenchParams, nodeFlags: readonly string[] = []): Promise<void> {
  const compiled = compileBench(suite);
  try {
    await compiled.run(module, exportName, params, { nodeFlags });
  } finally {
    compiled.close();
  }
}

/** In a measuring child started with `result` (CompiledBench.run): prints its phase's figures as one JSON line. */
export function printPhase(figures: Readonly<Record<string, number>>): void {
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}

/** The median of some numbers (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
