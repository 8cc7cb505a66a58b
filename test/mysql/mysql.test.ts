import { expect } from 'chai';
import { InvalidMysqlUriError, parseMysqlUri, quoteIdentifier, redactMysqlUri, sqlLiteral, SqlValueError } from '../../lib/mysql/index.ts';
import { createMysqlPool, withTransaction } from '../../lib/mysql/pool.ts';
import { freshDatabase, sharedMariaDb } from '../support/mariadb.ts';
import { serviceOrSkip } from '../support/services.ts';
import { rejectionOf } from '../support/waiting.ts';

describe('lib/mysql', () => {
  describe('parseMysqlUri / redactMysqlUri', () => {
    it('parses user, password, host, port and database, percent-decoded', () => {
      expect(parseMysqlUri('mysql://root:p%40ss@db.local:3307/shop')).to.deep.equal({ host: 'db.local', port: 3307, user: 'root', password: 'p@ss', database: 'shop' });
      expect(parseMysqlUri('mysql://root@127.0.0.1/')).to.deep.equal({ host: '127.0.0.1', port: 3306, user: 'root', password: '' });
    });

    it('refuses bad URIs with a message that never shows the password', () => {
      for (const uri of ['http://u:s3cret@h/', 'mysql://:s3cret@h/', 'mysql://u:s3cret@h/a/b', 'mysql://u:s3cret@h/?ssl=1', 'nonsense']) {
        const error = (() => {
          try {
            parseMysqlUri(uri);
          } catch (e) {
            return e as Error;
          }
          throw new Error(`accepted ${uri}`);
        })();
        expect(error, uri).to.be.instanceOf(InvalidMysqlUriError);
        expect(error.message, uri).not.to.contain('s3cret');
      }
    });

    it('redacts the password', () => {
      expect(redactMysqlUri('mysql://root:s3cret@h:1/db')).to.equal('mysql://root:***@h:1/db');
      expect(redactMysqlUri('mysql://root@h/')).to.equal('mysql://root@h/');
    });
  });

  describe('sqlLiteral / quoteIdentifier', () => {
    it('writes each value as one literal', () => {
      expect(sqlLiteral(null)).to.equal('NULL');
      expect(sqlLiteral(18446744073709551615n)).to.equal('18446744073709551615');
      expect(sqlLiteral(-1.5)).to.equal('-1.5');
      expect(sqlLiteral(true)).to.equal('1');
      expect(sqlLiteral(new Uint8Array([0, 255]))).to.equal("X'00ff'");
      expect(sqlLiteral(new Uint8Array())).to.equal("X''");
      expect(sqlLiteral(`a'b"c\\d\ne\r\u0000\u001a`)).to.equal(`'a\\'b\\"c\\\\d\\ne\\r\\0\\Z'`);
      expect(() => sqlLiteral(NaN)).to.throw(SqlValueError);
      expect(quoteIdentifier('we`ird')).to.equal('`we``ird`');
      expect(() => quoteIdentifier('')).to.throw(SqlValueError);
    });
  });

  describe('against MariaDB', function () {
    this.timeout(30_000);
    let url: string;
    before(async function () {
      this.timeout(40_000);
      url = (await serviceOrSkip(this, 'mariadb', sharedMariaDb)).url;
    });

    it('literals read back as the same values; withTransaction commits, and rolls back on error', async () => {
      const db = await freshDatabase(url, 'lit');
      const mysql = createMysqlPool(url);
      try {
        await mysql.pool.query(`CREATE DATABASE \`${db}\` DEFAULT CHARACTER SET utf8mb4`);
        await mysql.pool.query(`CREATE TABLE \`${db}\`.v (id INT PRIMARY KEY, s TEXT, b VARBINARY(16), u BIGINT UNSIGNED)`);
        const nasty = `a,b "q" 'x' \\ \n\r\t \u0000 \u001a ünï 😀`;
        await withTransaction(mysql.pool, (c) => c.query(`INSERT INTO \`${db}\`.v VALUES (1, ${sqlLiteral(nasty)}, ${sqlLiteral(new Uint8Array([0, 39, 92, 255]))}, ${sqlLiteral(18446744073709551615n)})`));
        const error = await rejectionOf(withTransaction(mysql.pool, async (c) => {
          await c.query(`INSERT INTO \`${db}\`.v VALUES (2, 'x', NULL, 0)`);
          throw new Error('stop');
        }));
        expect(error.message).to.equal('stop');
        const [rows] = await mysql.pool.query(`SELECT id, s, HEX(b) h, u FROM \`${db}\`.v`);
        expect(rows).to.deep.equal([{ id: 1, s: nasty, h: '00275CFF', u: '18446744073709551615' }]);
      } finally {
        await mysql.end();
      }
    });
  });
});
