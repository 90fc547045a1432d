// B5, webhook delivery: N messages produced by a real meterhook server process (events for N
// customers in a past hour sent over HTTP, then POST /aggregations/trigger closes that hour, writing
// one aggregation.completed message per customer), delivered by the server's own dispatcher to a
// loopback receiver process answering 200. Figures come from the server's store after it stops:
// deliveries/s (first to last 2xx) and lag from message creation (created_at) to 2xx (delivered_at).
// A second run adds a slow endpoint (2 s per request) next to the fast one: the fast one must keep pace.

import { randomBytes } from 'node:crypto';
import { HOUR_MS } from '../../src/domain/periods.js';
import { customerId, metadataFor, rng } from '../bodies.js';
import { EVENT_TYPES, benchApiKey, writeConfig } from '../config.js';
import { httpJson } from '../load.js';
import { judge, mb, progress, round, summarize, type ScenarioResult } from '../report.js';
import { startMeterhook, startReceiver, type Child } from '../server-process.js';
import { collectProfile, freshStore, num, profDir, type ScenarioContext } from './context.js';

const SLOW_MS = 2000;
const GRACE_MS = 60_000;

interface EndpointFigures {
  endpoint: string;
  delivered: number;
  retried: number;
  byStatus: Record<string, number>;
  deliveriesPerS: number;
  endToEndPerS: number;
  firstDeliveryAfterMs: number;
  lagMs: ReturnType<typeof summarize>;
  /** From message creation to the start of the first attempt: time spent waiting to be claimed. */
  waitMs: ReturnType<typeof summarize>;
  /** How long the HTTP attempts took, as the dispatcher recorded them. */
  attemptMs: ReturnType<typeof summarize>;
  sampleError?: string;
}

interface DeliveryRun {
  label: string;
  messages: number;
  ingestS: number;
  triggerS: number;
  finalized: number;
  waitedS: number;
  timedOut: boolean;
  receiver: Record<string, { distinct: number; requests: number }>;
  endpoints: EndpointFigures[];
  peakRssMb: number;
  serverCpuS: number;
  profileNotes: string[];
}

async function deliveryRun(sc: ScenarioContext, receiver: Child, label: string, endpoints: string[]): Promise<DeliveryRun> {
  const n = sc.opts.messages;
  const fresh = await freshStore(sc, `b5-${label}`);
  const dir = fresh.dir;
  const apiKey = benchApiKey();
  const runTag = `${label}-${randomBytes(3).toString('hex')}`;
  const urlOf = (ep: string) => `${receiver.url}/${runTag}/${ep}`;
  const configFile = writeConfig(dir, {
    // Hourly only, so one closed customer-hour is exactly one message.
    periods: ['hourly'],
    events: EVENT_TYPES,
    webhooks: endpoints.map((ep) => ({ id: ep, url: urlOf(ep), secret: `whsec_${randomBytes(24).toString('base64')}` })),
    // Loopback receivers must be allowed explicitly; concurrency limits stay at their defaults.
    webhookDelivery: { allowCidrs: ['127.0.0.1/32'] },
    // The trigger below is the only close in this run.
    schedule: '0 0 1 1 *',
    gracePeriod: '1m',
  });
  const prof = profDir(sc, `B5-${label}`);
  const server = await startMeterhook({ runner: sc.runner, dataDir: dir, configFile, apiKey, cpuProfDir: prof, env: fresh.env });
  let stopped = false;
  try {
    const headers = { 'x-apikey': apiKey };
    // A whole hour that ended at least the grace period ago: due at once.
    const hour = Math.floor((Date.now() - GRACE_MS) / HOUR_MS) * HOUR_MS - HOUR_MS;
    const r = rng(0xb5);
    const width = String(n - 1).length;
    const t0 = performance.now();
    for (let start = 0; start < n; start += 1000) {
      const batch = [];
      for (let i = start; i < Math.min(n, start + 1000); i++) {
        batch.push({
          eventType: 'api.calls',
          customerId: customerId(i, width),
          id: `b5-${sc.nonce}-${runTag}-${i}`,
          value: 1 + Math.floor(r() * 5),
          timestamp: new Date(hour + Math.floor(r() * HOUR_MS)).toISOString(),
          metadata: metadataFor(r),
        });
      }
      const res = await httpJson(`${server.url}/usagebatch`, { headers, body: batch });
      if (res.status !== 201)
        throw new Error(
          `B5 ingest answered ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}\n` +
            `server log (tail):\n${server.output().slice(-3000)}`,
        );
    }
    const ingestS = (performance.now() - t0) / 1000;

    const cpu0 = server.monitor.cpuSeconds();
    const t1 = performance.now();
    const trig = await httpJson<{ finalized?: number }>(`${server.url}/aggregations/trigger`, {
      method: 'POST',
      headers,
      timeoutMs: 600_000,
    });
    const triggerS = (performance.now() - t1) / 1000;
    if (trig.status !== 202) {
      throw new Error(
        `B5 trigger answered ${trig.status}: ${JSON.stringify(trig.body).slice(0, 300)}\n` +
          `server log (tail):\n${server.output().slice(-3000)}`,
      );
    }
    const finalized = trig.body.finalized ?? 0;

    // Wait until the fast endpoint has every message (the slow one is not waited for).
    const fastPath = `/${runTag}/fast`;
    // Bounded: a fast endpoint held back by a slow one would otherwise keep the run going for minutes.
    const timeoutMs = sc.opts.quick ? 8_000 : 30_000 + n * 5;
    let stats: { paths: Record<string, { distinct: number; requests: number }> } = { paths: {} };
    let timedOut = false;
    for (;;) {
      stats = (await httpJson<typeof stats>(`${receiver.url}/stats`)).body;
      if ((stats.paths[fastPath]?.distinct ?? 0) >= n) break;
      if (performance.now() - t1 > timeoutMs) {
        timedOut = true;
        break;
      }
      await new Promise((res) => setTimeout(res, 25));
    }
    const waitedS = (performance.now() - t1) / 1000;
    const serverCpuS = server.monitor.cpuSeconds() - cpu0;
    const st = await server.stop();
    stopped = true;
    const profileNotes: string[] = [];
    collectProfile(prof, `B5 ${label} meterhook`, profileNotes, {});

    const figures: EndpointFigures[] = [];
    for (const ep of endpoints) {
      const rows = (
        await fresh.query<{ created: unknown; delivered: unknown; status: string; attempts: unknown; err: string | null }>(
          `SELECT m.created_at AS created, d.delivered_at AS delivered, d.status AS status, d.attempts AS attempts, d.last_error AS err
           FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE d.endpoint_id = ?`,
          [ep],
        )
      ).map((x) => ({
        ...x,
        created: num(x.created),
        delivered: x.delivered === null ? null : num(x.delivered),
        attempts: num(x.attempts),
      }));
      // A 2xx sets delivered_at (status 'succeeded'); dry runs never happen here.
      const done = rows.filter((x) => x.delivered !== null);
      const attempts = (
        await fresh.query<{ wait: unknown; dur: unknown }>(
          `SELECT a.started_at - m.created_at AS wait, a.duration_ms AS dur
           FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id JOIN messages m ON m.id = d.message_id
           WHERE d.endpoint_id = ? AND a.attempt = 1`,
          [ep],
        )
      ).map((x) => ({ wait: num(x.wait), dur: num(x.dur) }));
      const byStatus: Record<string, number> = {};
      for (const x of rows) byStatus[x.status] = (byStatus[x.status] ?? 0) + 1;
      const firstCreated = rows.reduce((a, x) => Math.min(a, x.created), Infinity);
      const firstDone = done.reduce((a, x) => Math.min(a, x.delivered!), Infinity);
      const lastDone = done.reduce((a, x) => Math.max(a, x.delivered!), -Infinity);
      figures.push({
        endpoint: ep,
        delivered: done.length,
        retried: rows.filter((x) => x.attempts > 1).length,
        byStatus,
        deliveriesPerS: done.length / Math.max(0.001, (lastDone - firstDone) / 1000),
        endToEndPerS: done.length / Math.max(0.001, (lastDone - firstCreated) / 1000),
        firstDeliveryAfterMs: firstDone - firstCreated,
        lagMs: summarize(done.map((x) => x.delivered! - x.created)),
        waitMs: summarize(attempts.map((x) => x.wait)),
        attemptMs: summarize(attempts.map((x) => x.dur)),
        sampleError: rows.find((x) => x.err)?.err ?? undefined,
      });
    }
    return {
      label,
      messages: n,
      ingestS,
      triggerS,
      finalized,
      waitedS,
      timedOut,
      receiver: Object.fromEntries(Object.entries(stats.paths).filter(([p]) => p.startsWith(`/${runTag}/`))),
      endpoints: figures,
      peakRssMb: mb(st.peakRssBytes),
      serverCpuS: round(serverCpuS, 2)!,
      profileNotes,
    };
  } finally {
    if (!stopped) await server.stop();
    await fresh.dispose();
  }
}

export async function runB5(sc: ScenarioContext): Promise<ScenarioResult> {
  const n = sc.opts.messages;
  const receiver = await startReceiver(SLOW_MS);
  try {
    progress(`B5: ${n} messages to one fast endpoint`);
    const alone = await deliveryRun(sc, receiver, 'fast-only', ['fast']);
    progress(`B5: ${n} messages to a slow (${SLOW_MS} ms) and a fast endpoint`);
    const mixed = await deliveryRun(sc, receiver, 'mixed', ['slow', 'fast']);
    const fastAlone = alone.endpoints.find((e) => e.endpoint === 'fast');
    const fastMixed = mixed.endpoints.find((e) => e.endpoint === 'fast');
    const slowMixed = mixed.endpoints.find((e) => e.endpoint === 'slow');
    const notes: string[] = [
      'B5: messages are produced by the meterhook server process itself ' +
        '(HTTP ingest of one event per customer in a past hour, then POST /aggregations/trigger); ' +
        'its own dispatcher delivers them (default concurrency 16, 4 per endpoint). ' +
        'Figures are read from its store after a graceful stop: lag = delivered_at - message created_at.',
    ];
    for (const run of [alone, mixed]) {
      notes.push(
        `B5 ${run.label}: ingest ${run.ingestS.toFixed(2)} s, ` +
          `trigger (close ${run.finalized} hourly aggregations) ${run.triggerS.toFixed(2)} s, ` +
          `fast endpoint complete after ${run.waitedS.toFixed(2)} s${run.timedOut ? ' (TIMED OUT)' : ''}; ` +
          `server CPU ${run.serverCpuS} s; receiver ${JSON.stringify(run.receiver)}`,
      );
      notes.push(...run.profileNotes);
      for (const e of run.endpoints) {
        notes.push(
          `  ${e.endpoint}: ${e.delivered} delivered (${JSON.stringify(e.byStatus)}, ${e.retried} retried), ` +
            `${Math.round(e.deliveriesPerS)}/s first-to-last 2xx, ${Math.round(e.endToEndPerS)}/s from message creation, ` +
            `first 2xx ${e.firstDeliveryAfterMs} ms after creation, ` +
            `lag p50 ${e.lagMs.p50} / p99 ${e.lagMs.p99} / max ${e.lagMs.max} ms ` +
            `(of which waiting to be claimed p50 ${e.waitMs.p50} / p99 ${e.waitMs.p99} ms, ` +
            `HTTP attempt p50 ${e.attemptMs.p50} / p99 ${e.attemptMs.p99} ms)` +
            `${e.sampleError ? `; error seen: ${e.sampleError}` : ''}`,
        );
      }
    }
    const aloneRate = fastAlone?.deliveriesPerS ?? 0;
    const mixedRate = fastMixed?.deliveriesPerS ?? 0;
    const held = aloneRate > 0 ? mixedRate / aloneRate : Number.NaN;
    const allDelivered = (e: EndpointFigures | undefined) => e !== undefined && e.delivered >= n;
    return {
      id: 'B5',
      title: 'Webhook delivery (loopback receiver)',
      rows: [
        {
          scenario: 'B5',
          label: `delivery, 1 fast endpoint, ${n} msgs; p50/p99 = lag`,
          value: Math.round(aloneRate),
          unit: 'dlv/s',
          p50Ms: fastAlone?.lagMs.p50,
          p99Ms: fastAlone?.lagMs.p99,
          rssMb: alone.peakRssMb,
          target: '>= 1,000 deliveries/s',
          verdict: judge(sc.opts.quick, aloneRate >= 1000 && allDelivered(fastAlone)),
        },
        {
          scenario: 'B5',
          label: `fast endpoint beside a ${SLOW_MS / 1000} s one (slow got ${slowMixed?.delivered ?? 0}); ratio = vs alone`,
          value: Math.round(mixedRate),
          unit: 'dlv/s',
          ratio: round(held, 2),
          p50Ms: fastMixed?.lagMs.p50,
          p99Ms: fastMixed?.lagMs.p99,
          rssMb: mixed.peakRssMb,
          target: 'fast not held back (>= 0.8x alone)',
          verdict: judge(sc.opts.quick, held >= 0.8 && allDelivered(fastMixed)),
        },
      ],
      details: { slowMs: SLOW_MS, runs: [alone, mixed] },
      notes,
    };
  } finally {
    await receiver.stop();
  }
}
