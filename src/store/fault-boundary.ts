// Owns the fault boundary of a store adapter: every method of the port passes its errors through the
// adapter's one classifier, so a fault that means "retry later" (busy, full, read-only, connection
// lost) reaches every caller as StoreUnavailable, and a fault in a write is remembered for readiness.
// Must never swallow an error, nor turn a bug (a constraint violation, a programming error) into a 503.

import type { StoreUnavailable } from '../domain/errors.js';
import type { Store } from './store.js';

/** An adapter's classifier: the StoreUnavailable an error means, or undefined when it is not a fault. */
export type FaultClassifier = (err: unknown) => StoreUnavailable | undefined;

/** The port's methods that write: a fault in one of them means writes are failing. */
export const WRITE_METHODS = [
  'appendEvents',
  'closePeriods',
  'writeProvisional',
  'syncEndpoints',
  'enableEndpoint',
  'claimDeliveries',
  'claimDelivery',
  'recordAttempt',
  'releaseDelivery',
  'requeueDeliveries',
  'deleteEventsBefore',
  'insertApiKey',
  'revokeApiKey',
] as const satisfies ReadonlyArray<keyof Store>;
const WRITES: ReadonlySet<string> = new Set(WRITE_METHODS);

/** Kinds of write work whose faults readiness reports: foreground writes, and SQLite's background work. */
export type WriteWork = 'write' | 'derived' | 'listing_index';

/**
 * Write faults seen since the work last succeeded. Recording costs nothing on the success path: only a
 * fault adds an entry, and only the work itself (or a readiness probe) succeeding removes it.
 */
export class WriteHealth {
  private readonly failing = new Map<WriteWork, StoreUnavailable>();

  fail(work: WriteWork, err: StoreUnavailable): void {
    this.failing.set(work, err);
  }

  clear(work: WriteWork): void {
    if (this.failing.size > 0) this.failing.delete(work);
  }

  has(work: WriteWork): boolean {
    return this.failing.has(work);
  }

  get ok(): boolean {
    return this.failing.size === 0;
  }
}

function isThenable(v: unknown): v is Promise<unknown> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}

/**
 * Replaces each method of `proto` on `store` with one whose errors go through `classify`. Faults of
 * write methods are recorded in `health`. Classifiers return a StoreUnavailable unchanged, so nested
 * calls are classified once.
 */
export function installFaultBoundary(store: object, proto: object, classify: FaultClassifier, health: WriteHealth): void {
  for (const name of Object.getOwnPropertyNames(proto)) {
    const desc = Object.getOwnPropertyDescriptor(proto, name);
    if (name === 'constructor' || !desc || typeof desc.value !== 'function') continue;
    const fn = desc.value as (...args: unknown[]) => unknown;
    const isWrite = WRITES.has(name);
    const fault = (err: unknown): unknown => {
      const c = classify(err);
      if (!c) return err;
      if (isWrite) health.fail('write', c);
      return c;
    };
    Object.defineProperty(store, name, {
      configurable: true,
      writable: true,
      value(this: unknown, ...args: unknown[]): unknown {
        let out: unknown;
        try {
          out = fn.apply(this, args);
        } catch (err) {
          throw fault(err);
        }
        return isThenable(out) ? out.then(undefined, (err: unknown) => Promise.reject(fault(err))) : out;
      },
    });
  }
}
