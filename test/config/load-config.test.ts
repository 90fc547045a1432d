import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Settings } from 'typebox/system';
import { loadConfigFile, parseConfig, resolveConfigPath } from '../../src/config/load-config.js';
import { configError, problemsOf } from '../helpers/config-errors.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const OPS = 'sum, avg, min, max, count, first, last, unique';
const PERIOD_LIST = 'hourly, daily, weekly, monthly, yearly';
const HINT = 'use a number followed by ms, s, m, h, d or w, e.g. "5m"';
const NAME_RULE = 'invalid event type name: use 1 to 128 characters from A-Z a-z 0-9 . _ : -, starting with a letter or digit';
const SECRET = 'whsec_Q1w2E3r4T5y6U7i8O9p0AsDfGhJk';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meterhook-config-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function writeTmp(name: string, text: string): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, text);
  return file;
}

describe('bundled systemconfig.json', () => {
  const cfg = loadConfigFile(path.join(REPO_ROOT, 'systemconfig.json'), {});

  it('loads with the seven reference event types in file order and their ops', () => {
    assert.deepEqual(cfg.eventTypes, [
      'api.calls',
      'storage.bytes',
      'response.time.ms',
      'test.min',
      'test.count',
      'test.first',
      'test.last',
    ]);
    assert.deepEqual(
      cfg.eventTypes.map((t) => cfg.events[t]?.op),
      ['sum', 'max', 'avg', 'min', 'count', 'first', 'last'],
    );
  });

  it('keeps the reference periods, sends nothing, and states schedule and grace period', () => {
    assert.deepEqual(cfg.periods, ['hourly', 'daily', 'weekly', 'monthly']);
    assert.deepEqual(cfg.webhooks, []);
    assert.equal(cfg.schedule, '*/15 * * * *');
    assert.equal(cfg.gracePeriodMs, 300_000);
    assert.equal(cfg.source, path.join(REPO_ROOT, 'systemconfig.json'));
    assert.equal(typeof JSON.parse(fs.readFileSync(cfg.source, 'utf8'))._comment, 'string');
  });
});

describe('parseConfig defaults', () => {
  it('fills every default for an empty document', () => {
    const cfg = parseConfig({}, { env: {} });
    assert.deepEqual(cfg.periods, ['hourly', 'daily', 'weekly', 'monthly']);
    assert.deepEqual({ ...cfg.events }, {});
    assert.deepEqual(cfg.eventTypes, []);
    assert.deepEqual(cfg.webhooks, []);
    assert.equal(cfg.schedule, '*/15 * * * *');
    assert.equal(cfg.gracePeriodMs, 5 * 60_000);
    assert.equal(cfg.maxEventAgeMs, 35 * 86_400_000);
    assert.equal(cfg.maxFutureSkewMs, 5 * 60_000);
    assert.equal(cfg.maxBatchSize, 1000);
    assert.equal(cfg.source, '<inline>');
    assert.deepEqual(cfg.effective, {
      periods: ['hourly', 'daily', 'weekly', 'monthly'],
      events: {},
      webhooks: [],
      schedule: '*/15 * * * *',
      gracePeriod: '5m',
      maxEventAge: '35d',
      maxFutureSkew: '5m',
      maxBatchSize: 1000,
      maxGroupsPerHour: 1000,
      webhookDelivery: {
        retrySchedule: ['5s', '5m', '30m', '2h', '5h', '10h', '14h', '20h', '24h'],
        deadline: '4d',
        allowHttp: true,
        allowCidrs: [],
        concurrency: 16,
        perEndpointConcurrency: 4,
        lease: '60s',
        pollInterval: '1s',
      },
    });
    assert.deepEqual(
      cfg.webhookDelivery.retryScheduleMs,
      [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 50_400_000, 72_000_000, 86_400_000],
    );
    assert.equal(cfg.webhookDelivery.deadlineMs, 4 * 86_400_000);
  });

  it('uses given values over defaults, keeping duration strings as written in effective', () => {
    const cfg = parseConfig(
      {
        periods: ['yearly'],
        schedule: '0 */5 * * * *',
        gracePeriod: '1h30m',
        maxEventAge: '2w',
        maxFutureSkew: '0s',
        maxBatchSize: 10_000,
      },
      { env: {} },
    );
    assert.deepEqual(cfg.periods, ['yearly']);
    assert.equal(cfg.schedule, '0 */5 * * * *');
    assert.deepEqual([cfg.gracePeriodMs, cfg.maxEventAgeMs, cfg.maxFutureSkewMs, cfg.maxBatchSize], [5_400_000, 1_209_600_000, 0, 10_000]);
    assert.equal(cfg.effective.gracePeriod, '1h30m');
    assert.equal(cfg.effective.maxEventAge, '2w');
  });

  it('accepts an empty periods list and leaves the input document untouched', () => {
    const doc = { periods: [], webhooks: [{ url: 'https://a.example/h', secret: 'env:S' }] };
    const before = structuredClone(doc);
    const cfg = parseConfig(doc, { env: { S: 'x'.repeat(20) } });
    assert.deepEqual(cfg.periods, []);
    assert.deepEqual(doc, before);
  });

  it('re-parses its own effective document to an equal config', () => {
    const cfg = parseConfig(
      { events: { 'a.b': { op: 'sum' } }, webhooks: [{ url: 'http://h.example', secret: 'env:S', timeout: '10s' }] },
      { env: { S: 'shh-123456789' } },
    );
    const again = parseConfig(cfg.effective, { env: { S: 'shh-123456789' } });
    // Only raw differs: the effective entry spells out the defaulted `enabled`.
    const comparable = (c: typeof cfg): object => ({ ...c, events: { ...c.events }, webhooks: c.webhooks.map(({ raw: _raw, ...w }) => w) });
    assert.deepEqual(comparable(again), comparable(cfg));
    // The effective entry also spells out the endpoint id derived from the URL.
    assert.deepEqual(again.webhooks[0]?.raw, {
      id: cfg.webhooks[0]?.id,
      url: 'http://h.example',
      secret: 'env:S',
      timeout: '10s',
      enabled: true,
    });
    assert.match(cfg.webhooks[0]?.id ?? '', /^ep_[0-9a-f]{16}$/);
  });
});

describe('parseConfig problem messages', () => {
  const cases: Array<[string, unknown, string[], NodeJS.ProcessEnv?]> = [
    ['unknown op', { events: { x: { op: 'median' } } }, [`events["x"].op: must be one of ${OPS} (got "median")`]],
    ['missing op', { events: { 'api.calls': {} } }, [`events["api.calls"].op: is required and must be one of ${OPS}`]],
    ['event spec not an object', { events: { x: 'sum' } }, ['events["x"]: must be an object such as { "op": "sum" } (got "sum")']],
    ['events not an object', { events: ['a'] }, ['events: must be an object mapping event type names to { "op": ... } (got an array)']],
    ['unknown period', { periods: ['hourly', 'daily', 'biweekly'] }, [`periods[2]: must be one of ${PERIOD_LIST} (got "biweekly")`]],
    ['duplicate period', { periods: ['daily', 'hourly', 'daily'] }, ['periods[2]: duplicate of periods[0] ("daily")']],
    ['periods not an array', { periods: 'daily' }, [`periods: must be an array of periods (${PERIOD_LIST}) (got "daily")`]],
    ['bad url', { webhooks: [{ url: 'not a url', secret: SECRET }] }, ['webhooks[0].url: must be an http(s) URL (got "not a url")']],
    [
      'non-http url',
      { webhooks: [{ url: 'ftp://files.example/x', secret: SECRET }] },
      ['webhooks[0].url: must be an http(s) URL (got "ftp://files.example/x")'],
    ],
    [
      'url with userinfo',
      { webhooks: [{ url: 'https://bob:hunter2@billing.example/h', secret: SECRET }] },
      ['webhooks[0].url: must not contain a username or password (put the shared secret in "secret")'],
    ],
    ['missing url', { webhooks: [{ secret: SECRET }] }, ['webhooks[0].url: is required and must be an http(s) URL']],
    [
      'empty secret',
      { webhooks: [{ url: 'https://a.example', secret: '' }] },
      ['webhooks[0].secret: must be a non-empty string or "env:NAME"'],
    ],
    [
      'enabled not boolean',
      { webhooks: [{ url: 'https://a.example', secret: SECRET, enabled: 'yes' }] },
      ['webhooks[0].enabled: must be true or false (got "yes")'],
    ],
    ['webhook entry not an object', { webhooks: [42] }, ['webhooks[0]: must be an object with "url" and "secret" (got 42)']],
    [
      'env secret missing',
      { webhooks: [{ url: 'https://a.example', secret: 'env:HOOK_SECRET' }] },
      ['webhooks[0].secret: environment variable HOOK_SECRET is not set or empty (referenced as "env:HOOK_SECRET")'],
    ],
    [
      'env secret empty',
      { webhooks: [{ url: 'https://a.example', secret: 'env:HOOK_SECRET' }] },
      ['webhooks[0].secret: environment variable HOOK_SECRET is not set or empty (referenced as "env:HOOK_SECRET")'],
      { HOOK_SECRET: '' },
    ],
    [
      'env secret without a name',
      { webhooks: [{ url: 'https://a.example', secret: 'env:' }] },
      ['webhooks[0].secret: "env:" must be followed by an environment variable name such as WEBHOOK_SECRET (got "env:")'],
    ],
    ['bad duration', { gracePeriod: '5x' }, [`gracePeriod: invalid duration "5x": ${HINT}`]],
    ['duration not a string', { maxEventAge: 300 }, ['maxEventAge: must be a duration string such as "5m" (got 300)']],
    [
      'bad cron value',
      { schedule: '61 * * * *' },
      [
        'schedule: invalid cron expression "61 * * * *" (Invalid value for minute: 61): ' +
          'use 5 or 6 space-separated fields, e.g. "*/15 * * * *"',
      ],
    ],
    [
      'cron with wrong field count',
      { schedule: '* * * *' },
      ['schedule: invalid cron expression "* * * *": use 5 or 6 space-separated fields, e.g. "*/15 * * * *"'],
    ],
    [
      'cron nickname',
      { schedule: '@hourly' },
      ['schedule: invalid cron expression "@hourly": use 5 or 6 space-separated fields, e.g. "*/15 * * * *"'],
    ],
    ['maxBatchSize zero', { maxBatchSize: 0 }, ['maxBatchSize: must be an integer from 1 to 10000 (got 0)']],
    ['maxBatchSize too big', { maxBatchSize: 10_001 }, ['maxBatchSize: must be an integer from 1 to 10000 (got 10001)']],
    ['maxBatchSize fractional', { maxBatchSize: 2.5 }, ['maxBatchSize: must be an integer from 1 to 10000 (got 2.5)']],
    ['maxBatchSize string', { maxBatchSize: '100' }, ['maxBatchSize: must be an integer from 1 to 10000 (got "100")']],
    ['event name with a space', { events: { 'api calls': { op: 'sum' } } }, [`events["api calls"]: ${NAME_RULE}`]],
    ['event name with a leading dot', { events: { '.x': { op: 'sum' } } }, [`events[".x"]: ${NAME_RULE}`]],
    ['event name of 129 chars', { events: { ['a'.repeat(129)]: { op: 'sum' } } }, [`events["${'a'.repeat(129)}"]: ${NAME_RULE}`]],
    ['underscore-named event with a spec', { events: { _hidden: { op: 'sum' } } }, [`events["_hidden"]: ${NAME_RULE}`]],
  ];
  for (const [name, doc, expected, env] of cases) {
    it(name, () => assert.deepEqual(problemsOf(doc, env), expected));
  }

  for (const root of [[], null, 'config', 42]) {
    it(`rejects a ${JSON.stringify(root)} root`, () => assert.deepEqual(problemsOf(root), ['(root): must be a JSON object']));
  }

  it('accepts a 128-character event name and the full safe charset', () => {
    const name = `A9._:-${'x'.repeat(122)}`;
    assert.equal(name.length, 128);
    assert.deepEqual(parseConfig({ events: { [name]: { op: 'last' } } }, { env: {} }).eventTypes, [name]);
  });

  it('never echoes a mistyped inline secret', () => {
    const problems = problemsOf({ webhooks: [{ url: 'https://a.example', secret: 987654321 }] });
    assert.deepEqual(problems, ['webhooks[0].secret: must be a non-empty string or "env:NAME"']);
  });

  it('collects every problem into one error, ordered by section and position, with the source on the first line', () => {
    const doc = {
      maxBatchSize: 0,
      periods: ['hourly', 'fortnightly'],
      events: { x: { op: 'median' }, 'bad name': { op: 'sum' } },
      webhooks: [
        { url: 'https://u:p@a.example', secret: 'env:MISSING' },
        { url: 'nope', secret: SECRET },
      ],
      schedule: 'every minute',
      gracePeriod: '-5m',
    };
    const err = configError(() => parseConfig(doc, { env: {}, source: '/etc/meterhook/systemconfig.json' }));
    assert.deepEqual(err.problems, [
      `periods[1]: must be one of ${PERIOD_LIST} (got "fortnightly")`,
      `events["x"].op: must be one of ${OPS} (got "median")`,
      `events["bad name"]: ${NAME_RULE}`,
      'webhooks[0].url: must not contain a username or password (put the shared secret in "secret")',
      'webhooks[0].secret: environment variable MISSING is not set or empty (referenced as "env:MISSING")',
      'webhooks[1].url: must be an http(s) URL (got "nope")',
      'schedule: invalid cron expression "every minute": use 5 or 6 space-separated fields, e.g. "*/15 * * * *"',
      `gracePeriod: invalid duration "-5m": ${HINT}`,
      'maxBatchSize: must be an integer from 1 to 10000 (got 0)',
    ]);
    const lines = err.message.split('\n');
    assert.equal(lines[0], 'invalid configuration in /etc/meterhook/systemconfig.json (9 problems):');
    assert.deepEqual(
      lines.slice(1),
      err.problems.map((p) => `  - ${p}`),
    );
    assert.ok(!err.message.includes(SECRET));
  });

  it('reports more structural problems than TypeBox buffers by default, and restores its setting', () => {
    const before = Settings.Get().maxErrors;
    const problems = problemsOf({ periods: Array.from({ length: 12 }, (_, i) => `p${i}`), maxBatchSize: -1 });
    assert.equal(problems.length, 13);
    assert.equal(problems[11], `periods[11]: must be one of ${PERIOD_LIST} (got "p11")`);
    assert.equal(problems[12], 'maxBatchSize: must be an integer from 1 to 10000 (got -1)');
    assert.equal(Settings.Get().maxErrors, before);
  });
});

describe('parseConfig tolerance and resolution', () => {
  it('ignores unknown keys everywhere, including comment keys inside events', () => {
    const cfg = parseConfig(
      {
        _comment: 'top',
        description: 'ignored',
        events: { _comment: 'not a type', 'api.calls': { op: 'sum', description: 'calls', unit: 'calls' } },
        webhookDelivery: { retries: 5, concurrency: 3 },
      },
      { env: {} },
    );
    assert.deepEqual(cfg.eventTypes, ['api.calls']);
    assert.deepEqual(cfg.events['api.calls'], { op: 'sum' });
    assert.equal(cfg.effective._comment, 'top');
    assert.equal(cfg.webhookDelivery.concurrency, 3);
    assert.equal((cfg.effective.webhookDelivery as Record<string, unknown>).concurrency, 3);
    assert.equal('retries' in (cfg.effective.webhookDelivery as Record<string, unknown>), false);
  });

  it('passes unvalidated webhook keys through in raw and effective, defaulting enabled to true', () => {
    const entry = {
      url: 'https://billing.example/hooks',
      secret: SECRET,
      events: ['aggregation.completed'],
      legacyHeaders: false,
      timeout: '3s',
      note: 'kept',
    };
    const cfg = parseConfig({ webhooks: [entry, { url: 'http://b.example', secret: SECRET, enabled: false }] }, { env: {} });
    const [first, second] = cfg.webhooks;
    assert.deepEqual(first, {
      url: entry.url,
      secret: SECRET,
      enabled: true,
      secretSource: 'inline',
      raw: entry,
      previousSecrets: [],
      id: first?.id,
      events: ['aggregation.completed'],
      periods: null,
      legacyHeaders: false,
      timeoutMs: 3_000,
    });
    assert.notEqual(first?.raw, entry);
    assert.equal(second?.enabled, false);
    assert.deepEqual(second?.events, ['aggregation.completed', 'aggregation.updated']);
    assert.equal(second?.legacyHeaders, true);
    assert.equal(second?.timeoutMs, 10_000);
    assert.deepEqual((cfg.effective.webhooks as unknown[])[0], { id: first?.id, ...entry, enabled: true });
  });

  it('resolves env:NAME secrets at load time and keeps the reference as written', () => {
    const cfg = parseConfig({ webhooks: [{ url: 'https://a.example', secret: 'env:HOOK_SECRET' }] }, { env: { HOOK_SECRET: SECRET } });
    const hook = cfg.webhooks[0];
    assert.equal(hook?.secret, SECRET);
    assert.equal(hook?.secretSource, 'env');
    assert.equal(hook?.raw.secret, 'env:HOOK_SECRET');
    assert.equal((cfg.effective.webhooks as Array<Record<string, unknown>>)[0]?.secret, 'env:HOOK_SECRET');
  });

  it('gives events a null prototype so inherited names are never event types', () => {
    const cfg = parseConfig({ events: { 'api.calls': { op: 'sum' } } }, { env: {} });
    assert.equal(Object.getPrototypeOf(cfg.events), null);
    assert.equal('constructor' in cfg.events, false);
    assert.equal('toString' in cfg.events, false);
    const own = parseConfig({ events: { constructor: { op: 'count' } } }, { env: {} });
    assert.deepEqual(own.events.constructor, { op: 'count' });
    assert.deepEqual(own.eventTypes, ['constructor']);
  });

  it('treats a JSON "__proto__" key as data, never as a prototype', () => {
    const doc: unknown = JSON.parse('{"events": {"__proto__": {"op": "sum"}}}');
    assert.deepEqual(problemsOf(doc), [`events["__proto__"]: ${NAME_RULE}`]);
  });
});

describe('loadConfigFile', () => {
  it('loads a file, strips a BOM, and records its absolute path', () => {
    const file = writeTmp('bom.json', '\uFEFF{"periods": ["daily"], "events": {"a": {"op": "max"}}}');
    const cfg = loadConfigFile(file, {});
    assert.deepEqual(cfg.periods, ['daily']);
    assert.equal(cfg.source, file);
  });

  it('reports malformed JSON with the file on the first line and the line, column and position', () => {
    const file = writeTmp('trailing-comma.json', '{\n  "periods": ["hourly",]\n}');
    const err = configError(() => loadConfigFile(file, {}));
    assert.deepEqual(err.problems, ['malformed JSON at line 2, column 24 (position 25): unexpected character "]"']);
    assert.equal(err.message.split('\n')[0], `invalid configuration in ${file} (1 problem):`);
  });

  it('reports truncated JSON as an unexpected end of file', () => {
    const file = writeTmp('truncated.json', '{"periods": ["hourly"');
    assert.deepEqual(configError(() => loadConfigFile(file, {})).problems, [
      'malformed JSON at line 1, column 22 (position 21): unexpected end of file',
    ]);
  });

  it('does not quote the surrounding source of malformed JSON, which may hold a secret', () => {
    const file = writeTmp('secret.json', `{"webhooks": [{"url": "https://a.example", "secret": "${SECRET}" "enabled": true}]}`);
    const err = configError(() => loadConfigFile(file, {}));
    assert.match(err.problems[0] ?? '', /^malformed JSON at line 1, column \d+ \(position \d+\): unexpected character "\\""$/);
    assert.ok(!err.message.includes(SECRET));
  });

  it('reports a non-object root in a file', () => {
    const file = writeTmp('array.json', '[]');
    assert.deepEqual(configError(() => loadConfigFile(file, {})).problems, ['(root): must be a JSON object']);
  });

  it('reports a missing file as not found, naming the path', () => {
    const file = path.join(tmp, 'nope', 'systemconfig.json');
    const err = configError(() => loadConfigFile(file, {}));
    assert.deepEqual(err.problems, ['file not found (pass --config <path> or set METERHOOK_CONFIG to use another file)']);
    assert.equal(err.source, file);
    assert.ok(err.message.startsWith(`invalid configuration in ${file} (1 problem):`));
  });

  it('reports a directory as unreadable', () => {
    assert.deepEqual(configError(() => loadConfigFile(tmp, {})).problems, ['cannot read file (EISDIR)']);
  });
});

describe('resolveConfigPath', () => {
  it('prefers --config, then METERHOOK_CONFIG, then <cwd>/systemconfig.json, resolving against cwd', () => {
    assert.equal(resolveConfigPath('conf/a.json', { METERHOOK_CONFIG: '/etc/b.json' }, '/srv'), '/srv/conf/a.json');
    assert.equal(resolveConfigPath(undefined, { METERHOOK_CONFIG: '/etc/b.json' }, '/srv'), '/etc/b.json');
    assert.equal(resolveConfigPath(undefined, { METERHOOK_CONFIG: '' }, '/srv'), '/srv/systemconfig.json');
    assert.equal(resolveConfigPath(undefined, {}, '/srv'), '/srv/systemconfig.json');
  });
});
