import { expect } from 'chai';
import { pathToFileURL } from 'node:url';
import { InvalidStorageUriError, parseStorageUri, redactUri, type StorageLocation } from '../../lib/storage/uri.ts';

const FORMS = 'file:///absolute/path, memory://name, s3://bucket/prefix or azure://container/prefix';
const S3_CREDENTIALS = 'S3 credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, never from the URI';
const AZURE_CREDENTIALS =
  'Azure credentials come from AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY, or AZURE_STORAGE_CONNECTION_STRING, never from the URI';

function uriError(uri: string): InvalidStorageUriError {
  try {
    parseStorageUri(uri);
  } catch (error) {
    expect(error).to.be.instanceOf(InvalidStorageUriError);
    return error as InvalidStorageUriError;
  }
  return expect.fail(`expected ${uri} to be rejected`);
}

describe('storage URIs', () => {
  describe('parseStorageUri accepts', () => {
    const forms: [string, StorageLocation][] = [
      ['file:///srv/sluice/cdc', { scheme: 'file', root: '/srv/sluice/cdc' }],
      ['file:///srv/sluice/cdc/', { scheme: 'file', root: '/srv/sluice/cdc' }],
      ['file:///srv//sluice', { scheme: 'file', root: '/srv/sluice' }],
      ['file:///tmp/my%20data/%E8%A1%A8', { scheme: 'file', root: '/tmp/my data/表' }],
      ['file:///tmp/données', { scheme: 'file', root: '/tmp/données' }],
      ['file://localhost/srv/x', { scheme: 'file', root: '/srv/x' }],
      ['file:/srv/x', { scheme: 'file', root: '/srv/x' }],
      ['FILE:///srv/x', { scheme: 'file', root: '/srv/x' }],
      ['file:///', { scheme: 'file', root: '/' }],
      ['memory://', { scheme: 'memory', name: '' }],
      ['memory:', { scheme: 'memory', name: '' }],
      ['memory://cdc-test_1.x', { scheme: 'memory', name: 'cdc-test_1.x' }],
      ['memory://name/', { scheme: 'memory', name: 'name' }],
      ['s3://bucket', { scheme: 's3', bucket: 'bucket', prefix: '', forcePathStyle: false }],
      ['s3://bucket/', { scheme: 's3', bucket: 'bucket', prefix: '', forcePathStyle: false }],
      ['s3://my.bucket-1/cdc/orders/', { scheme: 's3', bucket: 'my.bucket-1', prefix: 'cdc/orders', forcePathStyle: false }],
      ['s3://bucket/a%20b/%E8%A1%A8', { scheme: 's3', bucket: 'bucket', prefix: 'a b/表', forcePathStyle: false }],
      [
        's3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1&force-path-style=true',
        { scheme: 's3', bucket: 'bucket', prefix: 'prefix', endpoint: 'http://127.0.0.1:9000', region: 'us-east-1', forcePathStyle: true },
      ],
      [
        's3://bucket/p?endpoint=http%3A%2F%2F127.0.0.1%3A9000',
        { scheme: 's3', bucket: 'bucket', prefix: 'p', endpoint: 'http://127.0.0.1:9000', forcePathStyle: true },
      ],
      [
        's3://bucket/p?endpoint=https://minio.internal:9000&force-path-style=false',
        { scheme: 's3', bucket: 'bucket', prefix: 'p', endpoint: 'https://minio.internal:9000', forcePathStyle: false },
      ],
      ['s3://bucket?region=eu-west-1', { scheme: 's3', bucket: 'bucket', prefix: '', region: 'eu-west-1', forcePathStyle: false }],
      ['S3://bucket/p?', { scheme: 's3', bucket: 'bucket', prefix: 'p', forcePathStyle: false }],
      ['azure://container', { scheme: 'azure', container: 'container', prefix: '' }],
      ['azure://container/cdc/orders/', { scheme: 'azure', container: 'container', prefix: 'cdc/orders' }],
      [
        'azure://container/prefix?endpoint=http://127.0.0.1:10000/devstoreaccount1',
        { scheme: 'azure', container: 'container', prefix: 'prefix', endpoint: 'http://127.0.0.1:10000/devstoreaccount1' },
      ],
      ['azure://$root/x', { scheme: 'azure', container: '$root', prefix: 'x' }],
    ];
    for (const [uri, location] of forms) {
      it(uri, () => {
        expect(parseStorageUri(uri)).to.deep.equal(location);
      });
    }

    it('round-trips a FileStorage-style uri made by pathToFileURL', () => {
      const root = '/tmp/sluice tests/a#b?c%d/表';
      expect(parseStorageUri(pathToFileURL(root).href)).to.deep.equal({ scheme: 'file', root });
    });
  });

  describe('parseStorageUri rejects', () => {
    const errors: [uri: string, message: string][] = [
      ['', `invalid storage URI "": is empty; use ${FORMS}`],
      ['/srv/data', 'invalid storage URI "/srv/data": has no scheme; for a folder write file:///srv/data'],
      ['data/x', `invalid storage URI "data/x": has no scheme; use ${FORMS}`],
      ['ftp://host/x', `invalid storage URI "ftp://host/x": has the unknown scheme "ftp"; use ${FORMS}`],
      ['gs://bucket/x', `invalid storage URI "gs://bucket/x": has the unknown scheme "gs"; use ${FORMS}`],
      ['s3://bucket/x#frag', `invalid storage URI "s3://bucket/x#frag": has a fragment ('#...'); percent-encode '#' in a name as %23`],
      // file
      ['file:data/x', 'invalid storage URI "file:data/x": has the relative path "data/x"; give an absolute path, such as file:///srv/sluice/data'],
      ['file:./data', 'invalid storage URI "file:./data": has the relative path "./data"; give an absolute path, such as file:///srv/sluice/data'],
      [
        'file://data/x',
        'invalid storage URI "file://data/x": names the host "data" (or a relative path); a file URI takes an absolute path after three slashes, such as file:///srv/sluice/data',
      ],
      ['file:///srv/../etc', `invalid storage URI "file:///srv/../etc": has a '..' segment in its path; give the folder's absolute path without '.' or '..'`],
      ['file:///srv/%2e%2e/etc', `invalid storage URI "file:///srv/%2e%2e/etc": has a '..' segment in its path; give the folder's absolute path without '.' or '..'`],
      ['file:///srv/./x', `invalid storage URI "file:///srv/./x": has a '.' segment in its path; give the folder's absolute path without '.' or '..'`],
      ['file:///srv/a%2Fb', `invalid storage URI "file:///srv/a%2Fb": encodes '/' or a NUL byte inside a path segment (%2F, %00); write '/' itself between folders`],
      ['file:///srv/%zz', `invalid storage URI "file:///srv/%zz": has a malformed percent-encoding in the path; write '%' itself as %25`],
      ['file:///srv?mode=fast', 'invalid storage URI "file:///srv?mode=fast": has the unknown query parameter "mode"; file URIs take no query parameters'],
      // memory
      ['memory:name', 'invalid storage URI "memory:name": is not of the form memory://name; write memory://name'],
      ['memory://name/sub', 'invalid storage URI "memory://name/sub": has the path "/sub"; a memory storage takes only a name: memory://name'],
      ['memory://a%20b', `invalid storage URI "memory://a%20b": has the name "a b"; a memory storage name uses only letters, digits, '.', '_' and '-'`],
      ['memory://x?size=3', 'invalid storage URI "memory://x?size=3": has the unknown query parameter "size"; memory URIs take no query parameters'],
      // s3
      ['s3://', 'invalid storage URI "s3://": has no bucket; write s3://bucket/prefix'],
      ['s3:///prefix', 'invalid storage URI "s3:///prefix": has no bucket; write s3://bucket/prefix'],
      ['s3:bucket/prefix', 'invalid storage URI "s3:bucket/prefix": is not of the form s3://bucket/prefix; write s3://bucket/prefix'],
      [
        's3://My_Bucket/x',
        `invalid storage URI "s3://My_Bucket/x": has the bucket "My_Bucket", which is not a valid bucket name: 3 to 63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit`,
      ],
      [
        's3://127.0.0.1:9000/bucket',
        `invalid storage URI "s3://127.0.0.1:9000/bucket": has the bucket "127.0.0.1:9000", which is not a valid bucket name: 3 to 63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit; give a server as ?endpoint=http://host:port`,
      ],
      ['s3://bucket/a/../b', `invalid storage URI "s3://bucket/a/../b": has the prefix "a/../b", which has a '..' segment; a prefix is '/'-separated names, such as s3://bucket/cdc/orders`],
      ['s3://bucket/..', `invalid storage URI "s3://bucket/..": has the prefix "..", which has a '..' segment; a prefix is '/'-separated names, such as s3://bucket/cdc/orders`],
      ['s3://bucket/a%2F..%2Fb', `invalid storage URI "s3://bucket/a%2F..%2Fb": has the prefix "a/../b", which has a '..' segment; a prefix is '/'-separated names, such as s3://bucket/cdc/orders`],
      ['s3://bucket/a//b', `invalid storage URI "s3://bucket/a//b": has the prefix "a//b", which has an empty segment ('//'); a prefix is '/'-separated names, such as s3://bucket/cdc/orders`],
      ['s3://bucket//', `invalid storage URI "s3://bucket//": has the prefix "/", which starts with '/' (keys are relative to the storage root); a prefix is '/'-separated names, such as s3://bucket/cdc/orders`],
      ['s3://bucket/a\\b', `invalid storage URI "s3://bucket/a\\b": has the prefix "a\\b", which contains a backslash (use '/' between segments); a prefix is '/'-separated names, such as s3://bucket/cdc/orders`],
      ['s3://bucket/x?endpont=http://h', 'invalid storage URI "s3://bucket/x?endpont=http://h": has the unknown query parameter "endpont"; s3 URIs take only endpoint, region, force-path-style'],
      ['s3://bucket/x?region=a&region=b', 'invalid storage URI "s3://bucket/x?region=a&region=b": repeats the query parameter "region"; give it once'],
      ['s3://bucket/x?region=US%20East', 'invalid storage URI "s3://bucket/x?region=US%20East": has the region "US East"; a region is lowercase letters, digits and \'-\', such as us-east-1'],
      ['s3://bucket/x?force-path-style=yes', 'invalid storage URI "s3://bucket/x?force-path-style=yes": has force-path-style=yes; write force-path-style=true or force-path-style=false'],
      ['s3://bucket/x?endpoint=127.0.0.1:9000', 'invalid storage URI "s3://bucket/x?endpoint=127.0.0.1:9000": has the endpoint "127.0.0.1:9000", which is not a URL; write endpoint=http://host:port'],
      ['s3://bucket/x?endpoint=ftp://h:21', 'invalid storage URI "s3://bucket/x?endpoint=ftp://h:21": has the endpoint "ftp://h:21"; an endpoint is an http:// or https:// URL'],
      ['s3://bucket/x?endpoint=not%20a%20url', 'invalid storage URI "s3://bucket/x?endpoint=not%20a%20url": has the endpoint "not a url", which is not a URL; write endpoint=http://host:port'],
      [
        's3://bucket/x?endpoint=http://h:1/?x=1',
        'invalid storage URI "s3://bucket/x?endpoint=http://h:1/?x=1": has an endpoint with a query or fragment; give only scheme, host, port and path, such as http://127.0.0.1:10000/devstoreaccount1',
      ],
      ['s3://AKIA:s3cr3t@bucket/x', `invalid storage URI "s3://bucket/x": has credentials before '@'; ${S3_CREDENTIALS}`],
      ['s3://bucket/x?endpoint=http://AKIA:s3cr3t@127.0.0.1:9000', `invalid storage URI "s3://bucket/x?endpoint=http://127.0.0.1:9000": has credentials in its endpoint; ${S3_CREDENTIALS}`],
      [
        's3://bucket/x?secret-access-key=s3cr3t&region=us-east-1',
        `invalid storage URI "s3://bucket/x?region=us-east-1": has the query parameter "secret-access-key", which looks like a credential; ${S3_CREDENTIALS}`,
      ],
      ['s3://bucket/x?%zz=1', `invalid storage URI "s3://bucket/x?%zz=1": has a malformed percent-encoding in a query parameter name; write '%' itself as %25`],
      // azure
      ['azure://', 'invalid storage URI "azure://": has no container; write azure://container/prefix'],
      ['azure:container', 'invalid storage URI "azure:container": is not of the form azure://container/prefix; write azure://container/prefix'],
      [
        'azure://Container/x',
        `invalid storage URI "azure://Container/x": has the container "Container", which is not a valid container name: 3 to 63 lowercase letters, digits and single '-', starting and ending with a letter or digit`,
      ],
      [
        'azure://my--container',
        `invalid storage URI "azure://my--container": has the container "my--container", which is not a valid container name: 3 to 63 lowercase letters, digits and single '-', starting and ending with a letter or digit`,
      ],
      ['azure://container/../x', `invalid storage URI "azure://container/../x": has the prefix "../x", which has a '..' segment; a prefix is '/'-separated names, such as azure://container/cdc/orders`],
      ['azure://container/x?region=west', 'invalid storage URI "azure://container/x?region=west": has the unknown query parameter "region"; azure URIs take only endpoint'],
      [
        'azure://container/x?sv=2022-11-02&sig=abc%3D',
        `invalid storage URI "azure://container/x?sv=2022-11-02": has the query parameter "sig", which looks like a credential; ${AZURE_CREDENTIALS}`,
      ],
      ['azure://account:key@container/x', `invalid storage URI "azure://container/x": has credentials before '@'; ${AZURE_CREDENTIALS}`],
    ];
    for (const [uri, message] of errors) {
      it(`${JSON.stringify(uri)}`, () => {
        const error = uriError(uri);
        expect(error.name).to.equal('InvalidStorageUriError');
        expect(error.message).to.equal(message);
        expect(error.uri).to.equal(redactUri(uri));
      });
    }

    it('never prints a secret, even in the problem', () => {
      for (const uri of ['s3://id:hunter2@bucket', 's3://b/x?endpoint=http://id:hunter2@h', 'azure://c/x?sig=hunter2', 's3://b/x?token=hunter2&bogus=1']) {
        expect(uriError(uri).message).to.not.include('hunter2');
      }
    });
  });

  describe('redactUri', () => {
    const cases: [string, string][] = [
      ['s3://bucket/prefix?region=eu-west-1', 's3://bucket/prefix?region=eu-west-1'],
      ['s3://id:secret@bucket/p?region=eu-west-1&X-Amz-Signature=abc', 's3://bucket/p?region=eu-west-1'],
      ['https://user@host:443/path', 'https://host:443/path'],
      ['azure://c/p?endpoint=http://127.0.0.1:10000/devstoreaccount1&sv=2022&sig=abc&se=2030', 'azure://c/p?endpoint=http://127.0.0.1:10000/devstoreaccount1&sv=2022&se=2030'],
      ['azure://c/p?sig=abc', 'azure://c/p'],
      ['s3://b/p?endpoint=http://u:p@h:9/&a=b', 's3://b/p?endpoint=http://h:9/&a=b'],
      ['azure://c/p?endpoint=http%3A%2F%2Fu%3Ap%40host%3A1%2Fx#frag', 'azure://c/p?endpoint=http%3A%2F%2Fhost%3A1%2Fx#frag'],
      ['s3://b/p?X-Amz-Credential=a&X-Amz-Security-Token=t&AccountKey=k&password=p&access_key=k&Authorization=x&session=s&x=1', 's3://b/p?x=1'],
      ['s3://b/a@b/c?x=1', 's3://b/a@b/c?x=1'],
      ['file:///tmp/a@b', 'file:///tmp/a@b'],
      ['not a uri at all', 'not a uri at all'],
      ['', ''],
    ];
    for (const [uri, redacted] of cases) {
      it(`${uri || '(empty)'} -> ${redacted || '(empty)'}`, () => {
        expect(redactUri(uri)).to.equal(redacted);
        expect(redactUri(redacted)).to.equal(redacted);
      });
    }
  });
});
