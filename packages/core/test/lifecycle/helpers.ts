import { type AccountsEmulator, startAccountsEmulator } from '@crm/accounts-emulator';
import { MemoryTokenStore, OAuthToken, TokenManager, type TokenManagerOptions } from '../../src/index';

export const REDIRECT_URL = 'https://app.example.com/oauth/callback';
export const HOUR = 3_600_000;

/** A clock tests move by hand; the emulator and the manager share it. */
export class TestClock {
  time = Date.UTC(2030, 0, 1);
  readonly now = (): number => this.time;
  advance(ms: number): void {
    this.time += ms;
  }
}

export interface Setup {
  emulator: AccountsEmulator;
  clock: TestClock;
  store: MemoryTokenStore;
  clientId: string;
  clientSecret: string;
  manager(options?: Partial<TokenManagerOptions>): TokenManager;
  /** A stored token for `email` holding only a fresh grant token and the client credentials. */
  storeGrant(email?: string): Promise<OAuthToken>;
  /** A stored, exchanged token for `email` (refresh and access token). */
  signIn(email?: string): Promise<OAuthToken>;
  close(): Promise<void>;
}

export async function setup(emulatorOptions: Parameters<typeof startAccountsEmulator>[0] = {}): Promise<Setup> {
  const clock = new TestClock();
  const emulator = await startAccountsEmulator({ clock: clock.now, ...emulatorOptions });
  const store = new MemoryTokenStore();
  const { clientId, clientSecret } = emulator.registerClient({ redirectUri: REDIRECT_URL });
  const manager = (options: Partial<TokenManagerOptions> = {}) =>
    new TokenManager({ store, accountsUrl: emulator.url, clock: clock.now, ...options });
  const storeGrant = async (email = 'ana@zylker.com') => {
    const token = new OAuthToken({
      clientId,
      clientSecret,
      redirectUrl: REDIRECT_URL,
      grantToken: emulator.issueGrantCode({ clientId, userEmail: email }),
    });
    await store.saveToken(token);
    return token;
  };
  const signIn = async (email = 'ana@zylker.com') => {
    const token = await storeGrant(email);
    await manager().getAccessToken(token);
    return (await store.findTokenById(token.id as string)) as OAuthToken;
  };
  return {
    emulator,
    clock,
    store,
    clientId,
    clientSecret,
    manager,
    storeGrant,
    signIn,
    async close() {
      await store.close();
      await emulator.close();
    },
  };
}

/** The error a promise rejects with (fails the test when it resolves). */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/** A form POST straight to the emulator, outside the manager. */
export async function post(url: string, fields: Record<string, string>): Promise<Record<string, unknown>> {
  const response = await fetch(url, { method: 'POST', body: new URLSearchParams(fields) });
  return (await response.json()) as Record<string, unknown>;
}
