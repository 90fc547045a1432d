// The audit log: every audited admin action leaves exactly one record with who, when, what and how it
// ended (refusals by a valid key too, never for a key that did not verify); GET /audit pages and filters
// it; no record holds a key or a body; the table refuses updates; retention deletes old records on the
// injected clock; and a record that cannot be written is counted without changing the action's answer.
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { applyAuditRetention } from '../../src/aggregate/retention.js';
import { createApiKey } from '../../src/auth/api-keys.js';
import { buildTestApp, TEST_KEY, TEST_STORE, type TestApp } from '../helpers/app.js';
import { PARAM_SAMPLES, SAMPLE_CONFIG, seedDelivery } from '../helpers/route-samples.js';
import { liveConnection, pgSideConnection } from '../helpers/store-faults.js';

interface Entry {
  id: string;
  action: string;
  keyId: string;
  at: string;
  method: string;
  route: string;
  target: Record<string, string>;
  status: number;
  errorCode: string | null;
  requestId: string;
}

describe('audit log', () => {
  let t: TestApp;
  let readKey: string;
  let adminKey: { key: string; id: string };
  before(async () => {
    t = await buildTestApp({ config: SAMPLE_CONFIG });
    await seedDelivery(t);
    readKey = (await createApiKey(t.store, t.clock, 'reader', ['read'])).key;
    const admin = await createApiKey(t.store, t.clock, 'operator', ['admin']);
    adminKey = { key: admin.key, id: admin.record.id };
    await t.apiKeys.reload();
  });
  after(() => t.close());

  const audit = async (query = '', key = TEST_KEY): Promise<{ rows: Entry[]; next: string | undefined; status: number }> => {
    const res = await t.app.inject({ method: 'GET', url: `/audit${query ? `?${query}` : ''}`, headers: { 'x-apikey': key } });
    return {
      rows: res.statusCode === 200 ? (res.json() as Entry[]) : [],
      next: res.headers['x-next-cursor'] as string | undefined,
      status: res.statusCode,
    };
  };
  const post = (url: string, key: string, body?: unknown) =>
    t.app.inject({
      method: 'POST',
      url,
      headers: { 'x-apikey': key, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      payload: body === undefined ? undefined : JSON.stringify(body),
    });

  it('every audited action leaves exactly one record with the right fields', async () => {
    const deliveryId = PARAM_SAMPLES.id!;
    const actions = [
      {
        url: `/webhooks/deliveries/${deliveryId}/retry`,
        action: 'delivery.retry',
        route: '/webhooks/deliveries/:id/retry',
        target: { id: deliveryId },
      },
      {
        url: '/webhooks/recover',
        body: { since: '2026-01-01T00:00:00Z' },
        action: 'delivery.recover',
        route: '/webhooks/recover',
        target: {},
      },
      {
        url: '/webhooks/endpoints/billing/enable',
        action: 'endpoint.enable',
        route: '/webhooks/endpoints/:endpointId/enable',
        target: { endpointId: 'billing' },
      },
      { url: '/aggregations/trigger', action: 'aggregation.trigger', route: '/aggregations/trigger', target: {} },
    ];
    for (const a of actions) {
      t.clock.advance(1000);
      const before = (await audit()).rows.length;
      const res = await post(a.url, adminKey.key, a.body);
      assert.ok(res.statusCode < 300, `${a.url}: ${res.statusCode} ${res.body}`);
      const { rows } = await audit();
      assert.equal(rows.length, before + 1, `${a.action}: exactly one new record`);
      const r = rows[0]!;
      assert.deepEqual(
        { ...r, id: undefined },
        {
          id: undefined,
          action: a.action,
          keyId: adminKey.id,
          at: new Date(t.clock.now()).toISOString(),
          method: 'POST',
          route: a.route,
          target: a.target,
          status: res.statusCode,
          errorCode: null,
          requestId: res.headers['x-request-id'],
        },
      );
      assert.match(r.id, /^aud_/);
    }
  });

  it('records a refusal by a valid key and an error answer, never a key that did not verify', async () => {
    t.clock.advance(1000);
    const count = (await audit('limit=1000')).rows.length;
    const refused = await post('/aggregations/trigger', readKey);
    assert.equal(refused.statusCode, 403);
    t.clock.advance(1000);
    const missing = await post('/webhooks/endpoints/nope/enable', TEST_KEY);
    assert.equal(missing.statusCode, 404);
    assert.equal((await post('/aggregations/trigger', 'mh_not_a_key')).statusCode, 401);
    assert.equal((await t.app.inject({ method: 'POST', url: '/aggregations/trigger' })).statusCode, 401);
    const { rows } = await audit('limit=1000');
    assert.equal(rows.length, count + 2);
    const [notFound, forbidden] = rows;
    assert.equal(notFound!.keyId, 'env', 'a key from the environment is recorded as env');
    assert.deepEqual([notFound!.status, notFound!.errorCode, notFound!.target], [404, 'not_found', { endpointId: 'nope' }]);
    assert.equal(forbidden!.status, 403);
    assert.equal(forbidden!.errorCode, 'forbidden');
    assert.notEqual(forbidden!.keyId, 'env');
  });

  it('holds no key, hash or body', async () => {
    const body = JSON.stringify((await audit('limit=1000')).rows);
    for (const secret of [TEST_KEY, adminKey.key, readKey, '2026-01-01T00:00:00Z', SAMPLE_CONFIG.webhooks[0]!.secret]) {
      assert.ok(!body.includes(secret), `the audit log holds ${secret}`);
    }
  });

  it('pages newest first with the cursor and filters by action, key and time', async () => {
    const all = (await audit('limit=1000')).rows;
    assert.ok(all.length >= 6);
    const seen: Entry[] = [];
    let cursor: string | undefined;
    do {
      const page = await audit(`limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...page.rows);
      cursor = page.next;
    } while (cursor);
    assert.deepEqual(seen, all);
    for (let i = 1; i < all.length; i++) assert.ok(all[i - 1]!.at >= all[i]!.at, 'newest first');

    const triggers = (await audit('action=aggregation.trigger')).rows;
    assert.ok(triggers.length === 2 && triggers.every((r) => r.action === 'aggregation.trigger'));
    const byKey = (await audit(`keyId=${adminKey.id}`)).rows;
    assert.equal(byKey.length, 4);
    const mid = all[Math.floor(all.length / 2)]!.at;
    const from = (await audit(`from=${mid}`)).rows;
    const to = (await audit(`to=${mid}`)).rows;
    assert.ok(from.every((r) => r.at >= mid) && to.every((r) => r.at <= mid));
    assert.equal(from.length + to.length, all.length + all.filter((r) => r.at === mid).length);
    assert.equal((await audit('action=nope')).status, 400);
    assert.equal((await audit('cursor=abc')).status, 400);
    assert.equal((await audit('', readKey)).status, 403, 'only admin keys read the log');
  });

  it('is append-only: the table refuses an update', async () => {
    if (TEST_STORE === 'sqlite') {
      assert.throws(() => liveConnection(t.store).prepare('UPDATE audit_log SET status = 200').run(), /append-only/);
    } else {
      const c = await pgSideConnection(t.store);
      try {
        await assert.rejects(c.query('UPDATE audit_log SET status = 200'), /append-only/);
      } finally {
        await c.end();
      }
    }
  });

  it('a record that cannot be written is counted and logged; the action still answers', async () => {
    const fail = "RAISE(ABORT, 'audit writes refused')";
    const c = TEST_STORE === 'postgres' ? await pgSideConnection(t.store) : undefined;
    const exec = async (sql: string) => (c ? void (await c.query(sql)) : void liveConnection(t.store).exec(sql));
    if (c) {
      await exec(
        `CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit writes refused'; END $$`,
      );
      await exec('CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse_audit()');
    } else {
      await exec(`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log BEGIN SELECT ${fail}; END`);
    }
    try {
      const count = (await audit('limit=1000')).rows.length;
      const res = await post('/webhooks/recover', TEST_KEY, { since: '2026-01-01T00:00:00Z' });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal((res.json() as { requeued: number }).requeued >= 0, true);
      assert.equal((await audit('limit=1000')).rows.length, count);
      const metrics = await t.app.inject({ method: 'GET', url: '/metrics', headers: { 'x-apikey': TEST_KEY } });
      assert.match(metrics.body, /^meterhook_audit_write_failures_total 1$/m);
    } finally {
      await exec(`DROP TRIGGER refuse_audit${c ? ' ON audit_log' : ''}`);
      await c?.end();
    }
  });

  it('retention deletes records older than retention.audit (90 days by default) on the clock', async () => {
    const count = (await audit('limit=1000')).rows.length;
    assert.ok(count > 0);
    t.clock.advance(89 * 86_400_000);
    assert.equal((await applyAuditRetention(t.ctx)).deleted, 0);
    await post('/aggregations/trigger', TEST_KEY);
    t.clock.advance(2 * 86_400_000);
    assert.equal((await applyAuditRetention(t.ctx)).deleted, count);
    const left = (await audit('limit=1000')).rows;
    assert.deepEqual(
      left.map((r) => r.action),
      ['aggregation.trigger'],
    );
  });
});
