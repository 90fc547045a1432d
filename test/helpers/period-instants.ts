// Owns the UTC test instants of the src/domain/periods suites: T(iso) for a Z-suffixed literal, iv, iso, DAY_MS.
// Must never read the process TZ: every literal carries an explicit Z, so parsing itself never depends on it.

import assert from 'node:assert/strict';

import { HOUR_MS, type Interval } from '../../src/domain/periods.js';

export const T = (iso: string): number => {
  assert.match(iso, /Z$/, `test instant must be UTC: ${iso}`);
  const ms = Date.parse(iso);
  assert.ok(Number.isFinite(ms), `bad test instant: ${iso}`);
  return ms;
};
export const iv = (start: string, end: string): Interval => ({ start: T(start), end: T(end) });
export const iso = (ms: number): string => new Date(ms).toISOString();
export const DAY_MS = 24 * HOUR_MS;
