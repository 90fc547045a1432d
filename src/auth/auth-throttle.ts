// Owns the throttle on failed authentication: a token bucket per client address (an IPv6 /64 counts as one),
// kept in a map of bounded size that forgets the least recently failing address first. Time comes from the caller.
// Must never hold a key or anything derived from one, nor grow past its bound whatever the addresses.

import net from 'node:net';

export interface AuthThrottleOptions {
  /** Failed authentications an address may make at once; 0 turns the throttle off. */
  failures: number;
  /** How long an empty bucket takes to fill again: `failures` tokens per window. */
  windowMs: number;
  /** Addresses remembered at most (default 10,000, about 1 MB). */
  maxAddresses?: number;
}

export const DEFAULT_MAX_ADDRESSES = 10_000;

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * The address a limit counts by: IPv4 as it is (an IPv4-mapped IPv6 address is its IPv4 address), IPv6 by
 * its /64 prefix, since one subscriber is usually given a whole /64.
 */
export function addressKey(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1]!;
  if (net.isIPv6(ip)) {
    const [head = '', tail = ''] = ip.split('%')[0]!.toLowerCase().split('::');
    const left = head === '' ? [] : head.split(':');
    const right = tail === '' ? [] : tail.split(':');
    const groups = ip.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
    return `${groups
      .slice(0, 4)
      .map((g) => g.replace(/^0+(?=.)/, ''))
      .join(':')}::/64`;
  }
  return ip;
}

export class AuthThrottle {
  private readonly buckets = new Map<string, Bucket>();
  private readonly ratePerMs: number;
  private readonly maxAddresses: number;

  constructor(
    private readonly o: AuthThrottleOptions,
    private readonly now: () => number,
  ) {
    this.ratePerMs = o.failures / o.windowMs;
    this.maxAddresses = o.maxAddresses ?? DEFAULT_MAX_ADDRESSES;
  }

  /** Addresses remembered now (never more than maxAddresses). */
  get size(): number {
    return this.buckets.size;
  }

  private tokens(b: Bucket, now: number): number {
    return Math.min(this.o.failures, b.tokens + Math.max(0, now - b.at) * this.ratePerMs);
  }

  /** Whole seconds until `ip` may try again (at least 1), or 0 when it may try now. */
  retryAfterSeconds(ip: string): number {
    if (this.buckets.size === 0 || this.o.failures === 0) return 0;
    const key = addressKey(ip);
    const b = this.buckets.get(key);
    if (!b) return 0;
    const now = this.now();
    const tokens = this.tokens(b, now);
    if (tokens >= 1) {
      // A full bucket is the same as no entry: drop it so the map holds only addresses that failed lately.
      if (tokens >= this.o.failures) this.buckets.delete(key);
      return 0;
    }
    return Math.max(1, Math.ceil((1 - tokens) / this.ratePerMs / 1000));
  }

  /** Records one failed authentication from `ip`. */
  fail(ip: string): void {
    if (this.o.failures === 0) return;
    const key = addressKey(ip);
    const now = this.now();
    const b = this.buckets.get(key);
    const tokens = b ? this.tokens(b, now) : this.o.failures;
    // Delete and set again, so the map's order is the order of last failure: the oldest goes first.
    this.buckets.delete(key);
    this.buckets.set(key, { tokens: Math.max(0, tokens - 1), at: now });
    if (this.buckets.size > this.maxAddresses) {
      const oldest = this.buckets.keys().next().value;
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
  }
}
