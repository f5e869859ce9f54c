/**
 * The conformance options of this store with every store wrapped by `encryptedStore`: the worker processes
 * of the suite load this module, so the keys are fixed test keys, the same in every process.
 */
import { createHash } from 'node:crypto';
import { encryptedConformanceOptions } from '@crm/encryption';
import type { ConformanceOptions } from '@crm/store-conformance';
import { createConformanceOptions as plainOptions } from './conformance-options.js';

/** Test keys only: derived from fixed labels so every process has them. */
export const TEST_KEYS = {
  t1: createHash('sha256').update('crm-encryption redis test key 1').digest('base64'),
  t2: createHash('sha256').update('crm-encryption redis test key 2').digest('base64'),
};

export function createConformanceOptions(): ConformanceOptions {
  return encryptedConformanceOptions(plainOptions(), { keys: TEST_KEYS, activeKeyId: 't1' }) as unknown as ConformanceOptions;
}
