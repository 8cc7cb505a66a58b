/**
 * Storage keys: relative '/'-separated paths, checked before any I/O, joined to a storage's prefix,
 * and ordered by UTF-8 bytes, the order S3, file and memory storages list in.
 *
 * Invariant guarded here: a key that passes `checkKey` can become a path under a root folder or an
 * object name under a prefix and never climb out of it: no leading '/', no '.' or '..' segment, no
 * backslash, no empty segment, no control character, at most `MAX_KEY_BYTES` bytes of UTF-8.
 */

/** Longest key in UTF-8 bytes, the S3 and Azure limit on an object name (prefix included). */
export const MAX_KEY_BYTES = 1024;

/** Which rule a key broke (`InvalidKeyError.rule`). */
export type KeyRule =
  | 'not-a-string'
  | 'empty'
  | 'too-long'
  | 'control-character'
  | 'backslash'
  | 'leading-slash'
  | 'trailing-slash'
  | 'empty-segment'
  | 'dot-segment'
  | 'outside-root'
  | 'reserved-name';

/** A key (or listing prefix) that breaks a rule: names the key, the rule and how to write it. */
export class InvalidKeyError extends Error {
  override readonly name = 'InvalidKeyError';
  readonly key: unknown;
  readonly rule: KeyRule;
  /** What is wrong, completing "the key ...": "has a '..' segment". */
  readonly problem: string;

  /** `problem` defaults to the rule's standard wording. */
  constructor(owner: string, key: unknown, rule: KeyRule, problem = describeProblem(key, rule)) {
    super(`${owner}: invalid key ${showKey(key)}: it ${problem}; keys are relative '/'-separated paths such as "2024/orders/CDC000001.csv"`);
    this.key = key;
    this.rule = rule;
    this.problem = problem;
  }
}

/** Longest part of a key quoted in a message; a longer one is cut with '…'. */
const SHOWN_KEY_CHARS = 120;

function showKey(key: unknown): string {
  if (typeof key !== 'string') return typeof key === 'undefined' ? 'undefined' : `of type ${typeof key}`;
  const shown = key.length > SHOWN_KEY_CHARS ? `${key.slice(0, SHOWN_KEY_CHARS)}…` : key;
  return JSON.stringify(shown);
}

function describeProblem(key: unknown, rule: KeyRule): string {
  switch (rule) {
    case 'not-a-string':
      return 'is not a string';
    case 'empty':
      return 'is empty';
    case 'too-long':
      return `is ${utf8Bytes(key as string)} bytes in UTF-8, more than the ${MAX_KEY_BYTES} allowed`;
    case 'control-character': {
      const index = (key as string).search(CONTROL_CHARACTER);
      const code = (key as string).charCodeAt(index).toString(16).toUpperCase().padStart(4, '0');
      return `contains the control character U+${code} at index ${index}`;
    }
    case 'backslash':
      return `contains a backslash (use '/' between segments)`;
    case 'leading-slash':
      return `starts with '/' (keys are relative to the storage root)`;
    case 'trailing-slash':
      return `ends with '/' (a key names an object, not a folder)`;
    case 'empty-segment':
      return `has an empty segment ('//')`;
    case 'dot-segment':
      return `has a '${(key as string).split('/').find((segment) => segment === '.' || segment === '..')}' segment`;
    case 'outside-root':
      return 'resolves outside the storage root';
    case 'reserved-name':
      return 'uses a reserved name';
  }
}

const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;

function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** The rule `key` breaks, or undefined when it is a valid key. Never throws. */
export function keyProblem(key: unknown): KeyRule | undefined {
  if (typeof key !== 'string') return 'not-a-string';
  if (key === '') return 'empty';
  if (key.length > MAX_KEY_BYTES / 3 && utf8Bytes(key) > MAX_KEY_BYTES) return 'too-long';
  if (CONTROL_CHARACTER.test(key)) return 'control-character';
  if (key.includes('\\')) return 'backslash';
  if (key.startsWith('/')) return 'leading-slash';
  if (key.endsWith('/')) return 'trailing-slash';
  if (key.includes('//')) return 'empty-segment';
  for (const segment of key.split('/')) {
    if (segment === '.' || segment === '..') return 'dot-segment';
  }
  return undefined;
}

/**
 * Returns `key` when it is valid, otherwise throws an `InvalidKeyError` naming `owner`, the key and the
 * rule broken.
 *
 * @example
 * checkKey('données/表/CDC000001.csv'); // fine
 * checkKey('a/../b', 'FileStorage'); // InvalidKeyError: FileStorage: invalid key "a/../b": it has a '..' segment; ...
 */
export function checkKey(key: unknown, owner = 'storage'): string {
  const rule = keyProblem(key);
  if (rule !== undefined) throw new InvalidKeyError(owner, key, rule);
  return key as string;
}

/**
 * Returns a listing prefix when it is valid: '' (everything), or a key, optionally followed by '/'.
 * It may end in the middle of a name ('2024/ord' lists '2024/orders/...'). Throws `InvalidKeyError`.
 */
export function checkPrefix(prefix: unknown, owner = 'storage'): string {
  if (prefix === '') return prefix;
  if (typeof prefix !== 'string' || !prefix.endsWith('/')) return checkKey(prefix, owner);
  // A folder prefix is valid when a key can follow it: '/' then breaks leading-slash, 'a//' empty-segment.
  const rule = keyProblem(`${prefix}x`);
  if (rule === 'too-long') {
    throw new InvalidKeyError(owner, prefix, rule, `is ${utf8Bytes(prefix)} bytes in UTF-8, so no key under it fits in ${MAX_KEY_BYTES}`);
  }
  if (rule !== undefined) throw new InvalidKeyError(owner, prefix, rule);
  return prefix;
}

/**
 * A key (or listing prefix) under a storage prefix: '' leaves it as is, 'data' and 'data/' both give
 * 'data/<key>'. Both parts are expected checked already; the joined key may still be too long, which
 * throws `InvalidKeyError` naming the joined key.
 *
 * @example
 * joinKey('tenant-1/cdc', 'orders/CDC000001.csv'); // 'tenant-1/cdc/orders/CDC000001.csv'
 */
export function joinKey(prefix: string, key: string, owner = 'storage'): string {
  const joined = prefix === '' ? key : prefix.endsWith('/') ? prefix + key : `${prefix}/${key}`;
  if (joined.length > MAX_KEY_BYTES / 3 && utf8Bytes(joined) > MAX_KEY_BYTES) {
    throw new InvalidKeyError(owner, joined, 'too-long', `is ${utf8Bytes(joined)} bytes in UTF-8 with the storage prefix ${JSON.stringify(prefix)}, more than the ${MAX_KEY_BYTES} allowed`);
  }
  return joined;
}

/**
 * Orders keys by their UTF-8 bytes (= by code point), the order S3, file and memory storages list in.
 * Differs from `a < b` (UTF-16 code units, the order Azure Blob Storage and azurite list in) only
 * when a character above U+FFFF meets one in U+E000..U+FFFF.
 */
export function compareKeys(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let index = 0; index < length; index++) {
    const unitA = a.charCodeAt(index);
    const unitB = b.charCodeAt(index);
    if (unitA !== unitB) return codePointRank(unitA) - codePointRank(unitB);
  }
  return a.length - b.length;
}

/** Moves surrogates (U+D800..U+DFFF) above U+E000..U+FFFF so that unit order becomes code point order. */
function codePointRank(unit: number): number {
  if (unit >= 0xe000) return unit - 0x800;
  if (unit >= 0xd800) return unit + 0x2000;
  return unit;
}
