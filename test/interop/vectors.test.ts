/**
 * The interop vectors checked on their own (no database): each layout is shaped as TiCDC writes it,
 * so a replay test that passes on it says something about TiCDC's files, not about a typo here.
 *
 * Invariant guarded here: every layout cites its upstream source, numbers each data folder's files
 * 1..N with the index file naming N (pkg/cloudstorage/generator.go), and names each schema file with
 * the checksum of its content (TiCDC's rule, checked by sluice's decoder as a second opinion).
 */
import { expect } from 'chai';
import { decodeSchemaFile } from '../../lib/codec/schemaFile.ts';
import { CANAL_JSON_LAYOUTS } from './vectors/canalJson.ts';
import { CSV_DIALECT_LAYOUTS } from './vectors/csvDialects.ts';
import { DATE_LAYOUTS } from './vectors/dates.ts';
import { DISPATCHER_LAYOUT } from './vectors/dispatchers.ts';
import { PARTITION_LAYOUTS } from './vectors/partitions.ts';
import { TABLE_VERSION_LAYOUT } from './vectors/tableVersion.ts';
import { UPDATE_PK_LAYOUTS } from './vectors/updatePk.ts';

const LAYOUTS = [...CSV_DIALECT_LAYOUTS, ...UPDATE_PK_LAYOUTS, ...PARTITION_LAYOUTS, ...CANAL_JSON_LAYOUTS, ...DATE_LAYOUTS, DISPATCHER_LAYOUT, TABLE_VERSION_LAYOUT];
const DATA_FILE = /^(.*)\/CDC(?:_(.+)_)?([0-9]{6,})\.(csv|json)$/;

describe('interop vectors', () => {
  for (const layout of LAYOUTS) {
    describe(layout.name, () => {
      it('cites pingcap/ticdc and has one file per path, a metadata file and an expected state', () => {
        expect(layout.source).to.match(/^pingcap\/ticdc \S/);
        const paths = layout.files.map((f) => f.path);
        expect(new Set(paths).size, 'unique paths').to.equal(paths.length);
        expect(paths).to.include('metadata');
        expect(layout.expected.length).to.be.greaterThan(0);
      });

      it("numbers every folder's data files 1..N, the index file naming N", () => {
        const streams = new Map<string, { folder: string; dispatcher?: string; indexes: number[] }>();
        for (const { path } of layout.files) {
          const match = DATA_FILE.exec(path);
          if (match === null) continue;
          const [, folder, dispatcher, digits] = match as unknown as [string, string, string | undefined, string];
          const key = `${folder}|${dispatcher ?? ''}`;
          const stream = streams.get(key) ?? { folder, ...(dispatcher === undefined ? {} : { dispatcher }), indexes: [] };
          stream.indexes.push(Number(digits));
          streams.set(key, stream);
        }
        expect(streams.size).to.be.greaterThan(0);
        for (const { folder, dispatcher, indexes } of streams.values()) {
          expect(indexes, folder).to.deep.equal(indexes.map((_, i) => i + 1));
          const index = layout.files.find((f) => f.path === `${folder}/meta/${dispatcher === undefined ? 'CDC' : `CDC_${dispatcher}`}.index`);
          const prefix = dispatcher === undefined ? 'CDC' : `CDC_${dispatcher}_`;
          expect(index?.text, `${folder} index file`).to.match(new RegExp(`^${prefix}0*${indexes.length}\\.(csv|json)\\n$`));
        }
      });

      it('names each schema file with the checksum of its content', () => {
        const schemaFiles = layout.files.filter((f) => /\/meta\/schema_[0-9]+_[0-9]{10}\.json$/.test(f.path));
        expect(schemaFiles.length).to.be.greaterThan(0);
        for (const file of schemaFiles) expect(() => decodeSchemaFile(file.text, file.path), file.path).not.to.throw();
      });
    });
  }
});
