/**
 * What the consumer knows per table (or database, table ''): the applied DDL version and stream
 * positions (as committed in the checkpoint table), and the definitions of its versions read from
 * schema files. Positions only move after their transaction committed; definitions are a cache,
 * released when a table is idle or dropped and read again when needed.
 */
import { performance } from 'node:perf_hooks';
import { DecodeError, type TableDef } from '../../lib/codec/changeEvent.ts';
import { decodeSchemaFile, type SchemaFileContent } from '../../lib/codec/schemaFile.ts';
import type { ExternalStorage } from '../../lib/storage/storage.ts';
import { DDL_STREAM, type Position, type StoredPosition } from './checkpointStore.ts';
import type { DdlPlan } from './ddl.ts';
import type { Settings } from './options.ts';
import { tableKeyOf, type SchemaFileRef } from './pathKey.ts';
import type { AppliedState, WorkItem } from './roundPlan.ts';
import type { TableWriter } from './rowWriter.ts';

/** A table version's columns and schema file, and its statement writer once a data file needed it. */
export interface Definition {
  def: TableDef | undefined;
  content: SchemaFileContent;
  writer?: TableWriter;
}

/** The state of one table (or of a database, table ''). */
export interface TableState {
  ddlVersion: bigint | undefined;
  streams: Map<string, Position>;
  /** Definitions by version, from schema files; released when idle or dropped. */
  defs: Map<bigint, Definition>;
  lastActiveMs: number;
}

export class TableStates implements AppliedState {
  readonly #storage: ExternalStorage;
  readonly #settings: Settings;
  readonly #tables = new Map<string, TableState>();
  #appliedTs: bigint | undefined;

  constructor(storage: ExternalStorage, settings: Settings) {
    this.#storage = storage;
    this.#settings = settings;
  }

  ddlVersion(tableKey: string): bigint | undefined {
    return this.#tables.get(tableKey)?.ddlVersion;
  }

  position(tableKey: string, stream: string): Position | undefined {
    return this.#tables.get(tableKey)?.streams.get(stream);
  }

  /** The highest commit ts applied so far. */
  get appliedTs(): bigint | undefined {
    return this.#appliedTs;
  }

  state(tableKey: string): TableState {
    let state = this.#tables.get(tableKey);
    if (!state) this.#tables.set(tableKey, (state = { ddlVersion: undefined, streams: new Map(), defs: new Map(), lastActiveMs: performance.now() }));
    return state;
  }

  /** Takes the positions stored in the checkpoint table (at start). */
  load(stored: readonly StoredPosition[]): void {
    for (const row of stored) {
      const state = this.state(tableKeyOf(row.schema, row.table === '' ? undefined : row.table));
      if (row.stream === DDL_STREAM) state.ddlVersion = row.tableVersion;
      else {
        state.streams.set(row.stream, { tableVersion: row.tableVersion, date: row.date, fileIndex: row.fileIndex, commitTs: row.commitTs });
        this.noteApplied(row.commitTs);
      }
    }
  }

  noteApplied(ts: bigint | undefined): void {
    if (ts !== undefined && (this.#appliedTs === undefined || ts > this.#appliedTs)) this.#appliedTs = ts;
  }

  /** The definition of a table version if it is held (no read). */
  heldDefinition(tableKey: string, version: bigint): Definition | undefined {
    return this.#tables.get(tableKey)?.defs.get(version);
  }

  /** The definition (and schema file content) of a table version, read and checked once. */
  async definition(tableKey: string, version: bigint, schemaByVersion: Map<string, SchemaFileRef>): Promise<Definition> {
    const state = this.state(tableKey);
    state.lastActiveMs = performance.now();
    const cached = state.defs.get(version);
    if (cached) return cached;
    const ref = schemaByVersion.get(`${tableKey}@${version}`);
    if (ref === undefined) throw new DecodeError(tableKey, `no schema file for table version ${version}`);
    const raw = await this.#storage.get(ref.path);
    if (raw === undefined) throw new DecodeError(ref.path, 'the schema file was listed but is gone');
    let content: SchemaFileContent;
    try {
      content = decodeSchemaFile(new TextDecoder('utf-8', { fatal: true }).decode(raw), ref.path);
    } catch (error) {
      this.#settings.metrics?.error('decode');
      if (error instanceof TypeError) throw new DecodeError(ref.path, 'the schema file is not valid UTF-8');
      throw error;
    }
    const entry: Definition = { def: content.tableDef, content };
    state.defs.set(version, entry);
    return entry;
  }

  /**
   * The columns of the table's applied version below `version` (read again from its schema file
   * after a restart), or undefined when none applied or the table was dropped.
   */
  async previousDefinition(tableKey: string, version: bigint, schemaByVersion: Map<string, SchemaFileRef>): Promise<TableDef | undefined> {
    const state = this.#tables.get(tableKey);
    if (state?.ddlVersion === undefined || state.ddlVersion >= version) return undefined;
    if (!state.defs.has(state.ddlVersion) && !schemaByVersion.has(`${tableKey}@${state.ddlVersion}`)) return undefined;
    return (await this.definition(tableKey, state.ddlVersion, schemaByVersion)).def;
  }

  /** A DDL committed (with its checkpoint row): its version is the table's, and definitions it made useless go. */
  ddlApplied(item: Extract<WorkItem, { kind: 'ddl' }>, plan: DdlPlan): void {
    const state = this.state(item.tableKey);
    state.ddlVersion = item.tableVersion;
    this.noteApplied(item.tableVersion);
    // Earlier versions' definitions are no longer needed; a dropped table needs none.
    for (const version of state.defs.keys()) if (version < item.tableVersion || plan.effect === 'drop-table') state.defs.delete(version);
    if (plan.effect === 'drop-schema') {
      for (const [key, table] of this.#tables) if (key.startsWith(`${item.ref.schema}/`) && key !== item.tableKey) table.defs.clear();
    }
    if (plan.renamedFrom) this.#tables.get(tableKeyOf(plan.renamedFrom.schema, plan.renamedFrom.table))?.defs.clear();
  }

  /** Releases definitions (columns, statement parts) of tables without files for idleStateMs. */
  reclaimIdle(): void {
    const now = performance.now();
    for (const state of this.#tables.values()) {
      if (state.defs.size > 0 && now - state.lastActiveMs > this.#settings.idleStateMs) state.defs.clear();
    }
  }

  /** Definitions held over all tables (what reclaiming frees). */
  get heldDefinitions(): number {
    let count = 0;
    for (const state of this.#tables.values()) count += state.defs.size;
    return count;
  }
}
