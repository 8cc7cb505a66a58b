import { expect } from 'chai';
import fc from 'fast-check';
import { DecodeError } from '../../lib/codec/changeEvent.ts';
import {
  checkDateSeparator,
  commitTsToDate,
  dataFileName,
  dataFilePath,
  dateFolder,
  FIRST_FILE_INDEX,
  formatIndexFile,
  indexFilePath,
  metadataFile,
  parseDataFileName,
  parseFolderLevels,
  parseIndexFile,
  parseMetadataFile,
  parseSchemaFilePath,
  LAYOUT_DEFAULTS,
  schemaFilePath,
  type DataFileLocation,
  type DateSeparator,
} from '../../lib/codec/layout.ts';
import { InvalidOptionError } from '../../lib/core/errors.ts';
import { nameArb } from './arbitraries.ts';

const base: DataFileLocation = { schema: 'shop', table: 'orders', tableVersion: 4350n, index: 1, extension: '.csv', fileIndexWidth: 6 };

describe('storage layout', () => {
  describe('dataFilePath', () => {
    it('builds {schema}/{table}/{tableVersion}[/{partitionId}][/{date}]/CDC{index}{ext}', () => {
      expect(dataFilePath(base)).to.equal('shop/orders/4350/CDC000001.csv');
      expect(dataFilePath({ ...base, partitionId: 88n, date: '2024-05-01', index: 42, extension: '.json' })).to.equal('shop/orders/4350/88/2024-05-01/CDC000042.json');
      expect(dataFilePath({ ...base, date: '2024', fileIndexWidth: 20 })).to.equal('shop/orders/4350/2024/CDC00000000000000000001.csv');
      expect(dataFilePath({ ...base, partitionId: 7 })).to.equal('shop/orders/4350/7/CDC000001.csv');
    });

    it("matches upstream's data file paths (pingcap/ticdc pkg/cloudstorage/path_key_test.go TestGenerateDMLFilePath)", () => {
      // Upstream uses a fresh dispatcher id; any id shows the shape. Index 10, file-index-width 20, .csv, day.
      const id = '6a5b4c3d2e1f0a9b-8c7d6e5f4a3b2c1d';
      const upstream = { schema: 'schema1', table: 'table1', tableVersion: 123456n, date: '2023-05-09', dispatcherId: id, index: 10, extension: '.csv', fileIndexWidth: 20 };
      expect(dataFilePath(upstream)).to.equal(`schema1/table1/123456/2023-05-09/CDC_${id}_00000000000000000010.csv`);
      expect(dataFilePath({ ...upstream, partitionId: 55n })).to.equal(`schema1/table1/123456/55/2023-05-09/CDC_${id}_00000000000000000010.csv`);
      // pingcap/ticdc pkg/cloudstorage/path_test.go TestGenerateDataFilePath: the first file of a folder, width 6.
      expect(dataFilePath({ schema: 'test', table: 'table1', tableVersion: 5n, dispatcherId: id, index: FIRST_FILE_INDEX, extension: '.json', fileIndexWidth: 6 })).to.equal(
        `test/table1/5/CDC_${id}_000001.json`,
      );
    });

    it('names the dispatcher when a table is spread across dispatchers', () => {
      expect(dataFilePath({ ...base, dispatcherId: '1234567890', index: 3 })).to.equal('shop/orders/4350/CDC_1234567890_000003.csv');
    });

    it("widens an index that does not fit, as Go's %0Nd", () => {
      expect(dataFileName({ index: 12345678, extension: '.csv', fileIndexWidth: 6 })).to.equal('CDC12345678.csv');
    });

    it('refuses names that could leave the folder, and bad options, naming them', () => {
      expect(() => dataFilePath({ ...base, schema: 'a/b' })).to.throw(InvalidOptionError, /dataFilePath: option schema must be a name usable as a path segment \(it must not contain '\/'/);
      expect(() => dataFilePath({ ...base, table: '..' })).to.throw(InvalidOptionError, /option table .*must not contain '\.\.'/);
      expect(() => dataFilePath({ ...base, table: '.' })).to.throw(InvalidOptionError, /must not be '\.'/);
      expect(() => dataFilePath({ ...base, table: 'a\nb' })).to.throw(InvalidOptionError, /control characters/);
      expect(() => dataFilePath({ ...base, dispatcherId: '' })).to.throw(InvalidOptionError, /dispatcherId .*must not be empty/);
      expect(() => dataFilePath({ ...base, fileIndexWidth: 5 })).to.throw(InvalidOptionError, 'dataFilePath: option fileIndexWidth must be an integer in [6, 20], got 5');
      expect(() => dataFilePath({ ...base, fileIndexWidth: 21 })).to.throw(InvalidOptionError, /fileIndexWidth .* got 21/);
      expect(() => dataFilePath({ ...base, fileIndexWidth: 6.5 })).to.throw(InvalidOptionError, /fileIndexWidth .* got 6\.5/);
      expect(() => dataFilePath({ ...base, index: -1 })).to.throw(InvalidOptionError, /option index/);
      expect(() => dataFilePath({ ...base, extension: 'csv' })).to.throw(InvalidOptionError, /option extension/);
      expect(() => dataFilePath({ ...base, date: '2024/05' })).to.throw(InvalidOptionError, /option date must be YYYY, YYYY-MM or YYYY-MM-DD/);
      expect(() => dataFilePath({ ...base, partitionId: 0 })).to.throw(InvalidOptionError, /option partitionId/);
      expect(() => dataFilePath({ ...base, tableVersion: -1n })).to.throw(InvalidOptionError, /option tableVersion/);
    });
  });

  describe('index files', () => {
    it('lives in the data folder: meta/CDC.index or meta/CDC_{dispatcherId}.index', () => {
      expect(indexFilePath({ schema: 'shop', table: 'orders', tableVersion: 4350n })).to.equal('shop/orders/4350/meta/CDC.index');
      expect(indexFilePath({ schema: 'shop', table: 'orders', tableVersion: 4350n, partitionId: 9n, date: '2024-05', dispatcherId: '77' })).to.equal(
        'shop/orders/4350/9/2024-05/meta/CDC_77.index',
      );
    });

    it('holds the newest data file base name and a newline', () => {
      expect(formatIndexFile('CDC000007.csv')).to.equal('CDC000007.csv\n');
      expect(parseIndexFile('CDC_77_000007.json\n', 'x/meta/CDC_77.index')).to.deep.equal({ name: 'CDC_77_000007.json', index: 7, dispatcherId: '77', extension: '.json' });
      expect(parseIndexFile('CDC000007.csv', 'x')).to.deep.equal({ name: 'CDC000007.csv', index: 7, extension: '.csv' });
    });

    it('refuses anything else, naming the file', () => {
      expect(() => formatIndexFile('shop/CDC000001.csv')).to.throw(InvalidOptionError, /formatIndexFile: option dataFileBaseName/);
      expect(() => parseIndexFile('', 'a/meta/CDC.index')).to.throw(DecodeError, 'a/meta/CDC.index: the index file is empty');
      expect(() => parseIndexFile('CDC000001.csv\n\n', 'a/meta/CDC.index')).to.throw(DecodeError, /must hold one data file name and a newline/);
      expect(() => parseIndexFile('garbage\n', 'a/meta/CDC.index')).to.throw(DecodeError, /a\/meta\/CDC\.index: "garbage" is not a data file name/);
    });
  });

  describe('parseDataFileName', () => {
    it('reads the index, the dispatcher (up to the last _) and the extension', () => {
      expect(parseDataFileName('CDC000001.csv')).to.deep.equal({ index: 1, extension: '.csv' });
      expect(parseDataFileName('CDC00000000000000000042.json')).to.deep.equal({ index: 42, extension: '.json' });
      expect(parseDataFileName('CDC_a_b_000003.csv')).to.deep.equal({ index: 3, dispatcherId: 'a_b', extension: '.csv' });
    });

    it('says what is wrong with other names', () => {
      expect(() => parseDataFileName('CDX000001.csv')).to.throw(DecodeError, /"CDX000001\.csv" is not a data file name/);
      expect(() => parseDataFileName('CDC000001')).to.throw(DecodeError, /is not a data file name/);
      expect(() => parseDataFileName('CDC__000001.csv')).to.throw(DecodeError, /is not a data file name/);
      expect(() => parseDataFileName('CDC00001.csv')).to.throw(DecodeError, /has fewer than 6 digits/);
      expect(() => parseDataFileName('CDC99999999999999999999.csv')).to.throw(DecodeError, /is past 2\^53-1/);
      expect(() => parseDataFileName('CDC_a..b_000001.csv')).to.throw(DecodeError, /dispatcher id .* must not contain '\.\.'/);
    });

    it('property: format -> parse gives index, dispatcher and extension back', () => {
      fc.assert(
        fc.property(
          fc.record({
            index: fc.maxSafeInteger().map(Math.abs),
            extension: fc.constantFrom('.csv', '.json', '.x1'),
            dispatcherId: fc.option(nameArb, { nil: undefined }),
            fileIndexWidth: fc.integer({ min: 6, max: 20 }),
          }),
          (location) => {
            const name = dataFileName(location);
            const parsed = parseDataFileName(name);
            const expected: Record<string, unknown> = { index: location.index, extension: location.extension };
            if (location.dispatcherId !== undefined) expected.dispatcherId = location.dispatcherId;
            expect(parsed).to.deep.equal(expected);
            expect(name.length).to.be.at.least(3 + location.fileIndexWidth + location.extension.length);
          },
        ),
        { numRuns: 300 },
      );
    });
  });

  describe('schema file paths', () => {
    it('puts table files under {schema}/{table}/meta and database files under {schema}/meta, checksum 10 digits', () => {
      expect(schemaFilePath('shop', 'orders', 4350n, 123)).to.equal('shop/orders/meta/schema_4350_0000000123.json');
      expect(schemaFilePath('shop', undefined, 18446744073709551615n, 4294967295)).to.equal('shop/meta/schema_18446744073709551615_4294967295.json');
      expect(() => schemaFilePath('shop', 'orders', 0n, 1)).to.throw(InvalidOptionError, /option version/);
      expect(() => schemaFilePath('shop', 'orders', 1n, 2 ** 32)).to.throw(InvalidOptionError, /option checksum/);
    });

    it('parses back', () => {
      expect(parseSchemaFilePath('shop/orders/meta/schema_4350_0000000123.json')).to.deep.equal({ schema: 'shop', table: 'orders', tableVersion: 4350n, checksum: 123 });
      expect(parseSchemaFilePath('shop/meta/schema_1_0000000000.json')).to.deep.equal({ schema: 'shop', tableVersion: 1n, checksum: 0 });
      expect(() => parseSchemaFilePath('shop/orders/schema_1_0000000000.json')).to.throw(DecodeError, /a schema file path is/);
      expect(() => parseSchemaFilePath('shop/meta/schema_1_123.json')).to.throw(DecodeError, /is not a schema file name/);
      expect(() => parseSchemaFilePath('shop/meta/schema_1_9999999999.json')).to.throw(DecodeError, /checksum 9999999999 is past 2\^32-1/);
    });
  });

  describe('layout configuration', () => {
    it("has TiCDC's defaults: first file 1, date-separator day, enable-partition-separator true (pingcap/ticdc pkg/config/replica_config.go)", () => {
      expect(FIRST_FILE_INDEX).to.equal(1);
      expect(LAYOUT_DEFAULTS).to.deep.equal({ fileIndexWidth: 20, dateSeparator: 'day', enablePartitionSeparator: true });
      for (const separator of ['none', 'year', 'month', 'day']) expect(checkDateSeparator('o', 'dateSeparator', separator)).to.equal(separator);
      expect(() => checkDateSeparator('storageConsumer', 'dateSeparator', 'hour')).to.throw(InvalidOptionError, `storageConsumer: option dateSeparator must be 'none', 'year', 'month' or 'day', got "hour"`);
    });

    it('reads the levels after the table version by the configuration: every separator, with and without partitions', () => {
      const dates: Record<DateSeparator, string | undefined> = { none: undefined, year: '2023', month: '2023-05', day: '2023-05-09' };
      for (const [separator, date] of Object.entries(dates) as Array<[DateSeparator, string | undefined]>) {
        for (const enablePartitionSeparator of [true, false]) {
          const layout = { dateSeparator: separator, enablePartitionSeparator };
          const plain = date === undefined ? [] : [date];
          expect(parseFolderLevels(plain, layout, 'w'), `${separator} ${enablePartitionSeparator}`).to.deep.equal({ date: date ?? '' });
          const partitioned = ['55', ...plain];
          if (enablePartitionSeparator) expect(parseFolderLevels(partitioned, layout, 'w')).to.deep.equal({ partitionId: '55', date: date ?? '' });
          else expect(() => parseFolderLevels(partitioned, layout, 'w')).to.throw(DecodeError, /enable-partition-separator=false expect/);
        }
      }
      // A date of another separator's shape is refused (pingcap/ticdc path_key_test.go: "date does not match separator").
      expect(() => parseFolderLevels(['2023-05-09'], { dateSeparator: 'month', enablePartitionSeparator: true }, 'a/b/1/2023-05-09/meta/CDC.index')).to.throw(
        DecodeError,
        'a/b/1/2023-05-09/meta/CDC.index: one level after the table version ("2023-05-09"), but date-separator=month and enable-partition-separator=true expect {date YYYY-MM} or {partitionId}/{date YYYY-MM}; ' +
          "it reads with date-separator=day (date 2023-05-09): was the sink run with that? Pass the sink's settings (--date-separator, --enable-partition-separator)",
      );
      expect(() => parseFolderLevels(['55', '2023', 'x'], { dateSeparator: 'year', enablePartitionSeparator: true }, 'w')).to.throw(DecodeError, /^w: 3 levels after the table version .*no date-separator or enable-partition-separator setting reads it/);
    });
  });

  describe('dates', () => {
    it('formats the date folder in UTC', () => {
      const lateEvening = new Date('2024-12-31T23:30:00-02:00'); // 2025-01-01T01:30Z
      expect(dateFolder(lateEvening, 'day')).to.equal('2025-01-01');
      expect(dateFolder(lateEvening, 'month')).to.equal('2025-01');
      expect(dateFolder(lateEvening, 'year')).to.equal('2025');
      expect(dateFolder(lateEvening, 'none')).to.equal('');
      expect(() => dateFolder(new Date(NaN), 'day')).to.throw(InvalidOptionError, /option time/);
      expect(() => dateFolder(lateEvening, 'hour' as never)).to.throw(InvalidOptionError, /option separator/);
    });

    it('reads the physical time of a TiDB timestamp (its high 46 bits are ms)', () => {
      // 435661838416609281 >> 18 = 1661918023745 ms = 19235 days (2022-08-31) + 14023.745 s
      expect(commitTsToDate(435661838416609281n).toISOString()).to.equal('2022-08-31T03:53:43.745Z');
    });
  });

  describe('metadata file', () => {
    it('is {"checkpoint-ts":N} with exact uint64', () => {
      expect(metadataFile(435661838416609281n)).to.equal('{"checkpoint-ts":435661838416609281}');
      expect(parseMetadataFile('{"checkpoint-ts":18446744073709551615}', 'metadata')).to.equal(18446744073709551615n);
      expect(parseMetadataFile(' {"checkpoint-ts": 7}\n', 'metadata')).to.equal(7n);
      expect(() => metadataFile(-1n)).to.throw(InvalidOptionError, /checkpointTs/);
    });

    it('refuses anything else', () => {
      expect(() => parseMetadataFile('{"checkpoint-ts":"7"}', 'metadata')).to.throw(DecodeError, 'metadata: expected {"checkpoint-ts":<uint64>}, got "{\\"checkpoint-ts\\":\\"7\\"}"');
      expect(() => parseMetadataFile('{"checkpoint-ts":1.5}', 'metadata')).to.throw(DecodeError, /expected/);
      expect(() => parseMetadataFile('{"checkpoint-ts":18446744073709551616}', 'metadata')).to.throw(DecodeError, /expected/);
      expect(() => parseMetadataFile('{', 'metadata')).to.throw(DecodeError, /metadata: malformed JSON/);
    });
  });
});
