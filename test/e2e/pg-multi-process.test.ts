// Scale-out on PostgreSQL: three real `meterhook serve` processes share one database, each with a
// scheduler ticking every second, under concurrent capture load (the same ids sent to different
// processes at the same instant) and concurrent triggers. Checks exact counts, oracle-equal
// aggregations, one outbox message per (aggregation, revision) and exactly-once webhook receipt.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { Webhook } from 'standardwebhooks';
import type { Operator } from '../../src/config/schema.js';
import { REFERENCE_CONFIG } from '../helpers/app.js';
import { docKey, oracleAggregations, type OracleEvent } from '../helpers/oracle.js';
import type { PgCluster } from '../helpers/postgres-cluster.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { http, sleep, startServerProcess, type HttpResult, type ServerProcess } from '../helpers/server-process.js';
import { ownCluster, pageAll, tearDown, type Ev, keyOf } from '../helpers/pg-e2e.js';

const HOUR = 3_600_000;
const SECRET = `whsec_${randomBytes(24).toString('base64')}`;
const API_KEY = `mh_pgmulti_${randomBytes(10).toString('hex')}`;
const AUTH = { 'x-apikey': API_KEY };
const OPS = Object.fromEntries(Object.entries(REFERENCE_CONFIG.events).map(([t, e]) => [t, e.op as Operator]));
const TYPES = Object.keys(OPS);
const CUSTOMERS = ['cust_mp_a', 'cust_mp_b', 'cust_mp_c', 'cust_mp_d'];

async function waitFor<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(200);
  }
}

/** Runs `tasks` with at most `n` in flight. */
async function runPool(tasks: Array<() => Promise<void>>, n: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < tasks.length) await tasks[next++]!();
    }),
  );
}

/** Every row of a paged list endpoint (follows X-Next-Cursor). */
const wire = (e: Ev) => ({
  id: e.id,
  customerId: e.customerId,
  eventType: e.eventType,
  value: e.value,
  timestamp: new Date(e.ts).toISOString(),
});

function shuffled<T>(xs: readonly T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

interface Answer {
  kind: 'single' | 'batch' | 'trigger';
  server: number;
  status: number;
  text: string;
}

describe('three meterhook processes on one PostgreSQL database', () => {
  let cluster: PgCluster | undefined;
  let db: pg.Pool | undefined;
  let receiver: Receiver | undefined;
  const servers: ServerProcess[] = [];
  const answers: Answer[] = [];
  /** Every event a 2xx acknowledged, by (customer, type, id). */
  const acked = new Map<string, Ev>();
  /** Events that a 2xx reported as newly inserted (single: duplicate=false; batch: `inserted`). */
  let reportedInserted = 0;
  const sent = new Map<string, Ev>();
  /** Event times in use: every event gets its own millisecond, so first/last never tie. */
  const usedTs = new Set<number>();
  let base = 0;

  before(async () => {
    cluster = await ownCluster();
    const url = await cluster.createDatabase('mh_multi');
    db = new pg.Pool({ connectionString: url, max: 2 });
    receiver = await startReceiver(() => ({ status: 200, body: 'ok' }));
    const config = {
      ...REFERENCE_CONFIG,
      periods: ['hourly', 'daily'],
      webhooks: [{ id: 'rx', url: receiver.url, secret: SECRET }],
      webhookDelivery: { allowCidrs: ['127.0.0.1/32'], pollInterval: '100ms', lease: '30s' },
      schedule: '* * * * * *',
    };
    const started = await Promise.all([0, 1, 2].map(() => startServerProcess({ config, apiKey: API_KEY, env: { DATABASE_URL: url } })));
    servers.push(...started);
  });

  after(() => tearDown({ servers, receiver, pools: [db], cluster }));

  it('acknowledges concurrent singles, batches and cross-process duplicates, with concurrent triggers', async () => {
    // Unique, ms-distinct timestamps in [now-3h, now-2h): two due hours, first/last never tie.
    base = Date.now() - 3 * HOUR;
    const N = 1400;
    const events: Ev[] = Array.from({ length: N }, (_, i) => ({
      id: `evt-${i}-${randomBytes(3).toString('hex')}`,
      customerId: CUSTOMERS[i % CUSTOMERS.length]!,
      eventType: TYPES[(i * 5 + Math.floor(i / 7)) % TYPES.length]!,
      value: 1 + ((i * 7919) % 997),
      ts: base + 60_000 + i * 2_311,
    }));
    for (const e of events) {
      sent.set(keyOf(e), e);
      usedTs.add(e.ts);
    }
    const pick = shuffled(events);
    const plainBatches = pick.slice(0, 600);
    const plainSingles = pick.slice(600, 850);
    const dupBatches = pick.slice(850, 1150);
    const dupSingles = pick.slice(1150);

    const record = (kind: Answer['kind'], server: number, r: HttpResult<any>, evs: Ev[]) => {
      answers.push({ kind, server, status: r.status, text: r.text.slice(0, 300) });
      if (r.status < 200 || r.status >= 300) return;
      for (const e of evs) acked.set(keyOf(e), e);
      if (kind === 'single' && r.body?.duplicate === false) reportedInserted += 1;
      if (kind === 'batch') reportedInserted += Number(r.body?.inserted ?? 0);
    };
    const single = async (server: number, e: Ev) => {
      const s = servers[server]!;
      const r = await http(`${s.url}/usage/${e.eventType}`, {
        headers: AUTH,
        body: { id: e.id, customerId: e.customerId, value: e.value, timestamp: new Date(e.ts).toISOString() },
        timeoutMs: 20_000,
      }).catch((err: Error) => ({ status: 0, text: String(err), body: undefined, headers: new Headers() }));
      record('single', server, r, [e]);
    };
    const batch = async (server: number, evs: Ev[]) => {
      const s = servers[server]!;
      const r = await http(`${s.url}/usagebatch`, { headers: AUTH, body: evs.map(wire), timeoutMs: 20_000 }).catch((err: Error) => ({
        status: 0,
        text: String(err),
        body: undefined,
        headers: new Headers(),
      }));
      record('batch', server, r, evs);
    };
    const trigger = async (server: number) => {
      const s = servers[server]!;
      const r = await http(`${s.url}/aggregations/trigger`, { method: 'POST', headers: AUTH, timeoutMs: 20_000 }).catch((err: Error) => ({
        status: 0,
        text: String(err),
        body: undefined,
        headers: new Headers(),
      }));
      answers.push({ kind: 'trigger', server, status: r.status, text: r.text.slice(0, 300) });
    };

    // Units of work; everything inside one unit is fired at the same instant.
    const units: Array<() => Promise<void>> = [];
    for (let i = 0; i < plainBatches.length; i += 25) {
      const evs = plainBatches.slice(i, i + 25);
      const k = i / 25;
      units.push(() => batch(k % 3, evs));
    }
    plainSingles.forEach((e, k) => {
      units.push(() => single(k % 3, e));
    });
    // The same batch, each process getting its own order, all three at once.
    for (let i = 0; i < dupBatches.length; i += 20) {
      const evs = dupBatches.slice(i, i + 20);
      units.push(() => Promise.all([0, 1, 2].map((s) => batch(s, shuffled(evs)))).then(() => undefined));
    }
    // The same single event to all three processes at once.
    for (const e of dupSingles) units.push(() => Promise.all([0, 1, 2].map((s) => single(s, e))).then(() => undefined));
    // Repeats of already-sent plain batches to a different process (sequential duplicates).
    for (let i = 0; i < 150; i += 25) {
      const evs = plainBatches.slice(i, i + 25);
      units.push(() => batch((i / 25 + 1) % 3, evs));
    }
    const work = shuffled(units);
    // Triggers on all three processes at once, spread through the load.
    for (let i = 10; i < work.length; i += 40) work.splice(i, 0, () => Promise.all([0, 1, 2].map(trigger)).then(() => undefined));
    work.push(() => Promise.all([0, 1, 2].map(trigger)).then(() => undefined));

    await runPool(work, 12);

    const failed = answers.filter((a) => a.status < 200 || a.status >= 300);
    assert.deepEqual(failed.slice(0, 10), [], `${failed.length} of ${answers.length} requests were not answered 2xx (first 10 shown)`);
    assert.equal(acked.size, sent.size, 'every event was acknowledged at least once');
  });

  const sameBatchTitle =
    'the same 1000-event batch in three orders, released on three processes at one instant, is acknowledged and counted once';
  it(sameBatchTitle, async (t) => {
    // Truly simultaneous arrival, made certain: the test holds a lock that blocks inserts of event ids
    // until all three processes have the batch in a transaction waiting on it, then lets go.
    const gate = await db!.connect();
    try {
      for (let round = 0; round < 3; round++) {
        const evs: Ev[] = [];
        for (let j = 0; j < 1000; j++) {
          let ts = base + 90_000 + (((round * 1000 + j) * 1_117) % 3_300_000);
          while (usedTs.has(ts)) ts++;
          usedTs.add(ts);
          const e: Ev = {
            id: `sim-${round}-${j}-${randomBytes(3).toString('hex')}`,
            customerId: CUSTOMERS[j % CUSTOMERS.length]!,
            eventType: TYPES[(j * 3 + round) % TYPES.length]!,
            value: 1 + ((j * 104_729 + round) % 991),
            ts,
          };
          sent.set(keyOf(e), e);
          evs.push(e);
        }
        await gate.query('BEGIN');
        await gate.query('LOCK TABLE event_keys IN SHARE ROW EXCLUSIVE MODE');
        let released = false;
        const release = async () => {
          if (released) return;
          released = true;
          await gate.query('COMMIT');
        };
        try {
          const replies = [0, 1, 2].map(async (server) => {
            const r = await http(`${servers[server]!.url}/usagebatch`, {
              headers: AUTH,
              body: shuffled(evs).map(wire),
              timeoutMs: 20_000,
            }).catch((err: Error) => ({ status: 0, text: String(err), body: undefined, headers: new Headers() }));
            answers.push({ kind: 'batch', server, status: r.status, text: r.text.slice(0, 300) });
            return r;
          });
          const deadline = Date.now() + 10_000;
          for (;;) {
            const w = await db!.query(
              `SELECT count(DISTINCT pid) AS n FROM pg_locks WHERE relation = 'event_keys'::regclass AND NOT granted`,
            );
            if (Number(w.rows[0].n) >= 3) break;
            assert.ok(Date.now() < deadline, `three processes waiting with the batch (now ${w.rows[0].n})`);
            await sleep(20);
          }
          await release();
          const rs = await Promise.all(replies);
          const statuses = rs.map((r) => r.status);
          t.diagnostic(`round ${round}: statuses ${statuses.join(', ')}`);
          let inserted = 0;
          for (const r of rs) {
            if (r.status < 200 || r.status >= 300) continue;
            for (const e of evs) acked.set(keyOf(e), e);
            inserted += Number(r.body?.inserted ?? 0);
            reportedInserted += Number(r.body?.inserted ?? 0);
          }
          assert.deepEqual(
            rs.filter((r) => r.status < 200 || r.status >= 300).map((r) => `${r.status} ${r.text.slice(0, 200)}`),
            [],
            `round ${round}: every process acknowledges the batch`,
          );
          assert.equal(inserted, 1000, `round ${round}: the three answers report each event inserted once`);
        } finally {
          await release().catch(() => undefined);
        }
      }
    } finally {
      gate.release(true);
    }
  });

  it('settles: every hourly period final, every delivery succeeded and received', async () => {
    await waitFor('every hourly period closed and every delivery succeeded', 30_000, async () => {
      const q = async (sql: string) => Number((await db!.query(sql)).rows[0].n);
      const dirty = await q(`SELECT count(*) AS n FROM dirty_periods WHERE period = 'hourly'`);
      const open = await q(`SELECT count(*) AS n FROM aggregations WHERE period = 'hourly' AND final = false`);
      const notDone = await q(`SELECT count(*) AS n FROM deliveries WHERE status <> 'succeeded'`);
      const messages = await q('SELECT count(*) AS n FROM messages');
      const deliveries = await q('SELECT count(*) AS n FROM deliveries');
      if (dirty || open || notDone || messages === 0 || messages !== deliveries) return undefined;
      const ids = new Set((await db!.query('SELECT id FROM messages')).rows.map((r) => r.id as string));
      const got = new Set(receiver!.requests.map((r) => String(r.headers['webhook-id'])));
      return [...ids].every((id) => got.has(id)) ? true : undefined;
    });
  });

  it('(a) stores every acknowledged event exactly once; duplicates counted once', async () => {
    // Page through a different process than most writes went to; the store is shared.
    const rows = await pageAll<{ id: string | null; customerId: string; eventType: string; value: number; timestamp: string }>(
      servers[1]!.url,
      '/events',
      AUTH,
    );
    const seen = new Map<string, number>();
    for (const r of rows) seen.set(keyOf(r), (seen.get(keyOf(r)) ?? 0) + 1);
    const repeated = [...seen].filter(([, n]) => n > 1);
    assert.deepEqual(repeated.slice(0, 5), [], `${repeated.length} ids are stored more than once`);
    const missing = [...acked.keys()].filter((k) => !seen.has(k));
    assert.deepEqual(missing.slice(0, 5), [], `${missing.length} acknowledged events are missing`);
    const unknown = [...seen.keys()].filter((k) => !acked.has(k));
    assert.deepEqual(unknown.slice(0, 5), [], 'no event is stored that was not acknowledged');
    assert.equal(rows.length, acked.size, 'GET /events holds exactly the acknowledged events');
    for (const r of rows) {
      const e = acked.get(keyOf(r))!;
      assert.equal(r.value, e.value);
      assert.equal(Date.parse(r.timestamp), e.ts);
    }
    // Exactly one acknowledgement per event said "new": the others said duplicate.
    assert.equal(reportedInserted, acked.size, 'inserted/duplicate flags across all processes add up to one insert per id');
    const n = Number((await db!.query('SELECT count(*) AS n FROM events')).rows[0].n);
    const k = Number((await db!.query('SELECT count(*) AS n FROM event_keys')).rows[0].n);
    assert.equal(n, acked.size, 'events table row count');
    assert.equal(k, acked.size, 'event_keys row count');
  });

  it('(b) every final hourly aggregation equals the brute-force oracle', async () => {
    const oracle = oracleAggregations([...acked.values()] as OracleEvent[], ['hourly'], OPS);
    const docs = await pageAll<{
      customerId: string;
      period: string;
      periodKey: string;
      periodStart: string;
      periodEnd: string;
      final: boolean;
      revision: number;
      events: Record<string, number>;
      eventsDecimal: Record<string, string>;
      eventCounts: Record<string, number>;
    }>(servers[2]!.url, '/aggregations?period=hourly', AUTH);
    assert.equal(docs.length, oracle.size, 'one hourly document per (customer, hour) with data');
    for (const d of docs) {
      assert.equal(d.final, true, `${d.customerId} ${d.periodKey} is final`);
      assert.ok(d.revision >= 1);
      const o = oracle.get(docKey(d.customerId, d.period, d.periodKey));
      assert.ok(o, `unexpected document ${d.customerId} ${d.periodKey}`);
      assert.equal(d.periodStart, o.periodStart);
      assert.equal(d.periodEnd, o.periodEnd);
      assert.deepEqual(d.eventCounts, o.eventCounts, `${d.customerId} ${d.periodKey} counts`);
      assert.deepEqual(Object.keys(d.events).sort(), Object.keys(o.events).sort());
      // Exact decimals: the totals equal the oracle's to the digit, whichever process closed them.
      assert.deepEqual(d.events, o.events, `${d.customerId} ${d.periodKey}`);
      assert.deepEqual(d.eventsDecimal, o.eventsDecimal, `${d.customerId} ${d.periodKey}`);
    }
  });

  it('(b) the daily documents equal the oracle after one more trigger', async () => {
    const r = await http(`${servers[0]!.url}/aggregations/trigger`, { method: 'POST', headers: AUTH, timeoutMs: 15_000 });
    assert.ok(r.status === 200 || r.status === 202, r.text);
    const oracle = oracleAggregations([...acked.values()] as OracleEvent[], ['daily'], OPS);
    const docs = await pageAll<{
      customerId: string;
      period: string;
      periodKey: string;
      events: Record<string, number>;
      eventsDecimal: Record<string, string>;
      eventCounts: Record<string, number>;
    }>(servers[0]!.url, '/aggregations?period=daily', AUTH);
    assert.equal(docs.length, oracle.size);
    for (const d of docs) {
      const o = oracle.get(docKey(d.customerId, d.period, d.periodKey));
      assert.ok(o, `unexpected daily document ${d.customerId} ${d.periodKey}`);
      assert.deepEqual(d.eventCounts, o.eventCounts);
      assert.deepEqual(d.events, o.events, `daily ${d.customerId}`);
      assert.deepEqual(d.eventsDecimal, o.eventsDecimal, `daily ${d.customerId}`);
    }
  });

  it('(c) each (aggregation, revision) is finalized once, with one delivery per message', async (t) => {
    const dupMsgs = await db!.query('SELECT aggregation_id, revision, count(*) AS n FROM messages GROUP BY 1, 2 HAVING count(*) > 1');
    assert.deepEqual(dupMsgs.rows, [], 'no (aggregation, revision) has two messages');
    const dupDlv = await db!.query('SELECT message_id, endpoint_id, count(*) AS n FROM deliveries GROUP BY 1, 2 HAVING count(*) > 1');
    assert.deepEqual(dupDlv.rows, [], 'no message has two deliveries to one endpoint');
    const orphan = await db!.query(
      `SELECT m.id FROM messages m LEFT JOIN deliveries d ON d.message_id = m.id GROUP BY m.id HAVING count(d.id) <> 1`,
    );
    assert.deepEqual(orphan.rows, [], 'every message has exactly one delivery (one endpoint)');

    // Revisions form 1..n per aggregation; each announces a change from the one before; the last
    // one matches the stored final document.
    const msgs = (await db!.query('SELECT aggregation_id, revision, type, body FROM messages ORDER BY aggregation_id, revision'))
      .rows as Array<{
      aggregation_id: string;
      revision: number;
      type: string;
      body: string;
    }>;
    const aggs = new Map(
      (await db!.query(`SELECT id, revision, events, event_counts, final FROM aggregations WHERE final = true`)).rows.map((r) => [
        r.id as string,
        r,
      ]),
    );
    const byAgg = new Map<string, typeof msgs>();
    for (const m of msgs) byAgg.set(m.aggregation_id, [...(byAgg.get(m.aggregation_id) ?? []), m]);
    const hourlyFinal = Number((await db!.query(`SELECT count(*) AS n FROM aggregations WHERE period = 'hourly' AND final`)).rows[0].n);
    assert.ok(hourlyFinal > 0);
    for (const [aggId, list] of byAgg) {
      list.forEach((m, i) => {
        assert.equal(m.revision, i + 1, `${aggId}: revisions are contiguous from 1`);
        assert.equal(m.type, i === 0 ? 'aggregation.completed' : 'aggregation.updated');
        const body = JSON.parse(m.body);
        if (i > 0) {
          const prev = JSON.parse(list[i - 1]!.body);
          assert.deepEqual(body.previous.events, prev.data.events, `${aggId} r${m.revision}: previous = revision ${i}`);
          assert.deepEqual(body.previous.eventCounts, prev.data.eventCounts);
          assert.notDeepEqual(
            { e: body.data.events, c: body.data.eventCounts },
            { e: prev.data.events, c: prev.data.eventCounts },
            `${aggId} r${m.revision} announces a change`,
          );
        }
      });
      const a = aggs.get(aggId);
      assert.ok(a, `${aggId} has a final aggregation`);
      const last = JSON.parse(list[list.length - 1]!.body);
      assert.equal(Number(a.revision), list.length, `${aggId}: stored revision is the last message's`);
      // The events column holds each total as exact decimal text: the message's eventsDecimal.
      assert.deepEqual(JSON.parse(a.events), last.data.eventsDecimal);
      assert.deepEqual(JSON.parse(a.event_counts), last.data.eventCounts);
    }
    assert.equal(byAgg.size, aggs.size, 'every final aggregation has messages and vice versa');
    const maxRev = Math.max(...[...byAgg.values()].map((l) => l.length));
    t.diagnostic(`${msgs.length} messages for ${byAgg.size} final aggregations; highest revision ${maxRev}`);
  });

  it('(d) the receiver got every message exactly once, signed', async () => {
    const ids = (await db!.query('SELECT id, body FROM messages')).rows as Array<{ id: string; body: string }>;
    const counts = new Map<string, number>();
    for (const r of receiver!.requests) {
      const id = String(r.headers['webhook-id']);
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    const twice = [...counts].filter(([, n]) => n > 1);
    assert.deepEqual(twice, [], 'no message was received twice');
    assert.equal(counts.size, ids.length, 'the receiver saw exactly the stored messages');
    for (const m of ids) assert.equal(counts.get(m.id), 1, `message ${m.id} received once`);
    const wh = new Webhook(SECRET);
    const bodies = new Map(ids.map((m) => [m.id, m.body]));
    for (const r of receiver!.requests) {
      const id = String(r.headers['webhook-id']);
      assert.equal(r.rawBody.toString('utf8'), bodies.get(id), `${id}: body is the stored message`);
      assert.doesNotThrow(() =>
        wh.verify(r.rawBody, {
          'webhook-id': id,
          'webhook-timestamp': String(r.headers['webhook-timestamp']),
          'webhook-signature': String(r.headers['webhook-signature']),
        }),
      );
    }
    const attempts = await db!.query('SELECT delivery_id, count(*) AS n FROM delivery_attempts GROUP BY 1 HAVING count(*) <> 1');
    assert.deepEqual(attempts.rows, [], 'one attempt per delivery');
  });

  it('logs no errors in any process', () => {
    for (const [i, s] of servers.entries()) {
      const errors = s
        .stdout()
        .split('\n')
        .filter((l) => {
          if (!l.startsWith('{')) return false;
          try {
            return (JSON.parse(l) as { level?: number }).level! >= 50;
          } catch {
            return false;
          }
        });
      assert.deepEqual(errors.slice(0, 5), [], `server ${i} logged ${errors.length} error lines`);
      assert.equal(s.stderr().trim(), '', `server ${i} wrote to stderr`);
    }
  });
});
