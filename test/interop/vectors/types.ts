/**
 * The shape of the interop vectors: layouts of files exactly as TiCDC's storage sink writes them,
 * with the consumer settings of the changefeed that wrote them and the table state a replay must
 * reach. Facts only: every vector module cites the upstream file it was reconstructed from.
 *
 * Invariant guarded here: a vector holds literal file text (never text produced by sluice's own
 * encoders), so a replay test compares sluice against TiCDC, not against itself.
 */
import type { CsvOptions } from '../../../lib/codec/csv.ts';

/** One file of a layout: its key in the storage and its text (UTF-8). */
export interface LayoutFile {
  path: string;
  text: string;
}

/** The TiCDC changefeed settings a consumer needs to read a layout (the agreed consumer option names). */
export interface ConsumerSettings {
  csv?: CsvOptions;
  dateSeparator?: 'none' | 'year' | 'month' | 'day';
  enablePartitionSeparator?: boolean;
}

/** A table after replay: its rows as MariaDB returns them (strings, `dateStrings`), ordered by `orderBy`. */
export interface ExpectedTable {
  schema: string;
  table: string;
  columns: string[];
  orderBy: string;
  rows: Array<Array<string | null>>;
}

/** A TiCDC-written layout and what a replay of it must leave in the database. */
export interface Layout {
  /** Names the case in test titles. */
  name: string;
  /** `pingcap/ticdc <path>` of the facts the layout was reconstructed from. */
  source: string;
  settings: ConsumerSettings;
  files: LayoutFile[];
  expected: ExpectedTable[];
}

/** The `metadata` file TiCDC writes at the root: `{"checkpoint-ts":N}` (pkg/sink/cloudstorage, json.Marshal, no newline). */
export function metadataFile(checkpointTs: bigint): LayoutFile {
  return { path: 'metadata', text: `{"checkpoint-ts":${checkpointTs}}` };
}

/** The index file of a data folder: the newest data file's base name and '\n' (pkg/cloudstorage generator.go). */
export function indexFile(folder: string, newest: string, dispatcherId?: string): LayoutFile {
  return { path: `${folder}/meta/${dispatcherId === undefined ? 'CDC' : `CDC_${dispatcherId}`}.index`, text: `${newest}\n` };
}

/** Joins records with a terminator after each (TiCDC ends every record, the last too). */
export function records(lines: readonly string[], terminator: string): string {
  return lines.map((line) => line + terminator).join('');
}

/**
 * The rows of an integration test's `result/*.res` file: comment lines (`#`) and blank lines
 * dropped, everything else kept verbatim (these are csv records TiCDC wrote).
 */
export function resRecords(res: string): string[] {
  return res.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('#'));
}
