/** The package's entry points resolve by name, as a user imports them. */
import { expect } from 'chai';

describe('package exports', () => {
  it('sluice exports the core and the operators', async () => {
    const sluice = await import('sluice');
    for (const name of ['createAck', 'bindAck', 'ProgressTracker', 'fromPaced', 'batchBy', 'spool', 'drainBarrier', 'orderedMergeMap']) {
      expect(sluice, name).to.have.property(name).that.is.a('function');
    }
  });

  it('sluice/metrics exports the registry, the endpoint and the bindings', async () => {
    const metrics = await import('sluice/metrics');
    for (const name of ['createMetricsRegistry', 'serveMetrics', 'spoolMetrics', 'watermarkMetrics', 'flushMetrics']) {
      expect(metrics, name).to.have.property(name).that.is.a('function');
    }
  });
});
