/**
 * A FIFO queue with O(1) push, shift and pop: a ring buffer whose capacity doubles when full and
 * halves once it stayed at most a quarter full for as many removals as it has slots.
 *
 * Why a ring: most queues here hover around empty (an item pushed, then shifted at once), and an
 * array that is dropped or truncated when it empties allocates a new backing store on the next
 * push, hundreds of bytes of garbage per item on the hot path. The ring keeps its slots.
 * Unbounded by itself: every owner states its own bound and what happens when it is reached.
 */
const MIN_CAPACITY = 16;

export class Queue<T> {
  private slots: (T | undefined)[] = emptySlots(MIN_CAPACITY);
  /** Capacity - 1; the capacity is a power of two. */
  private mask = MIN_CAPACITY - 1;
  private head = 0;
  private size = 0;
  /** Removals in a row that left the queue at most a quarter full. */
  private sparseRemovals = 0;

  get length(): number {
    return this.size;
  }

  push(item: T): void {
    if (this.size > this.mask) this.resize(2 * (this.mask + 1));
    this.slots[(this.head + this.size) & this.mask] = item;
    this.size++;
  }

  peek(): T | undefined {
    return this.size === 0 ? undefined : this.slots[this.head];
  }

  /** The newest item, left in place. */
  last(): T | undefined {
    return this.size === 0 ? undefined : this.slots[(this.head + this.size - 1) & this.mask];
  }

  shift(): T | undefined {
    if (this.size === 0) return undefined;
    const item = this.slots[this.head];
    // Cleared, so a queue never keeps an item alive after it left.
    this.slots[this.head] = undefined;
    this.head = (this.head + 1) & this.mask;
    this.size--;
    this.shrinkIfSparse();
    return item;
  }

  /** Removes and returns the newest item. */
  pop(): T | undefined {
    if (this.size === 0) return undefined;
    const at = (this.head + this.size - 1) & this.mask;
    const item = this.slots[at];
    this.slots[at] = undefined;
    this.size--;
    this.shrinkIfSparse();
    return item;
  }

  /** Removes and returns every item, oldest first. */
  drain(): T[] {
    const all = [...this];
    this.clear();
    return all;
  }

  clear(): void {
    this.slots = emptySlots(MIN_CAPACITY);
    this.mask = MIN_CAPACITY - 1;
    this.head = 0;
    this.size = 0;
    this.sparseRemovals = 0;
  }

  *[Symbol.iterator](): Iterator<T> {
    for (let i = 0; i < this.size; i++) yield this.slots[(this.head + i) & this.mask] as T;
  }

  /**
   * A burst's capacity is returned once the queue has stayed small for a while: a queue that fills
   * and empties in rounds (a thousand paths answering at once) keeps its slots instead of regrowing
   * them every round; the copy is paid at most once per `capacity` removals.
   */
  private shrinkIfSparse(): void {
    const capacity = this.mask + 1;
    if (this.size > capacity >> 2) {
      this.sparseRemovals = 0;
    } else if (++this.sparseRemovals >= capacity && capacity > MIN_CAPACITY) {
      this.sparseRemovals = 0;
      this.resize(capacity >> 1);
    }
  }

  /** Moves the items, oldest first, to the front of new slots of `capacity` (a power of two). */
  private resize(capacity: number): void {
    const slots: (T | undefined)[] = [];
    for (let i = 0; i < this.size; i++) slots.push(this.slots[(this.head + i) & this.mask]);
    while (slots.length < capacity) slots.push(undefined);
    this.slots = slots;
    this.mask = capacity - 1;
    this.head = 0;
  }
}

/** Filled by push, not `new Array(n)`: a large preallocated array may start in slow dictionary mode. */
function emptySlots<T>(capacity: number): (T | undefined)[] {
  const slots: (T | undefined)[] = [];
  while (slots.length < capacity) slots.push(undefined);
  return slots;
}
