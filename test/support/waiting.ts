/** Waiting on real I/O in tests: by event-loop turns, or until a condition holds within a deadline. */
import { existsSync, readdirSync } from 'node:fs';

/** One turn of the event loop (after pending I/O callbacks). */
export const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Waits until `condition` holds; fails after `timeoutMs` naming `what` it waited for. */
export async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await tick();
  }
}

/** File descriptors this process holds open. */
export const openFds = () => readdirSync('/proc/self/fd').length;

/** The spool segment files in `dir`, sorted (none when it does not exist). */
export const segmentFiles = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((name) => name.endsWith('.spool')).sort() : []);

/** The error a promise (or a call) rejects with; fails the test when it resolves instead. */
export async function rejectionOf(promise: Promise<unknown> | (() => Promise<unknown>)): Promise<Error> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection, but it resolved');
}
