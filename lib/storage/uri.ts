/**
 * Storage URIs: `file:///abs/path`, `memory://name`, `s3://bucket/prefix?endpoint=...&region=...&force-path-style=true`,
 * `azure://container/prefix?endpoint=...`, parsed into a `StorageLocation`; `redactUri` makes any URI
 * safe to print.
 *
 * Invariant guarded here: credentials never come from a URI (they come from the environment), and a
 * URI is never printed with its credentials: every error quotes the redacted URI. Whatever a URI says,
 * its prefix is a valid key, so it cannot climb out of the bucket, container or folder it names.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkKey, InvalidKeyError } from './keys.ts';

/** A folder on local disk: `file:///abs/path` (an absolute, normalised path). */
export interface FileLocation {
  scheme: 'file';
  root: string;
}

/** An in-process storage: `memory://name` (name may be ''). */
export interface MemoryLocation {
  scheme: 'memory';
  name: string;
}

/** `s3://bucket/prefix?endpoint=...&region=...&force-path-style=...`; credentials come from the environment. */
export interface S3Location {
  scheme: 's3';
  bucket: string;
  /** '' or a valid key, without a trailing '/'. */
  prefix: string;
  /** An http(s) URL of an S3-compatible server; absent for AWS. */
  endpoint?: string;
  region?: string;
  /** Path-style addressing (http://host/bucket/key); default true with an endpoint, false without. */
  forcePathStyle: boolean;
}

/** `azure://container/prefix?endpoint=...`; the account and key come from the environment. */
export interface AzureLocation {
  scheme: 'azure';
  container: string;
  /** '' or a valid key, without a trailing '/'. */
  prefix: string;
  /** The blob service URL, account included (http://127.0.0.1:10000/devstoreaccount1); absent for Azure itself. */
  endpoint?: string;
}

/** Where a storage lives, as a URI says. */
export type StorageLocation = FileLocation | MemoryLocation | S3Location | AzureLocation;

/** The forms `parseStorageUri` accepts, for messages. */
export const STORAGE_URI_FORMS = 'file:///absolute/path, memory://name, s3://bucket/prefix or azure://container/prefix';

const S3_PARAMETERS = ['endpoint', 'region', 'force-path-style'] as const;
const AZURE_PARAMETERS = ['endpoint'] as const;
const S3_CREDENTIALS = 'S3 credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, never from the URI';
const AZURE_CREDENTIALS =
  'Azure credentials come from AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY, or AZURE_STORAGE_CONNECTION_STRING, never from the URI';

/** A query parameter whose name looks like it carries a secret (SAS signature, token, key, password). */
const SECRET_PARAMETER = /secret|passw|pwd|token|sig|credential|key|auth|sas|session/i;
/** `scheme://userinfo@`, also percent-encoded inside a query value. */
const USERINFO = /(\/\/|%2F%2F)(?:[^/?#&@%]|%(?!40|2F)[0-9A-F]{2})*(@|%40)/gi;

/** A storage URI that cannot be used: names the URI (credentials removed) and what to change. */
export class InvalidStorageUriError extends Error {
  override readonly name = 'InvalidStorageUriError';
  /** The URI as given, redacted. */
  readonly uri: string;
  /** What is wrong and how to fix it. */
  readonly problem: string;

  constructor(uri: unknown, problem: string) {
    const shown = typeof uri === 'string' ? redactUri(uri) : String(uri);
    super(`invalid storage URI "${shown}": ${problem}`);
    this.uri = shown;
    this.problem = problem;
  }
}

/**
 * The URI without userinfo (`user:password@`) and without query parameters whose names look secret
 * (sig, token, key, secret, password...). Never throws, whatever it is given.
 *
 * @example
 * redactUri('s3://id:secret@bucket/p?region=eu-west-1&X-Amz-Signature=abc'); // 's3://bucket/p?region=eu-west-1'
 */
export function redactUri(uri: string): string {
  const text = String(uri).replace(USERINFO, '$1');
  const queryStart = text.indexOf('?');
  if (queryStart < 0) return text;
  const fragmentStart = text.indexOf('#', queryStart);
  const queryEnd = fragmentStart < 0 ? text.length : fragmentStart;
  const kept = text
    .slice(queryStart + 1, queryEnd)
    .split('&')
    .filter((parameter) => !SECRET_PARAMETER.test(safeDecode(parameter.split('=', 1)[0]!)));
  return `${text.slice(0, queryStart)}${kept.length > 0 ? `?${kept.join('&')}` : ''}${text.slice(queryEnd)}`;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * Parses a storage URI. Throws `InvalidStorageUriError` (naming the redacted URI and the fix) for an
 * unknown scheme, an unknown or repeated query parameter, a missing bucket or container, a relative
 * file path, credentials in the URI, or a prefix that is not a valid key ('..', '//', ...).
 * Percent-encoding is decoded in paths, prefixes and parameter values. An S3 URI with an endpoint
 * defaults to path-style addressing (what S3-compatible servers need); without one, to virtual-hosted.
 *
 * @example
 * parseStorageUri('s3://cdc/orders?endpoint=http://127.0.0.1:9000&region=us-east-1');
 * // { scheme: 's3', bucket: 'cdc', prefix: 'orders', endpoint: 'http://127.0.0.1:9000', region: 'us-east-1', forcePathStyle: true }
 */
export function parseStorageUri(uri: string): StorageLocation {
  if (typeof uri !== 'string' || uri.trim() === '') {
    throw new InvalidStorageUriError(uri, `is empty; use ${STORAGE_URI_FORMS}`);
  }
  const match = /^([A-Za-z][A-Za-z0-9+.-]*):(.*)$/s.exec(uri);
  if (match === null) {
    const hint = uri.startsWith('/') ? `for a folder write file://${uri}` : `use ${STORAGE_URI_FORMS}`;
    throw new InvalidStorageUriError(uri, `has no scheme; ${hint}`);
  }
  const scheme = match[1]!.toLowerCase();
  const rest = match[2]!;
  if (rest.includes('#')) {
    throw new InvalidStorageUriError(uri, `has a fragment ('#...'); percent-encode '#' in a name as %23`);
  }
  const queryStart = rest.indexOf('?');
  const hierarchy = queryStart < 0 ? rest : rest.slice(0, queryStart);
  const query = parseQuery(uri, queryStart < 0 ? '' : rest.slice(queryStart + 1));
  switch (scheme) {
    case 'file':
      return parseFile(uri, hierarchy, query);
    case 'memory':
      return parseMemory(uri, hierarchy, query);
    case 's3':
      return parseS3(uri, hierarchy, query);
    case 'azure':
      return parseAzure(uri, hierarchy, query);
    default:
      throw new InvalidStorageUriError(uri, `has the unknown scheme "${scheme}"; use ${STORAGE_URI_FORMS}`);
  }
}

function parseQuery(uri: string, query: string): Map<string, string> {
  const parameters = new Map<string, string>();
  for (const parameter of query.split('&')) {
    if (parameter === '') continue;
    const equals = parameter.indexOf('=');
    const name = decode(uri, equals < 0 ? parameter : parameter.slice(0, equals), 'a query parameter name');
    const value = equals < 0 ? '' : decode(uri, parameter.slice(equals + 1), `the value of ${name}`);
    if (parameters.has(name)) throw new InvalidStorageUriError(uri, `repeats the query parameter "${name}"; give it once`);
    parameters.set(name, value);
  }
  return parameters;
}

function decode(uri: string, text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new InvalidStorageUriError(uri, `has a malformed percent-encoding in ${what}; write '%' itself as %25`);
  }
}

/** Rejects every parameter but `known`, saying where credentials come from when one looks like a secret. */
function checkParameters(uri: string, query: Map<string, string>, scheme: string, known: readonly string[], credentials: string): void {
  const unknown = [...query.keys()].filter((name) => !known.includes(name));
  const secret = unknown.find((name) => SECRET_PARAMETER.test(name));
  if (secret !== undefined) {
    throw new InvalidStorageUriError(uri, `has the query parameter "${secret}", which looks like a credential; ${credentials}`);
  }
  if (unknown.length > 0) {
    const takes = known.length === 0 ? 'take no query parameters' : `take only ${known.join(', ')}`;
    throw new InvalidStorageUriError(uri, `has the unknown query parameter "${unknown[0]}"; ${scheme} URIs ${takes}`);
  }
}

function parseFile(uri: string, hierarchy: string, query: Map<string, string>): StorageLocation {
  checkParameters(uri, query, 'file', [], 'a file storage needs no credentials');
  let path: string;
  if (hierarchy.startsWith('///')) path = hierarchy.slice(2);
  else if (hierarchy.toLowerCase().startsWith('//localhost/')) path = hierarchy.slice('//localhost'.length);
  else if (hierarchy.startsWith('//')) {
    const host = hierarchy.slice(2).split('/', 1)[0]!;
    throw new InvalidStorageUriError(
      uri,
      `names the host "${host}" (or a relative path); a file URI takes an absolute path after three slashes, such as file:///srv/sluice/${host}`,
    );
  } else if (hierarchy.startsWith('/')) path = hierarchy;
  else {
    throw new InvalidStorageUriError(uri, `has the relative path "${hierarchy}"; give an absolute path, such as file:///srv/sluice/data`);
  }
  for (const segment of path.split('/')) {
    const decoded = decode(uri, segment, 'the path');
    if (decoded === '..' || decoded === '.') {
      throw new InvalidStorageUriError(uri, `has a '${decoded}' segment in its path; give the folder's absolute path without '.' or '..'`);
    }
    if (decoded.includes('/') || decoded.includes('\0')) {
      throw new InvalidStorageUriError(uri, `encodes '/' or a NUL byte inside a path segment (%2F, %00); write '/' itself between folders`);
    }
  }
  return { scheme: 'file', root: resolve(fileURLToPath(`file://${path}`)) };
}

function parseMemory(uri: string, hierarchy: string, query: Map<string, string>): StorageLocation {
  checkParameters(uri, query, 'memory', [], 'a memory storage needs no credentials');
  if (hierarchy !== '' && !hierarchy.startsWith('//')) {
    throw new InvalidStorageUriError(uri, `is not of the form memory://name; write memory://${hierarchy.replace(/^\/+/, '')}`);
  }
  const [authority, path] = splitAuthority(hierarchy);
  const name = decode(uri, authority, 'the name');
  if (path !== '' && path !== '/') {
    throw new InvalidStorageUriError(uri, `has the path "${path}"; a memory storage takes only a name: memory://name`);
  }
  if (!/^[A-Za-z0-9._-]*$/.test(name)) {
    throw new InvalidStorageUriError(uri, `has the name "${name}"; a memory storage name uses only letters, digits, '.', '_' and '-'`);
  }
  return { scheme: 'memory', name };
}

function parseS3(uri: string, hierarchy: string, query: Map<string, string>): StorageLocation {
  const [bucket, path] = containerAndPath(uri, hierarchy, 's3', 'bucket', S3_CREDENTIALS);
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket) || bucket.includes('..')) {
    const hint = bucket.includes(':') ? '; give a server as ?endpoint=http://host:port' : '';
    throw new InvalidStorageUriError(
      uri,
      `has the bucket "${bucket}", which is not a valid bucket name: 3 to 63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit${hint}`,
    );
  }
  checkParameters(uri, query, 's3', S3_PARAMETERS, S3_CREDENTIALS);
  const prefix = checkUriPrefix(uri, path, `s3://${bucket}/cdc/orders`);
  const endpoint = query.has('endpoint') ? checkEndpoint(uri, query.get('endpoint')!, S3_CREDENTIALS) : undefined;
  const region = query.get('region');
  if (region !== undefined && !/^[a-z0-9-]+$/.test(region)) {
    throw new InvalidStorageUriError(uri, `has the region "${region}"; a region is lowercase letters, digits and '-', such as us-east-1`);
  }
  const pathStyle = query.get('force-path-style');
  if (pathStyle !== undefined && pathStyle !== 'true' && pathStyle !== 'false') {
    throw new InvalidStorageUriError(uri, `has force-path-style=${pathStyle}; write force-path-style=true or force-path-style=false`);
  }
  return {
    scheme: 's3',
    bucket,
    prefix,
    ...(endpoint === undefined ? {} : { endpoint }),
    ...(region === undefined ? {} : { region }),
    forcePathStyle: pathStyle === undefined ? endpoint !== undefined : pathStyle === 'true',
  };
}

function parseAzure(uri: string, hierarchy: string, query: Map<string, string>): StorageLocation {
  const [container, path] = containerAndPath(uri, hierarchy, 'azure', 'container', AZURE_CREDENTIALS);
  if (!/^(\$root|\$web|[a-z0-9][a-z0-9-]{1,61}[a-z0-9])$/.test(container) || container.includes('--')) {
    throw new InvalidStorageUriError(
      uri,
      `has the container "${container}", which is not a valid container name: 3 to 63 lowercase letters, digits and single '-', starting and ending with a letter or digit`,
    );
  }
  checkParameters(uri, query, 'azure', AZURE_PARAMETERS, AZURE_CREDENTIALS);
  const prefix = checkUriPrefix(uri, path, `azure://${container}/cdc/orders`);
  const endpoint = query.has('endpoint') ? checkEndpoint(uri, query.get('endpoint')!, AZURE_CREDENTIALS) : undefined;
  return { scheme: 'azure', container, prefix, ...(endpoint === undefined ? {} : { endpoint }) };
}

/** `//authority/path` into the bucket or container and the path after it. */
function containerAndPath(uri: string, hierarchy: string, scheme: string, what: string, credentials: string): [string, string] {
  if (!hierarchy.startsWith('//')) {
    throw new InvalidStorageUriError(uri, `is not of the form ${scheme}://${what}/prefix; write ${scheme}://${what}/prefix`);
  }
  const [authority, path] = splitAuthority(hierarchy);
  if (authority.includes('@')) throw new InvalidStorageUriError(uri, `has credentials before '@'; ${credentials}`);
  if (authority === '') throw new InvalidStorageUriError(uri, `has no ${what}; write ${scheme}://${what}/prefix`);
  return [decode(uri, authority, `the ${what}`), path];
}

function splitAuthority(hierarchy: string): [authority: string, path: string] {
  const body = hierarchy.slice(2);
  const slash = body.indexOf('/');
  return slash < 0 ? [body, ''] : [body.slice(0, slash), body.slice(slash)];
}

/** The path after the bucket or container as a prefix: '' or a valid key, one trailing '/' dropped. */
function checkUriPrefix(uri: string, path: string, example: string): string {
  const decoded = decode(uri, path.slice(1), 'the prefix');
  const prefix = decoded.length > 1 && decoded.endsWith('/') ? decoded.slice(0, -1) : decoded;
  if (prefix === '') return '';
  try {
    return checkKey(prefix, 'prefix');
  } catch (error) {
    if (!(error instanceof InvalidKeyError)) throw error;
    throw new InvalidStorageUriError(uri, `has the prefix "${prefix}", which ${error.problem}; a prefix is '/'-separated names, such as ${example}`);
  }
}

/** An endpoint is an http(s) URL without credentials, query or fragment. */
function checkEndpoint(uri: string, endpoint: string, credentials: string): string {
  let parsed: URL;
  try {
    parsed = new URL(endpoint);
  } catch {
    throw new InvalidStorageUriError(uri, `has the endpoint "${redactUri(endpoint)}", which is not a URL; write endpoint=http://host:port`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new InvalidStorageUriError(uri, `has the endpoint "${redactUri(endpoint)}"; an endpoint is an http:// or https:// URL`);
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new InvalidStorageUriError(uri, `has credentials in its endpoint; ${credentials}`);
  }
  if (parsed.search !== '' || parsed.hash !== '') {
    throw new InvalidStorageUriError(uri, `has an endpoint with a query or fragment; give only scheme, host, port and path, such as http://127.0.0.1:10000/devstoreaccount1`);
  }
  return endpoint;
}
