// PostgreSQL outage under load: two real `meterhook serve` processes keep running while the database
// server is stopped for ~3 s and started again. During the outage every request answers quickly with
// a 503 JSON and a Retry-After (never a 500, never a hang) and /readyz is 503; afterwards the same
// processes recover on their own, and every event acknowledged before, during or after is stored once.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { Operator } from '../../src/config/schema.js';
import { REFERENCE_CONFIG } from '../helpers/app.js';
import { docKey, oracleAggregations } from '../helpers/oracle.js';
import type { PgCluster } from '../helpers/postgres-cluster.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { http, sleep, startServerProcess, type ServerProcess } from '../helpers/server-process.js';
import { eventFactory, ownCluster, waitFor, pageAll, tearDown, type Ev, keyOf, wireEvent } from '../helpers/pg-e2e.js';

const HOUR = 3_600_000;
const OUTAGE_MS = 3_000;
/** The most a request may take, outage or not. */
const ANSWER_WITHIN_MS = 5_000;
const SECRET = `whsec_${randomBytes(24).toString('base64')}`;
const API_KEY = `mh_pgrestart_${randomBytes(10).toString('hex')}`;
const AUTH = { 'x-apikey': API_KEY };
const OPS = Object.fromEntries(Object.entries(REFERENCE_CONFIG.events).map(([t, e]) => [t, e.op as Operator]));
const TYPES = Object.keys(OPS);
const CUSTOMERS = ['cust_rs_a', 'cust_rs_b', 'cust_rs_c'];

interface Answer {
  server: number;
  path: string;
  started: number;
  ms: number;
  status: number;
  retryAfter: string | null;
  contentType: string | null;
  body: any;
  text: string;
}

describe('PostgreSQL stops for a few seconds under load, meterhook keeps running', () => {
  let cluster: PgCluster | undefined;
  let db: pg.Pool | undefined;
  let receiver: Receiver | undefined;
  const servers: ServerProcess[] = [];
  const answers: Answer[] = [];
  const acked = new Map<string, Ev>();
  const sent = new Map<string, Ev>();
  let downAt = 0;
  let upAt = 0;

  before(async () => {
    cluster = await ownCluster();
    const url = await cluster.createDatabase('mh_restart');
    receiver = await startReceiver(() => ({ status: 200, body: 'ok' }));
    const config = {
      ...REFERENCE_CONFIG,
      periods: ['hourly', 'daily'],
      webhooks: [{ id: 'rx', url: receiver.url, secret: SECRET }],
      webhookDelivery: { allowCidrs: ['127.0.0.1/32'], pollInterval: '100ms', lease: '3s', retrySchedule: ['500ms', '1s', '1s', '2s'] },
      schedule: '* * * * * *',
    };
    servers.push(...(await Promise.all([0, 1].map(() => startServerProcess({ config, apiKey: API_KEY, env: { DATABASE_URL: url } })))));
    db = new pg.Pool({ connectionString: url, max: 2 });
    // The test's own pool must survive the restart too.
    db.on('error', () => undefined);
  });

  /** Fails with the process's own last words if it has exited. */
  const assertAlive = (i: number) => {
    const s = servers[i]!;
    if (s.proc.exitCode === null && s.proc.signalCode === null) return;
    const tail = (x: string) => x.split('\n').filter(Boolean).slice(-6).join('\n');
    assert.fail(
      `server ${i} exited (code ${s.proc.exitCode}, signal ${s.proc.signalCode}) instead of riding out the outage\n` +
        `stderr:\n${s.stderr().split('\n').slice(0, 25).join('\n')}\nstdout (last lines):\n${tail(s.stdout())}`,
    );
  };

  after(() => tearDown({ servers, receiver, pools: [db], cluster }));

  it('answers 503 + Retry-After (never 500, never a hang) during the outage and recovers without a restart', async (t) => {
    // Times inside [now-3h, now-2h).
    const newEvent = eventFactory({
      prefix: 'rs',
      customers: CUSTOMERS,
      types: TYPES,
      base: Date.now() - 3 * HOUR + 60_000,
      step: 1_013,
      sent,
    });
    const call = async (server: number, path: string, body?: unknown, auth = true): Promise<Answer> => {
      const started = Date.now();
      const r = await http(`${servers[server]!.url}${path}`, {
        ...(body === undefined ? {} : { body }),
        ...(auth ? { headers: AUTH } : {}),
        timeoutMs: ANSWER_WITHIN_MS + 3_000,
      }).catch((err: Error) => ({ status: 0, text: String(err), body: undefined, headers: new Headers() }));
      const a: Answer = {
        server,
        path,
        started,
        ms: Date.now() - started,
        status: r.status,
        retryAfter: r.headers.get('retry-after'),
        contentType: r.headers.get('content-type'),
        body: r.body,
        text: r.text.slice(0, 300),
      };
      answers.push(a);
      return a;
    };
    let stop = false;
    const worker = async (w: number) => {
      for (let k = 0; !stop; k++) {
        const server = (w + k) % servers.length;
        const single = Math.random() < 0.5;
        const evs = single ? [newEvent()] : Array.from({ length: 8 }, newEvent);
        const e = evs[0]!;
        const a = single
          ? await call(server, `/usage/${e.eventType}`, {
              id: e.id,
              customerId: e.customerId,
              value: e.value,
              timestamp: new Date(e.ts).toISOString(),
            })
          : await call(server, '/usagebatch', evs.map(wireEvent));
        if (a.status >= 200 && a.status < 300) for (const x of evs) acked.set(keyOf(x), x);
        // Reads and readiness under the same conditions.
        if (k % 5 === 0) await call(server, '/events?limit=5');
        if (k % 7 === 0) await call(server, '/readyz', undefined, false);
        await sleep(a.status === 503 ? 100 : 20);
      }
    };
    const load = Promise.all(Array.from({ length: 4 }, (_, w) => worker(w)));
    const readyDuring: Answer[] = [];
    try {
      await sleep(2_000);
      const before = acked.size;
      assert.ok(before > 0, 'events were acknowledged before the outage');

      // Make sure ingest transactions are in flight (each holding a pooled connection) at the moment
      // the server goes away: the test holds a lock that blocks inserts of event ids, waits until both
      // processes have a transaction queued behind it, and then stops PostgreSQL.
      const gate = await db!.connect();
      // A checked-out pg client has no 'error' listener of its own; without this the shutdown would
      // crash the test process the same way.
      gate.on('error', () => undefined);
      try {
        await gate.query('BEGIN');
        await gate.query('LOCK TABLE event_keys IN SHARE ROW EXCLUSIVE MODE');
        const deadline = Date.now() + 5_000;
        let waiting = 0;
        while (Date.now() < deadline) {
          const r = await db!.query(
            `SELECT count(DISTINCT l.pid) AS n FROM pg_locks l WHERE l.relation = 'event_keys'::regclass AND NOT l.granted`,
          );
          waiting = Number(r.rows[0].n);
          if (waiting >= 2) break;
          await sleep(20);
        }
        t.diagnostic(`${waiting} ingest transactions in flight when PostgreSQL is stopped`);
        downAt = Date.now();
        cluster!.stopServer();
      } finally {
        // Destroys the connection (the server already ended it, or this ends the lock on failure).
        gate.release(true);
      }
      const stoppedAt = Date.now();
      t.diagnostic(`PostgreSQL stopped in ${stoppedAt - downAt} ms`);
      // While it is down: readiness says 503 on both processes, explicitly probed.
      while (Date.now() - stoppedAt < OUTAGE_MS) {
        for (const s of [0, 1]) readyDuring.push(await call(s, '/readyz', undefined, false));
        await sleep(300);
      }
      upAt = Date.now();
      cluster!.startServer();
      t.diagnostic(`PostgreSQL started again in ${Date.now() - upAt} ms`);
      const back = Date.now();

      // Recovery, with the same processes: a write and readiness succeed on each within a bound.
      for (const s of [0, 1]) {
        await waitFor(`server ${s} to accept writes again`, 15_000, async () => {
          assertAlive(s);
          const e = newEvent();
          const a = await call(s, `/usage/${e.eventType}`, {
            id: e.id,
            customerId: e.customerId,
            value: e.value,
            timestamp: new Date(e.ts).toISOString(),
          });
          if (a.status >= 200 && a.status < 300) {
            acked.set(keyOf(e), e);
            return true;
          }
          return undefined;
        });
        await waitFor(`server ${s} /readyz to be 200`, 15_000, async () =>
          (await call(s, '/readyz', undefined, false)).status === 200 ? true : undefined,
        );
      }
      t.diagnostic(`both processes serve again ${Date.now() - back} ms after PostgreSQL is back`);
      await sleep(2_000);
    } finally {
      stop = true;
      await load;
    }

    for (const i of servers.keys()) assertAlive(i);

    const slow = answers.filter((a) => a.ms > ANSWER_WITHIN_MS || a.status === 0);
    assert.deepEqual(slow.slice(0, 5), [], `${slow.length} requests took longer than ${ANSWER_WITHIN_MS} ms or got no answer`);
    const fivehundreds = answers.filter((a) => a.status >= 500 && a.status !== 503);
    assert.deepEqual(fivehundreds.slice(0, 5), [], `${fivehundreds.length} requests answered a 5xx other than 503`);
    const others = answers.filter((a) => a.status !== 503 && (a.status < 200 || a.status >= 300));
    assert.deepEqual(others.slice(0, 5), [], 'every answer is a 2xx or a 503');

    const unavailable = answers.filter((a) => a.status === 503);
    assert.ok(unavailable.length > 0, 'the outage was visible to clients');
    for (const a of unavailable) {
      assert.match(a.contentType ?? '', /application\/json/, `${a.path}: 503 is JSON`);
      assert.ok(
        a.retryAfter !== null && /^\d+$/.test(a.retryAfter) && Number(a.retryAfter) > 0,
        `${a.path}: 503 has a Retry-After (${a.retryAfter})`,
      );
      if (a.path !== '/readyz') assert.equal(a.body?.code, 'store_unavailable', `${a.path}: ${a.text}`);
    }
    // Every capture that started while the database was certainly down answered 503.
    const inOutage = answers.filter((a) => a.path !== '/readyz' && a.started > downAt + 1_000 && a.started + a.ms < upAt);
    assert.ok(inOutage.length > 0, 'requests were made during the outage');
    assert.deepEqual(
      inOutage.filter((a) => a.status !== 503).map((a) => `${a.path} ${a.status}`),
      [],
      'requests during the outage get 503',
    );
    assert.ok(readyDuring.length >= 4);
    const readyLate = readyDuring.filter((a) => a.started > downAt + 1_000);
    assert.ok(
      readyLate.length > 0 && readyLate.every((a) => a.status === 503),
      `/readyz is 503 while the database is down: ${readyLate.map((a) => a.status)}`,
    );
    assert.ok(
      answers.some((a) => a.started > upAt && a.status >= 200 && a.status < 300 && a.path !== '/readyz'),
      'requests succeed after the restart',
    );
  });

  it('stores every event acknowledged before, during and after the outage exactly once', async () => {
    assertAlive(0);
    assertAlive(1);
    const rows = await pageAll<{ id: string | null; customerId: string; eventType: string; value: number; timestamp: string }>(
      servers[0]!.url,
      '/events',
      AUTH,
    );
    const seen = new Map<string, number>();
    for (const r of rows) seen.set(keyOf(r), (seen.get(keyOf(r)) ?? 0) + 1);
    const repeated = [...seen].filter(([, c]) => c > 1);
    assert.deepEqual(repeated.slice(0, 5), [], `${repeated.length} ids stored more than once`);
    const missing = [...acked.keys()].filter((k) => !seen.has(k));
    assert.deepEqual(missing.slice(0, 5), [], `${missing.length} of ${acked.size} acknowledged events are missing`);
    assert.deepEqual(
      [...seen.keys()].filter((k) => !sent.has(k)),
      [],
      'every stored event was sent',
    );
    // A 503 may follow a commit whose answer was lost with the connection, so a few unacknowledged
    // events may be stored; each of them still only once (checked above).
    for (const r of rows) assert.equal(r.value, sent.get(keyOf(r))!.value);
  });

  it('triggers, finalizes and delivers after the outage; the aggregations match the stored events', async () => {
    assertAlive(0);
    assertAlive(1);
    for (const s of [0, 1]) {
      const r = await http(`${servers[s]!.url}/aggregations/trigger`, { method: 'POST', headers: AUTH, timeoutMs: ANSWER_WITHIN_MS });
      assert.ok(r.status === 200 || r.status === 202, `trigger on server ${s}: ${r.status} ${r.text}`);
    }
    await waitFor('hourly periods closed and every delivery succeeded', 20_000, async () => {
      const q = async (sql: string) => Number((await db!.query(sql)).rows[0].n);
      const dirty = await q(`SELECT count(*) AS n FROM dirty_periods WHERE period = 'hourly'`);
      const notDone = await q(`SELECT count(*) AS n FROM deliveries WHERE status <> 'succeeded'`);
      const messages = await q('SELECT count(*) AS n FROM messages');
      const deliveries = await q('SELECT count(*) AS n FROM deliveries');
      return dirty === 0 && notDone === 0 && messages > 0 && messages === deliveries ? true : undefined;
    });
    const storedRows = await pageAll<{ id: string | null; customerId: string; eventType: string }>(servers[1]!.url, '/events', AUTH);
    const stored = storedRows.map((r) => sent.get(keyOf(r))!);
    const oracle = oracleAggregations(stored, ['hourly'], OPS);
    const docs = await pageAll<{
      customerId: string;
      period: string;
      periodKey: string;
      final: boolean;
      events: Record<string, number>;
      eventsDecimal: Record<string, string>;
      eventCounts: Record<string, number>;
    }>(servers[1]!.url, '/aggregations?period=hourly', AUTH);
    assert.equal(docs.length, oracle.size);
    for (const d of docs) {
      assert.equal(d.final, true, `${d.customerId} ${d.periodKey} is final`);
      const o = oracle.get(docKey(d.customerId, d.period, d.periodKey));
      assert.ok(o, `unexpected document ${d.customerId} ${d.periodKey}`);
      assert.deepEqual(d.eventCounts, o.eventCounts);
      // Exact decimals: the totals equal the oracle's to the digit.
      assert.deepEqual(d.events, o.events, `${d.customerId} ${d.periodKey}`);
      assert.deepEqual(d.eventsDecimal, o.eventsDecimal, `${d.customerId} ${d.periodKey}`);
    }
    const ids = (await db!.query('SELECT id FROM messages')).rows.map((r) => r.id as string);
    const got = new Set(receiver!.requests.map((r) => String(r.headers['webhook-id'])));
    assert.deepEqual(
      ids.filter((id) => !got.has(id)),
      [],
      'every message reached the receiver',
    );
    const dup = await db!.query('SELECT aggregation_id, revision FROM messages GROUP BY 1, 2 HAVING count(*) > 1');
    assert.deepEqual(dup.rows, []);
    // The current-usage endpoint works again too.
    const u = await http(`${servers[0]!.url}/customers/${CUSTOMERS[0]}/usage`, { headers: AUTH, timeoutMs: ANSWER_WITHIN_MS });
    assert.equal(u.status, 200, u.text);
  });
});
