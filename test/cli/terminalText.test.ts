import { expect } from 'chai';
import { printFailure, runCommandLine, UsageError } from '../../lib/cli/commandLine.ts';
import { escapeControl } from '../../lib/cli/terminalText.ts';

function capture() {
  let text = '';
  return { stream: { write: (t: string) => (text += t) }, text: () => text };
}

describe('lib/cli/terminalText', () => {
  it('escapes C0, DEL and C1 control characters and keeps the rest', () => {
    expect(escapeControl('a\nb\r\tc\x1b[31md\x07\x00\x7f\x9b é ☃ \\n')).to.equal('a\\nb\\r\\tc\\e[31md\\x07\\x00\\x7f\\x9b é ☃ \\n');
  });

  it("messages of a command line that cannot run, or fails, escape what the user's values hold", async () => {
    const hostile = 'bad\x1b[2J\nsluice x: all fine';
    const parseErr = capture();
    const command = {
      name: 'sluice x',
      usage: 'usage: sluice x',
      parse: (args: string[]): string => {
        if (args[0] === 'parse') throw new UsageError(`--from: cannot read ${hostile}`);
        return args[0]!;
      },
      execute: async (value: string, output: { stderr: { write(t: string): unknown } }) => {
        if (value === 'usage') throw new UsageError(`--to: ${hostile}`);
        return printFailure(output.stderr, 'sluice x', `cannot write ${hostile}`, `fix ${hostile}`);
      },
    };
    expect(await runCommandLine(command, ['parse'], { stderr: parseErr.stream })).to.equal(2);
    expect(parseErr.text().split('\n')[0]).to.equal('sluice x: --from: cannot read bad\\e[2J\\nsluice x: all fine');
    const usageErr = capture();
    expect(await runCommandLine(command, ['usage'], { stderr: usageErr.stream })).to.equal(2);
    expect(usageErr.text()).to.equal('sluice x: --to: bad\\e[2J\\nsluice x: all fine\n');
    const failure = capture();
    expect(await runCommandLine(command, ['run'], { stderr: failure.stream })).to.equal(1);
    expect(failure.text()).to.equal('sluice x: cannot write bad\\e[2J\\nsluice x: all fine\n  hint: fix bad\\e[2J\\nsluice x: all fine\n');
  });
});
