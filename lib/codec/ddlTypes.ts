/**
 * DDL type names and TiDB's numeric DDL action codes, as written in the `Type` field of a schema file.
 *
 * Invariant guarded here: one name per code and one code per name, both exactly TiDB's
 * (`pkg/meta/model/job.go`, `ActionType` and `ActionMap`, names upper-cased), so a schema file we write
 * names the same DDL action that TiCDC would have written.
 */

/** TiDB's `ActionMap` names, upper-cased, with their `ActionType` codes. */
export const DDL_TYPE_CODES: Readonly<Record<string, number>> = Object.freeze({
  'CREATE SCHEMA': 1,
  'DROP SCHEMA': 2,
  'CREATE TABLE': 3,
  'DROP TABLE': 4,
  'ADD COLUMN': 5,
  'DROP COLUMN': 6,
  'ADD INDEX': 7,
  'DROP INDEX': 8,
  'ADD FOREIGN KEY': 9,
  'DROP FOREIGN KEY': 10,
  'TRUNCATE TABLE': 11,
  'MODIFY COLUMN': 12,
  'REBASE AUTO_INCREMENT ID': 13,
  'RENAME TABLE': 14,
  'SET DEFAULT VALUE': 15,
  'SHARD ROW ID': 16,
  'MODIFY TABLE COMMENT': 17,
  'RENAME INDEX': 18,
  'ADD PARTITION': 19,
  'DROP PARTITION': 20,
  'CREATE VIEW': 21,
  'MODIFY TABLE CHARSET AND COLLATE': 22,
  'TRUNCATE PARTITION': 23,
  'DROP VIEW': 24,
  'RECOVER TABLE': 25,
  'MODIFY SCHEMA CHARSET AND COLLATE': 26,
  'LOCK TABLE': 27,
  'UNLOCK TABLE': 28,
  'REPAIR TABLE': 29,
  'SET TIFLASH REPLICA': 30,
  'UPDATE TIFLASH REPLICA STATUS': 31,
  'ADD PRIMARY KEY': 32,
  'DROP PRIMARY KEY': 33,
  'CREATE SEQUENCE': 34,
  'ALTER SEQUENCE': 35,
  'DROP SEQUENCE': 36,
  'MODIFY AUTO ID CACHE': 39,
  'REBASE AUTO_RANDOM ID': 40,
  'ALTER INDEX VISIBILITY': 41,
  'EXCHANGE PARTITION': 42,
  'ADD CHECK CONSTRAINT': 43,
  'DROP CHECK CONSTRAINT': 44,
  'ALTER CHECK CONSTRAINT': 45,
  'RENAME TABLES': 47,
  'ALTER TABLE ATTRIBUTES': 49,
  'ALTER TABLE PARTITION ATTRIBUTES': 50,
  'CREATE PLACEMENT POLICY': 51,
  'ALTER PLACEMENT POLICY': 52,
  'DROP PLACEMENT POLICY': 53,
  'ALTER TABLE PARTITION PLACEMENT': 54,
  'MODIFY SCHEMA DEFAULT PLACEMENT': 55,
  'ALTER TABLE PLACEMENT': 56,
  'ALTER TABLE CACHE': 57,
  'ALTER TABLE STATISTICS OPTIONS': 58,
  'ALTER TABLE NOCACHE': 59,
  'CREATE TABLES': 60,
  'ALTER TABLE MULTI-SCHEMA CHANGE': 61,
  'FLASHBACK CLUSTER': 62,
  'FLASHBACK SCHEMA': 63,
  'ALTER TABLE REORGANIZE PARTITION': 64,
  'ALTER TABLE TTL': 65,
  'ALTER TABLE NO_TTL': 67,
  'CREATE RESOURCE GROUP': 68,
  'ALTER RESOURCE GROUP': 69,
  'DROP RESOURCE GROUP': 70,
  'ALTER TABLE PARTITION BY': 71,
  'ALTER TABLE REMOVE PARTITIONING': 72,
  'ADD COLUMNAR INDEX': 73,
  'MODIFY ENGINE ATTRIBUTE': 74,
  'ALTER TABLE MODE': 75,
  'REFRESH META': 76,
  'MODIFY SCHEMA READ ONLY': 77,
});

const namesByCode = new Map<number, string>(Object.entries(DDL_TYPE_CODES).map(([name, code]) => [code, name]));

/** TiDB's action code of a DDL type name (`'CREATE TABLE'` -> 3), or undefined for an unknown name. */
export function ddlTypeCode(ddlType: string): number | undefined {
  return Object.hasOwn(DDL_TYPE_CODES, ddlType) ? DDL_TYPE_CODES[ddlType] : undefined;
}

/** The DDL type name of a TiDB action code (3 -> `'CREATE TABLE'`), or undefined for an unknown code. */
export function ddlTypeName(code: number): string | undefined {
  return namesByCode.get(code);
}
