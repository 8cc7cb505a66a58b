import { expect } from 'chai';
import { MysqlError } from '../../lib/mysql/pool.ts';
import { isTransientMysqlError, isUnreachable, transientCodeOf } from '../../lib/mysql/transient.ts';
import { checkOptions } from '../../pipelines/storageConsumer/options.ts';

const coded = (code: string, errno?: number) => Object.assign(new Error(`${code} happened`), { code, ...(errno === undefined ? {} : { errno }) });

describe('isTransientMysqlError', () => {
  it('outages and conflicts a second try gets past are transient, also wrapped', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'PROTOCOL_CONNECTION_LOST', 'ER_LOCK_DEADLOCK', 'ER_LOCK_WAIT_TIMEOUT', 'ER_SERVER_SHUTDOWN', 'ER_CON_COUNT_ERROR']) {
      expect(isTransientMysqlError(coded(code)), code).to.equal(true);
      expect(transientCodeOf(new MysqlError('mysql://root@h:3306/', 'apply x', coded(code))), code).to.equal(code);
      expect(isTransientMysqlError(new Error('ApplyError: x record 3', { cause: coded(code) })), `${code} as a cause`).to.equal(true);
    }
    expect(isTransientMysqlError(Object.assign(new Error("Can't add new command when connection is in closed state"), { fatal: true }))).to.equal(true);
    expect(isTransientMysqlError({ errno: 2006, message: 'MySQL server has gone away' })).to.equal(true);
  });

  it('refusals a person must fix are not', () => {
    for (const [code, errno] of [['ER_ACCESS_DENIED_ERROR', 1045], ['ER_PARSE_ERROR', 1064], ['ER_DATA_TOO_LONG', 1406], ['ER_DUP_ENTRY', 1062], ['ER_BAD_DB_ERROR', 1049]] as const) {
      expect(isTransientMysqlError(coded(code, errno)), code).to.equal(false);
    }
    expect(isTransientMysqlError(new Error('Pool is closed.'))).to.equal(false);
    expect(isTransientMysqlError(undefined)).to.equal(false);
  });

  it('tells an unreachable server from a lock conflict', () => {
    expect(isUnreachable('ECONNREFUSED')).to.equal(true);
    expect(isUnreachable('PROTOCOL_CONNECTION_LOST')).to.equal(true);
    expect(isUnreachable('ER_LOCK_DEADLOCK')).to.equal(false);
  });
});

describe('storageConsumer options: retryForMs and retry', () => {
  const base = { from: 'file:///tmp/x', to: 'mysql://root@127.0.0.1:3306/' };
  it('default: 10 minutes, backoff 100 ms doubling to 5 s, no count limit', () => {
    expect(checkOptions(base).outageRetry).to.deep.equal({ minDelayMs: 100, maxDelayMs: 5000, jitter: 0.2, maxRetries: Infinity, maxElapsedMs: 600_000 });
    expect(checkOptions({ ...base, retryForMs: 0, retry: { maxDelayMs: 50, minDelayMs: 1 } }).outageRetry).to.include({ maxElapsedMs: 0, maxDelayMs: 50, minDelayMs: 1 });
  });
  it('refuses a negative budget and a count or budget inside retry', () => {
    expect(() => checkOptions({ ...base, retryForMs: -1 })).to.throw('storageConsumer: option retryForMs must be a number >= 0 (or Infinity), got -1');
    expect(() => checkOptions({ ...base, retry: { maxRetries: 3 } as never })).to.throw('option retry.maxRetries must be absent: MySQL retries are bounded in time, by retryForMs');
  });
});
