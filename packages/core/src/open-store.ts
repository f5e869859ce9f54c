import { fileURLToPath } from 'node:url';
import { TokenStoreError } from './errors.js';
import { MemoryTokenStore } from './memory-store.js';
import type { TokenStore } from './store.js';

/**
 * Store URLs: one string names a store and where it keeps its tokens (`sqlite:./zohooauth.db`,
 * `postgres://user:password@host/db?table=tokens`). Core never depends on a store package: each one is
 * loaded by name when its URL is opened, so an application installs only the stores it uses.
 */
export interface OpenTokenStoreOptions {
  /**
   * Loads a store package by name. Default `(name) => import(name)`, which resolves from `@crm/core`'s own
   * folder; pass `(name) => import(name)` from your module so packages resolve from your dependencies.
   */
  load?: (packageName: string) => Promise<unknown>;
}

const STORE = 'openTokenStore';

type ParamKind = 'string' | 'integer' | 'boolean';

/**
 * Checks the text of a driver parameter and returns the text to pass on: the same, or text the driver reads
 * as the user meant (pg reads `ssl=false` as on, `ssl=0` as off). Throws INVALID_ARGUMENT. The driver reads
 * the value its own way, often with no check at all (ioredis runs `SELECT NaN`, mysql2 ignores an unknown
 * flag): only values known to mean something pass.
 */
type DriverParam = (value: string, name: string) => string;

interface Scheme {
  /** The schemes, with their colon: `postgres:`. */
  protocols: readonly string[];
  /** The package to load, or null for a store in core. */
  packageName: string | null;
  exportName: string;
  /** Query parameters that become store options, with how their text is read. */
  storeParams: Readonly<Record<string, ParamKind>>;
  /** Query parameters the driver reads from the URL the store passes on, with their checks. */
  driverParams: Readonly<Record<string, DriverParam>>;
  /** Checks the parameters against each other and the rest of the URL (`/5?db=3`). */
  checkServerUrl?: (url: URL, protocol: string, driverValues: ReadonlyMap<string, string>) => void;
  /** `server`: the URL (without store parameters) goes to the store as `url`; `path`: the text after the scheme is a file path. */
  target: 'server' | 'path' | 'none';
  /** The option naming the file, for `path` schemes. */
  pathOption?: string;
  example: string;
}

const SERVER_PARAMS = { operationTimeoutMs: 'integer', maxSaveAttempts: 'integer' } as const;

/** The longest delay a Node.js timer keeps: a longer one fires at once. */
const MAX_TIMER_MS = 2147483647;
/** Redis has 16 databases unless configured otherwise; a number past this is a typo, not a setup. */
const MAX_REDIS_DB = 65535;

const text: DriverParam = (value) => value;

function wholeNumber(min: number, max: number): DriverParam {
  return (value, name) => {
    if (!/^[0-9]{1,10}$/.test(value) || Number(value) < min || Number(value) > max) {
      throw invalid(`the parameter ${name} must be a whole number from ${min} to ${max}`);
    }
    return value;
  };
}

function oneOf(...values: string[]): DriverParam {
  return (value, name) => {
    if (!values.includes(value)) throw invalid(`the parameter ${name} must be one of ${values.join(', ')}`);
    return value;
  };
}

/** true/false or 1/0, which the store or driver reads as the same switch. */
const onOff: DriverParam = (value, name) => {
  if (!['true', 'false', '1', '0'].includes(value)) throw invalid(`the parameter ${name} must be true or false (or 1 or 0)`);
  return value;
};

/** Set in the URL's user:password part; a query copy is read differently by each driver, or not at all. */
const CREDENTIAL_PARAMS: Readonly<Record<string, string>> = { user: 'a user', username: 'a user', password: 'a password' };

const PG_DRIVER_PARAMS: Record<string, DriverParam> = {
  host: text,
  port: wholeNumber(1, 65535),
  // pg-connection-string turns true and 1 into on, 0 into off, and leaves any other text, which reads as on.
  ssl: (value, name) => (onOff(value, name) === 'false' ? '0' : value),
  sslmode: oneOf('disable', 'prefer', 'require', 'verify-ca', 'verify-full', 'no-verify'),
  sslcert: text,
  sslkey: text,
  sslrootcert: text,
  sslnegotiation: oneOf('postgres', 'direct'),
  // pg reads only the text true as on.
  uselibpqcompat: (value, name) => {
    if (value !== 'true' && value !== 'false') throw invalid(`the parameter ${name} must be true or false`);
    return value;
  },
  application_name: text,
  fallback_application_name: text,
  options: text,
  client_encoding: text,
};

/** pg reads a query host or port over the URL's own without a word: one of them would be ignored. */
function checkPostgresUrl(url: URL, protocol: string, driverValues: ReadonlyMap<string, string>): void {
  if (url.hostname !== '' && driverValues.has('host')) {
    throw invalid(
      `the store URL gives the host twice, in the URL and as host=; give it once (${protocol}///database?host=/var/run/postgresql for a socket)`,
    );
  }
  if (url.port !== '' && driverValues.has('port'))
    throw invalid('the store URL gives the port twice, in the URL and as port=; give it once');
  const sslOff = driverValues.get('ssl') === '0' || driverValues.get('sslmode') === 'disable';
  if (driverValues.get('sslnegotiation') === 'direct' && sslOff) {
    throw invalid('sslnegotiation=direct needs SSL: drop ssl=0 or sslmode=disable, or use sslnegotiation=postgres');
  }
  if (driverValues.get('uselibpqcompat') === 'true' && driverValues.get('sslmode') === 'verify-ca' && !driverValues.has('sslrootcert')) {
    throw invalid('sslmode=verify-ca needs sslrootcert, the certificate of the authority to trust (or use sslmode=verify-full)');
  }
}

const REDIS_DRIVER_PARAMS: Record<string, DriverParam> = {
  db: wholeNumber(0, MAX_REDIS_DB),
  family: oneOf('0', '4', '6'),
  // Redis refuses a client name with spaces, newlines or other special characters.
  connectionName: (value, name) => {
    if (!/^[!-~]+$/.test(value)) throw invalid(`the parameter ${name} must be printable characters without spaces (ASCII ! to ~)`);
    return value;
  },
};

/** ioredis reads the path as the database number (parseInt, so `/abc` selects NaN) and prefers it to `db=`. */
function checkRedisUrl(url: URL, protocol: string, driverValues: ReadonlyMap<string, string>): void {
  if (url.pathname === '' || url.pathname === '/') return;
  const path = /^\/([0-9]{1,5})$/.exec(url.pathname)?.[1];
  if (path === undefined || Number(path) > MAX_REDIS_DB) {
    throw invalid(
      `the path of a ${protocol}// URL is the database number, a whole number from 0 to ${MAX_REDIS_DB} (${protocol}//host:6379/2)`,
    );
  }
  const db = driverValues.get('db');
  if (db !== undefined) throw invalid(`the store URL gives the database number twice, as /${path} and as db=${db}; give it once`);
}

/** mysql2's SSL profiles, by name (ssl_profiles.js). */
const MYSQL_SSL_PROFILES = ['Amazon RDS'];
const TLS_VERSIONS = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];
/** What an `ssl` object in a URL may set: no private key or passphrase, which a URL would show. */
const MYSQL_SSL_KEYS: Readonly<Record<string, (value: unknown) => boolean>> = {
  rejectUnauthorized: (value) => typeof value === 'boolean',
  verifyIdentity: (value) => typeof value === 'boolean',
  minVersion: (value) => TLS_VERSIONS.includes(value as string),
  maxVersion: (value) => TLS_VERSIONS.includes(value as string),
  ca: (value) => typeof value === 'string' && value !== '',
  servername: (value) => typeof value === 'string' && value !== '',
};
const MYSQL_SSL_RULES: Readonly<Record<string, string>> = {
  rejectUnauthorized: 'true or false',
  verifyIdentity: 'true or false',
  minVersion: `one of ${TLS_VERSIONS.join(', ')}`,
  maxVersion: `one of ${TLS_VERSIONS.join(', ')}`,
  ca: 'a certificate in PEM text',
  servername: 'a host name',
};

/** The store reads the value as JSON when it can, else as text: a profile name, `false` or an options object. */
const mysqlSsl: DriverParam = (value, name) => {
  if (value === 'false' || MYSQL_SSL_PROFILES.includes(value)) return value;
  let options: unknown;
  try {
    options = JSON.parse(value);
  } catch {
    options = undefined;
  }
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalid(
      `the parameter ${name} must be the profile name ${MYSQL_SSL_PROFILES.join(', ')}, false or a JSON object such as {"rejectUnauthorized":true}`,
    );
  }
  for (const [key, setting] of Object.entries(options)) {
    const check = Object.hasOwn(MYSQL_SSL_KEYS, key) ? MYSQL_SSL_KEYS[key] : undefined;
    if (check === undefined) {
      throw invalid(
        `${name} takes no ${key.slice(0, 40)}; it takes ${Object.keys(MYSQL_SSL_KEYS).join(', ')} (for a client key, pass a pool of your own)`,
      );
    }
    if (!check(setting)) throw invalid(`${name}: ${key} must be ${MYSQL_SSL_RULES[key]}`);
  }
  return value;
};

/** mysql2's client flags (constants/client.js): it skips a name it does not know, so a typo would change nothing. */
const MYSQL_CLIENT_FLAGS = [
  'LONG_PASSWORD',
  'FOUND_ROWS',
  'LONG_FLAG',
  'CONNECT_WITH_DB',
  'NO_SCHEMA',
  'COMPRESS',
  'ODBC',
  'LOCAL_FILES',
  'IGNORE_SPACE',
  'PROTOCOL_41',
  'INTERACTIVE',
  'SSL',
  'IGNORE_SIGPIPE',
  'TRANSACTIONS',
  'RESERVED',
  'SECURE_CONNECTION',
  'MULTI_STATEMENTS',
  'MULTI_RESULTS',
  'PS_MULTI_RESULTS',
  'PLUGIN_AUTH',
  'CONNECT_ATTRS',
  'PLUGIN_AUTH_LENENC_CLIENT_DATA',
  'CAN_HANDLE_EXPIRED_PASSWORDS',
  'SESSION_TRACK',
  'CLIENT_QUERY_ATTRIBUTES',
  'SSL_VERIFY_SERVER_CERT',
  'REMEMBER_OPTIONS',
  'MULTI_FACTOR_AUTHENTICATION',
];

/** `FOUND_ROWS,-COMPRESS`: names mysql2 adds, or with `-` removes, read as it reads them. */
const mysqlFlags: DriverParam = (value, name) => {
  for (const written of value.toUpperCase().split(/\s*,+\s*/)) {
    const flag = written.startsWith('-') ? written.slice(1) : written;
    if (flag !== '' && !MYSQL_CLIENT_FLAGS.includes(flag)) {
      throw invalid(
        `${name}: ${flag.slice(0, 40)} is not a MySQL client flag; write names such as FOUND_ROWS or -FOUND_ROWS, separated by commas`,
      );
    }
  }
  return value;
};

const MYSQL_DRIVER_PARAMS: Record<string, DriverParam> = {
  ssl: mysqlSsl,
  socketPath: text,
  localAddress: text,
  connectionLimit: wholeNumber(1, MAX_TIMER_MS),
  maxIdle: wholeNumber(0, MAX_TIMER_MS),
  idleTimeout: wholeNumber(0, MAX_TIMER_MS),
  queueLimit: wholeNumber(0, MAX_TIMER_MS),
  waitForConnections: onOff,
  enableKeepAlive: onOff,
  keepAliveInitialDelay: wholeNumber(0, MAX_TIMER_MS),
  compress: onOff,
  insecureAuth: onOff,
  enableCleartextPlugin: onOff,
  flags: mysqlFlags,
  maxPreparedStatements: wholeNumber(1, MAX_TIMER_MS),
};

const SCHEMES: readonly Scheme[] = [
  {
    protocols: ['memory:'],
    packageName: null,
    exportName: 'MemoryTokenStore',
    storeParams: {},
    driverParams: {},
    target: 'none',
    example: 'memory:',
  },
  {
    protocols: ['sqlite:'],
    packageName: '@crm/store-sqlite',
    exportName: 'SQLiteTokenStore',
    storeParams: { table: 'string', operationTimeoutMs: 'integer', journalMode: 'string', readonly: 'boolean', createSchema: 'boolean' },
    driverParams: {},
    target: 'path',
    pathOption: 'filename',
    example: 'sqlite:./zohooauth.db',
  },
  {
    protocols: ['file:'],
    packageName: '@crm/store-file',
    exportName: 'FileTokenStore',
    storeParams: { operationTimeoutMs: 'integer', staleLockMs: 'integer' },
    driverParams: {},
    target: 'path',
    pathOption: 'filename',
    example: 'file:./sdk_tokens.txt',
  },
  {
    protocols: ['postgres:', 'postgresql:'],
    packageName: '@crm/store-postgres',
    exportName: 'PostgresTokenStore',
    storeParams: { schema: 'string', table: 'string', createSchema: 'boolean', ...SERVER_PARAMS },
    // What pg reads from a connection string and that leaves the store's own timeouts and row handling alone.
    driverParams: PG_DRIVER_PARAMS,
    checkServerUrl: checkPostgresUrl,
    target: 'server',
    example: 'postgres://user:password@host:5432/database',
  },
  {
    protocols: ['redis:', 'rediss:'],
    packageName: '@crm/store-redis',
    exportName: 'RedisTokenStore',
    storeParams: { prefix: 'string', ...SERVER_PARAMS },
    // What ioredis reads from a URL's query (it takes any option there; these are the connection ones).
    driverParams: REDIS_DRIVER_PARAMS,
    checkServerUrl: checkRedisUrl,
    target: 'server',
    example: 'redis://localhost:6379',
  },
  {
    protocols: ['mysql:', 'mariadb:'],
    packageName: '@crm/store-mysql',
    exportName: 'MySQLTokenStore',
    storeParams: { table: 'string', createSchema: 'boolean', ...SERVER_PARAMS },
    // mysql2 connection and pool options that leave the store's row handling, charset and timeouts alone.
    driverParams: MYSQL_DRIVER_PARAMS,
    target: 'server',
    example: 'mysql://user:password@host:3306/database',
  },
];

const ACCEPTED = SCHEMES.map((scheme) => scheme.example).join(', ');

function invalid(message: string, cause?: unknown): TokenStoreError {
  return TokenStoreError.invalidArgument({ store: STORE, operation: 'open', cause }, message);
}

/** Query parameter names that carry a secret: redactUrl hides their values too. */
const SECRET_PARAM = /pass|secret|token/i;

/**
 * The URL with its password (and the value of any query parameter such as `password`) replaced by `***`,
 * otherwise as given. Safe to print or log. Text that is not a URL but holds `user:password@` loses
 * everything between `//` and its last `@`.
 */
export function redactUrl(url: string): string {
  if (typeof url !== 'string') return '';
  const match = /^([A-Za-z][A-Za-z0-9+.-]*:)(\/\/)?(.*)$/s.exec(url);
  if (match === null) return url;
  const [, scheme, slashes = '', rest = ''] = match;
  let parsed: URL | null = null;
  try {
    parsed = new URL(url);
  } catch {
    parsed = null;
  }
  let authority = '';
  let tail = rest;
  if (slashes !== '') {
    if (parsed === null) {
      // The parser could not tell where the password ends: hide all that could be part of it.
      const at = rest.lastIndexOf('@');
      if (at !== -1) return `${scheme}//***@${redactQuery(rest.slice(at + 1))}`;
    }
    // The URL parser ends the authority at the first `/`, `?` or `#` (and `\` in special schemes), and
    // splits user information from the host at the authority's last `@`.
    const end = rest.search(parsed !== null && isSpecial(parsed.protocol) ? /[/?#\\]/ : /[/?#]/);
    authority = end === -1 ? rest : rest.slice(0, end);
    tail = end === -1 ? '' : rest.slice(end);
    const at = authority.lastIndexOf('@');
    if (at !== -1) {
      const userInfo = authority.slice(0, at);
      const colon = userInfo.indexOf(':');
      if (colon !== -1 && colon < userInfo.length - 1) authority = `${userInfo.slice(0, colon)}:***${authority.slice(at)}`;
    } else if (authority.includes(':') && tail.includes('@')) {
      // `user:12/ab@host` parses as host `user`, port 12: a password holding an unencoded `/`, `?` or `#`.
      // Hide everything up to the last `@` (a port and path too, when the `@` was only in the query).
      const colon = authority.indexOf(':');
      return `${scheme}//${authority.slice(0, colon)}:***${rest.slice(rest.lastIndexOf('@'))}`;
    }
  }
  return `${scheme}${slashes}${authority}${redactQuery(tail)}`;
}

function isSpecial(protocol: string): boolean {
  return ['http:', 'https:', 'ws:', 'wss:', 'ftp:', 'file:'].includes(protocol);
}

/** `...?password=x&db=1#frag` -> `...?password=***&db=1#frag`. */
function redactQuery(text: string): string {
  const question = text.indexOf('?');
  if (question === -1) return text;
  const hash = text.indexOf('#', question);
  const query = hash === -1 ? text.slice(question + 1) : text.slice(question + 1, hash);
  const redacted = query
    .split('&')
    .map((pair) => {
      const equals = pair.indexOf('=');
      if (equals === -1) return pair;
      let name = pair.slice(0, equals);
      try {
        name = decodeURIComponent(name.replace(/\+/g, ' '));
      } catch {
        // an undecodable name is checked as written
      }
      return SECRET_PARAM.test(name) && equals < pair.length - 1 ? `${pair.slice(0, equals)}=***` : pair;
    })
    .join('&');
  return `${text.slice(0, question + 1)}${redacted}${hash === -1 ? '' : text.slice(hash)}`;
}

/** The store, its package and the options to construct it with, read from a URL. Throws INVALID_ARGUMENT. */
interface StorePlan {
  scheme: Scheme;
  options: Record<string, unknown>;
}

function planStore(url: string): StorePlan {
  if (typeof url !== 'string' || url.trim() === '') throw invalid(`the store URL must be a non-empty string such as ${ACCEPTED}`);
  if (url.includes('\0')) throw invalid('the store URL must not contain NUL');
  const protocol = /^[A-Za-z][A-Za-z0-9+.-]*:/.exec(url)?.[0].toLowerCase();
  const scheme = protocol === undefined ? undefined : SCHEMES.find((candidate) => candidate.protocols.includes(protocol));
  if (scheme === undefined || protocol === undefined) {
    const named = protocol === undefined ? 'has no scheme' : `has the unknown scheme ${protocol.slice(0, 40)}`;
    throw invalid(`the store URL ${named}; the accepted forms are ${ACCEPTED}`);
  }
  switch (scheme.target) {
    case 'none':
      if (url.length > protocol.length) throw invalid(`${protocol} takes nothing after the scheme; write ${scheme.example}`);
      return { scheme, options: {} };
    case 'path':
      return { scheme, options: pathOptions(scheme, protocol, url.slice(protocol.length)) };
    case 'server':
      return { scheme, options: serverOptions(scheme, protocol, url) };
  }
}

/** `sqlite:./a.db?table=t`, `sqlite::memory:`, `sqlite:///abs/a.db`, `file:sdk_tokens.txt`. */
function pathOptions(scheme: Scheme, protocol: string, rest: string): Record<string, unknown> {
  const question = rest.indexOf('?');
  const written = question === -1 ? rest : rest.slice(0, question);
  const options = storeOptions(scheme, protocol, new URLSearchParams(question === -1 ? '' : rest.slice(question + 1)));
  let filename = written;
  if (written.startsWith('//')) {
    // The URL form: `sqlite:///abs/path` (empty host) or `sqlite://localhost/abs/path`, percent-encoded.
    try {
      filename = fileURLToPath(`file:${written}`);
    } catch (error) {
      throw invalid(
        `${protocol}// must be followed by an absolute path (${protocol}///var/lib/tokens) or written without // (${scheme.example})`,
        error,
      );
    }
  }
  if (filename === '') throw invalid(`${protocol} needs a file path, as in ${scheme.example}`);
  return { [scheme.pathOption as string]: filename, ...options };
}

/** `postgres://...?table=t`: the store's parameters become options, the driver's stay in the URL passed on. */
function serverOptions(scheme: Scheme, protocol: string, url: string): Record<string, unknown> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // No cause: the parser's error keeps the URL it was given, password and all.
    throw invalid(
      `the store URL is not a valid ${protocol} URL; write it as ${scheme.example} (percent-encode @, :, / and # in the password)`,
    );
  }
  if (!url.slice(protocol.length).startsWith('//')) throw invalid(`a ${protocol} URL starts with ${protocol}//, as in ${scheme.example}`);
  const driverValues = new Map<string, string>();
  const options = storeOptions(scheme, protocol, parsed.searchParams, driverValues);
  scheme.checkServerUrl?.(parsed, protocol, driverValues);
  const storeNames = Object.keys(options);
  const rewritten = [...driverValues].filter(([name, value]) => parsed.searchParams.get(name) !== value);
  if (storeNames.length === 0 && rewritten.length === 0) return { ...options, url };
  for (const name of storeNames) parsed.searchParams.delete(name);
  for (const [name, value] of rewritten) parsed.searchParams.set(name, value);
  return { ...options, url: parsed.href };
}

/**
 * The store's own query parameters as typed options; the driver's, checked, go into `driverValues` as they are
 * to be passed on. Unknown, repeated or empty parameters, and credentials, are refused.
 */
function storeOptions(
  scheme: Scheme,
  protocol: string,
  params: URLSearchParams,
  driverValues = new Map<string, string>(),
): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  const seen = new Set<string>();
  for (const [name, value] of params) {
    const shown = name.slice(0, 60);
    if (seen.has(name)) throw invalid(`the store URL gives the parameter ${shown} more than once`);
    seen.add(name);
    const kind = Object.hasOwn(scheme.storeParams, name) ? scheme.storeParams[name] : undefined;
    const driverParam = Object.hasOwn(scheme.driverParams, name) ? scheme.driverParams[name] : undefined;
    if (kind === undefined && driverParam === undefined) {
      if (scheme.target === 'server' && Object.hasOwn(CREDENTIAL_PARAMS, name)) {
        throw invalid(
          `the store URL gives ${CREDENTIAL_PARAMS[name]} as the query parameter ${name}; put it in the URL's user:password part, percent-encoded, as in ${scheme.example}`,
        );
      }
      throw invalid(`${urlKind(scheme, protocol)} takes no parameter ${shown}; it takes ${describeParams(scheme)}`);
    }
    if (value === '') throw invalid(`the parameter ${name} has no value`);
    if (kind !== undefined) options[name] = readParam(name, kind, value);
    else if (driverParam !== undefined) driverValues.set(name, driverParam(value, name));
  }
  return options;
}

/** `a postgres:// URL`, `a sqlite: URL`: how messages name the URL without repeating it. */
function urlKind(scheme: Scheme, protocol: string): string {
  return `a ${protocol}${scheme.target === 'server' ? '//' : ''} URL`;
}

function describeParams(scheme: Scheme): string {
  const own = Object.keys(scheme.storeParams);
  if (own.length === 0) return 'none';
  const driverNames = Object.keys(scheme.driverParams);
  const driver = driverNames.length === 0 ? '' : ` and the driver's ${driverNames.join(', ')}`;
  return `the store's ${own.join(', ')}${driver}`;
}

function readParam(name: string, kind: ParamKind, value: string): unknown {
  switch (kind) {
    case 'string':
      return value;
    case 'integer':
      if (!/^[0-9]{1,15}$/.test(value)) throw invalid(`the parameter ${name} must be a whole number`);
      return Number(value);
    case 'boolean':
      if (value === 'true' || value === '1') return true;
      if (value === 'false' || value === '0') return false;
      throw invalid(`the parameter ${name} must be true or false`);
  }
}

/** What a store URL names, read without loading or opening anything. */
export interface StoreUrlTarget {
  /** The package that holds the store, or null for `memory:` (in `@crm/core`). */
  packageName: string | null;
  /** The store class: `SQLiteTokenStore`, `PostgresTokenStore`, ... */
  storeName: string;
  /**
   * The options `openTokenStore` gives the store's constructor: `filename`, or `url` without the store's
   * parameters, plus those parameters typed (`table`, `operationTimeoutMs`, ...). A `url` may hold a
   * password: show `redactUrl` of the URL instead.
   */
  options: Record<string, unknown>;
}

/** Reads a store URL as `openTokenStore` does, without loading or opening anything; refuses it the same way. */
export function parseStoreUrl(url: string): StoreUrlTarget {
  const plan = planStore(url);
  return { packageName: plan.scheme.packageName, storeName: plan.scheme.exportName, options: plan.options };
}

const defaultLoad = (name: string): Promise<unknown> => import(name);

/** True when `error` says that `packageName` itself is not installed (not one of its files or dependencies). */
function isMissingPackage(error: unknown, packageName: string): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') return false;
  const message = error instanceof Error ? error.message : String((error as { message?: unknown }).message);
  return message.includes(`'${packageName}'`) || message.includes(`"${packageName}"`);
}

type StoreClass = new (options: Record<string, unknown>) => TokenStore;

async function loadStoreClass(scheme: Scheme, load: (name: string) => Promise<unknown>): Promise<StoreClass> {
  const packageName = scheme.packageName as string;
  let loaded: unknown;
  try {
    loaded = await load(packageName);
  } catch (error) {
    if (isMissingPackage(error, packageName)) {
      throw invalid(`${urlKind(scheme, scheme.protocols[0] as string)} needs ${packageName}: npm install ${packageName}`, error);
    }
    throw TokenStoreError.failure(
      { store: STORE, operation: 'open', cause: error },
      `${packageName} is installed but could not be loaded (see the cause); reinstall it with npm install ${packageName}`,
    );
  }
  const found = exportOf(loaded, scheme.exportName) ?? exportOf((loaded as { default?: unknown } | null)?.default, scheme.exportName);
  if (found === undefined) {
    throw TokenStoreError.failure(
      { store: STORE, operation: 'open' },
      `${packageName} does not export ${scheme.exportName}; install a version that does with npm install ${packageName}@latest`,
    );
  }
  return found;
}

function exportOf(module: unknown, name: string): StoreClass | undefined {
  if ((typeof module !== 'object' && typeof module !== 'function') || module === null) return undefined;
  const value = (module as Record<string, unknown>)[name];
  return typeof value === 'function' ? (value as StoreClass) : undefined;
}

/**
 * Opens the store a URL names: `memory:`, `sqlite:<path>` (`sqlite::memory:`, `sqlite:///abs/path`),
 * `file:<path>` (Zoho's sdk_tokens.txt), `postgres://` or `postgresql://`, `redis://` or `rediss://`,
 * `mysql://` or `mariadb://`. Query parameters set store options (`table`, `schema`, `prefix`,
 * `operationTimeoutMs`, ...); the rest of the URL goes to the store's driver. The store package is loaded
 * when needed; a missing one is INVALID_ARGUMENT naming what to install. No message holds the URL's password.
 */
export async function openTokenStore(url: string, options: OpenTokenStoreOptions = {}): Promise<TokenStore> {
  if (typeof options !== 'object' || options === null) throw invalid('options must be an object');
  const load = options.load ?? defaultLoad;
  if (typeof load !== 'function') throw invalid('options.load must be a function');
  const plan = planStore(url);
  if (plan.scheme.packageName === null) return new MemoryTokenStore();
  const StoreClass = await loadStoreClass(plan.scheme, load);
  // A store's constructor checks its options and throws errors without secrets: they pass through.
  return new StoreClass(plan.options);
}
