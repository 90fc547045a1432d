// Scale-out fault on PostgreSQL: three real `meterhook serve` processes under continuous capture load;
// one is killed with SIGKILL while it holds leased webhook deliveries (the receiver answers slowly).
// The survivors keep answering, deliver the dead process's leased work once its leases run out, and
// every acknowledged event is stored exactly once.

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
import { eventFactory, ownCluster, waitFor, pageAll, tearDown, type Ev, keyOf } from '../helpers/pg-e2e.js';

const HOUR = 3_600_000;
const LEASE_MS = 2_000;
const RECEIVER_DELAY_MS = 1_000;
const SECRET = `whsec_${randomBytes(24).toString('base64')}`;
const API_KEY = `mh_pgfault_${randomBytes(10).toString('hex')}`;
const AUTH = { 'x-apikey': API_KEY };
const OPS = Object.fromEntries(Object.entries(REFERENCE_CONFIG.events).map(([t, e]) => [t, e.op as Operator]));
const TYPES = Object.keys(OPS);
const CUSTOMERS = ['cust_fault_a', 'cust_fault_b', 'cust_fault_c'];

interface Answer {
  server: number;
  status: number;
  text: string;
  at: number;
}

describe('kill -9 of one of three PostgreSQL-backed processes under load', () => {
  let cluster: PgCluster | undefined;
  let db: pg.Pool | undefined;
  let receiver: Receiver | undefined;
  const servers: ServerProcess[] = [];
  const answers: Answer[] = [];
  const acked = new Map<string, Ev>();
  const sent = new Map<string, Ev>();
  let victim = -1;
  let killedAt = 0;
  /** Deliveries the victim held under a live lease when it died. */
  let orphaned: Array<{ id: string; message_id: string; lease_until: number }> = [];

  before(async () => {
    cluster = await ownCluster();
    const url = await cluster.createDatabase('mh_fault');
    db = new pg.Pool({ connectionString: url, max: 2 });
    receiver = await startReceiver(() => ({ status: 200, body: 'ok', delayMs: RECEIVER_DELAY_MS }));
    const config = {
      ...REFERENCE_CONFIG,
      periods: ['hourly'],
      webhooks: [{ id: 'rx', url: receiver.url, secret: SECRET }],
      webhookDelivery: { allowCidrs: ['127.0.0.1/32'], pollInterval: '100ms', lease: `${LEASE_MS / 1000}s` },
      schedule: '* * * * * *',
    };
    servers.push(...(await Promise.all([0, 1, 2].map(() => startServerProcess({ config, apiKey: API_KEY, env: { DATABASE_URL: url } })))));
  });

  after(() => tearDown({ servers, receiver, pools: [db], cluster }));

  it('keeps serving on the survivors after one process is killed while holding leases', async (t) => {
    // Times inside [now-3h, now-2h).
    const newEvent = eventFactory({
      prefix: 'f',
      customers: CUSTOMERS,
      types: TYPES,
      base: Date.now() - 3 * HOUR + 60_000,
      step: 1_009,
      sent,
    });
    const alive = new Set([0, 1, 2]);
    const ackedBatches: Ev[][] = [];
    let stop = false;
    let killStart = Number.POSITIVE_INFINITY;

    const send = async (server: number, evs: Ev[], single: boolean) => {
      const s = servers[server]!;
      const e = evs[0]!;
      const r = await (single
        ? http(`${s.url}/usage/${e.eventType}`, {
            headers: AUTH,
            body: { id: e.id, customerId: e.customerId, value: e.value, timestamp: new Date(e.ts).toISOString() },
            timeoutMs: 8_000,
          })
        : http(`${s.url}/usagebatch`, {
            headers: AUTH,
            body: evs.map((x) => ({
              id: x.id,
              customerId: x.customerId,
              eventType: x.eventType,
              value: x.value,
              timestamp: new Date(x.ts).toISOString(),
            })),
            timeoutMs: 8_000,
          })
      ).catch((err: Error) => ({ status: 0, text: String(err) }));
      answers.push({ server, status: r.status, text: r.text.slice(0, 300), at: Date.now() });
      if (r.status >= 200 && r.status < 300) {
        for (const x of evs) acked.set(keyOf(x), x);
        if (!single) ackedBatches.push(evs);
      }
    };

    const worker = async (w: number) => {
      for (let k = 0; !stop; k++) {
        const targets = [...alive];
        const server = targets[(w + k) % targets.length]!;
        const roll = Math.random();
        if (roll < 0.1 && ackedBatches.length > 0) {
          // A client retry of an acknowledged batch, to another process.
          await send(server, ackedBatches[Math.floor(Math.random() * ackedBatches.length)]!, false);
        } else if (roll < 0.55) {
          await send(server, [newEvent()], true);
        } else {
          await send(server, Array.from({ length: 10 }, newEvent), false);
        }
        await sleep(15);
      }
    };
    const load = Promise.all(Array.from({ length: 6 }, (_, w) => worker(w)));

    try {
      await sleep(3_000);
      // Wait until some process holds live leases (the receiver keeps each send open ~1 s).
      const holder = await waitFor(
        'a process holding leased deliveries',
        15_000,
        async () => {
          const r = await db!.query(
            `SELECT lease_owner, count(*) AS n FROM deliveries WHERE status = 'sending' AND lease_until > $1
           GROUP BY lease_owner ORDER BY n DESC LIMIT 1`,
            [Date.now() + 800],
          );
          return r.rows[0]?.lease_owner as string | undefined;
        },
        25,
      );
      const pid = Number(holder.split(':').at(-2));
      victim = servers.findIndex((s) => s.proc.pid === pid);
      assert.ok(victim >= 0, `lease owner ${holder} is one of the three processes`);
      alive.delete(victim);
      killStart = Date.now();
      const exit = await servers[victim]!.kill('SIGKILL');
      killedAt = Date.now();
      assert.equal(exit.signal, 'SIGKILL');
      orphaned = (
        await db!.query(`SELECT id, message_id, lease_until FROM deliveries WHERE status = 'sending' AND lease_owner = $1`, [holder])
      ).rows.map((r) => ({ id: r.id as string, message_id: r.message_id as string, lease_until: Number(r.lease_until) }));
      t.diagnostic(`killed server ${victim} (pid ${pid}) holding ${orphaned.length} leased deliveries`);
      assert.ok(orphaned.length > 0, 'the killed process held leased deliveries');

      await sleep(4_000);
    } finally {
      stop = true;
      await load;
    }

    const toSurvivors = answers.filter((a) => a.server !== victim);
    const afterKill = toSurvivors.filter((a) => a.at > killedAt);
    assert.ok(afterKill.length > 20, `the survivors kept receiving load (${afterKill.length} requests after the kill)`);
    const bad = toSurvivors.filter((a) => a.status < 200 || a.status >= 300);
    assert.deepEqual(bad.slice(0, 5), [], `${bad.length} of ${toSurvivors.length} requests to the survivors failed`);
    const victimBefore = answers.filter((a) => a.server === victim && a.at < killStart && (a.status < 200 || a.status >= 300));
    assert.deepEqual(victimBefore, [], 'the victim answered every request that finished well before it died');
  });

  it("delivers the dead process's leased deliveries after the lease runs out; every message at least once", async (t) => {
    assert.ok(victim >= 0, 'the kill happened');
    await waitFor('every hourly period closed and every delivery succeeded', 40_000, async () => {
      const q = async (sql: string) => Number((await db!.query(sql)).rows[0].n);
      const dirty = await q(`SELECT count(*) AS n FROM dirty_periods WHERE period = 'hourly'`);
      const notDone = await q(`SELECT count(*) AS n FROM deliveries WHERE status <> 'succeeded'`);
      const messages = await q('SELECT count(*) AS n FROM messages');
      const deliveries = await q('SELECT count(*) AS n FROM deliveries');
      if (dirty || notDone || messages === 0 || messages !== deliveries) return undefined;
      const ids = (await db!.query('SELECT id FROM messages')).rows.map((r) => r.id as string);
      const got = new Set(receiver!.requests.map((r) => String(r.headers['webhook-id'])));
      return ids.every((id) => got.has(id)) ? true : undefined;
    });

    const statuses = (await db!.query('SELECT status, count(*) AS n FROM deliveries GROUP BY status')).rows;
    assert.deepEqual(
      statuses.map((r) => r.status),
      ['succeeded'],
      'every final delivery row is succeeded',
    );

    const receipts = new Map<string, number[]>();
    for (const r of receiver!.requests) {
      const id = String(r.headers['webhook-id']);
      receipts.set(id, [...(receipts.get(id) ?? []), r.receivedAt]);
    }
    const messageIds = (await db!.query('SELECT id FROM messages')).rows.map((r) => r.id as string);
    for (const id of messageIds) assert.ok((receipts.get(id)?.length ?? 0) >= 1, `message ${id} was received`);
    assert.equal(receipts.size, messageIds.length, 'the receiver saw no message that is not stored');

    // The orphaned deliveries were re-sent by a survivor, and not before the dead lease ran out.
    const survivorOwners = servers.filter((_, i) => i !== victim).map((s) => `:${s.proc.pid}:`);
    for (const o of orphaned) {
      const times = receipts.get(o.message_id) ?? [];
      assert.ok(
        times.some((at) => at >= o.lease_until - 50),
        `${o.id} was (re)sent after its lease ran out at ${o.lease_until}`,
      );
      assert.ok(
        times.every((at) => at < killedAt || at >= o.lease_until - 50),
        `${o.id}: no send while the dead lease was live`,
      );
      const attempts = await db!.query('SELECT count(*) AS n FROM delivery_attempts WHERE delivery_id = $1', [o.id]);
      assert.ok(Number(attempts.rows[0].n) >= 1, `${o.id}: a survivor recorded an attempt`);
    }
    assert.ok(survivorOwners.length === 2);

    // A message may arrive twice only if the killed process had sent it before it died.
    const orphanIds = new Set(orphaned.map((o) => o.message_id));
    const repeated = [...receipts].filter(([, times]) => times.length > 1);
    t.diagnostic(`${messageIds.length} messages, ${receiver!.requests.length} requests received, ${repeated.length} received twice`);
    for (const [id, times] of repeated) {
      assert.ok(orphanIds.has(id), `${id} arrived ${times.length} times but was not leased by the killed process`);
      assert.equal(times.length, 2, `${id} arrived at most twice`);
      assert.ok(Math.min(...times) <= killedAt, `${id}: the first arrival predates the kill`);
    }
  });

  it('stores every acknowledged event exactly once, and the aggregations match the stored events', async () => {
    const rows = await pageAll<{ id: string | null; customerId: string; eventType: string; value: number; timestamp: string }>(
      servers[(victim + 1) % 3]!.url,
      '/events',
      AUTH,
    );
    const seen = new Map<string, number>();
    for (const r of rows) seen.set(keyOf(r), (seen.get(keyOf(r)) ?? 0) + 1);
    const repeated = [...seen].filter(([, c]) => c > 1);
    assert.deepEqual(repeated.slice(0, 5), [], `${repeated.length} ids are stored more than once`);
    const missing = [...acked.keys()].filter((k) => !seen.has(k));
    assert.deepEqual(missing.slice(0, 5), [], `${missing.length} of ${acked.size} acknowledged events are missing`);
    // Requests in flight to the victim when it died may have committed without an answer; nothing else.
    const unknown = [...seen.keys()].filter((k) => !sent.has(k));
    assert.deepEqual(unknown, [], 'every stored event was sent');
    for (const r of rows) {
      const e = sent.get(keyOf(r))!;
      assert.equal(r.value, e.value);
      assert.equal(Date.parse(r.timestamp), e.ts);
    }
    const stored = rows.map((r) => sent.get(keyOf(r))!);
    const oracle = oracleAggregations(stored, ['hourly'], OPS);
    const docs = await pageAll<{
      customerId: string;
      period: string;
      periodKey: string;
      final: boolean;
      events: Record<string, number>;
      eventsDecimal: Record<string, string>;
      eventCounts: Record<string, number>;
    }>(servers[(victim + 2) % 3]!.url, '/aggregations?period=hourly', AUTH);
    assert.equal(docs.length, oracle.size);
    for (const d of docs) {
      assert.equal(d.final, true);
      const o = oracle.get(docKey(d.customerId, d.period, d.periodKey));
      assert.ok(o, `unexpected document ${d.customerId} ${d.periodKey}`);
      assert.deepEqual(d.eventCounts, o.eventCounts);
      // Exact decimals: the totals equal the oracle's to the digit.
      assert.deepEqual(d.events, o.events, `${d.customerId} ${d.periodKey}`);
      assert.deepEqual(d.eventsDecimal, o.eventsDecimal, `${d.customerId} ${d.periodKey}`);
    }
    const dup = await db!.query('SELECT aggregation_id, revision FROM messages GROUP BY 1, 2 HAVING count(*) > 1');
    assert.deepEqual(dup.rows, []);
  });
});
