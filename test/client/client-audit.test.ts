// The SDK's session() and audit() against the real app on a loopback socket: a read key learns its scopes,
// an admin action shows up in audit() with its filters, and iteration follows the cursor to the end.
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createApiKey } from '../../src/auth/api-keys.js';
import { MeterhookClient, type AuditEntry } from '../../src/client/index.js';
import { buildTestApp, TEST_KEY, type TestApp } from '../helpers/app.js';

describe('client: session and audit', () => {
  let t: TestApp;
  let url: string;
  let readKey: { key: string; id: string };
  const clients: MeterhookClient[] = [];
  const client = (apiKey: string) => {
    const c = new MeterhookClient({ url, apiKey });
    clients.push(c);
    return c;
  };
  before(async () => {
    t = await buildTestApp();
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    const created = await createApiKey(t.store, t.clock, 'reader', ['read']);
    readKey = { key: created.key, id: created.record.id };
    await t.apiKeys.reload();
  });
  after(async () => {
    for (const c of clients) await c.close();
    await t.close();
  });

  it('session() names the key and its scopes, never the key', async () => {
    const s = await client(readKey.key).session();
    assert.deepEqual(s, { keyId: readKey.id, scopes: ['read'], customerId: null, admin: false });
    assert.deepEqual(await client(TEST_KEY).session(), { keyId: 'env', scopes: ['admin'], customerId: null, admin: true });
  });

  it('audit() lists admin actions, filters them and pages through them', async () => {
    const admin = client(TEST_KEY);
    for (let i = 0; i < 3; i++) {
      t.clock.advance(1000);
      await admin.trigger();
    }
    t.clock.advance(1000);
    await assert.rejects(client(readKey.key).trigger(), { status: 403 });
    const page = await admin.audit({ limit: 2 });
    assert.equal(page.items.length, 2);
    assert.ok(page.nextCursor);
    const all: AuditEntry[] = [];
    for await (const r of admin.audit({ limit: 1 })) all.push(r);
    assert.equal(all.length, 4);
    assert.deepEqual(
      all.map((r) => [r.action, r.keyId, r.status]),
      [['aggregation.trigger', readKey.id, 403], ...Array(3).fill(['aggregation.trigger', 'env', 200])],
    );
    assert.equal((await admin.audit({ keyId: 'env' })).items.length, 3);
    assert.equal((await admin.audit({ action: 'delivery.retry' })).items.length, 0);
    assert.equal((await admin.audit({ from: new Date(t.clock.now()) })).items.length, 1);
    await assert.rejects(async () => await client(readKey.key).audit(), { status: 403 });
  });
});
