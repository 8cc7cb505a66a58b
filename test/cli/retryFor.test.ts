import { expect } from 'chai';
import { UsageError } from '../../lib/cli/commandLine.ts';
import { formatRetryFor, outageCause, parseRetryFor, RETRY_FOR_DEFAULT, STALL_LINE_EVERY_MS, StallLines } from '../../lib/cli/retryFor.ts';
import { RetriesExhaustedError } from '../../lib/core/retry.ts';

describe('lib/cli/retryFor', () => {
  it('parseRetryFor: the default 10m, durations, 0; anything else is a UsageError naming the flag', () => {
    expect(RETRY_FOR_DEFAULT).to.equal('10m');
    expect(parseRetryFor(undefined)).to.deep.equal({ text: '10m', ms: 600_000 });
    expect(parseRetryFor('30s')).to.deep.equal({ text: '30s', ms: 30_000 });
    expect(parseRetryFor('0')).to.deep.equal({ text: '0', ms: 0 });
    expect(() => parseRetryFor('ten minutes')).to.throw(UsageError, /--retry-for must be a duration/);
  });

  it('formatRetryFor: a budget in ms as the flag takes it', () => {
    expect(formatRetryFor(600_000)).to.equal('10m');
    expect(formatRetryFor(1500)).to.equal('1.5s');
    expect(formatRetryFor(500)).to.equal('500ms');
    expect(formatRetryFor(Infinity)).to.equal('forever');
  });

  it('outageCause: the innermost cause, by code or HTTP status', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
    expect(outageCause(new RetriesExhaustedError('put x', 1, refused))).to.equal('ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9');
    const slowDown = Object.assign(new Error('Please reduce your request rate.'), { name: 'SlowDown', $metadata: { httpStatusCode: 503 } });
    expect(outageCause(slowDown)).to.equal('HTTP 503 SlowDown: Please reduce your request rate.');
  });

  it('StallLines: the first stall at once, then at most every STALL_LINE_EVERY_MS; "answers again" once, only after a stall', () => {
    let nowMs = 0;
    const lines = new StallLines('10m', () => nowMs);
    expect(lines.answered()).to.equal(undefined);
    expect(lines.stall('storage', 's3://b/p', 120, 'ECONNREFUSED')).to.equal('storage s3://b/p unreachable for 0 s, retrying until 10m: ECONNREFUSED');
    nowMs = STALL_LINE_EVERY_MS - 1;
    expect(lines.stall('storage', 's3://b/p', 1900, 'ECONNREFUSED')).to.equal(undefined);
    nowMs = STALL_LINE_EVERY_MS;
    expect(lines.stall('storage', 's3://b/p', 12_400, 'x\u001b[2J')).to.equal('storage s3://b/p unreachable for 12 s, retrying until 10m: x\\e[2J');
    expect(lines.stalled).to.equal(true);
    expect(lines.answered()).to.equal('s3://b/p answers again; going on where it was');
    expect(lines.answered()).to.equal(undefined);
    expect(lines.stalled).to.equal(false);
  });
});
