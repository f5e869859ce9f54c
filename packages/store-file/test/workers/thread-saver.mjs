/**
 * A worker thread (node:worker_threads) that saves tokens into one file, for the test of several threads of
 * one process sharing a token file. Each thread has its own globalThis, so its own copy of the store's
 * in-process state. It loads the TypeScript sources through tsx, waits for the `start` message, saves
 * `saves` new users one at a time and posts `{ ok, errors }` back.
 *
 * workerData: { path, prefix, saves }
 */
import { parentPort, workerData } from 'node:worker_threads';
import { OAuthToken, UserSignature } from '@crm/core';
import { tsImport } from 'tsx/esm/api';

const { FileTokenStore } = await tsImport('../../src/index.ts', import.meta.url);
const { path, prefix, saves } = workerData;
const store = new FileTokenStore({ filename: path, operationTimeoutMs: 120_000 });
const started = new Promise((resolve) => parentPort.once('message', resolve));
parentPort.postMessage('ready');
await started;
let ok = 0;
const errors = [];
for (let n = 0; n < saves; n++) {
  const token = new OAuthToken({ userSignature: new UserSignature(`${prefix}-user-${n}`), accessToken: `${prefix}-access-${n}` });
  try {
    await store.saveToken(token);
    ok++;
  } catch (error) {
    errors.push(`${error.code}: ${error.message}`);
  }
}
await store.close();
parentPort.postMessage({ ok, errors });
