/**
 * A consumer in a process of its own, for the SIGKILL tests: replays argv[2] (storage URI) into
 * argv[3] (MySQL URI) with checkpoint database argv[4], polling until killed.
 */
import { storageConsumer } from '../../../pipelines/storageConsumer/storageConsumer.ts';

const [from, to, checkpointDatabase] = process.argv.slice(2) as [string, string, string];
storageConsumer({ from, to, checkpointDatabase, intervalMs: 20, maxRowsPerStatement: 7, csv: { includeCommitTs: true } }).subscribe({
  next: (p) => {
    if (p.kind === 'data') process.stdout.write('.');
  },
  error: (error: unknown) => {
    process.stderr.write(`replayChild: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
});
