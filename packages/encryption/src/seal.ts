/**
 * The sealed value: `v1.<keyId>.<iv>.<ciphertext>.<tag>`, the last three base64url. AES-256-GCM from
 * node:crypto; docs/ENCRYPTION.md explains the construction and what it leaks.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createSecretKey,
  hkdfSync,
  KeyObject,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import { inspect } from 'node:util';
import { TokenStoreError, type TokenStoreOperation } from '@crm/core';

export const SEALED_PREFIX = 'v1.';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
/** Key ids go into the sealed value, the CLI's `id:base64` list and error messages: a short, plain name. */
const KEY_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** Names that mean something else on a plain object: refused as key ids so no lookup or count trips on them. */
const RESERVED_KEY_IDS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** The secret fields a store keeps sealed. */
export const SEALED_FIELDS = ['clientSecret', 'accessToken', 'refreshToken', 'grantToken'] as const;
export type SealedField = (typeof SEALED_FIELDS)[number];

/** The fields sealed deterministically (equal values, equal ciphertexts), so a store can look them up. */
export const LOOKUP_FIELDS: ReadonlySet<SealedField> = new Set(['accessToken', 'refreshToken', 'grantToken']);

/** A key as the caller gives it: 32 bytes as a base64 (or base64url) string, or a secret `KeyObject` of 32 bytes. */
export type KeyInput = string | KeyObject;

export interface EncryptionOptions {
  /** Key id → key. Ids are 1 to 64 characters of A-Z, a-z, 0-9, `_` and `-`. */
  keys: Record<string, KeyInput>;
  /** The key new values are sealed with. */
  activeKeyId: string;
  /**
   * What to do with a stored value that is not sealed (it does not start with `v1.`): `'read'` (the default)
   * takes it as plaintext, so a store written before encryption keeps working until `rekey` seals it;
   * `'refuse'` reads it as CORRUPT_DATA, for stores that are known to be fully sealed.
   */
  plaintext?: 'read' | 'refuse';
}

/**
 * One key, split into the two subkeys it is used as (never the key itself). The subkeys are KeyObjects, which
 * neither `util.inspect` nor `JSON.stringify` show the bytes of; the key shows its id only.
 */
class DerivedKey {
  readonly id: string;
  readonly encryption: KeyObject;
  readonly synthesis: KeyObject;

  constructor(id: string, key: Buffer) {
    this.id = id;
    // Separate subkeys for encryption and for the synthetic IV: the key itself is never used twice. The key id is
    // in the info, so even equal key bytes under two ids would never share a subkey (and so never a GCM nonce).
    const subkey = (purpose: string) =>
      createSecretKey(Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), `crm-encryption v1 ${purpose}\u0000${id}`, KEY_BYTES)));
    this.encryption = subkey('aes-256-gcm');
    this.synthesis = subkey('synthetic-iv');
  }

  toJSON(): { id: string } {
    return { id: this.id };
  }

  [inspect.custom](): string {
    return `DerivedKey { id: '${this.id}' }`;
  }
}

const CONFIG = { store: 'EncryptedTokenStore', operation: 'open' } as const;
const bad = (message: string) => TokenStoreError.invalidArgument(CONFIG, message);

function keyBytes(id: string, input: unknown): Buffer {
  if (input instanceof KeyObject) {
    if (input.type !== 'secret' || input.symmetricKeySize !== KEY_BYTES)
      throw bad(`key ${id} must be a secret KeyObject of ${KEY_BYTES} bytes`);
    return input.export();
  }
  if (typeof input !== 'string' || input.length === 0) throw bad(`key ${id} is missing: give 32 bytes as base64 or a KeyObject`);
  const text = input.trim();
  if (!BASE64.test(text) && !BASE64URL.test(text)) throw bad(`key ${id} is not base64`);
  const bytes = Buffer.from(text, BASE64.test(text) ? 'base64' : 'base64url');
  if (bytes.length !== KEY_BYTES) throw bad(`key ${id} is ${bytes.length} bytes; AES-256 needs ${KEY_BYTES} (44 base64 characters)`);
  return bytes;
}

const encode = (bytes: Buffer) => bytes.toString('base64url');

/** Decodes one base64url part of a sealed value, or null when it is not the canonical encoding of its bytes. */
function decodeCanonical(text: string): Buffer | null {
  const bytes = Buffer.from(text, 'base64url');
  return encode(bytes) === text ? bytes : null;
}

/**
 * The keys of one store: checked once, at construction. `util.inspect` and `JSON.stringify` show the key ids
 * only, never a key or a subkey.
 */
export class Keyring {
  readonly plaintext: 'read' | 'refuse';
  readonly #active: DerivedKey;
  readonly #byId = new Map<string, DerivedKey>();

  constructor(options: EncryptionOptions) {
    if (typeof options !== 'object' || options === null) throw bad('encryption options must be an object of keys and activeKeyId');
    const { keys, activeKeyId, plaintext = 'read' } = options;
    if (typeof keys !== 'object' || keys === null || Object.keys(keys).length === 0)
      throw bad('keys must map at least one key id to a key');
    const given: Array<{ id: string; bytes: Buffer }> = [];
    try {
      for (const [id, input] of Object.entries(keys)) {
        if (!KEY_ID.test(id)) throw bad('a key id must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -');
        if (RESERVED_KEY_IDS.has(id)) throw bad(`${id} cannot be a key id (__proto__, constructor and prototype are reserved)`);
        const bytes = keyBytes(id, input);
        // Two ids for one key would seal the same values twice under it: refused, whichever id is active.
        const twin = given.find((other) => timingSafeEqual(other.bytes, bytes));
        if (twin !== undefined) throw bad(`keys ${twin.id} and ${id} are the same key: give each key id its own key`);
        given.push({ id, bytes });
      }
      for (const { id, bytes } of given) this.#byId.set(id, new DerivedKey(id, bytes));
    } finally {
      for (const { bytes } of given) bytes.fill(0);
    }
    if (typeof activeKeyId !== 'string' || !this.#byId.has(activeKeyId)) {
      const shown = typeof activeKeyId === 'string' && KEY_ID.test(activeKeyId) ? `activeKeyId ${activeKeyId}` : 'activeKeyId';
      throw bad(`${shown} is not one of the keys (${[...this.#byId.keys()].join(', ')})`);
    }
    if (plaintext !== 'read' && plaintext !== 'refuse') throw bad("plaintext must be 'read' or 'refuse'");
    this.#active = this.#byId.get(activeKeyId) as DerivedKey;
    this.plaintext = plaintext;
  }

  /** The id of the key new values are sealed with. */
  get activeKeyId(): string {
    return this.#active.id;
  }

  /** Every key id, the active one first, then the others: the order lookups try them in. */
  get keyIds(): string[] {
    return [this.#active.id, ...[...this.#byId.keys()].filter((id) => id !== this.#active.id)];
  }

  has(id: string): boolean {
    return this.#byId.has(id);
  }

  toJSON(): { activeKeyId: string; keyIds: string[]; plaintext: 'read' | 'refuse' } {
    return { activeKeyId: this.activeKeyId, keyIds: this.keyIds, plaintext: this.plaintext };
  }

  [inspect.custom](): string {
    return `Keyring { activeKeyId: '${this.activeKeyId}', keyIds: [${this.keyIds.map((id) => `'${id}'`).join(', ')}], plaintext: '${this.plaintext}' }`;
  }

  /**
   * Seals `value` for `field` under the key `keyId` (default the active key). Lookup fields get a synthetic
   * IV, HMAC-SHA256(subkey, key id, field, value) cut to 12 bytes, so equal values give equal sealed strings;
   * the client secret gets a random IV.
   */
  seal(field: SealedField, value: string, keyId: string = this.#active.id): string {
    const key = this.#byId.get(keyId);
    if (key === undefined) throw bad(`key ${keyId} is not one of the keys`);
    const plain = Buffer.from(value, 'utf8');
    const iv = LOOKUP_FIELDS.has(field)
      ? createHmac('sha256', key.synthesis).update(`${key.id}\u0000${field}\u0000`).update(plain).digest().subarray(0, IV_BYTES)
      : randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key.encryption, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(additionalData(key.id, field));
    const ciphertext = Buffer.concat([cipher.update(plain), cipher.final()]);
    return `${SEALED_PREFIX}${key.id}.${encode(iv)}.${encode(ciphertext)}.${encode(cipher.getAuthTag())}`;
  }

  /**
   * Opens a stored value. Throws CORRUPT_DATA naming the token id and field (never a value) when it does not
   * open: unknown key id, broken format, or a failed authentication (tampered, or moved from another field).
   */
  open(field: SealedField, stored: string, where: { tokenId: string | null; operation: TokenStoreOperation }): string {
    const corrupt = (why: string) =>
      TokenStoreError.corrupt(
        { store: 'EncryptedTokenStore', operation: where.operation },
        `the ${field} of token ${where.tokenId ?? '(no id)'} ${why}`,
      );
    if (!stored.startsWith(SEALED_PREFIX)) {
      if (this.plaintext === 'read') return stored;
      throw corrupt('is not sealed (plaintext is refused by this store)');
    }
    const parts = stored.split('.');
    if (parts.length !== 5 || !parts.slice(2).every((part) => BASE64URL.test(part))) throw corrupt('is not a well-formed sealed value');
    const [, keyId, iv, ciphertext, tag] = parts as [string, string, string, string, string];
    const key = this.#byId.get(keyId);
    if (key === undefined)
      throw corrupt(`is sealed with key ${KEY_ID.test(keyId) ? keyId : '(invalid id)'}, which this store was not given`);
    // Only the one encoding seal writes: another spelling of the same bytes would open, yet miss every lookup.
    const ivBytes = decodeCanonical(iv);
    const ciphertextBytes = decodeCanonical(ciphertext);
    const tagBytes = decodeCanonical(tag);
    if (ivBytes === null || ciphertextBytes === null || tagBytes === null) throw corrupt('is not a well-formed sealed value');
    if (ivBytes.length !== IV_BYTES || tagBytes.length !== TAG_BYTES) throw corrupt('is not a well-formed sealed value');
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.encryption, ivBytes, { authTagLength: TAG_BYTES });
      decipher.setAAD(additionalData(keyId, field));
      decipher.setAuthTag(tagBytes);
      const plain = Buffer.concat([decipher.update(ciphertextBytes), decipher.final()]);
      const value = plain.toString('utf8');
      if (!Buffer.from(value, 'utf8').equals(plain)) throw new Error('not UTF-8');
      return value;
    } catch {
      throw corrupt('failed authentication (tampered with, or sealed for another field or key)');
    }
  }
}

/** What GCM authenticates besides the ciphertext: the format version, the key id and the field name. */
function additionalData(keyId: string, field: SealedField): Buffer {
  return Buffer.from(`v1\u0000${keyId}\u0000${field}`, 'utf8');
}

/** The key id of a stored value, or null when it is not sealed. */
export function sealedKeyId(stored: string): string | null {
  if (!stored.startsWith(SEALED_PREFIX)) return null;
  const end = stored.indexOf('.', SEALED_PREFIX.length);
  return end < 0 ? null : stored.slice(SEALED_PREFIX.length, end);
}

const base64urlLength = (bytes: number) => Math.ceil((bytes * 4) / 3);

/** The length, in characters, of a value of `plaintextBytes` UTF-8 bytes sealed under `keyId`. */
export function sealedLength(plaintextBytes: number, keyId: string): number {
  return (
    SEALED_PREFIX.length +
    keyId.length +
    1 +
    base64urlLength(IV_BYTES) +
    1 +
    base64urlLength(plaintextBytes) +
    1 +
    base64urlLength(TAG_BYTES)
  );
}

/** The longest plaintext, in UTF-8 bytes, whose sealed value under `keyId` fits a column of `columnLimit` characters. */
export function maxPlaintextBytes(columnLimit: number, keyId: string): number {
  let bytes = Math.max(0, Math.floor(((columnLimit - sealedLength(0, keyId)) * 3) / 4));
  while (bytes > 0 && sealedLength(bytes, keyId) > columnLimit) bytes--;
  while (sealedLength(bytes + 1, keyId) <= columnLimit) bytes++;
  return bytes;
}
