/**
 * The table definitions the storage sink knows, by (schema, table) and table version: what the row
 * encoder needs to put a row's values in table order with their column types.
 *
 * Invariant guarded here: a row is encoded only with the definition of exactly its table version
 * (`row.tableVersion`), never with a newer or older one; a row whose version is unknown (never sent,
 * dropped, forgotten or reclaimed) fails with an error that says which table and version and what to
 * do, instead of being written with the wrong columns. Memory is bounded: at most `maxTables` tables
 * (least recently used reclaimed first), idle ones reclaimed after `idleMs`, and at most
 * `maxVersionsPerTable` versions per table (oldest dropped first).
 */
import { LRUCache } from 'lru-cache';
import { performance } from 'node:perf_hooks';
import { checkChangeEvent, InvalidChangeEventError, rowTableProblem, tableDefProblem, type DdlEvent, type RowChange, type TableDef } from '../../lib/codec/changeEvent.ts';
import { checkFunction, checkNumber, InvalidOptionError } from '../../lib/core/errors.ts';

const OWNER = 'TableRegistry';

export interface TableRegistryOptions {
  /** Most tables remembered; beyond it the least recently used table is reclaimed (integer >= 1). */
  maxTables?: number;
  /** A table not used (no row, DDL or register) for more than this many ms is reclaimed; Infinity: never. */
  idleMs?: number;
  /** Most versions kept per table until `forget`; beyond it the oldest is dropped (integer >= 1). */
  maxVersionsPerTable?: number;
  /** Clock for idleness, in ms. Default `performance.now` (monotonic). */
  now?: () => number;
}

export const TABLE_REGISTRY_DEFAULTS = Object.freeze({
  maxTables: 100_000,
  /** Never: a table quiet for a long time may still get rows, and reclaiming it would fail them. */
  idleMs: Infinity,
  maxVersionsPerTable: 16,
});

/** The DDL types that remove tables: the table named, or every table of the schema. */
const DROP_TABLE = 'DROP TABLE';
const DROP_SCHEMA = 'DROP SCHEMA';

/** A row whose table version has no definition: names the table, the version, the versions known. */
export class UnknownTableVersionError extends Error {
  override readonly name = 'UnknownTableVersionError';
  readonly schema: string;
  readonly table: string;
  readonly tableVersion: bigint;
  /** Ascending; empty when the table is unknown (never sent, dropped or reclaimed). */
  readonly knownVersions: readonly bigint[];

  constructor(schema: string, table: string, tableVersion: bigint, knownVersions: readonly bigint[]) {
    const known = knownVersions.length === 0 ? 'none' : knownVersions.join(', ');
    super(
      `${OWNER}: no definition of ${schema}.${table} at table version ${tableVersion} (versions known: ${known}); ` +
        `send the table's DDL, or register its definition, before its rows`,
    );
    this.schema = schema;
    this.table = table;
    this.tableVersion = tableVersion;
    this.knownVersions = knownVersions;
  }
}

/** Names cannot contain '/' (checked by the codec), so this key is unambiguous. */
function tableKey(schema: string, table: string): string {
  return `${schema}/${table}`;
}

/**
 * The table definitions known to the sink, each kept by table version (the commit ts of the DDL that
 * made it, or the start ts of a table first seen without DDL). Not a buffer of data: losing an entry
 * (reclaimed, dropped) loses no row, it makes the rows of that table fail loudly until the
 * definition is sent again.
 *
 * @example
 * const tables = new TableRegistry({ maxTables: 10_000 });
 * tables.apply(createTableDdl);               // version = the DDL's commit ts
 * tables.register(definitionFromStartTs);     // a table first seen without DDL
 * const def = tables.definitionFor(row);      // exactly row.tableVersion, or UnknownTableVersionError
 * tables.forget('shop', 'orders', 4350n);     // versions below 4350 are no longer needed
 *
 * Options: `maxTables` (tables), `idleMs` (ms, Infinity = never), `maxVersionsPerTable`, `now` (ms clock).
 */
export class TableRegistry {
  /** Per table: definitions by version, in insertion order. */
  readonly #tables: LRUCache<string, Map<bigint, TableDef>>;
  readonly #maxVersionsPerTable: number;
  readonly #clock: () => number;
  /** How long a remembered lookup may stand in for the cache (Infinity without idleness). */
  readonly #memoMs: number;
  /**
   * The last lookup: rows come in runs of one table, and a key string plus a cache update per row
   * cost more than encoding a small column. Dropped on every change; while idleness is on, the cache
   * is still read every idleMs / 4, so a table in use never looks idle to it.
   */
  #memo: { schema: string; table: string; version: bigint; def: TableDef; at: number } | undefined;

  constructor(options: TableRegistryOptions = {}) {
    const maxTables = checkNumber(OWNER, 'maxTables', options.maxTables ?? TABLE_REGISTRY_DEFAULTS.maxTables, { min: 1, integer: true });
    const idleMs = checkNumber(OWNER, 'idleMs', options.idleMs ?? TABLE_REGISTRY_DEFAULTS.idleMs, { min: 1, integer: true, allowInfinity: true });
    this.#maxVersionsPerTable = checkNumber(OWNER, 'maxVersionsPerTable', options.maxVersionsPerTable ?? TABLE_REGISTRY_DEFAULTS.maxVersionsPerTable, {
      min: 1,
      integer: true,
    });
    const clock = options.now === undefined ? () => performance.now() : checkFunction(OWNER, 'now', options.now);
    this.#clock = clock;
    this.#memoMs = idleMs / 4;
    if (idleMs === Infinity) {
      this.#tables = new LRUCache({ max: maxTables });
    } else {
      // ttlResolution 0: read the clock on every check, so an injected clock takes effect at once. The
      // clock is shifted to start at 1: lru-cache takes an entry set at time 0 for one without a ttl.
      const startedAt = clock();
      this.#tables = new LRUCache({ max: maxTables, ttl: idleMs, ttlResolution: 0, updateAgeOnGet: true, perf: { now: () => clock() - startedAt + 1 } });
    }
  }

  /** How many tables are remembered (reclaimed idle ones may still count until touched). */
  get size(): number {
    return this.#tables.size;
  }

  /**
   * Applies a DDL: records `ddl.tableDef` as its table's definition from `ddl.commitTs` on; a DROP
   * TABLE removes the table, a DROP SCHEMA (DROP DATABASE) every table of the schema; any other DDL
   * without `tableDef` changes nothing. Throws `InvalidChangeEventError` for a malformed DDL.
   */
  apply(event: DdlEvent): void {
    this.#forgetMemo();
    const ddl: unknown = event;
    checkChangeEvent(ddl, `${OWNER}.apply`);
    if (ddl.kind !== 'ddl') throw new InvalidChangeEventError(ddl, `${OWNER}.apply`, 'expected a DDL event; rows go to definitionFor');
    if (ddl.ddlType === DROP_TABLE) {
      if (ddl.table !== undefined) this.#tables.delete(tableKey(ddl.schema, ddl.table));
      return;
    }
    if (ddl.ddlType === DROP_SCHEMA) {
      const prefix = `${ddl.schema}/`;
      // Collected first: deleting while iterating the cache would skip entries.
      const dropped = [...this.#tables.keys()].filter((key) => key.startsWith(prefix));
      for (const key of dropped) this.#tables.delete(key);
      return;
    }
    if (ddl.tableDef !== undefined) this.#record(ddl.tableDef);
  }

  /**
   * Registers the definition of a table first seen without DDL; `def.version` is its table version
   * (the start ts). Throws `InvalidOptionError` for a malformed definition.
   */
  register(def: TableDef): void {
    const problem = tableDefProblem(def);
    if (problem !== undefined) {
      const name = typeof def === 'object' && def !== null ? `${String(def.schema)}.${String(def.table)}` : def;
      throw new InvalidOptionError(`${OWNER}.register`, 'def', name, `a valid table definition (${problem})`);
    }
    this.#record(def);
  }

  /**
   * The definition of `row`'s table at exactly `row.tableVersion`; counts as a use of the table.
   * Throws `UnknownTableVersionError` when it is not known (never sent, dropped, forgotten, reclaimed).
   */
  definitionFor(row: RowChange): TableDef {
    return this.definitionAt(row.schema, row.table, row.tableVersion);
  }

  /**
   * What is wrong with `row` against the definition of its table version (column set, value types,
   * NULL in a NOT NULL column: `rowTableProblem`), or undefined. Throws `UnknownTableVersionError`
   * when that version is not known, as `definitionFor` does.
   */
  rowProblem(row: RowChange): string | undefined {
    return rowTableProblem(row, this.definitionFor(row));
  }

  /** The definition of `schema.table` at exactly `tableVersion`, or UnknownTableVersionError. */
  definitionAt(schema: string, table: string, tableVersion: bigint): TableDef {
    const memo = this.#memo;
    const now = this.#memoMs === Infinity ? 0 : this.#clock();
    if (memo !== undefined && memo.version === tableVersion && memo.table === table && memo.schema === schema && now - memo.at < this.#memoMs) {
      return memo.def;
    }
    const versions = this.#tables.get(tableKey(schema, table));
    const def = versions?.get(tableVersion);
    if (def !== undefined) {
      this.#memo = { schema, table, version: tableVersion, def, at: now };
      return def;
    }
    const known = versions === undefined ? [] : [...versions.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    throw new UnknownTableVersionError(schema, table, tableVersion, known);
  }

  /**
   * Drops the versions of a table below `belowVersion`, once no row of them can still arrive. The
   * newest version is always kept: it is the table's current definition. Does not count as a use.
   */
  forget(schema: string, table: string, belowVersion: bigint): void {
    this.#forgetMemo();
    const versions = this.#tables.peek(tableKey(schema, table));
    if (versions === undefined) return;
    let newest: bigint | undefined;
    for (const version of versions.keys()) if (newest === undefined || version > newest) newest = version;
    for (const version of [...versions.keys()]) {
      if (version < belowVersion && version !== newest) versions.delete(version);
    }
  }

  /**
   * Drops the remembered lookup, first touching its table: it was in use all along, and the cache
   * must not take it for the least recently used one when a new table makes it evict.
   */
  #forgetMemo(): void {
    const memo = this.#memo;
    if (memo === undefined) return;
    this.#memo = undefined;
    this.#tables.get(tableKey(memo.schema, memo.table));
  }

  #record(def: TableDef): void {
    this.#forgetMemo();
    const key = tableKey(def.schema, def.table);
    const versions = this.#tables.get(key) ?? new Map<bigint, TableDef>();
    versions.set(def.version, def);
    while (versions.size > this.#maxVersionsPerTable) {
      let oldest: bigint | undefined;
      for (const version of versions.keys()) if (oldest === undefined || version < oldest) oldest = version;
      versions.delete(oldest as bigint);
    }
    // set, not only get: a new table enters the cache, and an existing one becomes the most recent.
    this.#tables.set(key, versions);
  }
}
