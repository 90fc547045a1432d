// Aggregation against a brute-force oracle: random usage, ids, duplicates and batch splits give every document exactly.
// store-contract: sqlite, postgres
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { closeDuePeriods } from '../../src/aggregate/close-due-periods.js';
import type { Operator } from '../../src/config/schema.js';
import type { Period } from '../../src/domain/periods.js';
import { buildTestApp, REFERENCE_CONFIG, type TestApp } from '../helpers/app.js';
import { docKey, oracleAggregations, type OracleDoc, type OracleEvent } from '../helpers/oracle.js';

// Random usage over ~400 days, ingested in random batch splits through POST /usagebatch, then closed in
// one catch-up run; every aggregation must equal a brute-force computation over the raw, deduplicated input.

const T = (iso: string): number => Date.parse(iso);
const DAY = 86_400_000;
const PERIODS: Period[] = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'];
const CONFIG = { ...REFERENCE_CONFIG, periods: PERIODS, maxEventAge: '450d' };
const OPS = Object.fromEntries(Object.entries(REFERENCE_CONFIG.events).map(([t, v]) => [t, v.op as Operator]));
const TYPES = Object.keys(OPS);

// Events fall in [START, END); they are ingested at INGEST_NOW (all within maxEventAge, none in the future)
// and closed at CLOSE_AT, when even the year 2026 (and the ISO week holding 2026-01-13) is due.
const START = T('2024-12-10T00:00:00Z');
const END = T('2026-01-14T00:00:00Z');
const INGEST_NOW = END;
const CLOSE_AT = T('2027-01-01T00:05:00Z');
assert.ok(INGEST_NOW - START < 450 * DAY && (END - START) / DAY === 400);

// Period edges where off-by-one bugs live: month and year starts, ISO week-year edges, a leap-free Feb end.
const EDGES = [
  '2024-12-30T00:00:00Z', // Monday of ISO week 202501, still calendar 2024
  '2025-01-01T00:00:00Z',
  '2025-01-06T00:00:00Z',
  '2025-02-01T00:00:00Z',
  '2025-03-01T00:00:00Z',
  '2025-03-31T00:00:00Z',
  '2025-06-30T00:00:00Z',
  '2025-12-01T00:00:00Z',
  '2025-12-29T00:00:00Z', // Monday of ISO week 202601, still calendar 2025
  '2026-01-01T00:00:00Z',
  '2026-01-05T00:00:00Z',
].map(T);
// A few fixed instants shared by many events, so ties on event time are common.
const TIE_POOL = ['2025-05-05T05:05:05.005Z', '2025-12-31T23:59:59.999Z', '2025-07-01T00:00:00.000Z'].map(T);

const tsArb = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: START, max: END - 1 }) },
  {
    weight: 3,
    arbitrary: fc.tuple(fc.constantFrom(...EDGES), fc.constantFrom(-3_600_000, -1, 0, 1, 3_599_999)).map(([edge, off]) => edge + off),
  },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.integer({ min: 0, max: 399 }), fc.integer({ min: 0, max: 23 })).map(([d, h]) => START + d * DAY + h * 3_600_000),
  },
  { weight: 2, arbitrary: fc.constantFrom(...TIE_POOL) },
);

const noNegZero = (v: number): number => (v === 0 ? 0 : v);
/**
 * Values across the numeric model: integers, the decimals binary floats cannot hold (0.1, 0.2, 0.3),
 * the limits (15 significant digits, 12 places, just under 1e15) and random decimals of up to 12
 * places. Totals must match the oracle's exact arithmetic to the digit, whatever the batching.
 */
const valueArb = fc.oneof(
  fc.integer({ min: -1000, max: 1000 }),
  fc.constantFrom(
    0,
    0.5,
    -0.5,
    0.1,
    -0.1,
    0.2,
    0.3,
    1e-9,
    -1e9,
    0.000000000001,
    123.456789012345,
    999_999_999_999_999,
    -999_999_999_999_999,
  ),
  fc.integer({ min: -1_000_000, max: 1_000_000 }).map((n) => noNegZero(n / 8)),
  fc
    .tuple(fc.integer({ min: -999_999_999, max: 999_999_999 }), fc.integer({ min: 0, max: 12 }))
    .map(([n, k]) => noNegZero(Number(`${n}e-${k}`))),
);

interface Wire {
  eventType: string;
  customerId: string;
  value: number;
  timestamp: string | number;
  id?: string;
}

interface Scenario {
  send: Wire[];
  sizes: number[];
  pageSize: number;
}

const rawEventArb = (values: fc.Arbitrary<number>) =>
  fc.record({
    c: fc.nat({ max: 4 }),
    type: fc.constantFrom(...TYPES),
    value: values,
    ts: tsArb,
    idTag: fc.option(fc.integer({ min: 0, max: 12 }), { nil: null }),
    asNumber: fc.boolean(),
  });

type RawEvent = { c: number; type: string; value: number; ts: number; idTag: number | null; asNumber: boolean };

/**
 * Base events get ids from a small pool, so the same id is deliberately reused across customers and types
 * (where it names different events); a clash within one (customer, type) gets a unique id instead.
 * Duplicates re-send a base event that has an id, with identical content (the timestamp possibly spelled
 * the other way: ISO string vs epoch ms).
 */
function buildSend(customers: number, raw: RawEvent[], dupPicks: number[], twins: Array<[number, number]>): Wire[] {
  const used = new Set<string>();
  const base: Wire[] = raw.map((r, i) => {
    const customerId = `cust_${r.c % customers}`;
    const w: Wire = { eventType: r.type, customerId, value: r.value, timestamp: r.asNumber ? r.ts : new Date(r.ts).toISOString() };
    if (r.idTag !== null) {
      let id = `k${r.idTag}`;
      if (used.has(`${customerId}\u0000${r.type}\u0000${id}`)) id = `u${i}`;
      used.add(`${customerId}\u0000${r.type}\u0000${id}`);
      w.id = id;
    }
    return w;
  });
  const withId = base.filter((w) => w.id !== undefined);
  const dups =
    withId.length === 0
      ? []
      : dupPicks.map((p, j) => {
          const orig = withId[p % withId.length]!;
          const ts = typeof orig.timestamp === 'number' ? orig.timestamp : Date.parse(orig.timestamp);
          return { ...orig, timestamp: j % 2 === 0 ? ts : new Date(ts).toISOString() };
        });
  // Twins: a different event of the same customer and type at the very same instant, so first/last must
  // fall back to arrival order (they get their own id, or none).
  const twinEvents = twins.map(([p, value], j): Wire => {
    const { id: _id, ...orig } = base[p % base.length]!;
    return j % 2 === 0 ? { ...orig, value } : { ...orig, value, id: `t${j}` };
  });
  return [...base, ...dups, ...twinEvents];
}

const scenarioArb = (values: fc.Arbitrary<number>, maxEvents: number): fc.Arbitrary<Scenario> =>
  fc
    .record({
      customers: fc.integer({ min: 3, max: 5 }),
      // size 'max': fast-check's default size would keep arrays to a handful of events.
      raw: fc.array(rawEventArb(values), { minLength: 1, maxLength: maxEvents, size: 'max' }),
      dupPicks: fc.array(fc.nat(), { maxLength: 20, size: 'max' }),
      twins: fc.array(fc.tuple(fc.nat(), values), { maxLength: 10, size: 'max' }),
      sizes: fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 1, maxLength: 4 }),
      pageSize: fc.integer({ min: 15, max: 200 }),
    })
    .chain((s) => {
      const all = buildSend(s.customers, s.raw, s.dupPicks, s.twins);
      // A random arrival order: duplicates may arrive before, after or in the same batch as their original.
      return fc
        .shuffledSubarray(all, { minLength: all.length, maxLength: all.length })
        .map((send) => ({ send, sizes: s.sizes, pageSize: s.pageSize }));
    });

function batches<X>(xs: readonly X[], sizes: readonly number[]): X[][] {
  const out: X[][] = [];
  for (let i = 0, k = 0; i < xs.length; k++) {
    const n = sizes[k % sizes.length]!;
    out.push(xs.slice(i, i + n));
    i += n;
  }
  return out;
}

const toOracle = (send: readonly Wire[]): OracleEvent[] =>
  send.map((w) => ({
    customerId: w.customerId,
    eventType: w.eventType,
    value: w.value,
    ts: typeof w.timestamp === 'number' ? w.timestamp : Date.parse(w.timestamp),
    id: w.id ?? null,
  }));

interface AggJson {
  _id: string;
  id: string;
  customerId: string;
  period: Period;
  periodKey: string;
  periodStart: string;
  periodEnd: string;
  events: Record<string, number>;
  eventsDecimal: Record<string, string>;
  eventCounts: Record<string, number>;
  final: boolean;
  revision: number;
}

async function ingest(t: TestApp, send: readonly Wire[], sizes: readonly number[]): Promise<void> {
  for (const b of batches(send, sizes)) {
    const r = await t.app.inject({ method: 'POST', url: '/usagebatch', headers: t.headers, payload: b });
    assert.ok(r.statusCode === 201 || r.statusCode === 200, `POST /usagebatch → ${r.statusCode} ${r.body}`);
    assert.equal((r.json() as { count: number }).count, b.length);
  }
}

/** Every aggregation through GET /aggregations, following X-Next-Cursor page by page. */
async function listAll(t: TestApp, pageSize: number): Promise<AggJson[]> {
  const out: AggJson[] = [];
  let cursor: string | undefined;
  for (let pages = 0; ; pages++) {
    assert.ok(pages < 10_000, 'paging does not terminate');
    const query: Record<string, string> = { limit: String(pageSize) };
    if (cursor) query.cursor = cursor;
    const r = await t.app.inject({ method: 'GET', url: '/aggregations', query, headers: t.headers });
    assert.equal(r.statusCode, 200, r.body);
    const page = r.json() as AggJson[];
    assert.ok(page.length <= pageSize);
    out.push(...page);
    const next = r.headers['x-next-cursor'];
    if (typeof next !== 'string') break;
    assert.equal(page.length, pageSize, 'only a full page may have a next cursor');
    cursor = next;
  }
  // Newest periodStart first, across page boundaries too.
  for (let i = 1; i < out.length; i++) {
    assert.ok(Date.parse(out[i - 1]!.periodStart) >= Date.parse(out[i]!.periodStart), 'GET /aggregations is newest periodStart first');
  }
  return out;
}

async function runScenario(s: Scenario): Promise<{ docs: AggJson[]; t: TestApp }> {
  const t = await buildTestApp({ config: CONFIG, now: INGEST_NOW });
  try {
    await ingest(t, s.send, s.sizes);
    t.clock.set(CLOSE_AT);
    const closed = await closeDuePeriods(t.ctx);
    const docs = await listAll(t, s.pageSize);
    assert.equal(closed.finalized, docs.length, 'one catch-up run finalizes every document');
    assert.equal(closed.messages, docs.length);
    return { docs, t };
  } catch (err) {
    await t.close();
    throw err;
  }
}

function assertMatchesOracle(docs: AggJson[], oracle: Map<string, OracleDoc>): void {
  const seen = new Set<string>();
  for (const d of docs) {
    const k = docKey(d.customerId, d.period, d.periodKey);
    const where = `${d.customerId} ${d.period} ${d.periodKey}`;
    assert.ok(!seen.has(k), `listed twice: ${where}`);
    seen.add(k);
    const o = oracle.get(k);
    assert.ok(o, `extra aggregation: ${where} ${JSON.stringify(d.eventCounts)}`);
    assert.equal(d._id, `${d.customerId}_${d.period}_${d.periodKey}`);
    assert.equal(d.periodStart, o.periodStart, where);
    assert.equal(d.periodEnd, o.periodEnd, where);
    assert.equal(d.final, true, where);
    assert.equal(d.revision, 1, where);
    assert.deepEqual(d.eventCounts, o.eventCounts, where);
    assert.deepEqual(Object.keys(d.events).sort(), Object.keys(o.events).sort(), where);
    for (const [type, want] of Object.entries(o.events)) {
      const got = d.events[type]!;
      const op = OPS[type]!;
      assert.equal(d.eventsDecimal[type], o.eventsDecimal[type], `${where} ${type} ${op}`);
      assert.equal(got, want, `${where} ${type} ${op}`);
    }
    assert.deepEqual(d.eventsDecimal, o.eventsDecimal, where);
  }
  const missing = [...oracle.keys()].filter((k) => !seen.has(k));
  assert.deepEqual(
    missing.map((k) => k.replaceAll('\u0000', ' ')),
    [],
    'missing aggregations',
  );
}

describe('aggregation matches a brute-force oracle (property)', () => {
  it('random events, ids and duplicates, random batch splits: every document, no extra, none missing', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb(valueArb, 120), async (s) => {
        const { docs, t } = await runScenario(s);
        try {
          assertMatchesOracle(docs, oracleAggregations(toOracle(s.send), PERIODS, OPS));
          // The store agrees with the paged HTTP listing, and each document has exactly one message.
          const stored = await t.store.listAggregations({ limit: 100_000 });
          assert.equal(stored.length, docs.length);
          for (const a of stored) {
            const msgs = await t.store.listMessages(a.id);
            assert.equal(msgs.length, 1);
            assert.equal(msgs[0]!.type, 'aggregation.completed');
            const body = JSON.parse(msgs[0]!.body) as {
              data: { events: unknown; eventCounts: unknown; eventsDecimal: unknown; periodKey: string };
            };
            assert.deepEqual(body.data.events, a.events);
            assert.deepEqual(body.data.eventsDecimal, a.eventsDecimal);
            assert.deepEqual(body.data.eventCounts, a.eventCounts);
            assert.equal(body.data.periodKey, a.periodKey);
          }
          // Closing again changes nothing.
          t.clock.set(CLOSE_AT + 60 * DAY);
          const again = await closeDuePeriods(t.ctx);
          assert.equal(again.finalized, 0);
          assert.equal(again.messages, 0);
        } finally {
          await t.close();
        }
      }),
      { numRuns: 30 },
    );
  });

  it('the same input in another order and batch split gives identical numbers, to the digit (distinct times)', async () => {
    const orderArb = scenarioArb(valueArb, 100)
      .map((s) => {
        // Keep one event per instant so first/last do not depend on arrival; duplicates share their original's time.
        const byTs = new Map<number, string>();
        const send = s.send.filter((w) => {
          const ts = typeof w.timestamp === 'number' ? w.timestamp : Date.parse(w.timestamp);
          const ident = `${w.customerId}\u0000${w.eventType}\u0000${w.id ?? ''}\u0000${w.value}`;
          const owner = byTs.get(ts);
          if (owner === undefined) {
            byTs.set(ts, ident);
            return true;
          }
          return w.id !== undefined && owner === ident; // a duplicate re-send of the event that owns this instant
        });
        return { ...s, send };
      })
      .filter((s) => s.send.length > 0)
      .chain((s) =>
        fc.record({
          a: fc.constant(s),
          otherOrder: fc.shuffledSubarray(s.send, { minLength: s.send.length, maxLength: s.send.length }),
          otherSizes: fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 1, maxLength: 4 }),
        }),
      );

    await fc.assert(
      fc.asyncProperty(orderArb, async ({ a, otherOrder, otherSizes }) => {
        const one = await runScenario(a);
        await one.t.close();
        const two = await runScenario({ send: otherOrder, sizes: otherSizes, pageSize: a.pageSize });
        await two.t.close();
        const norm = (docs: AggJson[]) =>
          new Map(
            docs.map((d) => [
              docKey(d.customerId, d.period, d.periodKey),
              {
                events: d.events,
                eventsDecimal: d.eventsDecimal,
                eventCounts: d.eventCounts,
                periodStart: d.periodStart,
              },
            ]),
          );
        const m1 = norm(one.docs);
        const m2 = norm(two.docs);
        assert.deepEqual([...m1.keys()].sort(), [...m2.keys()].sort());
        for (const [k, v] of m1) assert.deepEqual(m2.get(k), v, k.replaceAll('\u0000', ' '));
        // And the oracle is matched exactly, sums and averages included.
        const oracle = oracleAggregations(toOracle(a.send), PERIODS, OPS);
        for (const [k, v] of m1) {
          const o = oracle.get(k);
          assert.ok(o, k);
          assert.deepEqual(v.events, o.events, k.replaceAll('\u0000', ' '));
          assert.deepEqual(v.eventsDecimal, o.eventsDecimal, k.replaceAll('\u0000', ' '));
          assert.deepEqual(v.eventCounts, o.eventCounts);
        }
        assert.equal(m1.size, oracle.size);
      }),
      { numRuns: 20 },
    );
  });
});
