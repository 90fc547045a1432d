// First start of a real `meterhook serve` process: with no configured API key and an empty data dir
// it mints one admin key, prints it once with a ready-to-run curl line, stores only its hash, and keeps
// it across restarts. Keys created with scopes do only what their scopes allow; once every key is
// revoked a restart mints no new one. An invalid configuration stops startup with a message naming the bad path.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cleanupServerProcesses, http, makeTempDir, runCli, startServerProcess, type ServerProcess } from '../helpers/server-process.js';

const KEY_RE = /mh_[A-Za-z0-9_-]{20,}/g;

/** The bytes of the SQLite database and its WAL (if any), as latin1 text so any ASCII string can be searched. */
function databaseBytes(dataDir: string): { text: string; files: string[] } {
  const files = ['meterhook.db', 'meterhook.db-wal', 'meterhook.db-journal']
    .map((f) => path.join(dataDir, f))
    .filter((f) => fs.existsSync(f));
  return { text: files.map((f) => fs.readFileSync(f).toString('latin1')).join('\n'), files };
}

async function postCall(server: ServerProcess, key: string): Promise<number> {
  const r = await http(`${server.url}/usage/api.calls`, {
    method: 'POST',
    headers: { 'x-apikey': key },
    body: { customerId: 'cust_123', value: 1 },
  });
  return r.status;
}

describe('first start without an API key', () => {
  let dataDir: string;
  let firstServer: ServerProcess;
  let key: string;

  before(async () => {
    dataDir = makeTempDir();
    firstServer = await startServerProcess({ dataDir, apiKey: null });
    assert.ok(firstServer.announcedKey, `a key was announced on stdout:\n${firstServer.stdout()}`);
    key = firstServer.announcedKey;
  });
  after(async () => {
    await firstServer?.kill('SIGKILL').catch(() => undefined);
    await cleanupServerProcesses();
  });

  it('prints a new mh_ key once, with a curl line that uses it', () => {
    const out = firstServer.stdout();
    assert.match(key, /^mh_[A-Za-z0-9_-]{20,}$/);
    const keys = new Set(out.match(KEY_RE));
    assert.deepEqual([...keys], [key], 'exactly one key appears on stdout');
    const curl = out.split('\n').find((l) => l.includes('curl'));
    assert.ok(curl, `a curl line in:\n${out}`);
    assert.ok(curl.includes(key), 'the curl line carries the key');
    assert.match(curl, /\/usage\/api\.calls/);
    // The key is never written to stderr.
    assert.ok(!firstServer.stderr().includes(key));
  });

  it('the curl line points at the port the server actually listens on', () => {
    const curl = firstServer
      .stdout()
      .split('\n')
      .find((l) => l.includes('curl'));
    assert.ok(curl);
    const shown = /https?:\/\/[^/\s:]+:(\d+)\//.exec(curl);
    assert.ok(shown, `a URL with a port in: ${curl}`);
    const actual = new URL(firstServer.url).port;
    assert.equal(shown[1], actual, `the curl line says port ${shown[1]} but the server listens on ${actual} (PORT=0)`);
  });

  it('the announced key works, and a wrong key does not', async () => {
    assert.equal(await postCall(firstServer, key), 201);
    const bearer = await http(`${firstServer.url}/ping`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(bearer.status, 200);
    assert.equal(await postCall(firstServer, `${key}x`), 401);
    assert.equal(await postCall(firstServer, 'mh_not_the_key_000000000000000'), 401);
  });

  it('stores only a hash of the key, never the key itself (database and WAL)', async () => {
    const running = databaseBytes(dataDir);
    assert.ok(running.files.length > 0, 'the database file exists');
    assert.ok(!running.text.includes(key), `the plain key is in ${running.files.join(', ')}`);
    // Proof that the bytes searched are the ones holding the key record.
    assert.ok(running.text.includes(createHash('sha256').update(key).digest('hex')), 'the key hash is stored');
    for (const f of fs.readdirSync(dataDir)) {
      const p = path.join(dataDir, f);
      if (fs.statSync(p).isFile()) assert.ok(!fs.readFileSync(p).toString('latin1').includes(key), `the plain key is in ${f}`);
    }
  });

  it('a restart on the same data dir prints no new key and the old key still works', async () => {
    const exit = await firstServer.stop();
    assert.equal(exit.code, 0, `graceful stop exits 0 (got ${JSON.stringify(exit)})\n${firstServer.stderr()}`);

    const stopped = databaseBytes(dataDir);
    assert.ok(!stopped.text.includes(key), 'the plain key is not in the database after shutdown');

    const second = await startServerProcess({ dataDir, apiKey: null });
    try {
      assert.equal(second.announcedKey, undefined);
      assert.equal(second.stdout().match(KEY_RE), null, `no key printed on restart:\n${second.stdout()}`);
      assert.ok(!second.stdout().includes('curl'), 'no first-start notice on restart');
      assert.equal(await postCall(second, key), 201);
      const ev = await http(`${second.url}/events?customerId=cust_123`, { headers: { 'x-apikey': key } });
      assert.equal(ev.status, 200);
      assert.equal(ev.body.length, 2, 'the event from the first run survived the restart');
    } finally {
      const e = await second.stop();
      assert.equal(e.code, 0);
    }

    // Still exactly one key on record, and it is the announced one.
    const list = await runCli(['keys', 'list', '--json'], { dataDir, timeoutMs: 15_000 });
    assert.equal(list.code, 0, list.stderr);
    const keys = JSON.parse(list.stdout) as Array<{ prefix: string; hash?: string }>;
    assert.equal(keys.length, 1);
    assert.ok(key.startsWith(keys[0]!.prefix));
    assert.equal(keys[0]!.hash, undefined, 'keys list never shows hashes');
    assert.ok(!list.stdout.includes(key));
  });
});

describe('keys with scopes, and a store whose keys are all revoked', () => {
  after(async () => cleanupServerProcesses());

  it('a scoped key does only what its scopes allow; with every key revoked a restart mints no key', async () => {
    const dataDir = makeTempDir();
    const first = await startServerProcess({ dataDir, apiKey: null });
    const admin = first.announcedKey!;
    assert.ok(admin);
    const created = await runCli(['keys', 'create', '--scope', 'read,ingest', '--name', 'edge', '--json'], { dataDir, timeoutMs: 15_000 });
    assert.equal(created.code, 0, created.stderr);
    const scoped = JSON.parse(created.stdout) as { key: string; id: string; scopes: string[] };
    assert.deepEqual(scoped.scopes, ['ingest', 'read']);
    const bad = await runCli(['keys', 'create', '--scope', 'read,owner'], { dataDir, timeoutMs: 15_000 });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--scope must name one or more of ingest, read, admin/);

    // Stored keys are re-read on a miss at most once a second.
    await new Promise((r) => setTimeout(r, 1_100));
    assert.equal(await postCall(first, scoped.key), 201);
    const status = async (url: string, k: string) => (await http(`${first.url}${url}`, { headers: { 'x-apikey': k } })).status;
    assert.equal(await status('/events', scoped.key), 200);
    const denied = await http(`${first.url}/config`, { headers: { 'x-apikey': scoped.key } });
    assert.equal(denied.status, 403);
    assert.equal(denied.body.code, 'forbidden');
    assert.equal(await status('/config', admin), 200, 'the first-start key is an admin key');
    assert.equal((await first.stop()).code, 0);

    const list = await runCli(['keys', 'list', '--json'], { dataDir, timeoutMs: 15_000 });
    const keys = JSON.parse(list.stdout) as Array<{ id: string; scopes: string[] }>;
    assert.deepEqual(
      keys.map((k) => k.scopes),
      [['admin'], ['ingest', 'read']],
    );
    for (const k of keys) assert.equal((await runCli(['keys', 'revoke', k.id], { dataDir, timeoutMs: 15_000 })).code, 0);

    const again = await startServerProcess({ dataDir, apiKey: null });
    try {
      assert.equal(again.announcedKey, undefined, 'no key is minted for a store that had keys');
      assert.equal(again.stdout().match(KEY_RE), null, again.stdout());
      assert.match(again.stdout() + again.stderr(), /no API key is active/);
      assert.equal(await postCall(again, admin), 401);
      assert.equal(await postCall(again, scoped.key), 401);
    } finally {
      assert.equal((await again.stop()).code, 0);
    }
  });
});

describe('startup with an invalid configuration', () => {
  after(async () => cleanupServerProcesses());

  it('exits non-zero with a message naming the bad path', async () => {
    const dir = makeTempDir();
    const file = path.join(dir, 'bad-config.json');
    fs.writeFileSync(
      file,
      JSON.stringify({ periods: ['daily'], events: { 'api.calls': { op: 'sum' }, x: { op: 'median' } }, webhooks: [] }),
    );
    const r = await runCli(['serve', '--config', file], {
      dataDir: dir,
      apiKey: 'mh_irrelevant_key_123456',
      env: { PORT: '0', HOST: '127.0.0.1' },
      timeoutMs: 15_000,
    });
    assert.equal(r.timedOut, false, 'the process exits by itself instead of serving');
    assert.notEqual(r.code, 0);
    assert.notEqual(r.code, null);
    const output = r.stderr + r.stdout;
    assert.ok(output.includes('events["x"].op'), `the message names events["x"].op:\n${output}`);
    assert.match(output, /median/);
    assert.ok(output.includes(file), 'the message names the file');
    assert.ok(!/meterhook listening/.test(r.stdout), 'it never started listening');
  });
});

describe('a second server on the same SQLite data directory', () => {
  after(async () => cleanupServerProcesses());

  it('refuses to start, while CLI commands still work next to the first one', async () => {
    const first = await startServerProcess();
    const second = await runCli(['serve'], {
      dataDir: first.dataDir,
      apiKey: 'mh_second_server_key_123456',
      env: { PORT: '0', HOST: '127.0.0.1' },
      timeoutMs: 15_000,
    });
    assert.equal(second.timedOut, false, 'the second server exits by itself instead of serving');
    assert.equal(second.code, 1);
    assert.match(second.stderr, /another meterhook process is writing to .*meterhook\.db: one server per SQLite data directory/);

    const list = await runCli(['keys', 'list', '--json'], { dataDir: first.dataDir, timeoutMs: 15_000 });
    assert.equal(list.code, 0, list.stderr);
    const r = await http(`${first.url}/usage/api.calls`, { headers: { 'x-apikey': first.key! }, body: { customerId: 'c1', value: 1 } });
    assert.equal(r.status, 201, 'the first server is unaffected');
    assert.equal((await first.stop()).code, 0);
  });
});
