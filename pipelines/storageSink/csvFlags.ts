/**
 * The csv flags of `sluice sink` and `sluice replay`, with TiCDC's setting names: `--delimiter`,
 * `--quote`, `--terminator`, `--null`, `--include-commit-ts[=false]`, `--binary-encoding-method`,
 * `--output-old-value`, `--output-handle-key`, `--output-field-header`; their usage lines and their
 * values as `CsvOptions`. `--terminator` is the sink's, as TiCDC's `[sink] terminator`: on
 * `sluice sink --protocol canal-json` it ends the canal-json rows (`canalJsonOptionsFromFlags`);
 * `sluice replay` needs it for csv only (canal-json rows read back whatever control characters end them).
 *
 * Invariant guarded here: both commands read the flags alike, and a dialect the codec refuses is a
 * `UsageError` naming the flag (never an error once running). TiCDC's users give the delimiter and
 * the terminator in TOML double quotes (`terminator = "\n"`); a shell user types the same escapes in
 * single quotes (`--terminator '\n'`), so `\n`, `\r`, `\t` and `\\` are read as escapes in
 * `--delimiter`, `--quote` and `--terminator`. `--null` is taken as typed: its default `\N` is a
 * backslash and an N, as in TOML single quotes (`null = '\N'`).
 */
import { UsageError } from '../../lib/cli/commandLine.ts';
import { checkCanalJsonOptions, type CanalJsonOptions } from '../../lib/codec/canalJson.ts';
import { checkCsvOptions, type CsvOptions } from '../../lib/codec/csv.ts';
import { InvalidOptionError } from '../../lib/core/errors.ts';

/** The csv flags, as `parseFlags` wants them. */
export const CSV_FLAGS = {
  delimiter: { type: 'string' },
  quote: { type: 'string' },
  terminator: { type: 'string' },
  null: { type: 'string' },
  'include-commit-ts': { type: 'boolean' },
  'binary-encoding-method': { type: 'string' },
  'output-old-value': { type: 'boolean' },
  'output-handle-key': { type: 'boolean' },
  'output-field-header': { type: 'boolean' },
} as const;

type CsvFlagName = keyof typeof CSV_FLAGS;

/** The flag of each csv option. */
const FLAG_OF: Readonly<Record<keyof CsvOptions, CsvFlagName>> = {
  delimiter: 'delimiter',
  quote: 'quote',
  terminator: 'terminator',
  nullString: 'null',
  includeCommitTs: 'include-commit-ts',
  binaryEncodingMethod: 'binary-encoding-method',
  outputOldValue: 'output-old-value',
  outputHandleKey: 'output-handle-key',
  outputFieldHeader: 'output-field-header',
};

/** The flag values `parseFlags` gives for `CSV_FLAGS`. */
export type CsvFlagValues = { [K in CsvFlagName]?: (typeof CSV_FLAGS)[K]['type'] extends 'boolean' ? boolean : string };

/**
 * The usage lines of the csv flags. `whose` says whose settings they are: 'sink' (what the sink
 * writes) or 'replay' (what the sink wrote: they must match it).
 */
export function csvFlagsUsage(whose: 'sink' | 'replay'): string {
  const lead = whose === 'sink' ? 'csv:' : "csv, the sink's:";
  return `  ${lead} TiCDC's [sink.csv] settings and the sink's terminator${whose === 'replay' ? ', as the sink was run with' : ''}
  --delimiter <chars>          between fields, 1 to 3 bytes (default ','; '\\t' is a tab)
  --quote <char>               encloses strings (default '"'); --quote '' for none (strings are then backslash-escaped)
  --terminator <chars>         ends each record (default '\\r\\n'; TiCDC's docs and tests use '\\n')${
    whose === 'sink'
      ? "\n                               with --protocol canal-json it ends each row: control characters only ('\\n', '\\r\\n', '\\t'...)"
      : '\n                               (csv only: canal-json rows read back whatever control characters end them)'
  }
                               in these three flags \\n, \\r, \\t and \\\\ are escapes, as in TOML "..." strings
  --null <text>                how NULL is written, taken as typed (default \\N, as TOML's null = '\\N')
  --include-commit-ts[=false]  the commit ts as the 4th field (default true, a departure from TiCDC's false:
                               ${whose === 'sink' ? "replay needs it to skip rows applied already; =false writes TiCDC's default bytes" : "as sluice's sink writes; =false for a TiCDC changefeed of default settings"})
  --binary-encoding-method base64|hex  binary columns (default base64)
  --output-old-value           an is-update field; an update is a D row of old values then an I row
  --output-handle-key          accepted, without effect (TiCDC writes no handle-key column either)
  --output-field-header        each data file starts with a header line of field names`;
}

/** `text` with the escapes `\n`, `\r`, `\t` and `\\` read; any other backslash is a `UsageError` naming `flag`. */
export function unescapeFlagValue(flag: string, text: string): string {
  return text.replace(/\\(.?)/gs, (_, c: string) => {
    if (c === 'n') return '\n';
    if (c === 'r') return '\r';
    if (c === 't') return '\t';
    if (c === '\\') return '\\';
    throw new UsageError(`--${flag} takes the escapes \\n, \\r, \\t and \\\\ only, got ${JSON.stringify(text)} (a backslash is typed \\\\)`);
  });
}

/**
 * The csv options the flags give (only those given: the caller's defaults fill the rest), checked
 * with `defaults` filled in; a refused dialect is a `UsageError` naming the flag.
 *
 * @example csvOptionsFromFlags({ terminator: '\\n', 'include-commit-ts': false }, defaults) // { terminator: '\n', includeCommitTs: false }
 */
export function csvOptionsFromFlags(values: CsvFlagValues, defaults: Parameters<typeof checkCsvOptions>[2]): CsvOptions {
  const options: CsvOptions = {};
  if (values.delimiter !== undefined) options.delimiter = unescapeFlagValue('delimiter', values.delimiter);
  if (values.quote !== undefined) options.quote = unescapeFlagValue('quote', values.quote);
  if (values.terminator !== undefined) options.terminator = unescapeFlagValue('terminator', values.terminator);
  if (values.null !== undefined) options.nullString = values.null;
  if (values['include-commit-ts'] !== undefined) options.includeCommitTs = values['include-commit-ts'];
  if (values['binary-encoding-method'] !== undefined) options.binaryEncodingMethod = values['binary-encoding-method'] as CsvOptions['binaryEncodingMethod'];
  if (values['output-old-value'] !== undefined) options.outputOldValue = values['output-old-value'];
  if (values['output-handle-key'] !== undefined) options.outputHandleKey = values['output-handle-key'];
  if (values['output-field-header'] !== undefined) options.outputFieldHeader = values['output-field-header'];
  try {
    checkCsvOptions('csv flags', options, defaults);
  } catch (error) {
    if (!(error instanceof InvalidOptionError)) throw error;
    const flag = FLAG_OF[error.option.replace(/^csv\./, '') as keyof CsvOptions];
    const detail = error.message.slice(error.message.indexOf(' must be ') + 1);
    throw new UsageError(`--${flag ?? error.option} ${detail}`);
  }
  return options;
}

/**
 * The canal-json options of `sluice sink`'s flags (only those given: the sink's defaults fill the
 * rest): `--terminator` (escapes read as for csv) and `--enable-tidb-extension`. A terminator the
 * codec refuses is a `UsageError` naming `--terminator`.
 *
 * @example canalJsonOptionsFromFlags('\\n', undefined) // { terminator: '\n' }
 */
export function canalJsonOptionsFromFlags(terminator: string | undefined, enableTidbExtension: boolean | undefined): CanalJsonOptions {
  const options: CanalJsonOptions = {};
  if (terminator !== undefined) options.terminator = unescapeFlagValue('terminator', terminator);
  if (enableTidbExtension !== undefined) options.enableTidbExtension = enableTidbExtension;
  try {
    checkCanalJsonOptions('canal-json flags', options);
  } catch (error) {
    if (!(error instanceof InvalidOptionError)) throw error;
    const detail = error.message.slice(error.message.indexOf(' must be ') + 1);
    throw new UsageError(`--terminator with --protocol canal-json ${detail}`);
  }
  return options;
}

/** The csv flags given in `values`, as `--name` (for "applies to csv only" errors). */
export function csvFlagsGiven(values: CsvFlagValues): string[] {
  return (Object.keys(CSV_FLAGS) as CsvFlagName[]).filter((name) => values[name] !== undefined).map((name) => `--${name}`);
}
