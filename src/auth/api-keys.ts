// Owns API keys: minting, hashing, and constant-time verification against stored hashes.
// Must never store, log or return a key in plain text after it is first shown.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../domain/clock.js';
import { sortableId } from '../domain/ids.js';
import type { ApiKeyRecord } from '../domain/records.js';
import type { KeyPort } from '../store/store.js';

export const KEY_PREFIX = 'mh_';

export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function mintKey(): string {
  return `${KEY_PREFIX}${randomBytes(24).toString('base64url')}`;
}

/** Creates and stores a key; the plain key is returned once and never kept. */
export async function createApiKey(store: KeyPort, clock: Clock, name: string): Promise<{ key: string; record: ApiKeyRecord }> {
  const key = mintKey();
  const record: ApiKeyRecord = {
    id: sortableId('key', clock.now()),
    hash: hashKey(key),
    prefix: key.slice(0, KEY_PREFIX.length + 6),
    name,
    createdAt: clock.now(),
    revokedAt: null,
  };
  await store.insertApiKey(record);
  return { key, record };
}

/**
 * Verifies presented keys. Keys from the environment are hashed in memory; stored keys are re-read
 * on a miss (at most once a second) and every 30 s, so keys created or revoked elsewhere take effect.
 */
export class ApiKeyVerifier {
  private hashes: Buffer[] = [];
  private readonly envHashes: Set<string>;
  private loadedAt = 0;
  private reloading: Promise<void> | null = null;

  constructor(
    private readonly store: KeyPort,
    envKeys: string[],
    private readonly now: () => number = Date.now,
  ) {
    this.envHashes = new Set(envKeys.map(hashKey));
  }

  get configuredKeyCount(): number {
    return this.hashes.length;
  }

  async reload(): Promise<void> {
    const stored = await this.store.listApiKeys();
    const next = new Set(this.envHashes);
    for (const k of stored) if (k.revokedAt === null) next.add(k.hash);
    this.hashes = [...next].map((h) => Buffer.from(h, 'hex'));
    this.loadedAt = this.now();
  }

  private reloadSoon(): Promise<void> {
    this.reloading ??= this.reload().finally(() => {
      this.reloading = null;
    });
    return this.reloading;
  }

  /** Compares against every known hash without stopping early, so timing says nothing about which matched. */
  private matches(hash: string): boolean {
    const candidate = Buffer.from(hash, 'hex');
    let found = false;
    for (const h of this.hashes) found = timingSafeEqual(h, candidate) || found;
    return found;
  }

  /**
   * Whether `test` holds for the hash of some known key: for credentials derived from a key (a Stripe meter
   * event session token is signed with its key's hash), so a revoked key's tokens stop working with it.
   * Tests every hash without stopping early; re-reads stored keys on a miss, as verify does.
   */
  async verifyDerived(test: (hash: Buffer) => boolean): Promise<boolean> {
    const run = (): boolean => {
      let found = false;
      for (const h of this.hashes) found = test(h) || found;
      return found;
    };
    if (run()) return true;
    if (this.now() - this.loadedAt > 1_000) {
      await this.reloadSoon();
      return run();
    }
    return false;
  }

  async verify(presented: string | undefined): Promise<boolean> {
    if (!presented) return false;
    const hash = hashKey(presented);
    const age = this.now() - this.loadedAt;
    if (this.matches(hash)) {
      if (age > 30_000) void this.reloadSoon().catch(() => undefined);
      return true;
    }
    if (age > 1_000) {
      await this.reloadSoon();
      return this.matches(hash);
    }
    return false;
  }
}
