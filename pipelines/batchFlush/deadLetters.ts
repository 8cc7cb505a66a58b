/**
 * Lines the server refused: the error a record's ack fails with, and the dead-letter storage where
 * each isolated set is kept as one JSON-lines object. A record's line is only counted as delivered
 * once its set is stored there.
 */
import type { ExternalStorage } from '../../lib/storage/storage.ts';
import { LINE_SINK_DEFAULTS } from './options.ts';

/** The line of a record the server refused, isolated from its batch. */
export class DeadLetterError extends Error {
  override readonly name = 'DeadLetterError';
  readonly line: string;
  readonly status: number;

  constructor(line: string, status: number, message: string, target: string) {
    super(`${target} refused the line (${status}): ${message}`);
    this.line = line;
    this.status = status;
  }
}

/** A line the server refused, isolated from its batch (and where it was stored, if anywhere). */
export type Letter = { line: string; status: number; message: string; stored: string | undefined };

/** Stores sets of refused lines as `{prefix}/{run}-{n}.jsonl`, numbered within this run. */
export class DeadLetterStore {
  readonly #storage: ExternalStorage;
  readonly #db: string;
  /** Names this run's objects apart from earlier runs' (time first, so they list in order). */
  readonly #run = `${Date.now().toString().padStart(15, '0')}-${Math.random().toString(16).slice(2, 8)}`;
  #count = 0;

  constructor(storage: ExternalStorage, db: string) {
    this.#storage = storage;
    this.#db = db;
  }

  /** Stores the set as one object; returns its URI (undefined for an empty set). */
  async store(refused: Letter[]): Promise<string | undefined> {
    if (refused.length === 0) return undefined;
    const key = `${LINE_SINK_DEFAULTS.deadLetterPrefix}/${this.#run}-${String(++this.#count).padStart(10, '0')}.jsonl`;
    const body = refused
      .map((letter) => JSON.stringify({ db: this.#db, line: letter.line, status: letter.status, message: letter.message }))
      .join('\n');
    await this.#storage.put(key, Buffer.from(`${body}\n`, 'utf8'));
    return `${this.#storage.uri}/${key}`;
  }
}
