/**
 * Where a Redis save of a refreshed token spends its time: the floor's script (follow the user-name key,
 * HSET two fields), the store's own save script with the very keys and arguments the store sends (captured
 * from the store, the round's values put in), and the store's `saveToken`, interleaved on one loaded keyspace
 * of `--tokens` tokens (default 100,000). A second pass runs each script alone and reads the server's own
 * time per call from `INFO commandstats`, so the table splits each step into server time and the rest
 * (network, client encoding and decoding, the store's own work).
 *
 *   pnpm --filter @crm/bench ladder:redis [-- --tokens 1000 --operations 2000]
 */
import { randomBytes } from 'node:crypto';
import { OAuthToken, UserSignature } from '@crm/core';
import { RedisTokenStore } from '@crm/store-redis';
import { ensureRedis } from '@crm/test-services/redis';
import { Redis } from 'ioredis';
import { removeKeys } from './backends/redis.js';
import { type LadderStep, ladderOption, runLadder, stepValues, storeStep } from './ladder.js';
import { COLUMNS, pickIndex, type TokenRow, tokenRows, toOAuthToken, userName } from './tokens.js';

const SIZE = ladderOption('tokens', 100_000);
const OPERATIONS = ladderOption('operations', 1_000);
const BATCH = 2_000;

/** The bench's floor: follow the user-name key to the token's hash and set the refreshed fields there. */
const UPDATE_BY_USER = `
local id = redis.call('GET', KEYS[1])
if not id then return 0 end
return redis.call('HSET', ARGV[1] .. id, 'access_token', ARGV[2], 'expiry_time', ARGV[3])
`;

const hashFields = (row: TokenRow) => COLUMNS.flatMap((column) => (row[column] === null ? [] : [column, row[column] as string]));

const service = await ensureRedis();
const tag = randomBytes(4).toString('hex');
const storePrefix = `crm-ladder-${tag}`;
const floorBase = `{crm-ladder-floor-${tag}}:`;
const storeClient = new Redis(service.url);
const floorClient = new Redis(service.url);
const scriptClient = new Redis(service.url);
const store = new RedisTokenStore({ client: storeClient, prefix: storePrefix });
try {
  const version = /redis_version:(\S+)/.exec(await floorClient.info('server'))?.[1];
  await store.migrate();
  for (let from = 0; from < SIZE; from += BATCH) {
    await Promise.all(tokenRows(from, Math.min(SIZE, from + BATCH)).map((row) => store.saveToken(toOAuthToken(row))));
    const pipeline = floorClient.pipeline();
    for (const row of tokenRows(from, Math.min(SIZE, from + BATCH))) {
      pipeline.hset(`${floorBase}t:${row.id}`, ...hashFields(row));
      pipeline.set(`${floorBase}u:${row.user_name}`, row.id as string);
    }
    await pipeline.exec();
  }
  floorClient.defineCommand('updateByUser', { numberOfKeys: 1, lua: UPDATE_BY_USER });
  const floorScript = floorClient as unknown as {
    updateByUser(key: string, base: string, accessToken: string, expiryTime: string): Promise<number>;
  };

  // The store's save script: the EVALSHA of one save by user name, with marker values for the round's ones.
  const MARK_ACCESS = `marker-access-${tag}`;
  const MARK_EXPIRY = '1234567890123';
  let captured: string[] | null = null;
  const evalsha = storeClient.evalsha.bind(storeClient);
  (storeClient as unknown as { evalsha: (...args: string[]) => unknown }).evalsha = (...args: string[]) => {
    if (args.includes(MARK_ACCESS)) captured = args.map(String);
    return (evalsha as (...args: string[]) => unknown)(...args);
  };
  await store.saveToken(
    new OAuthToken({ userSignature: new UserSignature(userName(0)), accessToken: MARK_ACCESS, expiryTime: Number(MARK_EXPIRY) }),
  );
  delete (storeClient as unknown as { evalsha?: unknown }).evalsha;
  const call = captured as string[] | null;
  if (call === null) throw new Error('the store sent no EVALSHA for a save by user name');
  const [sha, keyCount] = call as [string, string];
  // ARGV[2] is the deadline on the server's clock in µs: an hour ahead here.
  const deadlineAt = 2 + Number(keyCount) + 1;
  const [seconds, micros] = await scriptClient.time();
  const farDeadline = String(Number(seconds) * 1_000_000 + Number(micros) + 3_600_000_000);
  const scriptArgs = (round: number, step: number) => {
    const { accessToken, expiryTime } = stepValues(round, step);
    return call
      .slice(1)
      .map((value, index) =>
        index + 1 === deadlineAt
          ? farDeadline
          : value === userName(0)
            ? userName(pickIndex(round, SIZE))
            : value === MARK_ACCESS
              ? accessToken
              : value === MARK_EXPIRY
                ? String(expiryTime)
                : value,
      );
  };

  const steps: LadderStep[] = [
    {
      name: 'floor: EVALSHA GET user-name key, HSET access_token, expiry_time',
      run: (round) => {
        const { accessToken, expiryTime } = stepValues(round, 0);
        return floorScript.updateByUser(
          `${floorBase}u:${userName(pickIndex(round, SIZE))}`,
          `${floorBase}t:`,
          accessToken,
          String(expiryTime),
        );
      },
    },
    {
      name: "the store's save script (deadline, lookup by digest index, merge, user-name uniqueness, index move, stored row back)",
      run: (round) => scriptClient.evalsha(sha, ...(scriptArgs(round, 1) as [string])),
    },
    storeStep('the store: saveToken (argument checks, time bound, encoding, reply to token, write-back)', store, SIZE, 2),
  ];

  /** The server's own µs per script call: each step alone, with `INFO commandstats` read before and after. */
  const serverMicros = async (run: (round: number) => Promise<unknown>, from: number): Promise<number> => {
    const scripts = async () => {
      const stats = await floorClient.info('commandstats');
      let calls = 0;
      let usec = 0;
      for (const match of stats.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+),usec=(\d+)/gm)) {
        calls += Number(match[1]);
        usec += Number(match[2]);
      }
      return { calls, usec };
    };
    const before = await scripts();
    for (let round = from; round < from + OPERATIONS; round++) await run(round);
    const after = await scripts();
    return (after.usec - before.usec) / Math.max(1, after.calls - before.calls);
  };
  await runLadder(`Redis ${version}, ${SIZE.toLocaleString('en')} tokens`, steps, OPERATIONS, async () => {
    const floorServer = await serverMicros(steps[0]!.run, OPERATIONS);
    const scriptServer = await serverMicros(steps[1]!.run, OPERATIONS);
    return ['server µs per script call', [floorServer, scriptServer, scriptServer].map((micros) => micros.toFixed(1))];
  });
} finally {
  await store.close();
  await removeKeys(floorClient, `{${storePrefix}}:`);
  await removeKeys(floorClient, floorBase);
  storeClient.disconnect();
  floorClient.disconnect();
  scriptClient.disconnect();
  await service.stop();
}
