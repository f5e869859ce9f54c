import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createConnection } from 'mysql2/promise';
import { MySQLTokenStore } from '../src/index';
import { dropTable, mysqlUrl, randomTable } from './conformance-options';

/** Runs one worker process to its end; rejects with its output when it fails. */
function runWorker(url: string, table: string, worker: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'workers', 'save-worker.ts'), url, table, String(worker)], {
      cwd: join(__dirname, '..'),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) resolve(JSON.parse(stdout) as string[]);
      else reject(new Error(`worker ${worker} exited with ${code}:\n${stderr}`));
    });
  });
}

const ZOHO_TABLE = (table: string) =>
  `CREATE TABLE ${table} (id varchar(10) NOT NULL, user_name varchar(255), client_id varchar(255), client_secret varchar(255), refresh_token varchar(255), access_token varchar(255), grant_token varchar(255), expiry_time varchar(20), redirect_url varchar(255), api_domain varchar(255), primary key (id))`;

// On Zoho's table there is no unique index on user_name: the row locks of SELECT ... FOR UPDATE alone must do.
test.each(['its own table', "Zoho DBStore's unmigrated table"])(
  '4 processes x (250 users + 50 saves of one shared user) leave exactly 1001 tokens with distinct ids, on %s',
  async (kind) => {
    const url = await mysqlUrl();
    const table = randomTable('crm_procs');
    const store = new MySQLTokenStore({ uri: url, table });
    try {
      if (kind.startsWith('Zoho')) {
        const admin = await createConnection(url);
        await admin.query(ZOHO_TABLE(table));
        await admin.end();
      }
      await store.getTokens(); // creates the table before the workers race for it
      const idsByWorker = await Promise.all([0, 1, 2, 3].map((worker) => runWorker(url, table, worker)));
      const tokens = await store.getTokens();
      expect(tokens).toHaveLength(1001);
      expect(new Set(tokens.map((token) => token.id)).size).toBe(1001);
      expect(new Set(tokens.map((token) => token.userName)).size).toBe(1001);
      // Every save handed back a stored id; the 200 shared saves all got the one shared id.
      const shared = tokens.find((token) => token.userName === 'shared-user')!;
      const given = idsByWorker.flat();
      expect(given).toHaveLength(1200);
      expect(given.filter((id) => id === shared.id)).toHaveLength(200);
      expect(new Set(given).size).toBe(1001);
      // The shared token is one whole save, not a mix: its access and refresh tokens come from the same save.
      expect(shared.accessToken!.replace('access-', '')).toBe(shared.refreshToken!.replace('refresh-', ''));
    } finally {
      await store.close();
      await dropTable(table);
    }
  },
  240000,
);
