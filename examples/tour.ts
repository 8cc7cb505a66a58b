/** `npm start`: runs every example in the catalog, one after another, on embedded defaults. */
import { examples } from './catalog.ts';

for (const [i, example] of examples.entries()) {
  console.log(`\n== ${i + 1}/${examples.length} ${example.name}: ${example.summary}`);
  const started = performance.now();
  await (await example.load()).run();
  console.log(`== ${example.name} done in ${Math.round(performance.now() - started)} ms`);
}
console.log(`\nTour complete: ${examples.length} example(s).`);
