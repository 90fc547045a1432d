// The dashboard's static files: public, listed at startup, served with locked-down headers, no test hooks.
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildTestApp, TEST_KEY, type TestApp } from '../helpers/app.js';
import { getAny as get } from '../helpers/queries.js';

const DASHBOARD_DIR = fileURLToPath(new URL('../../src/dashboard/', import.meta.url));

describe('dashboard static files', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp();
  });
  after(() => t.close());

  const FILES: Array<[string, RegExp, RegExp]> = [
    ['/dashboard', /^text\/html/, /<title>meterhook dashboard<\/title>/],
    ['/dashboard/', /^text\/html/, /<title>meterhook dashboard<\/title>/],
    ['/dashboard/main.js', /^text\/javascript/, /^\/\/ Owns the dashboard's shell/],
    ['/dashboard/style.css', /^text\/css/, /\.topbar/],
    ['/dashboard/vendor/uPlot.iife.min.js', /^text\/javascript/, /uPlot/],
    ['/dashboard/vendor/uPlot.min.css', /^text\/css/, /\.uplot/],
  ];

  it('serves the page and its assets without an API key, same-origin only', async () => {
    for (const [url, type, body] of FILES) {
      for (const headers of <Array<Record<string, string>>>[{}, { 'x-apikey': 'wrong' }, { 'x-apikey': TEST_KEY }]) {
        const r = await get(t, url, headers);
        assert.equal(r.status, 200, `${url}: ${r.text.slice(0, 200)}`);
        assert.match(String(r.headers['content-type']), type, url);
        assert.match(r.text, body, url);
        const csp = String(r.headers['content-security-policy']);
        assert.match(csp, /default-src 'none'/);
        assert.match(csp, /script-src 'self'/);
        assert.match(csp, /connect-src 'self'/);
        assert.equal(r.headers['x-content-type-options'], 'nosniff');
        assert.equal(typeof r.headers['x-request-id'], 'string');
      }
    }
  });

  it('serves every module the page imports and every module of its folder, as JavaScript, locked down, without test hooks', async () => {
    const html = (await get(t, '/dashboard', {})).text;
    const entries = [...html.matchAll(/<script type="module" src="([^"]+)"><\/script>/g)].map((m) => m[1]!);
    assert.deepEqual(entries, ['/dashboard/main.js']);
    const reached = new Set<string>();
    const queue = [...entries];
    for (let url = queue.shift(); url !== undefined; url = queue.shift()) {
      if (reached.has(url)) continue;
      reached.add(url);
      const r = await get(t, url, {});
      assert.equal(r.status, 200, `${url}: ${r.text.slice(0, 200)}`);
      assert.match(String(r.headers['content-type']), /^text\/javascript/, url);
      assert.match(String(r.headers['content-security-policy']), /script-src 'self'/, url);
      assert.equal(r.headers['x-content-type-options'], 'nosniff', url);
      assert.equal(r.headers['cache-control'], 'no-cache', url);
      for (const m of r.text.matchAll(/^import .* from '([^']+)';$/gm)) {
        assert.match(m[1]!, /^\.\/[a-z-]+\.js$/, `${url} imports ${m[1]} (the dashboard imports only its own modules)`);
        queue.push(new URL(m[1]!, `http://x${url}`).pathname);
      }
    }
    // The page reaches every module of the folder but types.js, which only JSDoc imports (for tsc).
    const modules = fs
      .readdirSync(DASHBOARD_DIR)
      .filter((f) => f.endsWith('.js'))
      .sort();
    assert.deepEqual(
      [...reached].map((u) => u.slice('/dashboard/'.length)).sort(),
      modules.filter((f) => f !== 'types.js'),
    );
    for (const f of modules) {
      const r = await get(t, `/dashboard/${f}`, {});
      assert.equal(r.status, 200, f);
      assert.equal(r.text, fs.readFileSync(path.join(DASHBOARD_DIR, f), 'utf8'), `${f} is served as it is`);
      // What ships holds no test hook: the browser test reads the page as a user's browser gets it.
      assert.doesNotMatch(r.text, /__meterhook|window\.__|globalThis\.__/, `${f} carries a test hook`);
    }
  });

  it('the page loads nothing from another origin and has no inline script', async () => {
    const html = (await get(t, '/dashboard', {})).text;
    for (const m of html.matchAll(/(?:src|href)="([^"]+)"/g)) {
      assert.ok(m[1]!.startsWith('/dashboard/') || m[1] === 'data:,' || m[1]!.startsWith('#'), `external reference ${m[1]}`);
    }
    assert.doesNotMatch(html, /<script>(?!<\/script>)/);
    assert.doesNotMatch(html, /\son\w+="/);
  });

  it('only those exact paths are public: other paths under /dashboard and the API still need the key', async () => {
    const urls = [
      '/dashboard/x',
      '/dashboard/../config',
      '/dashboard/main.js/',
      '/dashboard/vendor/',
      '/dashboard/%2e%2e/config',
      '/customers',
      '/stats',
      '/dashboard/tsconfig.json',
      '/dashboard/index.html',
      '/dashboard/%2e%2e/package.json',
      '/dashboard/./tsconfig.json',
      '/dashboard/app.js',
      '/dashboard/Main.js',
    ];
    for (const url of urls) {
      const r = await get(t, url, {});
      assert.equal(r.status, 401, `${url}: ${r.status} ${r.text.slice(0, 100)}`);
    }
    const r = await get(t, '/dashboard/x');
    assert.equal(r.status, 404);
  });
});
