// Owns API keys: minting, hashing, and constant-time verification against stored hashes, answering with what
// the key may do. Must never store, log or return a key in plain text after it is first shown.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../domain/clock.js';
import { sortableId } from '../domain/ids.js';
import type { ApiKeyRecord, KeyRateLimit } from '../domain/records.js';
import { canonicalScopes, grants, type Scope } from '../domain/scopes.js';
import type { KeyPort } from '../store/store.js';

export const KEY_PREFIX = 'mh_';

export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function mintKey(): string {
  return `${KEY_PREFIX}${randomBytes(24).toString('base64url')}`;
}

/** What a key may be given beside its scopes: a customer it is confined to, an expiry, its own rate limit. */
export interface KeyRestrictions {
  customerId?: string | null;
  expiresAt?: number | null;
  rateLimit?: KeyRateLimit | null;
}

/** Creates and stores a key (admin unless told otherwise); the plain key is returned once and never kept. */
export async function createApiKey(
  store: KeyPort,
  clock: Clock,
  name: string,
  scopes: readonly Scope[] = ['admin'],
  restrictions: KeyRestrictions = {},
): Promise<{ key: string; record: ApiKeyRecord }> {
  if (scopes.length === 0) throw new Error('a key needs at least one scope');
  if (restrictions.customerId != null && scopes.includes('admin')) throw new Error('a customer key may not have the admin scope');
  const key = mintKey();
  const record: ApiKeyRecord = {
    id: sortableId('key', clock.now()),
    hash: hashKey(key),
    prefix: key.slice(0, KEY_PREFIX.length + 6),
    name,
    scopes: canonicalScopes(scopes),
    createdAt: clock.now(),
    revokedAt: null,
    customerId: restrictions.customerId ?? null,
    expiresAt: restrictions.expiresAt ?? null,
    rateLimit: restrictions.rateLimit ?? null,
  };
  await store.insertApiKey(record);
  return { key, record };
}

/**
 * What a verified key is: its stored id (null for a key from the environment), its scopes, the customer it is
 * confined to (null: none), when it expires (null: never) and its own rate limit (null: the server default).
 */
export interface KeyGrant {
  id: string | null;
  scopes: readonly Scope[];
  customerId: string | null;
  expiresAt: number | null;
  rateLimit: KeyRateLimit | null;
}

const ENV_GRANT: KeyGrant = Object.freeze({
  id: null,
  scopes: Object.freeze(['admin'] as Scope[]),
  customerId: null,
  expiresAt: null,
  rateLimit: null,
});

/** How often a verifier asks the store whether any key changed (the key version), so revocation spreads. */
export const KEY_VERSION_POLL_MS = 2_000;

function grantOf(k: ApiKeyRecord): KeyGrant {
  return Object.freeze({
    id: k.id,
    scopes: Object.freeze([...k.scopes]),
    customerId: k.customerId ?? null,
    expiresAt: k.expiresAt ?? null,
    rateLimit: k.rateLimit ? Object.freeze({ ...k.rateLimit }) : null,
  });
}

interface KnownKey {
  hash: Buffer;
  grant: KeyGrant;
}

/**
 * Verifies presented keys. Keys from the environment are admin keys hashed in memory; stored keys are
 * re-read on a miss (at most once a second), every 30 s, and whenever the store's key version changed (asked at
 * most every KEY_VERSION_POLL_MS), so a key revoked by another process stops working within a few seconds.
 */
export class ApiKeyVerifier {
  private known: KnownKey[] = [];
  private readonly envHashes: Set<string>;
  private loadedAt = 0;
  private reloading: Promise<void> | null = null;
  private version = -1;
  private versionCheckedAt = Number.NEGATIVE_INFINITY;
  private checking: Promise<void> | null = null;

  constructor(
    private readonly store: KeyPort,
    envKeys: string[],
    private readonly now: () => number = Date.now,
  ) {
    this.envHashes = new Set(envKeys.map(hashKey));
  }

  get configuredKeyCount(): number {
    return this.known.length;
  }

  /** How many keys come from the environment (they cannot be revoked over HTTP). */
  get envKeyCount(): number {
    return this.envHashes.size;
  }

  async reload(): Promise<void> {
    const version = await this.store.keyVersion();
    const stored = await this.store.listApiKeys();
    const next = new Map<string, KeyGrant>([...this.envHashes].map((h) => [h, ENV_GRANT]));
    for (const k of stored) {
      // A key given in the environment stays admin even if the same key is also stored.
      if (k.revokedAt === null && !next.has(k.hash)) next.set(k.hash, grantOf(k));
    }
    this.known = [...next].map(([h, grant]) => ({ hash: Buffer.from(h, 'hex'), grant }));
    this.loadedAt = this.now();
    this.version = version;
    this.versionCheckedAt = this.loadedAt;
  }

  /** Re-reads the keys when the store's key version moved since they were read; asks at most every poll interval. */
  private async checkVersion(): Promise<void> {
    if (this.now() - this.versionCheckedAt < KEY_VERSION_POLL_MS) return;
    this.checking ??= (async () => {
      try {
        const v = await this.store.keyVersion();
        this.versionCheckedAt = this.now();
        if (v !== this.version) await this.reloadSoon();
      } finally {
        this.checking = null;
      }
    })();
    return this.checking;
  }

  private reloadSoon(): Promise<void> {
    this.reloading ??= this.reload().finally(() => {
      this.reloading = null;
    });
    return this.reloading;
  }

  /** Compares against every known hash without stopping early, so timing says nothing about which matched. */
  private match(hash: string): KeyGrant | undefined {
    const candidate = Buffer.from(hash, 'hex');
    let found: KeyGrant | undefined;
    for (const k of this.known) if (timingSafeEqual(k.hash, candidate)) found = k.grant;
    return found;
  }

  /**
   * Whether `test` holds for the hash of some known key that grants `need`: for credentials derived from a key (a
   * Stripe meter event session token is signed with its key's hash), so a revoked key's tokens stop working with it.
   * Tests every hash without stopping early; re-reads stored keys on a miss, as verify does.
   */
  async verifyDerived(test: (hash: Buffer) => boolean, need: Scope): Promise<KeyGrant | undefined> {
    await this.checkVersion();
    const run = (): KeyGrant | undefined => {
      let found: KeyGrant | undefined;
      for (const k of this.known) if (test(k.hash) && grants(k.grant.scopes, need)) found = k.grant;
      return found;
    };
    const hit = run();
    if (hit) return hit;
    if (this.now() - this.loadedAt > 1_000) {
      await this.reloadSoon();
      return run();
    }
    return undefined;
  }

  /** The presented key's grant, or undefined when it is not a valid key. */
  async verify(presented: string | undefined): Promise<KeyGrant | undefined> {
    if (!presented) return undefined;
    await this.checkVersion();
    const hash = hashKey(presented);
    const age = this.now() - this.loadedAt;
    const grant = this.match(hash);
    if (grant) {
      if (age > 30_000) void this.reloadSoon().catch(() => undefined);
      return grant;
    }
    if (age > 1_000) {
      await this.reloadSoon();
      return this.match(hash);
    }
    return undefined;
  }
}
