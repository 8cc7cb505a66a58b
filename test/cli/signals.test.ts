import { expect } from 'chai';
import { EventEmitter } from 'node:events';
import { stopOnSignals } from '../../lib/cli/signals.ts';

function capture() {
  let text = '';
  return { stream: { write: (t: string) => (text += t) }, text: () => text };
}

describe('lib/cli/signals', () => {
  it('the first signal resolves the stop with its name and says so in one line; the second exits at once with its own code', async () => {
    const source = new EventEmitter();
    const exits: number[] = [];
    const err = capture();
    const stop = stopOnSignals('sluice x', err.stream, { source, exit: (code) => exits.push(code) });
    expect(stop.received).to.equal(undefined);
    source.emit('SIGTERM');
    expect(await stop.promise).to.equal('SIGTERM');
    expect(stop.received).to.equal('SIGTERM');
    expect(exits).to.deep.equal([]);
    expect(err.text()).to.equal('sluice x: SIGTERM: stopping; what was accepted is being made durable (SIGTERM again exits at once)\n');
    source.emit('SIGINT');
    expect(exits).to.deep.equal([130]);
    expect(err.text().split('\n')[1]).to.equal('sluice x: SIGINT again: exiting at once; the checkpoint covers what was durable before');
    stop.dispose();
  });

  it('a second SIGTERM exits 143; dispose removes both handlers', () => {
    const source = new EventEmitter();
    const exits: number[] = [];
    const stop = stopOnSignals('sluice x', capture().stream, { source, exit: (code) => exits.push(code) });
    expect(source.listenerCount('SIGINT')).to.equal(1);
    source.emit('SIGTERM');
    source.emit('SIGTERM');
    expect(exits).to.deep.equal([143]);
    stop.dispose();
    expect(source.listenerCount('SIGINT') + source.listenerCount('SIGTERM')).to.equal(0);
  });
});
