// The README's Dimensions section, checked: its configuration parses, and the events its curl sends give
// exactly the usage answer it shows, groups included, on the store under test.
// store-contract: sqlite, postgres
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';

import { buildTestApp } from '../helpers/app.js';
import { section, shellBlocks } from '../helpers/readme-shell.js';

const README = fs.readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const DIMENSIONS = section(README, 'Dimensions');
const json = [...DIMENSIONS.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1]!) as Record<string, unknown>);

describe('README: Dimensions', () => {
  it('the per-model token example answers as shown', async (tc) => {
    const [config, shown] = json;
    assert.ok(config && shown, 'a configuration and an answer');
    const curl = shellBlocks(DIMENSIONS)[0]!;
    assert.match(curl, /localhost:3000\/usagebatch/);
    const body = /-d '([\s\S]*?)'\s*$/.exec(curl.trim())?.[1];
    assert.ok(body, curl);
    const t = await buildTestApp({ config, now: Date.now() });
    tc.after(() => t.close());
    const r = await t.app.inject({ method: 'POST', url: '/usagebatch', headers: t.headers, payload: JSON.parse(body) });
    assert.equal(r.statusCode, 201, r.body);
    const u = await t.app.inject({ method: 'GET', url: '/customers/cust_123/usage?period=monthly', headers: t.headers });
    const got = u.json() as Record<string, unknown>;
    for (const k of Object.keys(shown)) assert.deepEqual(got[k], shown[k], k);
  });
});
