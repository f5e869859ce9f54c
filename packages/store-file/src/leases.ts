/**
 * The leases of `withLock`: one small file per lock key beside the token file, `<token file>.lease-<hash>`,
 * holding `{"owner":"<random>","expiresAt":<epoch ms>}`. Every read-modify-write of a lease file happens while
 * holding the token file's lock (src/lock.ts), so two processes that both find a lease expired cannot both
 * take it over, and renewal and release compare the owner before they write.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { driverErrorCode } from '@crm/core/store-kit';

export interface LeaseRecord {
  owner: string;
  expiresAt: number;
}

/**
 * The lease file of `key`: the key is never part of a path. Its sha256 is taken over its UTF-16 code units,
 * so two keys differing only in a lone surrogate stay apart (UTF-8 would turn both into U+FFFD); 128 bits
 * of it are plenty to tell keys apart.
 */
export function leaseFilename(tokenFilename: string, key: string): string {
  return `${tokenFilename}.lease-${createHash('sha256').update(key, 'utf16le').digest('hex').slice(0, 32)}`;
}

/** The lease in `path`, or null when there is none. A file that is not a lease we wrote holds no one's lease. */
export function readLease(path: string): LeaseRecord | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (driverErrorCode(error) === 'ENOENT') return null;
    throw error;
  }
  try {
    const record = JSON.parse(text) as Partial<LeaseRecord>;
    if (typeof record.owner === 'string' && Number.isSafeInteger(record.expiresAt)) return record as LeaseRecord;
  } catch {}
  return null;
}

/**
 * Replaces the lease file atomically: a temporary file (mode 0600, like the token file), then a rename, so a
 * reader or a crash sees the old lease or the new one. `beforeRename` runs between the two and may throw to
 * cancel (the caller checks it still holds the token file's lock). The temporary file's name is fixed per
 * lease: only the holder of the token file's lock writes it, and one a crashed writer left is replaced.
 * No fsync: after a power loss every holder is gone, and a lost or empty lease file only means a free lock.
 */
export function writeLease(path: string, record: LeaseRecord, beforeRename: () => void): void {
  const temporary = `${path}.tmp`;
  removeIfPresent(temporary);
  let renamed = false;
  try {
    const fd = openSync(temporary, 'wx', 0o600);
    try {
      writeSync(fd, JSON.stringify(record));
    } finally {
      closeSync(fd);
    }
    beforeRename();
    renameSync(temporary, path);
    renamed = true;
  } finally {
    if (!renamed) {
      try {
        unlinkSync(temporary);
      } catch {}
    }
  }
}

export function removeIfPresent(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if (driverErrorCode(error) !== 'ENOENT') throw error;
  }
}
