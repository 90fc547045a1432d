// Cursor paging of GET /events under metadata filters, in-process against a real store: walks with
// small pages visit exactly the matching events of a brute-force oracle over every stored event, in
// the unfiltered order (no event twice, none missed), with the default scan budget and with a tiny one
// that cuts pages short (even empty, cursor still sent), and while newer events arrive between pages.
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { dimensionValue } from '../../src/domain/dimensions.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { captureBatch, get, nextCursor, walk, type Json } from '../helpers/queries.js';

const C = 'cust_p';
const N = 240;
const BASE = Date.parse('2026-01-12T05:00:00Z');
const TINY_BUDGET = 9;

/** A small deterministic generator, so a failure replays. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const MISSING = Symbol('missing');
const MODELS: unknown[] = ['a', 'a', 'a', 'b', 'b', 'c', null, MISSING, 1, true, { x: 'a' }, ['a']];
const REGIONS: unknown[] = ['eu', 'us', 'us', MISSING];

function events(): Array<Record<string, unknown>> {
  const r = rng(12);
  const pick = (xs: unknown[]) => xs[Math.floor(r() * xs.length)];
  const out: Array<Record<string, unknown>> = [];
  for (let i = 0; i < N; i++) {
    const metadata: Record<string, unknown> = { i };
    const model = pick(MODELS);
    const region = pick(REGIONS);
    if (model !== MISSING) metadata.model = model;
    if (region !== MISSING) metadata.region = region;
    // Four events a minute: ties on the timestamp, broken by arrival.
    out.push({
      eventType: 'api.calls',
      customerId: C,
      value: i,
      id: `p-${i}`,
      timestamp: new Date(BASE + Math.floor(i / 4) * 60_000).toISOString(),
      metadata,
    });
  }
  // Arrival order differs from event time.
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  // Another customer's events with the same values never show.
  for (let i = 0; i < 40; i++) out.push({ eventType: 'api.calls', customerId: 'cust_q', value: i, metadata: { model: 'a', region: 'eu' } });
  return out;
}

type Filter = Record<string, string>;
const FILTERS: Filter[] = [
  { model: 'a' },
  { model: 'a', region: 'eu' },
  { model: '1' },
  { model: 'true' },
  { region: 'us' },
  { model: 'zzz' },
];

const query = (f: Filter) =>
  Object.entries(f)
    .map(([k, v]) => `metadata.${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');

/** The oracle: every stored event of the customer, filtered here by the documented rule. */
function oracle(all: Json[], f: Filter): string[] {
  return all
    .filter((e) => Object.entries(f).every(([k, v]) => Object.hasOwn(e.metadata, k) && dimensionValue(e.metadata[k]) === v))
    .map((e) => e.eventId);
}

interface WalkedPage {
  ids: string[];
  cursor: string | undefined;
}

async function pagesOf(t: TestApp, base: string, between?: (page: number) => Promise<void>): Promise<WalkedPage[]> {
  const pages: WalkedPage[] = [];
  let cursor: string | undefined;
  for (let n = 0; n < 2000; n++) {
    const r = await get(t, cursor === undefined ? base : `${base}&cursor=${encodeURIComponent(cursor)}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    cursor = nextCursor(r);
    pages.push({ ids: r.body.map((e: Json) => e.eventId), cursor });
    if (cursor === undefined) return pages;
    if (between) await between(n);
  }
  assert.fail(`paging ${base} did not end`);
}

function assertSameWalk(pages: WalkedPage[], expected: string[], limit: number, label: string): void {
  const seen = pages.flatMap((p) => p.ids);
  assert.equal(new Set(seen).size, seen.length, `${label}: no event twice`);
  assert.deepEqual(seen, expected, `${label}: exactly the oracle's events, in order`);
  for (const p of pages) assert.ok(p.ids.length <= limit, `${label}: a page holds at most limit events`);
  assert.equal(pages.at(-1)!.cursor, undefined);
}

describe('GET /events paging under metadata filters', () => {
  let full: TestApp;
  let tiny: TestApp;
  let all: Json[];

  before(async () => {
    full = await buildTestApp();
    tiny = await buildTestApp({ limits: { eventListing: { scanBudget: TINY_BUDGET } } });
    const batch = events();
    await captureBatch(full, batch);
    await captureBatch(tiny, batch);
    all = await walk(full, `/events?customerId=${C}&limit=1000`);
    assert.equal(all.length, N);
  });
  after(async () => {
    await full?.close();
    await tiny?.close();
  });

  it('with the default budget, every page but the last is full and the last is never empty', async () => {
    for (const f of FILTERS) {
      const expected = oracle(all, f);
      for (const limit of [1, 4, 25, 1000]) {
        const label = `${query(f)} limit=${limit}`;
        const pages = await pagesOf(full, `/events?customerId=${C}&${query(f)}&limit=${limit}`);
        assertSameWalk(pages, expected, limit, label);
        assert.equal(pages.length, Math.max(1, Math.ceil(expected.length / limit)), `${label}: pages`);
        for (const p of pages.slice(0, -1)) assert.equal(p.ids.length, limit, `${label}: full page`);
      }
    }
    assert.ok(oracle(all, { model: 'a' }).length > 40, 'the common filter matches many events');
    assert.deepEqual(oracle(all, { model: 'zzz' }), []);
  });

  it('with a tiny budget, pages are cut short (some empty, with a cursor) and the walk still sees every match once', async () => {
    for (const f of FILTERS) {
      const expected = oracle(all, f);
      for (const limit of [1, 4, 25]) {
        const label = `${query(f)} limit=${limit}`;
        const pages = await pagesOf(tiny, `/events?customerId=${C}&${query(f)}&limit=${limit}`);
        assertSameWalk(pages, expected, limit, label);
        // No page examines more than the budget, so covering all N events takes at least N / budget pages.
        assert.ok(pages.length >= Math.ceil(N / TINY_BUDGET), `${label}: ${pages.length} pages`);
        if (limit === 25 && expected.length < N / 4) {
          assert.ok(
            pages.some((p) => p.ids.length === 0 && p.cursor !== undefined),
            `${label}: an empty page that is not the last`,
          );
        }
      }
    }
    const rare = await pagesOf(tiny, `/events?customerId=${C}&metadata.model=zzz&limit=5`);
    assert.ok(rare.length >= Math.ceil(N / TINY_BUDGET), `a filter that matches nothing walks in ${rare.length} budgeted pages`);
    assert.ok(rare.slice(0, -1).every((p) => p.ids.length === 0 && p.cursor));
  });

  it('a tiny budget does not cut an unfiltered page', async () => {
    const r = await get(tiny, `/events?customerId=${C}&limit=100`);
    assert.equal(r.body.length, 100);
    assert.ok(nextCursor(r));
  });

  for (const budget of ['default', 'tiny'] as const) {
    it(`newer events that arrive between pages never shift a filtered walk (${budget} budget)`, async () => {
      const t = budget === 'default' ? full : tiny;
      const f = { model: 'a' };
      const base = `/events?customerId=${C}&${query(f)}&limit=3`;
      const expected = oracle(await walk(t, `/events?customerId=${C}&limit=1000`), f);
      let fresh = 0;
      const pages = await pagesOf(t, base, async () => {
        if (fresh >= 20) return;
        // Newer than anything paged so far: at "now", and at the newest stored time (a later arrival sorts first).
        t.clock.advance(1000);
        const newest = new Date(BASE + Math.floor((N - 1) / 4) * 60_000).toISOString();
        await captureBatch(t, [
          { eventType: 'api.calls', customerId: C, value: 1000 + fresh++, metadata: { model: 'a' } },
          { eventType: 'api.calls', customerId: C, value: 1000 + fresh++, timestamp: newest, metadata: { model: 'a', region: 'eu' } },
        ]);
      });
      assert.ok(fresh >= 10, 'new matching events arrived between pages');
      assertSameWalk(pages, expected, 3, `${budget}: walk during inserts`);
      // A walk that starts afterwards sees them.
      const again = (await pagesOf(t, base)).flatMap((p) => p.ids);
      assert.equal(again.length, expected.length + fresh);
      assert.deepEqual(again.slice(fresh), expected);
    });
  }
});
