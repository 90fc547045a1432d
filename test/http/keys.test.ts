// Key management over HTTP: POST /keys shows the key once and stores only its hash, GET /keys and GET /keys/:keyId
// show no key material, DELETE /keys/:keyId stops the key at once (and, through the key version, in another app
// sharing the database within the poll interval), the last admin key is refused 409 when no key comes from the
// environment, and an expired key answers 401 by the injected clock.
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createApiKey, hashKey, KEY_VERSION_POLL_MS } from '../../src/auth/api-keys.js';
import { buildTestApp, reopenTestStore, TEST_KEY, TEST_STORE, type TestApp } from '../helpers/app.js';

const admin = { 'x-apikey': TEST_KEY };

describe('key management', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp();
  });
  after(() => t.close());

  const create = (payload: unknown, headers: Record<string, string> = admin) =>
    t.app.inject({ method: 'POST', url: '/keys', headers, payload: payload as Record<string, unknown> });

  it('creates a key, shows it once, keeps only its hash, and lists it without key material', async () => {
    const res = await create({ name: 'billing', scopes: ['read', 'ingest'], rateLimit: { requestsPerSecond: 5, burst: 10 } });
    assert.equal(res.statusCode, 201, res.body);
    const body = res.json() as Record<string, unknown> & { key: string; id: string };
    assert.match(body.key, /^mh_/);
    assert.deepEqual(body.scopes, ['ingest', 'read']);
    assert.equal(body.customerId, null);
    assert.equal(body.expiresAt, null);
    assert.deepEqual(body.rateLimit, { requestsPerSecond: 5, burst: 10 });
    assert.equal(body.createdAt, new Date(t.clock.now()).toISOString());
    const stored = (await t.store.listApiKeys()).find((k) => k.id === body.id)!;
    assert.equal(stored.hash, hashKey(body.key));
    const list = await t.app.inject({ method: 'GET', url: '/keys', headers: admin });
    assert.equal(list.statusCode, 200);
    assert.ok(!list.body.includes(body.key) && !list.body.includes(stored.hash), 'no key material in the list');
    assert.ok((list.json() as Array<{ id: string }>).some((k) => k.id === body.id));
    const one = await t.app.inject({ method: 'GET', url: `/keys/${body.id}`, headers: admin });
    assert.equal(one.statusCode, 200);
    assert.equal((one.json() as { prefix: string }).prefix, body.key.slice(0, 9));
    assert.ok(!one.body.includes(body.key));
    // The new key works at once.
    const ping = await t.app.inject({ method: 'GET', url: '/ping', headers: { 'x-apikey': body.key } });
    assert.equal(ping.statusCode, 200);
  });

  it('refuses bad input with 400', async () => {
    const bad = [
      {},
      { name: 'x' },
      { name: 'x', scopes: [] },
      { name: 'x', scopes: ['root'] },
      { name: '', scopes: ['read'] },
      { name: 'x', scopes: ['admin'], customerId: 'c1' },
      { name: 'x', scopes: ['read'], customerId: '' },
      { name: 'x', scopes: ['read'], customerId: 'a\u0000b' },
      { name: 'x', scopes: ['read'], expiresAt: 'tomorrow' },
      { name: 'x', scopes: ['read'], expiresAt: '2020-01-01T00:00:00Z' },
      { name: 'x', scopes: ['read'], rateLimit: { requestsPerSecond: 0, burst: 1 } },
      { name: 'x', scopes: ['read'], rateLimit: { requestsPerSecond: 1 } },
      { name: 'x', scopes: ['read'], extra: true },
    ];
    for (const payload of bad) {
      const res = await create(payload);
      assert.equal(res.statusCode, 400, `${JSON.stringify(payload)}: ${res.body}`);
    }
  });

  it('only an admin key manages keys', async () => {
    const { key } = await createApiKey(t.store, t.clock, 'reader', ['read']);
    await t.apiKeys.reload();
    for (const [method, url] of [
      ['POST', '/keys'],
      ['GET', '/keys'],
      ['GET', '/keys/key_x'],
      ['DELETE', '/keys/key_x'],
    ] as const) {
      const res = await t.app.inject({ method, url, headers: { 'x-apikey': key } });
      assert.equal(res.statusCode, 403, `${method} ${url}`);
    }
  });

  it('revocation stops the key at once; an unknown key is 404', async () => {
    const { key, id } = (await create({ name: 'short-lived', scopes: ['read'] })).json() as { key: string; id: string };
    assert.equal((await t.app.inject({ method: 'GET', url: '/ping', headers: { 'x-apikey': key } })).statusCode, 200);
    const del = await t.app.inject({ method: 'DELETE', url: `/keys/${id}`, headers: admin });
    assert.equal(del.statusCode, 200, del.body);
    assert.equal((del.json() as { revokedAt: string }).revokedAt, new Date(t.clock.now()).toISOString());
    const after = await t.app.inject({ method: 'GET', url: '/ping', headers: { 'x-apikey': key } });
    assert.equal(after.statusCode, 401);
    assert.equal((await t.app.inject({ method: 'DELETE', url: '/keys/key_nope', headers: admin })).statusCode, 404);
    assert.equal((await t.app.inject({ method: 'GET', url: '/keys/key_nope', headers: admin })).statusCode, 404);
  });

  it('an expired key answers 401 saying so, by the injected clock', async () => {
    const expiresAt = new Date(t.clock.now() + 60_000).toISOString();
    const { key } = (await create({ name: 'trial', scopes: ['read'], expiresAt })).json() as { key: string };
    assert.equal((await t.app.inject({ method: 'GET', url: '/ping', headers: { 'x-apikey': key } })).statusCode, 200);
    t.clock.advance(60_000);
    const res = await t.app.inject({ method: 'GET', url: '/ping', headers: { 'x-apikey': key } });
    assert.equal(res.statusCode, 401);
    assert.equal((res.json() as { error: string; code: string }).code, 'unauthorized');
    assert.match((res.json() as { error: string }).error, /This API key has expired/);
  });
});

describe('the last admin key', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp({ envKeys: [] });
  });
  after(() => t.close());

  it('cannot be revoked when no key comes from the environment (409 last_admin_key); another admin key lifts that', async () => {
    const first = await createApiKey(t.store, t.clock, 'first', ['admin']);
    await t.apiKeys.reload();
    const headers = { 'x-apikey': first.key };
    const refused = await t.app.inject({ method: 'DELETE', url: `/keys/${first.record.id}`, headers });
    assert.equal(refused.statusCode, 409, refused.body);
    assert.equal((refused.json() as { code: string }).code, 'last_admin_key');
    assert.equal((await t.app.inject({ method: 'GET', url: '/keys', headers })).statusCode, 200, 'still works');
    const second = (
      await t.app.inject({ method: 'POST', url: '/keys', headers, payload: { name: 'second', scopes: ['admin'] } })
    ).json() as {
      key: string;
    };
    const ok = await t.app.inject({ method: 'DELETE', url: `/keys/${first.record.id}`, headers: { 'x-apikey': second.key } });
    assert.equal(ok.statusCode, 200, ok.body);
  });

  it('two revocations at once of the only two admin keys: one is revoked, the other refused with 409', async () => {
    const a = await createApiKey(t.store, t.clock, 'a', ['admin']);
    const b = await createApiKey(t.store, t.clock, 'b', ['admin']);
    await t.apiKeys.reload();
    for (const k of (await t.store.listApiKeys()).filter((r) => r.revokedAt === null && r.id !== a.record.id && r.id !== b.record.id)) {
      await t.store.revokeApiKey(k.id, t.clock.now());
    }
    await t.apiKeys.reload();
    const both = await Promise.all(
      [a, b].map((k) => t.app.inject({ method: 'DELETE', url: `/keys/${k.record.id}`, headers: { 'x-apikey': k.key } })),
    );
    assert.deepEqual(both.map((r) => r.statusCode).sort(), [200, 409], both.map((r) => r.body).join(' | '));
    const active = (await t.store.listApiKeys()).filter((r) => r.revokedAt === null && r.scopes.includes('admin'));
    assert.equal(active.length, 1, 'one admin key is left');
  });
});

describe('revocation across apps sharing one database', { skip: TEST_STORE !== 'postgres' && 'PostgreSQL only' }, () => {
  let a: TestApp;
  let b: TestApp;
  before(async () => {
    a = await buildTestApp();
    b = await buildTestApp({ store: await reopenTestStore(a.store) });
  });
  after(async () => {
    await b.close();
    await b.store.close();
    await a.close();
  });

  it('a key revoked on one app stops working on the other within the key-version poll', async () => {
    const { key, id } = (
      await a.app.inject({ method: 'POST', url: '/keys', headers: admin, payload: { name: 'shared', scopes: ['read'] } })
    ).json() as { key: string; id: string };
    b.clock.advance(KEY_VERSION_POLL_MS);
    assert.equal((await b.app.inject({ method: 'GET', url: '/ping', headers: { 'x-apikey': key } })).statusCode, 200, 'created elsewhere');
    assert.equal((await a.app.inject({ method: 'DELETE', url: `/keys/${id}`, headers: admin })).statusCode, 200);
    assert.equal((await a.app.inject({ method: 'GET', url: '/ping', headers: { 'x-apikey': key } })).statusCode, 401, 'at once here');
    b.clock.advance(KEY_VERSION_POLL_MS);
    assert.equal(
      (await b.app.inject({ method: 'GET', url: '/ping', headers: { 'x-apikey': key } })).statusCode,
      401,
      'there after the poll',
    );
  });
});
