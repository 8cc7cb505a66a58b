/** fast-check generators of TiCDC csv dialects, for the property tests of the csv codec and its fast path. */
import fc from 'fast-check';
import { checkCsvOptions, type CsvDialect, type CsvOptions } from '../../lib/codec/csv.ts';

function accepted(options: CsvOptions): boolean {
  try {
    checkCsvOptions('test', options);
    return true;
  } catch {
    return false;
  }
}

/**
 * Every csv setting over values real deployments use (TiCDC's docs: `$^`, `|@|`; its tests: `!`,
 * `[*]`, `\t`, `'`, '') and a few more (multi-byte delimiters, CR and `|\n` terminators, other null
 * strings), keeping the dialects `checkCsvOptions` accepts. With quote '' the null string is the
 * default `\N`: other null strings can be spelled by escaped text (documented in csv.ts).
 */
export const csvDialectArb: fc.Arbitrary<CsvDialect> = fc
  .record({
    delimiter: fc.constantFrom(',', '|', '\t', ' ', ';', '!', '[*]', '$^', '|@|', '§', '，'),
    quote: fc.constantFrom('"', "'", '', '`'),
    terminator: fc.constantFrom('\r\n', '\n', '\r', '\n\r', '#\n'),
    nullString: fc.constantFrom('\\N', 'NULL', '', '\\null', '~'),
    includeCommitTs: fc.boolean(),
    binaryEncodingMethod: fc.constantFrom('base64' as const, 'hex' as const),
    outputOldValue: fc.boolean(),
    outputHandleKey: fc.boolean(),
    outputFieldHeader: fc.boolean(),
  })
  // Quote '' as often as the others, with the settings it allows (CR/LF terminators, null `\N`).
  .chain((d) => fc.constantFrom(d, d.quote === '' ? d : { ...d, quote: '', nullString: '\\N', terminator: d.terminator.replace('#', '') }))
  .filter((d) => accepted(d) && (d.quote !== '' || d.nullString === '\\N'));

/** Dialects the csv fast path reads itself: a quote and a one-character delimiter, no old values. */
export const fastCsvDialectArb: fc.Arbitrary<CsvDialect> = csvDialectArb.filter((d) => d.quote !== '' && d.delimiter.length === 1 && !d.outputOldValue);
