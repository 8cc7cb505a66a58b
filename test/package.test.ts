/** The package's entry points resolve by name, as a user imports them. */
import { expect } from 'chai';

const ENTRY_POINTS: Record<string, string[]> = {
  sluice: ['createAck', 'bindAck', 'ProgressTracker', 'fromPaced', 'batchBy', 'spool', 'drainBarrier', 'orderedMergeMap', 'withRetries'],
  'sluice/metrics': ['createMetricsRegistry', 'serveMetrics', 'spoolMetrics', 'watermarkMetrics', 'flushMetrics'],
  'sluice/storage': ['openStorage', 'parseStorageUri', 'FileStorage', 'S3Storage', 'AzureStorage', 'MemoryStorage', 'checkKey'],
  'sluice/pipelines/storageSink': ['storageSink', 'FileOutput', 'TableRegistry'],
  'sluice/codec': ['encodeCsvRows', 'decodeCsvRows', 'encodeCanalJsonRows', 'encodeSchemaFile', 'schemaChecksum', 'dataFilePath', 'parseChangeEventLine'],
};

describe('package exports', () => {
  for (const [entry, names] of Object.entries(ENTRY_POINTS)) {
    it(`${entry} exports ${names.join(', ')}`, async () => {
      const module = (await import(entry)) as Record<string, unknown>;
      for (const name of names) expect(module, `${entry}: ${name}`).to.have.property(name).that.is.a('function');
    });
  }
});
