// Revocation across real processes on PostgreSQL: two `meterhook serve` processes share one database; a key
// created with POST /keys on one is accepted by the other, and once revoked there it is refused at once by the
// revoking process and within 5 s by the other (the key version each process polls).

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { REFERENCE_CONFIG } from '../helpers/app.js';
import type { PgCluster } from '../helpers/postgres-cluster.js';
import { ownCluster, tearDown, waitFor } from '../helpers/pg-e2e.js';
import { http, type ServerProcess, startServerProcess } from '../helpers/server-process.js';

const API_KEY = `mh_pgrevoke_${randomBytes(10).toString('hex')}`;
const AUTH = { 'x-apikey': API_KEY };

describe('key revocation across processes on one PostgreSQL database', () => {
  let cluster: PgCluster | undefined;
  const servers: ServerProcess[] = [];

  before(async () => {
    cluster = await ownCluster();
    const url = await cluster.createDatabase('mh_revoke');
    servers.push(await startServerProcess({ config: REFERENCE_CONFIG, apiKey: API_KEY, env: { DATABASE_URL: url } }));
    servers.push(await startServerProcess({ config: REFERENCE_CONFIG, apiKey: API_KEY, env: { DATABASE_URL: url } }));
  });
  after(() => tearDown({ servers, cluster }));

  it('a key revoked on one process is refused by the other within 5 s', async () => {
    const [a, b] = servers as [ServerProcess, ServerProcess];
    const created = await http(`${a.url}/keys`, { method: 'POST', headers: AUTH, body: { name: 'shared', scopes: ['read'] } });
    assert.equal(created.status, 201);
    const { key, id } = created.body as { key: string; id: string };
    const ping = async (s: ServerProcess) => (await http(`${s.url}/ping`, { headers: { 'x-apikey': key } })).status;
    await waitFor('the other process to accept the new key', 5_000, async () => ((await ping(b)) === 200 ? true : undefined), 100);

    const revoked = await http(`${a.url}/keys/${id}`, { method: 'DELETE', headers: AUTH });
    assert.equal(revoked.status, 200);
    const at = Date.now();
    assert.equal(await ping(a), 401, 'refused at once by the revoking process');
    await waitFor('the other process to refuse the revoked key', 5_000, async () => ((await ping(b)) === 401 ? true : undefined), 100);
    assert.ok(Date.now() - at < 5_000);
  });
});
