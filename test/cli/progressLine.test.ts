import { expect } from 'chai';
import { ProgressLine } from '../../lib/cli/progressLine.ts';

function output(isTTY: boolean) {
  const writes: string[] = [];
  return { out: { write: (t: string) => writes.push(t), isTTY }, writes };
}

describe('lib/cli/progressLine', () => {
  it('on a plain output writes one line per event, no status and no control codes', () => {
    const { out, writes } = output(false);
    const line = new ProgressLine(out);
    expect(line.tty).to.equal(false);
    line.event(() => 'wrote a');
    line.status(() => {
      throw new Error('status is not rendered on a plain output');
    });
    line.event(() => 'wrote b');
    line.clear();
    expect(writes).to.deep.equal(['wrote a\n', 'wrote b\n']);
  });

  it('on a terminal redraws the status line in place and writes no event lines', () => {
    const { out, writes } = output(true);
    const line = new ProgressLine(out);
    expect(line.tty).to.equal(true);
    line.event(() => {
      throw new Error('events are not rendered on a terminal');
    });
    line.status(() => '1 rows');
    line.status(() => '2 rows');
    expect(writes).to.deep.equal(['\r\x1b[K1 rows', '\r\x1b[K2 rows']);
  });

  it('redraws at most every redrawIntervalMs', () => {
    const { out, writes } = output(true);
    let now = 1000;
    const line = new ProgressLine(out, { redrawIntervalMs: 200, now: () => now });
    line.status(() => 'a'); // first draw: always
    now += 199;
    line.status(() => 'b'); // too soon
    now += 1;
    line.status(() => 'c');
    now += 50;
    line.status(() => 'd');
    expect(writes).to.deep.equal(['\r\x1b[Ka', '\r\x1b[Kc']);
  });

  it('clear() erases a drawn status line once, and writes nothing when none is drawn', () => {
    const { out, writes } = output(true);
    const line = new ProgressLine(out);
    line.clear();
    expect(writes).to.deep.equal([]);
    line.status(() => 'x');
    line.clear();
    line.clear();
    expect(writes).to.deep.equal(['\r\x1b[Kx', '\r\x1b[K']);
  });
});
