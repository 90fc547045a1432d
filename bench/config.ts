// Owns the meterhook configuration documents the benchmark runs with, written into each scenario's
// fresh temp directory. The event types are the reference template's: one per operator.
// Must never tune meterhook for the benchmark: these are the documented defaults unless a scenario says why.

import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

export const EVENT_TYPES = {
  'api.calls': { op: 'sum' },
  'storage.bytes': { op: 'max' },
  'response.time.ms': { op: 'avg' },
  'test.min': { op: 'min' },
  'test.count': { op: 'count' },
  'test.first': { op: 'first' },
  'test.last': { op: 'last' },
} as const;

export const ALL_TYPES = Object.keys(EVENT_TYPES);
/** B1's three event types. */
export const B1_TYPES = ['api.calls', 'storage.bytes', 'response.time.ms'];

/** The reference configuration (systemconfig.json's content), with the defaults spelled out. */
export function referenceConfig(): Record<string, unknown> {
  return {
    periods: ['hourly', 'daily', 'weekly', 'monthly'],
    events: EVENT_TYPES,
    webhooks: [],
    schedule: '*/15 * * * *',
    gracePeriod: '5m',
  };
}

export function writeConfig(dir: string, doc: Record<string, unknown>, name = 'meterhook.config.json'): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, JSON.stringify(doc, null, 2));
  return file;
}

export function benchApiKey(): string {
  return `mh_bench_${randomBytes(16).toString('hex')}`;
}

/** The groupBy keys of the dimension scenarios: 10 endpoints and 5 regions (bodies.ts), 50 groups per meter. */
export const GROUP_BY = ['endpoint', 'region'];

/** The reference configuration with every meter grouped by GROUP_BY: B1G and B4G, beside B1 and B4 on the same bodies. */
export function groupedConfig(): Record<string, unknown> {
  const doc = referenceConfig();
  const events = Object.fromEntries(Object.entries(EVENT_TYPES).map(([t, m]) => [t, { ...m, groupBy: GROUP_BY }]));
  return { ...doc, events };
}
