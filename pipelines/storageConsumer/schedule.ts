/**
 * Which of a round's work items may run now, when several run at once (one per connection).
 *
 * Rules (an item waits for every earlier item of the plan that is not finished and that it depends on):
 * - items of the same table (or database) run in plan order: DDL before the DML of its version, data
 *   files in index order, one at a time;
 * - DDLs run in plan order among themselves (a CREATE TABLE ... LIKE, a database before its tables);
 * - a barrier (a database-level DDL, a RENAME) runs alone: after everything before it, before
 *   everything after it.
 * Data files of different tables do not wait for each other: each commits with its own table's
 * checkpoint, and the layout orders rows only within a table.
 *
 * Invariant guarded here: `next` never hands out an item that one of the rules above holds back;
 * it looks at most `window` not-started items ahead, so a step costs O(window), not O(plan).
 */

export interface Schedulable {
  readonly kind: 'ddl' | 'data';
  readonly tableKey: string;
}

export class ItemScheduler<T extends Schedulable> {
  readonly #items: readonly T[];
  readonly #barrier: (item: T) => boolean;
  readonly #window: number;
  readonly #started: Uint8Array;
  /** Every item before this one has started. */
  #head = 0;

  constructor(items: readonly T[], barrier: (item: T) => boolean, window = 256) {
    this.#items = items;
    this.#barrier = barrier;
    this.#window = window;
    this.#started = new Uint8Array(items.length);
  }

  get allStarted(): boolean {
    return this.#head >= this.#items.length;
  }

  /** Not-started items in plan order, at most `window` of them. */
  *#pending(): Generator<T> {
    let seen = 0;
    for (let i = this.#head; i < this.#items.length && seen < this.#window; i++) {
      if (this.#started[i] === 0) {
        seen++;
        yield this.#items[i]!;
      }
    }
  }

  /** The first item that may start while `running` run (each must have come from `next`); marks it started. */
  next(running: readonly T[]): T | undefined {
    const busyTables = new Set<string>();
    let ddlBusy = false;
    for (const item of running) {
      if (this.#barrier(item)) return undefined;
      busyTables.add(item.tableKey);
      if (item.kind === 'ddl') ddlBusy = true;
    }
    let first = true;
    for (const item of this.#pending()) {
      const barrier = this.#barrier(item);
      if (barrier) {
        if (first && running.length === 0) return this.#start(item);
        return undefined;
      }
      if (!busyTables.has(item.tableKey) && !(item.kind === 'ddl' && ddlBusy)) return this.#start(item);
      // Not started and earlier than what follows: it holds back its table and, a DDL, later DDLs.
      busyTables.add(item.tableKey);
      if (item.kind === 'ddl') ddlBusy = true;
      first = false;
    }
    return undefined;
  }

  /**
   * Data items worth reading ahead, most likely to start first: the next file of each table that is
   * running, then the next file of each other table in plan order (never past a barrier).
   */
  upcoming(running: readonly T[], limit: number): T[] {
    const result: T[] = [];
    const active = new Set(running.map((item) => item.tableKey));
    const taken = new Set<string>();
    const later: T[] = [];
    for (const item of this.#pending()) {
      if (this.#barrier(item)) break;
      // A DDL does not hold its data back from being read: decoding needs only its schema file.
      if (item.kind !== 'data' || taken.has(item.tableKey)) continue;
      taken.add(item.tableKey);
      if (active.has(item.tableKey)) result.push(item);
      else later.push(item);
    }
    for (const item of later) result.push(item);
    return result.slice(0, limit);
  }

  #start(item: T): T {
    const index = this.#items.indexOf(item, this.#head);
    this.#started[index] = 1;
    while (this.#head < this.#items.length && this.#started[this.#head] === 1) this.#head++;
    return item;
  }
}
