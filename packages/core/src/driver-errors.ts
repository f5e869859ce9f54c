/**
 * What a store may keep of a driver's error. Drivers attach the values they were sending: ioredis the
 * command's arguments, pg the row in `detail`, mysql2 the SQL and its parameters. A `TokenStoreError`'s
 * `cause` is always a copy made here, so no token value reaches a log through an error.
 */

/** Properties an operator needs to tell what went wrong. Everything else a driver attaches is dropped. */
const KEPT_PROPERTIES = [
  'code',
  'errno',
  'syscall',
  'address',
  'port',
  'sqlState',
  'severity',
  'routine',
  'constraint',
  'table',
  'column',
  'schema',
  'fatal',
] as const;

/** Zoho's token format, `1000.<hex>.<hex>`, removed from any message even when the caller gave no secrets. */
const ZOHO_TOKEN = /\b\d{4}\.[0-9a-f]{16,}\.[0-9a-f]{16,}\b/gi;
/** MySQL and MariaDB quote the value that broke a unique key or a character set. */
const QUOTED_VALUE = /((?:Duplicate entry|Incorrect string value:?)\s*)'(?:[^'\\]|\\.)*'/g;
/** Secrets shorter than this are not searched for: they would blank out ordinary words. */
export const MIN_REDACTED_SECRET_LENGTH = 4;
const MAX_DEPTH = 4;

/** Node's `error.code` (or a driver's), as a string; '' when there is none. */
export function driverErrorCode(error: unknown): string {
  if (typeof error !== 'object' || error === null) return '';
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : typeof code === 'number' ? String(code) : '';
}

/** The error's message, or '' for a value that is not an Error-like object. */
export function driverErrorMessage(error: unknown): string {
  if (typeof error !== 'object' || error === null) return typeof error === 'string' ? error : '';
  const message = (error as { message?: unknown }).message;
  return typeof message === 'string' ? message : '';
}

/** Removes every given secret (and anything in Zoho's token format) from a text. */
export function redactText(text: string, secrets: readonly string[]): string {
  let result = text;
  for (const secret of secrets) {
    if (secret.length >= MIN_REDACTED_SECRET_LENGTH) result = result.split(secret).join('[redacted]');
  }
  return result.replace(ZOHO_TOKEN, '[redacted]').replace(QUOTED_VALUE, "$1'[value]'");
}

/**
 * A copy of a driver's error that is safe to log: the same class name and `instanceof Error`, the message
 * with secrets removed, and only the properties in KEPT_PROPERTIES; its own `cause` (and an AggregateError's
 * `errors`) copied the same way. Secrets shorter than MIN_REDACTED_SECRET_LENGTH are not searched for.
 */
export function safeCause(error: unknown, secrets: Iterable<string | null | undefined> = []): Error {
  const values = [...new Set([...secrets].filter((secret): secret is string => typeof secret === 'string'))].sort(
    (a, b) => b.length - a.length, // longest first, so a secret that contains another is removed whole
  );
  return copyError(error, values, 0);
}

function copyError(error: unknown, secrets: readonly string[], depth: number): Error {
  if (typeof error !== 'object' || error === null) {
    return new Error(redactText(typeof error === 'string' ? error : `non-error value (${typeof error})`, secrets));
  }
  const source = error as Record<string, unknown> & { name?: unknown; message?: unknown; stack?: unknown };
  const message = redactText(typeof source.message === 'string' ? source.message : '', secrets);
  const copy = new Error(message);
  const name = typeof source.name === 'string' ? source.name : 'Error';
  Object.defineProperty(copy, 'name', { value: name, enumerable: false, configurable: true, writable: true });
  if (typeof source.stack === 'string') {
    // The stack's first line repeats the message: keep only the frames, under the redacted message.
    const frames = source.stack.split('\n').filter((line) => /^\s+at /.test(line));
    copy.stack = [`${name}: ${message}`, ...frames.map((frame) => redactText(frame, secrets))].join('\n');
  }
  for (const property of KEPT_PROPERTIES) {
    const value = source[property];
    if (typeof value === 'string') (copy as unknown as Record<string, unknown>)[property] = redactText(value, secrets);
    else if (typeof value === 'number' || typeof value === 'boolean') (copy as unknown as Record<string, unknown>)[property] = value;
  }
  if (depth < MAX_DEPTH) {
    if (source.cause !== undefined) {
      Object.defineProperty(copy, 'cause', { value: copyError(source.cause, secrets, depth + 1), enumerable: false, configurable: true });
    }
    if (Array.isArray(source.errors)) {
      (copy as unknown as Record<string, unknown>).errors = source.errors.slice(0, 10).map((inner) => copyError(inner, secrets, depth + 1));
    }
  }
  return copy;
}
