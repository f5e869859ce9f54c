export type { WrappableConformanceOptions } from './conformance.js';
export { encryptedConformanceOptions, saveSampleSecrets, secretsShownIn } from './conformance.js';
export { EncryptedTokenStore, encryptedStore } from './encrypted-store.js';
export type { KeyCounts, RekeyOptions, RekeyOutcome, RekeyProgress, RekeyReport } from './rekey.js';
export { countKeys, rekey } from './rekey.js';
export type { EncryptionOptions, KeyInput, SealedField } from './seal.js';
export { LOOKUP_FIELDS, maxPlaintextBytes, SEALED_FIELDS, sealedKeyId, sealedLength } from './seal.js';
