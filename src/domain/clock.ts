// Owns the notion of "now" for every service, so tests can move time without sleeping.
// Must never be bypassed: services read time only through an injected Clock.

export interface Clock {
  /** Current instant in epoch milliseconds. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told to; for tests and simulations. */
export class ManualClock implements Clock {
  constructor(private current: number) {}
  now(): number {
    return this.current;
  }
  set(t: number | string): void {
    this.current = typeof t === 'string' ? Date.parse(t) : t;
  }
  advance(ms: number): void {
    this.current += ms;
  }
}
