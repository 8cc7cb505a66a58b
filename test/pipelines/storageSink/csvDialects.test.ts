/**
 * TiCDC's csv settings end to end at the codec level: the storage sink writes a data file in any
 * dialect (the header line on top of each file when asked, the commit ts column by default), the
 * consumer's decoding of that file gives the rows back (`decodeDataFile`; statements.test.ts shows
 * `prepareDataFile` equal to it in every dialect), and both ends' options, flags and defaults.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { from, lastValueFrom, toArray } from 'rxjs';
import { parseFlags, UsageError } from '../../../lib/cli/commandLine.ts';
import { createAck } from '../../../lib/core/ack.ts';
import { InvalidOptionError } from '../../../lib/core/errors.ts';
import { formatChangeEventLine, type ChangeEvent, type DdlEvent, type RowChange, type TableDef } from '../../../lib/codec/index.ts';
import { checkCsvOptions, csvHeaderLine, decodeCsvRows, encodeCsvRows } from '../../../lib/codec/csv.ts';
import { MemoryStorage } from '../../../lib/storage/memoryStorage.ts';
import { run as runReplay } from '../../../pipelines/storageConsumer/cli.ts';
import { decodeDataFile } from '../../../pipelines/storageConsumer/decodeFile.ts';
import { checkOptions as checkConsumerOptions } from '../../../pipelines/storageConsumer/options.ts';
import { run as runSink } from '../../../pipelines/storageSink/cli.ts';
import { CSV_FLAGS, csvOptionsFromFlags, unescapeFlagValue } from '../../../pipelines/storageSink/csvFlags.ts';
import { createFileHeader } from '../../../pipelines/storageSink/encoder.ts';
import { storageSink, STORAGE_SINK_DEFAULTS, type StorageSinkOptions } from '../../../pipelines/storageSink/storageSink.ts';
import { TableRegistry } from '../../../pipelines/storageSink/tableRegistry.ts';
import { decodedFormOf, tableWithRowsArb } from '../../codec/arbitraries.ts';
import { csvDialectArb } from '../../codec/csvDialects.ts';

const ddlOf = (def: TableDef): DdlEvent => ({
  kind: 'ddl',
  commitTs: def.version,
  query: `CREATE TABLE ${def.table} (...)`,
  ddlType: 'CREATE TABLE',
  schema: def.schema,
  table: def.table,
  tableDef: def,
  blockedDispatchers: 'all',
});

/** The sink run over `events` on a fresh memory storage; the storage's csv data files, by path. */
async function sinkFiles(events: ChangeEvent[], options: Partial<StorageSinkOptions>): Promise<Map<string, string>> {
  const storage = new MemoryStorage();
  const acked = from(events.map((value) => ({ value, ack: createAck() })));
  await lastValueFrom(
    acked.pipe(
      storageSink({ storage, flushIntervalMs: 100, checkpointIntervalMs: 20, dateSeparator: 'none', fileIndexWidth: 6, spool: { memoryBytes: 1 << 20, diskQuotaBytes: 1 << 24 }, ...options }),
      toArray(),
    ),
  );
  const files = new Map<string, string>();
  for await (const key of storage.list('')) {
    if (key.endsWith('.csv')) files.set(key, new TextDecoder().decode(await storage.get(key)));
  }
  return files;
}

/** Rows of one table at increasing commit ts, one dispatcher: they land in one folder. */
function sinkRows(def: TableDef, rows: RowChange[]): RowChange[] {
  return rows.map((r, i) => ({ ...r, tableVersion: def.version, commitTs: def.version + 1n + BigInt(i), dispatcherId: 'd' }));
}

describe('csv dialects: sink and consumer', () => {
  it('the sink writes the commit ts column by default; include-commit-ts=false gives TiCDC\'s default bytes', async () => {
    const def: TableDef = { schema: 's', table: 't', version: 100n, columns: [{ name: 'id', type: 'INT', primaryKey: true }] };
    const rows = sinkRows(def, [{ kind: 'row', op: 'insert', schema: 's', table: 't', tableVersion: 100n, commitTs: 0n, dispatcherId: 'd', columns: { id: 1 } }]);
    expect(STORAGE_SINK_DEFAULTS.csv.includeCommitTs).to.equal(true);
    const withTs = [...(await sinkFiles([ddlOf(def), ...rows], {})).values()];
    expect(withTs).to.deep.equal(['"I","t","s",101,1\r\n']);
    const ticdc = [...(await sinkFiles([ddlOf(def), ...rows], { csv: { includeCommitTs: false } })).values()];
    expect(ticdc).to.deep.equal([encodeCsvRows(rows, def)]).and.deep.equal(['"I","t","s",1\r\n']);
  });

  it('a file the sink writes in any dialect replays: decodeDataFile and prepareDataFile give its rows (property, small run count)', async () => {
    await fc.assert(
      fc.asyncProperty(csvDialectArb, tableWithRowsArb, async (csv, [table, generated]) => {
        const def = { ...table, version: 100n };
        const rows = sinkRows(def, generated);
        const files = await sinkFiles([ddlOf(def), ...rows], { csv });
        expect(files.size).to.equal(1);
        const [path, text] = [...files][0]!;
        const header = csv.outputFieldHeader ? csvHeaderLine(def, csv) : '';
        expect(text).to.equal(header + encodeCsvRows(rows, def, csv));
        const bytes = new TextEncoder().encode(text);
        const decoded = decodeDataFile(bytes, path, def, csv);
        expect(decoded.length).to.equal(rows.length);
        const expected = rows.map((r) => decodedFormOf(r, { commitTs: csv.includeCommitTs, oldColumns: csv.outputOldValue }));
        // FLOAT columns come back at float32 precision: compare through the codec, which is exact.
        expect(encodeCsvRows(decoded.map((r, i) => ({ ...rows[i]!, ...r, kind: 'row' as const })), def, csv)).to.equal(text.slice(header.length));
        expect(decoded.map((r) => [r.op, r.commitTs])).to.deep.equal(expected.map((r) => [r.op, r.commitTs]));
      }),
      { numRuns: 25 },
    );
  });

  it('output-field-header: every data file starts with the header line of its table version, once', async () => {
    const v1: TableDef = { schema: 's', table: 't', version: 100n, columns: [{ name: 'id', type: 'INT' }, { name: 'Name', type: 'VARCHAR' }] };
    const rows = sinkRows(v1, [1, 2, 3, 4].map((id) => ({ kind: 'row', op: 'insert', schema: 's', table: 't', tableVersion: 100n, commitTs: 0n, dispatcherId: 'd', columns: { id, Name: `n${id}` } })));
    const csv = { outputFieldHeader: true, terminator: '\n', delimiter: '|' };
    // A file per row or two: each one has its own header.
    const files = await sinkFiles([ddlOf(v1), ...rows], { csv, fileSizeBytes: 40 });
    expect(files.size).to.be.greaterThan(1);
    const header = 'ticdc-meta$operation|ticdc-meta$table|ticdc-meta$schema|ticdc-meta$commit-ts|id|Name\n';
    const all: unknown[] = [];
    for (const [path, text] of files) {
      expect(text.startsWith(header), path).to.equal(true);
      expect(text.indexOf(header, 1), path).to.equal(-1);
      all.push(...decodeCsvRows(text, v1, { ...csv, includeCommitTs: true, where: path }));
    }
    expect(all).to.have.length(4);
  });

  it('createFileHeader: none for canal-json or without the option; the header bytes of the folder\'s table version otherwise', () => {
    const tables = new TableRegistry({ maxTables: 4 });
    const def: TableDef = { schema: 's', table: 't', version: 7n, columns: [{ name: 'a', type: 'INT' }] };
    tables.register(def);
    expect(createFileHeader({ protocol: 'canal-json', tables })).to.equal(undefined);
    expect(createFileHeader({ protocol: 'csv', tables })).to.equal(undefined);
    const header = createFileHeader({ protocol: 'csv', csv: { outputFieldHeader: true, outputOldValue: true }, tables })!;
    expect(header({ schema: 's', table: 't', tableVersion: 7n }).toString()).to.equal('ticdc-meta$operation,ticdc-meta$table,ticdc-meta$schema,ticdc-meta$is-update,a\r\n');
  });

  it("both ends check the csv option when created, naming it; the sink refuses it with canal-json", () => {
    const storage = new MemoryStorage();
    expect(() => storageSink({ storage, csv: { delimiter: '' } })).to.throw(InvalidOptionError, 'storageSink: option csv.delimiter must be 1 to 3 bytes (UTF-8), got ""');
    expect(() => storageSink({ storage, protocol: 'canal-json', csv: {} })).to.throw(InvalidOptionError, "storageSink: option csv must be absent with protocol 'canal-json'");
    const consumer = { from: 'memory://x', to: 'mysql://root@127.0.0.1:3306/' };
    expect(() => checkConsumerOptions({ ...consumer, csv: { quote: 'ab' } })).to.throw(InvalidOptionError, 'storageConsumer: option csv.quote must be');
    expect(checkConsumerOptions(consumer).csv).to.deep.equal(checkCsvOptions('x', { includeCommitTs: true }));
    expect(checkConsumerOptions({ ...consumer, csv: { includeCommitTs: false, terminator: '\n' } }).csv).to.deep.include({ includeCommitTs: false, terminator: '\n', delimiter: ',' });
  });

  describe('flags', () => {
    const flags = (args: string[]) => csvOptionsFromFlags(parseFlags(args, CSV_FLAGS), STORAGE_SINK_DEFAULTS.csv);

    it("reads TiCDC's names, the escapes a shell user types, and --include-commit-ts=false", () => {
      expect(flags([])).to.deep.equal({});
      expect(
        flags(['--delimiter', '\\t', '--quote', '', '--terminator', '\\n', '--null', '\\N', '--include-commit-ts=false', '--binary-encoding-method', 'hex', '--output-old-value', '--output-handle-key', '--output-field-header']),
      ).to.deep.equal({ delimiter: '\t', quote: '', terminator: '\n', nullString: '\\N', includeCommitTs: false, binaryEncodingMethod: 'hex', outputOldValue: true, outputHandleKey: true, outputFieldHeader: true });
      expect(flags(['--terminator', '\\r\\n', '--delimiter', '|@|', '--quote', "'"])).to.deep.equal({ terminator: '\r\n', delimiter: '|@|', quote: "'" });
      expect(unescapeFlagValue('delimiter', '\\\\')).to.equal('\\');
    });

    it('a dialect the codec refuses is a UsageError naming the flag', () => {
      expect(() => flags(['--delimiter', ''])).to.throw(UsageError, '--delimiter must be 1 to 3 bytes (UTF-8), got ""');
      expect(() => flags(['--quote', '', '--delimiter', '***'])).to.throw(UsageError, /^--delimiter must be without a border with quote ''/);
      expect(() => flags(['--null', '1'])).to.throw(UsageError, /^--null must be not a number/);
      expect(() => flags(['--binary-encoding-method', 'base32'])).to.throw(UsageError, `--binary-encoding-method must be 'base64' or 'hex', got "base32"`);
      expect(() => flags(['--terminator', '\\q'])).to.throw(UsageError, '--terminator takes the escapes \\n, \\r, \\t and \\\\ only, got "\\\\q" (a backslash is typed \\\\)');
    });

    it('sluice sink writes the dialect of its flags; csv flags with canal-json exit 2', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'sluice-csv-dialect-'));
      try {
        const def: TableDef = { schema: 's', table: 't', version: 100n, columns: [{ name: 'id', type: 'INT' }, { name: 'b', type: 'BLOB' }] };
        const row: RowChange = { kind: 'row', op: 'insert', schema: 's', table: 't', tableVersion: 100n, commitTs: 101n, dispatcherId: 'd', columns: { id: 1, b: new Uint8Array([1, 255]) } };
        const input = join(dir, 'events.jsonl');
        await writeFile(input, [ddlOf(def), row].map((e) => formatChangeEventLine(e)).join('\n') + '\n');
        const out = join(dir, 'out');
        const io = { stdout: { write: () => true }, stderr: { write: () => true } };
        const args = ['--from', input, '--to', pathToFileURL(out).href, '--date-separator', 'none', '--terminator', '\\n', '--delimiter', '|', '--quote', '', '--include-commit-ts=false', '--binary-encoding-method', 'hex', '--output-field-header'];
        expect(await runSink(args, io)).to.equal(0);
        const entries = await readdir(out, { recursive: true, withFileTypes: true });
        const csvFiles = entries.filter((e) => e.isFile() && e.name.endsWith('.csv')).map((e) => join(e.parentPath, e.name));
        expect(csvFiles.map((f) => relative(out, f))).to.have.length(1);
        expect(await readFile(csvFiles[0]!, 'utf8')).to.equal('ticdc-meta$operation|ticdc-meta$table|ticdc-meta$schema|id|b\nI|t|s|1|01ff\n');
        let err = '';
        expect(await runSink(['--from', input, '--to', pathToFileURL(out).href, '--protocol', 'canal-json', '--quote', "'"], { ...io, stderr: { write: (t: string) => (err += t) }, stdin: Readable.from([]) })).to.equal(2);
        expect(err).to.contain('--quote: csv settings, for --protocol csv only, got --protocol canal-json');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('sluice replay takes the same flags: a bad one exits 2 naming it, before any connection', async () => {
      let err = '';
      const io = { stdout: { write: () => true }, stderr: { write: (t: string) => (err += t) }, stopSignal: Promise.resolve() };
      expect(await runReplay(['--from', 'file:///tmp/none', '--to', 'mysql://root@127.0.0.1:1/', '--quote', 'ab'], io)).to.equal(2);
      expect(err).to.contain("sluice replay: --quote must be '' (no quoting) or one ASCII character, got \"ab\"");
      expect(err).to.contain('--include-commit-ts[=false]');
    });
  });
});
