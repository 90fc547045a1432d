// The event listing service against a real store, through a wrapper that counts what it reads: an
// unfiltered page is one read of limit + 1 rows; a filtered page reads in chunks and never more rows
// than its scan budget; a page the budget cut ends at the last row it examined; bad options and a
// filter without a customer are refused before any read.
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EVENT_SCAN_CHUNK, listEventPage, type EventPageQuery } from '../../src/aggregate/event-listing.js';
import { InvalidQuery } from '../../src/domain/errors.js';
import type { StoredEvent } from '../../src/domain/records.js';
import type { EventQuery } from '../../src/store/store.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { captureBatch } from '../helpers/queries.js';

const C = 'cust_l';
const N = 1200;

describe('listEventPage', () => {
  let t: TestApp;
  let reads: number[];
  let rowsRead: number;
  const counting = {
    listEvents: async (q: EventQuery): Promise<StoredEvent[]> => {
      reads.push(q.limit);
      const rows = await t.store.listEvents(q);
      rowsRead += rows.length;
      return rows;
    },
  };
  const page = (q: Partial<EventPageQuery>, scanBudget?: number) => {
    reads = [];
    rowsRead = 0;
    return listEventPage(counting, { customerId: C, limit: 10, metadata: [], ...q }, { scanBudget });
  };
  let newestFirst: StoredEvent[];

  before(async () => {
    t = await buildTestApp();
    // Every 100th event has model "rare"; the rest "common".
    const events = Array.from({ length: N }, (_, i) => ({
      eventType: 'api.calls',
      customerId: C,
      value: i,
      timestamp: new Date(Date.parse('2026-01-12T05:00:00Z') + i * 1000).toISOString(),
      metadata: { model: i % 100 === 0 ? 'rare' : 'common' },
    }));
    await captureBatch(t, events.slice(0, 1000));
    await captureBatch(t, events.slice(1000));
    newestFirst = await t.store.listEvents({ customerId: C, limit: N });
    assert.equal(newestFirst.length, N);
  });
  after(async () => t?.close());

  it('without a filter, reads limit + 1 rows once, whatever the budget', async () => {
    const p = await page({ limit: 10 }, 3);
    assert.deepEqual(reads, [11]);
    assert.equal(p.events.length, 10);
    assert.deepEqual(p.next, { ts: newestFirst[9]!.ts, seq: newestFirst[9]!.seq });
    const last = await page({ limit: 10, before: { ts: newestFirst[N - 6]!.ts, seq: newestFirst[N - 6]!.seq } });
    assert.equal(last.events.length, 5);
    assert.equal(last.next, undefined);
  });

  it('with a filter, reads chunks until a match beyond the page is found, within the default budget', async () => {
    const p = await page({ limit: 6, metadata: [['model', 'rare']] });
    assert.deepEqual(
      p.events.map((e) => e.value),
      [1100, 1000, 900, 800, 700, 600],
    );
    // The seventh match (500) is in the second chunk; the page ends on the row just before it.
    assert.deepEqual(reads, [EVENT_SCAN_CHUNK, EVENT_SCAN_CHUNK]);
    const cut = newestFirst.findIndex((e) => e.value === 500) - 1;
    assert.deepEqual(p.next, { ts: newestFirst[cut]!.ts, seq: newestFirst[cut]!.seq });
    const rest = await page({ limit: 100, metadata: [['model', 'rare']], before: p.next });
    assert.deepEqual(
      rest.events.map((e) => e.value),
      [500, 400, 300, 200, 100, 0],
    );
    assert.equal(rest.next, undefined);
  });

  it('never reads more rows than the scan budget, and ends a cut page at the last row it examined', async () => {
    for (const budget of [1, 7, 250, 1001]) {
      const p = await page({ limit: 5, metadata: [['model', 'none']] }, budget);
      assert.equal(p.events.length, 0);
      assert.ok(reads.reduce((a, b) => a + b, 0) <= budget, `budget ${budget}: asked for ${reads.join('+')} rows`);
      assert.equal(rowsRead, budget);
      assert.deepEqual(p.next, { ts: newestFirst[budget - 1]!.ts, seq: newestFirst[budget - 1]!.seq }, `budget ${budget}`);
    }
    // A budget that runs out on the store's last row still sends a position; the page after it is empty and last.
    const whole = await page({ limit: 5, metadata: [['model', 'none']] }, N);
    assert.equal(rowsRead, N);
    assert.ok(whole.next);
    const after = await page({ limit: 5, metadata: [['model', 'none']], before: whole.next }, N);
    assert.deepEqual(after, { events: [], next: undefined });
  });

  it('walks every match once across budget-cut pages', async () => {
    const seen: number[] = [];
    let before: EventPageQuery['before'];
    let pages = 0;
    do {
      const p = await page({ limit: 2, metadata: [['model', 'rare']], before }, 37);
      assert.ok(rowsRead <= 37);
      seen.push(...p.events.map((e) => e.value));
      before = p.next;
      pages++;
    } while (before && pages < 1000);
    assert.deepEqual(seen, [1100, 1000, 900, 800, 700, 600, 500, 400, 300, 200, 100, 0]);
    assert.ok(pages >= Math.ceil(N / 37), `${pages} pages`);
  });

  it('refuses a filter without a customer, and a budget below 1, before reading', async () => {
    await assert.rejects(page({ customerId: undefined, metadata: [['model', 'rare']] }), InvalidQuery);
    await assert.rejects(page({ metadata: [['model', 'rare']] }, 0), RangeError);
    await assert.rejects(page({ metadata: [['model', 'rare']] }, Number.NaN), RangeError);
    assert.deepEqual(reads, []);
  });
});
