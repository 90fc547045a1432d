// The README's SDK example, run as written against a real server process (only the URL, the key
// and the package import are pointed at this checkout).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { cleanupServerProcesses, startServerProcess } from '../helpers/server-process.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

describe('README SDK example', () => {
  let server: Awaited<ReturnType<typeof startServerProcess>>;
  before(async () => {
    server = await startServerProcess({});
  });
  after(() => cleanupServerProcesses());

  it('runs unchanged against a real server and stores what it tracked', async () => {
    const block = [...README.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.includes("from 'meterhook/client'"));
    assert.ok(block, 'the README has a ```ts example importing meterhook/client');
    const program = block
      .replace("'meterhook/client'", `'${pathToFileURL(path.join(ROOT, 'src/client/index.ts')).href}'`)
      .replace("'http://localhost:3000'", `'${server.url}'`);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterhook-readme-'));
    const file = path.join(dir, 'example.mts');
    fs.writeFileSync(file, program);
    try {
      const r = spawnSync(process.execPath, ['--import', 'tsx', file], {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, METERHOOK_API_KEY: server.key ?? '' },
      });
      assert.equal(r.status, 0, `the example failed:\n${r.stderr}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const res = await fetch(`${server.url}/customers/cust_123/usage?period=monthly`, { headers: { 'x-apikey': server.key ?? '' } });
    const usage = (await res.json()) as { events: Record<string, number> };
    assert.equal(usage.events['api.calls'], 1);
    assert.equal(usage.events['storage.bytes'], 52428800);
  });
});
