/**
 * Suite `operators`: the hot paths of batchBy and orderedMergeMap against their closest RxJS
 * baselines, in one process run: `batchBy({ maxItems: 1000 })` vs `bufferCount(1000)`, and
 * `orderedMergeMap` with a synchronous project vs `concatMap`, over `n` numbers.
 *
 * Invariant guarded here: both sides of a pair see the same input and a trivial counting
 * subscriber, run interleaved in every round, and every run is checked to deliver all `n` items;
 * the reported ratio is the worse of the two pairs (ours / RxJS, higher is better; target >= 0.8).
 */
import { bufferCount, concatMap, from, type Observable, type OperatorFunction } from 'rxjs';
import { batchBy } from '../operators/batchBy.ts';
import { orderedMergeMap } from '../operators/orderedMergeMap.ts';
import { type BenchParams, eventsPerSecond, measure, numberParam, peakRssBytes, printResult, progress } from './harness.ts';

interface Case {
  readonly name: 'batchBy' | 'bufferCount' | 'orderedMergeMap' | 'concatMap';
  /** Subscribes the case to `input$` and returns the number of items that came out. */
  readonly run: (input$: Observable<number>) => number;
}

/** Counts the items inside the batches (arrays or `Batch.items`) a batching operator emits. */
function countBatched<B>(input$: Observable<number>, operator: OperatorFunction<number, B>, sizeOf: (batch: B) => number): number {
  let items = 0;
  input$.pipe(operator).subscribe((batch) => {
    items += sizeOf(batch);
  });
  return items;
}

function countValues(input$: Observable<number>, operator: OperatorFunction<number, number>): number {
  let values = 0;
  input$.pipe(operator).subscribe(() => {
    values++;
  });
  return values;
}

const CASES: readonly Case[] = [
  { name: 'batchBy', run: (input$) => countBatched(input$, batchBy<number>({ maxItems: 1000 }), (batch) => batch.items.length) },
  { name: 'bufferCount', run: (input$) => countBatched(input$, bufferCount<number>(1000), (batch) => batch.length) },
  {
    name: 'orderedMergeMap',
    run: (input$) => countValues(input$, orderedMergeMap({ project: (x: number) => [x], concurrency: 8 })),
  },
  { name: 'concatMap', run: (input$) => countValues(input$, concatMap((x: number) => [x])) },
];

/** Pairs as [ours, RxJS baseline]. */
const PAIRS = [
  ['batchBy', 'bufferCount'],
  ['orderedMergeMap', 'concatMap'],
] as const;

/**
 * Runs every case `rounds` times, interleaved (the order rotates each round), keeps each case's best
 * time and prints the result line.
 *
 * @param params.n numbers per run (default 1e6); params.rounds runs per case (default 3);
 *   params.warmup untimed runs per case before the first round (default 1).
 */
export async function run(params: BenchParams): Promise<void> {
  const n = numberParam(params, 'n', 1e6, { min: 1, integer: true });
  const rounds = numberParam(params, 'rounds', 3, { min: 1, integer: true });
  const warmup = numberParam(params, 'warmup', 1, { min: 0, integer: true });
  const input = Array.from({ length: n }, (_, i) => i);
  const input$ = from(input);
  progress(`operators: n=${n} rounds=${rounds} warmup=${warmup} (node ${process.version})`);

  const best = new Map<Case['name'], bigint>();
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < CASES.length; k++) {
      const benchCase = CASES[(k + round) % CASES.length]!;
      const { elapsedNs, result } = await measure(`round ${round + 1} ${benchCase.name}`, () => benchCase.run(input$), {
        warmupRuns: round === 0 ? warmup : 0,
      });
      if (result !== n) throw new Error(`operators: ${benchCase.name} delivered ${result} of ${n} items`);
      const previous = best.get(benchCase.name);
      if (previous === undefined || elapsedNs < previous) best.set(benchCase.name, elapsedNs);
    }
  }

  const rate = (name: Case['name']) => eventsPerSecond(n, best.get(name)!);
  const ratios = Object.fromEntries(PAIRS.map(([ours, baseline]) => [ours, rate(ours) / rate(baseline)])) as Record<
    (typeof PAIRS)[number][0],
    number
  >;
  const [worseOurs, worseBaseline] = PAIRS.reduce((worse, pair) => (ratios[pair[0]] < ratios[worse[0]] ? pair : worse));
  printResult({
    suite: 'operators',
    metric: 'events/s',
    value: rate(worseOurs),
    baseline: rate(worseBaseline),
    ratio: ratios[worseOurs],
    peakRssBytes: peakRssBytes(),
    pair: `${worseOurs}/${worseBaseline}`,
    batchBy: rate('batchBy'),
    bufferCount: rate('bufferCount'),
    orderedMergeMap: rate('orderedMergeMap'),
    concatMap: rate('concatMap'),
    ratios,
    n,
    rounds,
  });
}
