// `crm-portal` / `pnpm --filter portal start`: reads the configuration from flags and environment variables,
// starts the portal and prints where to open it.
import { parseArgs } from 'node:util';
import { DATA_CENTERS, type DataCenter, TokenStoreError } from '@crm/core';
import { DEFAULT_SCOPE, DEFAULT_STORE_URL, PortalConfigError, type PortalOptions, startPortal } from './portal.js';

const HELP = `Usage: crm-portal [options]

A "Login with Zoho" web app keeping each user's tokens in a token store. With no Zoho client configured it
runs against the Zoho accounts emulator on loopback: open the URL it prints and sign in.

Options (each also read from the environment variable in brackets):
  --store <url>          token store URL [CRM_TOKEN_STORE] (default ${DEFAULT_STORE_URL})
  --host <host>          address to listen on [PORTAL_HOST] (default 127.0.0.1)
  --port <port>          port to listen on, 0 for a free one [PORT] (default 3000)
  --client-id <id>       Zoho client id from the API console [ZOHO_CLIENT_ID]
                         the client secret is read from ZOHO_CLIENT_SECRET only
  --data-center <dc>     ${Object.keys(DATA_CENTERS).join(', ')} [ZOHO_DATA_CENTER] (default US)
  --accounts-url <url>   another accounts server, instead of a data center [ZOHO_ACCOUNTS_URL]
  --redirect-url <url>   the redirect URI registered for the client [PORTAL_REDIRECT_URL]
                         (default http://localhost:<port>/oauth/callback)
  --scope <scopes>       comma-separated Zoho scopes [ZOHO_SCOPE] (default ${DEFAULT_SCOPE})
  --no-pkce              send no PKCE challenge [PORTAL_PKCE=off]
  --emulator-user <email> the email the emulator's consent page proposes (default ana@zylker.com)
  --admins <emails>      comma-separated users whose tokens page lists every stored token [PORTAL_ADMINS]
                         (everyone else sees only their own token)
  -h, --help             this text
The session cookies' key is read from PORTAL_SESSION_SECRET (32 characters or more); without it a random
key is made at each start. The live sessions are kept in memory: restarting signs everyone out either way.`;

function options(argv: string[], env: NodeJS.ProcessEnv): PortalOptions | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      store: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      'client-id': { type: 'string' },
      'data-center': { type: 'string' },
      'accounts-url': { type: 'string' },
      'redirect-url': { type: 'string' },
      scope: { type: 'string' },
      'no-pkce': { type: 'boolean' },
      'emulator-user': { type: 'string' },
      admins: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) return null;
  const portText = values.port ?? env.PORT ?? '3000';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) throw new PortalConfigError('--port must be a number from 0 to 65535');
  const clientId = values['client-id'] ?? env.ZOHO_CLIENT_ID;
  const clientSecret = env.ZOHO_CLIENT_SECRET;
  const dataCenter = (values['data-center'] ?? env.ZOHO_DATA_CENTER)?.toUpperCase();
  if (dataCenter !== undefined && !Object.hasOwn(DATA_CENTERS, dataCenter)) {
    throw new PortalConfigError(`--data-center must be one of ${Object.keys(DATA_CENTERS).join(', ')}`);
  }
  if ((clientId === undefined) !== (clientSecret === undefined)) {
    throw new PortalConfigError('set both ZOHO_CLIENT_ID (or --client-id) and ZOHO_CLIENT_SECRET, or neither (for the emulator)');
  }
  const accountsUrl = values['accounts-url'] ?? env.ZOHO_ACCOUNTS_URL;
  const pkceSetting = (env.PORTAL_PKCE ?? 'on').toLowerCase();
  return {
    storeUrl: values.store ?? env.CRM_TOKEN_STORE ?? DEFAULT_STORE_URL,
    host: values.host ?? env.PORTAL_HOST ?? '127.0.0.1',
    port,
    scope: values.scope ?? env.ZOHO_SCOPE ?? DEFAULT_SCOPE,
    sessionSecret: env.PORTAL_SESSION_SECRET || null,
    pkce: !values['no-pkce'] && !['off', 'false', '0', 'no'].includes(pkceSetting),
    emulatorUser: values['emulator-user'],
    admins: (values.admins ?? env.PORTAL_ADMINS ?? '').split(',').filter((email) => email.trim() !== ''),
    zoho:
      clientId === undefined || clientSecret === undefined
        ? null
        : {
            clientId,
            clientSecret,
            redirectUrl: values['redirect-url'] ?? env.PORTAL_REDIRECT_URL ?? `http://localhost:${port}/oauth/callback`,
            ...(accountsUrl !== undefined ? { accountsUrl } : { dataCenter: (dataCenter ?? 'US') as DataCenter }),
          },
  };
}

export async function main(argv = process.argv.slice(2), env = process.env): Promise<void> {
  let config: PortalOptions | null;
  try {
    config = options(argv, env);
  } catch (error) {
    console.error(`crm-portal: ${(error as Error).message}\n\n${HELP}`);
    process.exitCode = 2;
    return;
  }
  if (config === null) {
    console.log(HELP);
    return;
  }
  try {
    const portal = await startPortal(config);
    console.log(`Portal: ${portal.url}`);
    console.log(`  token store    ${portal.storeLabel}`);
    if (portal.emulator !== null) {
      console.log(`  accounts       the Zoho accounts emulator at ${portal.emulator.url} (no Zoho client configured)`);
    } else {
      console.log(`  accounts       ${portal.manager.accountsUrl}`);
    }
    console.log(`  redirect URI   ${portal.redirectUrl}`);
    console.log(
      `  sessions       kept in memory (a restart signs everyone out)${portal.randomSessionSecret ? '; cookies signed with a random key made for this start' : ''}`,
    );
    console.log(`Open ${portal.url} and choose "Login with Zoho". Ctrl+C stops it.`);
    const stop = () => {
      void portal.close().finally(() => process.exit(0));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  } catch (error) {
    const listenError = (error as { code?: unknown }).code === 'EADDRINUSE';
    const message =
      error instanceof PortalConfigError || TokenStoreError.is(error)
        ? (error as Error).message
        : listenError
          ? `port ${config.port} is in use; choose another with --port (0 picks a free one)`
          : `could not start: ${(error as Error).message}`;
    console.error(`crm-portal: ${message}`);
    process.exitCode = 1;
  }
}
