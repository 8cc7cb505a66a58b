/**
 * When the sink's unflushed lines go into checkpoint segments, and when flushed segments go away:
 * the restore at start, saves started by size, by held wakes and by the interval, and the final save.
 * It guards the sink's durability mark: `savedThrough` only covers lines whose segment is durable,
 * and never moves past a save still under way (saves finish out of order, the mark follows the
 * prefix that is done).
 */
import type { SchedulerAction, SchedulerLike, Subscription } from 'rxjs';
import { Queue } from '../../lib/core/queue.ts';
import type { LineCheckpoint } from './checkpoint.ts';
import type { LineArena } from './lineArena.ts';
import type { LineSinkStats } from './progress.ts';

/** A save starts at once when this many bytes of lines are unsaved (smaller segments, synced sooner). */
const SAVE_CHUNK_BYTES = 1024 * 1024;
/** Saves running at once (each is a put of its own segment). */
const MAX_SAVES_IN_FLIGHT = 4;

/** What the saves read from and tell the sink. */
export interface CheckpointSaveHooks {
  /** Lines up to this one are on the server (they need no saving, their segments may go). */
  flushedThrough(): number;
  heldWakes(): number;
  closed(): boolean;
  /** A save is done: held wakes may go now. */
  releaseHeld(): void;
  report(): void;
  /** A save or a release failed: the sink stops with this error. */
  fail(error: unknown): void;
}

export class CheckpointSaves {
  readonly #checkpoint: LineCheckpoint;
  readonly #arena: LineArena;
  readonly #stats: LineSinkStats;
  readonly #hooks: CheckpointSaveHooks;
  // The checkpoint covers lines up to savedThrough; unsavedFirstSeq..arena.lastSeq are not in a segment yet.
  #savedThrough = 0;
  #unsavedFirstSeq = 1;
  /** Saves under way, in the order they started: savedThrough follows the prefix that is done. */
  readonly #saves = new Queue<{ lastSeq: number; done: boolean }>();
  readonly #running = new Set<Promise<void>>();
  #saveQueued = false;

  constructor(checkpoint: LineCheckpoint, arena: LineArena, stats: LineSinkStats, hooks: CheckpointSaveHooks) {
    this.#checkpoint = checkpoint;
    this.#arena = arena;
    this.#stats = stats;
    this.#hooks = hooks;
  }

  /** Lines up to this one are in a durable segment. */
  get savedThrough(): number {
    return this.#savedThrough;
  }

  /** Lines in the checkpoint's segments. */
  get savedLines(): number {
    return this.#checkpoint.savedLines;
  }

  /**
   * Reads the lines a previous run left, appends them to the (empty) arena as lines 1..n and saves
   * them under this run before the old segments go: a crash in between only duplicates.
   */
  async restore(): Promise<{ lines: string[]; segments: number }> {
    const checkpoint = this.#checkpoint;
    const found = await checkpoint.restore();
    const restored = found.lines;
    if (restored.length > 0) {
      for (const line of restored) this.#arena.append(line);
      const { parts, quoted } = this.#arena.segment(1, restored.length);
      await checkpoint.saveBody(parts, restored.length, quoted, 1);
      this.#stats.checkpointSaves++;
      await checkpoint.drop(found.keys);
      this.#savedThrough = restored.length;
      this.#unsavedFirstSeq = restored.length + 1;
      this.#stats.restoredLines = restored.length;
    } else if (found.keys.length > 0) {
      await checkpoint.drop(found.keys);
    }
    return { lines: restored, segments: found.keys.length };
  }

  /** The interval save: lines of plain values (no wake to hold) get saved at least every `everyMs`. */
  scheduleTicks(scheduler: SchedulerLike, everyMs: number): Subscription {
    const tick = (): boolean => {
      if (this.#hooks.closed()) return false;
      if (this.#unsavedFirstSeq <= this.#arena.lastSeq) this.requestSave();
      this.requestRelease();
      return true;
    };
    return scheduler.schedule(function (this: SchedulerAction<undefined>) {
      if (tick()) this.schedule(undefined, everyMs);
    }, everyMs);
  }

  /**
   * Asks for a save: at once when a chunk's worth of lines is unsaved and a save slot is free, else
   * after the current synchronous burst (a paced source emits its window at once); a save that
   * completes starts the next one while wakes are held.
   */
  requestSave(): void {
    if (this.#hooks.closed()) return;
    if (this.#saves.length < MAX_SAVES_IN_FLIGHT && this.#unsavedBytes() >= SAVE_CHUNK_BYTES) {
      this.#startSave();
      return;
    }
    if (this.#saveQueued) return;
    this.#saveQueued = true;
    queueMicrotask(() => {
      this.#saveQueued = false;
      if (!this.#hooks.closed() && this.#saves.length < MAX_SAVES_IN_FLIGHT) this.#startSave();
    });
  }

  /** Deletes the segments whose lines are all flushed (in order, one run at a time). */
  requestRelease(): void {
    const flushedThrough = this.#hooks.flushedThrough();
    if (this.#hooks.closed() || !this.#checkpoint.releasable(flushedThrough)) return;
    this.#checkpoint.release(flushedThrough).then(
      () => this.#hooks.report(),
      (error: unknown) => this.#hooks.fail(error),
    );
  }

  /** Saves what is unsaved and waits for every save under way, then deletes flushed segments. */
  async saveAll(): Promise<void> {
    const under = [...this.#running];
    const last = this.#startSave();
    await Promise.all(last === undefined ? under : [...under, last]);
    await this.#checkpoint.release(this.#hooks.flushedThrough());
    this.#hooks.report();
  }

  #unsavedBytes(): number {
    const arena = this.#arena;
    return this.#unsavedFirstSeq > arena.lastSeq ? 0 : arena.endOf(arena.lastSeq) - arena.startOf(this.#unsavedFirstSeq);
  }

  /**
   * Puts the unsaved lines (those not flushed meanwhile) into a new segment, at once. Several saves
   * run at a time, so a source's next lines are converted while earlier ones are being synced.
   */
  #startSave(): Promise<void> | undefined {
    const arena = this.#arena;
    const saves = this.#saves;
    // Lines already flushed need no saving.
    const flushedThrough = this.#hooks.flushedThrough();
    if (this.#unsavedFirstSeq <= flushedThrough) this.#unsavedFirstSeq = flushedThrough + 1;
    const lastSeq = arena.lastSeq;
    if (this.#unsavedFirstSeq > lastSeq) {
      if (saves.length === 0) this.#savedThrough = Math.max(this.#savedThrough, this.#unsavedFirstSeq - 1);
      return undefined;
    }
    const firstSeq = this.#unsavedFirstSeq;
    // The segment is the arena's bytes of these lines (copied by saveBody before it returns).
    const { parts, quoted } = arena.segment(firstSeq, lastSeq);
    this.#unsavedFirstSeq = lastSeq + 1;
    const run = { lastSeq, done: false };
    saves.push(run);
    const saved = this.#checkpoint.saveBody(parts, lastSeq - firstSeq + 1, quoted, firstSeq).then(() => {
      run.done = true;
      this.#stats.checkpointSaves++;
      while (saves.length > 0 && saves.peek()!.done) this.#savedThrough = saves.shift()!.lastSeq;
      this.#hooks.releaseHeld();
      this.requestRelease();
      // Held wakes wait for lines accepted meanwhile: save them now rather than at the next tick.
      if (this.#hooks.heldWakes() > 0 && this.#unsavedFirstSeq <= arena.lastSeq) this.requestSave();
      this.#hooks.report();
    });
    const running = this.#running;
    running.add(saved);
    saved.then(
      () => running.delete(saved),
      (error: unknown) => {
        running.delete(saved);
        this.#hooks.fail(error);
      },
    );
    return saved;
  }
}
