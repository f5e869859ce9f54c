/**
 * What a store's backend holds, inspected over a connection of its own through the driver the store package
 * uses, without opening the store (which could create a table or file): whether it answers, whether its table,
 * file or key prefix is there, its schema and permissions. `doctor` prints these checks; the token commands
 * use them to refuse storage that is not there.
 */
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { TOKEN_COLUMNS } from '@crm/core/store-kit';
import { checkStorePackage, loadDriver, mysqlConnect, pgConnect, redisConnect, type StoreLocation } from './conformance-url-options.js';

export type Status = 'ok' | 'warn' | 'fail';

export interface Check {
  status: Status;
  name: string;
  detail: string;
}

/** What the backend probe found: the checks so far, whether it answered, whether the storage exists yet. */
export interface Probe {
  checks: Check[];
  reachable: boolean;
  storagePresent: boolean;
}

/** The columns a token table must have; `api_domain` may be missing (the store adds it when it opens). */
const ZOHO_COLUMNS: readonly string[] = TOKEN_COLUMNS.filter((column) => column !== 'api_domain');
const PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE'];

const ms = (started: number) => `${Math.round(performance.now() - started)} ms`;

/** A driver's error as one line: its code and message, the URL's password removed should a driver ever quote it. */
function describe(error: unknown, url: string): string {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  let text = `${typeof code === 'string' ? `${code}: ` : ''}${typeof message === 'string' ? message : String(error)}`;
  try {
    const password = decodeURIComponent(new URL(url).password);
    if (password.length > 0) text = text.split(password).join('***');
  } catch {}
  return text.split('\n')[0] as string;
}

/** The file's mode (group or others may read it: warn) and whether this user may write it. */
function fileChecks(filename: string): Check[] {
  const mode = statSync(filename).mode & 0o777;
  const shown = `0${mode.toString(8)}`;
  const checks: Check[] =
    (mode & 0o077) === 0
      ? [{ status: 'ok', name: 'permissions', detail: `mode ${shown}: only its owner can read it` }]
      : [
          {
            status: 'warn',
            name: 'permissions',
            detail: `mode ${shown}: readable by group or others, and it holds secrets; run chmod 600 ${filename}`,
          },
        ];
  try {
    accessSync(filename, constants.R_OK | constants.W_OK);
  } catch {
    checks.push({ status: 'fail', name: 'permissions', detail: `this user cannot read and write ${filename}` });
  }
  return checks;
}

/** A file the store has not created yet: fine when its folder exists (the first save creates it). */
function absentFile(filename: string): Probe {
  if (!existsSync(dirname(filename))) {
    return {
      reachable: false,
      storagePresent: false,
      checks: [{ status: 'fail', name: 'connectivity', detail: `the folder ${dirname(filename)} does not exist` }],
    };
  }
  return {
    reachable: true,
    storagePresent: false,
    checks: [
      { status: 'ok', name: 'connectivity', detail: `the folder ${dirname(filename)} exists` },
      { status: 'warn', name: 'schema', detail: `${filename} does not exist yet; the first save creates it` },
    ],
  };
}

interface SqliteDatabase {
  prepare(sql: string): { all(...values: unknown[]): Record<string, unknown>[] };
  close(): void;
}

function probeSqlite(location: StoreLocation): Probe {
  const filename = location.filename as string;
  if (!existsSync(filename)) return absentFile(filename);
  const table = location.table ?? 'oauthtoken';
  const started = performance.now();
  const Database = loadDriver<new (file: string, options: Record<string, unknown>) => SqliteDatabase>(
    '@crm/store-sqlite',
    'better-sqlite3',
  );
  let database: SqliteDatabase;
  try {
    database = new Database(filename, { readonly: true, fileMustExist: true });
    database.prepare('SELECT count(*) FROM sqlite_master').all();
  } catch (error) {
    return {
      reachable: false,
      storagePresent: false,
      checks: [{ status: 'fail', name: 'connectivity', detail: `cannot open ${filename}: ${describe(error, '')}` }],
    };
  }
  const checks: Check[] = [{ status: 'ok', name: 'connectivity', detail: `opened ${filename} in ${ms(started)}` }];
  try {
    const columns = database
      .prepare('SELECT name FROM pragma_table_info(?)')
      .all(table)
      .map((row) => String(row.name));
    if (columns.length === 0) {
      checks.push({ status: 'warn', name: 'schema', detail: `no table ${table} yet; the store creates it when it opens` });
      checks.push(...fileChecks(filename));
      return { reachable: true, storagePresent: false, checks };
    }
    const uniqueUser = database
      .prepare(
        'SELECT il.name FROM pragma_index_list(?) il, pragma_index_info(il.name) ii WHERE il."unique" = 1 AND ii.name = \'user_name\'',
      )
      .all(table);
    checks.push(columnCheck(table, columns, uniqueUser.length > 0, 'the store adds it when it opens'));
  } finally {
    database.close();
  }
  checks.push(...fileChecks(filename));
  return { reachable: true, storagePresent: true, checks };
}

/** Zoho's columns present (api_domain may be added later), and the unique user name index. */
function columnCheck(table: string, columns: string[], uniqueUserName: boolean, addedBy: string): Check {
  const missing = ZOHO_COLUMNS.filter((column) => !columns.includes(column));
  if (missing.length > 0) return { status: 'fail', name: 'schema', detail: `table ${table} lacks the columns ${missing.join(', ')}` };
  const notes: string[] = [];
  if (!columns.includes('api_domain')) notes.push(`no api_domain column (${addedBy})`);
  if (!uniqueUserName) notes.push(`no unique index on user_name (${addedBy})`);
  if (notes.length > 0) return { status: 'warn', name: 'schema', detail: `table ${table} has Zoho's columns; ${notes.join('; ')}` };
  return { status: 'ok', name: 'schema', detail: `table ${table} with Zoho's columns and a unique user name index` };
}

const FILE_HEADER =
  /^id,(user_name|user_mail),client_id,client_secret,refresh_token,access_token,grant_token,expiry_time,(redirect_url|redirect_uri)(,api_domain)?$/;

function probeFile(location: StoreLocation): Probe {
  const filename = location.filename as string;
  if (!existsSync(filename)) return absentFile(filename);
  const started = performance.now();
  let text: string;
  try {
    text = readFileSync(filename, 'utf8');
  } catch (error) {
    return {
      reachable: false,
      storagePresent: false,
      checks: [{ status: 'fail', name: 'connectivity', detail: `cannot read ${filename}: ${describe(error, '')}` }],
    };
  }
  const checks: Check[] = [{ status: 'ok', name: 'connectivity', detail: `read ${filename} in ${ms(started)}` }];
  const header = (text.replace(/^\uFEFF/, '').split('\n')[0] ?? '').replace(/\r$/, '');
  if (text.trim() === '') checks.push({ status: 'ok', name: 'schema', detail: 'the file is empty; the first save writes the header' });
  else if (FILE_HEADER.test(header))
    checks.push({ status: 'ok', name: 'schema', detail: `Zoho's CSV header (${header.split(',').length} columns)` });
  else checks.push({ status: 'fail', name: 'schema', detail: "the first line is not Zoho's CSV header (id,user_name,client_id,...)" });
  checks.push(...fileChecks(filename));
  return { reachable: true, storagePresent: true, checks };
}

async function probePostgres(location: StoreLocation): Promise<Probe> {
  const url = location.serverUrl as string;
  const schema = location.schema ?? 'public';
  const table = location.table ?? 'oauthtoken';
  const started = performance.now();
  let client: Awaited<ReturnType<typeof pgConnect>>;
  try {
    client = await pgConnect(url);
    await client.query('SELECT 1');
  } catch (error) {
    return { reachable: false, storagePresent: false, checks: [{ status: 'fail', name: 'connectivity', detail: describe(error, url) }] };
  }
  const checks: Check[] = [{ status: 'ok', name: 'connectivity', detail: `connected and answered in ${ms(started)}` }];
  try {
    const columns = (
      await client.query('SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2', [schema, table])
    ).rows.map((row) => String(row.column_name));
    const qualified = `"${schema.replace(/"/g, '""')}"."${table.replace(/"/g, '""')}"`;
    if (columns.length === 0) {
      checks.push({ status: 'warn', name: 'schema', detail: `no table ${schema}.${table} yet; the store creates it on first use` });
      const { rows } = await client.query(
        `SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) THEN has_schema_privilege(current_user, $1, 'CREATE')
           ELSE has_database_privilege(current_user, current_database(), 'CREATE') END AS can_create`,
        [schema],
      );
      checks.push(
        rows[0]?.can_create
          ? { status: 'ok', name: 'permissions', detail: `${await currentPgUser(client)} may create it` }
          : { status: 'fail', name: 'permissions', detail: `${await currentPgUser(client)} may not create tables in ${schema}` },
      );
      return { reachable: true, storagePresent: false, checks };
    }
    const unique = await client.query(
      "SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 AND indexdef LIKE 'CREATE UNIQUE INDEX%(user_name)%'",
      [schema, table],
    );
    checks.push(columnCheck(`${schema}.${table}`, columns, unique.rows.length > 0, 'the store adds it on first use, or run migrate()'));
    const granted = await client.query(
      'SELECT p AS privilege, has_table_privilege(current_user, $1, p) AS granted FROM unnest($2::text[]) AS p',
      [qualified, PRIVILEGES],
    );
    checks.push(
      grantCheck(
        await currentPgUser(client),
        granted.rows.filter((row) => !row.granted).map((row) => String(row.privilege)),
      ),
    );
  } finally {
    await client.end().catch(() => {});
  }
  return { reachable: true, storagePresent: true, checks };
}

async function currentPgUser(client: Awaited<ReturnType<typeof pgConnect>>): Promise<string> {
  return String((await client.query('SELECT current_user AS name')).rows[0]?.name);
}

function grantCheck(user: string, missing: string[]): Check {
  if (missing.length === 0) return { status: 'ok', name: 'permissions', detail: `${user} has ${PRIVILEGES.join(', ')} on the table` };
  return { status: 'fail', name: 'permissions', detail: `${user} lacks ${missing.join(', ')} on the table` };
}

async function probeMysql(location: StoreLocation): Promise<Probe> {
  const url = location.serverUrl as string;
  const [database, table] = (location.table ?? 'oauthtoken').includes('.')
    ? ((location.table as string).split('.') as [string, string])
    : [null, location.table ?? 'oauthtoken'];
  const started = performance.now();
  let connection: Awaited<ReturnType<typeof mysqlConnect>>;
  try {
    connection = await mysqlConnect(url);
    await connection.query('SELECT 1');
  } catch (error) {
    return { reachable: false, storagePresent: false, checks: [{ status: 'fail', name: 'connectivity', detail: describe(error, url) }] };
  }
  const checks: Check[] = [{ status: 'ok', name: 'connectivity', detail: `connected and answered in ${ms(started)}` }];
  const rows = async (sql: string, values: unknown[]) => (await connection.query(sql, values))[0] as Record<string, unknown>[];
  try {
    const [{ db, user } = {}] = await rows('SELECT COALESCE(?, DATABASE()) AS db, CURRENT_USER() AS user', [database]);
    const columns = await rows(
      'SELECT COLUMN_NAME AS name, DATA_TYPE AS type, CHARACTER_MAXIMUM_LENGTH AS size FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
      [db, table],
    );
    const [account = '', host = ''] = String(user).split(/@(?=[^@]*$)/);
    const grantee = `'${account}'@'${host}'`;
    const privileges = new Set(
      (
        await rows(
          `SELECT PRIVILEGE_TYPE AS p FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = ?
           UNION SELECT PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = ? AND TABLE_SCHEMA = ?
           UNION SELECT PRIVILEGE_TYPE FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE = ? AND TABLE_SCHEMA = ? AND TABLE_NAME = ?`,
          [grantee, grantee, db, grantee, db, table],
        )
      ).map((row) => String(row.p)),
    );
    if (columns.length === 0) {
      checks.push({ status: 'warn', name: 'schema', detail: `no table ${db}.${table} yet; the store creates it on first use` });
      checks.push(
        privileges.has('CREATE')
          ? { status: 'ok', name: 'permissions', detail: `${user} may create it` }
          : { status: 'fail', name: 'permissions', detail: `${user} may not create tables in ${db}` },
      );
      return { reachable: true, storagePresent: false, checks };
    }
    const names = columns.map((column) => String(column.name).toLowerCase());
    const unique = await rows(
      "SELECT 1 FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 AND COLUMN_NAME = 'user_name'",
      [db, table],
    );
    const check = columnCheck(`${db}.${table}`, names, unique.length > 0, "Zoho's DBStore layout; migrate() adds it");
    const narrow = columns.filter(
      (column) => column.type === 'varchar' && ['access_token', 'refresh_token'].includes(String(column.name).toLowerCase()),
    );
    if (check.status === 'warn' && narrow.length > 0) check.detail += `; tokens limited to ${narrow[0]?.size} characters`;
    checks.push(check);
    checks.push(
      grantCheck(
        String(user),
        PRIVILEGES.filter((privilege) => !privileges.has(privilege)),
      ),
    );
  } finally {
    await connection.end().catch(() => {});
  }
  return { reachable: true, storagePresent: true, checks };
}

async function probeRedis(location: StoreLocation): Promise<Probe> {
  const url = location.serverUrl as string;
  const prefix = location.prefix ?? 'crm-tokens';
  const started = performance.now();
  let client: Awaited<ReturnType<typeof redisConnect>>;
  try {
    client = await redisConnect(url);
    await client.call('PING');
  } catch (error) {
    return { reachable: false, storagePresent: false, checks: [{ status: 'fail', name: 'connectivity', detail: describe(error, url) }] };
  }
  const checks: Check[] = [{ status: 'ok', name: 'connectivity', detail: `connected and answered PING in ${ms(started)}` }];
  try {
    const type = String(await client.call('TYPE', `{${prefix}}:ids`));
    if (type === 'zset') {
      checks.push({ status: 'ok', name: 'schema', detail: `prefix ${prefix}: its id index {${prefix}}:ids is a sorted set` });
      return { reachable: true, storagePresent: true, checks };
    }
    if (type === 'none') {
      // Redis keeps no keys for a store without tokens: an empty store and a mistyped prefix look the same, and
      // nothing would be created by reading it. It is an empty store; doctor warns.
      checks.push({ status: 'warn', name: 'schema', detail: `no keys under the prefix ${prefix}: an empty store, or a mistyped prefix` });
      return { reachable: true, storagePresent: true, checks };
    }
    checks.push({ status: 'fail', name: 'schema', detail: `{${prefix}}:ids is a ${type}, not the sorted set the store keeps its ids in` });
    return { reachable: true, storagePresent: false, checks };
  } finally {
    await client.quit().catch(() => client.disconnect());
  }
}

/** Probes the backend a location names; a store package that is not installed is INVALID_ARGUMENT. */
export async function probe(location: StoreLocation): Promise<Probe> {
  checkStorePackage(location);
  switch (location.kind) {
    case 'sqlite':
      if (location.filename === ':memory:') break;
      return probeSqlite(location);
    case 'file':
      return probeFile(location);
    case 'postgres':
      return probePostgres(location);
    case 'mysql':
      return probeMysql(location);
    case 'redis':
      return probeRedis(location);
  }
  return {
    reachable: true,
    storagePresent: false,
    checks: [{ status: 'ok', name: 'connectivity', detail: 'in this process: nothing outlives the command' }],
  };
}
