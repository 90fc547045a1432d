// `meterhook keys create|list|revoke` on the local store: a customer key with an expiry and its own rate limit,
// usage errors for an admin customer key, a bad expiry and a burst without a rate, and revocation by id.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeTempDir, runCli } from '../helpers/server-process.js';

describe('meterhook keys', () => {
  it('creates a customer key with an expiry and a rate limit, lists it and revokes it', async () => {
    const dataDir = makeTempDir();
    const run = (args: string[]) => runCli(['keys', ...args], { dataDir, timeoutMs: 20_000 });
    const created = await run([
      'create',
      '--name',
      'portal',
      '--scope',
      'read',
      '--customer',
      'cust_9',
      '--expires',
      '2099-01-01T00:00:00Z',
      '--rate-limit',
      '5',
      '--burst',
      '10',
      '--json',
    ]);
    assert.equal(created.code, 0, created.stderr);
    const k = JSON.parse(created.stdout) as Record<string, unknown> & { id: string; key: string };
    assert.equal(k.customerId, 'cust_9');
    assert.equal(k.expiresAt, '2099-01-01T00:00:00.000Z');
    assert.deepEqual(k.rateLimit, { requestsPerSecond: 5, burst: 10 });

    for (const [args, message] of [
      [['create', '--customer', 'c1'], /a customer key may not have the admin scope/],
      [['create', '--scope', 'read', '--expires', 'soon'], /--expires must be a future ISO-8601 instant/],
      [['create', '--scope', 'read', '--burst', '3'], /--burst needs --rate-limit/],
    ] as const) {
      const bad = await run([...args]);
      assert.equal(bad.code, 2, `${args.join(' ')}: ${bad.stderr}`);
      assert.match(bad.stderr, message);
    }

    const list = await run(['list', '--json']);
    const rows = JSON.parse(list.stdout) as Array<{ id: string; customerId: string | null; revokedAt: number | null }>;
    assert.deepEqual(
      rows.map((r) => [r.id, r.customerId]),
      [[k.id, 'cust_9']],
    );
    assert.ok(!list.stdout.includes(k.key));
    assert.equal((await run(['revoke', k.id])).code, 0);
    const after = JSON.parse((await run(['list', '--json'])).stdout) as Array<{ revokedAt: number | null }>;
    assert.ok(after[0]!.revokedAt !== null);
  });
});
