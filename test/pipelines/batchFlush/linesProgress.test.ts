import { expect } from 'chai';
import { LinesProgress } from '../../../pipelines/batchFlush/linesProgress.ts';
import type { LineSinkEvent } from '../../../pipelines/batchFlush/progress.ts';

describe('LinesProgress (sluice lines)', () => {
  const written = (points: number): LineSinkEvent => ({ kind: 'written', points, batchSize: points, latencyMs: 1, attempts: 1, requests: 1 });
  const retrying = (elapsedMs: number): LineSinkEvent => ({
    kind: 'retrying',
    target: 'http://127.0.0.1:8086 db=x',
    attempt: 1,
    elapsedMs,
    maxElapsedMs: 600_000,
    reason: 'connect ECONNREFUSED 127.0.0.1:8086',
  });

  function setup(isTTY: boolean) {
    let clockMs = 0;
    let text = '';
    const progress = new LinesProgress({ isTTY, write: (chunk: string) => void (text += chunk) }, { everyMs: 60_000, retryFor: '10m', now: () => clockMs });
    return { progress, text: () => text, at: (ms: number) => void (clockMs = ms) };
  }

  it('prints a stall line at the first retry, then at most every 2 s, and one line when the server answers again', () => {
    const { progress, text, at } = setup(false);
    progress.report(written(5));
    for (const ms of [0, 100, 300, 700, 1500, 3100, 4000, 6300]) {
      at(10_000 + ms);
      progress.report(retrying(ms));
    }
    progress.report(written(7));
    progress.close();
    expect(text().split('\n').filter(Boolean)).to.deep.equal([
      'sluice lines: influxd at http://127.0.0.1:8086 db=x unreachable for 0 s, retrying until 10m: connect ECONNREFUSED 127.0.0.1:8086',
      'sluice lines: influxd at http://127.0.0.1:8086 db=x unreachable for 3 s, retrying until 10m: connect ECONNREFUSED 127.0.0.1:8086',
      'sluice lines: influxd at http://127.0.0.1:8086 db=x unreachable for 6 s, retrying until 10m: connect ECONNREFUSED 127.0.0.1:8086',
      'sluice lines: http://127.0.0.1:8086 db=x answers again; going on where it was',
    ]);
    expect(progress.written).to.equal(12);
  });

  it('counts refused lines and where they were stored, escaping control characters', () => {
    const { progress, text } = setup(false);
    const letter = (stored: string): LineSinkEvent => ({ kind: 'deadLetter', line: 'm v="a\x1b[2J"', status: 400, message: 'field type conflict', stored });
    progress.report(letter('file:///d/1.jsonl'));
    progress.report(letter('file:///d/1.jsonl'));
    progress.report(letter('file:///d/2.jsonl'));
    progress.close();
    expect(progress.refused).to.equal(3);
    expect(progress.storedIn).to.deep.equal(['file:///d/1.jsonl', 'file:///d/2.jsonl']);
    expect(text()).to.not.match(/\x1b/);
    expect(text()).to.include('refused (400): m v="a\\e[2J"');
  });

  it('on a terminal keeps the status line below the lines it prints', () => {
    const { progress, text, at } = setup(true);
    at(1000);
    progress.report(written(500));
    at(2000);
    progress.report(retrying(0));
    progress.close();
    expect(text()).to.equal(
      '\r\x1b[Ksluice lines: 500 points written, 0 refused, 500 points/s' +
        '\r\x1b[Ksluice lines: influxd at http://127.0.0.1:8086 db=x unreachable for 0 s, retrying until 10m: connect ECONNREFUSED 127.0.0.1:8086\n' +
        '\r\x1b[Ksluice lines: 500 points written, 0 refused, 250 points/s, waiting for influxd' +
        '\r\x1b[K',
    );
  });
});
