/**
 * Where the sink's storages and writer come from: a storage given as a URI is opened here and closed
 * with the sink, one given open is left open; an http(s) url means the InfluxDB HTTP writer.
 */
import { openStorage } from '../../lib/storage/index.ts';
import type { ExternalStorage } from '../../lib/storage/storage.ts';
import { InfluxHttpWriter, type InfluxAuth, type LineWriter } from './lineWriter.ts';
import type { Settings } from './options.ts';

/** The storage given, opened if it is a URI (then its close joins `closers`). */
export async function storageOf(given: string | ExternalStorage, closers: (() => Promise<void>)[]): Promise<ExternalStorage> {
  if (typeof given !== 'string') return given;
  const storage = await openStorage(given);
  closers.push(() => storage.close());
  return storage;
}

/** The HTTP writer when the url is http(s), else undefined (a storage URI: .lp files). */
export function httpWriter<T>(settings: Settings<T>, auth: InfluxAuth | undefined): LineWriter | undefined {
  if (!/^https?:\/\//i.test(settings.url)) return undefined;
  return new InfluxHttpWriter({
    url: settings.url,
    db: settings.db,
    precision: settings.precision,
    ...(settings.retentionPolicy === undefined ? {} : { retentionPolicy: settings.retentionPolicy }),
    ...(auth === undefined ? {} : { auth }),
    gzipAboveBytes: settings.gzipAboveBytes,
    requestTimeoutMs: settings.requestTimeoutMs,
    maxSockets: settings.maxInFlight + 1,
  });
}
