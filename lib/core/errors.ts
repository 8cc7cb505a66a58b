/**
 * Error types and option checks shared by every operator and pipeline.
 *
 * Errors carry what a person needs to act: which operator, which option or limit, which value.
 * Options are checked when an operator is created, never later on the data path.
 */

/** An option that cannot work, reported when the operator or pipeline is created. */
export class InvalidOptionError extends Error {
  override readonly name = 'InvalidOptionError';
  readonly owner: string;
  readonly option: string;
  readonly value: unknown;

  constructor(owner: string, option: string, value: unknown, expected: string) {
    super(`${owner}: option ${option} must be ${expected}, got ${describe(value)}`);
    this.owner = owner;
    this.option = option;
    this.value = value;
  }
}

/** A bounded buffer that was full and whose policy is to fail rather than wait or spill. */
export class BufferOverflowError extends Error {
  override readonly name = 'BufferOverflowError';

  constructor(owner: string, option: string, limit: number, hint: string) {
    super(`${owner}: buffer full (${option} = ${limit}); ${hint}`);
  }
}

function describe(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'number' || typeof value === 'boolean' || value === undefined || value === null) {
    return String(value);
  }
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  try {
    return JSON.stringify(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/**
 * Refuses a key of `options` that is not one of `names`, so a misspelt setting is never silently
 * replaced by its default: the `InvalidOptionError` names the key as `<group>.<key>` and lists the
 * settings there are.
 *
 * @example checkKnownKeys('storageSink', 'canalJson', { termintor: '\n' }, ['enableTidbExtension', 'terminator'])
 * // throws: storageSink: option canalJson.termintor must be absent: the canalJson settings are enableTidbExtension, terminator, got "\n"
 */
export function checkKnownKeys(owner: string, group: string, options: object, names: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (!names.includes(key)) {
      throw new InvalidOptionError(owner, `${group}.${key}`, (options as Record<string, unknown>)[key], `absent: the ${group} settings are ${names.join(', ')}`);
    }
  }
}

/** Checks that options[name] is a number in [min, max]; `integer` also requires a whole number. */
export function checkNumber(
  owner: string,
  name: string,
  value: unknown,
  { min = -Infinity, max = Infinity, integer = false, allowInfinity = false } = {},
): number {
  const ok =
    typeof value === 'number' &&
    !Number.isNaN(value) &&
    (Number.isFinite(value) || allowInfinity) &&
    (!integer || !Number.isFinite(value) || Number.isInteger(value)) &&
    value >= min &&
    value <= max;
  if (!ok) {
    const kind = integer ? 'an integer' : 'a number';
    const range =
      max === Infinity ? `>= ${min}` : min === -Infinity ? `<= ${max}` : `in [${min}, ${max}]`;
    throw new InvalidOptionError(owner, name, value, `${kind} ${range}${allowInfinity ? ' (or Infinity)' : ''}`);
  }
  return value as number;
}

/** Checks that a required callback option is a function. */
export function checkFunction<F>(owner: string, name: string, value: F | undefined): F {
  if (typeof value !== 'function') throw new InvalidOptionError(owner, name, value, 'a function');
  return value;
}
