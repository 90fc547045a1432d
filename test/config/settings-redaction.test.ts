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
    });
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
    });
    assert.throws(
      () => readServerSettings({ METERHOOK_PG_POOL_SIZE: '0' }, '/srv'),
      /METERHOOK_PG_POOL_SIZE: must be an integer from 1 to 500/,
    );
    assert.equal(readServerSettings({ METERHOOK_DATA_DIR: '/data' }, '/srv').dataDir, '/data');
    assert.equal(readServerSettings({ PORT: '0' }, '/srv').port, 0);
    assert.equal(readServerSettings({ PORT: '65535' }, '/srv').port, 65535);
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
          for (const m of text.matchAll(/process\.env\.([A-Z][A-Z0-9_]+)|\benv\.([A-Z][A-Z0-9_]+)|\bget\('([A-Z][A-Z0-9_]+)'\)/g)) {
            read.add((m[1] ?? m[2] ?? m[3])!);
          }
        }
      }
    };
    scan(fileURLToPath(new URL('../../src/', import.meta.url)));
    assert.ok(read.has('PORT') && read.has('METERHOOK_PG_POOL_SIZE'), `the scan finds the reads: ${[...read].join(', ')}`);
    // The webhook-receiver command is a separate program: its secret is not a server setting.
    read.delete('METERHOOK_WEBHOOK_SECRET');
    assert.deepEqual([...read].sort(), [...SERVER_ENV].sort());
  });
});
