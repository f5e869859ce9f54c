import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { OAuthToken, type TokenStore, UserSignature } from '@crm/core';
import { encryptedStore } from '@crm/encryption';
import { describeTokenStore } from '@crm/store-conformance/jest';
import { Redis } from 'ioredis';
import { RedisTokenStore } from '../src/index.js';
import { randomPrefix, redisUrl, removePrefix } from './conformance-options.js';
import { createConformanceOptions, TEST_KEYS } from './encrypted-conformance-options.js';

// The whole suite on the encrypted store; the worker processes load the encrypted options too.
describeTokenStore('encryptedStore(RedisTokenStore)', {
  ...createConformanceOptions(),
  module: join(__dirname, 'encrypted-conformance-options.ts'),
});

function sampleToken(user: string): OAuthToken {
  const secret = (kind: string) => `1000.${kind}${randomBytes(16).toString('hex')}`;
  return new OAuthToken({
    userSignature: new UserSignature(user),
    clientId: '1000.CLIENT',
    clientSecret: secret('cs'),
    refreshToken: secret('rt'),
    accessToken: secret('at'),
    grantToken: secret('gt'),
    expiryTime: Date.now() + 3_600_000,
  });
}

/** Saves five tokens and updates one through the encrypted store; returns every secret value it ever held. */
async function saveSamples(store: TokenStore): Promise<{ secrets: string[]; userName: string }> {
  const tokens = Array.from({ length: 5 }, (_, index) => sampleToken(`user-${index}-${randomBytes(3).toString('hex')}@zylker.com`));
  for (const token of tokens) await store.saveToken(token);
  const secrets = tokens.flatMap((token) => [token.clientSecret, token.accessToken, token.refreshToken, token.grantToken] as string[]);
  const update = new OAuthToken({ id: tokens[0]!.id, accessToken: `1000.at${randomBytes(16).toString('hex')}` });
  await store.saveToken(update);
  secrets.push(update.accessToken as string);
  return { secrets, userName: tokens[0]!.userSignature!.name };
}

/** Fails when storage shows a secret raw, in base64, base64url or hex. */
function expectNoSecrets(raw: string, secrets: string[]): void {
  for (const secret of secrets) {
    const bytes = Buffer.from(secret, 'utf8');
    for (const form of [
      secret,
      bytes.toString('base64'),
      bytes.toString('base64url'),
      bytes.toString('hex'),
      bytes.toString('hex').toUpperCase(),
    ]) {
      expect(raw).not.toContain(form);
    }
  }
}

test('the Redis keys, hashes and indexes hold none of the secrets, in any encoding', async () => {
  const prefix = randomPrefix();
  const store = encryptedStore(new RedisTokenStore({ url: await redisUrl(), prefix }), { keys: TEST_KEYS, activeKeyId: 't1' });
  const client = new Redis(await redisUrl());
  try {
    const { secrets, userName } = await saveSamples(store);
    const dump: unknown[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `{${prefix}}:*`, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) {
        const type = await client.type(key);
        const value =
          type === 'hash'
            ? await client.hgetall(key)
            : type === 'string'
              ? await client.get(key)
              : type === 'zset'
                ? await client.zrange(key, 0, -1, 'WITHSCORES')
                : type === 'set'
                  ? await client.smembers(key)
                  : type === 'list'
                    ? await client.lrange(key, 0, -1)
                    : `unexpected ${type}`;
        dump.push(key, value);
      }
    } while (cursor !== '0');
    const raw = JSON.stringify(dump);
    expect(raw).toContain(userName);
    expect(raw).not.toContain('unexpected');
    expectNoSecrets(raw, secrets);
  } finally {
    await store.close?.();
    await removePrefix(client, prefix);
    await client.quit();
  }
});
