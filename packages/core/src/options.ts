import { TokenStoreError } from './errors.js';

/** Every store's default for `operationTimeoutMs`. */
export const DEFAULT_OPERATION_TIMEOUT_MS = 5000;
/** Every store's default for `maxSaveAttempts`: a save runs again only after losing a race to another writer. */
export const DEFAULT_MAX_SAVE_ATTEMPTS = 5;

function invalidOption(store: string, message: string): TokenStoreError {
  return TokenStoreError.invalidArgument({ store, operation: 'open' }, message);
}

/** The largest delay Node's timers take (about 24.8 days); longer ones fire at once. */
export const MAX_TIMER_MS = 2_147_483_647;

/** The options argument of a store's constructor: a plain object. */
export function checkOptionsObject(options: unknown, store: string): asserts options is Record<string, unknown> {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw invalidOption(store, 'options must be an object');
}

/**
 * Refuses option names the store does not know: a renamed one with a message naming its new name (`renamed`
 * maps old names to new ones, or to a sentence), anything else with the list of known names. Own keys only:
 * an option called `constructor` or `__proto__` is unknown, never "renamed".
 */
export function checkOptionNames(
  options: Record<string, unknown>,
  known: readonly string[],
  store: string,
  renamed: Readonly<Record<string, string>> = {},
): void {
  for (const name of Object.keys(options)) {
    if (known.includes(name)) continue;
    if (Object.hasOwn(renamed, name)) {
      const replacement = renamed[name] as string;
      throw invalidOption(store, replacement.includes(' ') ? `${name}: ${replacement}` : `${name} was renamed to ${replacement}`);
    }
    throw invalidOption(store, `unknown option ${name.slice(0, 80)}; the options are ${known.join(', ')}`);
  }
}

/**
 * A whole number from 1 to `max` (`operationTimeoutMs`, `maxSaveAttempts`, a pool size), or `fallback` when
 * absent. `max` defaults to MAX_TIMER_MS, the longest timer Node can set.
 */
export function positiveIntegerOption(value: unknown, name: string, fallback: number, store: string, max = MAX_TIMER_MS): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > max) {
    throw invalidOption(store, `${name} must be a whole number from 1 to ${max}`);
  }
  return value;
}

/** `operationTimeoutMs`, checked the same way in every store: a whole number of milliseconds, default 5000. */
export function operationTimeoutOption(value: unknown, store: string): number {
  return positiveIntegerOption(value, 'operationTimeoutMs', DEFAULT_OPERATION_TIMEOUT_MS, store);
}

/** `maxSaveAttempts`, checked the same way in every store that retries saves: at least 1, default 5. */
export function maxSaveAttemptsOption(value: unknown, store: string): number {
  return positiveIntegerOption(value, 'maxSaveAttempts', DEFAULT_MAX_SAVE_ATTEMPTS, store, 1000);
}

/** true or false, or `fallback` when absent. */
export function booleanOption(value: unknown, name: string, fallback: boolean, store: string): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalidOption(store, `${name} must be true or false`);
  return value;
}

/**
 * A name that ends up in SQL or in keys (table, schema, key prefix): a string matching `pattern`, or
 * `fallback` when absent. `rule` says in words what the pattern allows, for the message.
 */
export function nameOption(value: unknown, name: string, fallback: string, pattern: RegExp, rule: string, store: string): string {
  if (value === undefined) return fallback;
  // The whole value must match, whatever anchors or flags the pattern has.
  const whole = new RegExp(`^(?:${pattern.source})$`, pattern.flags.replace(/[gy]/g, ''));
  if (typeof value !== 'string' || !whole.test(value)) throw invalidOption(store, `${name} must be ${rule}`);
  return value;
}

/**
 * A connection URL option (`url`): a string the URL parser accepts, with one of `protocols` (`postgres:`).
 * The message never repeats the URL: it may hold a password.
 */
export function urlOption(value: unknown, name: string, protocols: readonly string[], store: string): URL {
  let url: URL | null = null;
  if (typeof value === 'string') {
    try {
      url = new URL(value);
    } catch {
      url = null;
    }
  }
  if (url === null || !protocols.includes(url.protocol)) {
    throw invalidOption(store, `${name} must be a URL starting with ${protocols.map((protocol) => `${protocol}//`).join(' or ')}`);
  }
  return url;
}
