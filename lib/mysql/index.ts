/** lib/mysql: mysql2 pools, transactions, URIs with redaction, and SQL text for bulk statements. */
export { createMysqlPool, MysqlError, MYSQL_POOL_DEFAULTS, SESSION_SETUP, withTransaction, type MysqlPool, type MysqlPoolOptions } from './pool.ts';
export { InvalidMysqlUriError, MYSQL_DEFAULT_PORT, parseMysqlUri, redactMysqlUri, redactPassword, type MysqlLocation } from './uri.ts';
export { quoteIdentifier, quoteString, quoteTable, sqlLiteral, SqlValueError, type SqlValue } from './sql.ts';
