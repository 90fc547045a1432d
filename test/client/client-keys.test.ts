// client.keys against the app over real loopback HTTP: create (the key shown once), list, get and revoke, the
// revoked key refused at once, and a server refusal (an admin customer key) surfacing as a MeterhookError.
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MeterhookClient, MeterhookError } from '../../src/client/index.js';
import { buildTestApp, TEST_KEY, type TestApp } from '../helpers/app.js';

describe('client.keys', () => {
  let t: TestApp;
  let url: string;
  let client: MeterhookClient;
  before(async () => {
    t = await buildTestApp();
    url = await t.app.listen({ port: 0, host: '127.0.0.1' });
    client = new MeterhookClient({ url, apiKey: TEST_KEY, maxRetries: 0 });
  });
  after(async () => {
    await client.close();
    await t.close();
  });

  it('creates, lists, gets and revokes a key', async () => {
    const created = await client.keys.create({
      name: 'portal',
      scopes: ['read'],
      customerId: 'cust_1',
      expiresAt: t.clock.now() + 3_600_000,
      rateLimit: { requestsPerSecond: 10, burst: 20 },
    });
    assert.match(created.key, /^mh_/);
    assert.equal(created.customerId, 'cust_1');
    assert.equal(created.expiresAt, new Date(t.clock.now() + 3_600_000).toISOString());
    const listed = await client.keys.list();
    assert.ok(listed.some((k) => k.id === created.id && !('key' in k)));
    assert.equal((await client.keys.get(created.id)).name, 'portal');
    const portal = new MeterhookClient({ url, apiKey: created.key, maxRetries: 0 });
    try {
      assert.equal((await portal.usage('cust_1')).customerId, 'cust_1');
      const revoked = await client.keys.revoke(created.id);
      assert.ok(revoked.revokedAt);
      await assert.rejects(portal.usage('cust_1'), (e: unknown) => e instanceof MeterhookError && e.status === 401);
    } finally {
      await portal.close();
    }
  });

  it('a refused creation is a MeterhookError with the server code', async () => {
    await assert.rejects(
      client.keys.create({ name: 'bad', scopes: ['admin'], customerId: 'cust_1' }),
      (e: unknown) => e instanceof MeterhookError && e.status === 400,
    );
    await assert.rejects(client.keys.get('key_missing'), (e: unknown) => e instanceof MeterhookError && e.status === 404);
  });
});
