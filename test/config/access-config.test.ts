// retention.audit and cors.allowedOrigins: their defaults, accepted values and the wording of each refusal.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load-config.js';
import { ConfigError } from '../../src/config/schema.js';

const base = { events: { 'api.calls': { op: 'sum' } } };
const problems = (doc: Record<string, unknown>): string[] => {
  try {
    parseConfig({ ...base, ...doc }, { env: {} });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
};

describe('retention.audit and cors.allowedOrigins', () => {
  it('default to 90 days and no origin', () => {
    const c = parseConfig(base, { env: {} });
    assert.equal(c.retentionAuditMs, 90 * 86_400_000);
    assert.equal(c.retentionEventsMs, null);
    assert.deepEqual(c.corsAllowedOrigins, []);
  });

  it('take a duration and exact origins', () => {
    const c = parseConfig(
      {
        ...base,
        retention: { audit: '365d', events: '400d' },
        cors: { allowedOrigins: ['https://portal.example.com', 'http://127.0.0.2:8080'] },
      },
      { env: {} },
    );
    assert.equal(c.retentionAuditMs, 365 * 86_400_000);
    assert.equal(c.retentionEventsMs, 400 * 86_400_000);
    assert.deepEqual(c.corsAllowedOrigins, ['https://portal.example.com', 'http://127.0.0.2:8080']);
  });

  it('refuse a short or malformed retention and anything but an origin', () => {
    assert.deepEqual(problems({ retention: { audit: '40m' } }), ['retention.audit: must be at least 1d (got "40m")']);
    assert.deepEqual(problems({ retention: { audit: 90 } }), ['retention.audit: must be a duration string such as "400d"']);
    assert.deepEqual(problems({ cors: [] }), ['cors: must be an object such as { "allowedOrigins": ["https://portal.example.com"] }']);
    assert.deepEqual(problems({ cors: { allowedOrigins: 'https://a.example' } }), [
      'cors.allowedOrigins: must be an array of origins such as "https://portal.example.com"',
    ]);
    for (const bad of ['*', 'https://a.example/', 'https://a.example/path', 'ftp://a.example', 'HTTPS://A.example', 'null', 7]) {
      assert.equal(problems({ cors: { allowedOrigins: [bad] } }).length, 1, `${String(bad)} is refused`);
    }
  });
});
