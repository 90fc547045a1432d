// Owns the per-key request rate limit: one token bucket per key (its own rate, or the server default), refilled
// by the injected clock, in a bounded map that forgets the least recently used keys. Must never grow without
// bound, nor read a clock of its own.

import type { KeyRateLimit } from '../domain/records.js';

export const DEFAULT_MAX_BUCKETS = 10_000;

interface Bucket {
  tokens: number;
  at: number;
  rate: KeyRateLimit;
}

export class KeyRateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly fallback: KeyRateLimit | null,
    private readonly now: () => number,
    private readonly maxBuckets = DEFAULT_MAX_BUCKETS,
  ) {}

  get size(): number {
    return this.buckets.size;
  }

  /** Takes one token for `keyId`: 0 when the request may go ahead, otherwise the seconds until a token is back. */
  take(keyId: string, own: KeyRateLimit | null): number {
    const rate = own ?? this.fallback;
    if (!rate || rate.requestsPerSecond <= 0) return 0;
    const now = this.now();
    let b = this.buckets.get(keyId);
    if (b && (b.rate.requestsPerSecond !== rate.requestsPerSecond || b.rate.burst !== rate.burst)) b = undefined;
    if (b) {
      this.buckets.delete(keyId);
      b.tokens = Math.min(rate.burst, b.tokens + (Math.max(0, now - b.at) / 1000) * rate.requestsPerSecond);
      b.at = now;
    } else {
      b = { tokens: rate.burst, at: now, rate };
    }
    // Most recently used last: the first entry is the one to forget when the map is full.
    this.buckets.set(keyId, b);
    while (this.buckets.size > this.maxBuckets) this.buckets.delete(this.buckets.keys().next().value as string);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / rate.requestsPerSecond));
  }
}
