// B7, drop-in ingest: the same events (3 types, 10,000 customers, two metadata keys, unique ids, timestamps
// over the current UTC day up to now), 100 per request at 8 connections, sent three ways to a fresh server
// each: POST /usagebatch, Stripe's meter event stream (with a session token) and OpenMeter's CloudEvents
// batch. Events/s of each vendor surface against /usagebatch; target >= 0.8x.

import { B1_TYPES, benchApiKey, referenceConfig, writeConfig } from '../config.js';
import { metadataFor, rng, valueFor } from '../bodies.js';
import { cannon } from '../load.js';
import { judge, mb, progress, round, type Row, type ScenarioResult } from '../report.js';
import { startMeterhook } from '../server-process.js';
import { freshStore, num, type ScenarioContext } from './context.js';

const EVENTS_PER_REQUEST = 100;
const CUSTOMERS = 10_000;
const TEMPLATES = 32;
/** Replaced by the request counter in each body, so every event id is new. */
const SLOT = '\u0000';

type Surface = 'usagebatch' | 'stripe-stream' | 'openmeter';

interface Event {
  type: string;
  customer: string;
  value: number;
  ts: string;
  md: Record<string, string>;
  i: number;
}

const PATHS: Record<Surface, string> = {
  usagebatch: '/usagebatch',
  'stripe-stream': '/v2/billing/meter_event_stream',
  openmeter: '/compat/openmeter/api/v1/events',
};

/** One event in each surface's wire format; `${SLOT}` marks where the request counter goes in its id. */
function encode(surface: Surface, e: Event, prefix: string): unknown {
  const id = `${prefix}-${SLOT}-${e.i}`;
  if (surface === 'usagebatch') return { eventType: e.type, customerId: e.customer, id, value: e.value, timestamp: e.ts, metadata: e.md };
  if (surface === 'stripe-stream') {
    return {
      event_name: e.type,
      identifier: id,
      timestamp: e.ts,
      payload: { stripe_customer_id: e.customer, value: String(e.value), ...e.md },
    };
  }
  return { specversion: '1.0', id, source: 'bench', type: e.type, subject: e.customer, time: e.ts, data: { value: e.value, ...e.md } };
}

/** Bodies from templates: the same events for every surface (same seed), a fresh counter per request. */
function bodies(surface: Surface, prefix: string, fromMs: number, toMs: number): { next: () => Buffer; bytes: number } {
  const r = rng(0xb7);
  const templates: string[][] = [];
  for (let t = 0; t < TEMPLATES; t++) {
    const events = Array.from({ length: EVENTS_PER_REQUEST }, (_, i) => {
      const type = B1_TYPES[Math.floor(r() * B1_TYPES.length)]!;
      const customer = `cus_${String(Math.floor(r() * CUSTOMERS)).padStart(5, '0')}`;
      const ts = new Date(fromMs + Math.floor(r() * (toMs - fromMs + 1))).toISOString();
      return encode(surface, { type, customer, value: valueFor(type, r), ts, md: metadataFor(r), i }, prefix);
    });
    const json = JSON.stringify(surface === 'stripe-stream' ? { events } : events);
    templates.push(json.split(JSON.stringify(SLOT).slice(1, -1)));
  }
  let counter = 0;
  return {
    next: () => {
      const parts = templates[counter % TEMPLATES]!;
      return Buffer.from(parts.join(String(counter++)));
    },
    bytes: Buffer.byteLength(templates[0]!.join('0')),
  };
}

async function runSurface(sc: ScenarioContext, surface: Surface, connections: number) {
  const fresh = await freshStore(sc, `b7-${surface}`);
  try {
    const apiKey = benchApiKey();
    const configFile = writeConfig(fresh.dir, referenceConfig());
    const server = await startMeterhook({ runner: sc.runner, dataDir: fresh.dir, configFile, apiKey, env: fresh.env });
    let figures: Awaited<ReturnType<typeof cannon>>;
    let warmup: Awaited<ReturnType<typeof cannon>>;
    let serverCpuCores = 0;
    let requestBytes = 0;
    let stop: Awaited<ReturnType<typeof server.stop>> | undefined;
    try {
      const headers: Record<string, string> = { 'content-type': 'application/json', 'x-apikey': apiKey };
      if (surface === 'openmeter') headers['content-type'] = 'application/cloudevents-batch+json';
      if (surface === 'stripe-stream') {
        const res = await fetch(`${server.url}/v2/billing/meter_event_session`, {
          method: 'POST',
          headers: { authorization: `Bearer ${apiKey}` },
        });
        const session = (await res.json()) as { authentication_token: string };
        delete headers['x-apikey'];
        headers.authorization = `Bearer ${session.authentication_token}`;
      }
      const now = Date.now();
      const b = bodies(surface, `b7-${sc.nonce}-${surface}`, now - (now % 86_400_000), now);
      requestBytes = b.bytes;
      const common = { url: server.url, method: 'POST' as const, path: PATHS[surface], headers, connections, body: b.next };
      progress(`B7: ${surface} — ${sc.opts.warmupS}s warm-up + ${sc.opts.durationS}s at ${connections} connections`);
      warmup = await cannon({ ...common, durationS: sc.opts.warmupS });
      const cpu0 = server.monitor.cpuSeconds();
      const t0 = performance.now();
      figures = await cannon({ ...common, durationS: sc.opts.durationS });
      serverCpuCores = (server.monitor.cpuSeconds() - cpu0) / ((performance.now() - t0) / 1000);
    } finally {
      stop = await server.stop();
    }
    const acknowledged = (warmup.ok2xx + figures.ok2xx) * EVENTS_PER_REQUEST;
    const stored = num((await fresh.query<{ n: unknown }>('SELECT count(*) AS n FROM events'))[0]?.n);
    return {
      surface,
      eventsPerS: (figures.ok2xx * EVENTS_PER_REQUEST) / figures.durationS,
      latencyMs: figures.latencyMs,
      non2xx: figures.non2xx,
      statusCodes: figures.statusCodes,
      loaderCpuCores: round(figures.loaderCpuCores, 2),
      serverCpuCores: round(serverCpuCores, 2),
      peakRssMb: mb(stop.peakRssBytes),
      requestBytes,
      acknowledged,
      stored,
    };
  } finally {
    await fresh.dispose();
  }
}

const SURFACES = ['usagebatch', 'stripe-stream', 'openmeter'] as const;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export async function runB7(sc: ScenarioContext): Promise<ScenarioResult> {
  const connections = sc.opts.connections ?? 8;
  // The surfaces are interleaved over rounds (each round in a rotated order), and each ratio is taken within
  // its round: on a shared 2-core machine the load of other processes changes between runs.
  const rounds = sc.opts.quick ? 1 : 3;
  const runs: Array<Awaited<ReturnType<typeof runSurface>>[]> = [];
  for (let r = 0; r < rounds; r++) {
    const order = SURFACES.map((_, i) => SURFACES[(i + r) % SURFACES.length]!);
    const set: Awaited<ReturnType<typeof runSurface>>[] = [];
    for (const surface of order) set.push(await runSurface(sc, surface, connections));
    runs.push(SURFACES.map((surface) => set.find((x) => x.surface === surface)!));
  }
  const notes: string[] = [];
  for (const set of runs) {
    for (const s of set) {
      if (s.stored < s.acknowledged) notes.push(`DURABILITY PROBLEM: ${s.surface}: ${s.acknowledged} acknowledged, ${s.stored} stored`);
      if (s.non2xx > 0) notes.push(`B7: ${s.surface}: ${s.non2xx} non-2xx answers (${JSON.stringify(s.statusCodes)})`);
    }
    notes.push(
      `B7 round: ${set.map((s) => `${s.surface} ${Math.round(s.eventsPerS)} ev/s (server ${s.serverCpuCores} cores)`).join(', ')}`,
    );
  }
  const rows: Row[] = SURFACES.map((surface, i) => {
    const sides = runs.map((set) => set[i]!);
    const eventsPerS = median(sides.map((s) => s.eventsPerS));
    const base = median(runs.map((set) => set[0]!.eventsPerS));
    const ratio = median(runs.map((set) => set[i]!.eventsPerS / set[0]!.eventsPerS));
    const last = sides[sides.length - 1]!;
    const isBase = i === 0;
    return {
      scenario: 'B7',
      label: `${surface}, ${EVENTS_PER_REQUEST}/request, ${connections} conns${rounds > 1 ? `, median of ${rounds}` : ''}`,
      value: Math.round(eventsPerS),
      unit: 'ev/s',
      ...(isBase ? {} : { baseline: Math.round(base), ratio: round(ratio, 2) }),
      p50Ms: last.latencyMs.p50,
      p99Ms: last.latencyMs.p99,
      rssMb: Math.max(...sides.map((s) => s.peakRssMb)),
      target: isBase ? 'the /usagebatch reference' : '>= 0.8x /usagebatch',
      verdict: isBase ? judge(sc.opts.quick, true) : judge(sc.opts.quick, ratio >= 0.8),
    };
  });
  return {
    id: 'B7',
    title: 'Drop-in ingest (Stripe stream, OpenMeter batch) against /usagebatch, 100 events per request',
    rows,
    details: { connections, eventsPerRequest: EVENTS_PER_REQUEST, rounds: runs },
    notes,
  };
}
