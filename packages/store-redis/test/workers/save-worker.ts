/**
 * One process of the concurrency rounds: `saves` saves through its own store and connection, `inFlight` at a
 * time; every `sharedEvery`-th save goes to the one shared user, the others each create a new user. Prints a
 * JSON summary on its last line. Usage: tsx save-worker.ts '<SaveWorkerJob as JSON>'
 */
import { OAuthToken, TokenStoreError, UserSignature } from '@crm/core';
import { openShared } from '../conformance-options.js';

export interface SaveWorkerJob {
  /** What `share` of the conformance options returned: url (or cluster nodes) and prefix. */
  storage: unknown;
  worker: number;
  tag: string;
  saves: number;
  inFlight: number;
  sharedEvery: number;
}

export interface SaveWorkerResult {
  worker: number;
  saved: number;
  /** Error codes (or messages of non-store errors), one per failed save. */
  failures: string[];
  /** Milliseconds from the first save to the last one settling (process start-up not included). */
  ms: number;
}

/** The user and access token of save `n` of a worker: a new user, or the shared one. */
export function savedUser(
  job: Pick<SaveWorkerJob, 'tag' | 'worker' | 'sharedEvery'>,
  n: number,
): { userName: string; accessToken: string } {
  const shared = n % job.sharedEvery === job.sharedEvery - 1;
  return {
    userName: shared ? `${job.tag}-shared@example.com:1` : `${job.tag}-w${job.worker}-u${n}@example.com:1`,
    accessToken: `access-${job.tag}-w${job.worker}-${n}`,
  };
}

async function main(job: SaveWorkerJob): Promise<SaveWorkerResult> {
  const store = await openShared(job.storage);
  const failures: string[] = [];
  let saved = 0;
  let next = 0;
  const lane = async () => {
    while (next < job.saves) {
      const n = next++;
      const { userName, accessToken } = savedUser(job, n);
      const token = new OAuthToken({
        userSignature: new UserSignature(userName),
        clientId: 'client',
        clientSecret: 'secret',
        refreshToken: `refresh-${accessToken}`,
        accessToken,
        expiryTime: Date.now() + 3_600_000,
      });
      try {
        await store.saveToken(token);
        saved++;
      } catch (error) {
        failures.push(TokenStoreError.is(error) ? error.code : String(error));
      }
    }
  };
  const started = Date.now();
  await Promise.all(Array.from({ length: job.inFlight }, lane));
  const ms = Date.now() - started;
  await store.close();
  return { worker: job.worker, saved, failures, ms };
}

// Only when run as a process: the round runner imports this file for savedUser.
if (/save-worker\.[cm]?[tj]s$/.test(process.argv[1] ?? '') && process.argv[2] !== undefined) {
  main(JSON.parse(process.argv[2]) as SaveWorkerJob).then(
    (result) => process.stdout.write(`${JSON.stringify(result)}\n`),
    (error: unknown) => {
      process.stderr.write(`${String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
