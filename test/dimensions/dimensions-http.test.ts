// Dimensions over HTTP: per-group totals in usage and documents, documents of meters without groupBy unchanged,
// the per-hour group bound and its overflow group, unique counts across hours, and series split by a dimension.
// store-contract: sqlite, postgres
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { closeDuePeriods } from '../../src/aggregate/close-due-periods.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';

const T = (iso: string): number => Date.parse(iso);
const NOW = T('2026-03-10T12:30:00Z');
const CONFIG = {
  periods: ['hourly', 'daily', 'monthly'],
  events: {
    tokens: { op: 'sum', groupBy: ['model', 'region'] },
    calls: { op: 'count' },
    users: { op: 'unique', field: 'userId', groupBy: ['plan'] },
  },
};

async function post(t: TestApp, events: unknown[]): Promise<void> {
  const r = await t.app.inject({ method: 'POST', url: '/usagebatch', headers: t.headers, payload: events });
  assert.equal(r.statusCode, 201, r.body);
}

async function get<T>(t: TestApp, url: string, status = 200): Promise<T> {
  const r = await t.app.inject({ method: 'GET', url, headers: t.headers });
  assert.equal(r.statusCode, status, r.body);
  return r.json() as T;
}

const tok = (customerId: string, value: number, metadata: Record<string, unknown>, at = '2026-03-10T10:15:00Z') => ({
  eventType: 'tokens',
  customerId,
  value,
  timestamp: at,
  metadata,
});

interface Usage {
  eventsDecimal: Record<string, string>;
  groups?: Record<
    string,
    Array<{ dimensions: Record<string, string | null>; value: number; valueDecimal: string; count: number; overflow?: true }>
  >;
}

describe('dimensions over HTTP', () => {
  it('usage and documents carry per-group totals that add up exactly; other meters are unchanged', async (tc) => {
    const t = await buildTestApp({ config: CONFIG, now: NOW });
    tc.after(() => t.close());
    await post(t, [
      tok('acme', 0.1, { model: 'gpt-4o', region: 'eu' }),
      tok('acme', 0.2, { model: 'gpt-4o', region: 'eu' }),
      tok('acme', 1200, { model: 'llama', region: 'us', extra: { nested: true } }),
      tok('acme', 5, { model: 3.5, region: true }),
      tok('acme', 7, {}),
      { eventType: 'calls', customerId: 'acme', value: 1, timestamp: '2026-03-10T10:20:00Z', metadata: { model: 'gpt-4o' } },
    ]);
    const u = await get<Usage>(t, '/customers/acme/usage?period=monthly');
    assert.equal(u.eventsDecimal.tokens, '1212.3');
    assert.deepEqual(u.groups, {
      tokens: [
        { dimensions: { model: null, region: null }, value: 7, valueDecimal: '7', count: 1 },
        { dimensions: { model: '3.5', region: 'true' }, value: 5, valueDecimal: '5', count: 1 },
        { dimensions: { model: 'gpt-4o', region: 'eu' }, value: 0.3, valueDecimal: '0.3', count: 2 },
        { dimensions: { model: 'llama', region: 'us' }, value: 1200, valueDecimal: '1200', count: 1 },
      ],
    });
    // A customer whose meters have no groupBy data gets no groups key at all.
    await post(t, [{ eventType: 'calls', customerId: 'plain', value: 1, timestamp: '2026-03-10T10:20:00Z' }]);
    const plain = await t.app.inject({ method: 'GET', url: '/customers/plain/usage?period=monthly', headers: t.headers });
    assert.ok(!plain.body.includes('groups'), plain.body);

    t.clock.set(T('2026-04-01T01:00:00Z'));
    await closeDuePeriods(t.ctx);
    const [doc] = await get<Usage[]>(t, '/aggregations?customerId=acme&period=monthly');
    assert.deepEqual(doc!.groups, u.groups);
    const [plainDoc] = await get<Array<Record<string, unknown>>>(t, '/aggregations?customerId=plain&period=monthly');
    assert.deepEqual(Object.keys(plainDoc!).includes('groups'), false);
  });

  it('past maxGroupsPerHour, new groups of the hour count in one overflow group and totals stay exact', async (tc) => {
    const t = await buildTestApp({ config: { ...CONFIG, maxGroupsPerHour: 2 }, now: NOW });
    tc.after(() => t.close());
    await post(t, [tok('c', 1, { model: 'a' }), tok('c', 2, { model: 'b' })]);
    await post(t, [tok('c', 4, { model: 'c' }), tok('c', 8, { model: 'a' }), tok('c', 16, { model: 'd' })]);
    // Another hour has room again.
    await post(t, [tok('c', 32, { model: 'c' }, '2026-03-10T11:05:00Z')]);
    const u = await get<Usage>(t, '/customers/c/usage?period=daily');
    assert.equal(u.eventsDecimal.tokens, '63');
    assert.deepEqual(
      u.groups!.tokens!.map((g) => [g.dimensions.model ?? null, g.valueDecimal, g.count, g.overflow ?? false]),
      [
        ['a', '9', 2, false],
        ['b', '2', 1, false],
        ['c', '32', 1, false],
        [null, '20', 2, true],
      ],
    );
    assert.deepEqual(u.groups!.tokens![3]!.dimensions, {});
    const metrics = await t.app.inject({ method: 'GET', url: '/metrics', headers: t.headers });
    assert.match(metrics.body, /^meterhook_groups_overflowed 2$/m);
  });

  it('unique counts distinct values exactly across hours, per group and in total; events without the field do not count', async (tc) => {
    const t = await buildTestApp({ config: CONFIG, now: NOW });
    tc.after(() => t.close());
    const user = (userId: unknown, plan: string, at: string) => ({
      eventType: 'users',
      customerId: 'u',
      value: 99,
      timestamp: at,
      metadata: userId === undefined ? { plan } : { userId, plan },
    });
    await post(t, [
      user('alice', 'pro', '2026-03-10T08:00:00Z'),
      user('alice', 'pro', '2026-03-10T09:00:00Z'),
      user('bob', 'free', '2026-03-10T09:30:00Z'),
      user('alice', 'free', '2026-03-10T10:00:00Z'),
      user(undefined, 'free', '2026-03-10T10:10:00Z'),
      user(null, 'free', '2026-03-10T10:20:00Z'),
      user(7, 'pro', '2026-03-09T10:20:00Z'),
    ]);
    const day = await get<Usage>(t, '/customers/u/usage?period=daily');
    assert.equal(day.eventsDecimal.users, '2');
    assert.deepEqual(
      day.groups!.users!.map((g) => [g.dimensions.plan, g.valueDecimal, g.count]),
      [
        ['free', '2', 4],
        ['pro', '1', 2],
      ],
    );
    const month = await get<Usage>(t, '/customers/u/usage?period=monthly');
    assert.equal(month.eventsDecimal.users, '3');
    const hour = await get<Usage>(t, '/customers/u/usage?period=hourly&at=2026-03-10T09:59:00Z');
    assert.equal(hour.eventsDecimal.users, '2');
  });

  it('series split by one dimension: one series per value, null first, values exact; bad keys are 400', async (tc) => {
    const t = await buildTestApp({ config: CONFIG, now: NOW });
    tc.after(() => t.close());
    await post(t, [
      tok('s', 1, { model: 'gpt-4o', region: 'eu' }, '2026-03-10T09:10:00Z'),
      tok('s', 2, { model: 'gpt-4o', region: 'us' }, '2026-03-10T09:20:00Z'),
      tok('s', 4, { region: 'us' }, '2026-03-10T10:20:00Z'),
      tok('s', 8, { model: 'llama' }, '2026-03-10T10:30:00Z'),
    ]);
    const url = '/customers/s/usage/series?eventType=tokens&bucket=hour&from=2026-03-10T09:00:00Z&to=2026-03-10T10:59:00Z';
    const s = await get<{
      points: Array<{ valueDecimal: string }>;
      groupBy: string;
      groups: Array<{ value: string | null; points: unknown[] }>;
    }>(t, `${url}&groupBy=model`);
    assert.deepEqual(
      s.points.map((p) => p.valueDecimal),
      ['3', '12'],
    );
    assert.equal(s.groupBy, 'model');
    assert.deepEqual(
      s.groups.map((g) => [
        g.value,
        (g.points as Array<{ t: string; valueDecimal: string; count: number }>).map((p) => [p.t, p.valueDecimal, p.count]),
      ]),
      [
        [null, [['2026-03-10T10:00:00.000Z', '4', 1]]],
        ['gpt-4o', [['2026-03-10T09:00:00.000Z', '3', 2]]],
        ['llama', [['2026-03-10T10:00:00.000Z', '8', 1]]],
      ],
    );
    const bad = await get<{ error: string }>(t, `${url}&groupBy=colour`, 400);
    assert.match(bad.error, /groupBy=colour is not a dimension of tokens: give one of its groupBy keys: model, region/);
    const notGrouped = await get<{ error: string }>(t, '/customers/s/usage/series?eventType=calls&groupBy=model', 400);
    assert.match(notGrouped.error, /a meter with groupBy/);
  });

  it('a unique meter series counts distinct values per bucket', async (tc) => {
    const t = await buildTestApp({ config: CONFIG, now: NOW });
    tc.after(() => t.close());
    const ev = (userId: string, at: string) => ({
      eventType: 'users',
      customerId: 'q',
      value: 1,
      timestamp: at,
      metadata: { userId, plan: 'p' },
    });
    await post(t, [
      ev('a', '2026-03-10T08:00:00Z'),
      ev('a', '2026-03-10T08:30:00Z'),
      ev('b', '2026-03-10T08:40:00Z'),
      ev('a', '2026-03-10T09:00:00Z'),
    ]);
    const s = await get<{
      points: Array<{ valueDecimal: string; count: number }>;
      groups: Array<{ points: Array<{ valueDecimal: string }> }>;
    }>(t, '/customers/q/usage/series?eventType=users&bucket=hour&from=2026-03-10T08:00:00Z&to=2026-03-10T09:59:00Z&groupBy=plan');
    assert.deepEqual(
      s.points.map((p) => [p.valueDecimal, p.count]),
      [
        ['2', 3],
        ['1', 1],
      ],
    );
    assert.deepEqual(
      s.groups[0]!.points.map((p) => p.valueDecimal),
      ['2', '1'],
    );
    const byDay = await get<{ points: Array<{ valueDecimal: string }> }>(
      t,
      '/customers/q/usage/series?eventType=users&bucket=day&from=2026-03-10T00:00:00Z',
    );
    assert.deepEqual(
      byDay.points.map((p) => p.valueDecimal),
      ['2'],
    );
  });
});
