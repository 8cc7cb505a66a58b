import { expect } from 'chai';
import { UsageError } from '../../lib/cli/commandLine.ts';
import { formatBytes, formatSeconds, parseDuration, parseSize } from '../../lib/cli/units.ts';

describe('lib/cli/units', () => {
  it('parseDuration reads ms, s and m, with decimals and surrounding spaces', () => {
    expect(parseDuration('interval', '500ms')).to.equal(500);
    expect(parseDuration('interval', '5s')).to.equal(5000);
    expect(parseDuration('interval', '1.5s')).to.equal(1500);
    expect(parseDuration('interval', '2m')).to.equal(120_000);
    expect(parseDuration('interval', ' 0s ')).to.equal(0);
  });

  it('parseDuration refuses anything else with a UsageError naming the flag and quoting the text', () => {
    for (const text of ['5', '5 s', '1h', '-1s', '.5s', 's', '']) {
      expect(() => parseDuration('flush-interval', text), JSON.stringify(text)).to.throw(
        UsageError,
        `--flush-interval must be a duration such as 500ms, 5s or 1m, got ${JSON.stringify(text)}`,
      );
    }
  });

  it('parseSize reads bytes and KiB/MiB/GiB in any case, rounding down to whole bytes', () => {
    expect(parseSize('file-size', '1048576')).to.equal(1_048_576);
    expect(parseSize('file-size', '512KiB')).to.equal(512 * 1024);
    expect(parseSize('file-size', '64mib')).to.equal(64 * 1024 ** 2);
    expect(parseSize('file-size', '1 GiB')).to.equal(1024 ** 3);
    expect(parseSize('file-size', '1.5KiB')).to.equal(1536);
    expect(parseSize('file-size', '10b')).to.equal(10);
    expect(parseSize('file-size', '1.9')).to.equal(1);
  });

  it('parseSize refuses other units, less than one byte and unsafe sizes, naming the flag', () => {
    for (const text of ['64MB', '1TiB', '0', '0.5', 'KiB', '-1KiB', '9007199254740993', '99999999999GiB']) {
      expect(() => parseSize('file-size', text), text).to.throw(UsageError, `--file-size must be a size such as 1048576, 512KiB, 64MiB or 1GiB (at least 1 byte), got ${JSON.stringify(text)}`);
    }
  });

  it('formatBytes prints bytes below 1 KiB exactly and larger sizes with one decimal, up to GiB', () => {
    expect(formatBytes(0)).to.equal('0 B');
    expect(formatBytes(1023)).to.equal('1023 B');
    expect(formatBytes(1024)).to.equal('1.0 KiB');
    expect(formatBytes(1536)).to.equal('1.5 KiB');
    expect(formatBytes(64 * 1024 ** 2)).to.equal('64.0 MiB');
    expect(formatBytes(3 * 1024 ** 3)).to.equal('3.0 GiB');
    expect(formatBytes(5 * 1024 ** 4)).to.equal('5120.0 GiB');
  });

  it('formatSeconds prints milliseconds as seconds with the given decimals', () => {
    expect(formatSeconds(2400)).to.equal('2.40 s');
    expect(formatSeconds(0)).to.equal('0.00 s');
    expect(formatSeconds(1250, 1)).to.equal('1.3 s');
  });
});
