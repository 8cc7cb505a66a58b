/**
 * How a round's planned items run: which start when, how many at once (`applyConcurrency`), and which
 * data files are read ahead (bounded by `prefetchFiles` and `prefetchBytes`). It never applies an
 * item itself (itemApplier.ts) nor decides what waits for what (schedule.ts).
 */
import type { DataItem, DecodedFile, ItemApplier } from './itemApplier.ts';
import type { Settings } from './options.ts';
import type { SchemaFileRef } from './pathKey.ts';
import type { WorkItem } from './roundPlan.ts';
import { ItemScheduler } from './schedule.ts';

/** A data file's read and statements, started ahead; `bytes` counts once it is read (the larger of file and SQL). */
interface Prefetched {
  result: Promise<DecodedFile>;
  bytes: number;
}

export interface RoundWork {
  items: readonly WorkItem[];
  schemaByVersion: Map<string, SchemaFileRef>;
  /** Items that run alone: nothing else runs beside them (see ItemScheduler). */
  barrier: (item: WorkItem) => boolean;
  applier: ItemApplier;
  settings: Settings;
  stopped: () => boolean;
}

/**
 * Runs the items, up to `applyConcurrency` at once, with data files read and turned into statements
 * ahead, bounded by `prefetchFiles` and `prefetchBytes`. On an error nothing new starts; those
 * running finish (each commits whole or not at all) and the first error is thrown.
 */
export async function applyRound(work: RoundWork): Promise<{ files: number; rows: number }> {
  const { items, schemaByVersion, applier, settings, stopped } = work;
  const scheduler = new ItemScheduler(items, work.barrier);
  const ahead = new Map<WorkItem, Prefetched>();
  let aheadBytes = 0;
  const running = new Map<WorkItem, Promise<void>>();
  let files = 0;
  let rows = 0;
  let failure: { error: unknown } | undefined;

  const readAhead = (item: WorkItem): Prefetched => {
    const entry: Prefetched = { result: applier.readDataFile(item as DataItem, schemaByVersion), bytes: 0 };
    entry.result.then(
      (decoded) => {
        if (ahead.get(item) !== entry) return;
        entry.bytes = decoded.bytes;
        aheadBytes += decoded.bytes;
      },
      () => undefined, // reported when its turn comes
    );
    ahead.set(item, entry);
    return entry;
  };
  const fill = () => {
    const candidates = scheduler.upcoming([...running.keys()], settings.prefetchFiles);
    for (const item of candidates) {
      if (ahead.size >= settings.prefetchFiles || (ahead.size > 0 && aheadBytes >= settings.prefetchBytes)) break;
      if (!ahead.has(item)) readAhead(item);
    }
  };
  const run = async (item: WorkItem) => {
    if (item.kind === 'ddl') {
      await applier.applyDdl(item, schemaByVersion);
      return;
    }
    const entry = ahead.get(item) ?? readAhead(item);
    let decoded: DecodedFile;
    try {
      decoded = await entry.result;
    } catch (error) {
      settings.metrics?.error('decode');
      throw error;
    } finally {
      ahead.delete(item);
      aheadBytes -= entry.bytes;
    }
    // Not `rows += await ...`: that reads `rows` before the wait, and other files finish meanwhile.
    const applied = await applier.applyData(item, decoded);
    rows += applied;
  };

  try {
    for (;;) {
      while (failure === undefined && !stopped() && running.size < settings.applyConcurrency) {
        const item = scheduler.next([...running.keys()]);
        if (item === undefined) break;
        const done = run(item).then(
          () => {
            files++;
          },
          (error: unknown) => {
            failure ??= { error };
          },
        );
        running.set(item, done.finally(() => running.delete(item)));
      }
      if (failure === undefined && !stopped()) fill();
      if (running.size === 0) break;
      await Promise.race(running.values());
    }
  } finally {
    // Read-ahead that will not be applied (stopped, failed) must not leave rejections unhandled.
    for (const entry of ahead.values()) entry.result.catch(() => undefined);
  }
  if (failure !== undefined) throw failure.error;
  if (!scheduler.allStarted && !stopped()) throw new Error('storageConsumer: a round ended with work not started (a scheduling bug)');
  return { files, rows };
}
