// Redaction of the effective configuration, and the server settings read from the environment.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load-config.js';
import { redactedConfig, redactSecret } from '../../src/config/redact.js';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readServerSettings, SERVER_ENV } from '../../src/config/server-settings.js';
import { configError } from '../helpers/config-errors.js';

const SECRET = 'whsec_Q1w2E3r4T5y6U7i8O9p0AsDfGhJk';

describe('redaction', () => {
  const cases: Array<[string, string]> = [
    [SECRET, 'whsec_…GhJk'],
    ['plain-secret-value-wxyz', '…wxyz'],
    ['123456789', '…6789'],
    ['12345678', '…'],
    ['abc', '…'],
    ['', '…'],
    ['whsec_abcdefgh', 'whsec_…'],
  ];
  for (const [secret, expected] of cases) {
    it(`redactSecret(${JSON.stringify(secret)}) is ${JSON.stringify(expected)}`, () => assert.equal(redactSecret(secret), expected));
  }

  it('redactedConfig masks inline secrets, shows env references, and leaks no resolved secret anywhere', () => {
    const envSecret = 'env-resolved-secret-9f8e7d';
    const cfg = parseConfig(
      {
        _comment: `rotated from ${SECRET} last week`,
        webhooks: [
          { url: 'https://a.example', secret: SECRET },
          { url: 'https://b.example', secret: 'env:HOOK_SECRET', note: envSecret },
        ],
      },
      { env: { HOOK_SECRET: envSecret } },
    );
    const before = structuredClone(cfg.effective);
    const redacted = redactedConfig(cfg);
    const json = JSON.stringify(redacted);
    assert.ok(!json.includes(SECRET));
    assert.ok(!json.includes(envSecret));
    const hooks = redacted.webhooks as Array<Record<string, unknown>>;
    assert.equal(hooks[0]?.secret, 'whsec_…GhJk');
    assert.equal(hooks[1]?.secret, 'env:HOOK_SECRET');
    assert.equal(redacted.maxBatchSize, 1000);
    assert.deepEqual(cfg.effective, before);
  });
});

describe('readServerSettings', () => {
  it('applies defaults', () => {
    assert.deepEqual(readServerSettings({}, '/srv/app'), {
      port: 3000,
      host: '0.0.0.0',
      dataDir: '/srv/app/data',
      apiKeys: [],
      logLevel: 'info',
      databaseUrl: undefined,
      pgPoolSize: 10,
      dryRun: false,
      http: { headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, maxConnections: 1024, maxConnectionsPerAddress: 256 },
      authThrottle: { failures: 10, windowMs: 60_000 },
      keyRateLimit: null,
      trustProxy: false,
    });
  });

  it('reads the default per-key rate limit', () => {
    const s = readServerSettings({ METERHOOK_KEY_RATE_LIMIT: '5', METERHOOK_KEY_RATE_BURST: '20' }, '/srv');
    assert.deepEqual(s.keyRateLimit, { requestsPerSecond: 5, burst: 20 });
    assert.deepEqual(readServerSettings({ METERHOOK_KEY_RATE_LIMIT: '3' }, '/srv').keyRateLimit, { requestsPerSecond: 3, burst: 3 });
  });

  it('reads every variable', () => {
    const settings = readServerSettings(
      {
        PORT: '8080',
        HOST: '127.0.0.1',
        METERHOOK_DATA_DIR: 'var/meter',
        METERHOOK_API_KEYS: ' k1 , ,k2,',
        LOG_LEVEL: 'DEBUG',
        DATABASE_URL: 'postgres://db/meter',
        METERHOOK_PG_POOL_SIZE: '25',
        DRY_RUN: 'TRUE',
        METERHOOK_HEADERS_TIMEOUT: '5s',
        METERHOOK_REQUEST_TIMEOUT: '1m',
        METERHOOK_MAX_CONNECTIONS: '500',
        METERHOOK_MAX_CONNECTIONS_PER_ADDRESS: '0',
        METERHOOK_AUTH_FAILURE_LIMIT: '3',
        METERHOOK_AUTH_FAILURE_WINDOW: '10m',
        METERHOOK_TRUST_PROXY: '10.0.0.0/8, 127.0.0.1',
        METERHOOK_KEY_RATE_LIMIT: '50',
        METERHOOK_KEY_RATE_BURST: '100',
      },
      '/srv/app',
    );
    assert.deepEqual(settings, {
      port: 8080,
      host: '127.0.0.1',
      dataDir: '/srv/app/var/meter',
      apiKeys: ['k1', 'k2'],
      logLevel: 'debug',
      databaseUrl: 'postgres://db/meter',
      pgPoolSize: 25,
      dryRun: true,
      http: { headersTimeoutMs: 5_000, requestTimeoutMs: 60_000, maxConnections: 500, maxConnectionsPerAddress: 0 },
      authThrottle: { failures: 3, windowMs: 600_000 },
      keyRateLimit: { requestsPerSecond: 50, burst: 100 },
      trustProxy: ['10.0.0.0/8', '127.0.0.1'],
    });
    assert.throws(
      () => readServerSettings({ METERHOOK_PG_POOL_SIZE: '0' }, '/srv'),
      /METERHOOK_PG_POOL_SIZE: must be an integer from 1 to 500/,
    );
    assert.equal(readServerSettings({ METERHOOK_DATA_DIR: '/data' }, '/srv').dataDir, '/data');
    assert.equal(readServerSettings({ PORT: '0' }, '/srv').port, 0);
    assert.equal(readServerSettings({ PORT: '65535' }, '/srv').port, 65535);
  });

  it('reads the trusted proxies as a flag, a hop count or a list of addresses', () => {
    const trust = (v: string) => readServerSettings({ METERHOOK_TRUST_PROXY: v }, '/').trustProxy;
    assert.deepEqual(['true', 'false', '0', '2', '::1,fd00::/8'].map(trust), [true, false, false, 2, ['::1', 'fd00::/8']]);
    for (const bad of ['proxy.example', '10.0.0.0/33', '1.2.3.4/8/1', ',']) {
      assert.match(configError(() => trust(bad)).problems.join('\n'), /^METERHOOK_TRUST_PROXY: must be true, false/, bad);
    }
  });

  it('refuses connection and authentication limits out of range, all at once', () => {
    const err = configError(() =>
      readServerSettings(
        {
          METERHOOK_HEADERS_TIMEOUT: '5x',
          METERHOOK_REQUEST_TIMEOUT: '50ms',
          METERHOOK_MAX_CONNECTIONS: '0',
          METERHOOK_MAX_CONNECTIONS_PER_ADDRESS: '-1',
          METERHOOK_AUTH_FAILURE_LIMIT: 'ten',
          METERHOOK_AUTH_FAILURE_WINDOW: '2d',
        },
        '/',
      ),
    );
    assert.deepEqual(err.problems, [
      'METERHOOK_HEADERS_TIMEOUT: invalid duration "5x": use a number followed by ms, s, m, h, d or w, e.g. "5m"',
      'METERHOOK_REQUEST_TIMEOUT: must be between 100ms and 1h (got "50ms")',
      'METERHOOK_MAX_CONNECTIONS: must be an integer from 1 to 1000000 (got "0")',
      'METERHOOK_MAX_CONNECTIONS_PER_ADDRESS: must be an integer from 0 to 1000000 (got "-1")',
      'METERHOOK_AUTH_FAILURE_LIMIT: must be an integer from 0 to 100000 (got "ten")',
      'METERHOOK_AUTH_FAILURE_WINDOW: must be between 1s and 1d (got "2d")',
    ]);
    assert.deepEqual(configError(() => readServerSettings({ METERHOOK_HEADERS_TIMEOUT: '40s' }, '/')).problems, [
      'METERHOOK_HEADERS_TIMEOUT: must not be longer than METERHOOK_REQUEST_TIMEOUT (the headers are part of the request)',
    ]);
  });

  it('only treats DRY_RUN "true" or "1" as on', () => {
    const dry = (v: string): boolean => readServerSettings({ DRY_RUN: v }, '/').dryRun;
    assert.deepEqual(['1', 'true', 'True', 'yes', '0', 'false', 'on'].map(dry), [true, true, true, false, false, false, false]);
  });

  for (const bad of ['abc', '70000', '-1', '3000.5', '0x50', '1e3']) {
    it(`rejects PORT=${bad}`, () => {
      const err = configError(() => readServerSettings({ PORT: bad }, '/'));
      assert.deepEqual(err.problems, [`PORT: must be an integer from 0 to 65535 (got ${JSON.stringify(bad)})`]);
      assert.equal(err.source, 'environment');
    });
  }

  it('reports PORT and LOG_LEVEL problems together', () => {
    const err = configError(() => readServerSettings({ PORT: '99999', LOG_LEVEL: 'verbose' }, '/'));
    assert.deepEqual(err.problems, [
      'PORT: must be an integer from 0 to 65535 (got "99999")',
      'LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent (got "verbose")',
    ]);
  });
});

describe('SERVER_ENV', () => {
  it('names every environment variable the server code reads', () => {
    const read = new Set<string>();
    const scan = (dir: string): void => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) scan(p);
        else if (/\.ts$/.test(e.name)) {
          const text = fs.readFileSync(p, 'utf8');
          for (const m of text.matchAll(
            /process\.env\.([A-Z][A-Z0-9_]+)|\benv\.([A-Z][A-Z0-9_]+)|\b(?:get|integer|duration)\('([A-Z][A-Z0-9_]+)'/g,
          )) {
            read.add((m[1] ?? m[2] ?? m[3])!);
          }
        }
      }
    };
    scan(fileURLToPath(new URL('../../src/', import.meta.url)));
    assert.ok(
      read.has('PORT') &&
        read.has('METERHOOK_PG_POOL_SIZE') &&
        read.has('METERHOOK_MAX_CONNECTIONS') &&
        read.has('METERHOOK_HEADERS_TIMEOUT'),
      `the scan finds the reads: ${[...read].join(', ')}`,
    );
    // The webhook-receiver command is a separate program: its secret is not a server setting.
    read.delete('METERHOOK_WEBHOOK_SECRET');
    assert.deepEqual([...read].sort(), [...SERVER_ENV].sort());
  });
});
