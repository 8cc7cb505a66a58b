/** `npm run example -- <name>`: runs one example from the catalog. */
import { examples } from './catalog.ts';

const name = process.argv[2];
const example = examples.find((e) => e.name === name);
if (!example) {
  const list = examples.map((e) => `  ${e.name.padEnd(12)} ${e.summary}`).join('\n');
  console.error(`${name ? `unknown example ${JSON.stringify(name)}` : 'name an example'}; there are:\n${list}`);
  process.exit(2);
}
await (await example.load()).run();
