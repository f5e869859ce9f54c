/**
 * A separate process that saves tokens into one file and reports each save on stdout once it has
 * resolved, one JSON line per save (a failed save reports its error code instead of an id, and the worker
 * carries on). Used by the crash and multi-process tests.
 *
 * Arguments: <token file> <user prefix> <new users> <shared user> <shared saves> <saves in flight> [start file]
 * With a start file, the saves begin only once that file exists, so several processes start together.
 * With SAVER_HOLD_AT_END=1 in its environment, it stays alive for a minute after its last save.
 */
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { OAuthToken, TokenStoreError, UserSignature } from '@crm/core';
import { FileTokenStore } from '../../src/index.js';

export interface SaveReport {
  userName: string;
  id: string;
  accessToken: string;
  /** The code of a save that failed; then `id` is ''. */
  error?: string;
}

const [path, prefix, newUsers, sharedUser, sharedSaves, inFlight, startFile] = process.argv.slice(2);
const store = new FileTokenStore({ filename: path, operationTimeoutMs: 120_000 });

const userCount = Number(newUsers);
const sharedCount = Number(sharedSaves);
const sharedEvery = sharedCount > 0 ? Math.max(1, Math.floor(userCount / sharedCount)) : Number.POSITIVE_INFINITY;
const saves: Array<() => OAuthToken> = [];
let sharedVersion = 0;
for (let n = 0; n < userCount; n++) {
  saves.push(
    () => new OAuthToken({ userSignature: new UserSignature(`${prefix}-user-${n}`), accessToken: `${prefix}-access-${n}`, expiryTime: n }),
  );
  // The shared user's saves are spread among the others, so they race with other processes' saves.
  if (sharedVersion < sharedCount && (n + 1) % sharedEvery === 0) {
    const accessToken = `${prefix}-shared-${sharedVersion++}`;
    saves.push(
      () =>
        new OAuthToken({
          userSignature: new UserSignature(sharedUser as string),
          accessToken,
          refreshToken: `${prefix}-refresh`,
          clientId: 'cid',
          clientSecret: 'cs',
        }),
    );
  }
}

async function saveAndReport(makeToken: () => OAuthToken): Promise<void> {
  const token = makeToken();
  let report: SaveReport;
  try {
    await store.saveToken(token);
    report = { userName: token.userName as string, id: token.id as string, accessToken: token.accessToken as string };
  } catch (error) {
    if (!TokenStoreError.is(error)) throw error;
    report = { userName: token.userName as string, id: '', accessToken: token.accessToken as string, error: error.code };
  }
  // A write to a pipe is synchronous on Linux: once this returns, the parent gets the line even if killed next.
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

// The pid as this process sees it: 1 when it runs in a PID namespace of its own.
process.stdout.write(`ready ${process.pid}\n`);
while (startFile !== undefined && !existsSync(startFile)) await sleep(1);
const width = Math.max(1, Number(inFlight));
for (let start = 0; start < saves.length; start += width) {
  await Promise.all(saves.slice(start, start + width).map(saveAndReport));
}
process.stdout.write('done\n');
// SAVER_HOLD_AT_END: wait to be killed (the crash test), for a minute at most.
if (process.env.SAVER_HOLD_AT_END === '1') await sleep(60_000);
