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

/** Zoho's token format, `1000.<hex>.<hex>` (also cut short), removed from any message even when the caller gave no secrets. */
const ZOHO_TOKEN = /\b\d{4}\.[0-9a-f]{8,}(?:\.[0-9a-f]*)?/gi;
/** MySQL and MariaDB quote the value that broke a unique key or a character set. */
const QUOTED_VALUE = /((?:Duplicate entry|Incorrect string value:?)\s*)'(?:[^'\\]|\\.|'')*'/g;
/**
 * Secrets shorter than this cannot be searched for without blanking out ordinary words: when one occurs in
 * a message, the whole message is dropped instead.
 */
export const MIN_REDACTED_SECRET_LENGTH = 4;
/** A start of a secret this long is removed too: drivers cut long values when they quote them (`near '1000.ab…`). */
const MIN_REDACTED_PREFIX = 8;
const MAX_DEPTH = 4;
/**
 * Errors raised by code on the server (a trigger, a stored routine): their text is whatever that code wrote,
 * often the row itself, including values the store was not handling (a stored secret on an update, a row a
 * delete removed). PostgreSQL's RAISE (class P0), MySQL's and MariaDB's SIGNAL (SQLSTATE 45000,
 * ER_SIGNAL_EXCEPTION), SQLite's RAISE in a trigger.
 */
const RAISED_BY_SERVER_CODE = /^(P0\d{3}|45000|ER_SIGNAL_EXCEPTION|SQLITE_CONSTRAINT_TRIGGER)$/;
const RAISED_MESSAGE = '[message removed: raised by a trigger or routine on the server, it may quote row values]';

/** An error name worth keeping: an identifier, never a value. */
const ERROR_NAME = /^[A-Za-z_$][\w$.]{0,63}$/;

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

/**
 * The forms a driver or an HTTP client may quote a value in: as it is, backslash-escaped, with SQL's doubled
 * quotes, or percent-encoded as in a URL or a form body (`encodeURIComponent`, and the form's `+` for a space).
 */
function quotedForms(secret: string): string[] {
  const forms = [secret, secret.replace(/\\/g, '\\\\').replace(/'/g, "\\'"), secret.replace(/'/g, "''")];
  try {
    forms.push(encodeURIComponent(secret), new URLSearchParams({ v: secret }).toString().slice(2));
  } catch {
    // A lone surrogate cannot be percent-encoded; no client could have sent it encoded either.
  }
  return [...new Set(forms)];
}

/**
 * Removes every given secret (whole, escaped, or any start of it at least MIN_REDACTED_PREFIX long) and
 * anything in Zoho's token format from a text. Overlapping matches are removed as one.
 */
export function redactText(text: string, secrets: readonly string[]): string {
  if (secrets.some((secret) => secret.length < MIN_REDACTED_SECRET_LENGTH && text.includes(secret))) {
    return '[message removed: it may hold a value]';
  }
  const ranges: Array<[number, number]> = [];
  for (const secret of secrets) {
    for (const form of quotedForms(secret)) {
      const probe = form.slice(0, Math.min(form.length, MIN_REDACTED_PREFIX));
      for (let at = text.indexOf(probe); at !== -1; at = text.indexOf(probe, at + 1)) {
        let length = 0;
        while (length < form.length && text[at + length] === form[length]) length++;
        if (length === form.length || length >= MIN_REDACTED_PREFIX) ranges.push([at, at + length]);
      }
    }
  }
  ranges.sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const [from, to] of ranges) {
    const last = merged[merged.length - 1];
    if (last !== undefined && from <= last[1]) last[1] = Math.max(last[1], to);
    else merged.push([from, to]);
  }
  let result = '';
  let position = 0;
  for (const [from, to] of merged) {
    result += `${text.slice(position, from)}[redacted]`;
    position = to;
  }
  result += text.slice(position);
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
  try {
    return copyErrorFields(error, secrets, depth);
  } catch {
    // A getter that throws, a revoked Proxy: keep nothing rather than fail while reporting a failure.
    return new Error('the driver error could not be copied safely');
  }
}

function copyErrorFields(error: unknown, secrets: readonly string[], depth: number): Error {
  if (typeof error !== 'object' || error === null) {
    return new Error(redactText(typeof error === 'string' ? error : `non-error value (${typeof error})`, secrets));
  }
  const source = error as Record<string, unknown> & { name?: unknown; message?: unknown; stack?: unknown };
  const raised = [source.code, source.sqlState].some((code) => typeof code === 'string' && RAISED_BY_SERVER_CODE.test(code));
  const message = raised ? RAISED_MESSAGE : redactText(typeof source.message === 'string' ? source.message : '', secrets);
  const copy = new Error(message);
  const name = typeof source.name === 'string' && ERROR_NAME.test(source.name) ? source.name : 'Error';
  Object.defineProperty(copy, 'name', { value: name, enumerable: false, configurable: true, writable: true });
  const stack = source.stack;
  if (typeof stack === 'string') {
    // The stack's first line repeats the message: keep only the frames, under the redacted message.
    const frames = stack.split('\n').filter((line) => /^\s+at /.test(line));
    copy.stack = [`${name}: ${message}`, ...frames.map((frame) => redactText(frame, secrets))].join('\n');
  } else {
    copy.stack = `${name}: ${message}`;
  }
  for (const property of KEPT_PROPERTIES) {
    const value = source[property];
    if (typeof value === 'string') (copy as unknown as Record<string, unknown>)[property] = redactText(value, secrets);
    else if (typeof value === 'number' || typeof value === 'boolean') (copy as unknown as Record<string, unknown>)[property] = value;
  }
  if (depth < MAX_DEPTH) {
    const cause = source.cause;
    if (cause !== undefined && cause !== error) {
      Object.defineProperty(copy, 'cause', { value: copyError(cause, secrets, depth + 1), enumerable: false, configurable: true });
    }
    const errors = source.errors;
    if (Array.isArray(errors)) {
      (copy as unknown as Record<string, unknown>).errors = errors.slice(0, 10).map((inner) => copyError(inner, secrets, depth + 1));
    }
  }
  return copy;
}
