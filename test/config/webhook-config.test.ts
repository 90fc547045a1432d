// Webhook configuration: per-endpoint options, the webhookDelivery block, their problem messages,
// defaults, rotation secrets from the environment, and that no secret ever leaks from redaction.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { ConfigError, parseConfig, type MeterhookConfig } from '../../src/config/load-config.js';
import { redactedConfig } from '../../src/config/redact.js';
import { endpointIdFor } from '../../src/config/webhook-config.js';

const URL_A = 'https://billing.example/hooks';
const SECRET = 'inline-current-secret-0001';

function problems(doc: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(doc, { env });
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  assert.fail(`expected a ConfigError for ${JSON.stringify(doc)}`);
}

const endpoint = (extra: Record<string, unknown>) => ({ webhooks: [{ url: URL_A, secret: SECRET, ...extra }] });

describe('endpoint options: problems', () => {
  const cases: Array<[string, Record<string, unknown>, string[]]> = [
    [
      'events not an array',
      { events: 'aggregation.completed' },
      ['webhooks[0].events: must be a non-empty array of aggregation.completed, aggregation.updated'],
    ],
    ['events empty', { events: [] }, ['webhooks[0].events: must be a non-empty array of aggregation.completed, aggregation.updated']],
    [
      'unknown event',
      { events: ['aggregation.completed', 'invoice.paid'] },
      ['webhooks[0].events[1]: must be one of aggregation.completed, aggregation.updated (got "invoice.paid")'],
    ],
    [
      'periods not an array',
      { periods: 'hourly' },
      ['webhooks[0].periods: must be a non-empty array of hourly, daily, weekly, monthly, yearly'],
    ],
    ['periods empty', { periods: [] }, ['webhooks[0].periods: must be a non-empty array of hourly, daily, weekly, monthly, yearly']],
    [
      'unknown period',
      { periods: ['daily', 'fortnightly'] },
      ['webhooks[0].periods[1]: must be one of hourly, daily, weekly, monthly, yearly (got "fortnightly")'],
    ],
    ['legacyHeaders not boolean', { legacyHeaders: 'yes' }, ['webhooks[0].legacyHeaders: must be true or false']],
    ['timeout not a string', { timeout: 5000 }, ['webhooks[0].timeout: must be a duration string such as "10s"']],
    [
      'timeout malformed',
      { timeout: 'soon' },
      ['webhooks[0].timeout: invalid duration "soon": use a number followed by ms, s, m, h, d or w, e.g. "5m"'],
    ],
    ['timeout zero', { timeout: '0s' }, ['webhooks[0].timeout: must be at least 1 ms (got "0s")']],
    [
      'id with a space',
      { id: 'bad id' },
      ['webhooks[0].id: must be 1–64 characters of A-Z a-z 0-9 _ . -, starting with a letter or digit'],
    ],
    ['id empty', { id: '' }, ['webhooks[0].id: must be 1–64 characters of A-Z a-z 0-9 _ . -, starting with a letter or digit']],
    [
      'id too long',
      { id: 'x'.repeat(65) },
      ['webhooks[0].id: must be 1–64 characters of A-Z a-z 0-9 _ . -, starting with a letter or digit'],
    ],
    [
      'id starting with a dash',
      { id: '-x' },
      ['webhooks[0].id: must be 1–64 characters of A-Z a-z 0-9 _ . -, starting with a letter or digit'],
    ],
    ['id not a string', { id: 7 }, ['webhooks[0].id: must be 1–64 characters of A-Z a-z 0-9 _ . -, starting with a letter or digit']],
    [
      'previousSecrets not an array',
      { previousSecrets: 'old' },
      ['webhooks[0].previousSecrets: must be an array of secrets or "env:NAME"'],
    ],
    [
      'previousSecrets with empty and non-string',
      { previousSecrets: ['', 5] },
      [
        'webhooks[0].previousSecrets[0]: must be a non-empty string or "env:NAME"',
        'webhooks[0].previousSecrets[1]: must be a non-empty string or "env:NAME"',
      ],
    ],
    [
      'previousSecrets env unset',
      { previousSecrets: ['env:OLD_HOOK_SECRET'] },
      ['webhooks[0].previousSecrets[0]: environment variable OLD_HOOK_SECRET is not set or empty (referenced as "env:OLD_HOOK_SECRET")'],
    ],
    [
      'previousSecrets bad env name',
      { previousSecrets: ['env:bad-name'] },
      [
        'webhooks[0].previousSecrets[0]: "env:" must be followed by an environment variable name ' +
          'such as WEBHOOK_SECRET (got "env:bad-name")',
      ],
    ],
  ];
  for (const [name, extra, expected] of cases) {
    it(name, () => assert.deepEqual(problems(endpoint(extra)), expected));
  }

  it('reports a duplicate endpoint by derived id (same URL) and by explicit id', () => {
    const sameUrl = problems({
      webhooks: [
        { url: URL_A, secret: 's1' },
        { url: URL_A, secret: 's2' },
      ],
    });
    assert.deepEqual(sameUrl, [`webhooks[1].url: duplicate endpoint (id ${endpointIdFor(URL_A)}); each endpoint must be listed once`]);
    const sameId = problems({
      webhooks: [
        { id: 'billing', url: URL_A, secret: 's1' },
        { id: 'billing', url: 'https://other.example/h', secret: 's2' },
      ],
    });
    assert.deepEqual(sameId, ['webhooks[1].id: duplicate endpoint (id billing); each endpoint must be listed once']);
  });

  it('allows the same URL twice under different explicit ids', () => {
    const cfg = parseConfig(
      {
        webhooks: [
          { id: 'a', url: URL_A, secret: 's1' },
          { id: 'b', url: URL_A, secret: 's2' },
        ],
      },
      { env: {} },
    );
    assert.deepEqual(
      cfg.webhooks.map((w) => w.id),
      ['a', 'b'],
    );
  });

  it('reports every problem of every endpoint in one pass', () => {
    const got = problems({
      webhooks: [
        { url: URL_A, secret: 's1', events: [], legacyHeaders: 1 },
        { url: 'https://b.example/h', secret: 's2', periods: ['x'], timeout: '0ms' },
      ],
      webhookDelivery: { concurrency: 0, lease: '1s', pollInterval: '1ms' },
    });
    assert.equal(got.length, 6, got.join('\n'));
  });
});

describe('webhookDelivery: problems', () => {
  const cases: Array<[string, unknown, string[]]> = [
    ['not an object', 5, ['webhookDelivery: must be an object']],
    [
      'retrySchedule not an array',
      { retrySchedule: '5s' },
      ['webhookDelivery.retrySchedule: must be an array of durations such as ["5s", "5m"]'],
    ],
    [
      'retrySchedule entries',
      { retrySchedule: ['5s', 'x', 7] },
      [
        'webhookDelivery.retrySchedule[1]: invalid duration "x": use a number followed by ms, s, m, h, d or w, e.g. "5m"',
        'webhookDelivery.retrySchedule[2]: must be a duration string such as "10s"',
      ],
    ],
    ['deadline zero', { deadline: '0s' }, ['webhookDelivery.deadline: must be at least 1 ms (got "0s")']],
    [
      'deadline malformed',
      { deadline: 'four days' },
      ['webhookDelivery.deadline: invalid duration "four days": use a number followed by ms, s, m, h, d or w, e.g. "5m"'],
    ],
    ['deadline not a string', { deadline: 4 }, ['webhookDelivery.deadline: must be a duration string such as "10s"']],
    ['allowHttp not boolean', { allowHttp: 'no' }, ['webhookDelivery.allowHttp: must be true or false']],
    [
      'allowCidrs not an array',
      { allowCidrs: '127.0.0.1/32' },
      ['webhookDelivery.allowCidrs: must be an array of CIDRs such as ["127.0.0.1/32"]'],
    ],
    [
      'allowCidrs entries',
      { allowCidrs: ['127.0.0.1/33', 'localhost', 5, '::1/129'] },
      [
        'webhookDelivery.allowCidrs[0]: prefix length must be 0–32 (got "127.0.0.1/33")',
        'webhookDelivery.allowCidrs[1]: must be a CIDR such as "127.0.0.1/32" (got "localhost")',
        'webhookDelivery.allowCidrs[2]: must be a CIDR string',
        'webhookDelivery.allowCidrs[3]: prefix length must be 0–128 (got "::1/129")',
      ],
    ],
    ['concurrency zero', { concurrency: 0 }, ['webhookDelivery.concurrency: must be an integer from 1 to 1000 (got 0)']],
    ['concurrency fractional', { concurrency: 1.5 }, ['webhookDelivery.concurrency: must be an integer from 1 to 1000 (got 1.5)']],
    ['concurrency string', { concurrency: '4' }, ['webhookDelivery.concurrency: must be an integer from 1 to 1000 (got "4")']],
    [
      'perEndpointConcurrency too big',
      { perEndpointConcurrency: 1001 },
      ['webhookDelivery.perEndpointConcurrency: must be an integer from 1 to 1000 (got 1001)'],
    ],
    ['lease below 1 s', { lease: '999ms' }, ['webhookDelivery.lease: must be at least 1000 ms (got "999ms")']],
    [
      'lease malformed',
      { lease: 'long' },
      ['webhookDelivery.lease: invalid duration "long": use a number followed by ms, s, m, h, d or w, e.g. "5m"'],
    ],
    ['pollInterval below 10 ms', { pollInterval: '9ms' }, ['webhookDelivery.pollInterval: must be at least 10 ms (got "9ms")']],
  ];
  for (const [name, block, expected] of cases) {
    it(name, () => assert.deepEqual(problems({ webhookDelivery: block }), expected));
  }

  it('accepts the boundary values', () => {
    const cfg = parseConfig(
      {
        webhookDelivery: {
          lease: '1s',
          pollInterval: '10ms',
          concurrency: 1000,
          perEndpointConcurrency: 1,
          deadline: '1ms',
          retrySchedule: [],
        },
      },
      { env: {} },
    );
    assert.equal(cfg.webhookDelivery.leaseMs, 1000);
    assert.equal(cfg.webhookDelivery.pollIntervalMs, 10);
    assert.equal(cfg.webhookDelivery.concurrency, 1000);
    assert.equal(cfg.webhookDelivery.perEndpointConcurrency, 1);
    assert.equal(cfg.webhookDelivery.deadlineMs, 1);
    assert.deepEqual(cfg.webhookDelivery.retryScheduleMs, []);
  });
});

describe('defaults and given values', () => {
  it('fills endpoint defaults: derived stable id, every event type, every period, legacy headers, 10 s timeout', () => {
    const cfg = parseConfig({ webhooks: [{ url: URL_A, secret: SECRET }] }, { env: {} });
    const w = cfg.webhooks[0]!;
    assert.equal(w.id, endpointIdFor(URL_A));
    assert.match(w.id, /^ep_[0-9a-f]{16}$/);
    assert.equal(endpointIdFor(URL_A), endpointIdFor(URL_A));
    assert.notEqual(endpointIdFor(URL_A), endpointIdFor(`${URL_A}2`));
    assert.deepEqual(w.events, ['aggregation.completed', 'aggregation.updated']);
    assert.equal(w.periods, null);
    assert.equal(w.legacyHeaders, true);
    assert.equal(w.timeoutMs, 10_000);
    assert.deepEqual(w.previousSecrets, []);
    assert.equal(w.enabled, true);
    assert.equal(w.secretSource, 'inline');
    assert.equal(w.secret, SECRET);
  });

  it('fills webhookDelivery defaults', () => {
    const d = parseConfig({}, { env: {} }).webhookDelivery;
    assert.deepEqual(d, {
      retryScheduleMs: [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 50_400_000, 72_000_000, 86_400_000],
      deadlineMs: 4 * 86_400_000,
      allowHttp: true,
      allowCidrs: [],
      concurrency: 16,
      perEndpointConcurrency: 4,
      leaseMs: 60_000,
      pollIntervalMs: 1_000,
    });
  });

  it('uses given values', () => {
    const cfg = parseConfig(
      {
        periods: ['hourly', 'monthly'],
        webhooks: [
          {
            id: 'billing.v2',
            url: URL_A,
            secret: SECRET,
            events: ['aggregation.updated'],
            periods: ['monthly'],
            legacyHeaders: false,
            timeout: '2.5s',
            enabled: false,
            previousSecrets: ['older-1', 'older-2'],
          },
        ],
        webhookDelivery: {
          retrySchedule: ['100ms', '1s'],
          deadline: '1h',
          allowHttp: false,
          allowCidrs: ['127.0.0.1/32', '::1/128'],
          concurrency: 3,
          perEndpointConcurrency: 2,
          lease: '5s',
          pollInterval: '50ms',
        },
      },
      { env: {} },
    );
    const w = cfg.webhooks[0]!;
    assert.deepEqual(
      [w.id, w.events, w.periods, w.legacyHeaders, w.timeoutMs, w.enabled, w.previousSecrets],
      ['billing.v2', ['aggregation.updated'], ['monthly'], false, 2_500, false, ['older-1', 'older-2']],
    );
    assert.deepEqual(cfg.webhookDelivery, {
      retryScheduleMs: [100, 1_000],
      deadlineMs: 3_600_000,
      allowHttp: false,
      allowCidrs: ['127.0.0.1/32', '::1/128'],
      concurrency: 3,
      perEndpointConcurrency: 2,
      leaseMs: 5_000,
      pollIntervalMs: 50,
    });
    assert.deepEqual(cfg.effective.webhookDelivery, {
      retrySchedule: ['100ms', '1s'],
      deadline: '1h',
      allowHttp: false,
      allowCidrs: ['127.0.0.1/32', '::1/128'],
      concurrency: 3,
      perEndpointConcurrency: 2,
      lease: '5s',
      pollInterval: '50ms',
    });
  });
});

describe('secrets: env resolution and redaction', () => {
  const ENV = { HOOK_SECRET: 'env-current-secret-ABCD', HOOK_SECRET_OLD: 'env-previous-secret-WXYZ' };

  function envConfig(): MeterhookConfig {
    return parseConfig(
      {
        webhooks: [
          { url: URL_A, secret: 'env:HOOK_SECRET', previousSecrets: ['env:HOOK_SECRET_OLD', 'inline-previous-secret-7777'] },
          {
            url: 'https://b.example/h',
            secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
            previousSecrets: ['whsec_c2Vjb25kLXNlY3JldC1sb25nLWVub3VnaA=='],
          },
        ],
      },
      { env: ENV },
    );
  }

  it('resolves env: references for the current and previous secrets', () => {
    const w = envConfig().webhooks[0]!;
    assert.equal(w.secret, ENV.HOOK_SECRET);
    assert.equal(w.secretSource, 'env');
    assert.deepEqual(w.previousSecrets, [ENV.HOOK_SECRET_OLD, 'inline-previous-secret-7777']);
  });

  it('redactedConfig never contains a current or previous secret', () => {
    const cfg = envConfig();
    const shown = JSON.stringify(redactedConfig(cfg));
    for (const w of cfg.webhooks) {
      for (const s of [w.secret, ...w.previousSecrets]) assert.ok(!shown.includes(s), `leaked ${s.slice(0, 6)}… in ${shown}`);
    }
    const hooks = redactedConfig(cfg).webhooks as Array<Record<string, unknown>>;
    // env references are not secrets and stay as written; inline ones are masked.
    assert.equal(hooks[0]!.secret, 'env:HOOK_SECRET');
    assert.deepEqual(hooks[0]!.previousSecrets, ['env:HOOK_SECRET_OLD', '…7777']);
    assert.equal(hooks[1]!.secret, 'whsec_…LaSw');
    assert.deepEqual(hooks[1]!.previousSecrets, ['whsec_…aA==']);
  });

  it('redactedConfig scrubs a secret pasted elsewhere in the document', () => {
    const cfg = parseConfig(
      {
        _note: `rotated from inline-previous-secret-7777 on Monday`,
        webhooks: [{ url: URL_A, secret: SECRET, previousSecrets: ['inline-previous-secret-7777'], _comment: `secret is ${SECRET}` }],
      },
      { env: {} },
    );
    const shown = JSON.stringify(redactedConfig(cfg));
    assert.ok(!shown.includes(SECRET) && !shown.includes('inline-previous-secret-7777'), shown);
    // And the loaded config itself still holds the real values.
    assert.equal(cfg.webhooks[0]!.secret, SECRET);
  });

  it('never echoes a secret in a problem message', () => {
    let message = '';
    try {
      parseConfig(
        {
          webhooks: [
            { url: URL_A, secret: SECRET, previousSecrets: ['inline-previous-secret-7777', 42], id: 'bad id', timeout: 'x' },
            { url: 'https://b.example/h', secret: 'env:MISSING_SECRET', previousSecrets: 'inline-previous-secret-7777' },
          ],
          webhookDelivery: { allowCidrs: ['nope'] },
        },
        { env: {} },
      );
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      message = `${err.message}\n${err.problems.join('\n')}`;
    }
    assert.ok(message.length > 0, 'config should be rejected');
    assert.ok(!message.includes(SECRET), message);
    assert.ok(!message.includes('inline-previous-secret-7777'), message);
  });
});
