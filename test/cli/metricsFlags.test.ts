import { expect } from 'chai';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { UsageError } from '../../lib/cli/commandLine.ts';
import { startJob } from '../../lib/cli/job.ts';
import { metricsEndpointFromFlags, metricsFlagsUsage, startMetricsEndpoint } from '../../lib/cli/metricsFlags.ts';

describe('lib/cli/metricsFlags', () => {
  it('reads --metrics-port (0..65535, 0 any free port) and --metrics-host (default 127.0.0.1)', () => {
    expect(metricsEndpointFromFlags({})).to.equal(undefined);
    expect(metricsEndpointFromFlags({ 'metrics-port': '9464' })).to.deep.equal({ port: 9464, host: '127.0.0.1' });
    expect(metricsEndpointFromFlags({ 'metrics-port': '0', 'metrics-host': '0.0.0.0' })).to.deep.equal({ port: 0, host: '0.0.0.0' });
    for (const [values, message] of [
      [{ 'metrics-port': '65536' }, '--metrics-port must be a whole number from 0 to 65535 (0 picks a free port), got "65536"'],
      [{ 'metrics-port': '-1' }, '--metrics-port must be a whole number from 0 to 65535'],
      [{ 'metrics-port': 'http' }, 'got "http"'],
      [{ 'metrics-host': '0.0.0.0' }, '--metrics-host needs --metrics-port'],
      [{ 'metrics-port': '1', 'metrics-host': '' }, '--metrics-host must not be empty'],
    ] as const) {
      expect(() => metricsEndpointFromFlags(values)).to.throw(UsageError, message);
    }
    expect(metricsFlagsUsage(29)).to.match(/^ {2}--metrics-port <N> {8} serve/).and.contain('docs/metrics.md');
  });

  it('a port already in use is a UsageError naming the flag', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = busy.address() as AddressInfo;
      let caught: unknown;
      try {
        await startMetricsEndpoint({ port, host: '127.0.0.1' });
      } catch (error) {
        caught = error;
      }
      expect(caught).to.be.instanceOf(UsageError).with.property('message').that.contains(`--metrics-port ${port}`).and.contains('EADDRINUSE');
    } finally {
      await new Promise((resolve) => busy.close(resolve));
    }
  });

  it("a job serves its registry, prints the address on stderr, hands the flow its metrics option, and closes the endpoint", async () => {
    let err = '';
    const output = { stdout: { write: () => true }, stderr: { write: (t: string) => (err += t) } };
    const job = await startJob('sluice x', output, { metrics: { port: 0, host: '127.0.0.1' } });
    const url = /metrics at (\S+)/.exec(err)?.[1];
    expect(url).to.match(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const option = job.metricsOption('x');
    expect(option.metrics?.pipeline).to.equal('x');
    option.metrics!.registry.registerMetric(new (await import('prom-client')).Counter({ name: 'sluice_test_total', help: 'h', registers: [] }));
    expect(await (await fetch(url!)).text()).to.contain('sluice_test_total 0').and.contain('process_cpu_seconds_total');
    expect(job.exitCode(0)).to.equal(0);
    await job.close();
    let refused: unknown;
    await fetch(url!).catch((error: unknown) => (refused = error));
    expect(refused).to.be.instanceOf(Error);
    const plain = await startJob('sluice x', output);
    expect(plain.metricsOption('x')).to.deep.equal({});
    await plain.close();
  });
});
