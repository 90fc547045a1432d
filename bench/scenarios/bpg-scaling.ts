// BPG, PostgreSQL batch ingest against processes: B1's bodies (1,000 events per request, 3 types, 10,000
// customers, unique ids) at 8 connections in all, first as a raw deduped insert straight into the database
// (`INSERT … SELECT unnest(…) ON CONFLICT DO NOTHING` into a table keyed on customer, type and id, 8 connections),
// then the same insert with the hour totals of its new events upserted in the same statement, then through
// 1, 2 and 3 `meterhook serve` processes on one database with the connections spread across them.
// Must never run on SQLite, and never count an event the store does not hold afterwards as ingested.

import pg from 'pg';
import { B1_TYPES, benchApiKey, referenceConfig, writeConfig } from '../config.js';
import { BodyFactory, type BodyFactoryOptions } from '../bodies.js';
import { cannon, type CannonFigures } from '../load.js';
import { judge, mb, progress, round, summarize, type Row, type ScenarioResult } from '../report.js';
import { coresBusy, startMeterhook, systemCpu, type Child } from '../server-process.js';
import { collectProfile, freshStore, num, profDir, type ScenarioContext } from './context.js';

const EVENTS_PER_REQUEST = 1000;
const PROCESS_COUNTS = [1, 2, 3];

interface Batch {
  customers: string[];
  types: string[];
  ids: string[];
  ts: string[];
  values: number[];
  metadata: string[];
}

function factoryOptions(idPrefix: string): BodyFactoryOptions {
  const now = Date.now();
  return {
    eventsPerBody: EVENTS_PER_REQUEST,
    single: false,
    eventTypes: B1_TYPES,
    customers: 10_000,
    fromMs: now - (now % 86_400_000),
    toMs: now,
    idPrefix,
  };
}

/** The same bodies the servers get, parsed into the column arrays of one set-based insert. */
function toBatch(body: Buffer): Batch {
  const events = JSON.parse(body.toString('latin1')) as {
    eventType: string;
    customerId: string;
    id: string;
    value: number;
    timestamp: string;
    metadata: unknown;
  }[];
  const b: Batch = { customers: [], types: [], ids: [], ts: [], values: [], metadata: [] };
  for (const e of events) {
    b.customers.push(e.customerId);
    b.types.push(e.eventType);
    b.ids.push(e.id);
    b.ts.push(String(Date.parse(e.timestamp)));
    b.values.push(e.value);
    b.metadata.push(JSON.stringify(e.metadata));
  }
  return b;
}

const RAW_INSERT =
  'INSERT INTO raw_events (customer_id, event_type, event_id, ts, value, metadata) ' +
  'SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::float8[], $6::text[]) ON CONFLICT DO NOTHING';

// The same insert, plus the hourly totals of the events it inserted, upserted in the same statement in key
// order: the least a design that updates exactly-once hour totals with every batch writes per event (no
// marks, no queue, no dimensions), so the share of meterhook's cost that per-hour totals impose is shown.
const RAW_WITH_HOURS =
  'WITH ins AS (INSERT INTO raw_events (customer_id, event_type, event_id, ts, value, metadata) ' +
  'SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::float8[], $6::text[]) ON CONFLICT DO NOTHING ' +
  'RETURNING customer_id, event_type, ts, value) ' +
  'INSERT INTO raw_hours AS h (customer_id, event_type, hour, count, sum) ' +
  'SELECT customer_id, event_type, ts - ts % 3600000, count(*), sum(value::numeric) FROM ins GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 ' +
  'ON CONFLICT (customer_id, event_type, hour) DO UPDATE SET count = h.count + excluded.count, sum = h.sum + excluded.sum';

/** The raw deduped insert (`withHours`: and its hour totals): `connections` clients, each inserting one batch after another. */
async function rawInsert(sc: ScenarioContext, connections: number, withHours: boolean) {
  const fresh = await freshStore(sc, withHours ? 'bpgrawh' : 'bpgraw');
  const clients: pg.Client[] = [];
  try {
    for (let i = 0; i < connections; i++) {
      const c = new pg.Client({ connectionString: fresh.databaseUrl });
      await c.connect();
      clients.push(c);
    }
    await clients[0]!.query(
      'CREATE TABLE raw_events (customer_id text NOT NULL, event_type text NOT NULL, event_id text NOT NULL, ts bigint NOT NULL, ' +
        'value double precision NOT NULL, metadata text, PRIMARY KEY (customer_id, event_type, event_id))',
    );
    await clients[0]!.query(
      'CREATE TABLE raw_hours (customer_id text NOT NULL, event_type text NOT NULL, hour bigint NOT NULL, count bigint NOT NULL, ' +
        'sum numeric NOT NULL, PRIMARY KEY (customer_id, event_type, hour))',
    );
    const factory = new BodyFactory(factoryOptions(`bpg-${sc.nonce}-raw${withHours ? 'h' : ''}`));
    const runFor = async (seconds: number, latencies: number[] | undefined) => {
      const until = performance.now() + seconds * 1000;
      let batches = 0;
      await Promise.all(
        clients.map(async (c) => {
          while (performance.now() < until) {
            const b = toBatch(factory.next());
            const t0 = performance.now();
            await c.query(withHours ? RAW_WITH_HOURS : RAW_INSERT, [b.customers, b.types, b.ids, b.ts, b.values, b.metadata]);
            latencies?.push(performance.now() - t0);
            batches++;
          }
        }),
      );
      return batches;
    };
    progress(
      `BPG: raw deduped insert${withHours ? ' with hour totals' : ''} — ` +
        `${sc.opts.warmupS}s warm-up + ${sc.opts.durationS}s at ${connections} connections`,
    );
    await runFor(sc.opts.warmupS, undefined);
    const latencies: number[] = [];
    const t0 = performance.now();
    const batches = await runFor(sc.opts.durationS, latencies);
    const wallS = (performance.now() - t0) / 1000;
    const stored = num((await clients[0]!.query('SELECT count(*) AS n FROM raw_events')).rows[0]?.n);
    const hourCount = num((await clients[0]!.query('SELECT coalesce(sum(count), 0) AS n FROM raw_hours')).rows[0]?.n);
    if (withHours && hourCount !== stored) throw new Error(`BPG: raw hour totals count ${hourCount} events, raw_events holds ${stored}`);
    return { eventsPerS: (batches * EVENTS_PER_REQUEST) / wallS, latencyMs: summarize(latencies), batches, stored };
  } finally {
    for (const c of clients) await c.end().catch(() => undefined);
    await fresh.dispose();
  }
}

/** `total` connections spread over `n` processes as evenly as they go: 8 over 3 is 3, 3, 2. */
export function spread(total: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.floor(total / n) + (i < total % n ? 1 : 0)).filter((c) => c > 0);
}

const strip = ({ raw: _raw, ...rest }: CannonFigures): Omit<CannonFigures, 'raw'> => rest;

/** meterhook on one fresh database with `n` server processes, the load spread across them. */
async function processes(sc: ScenarioContext, n: number, connections: number) {
  const fresh = await freshStore(sc, `bpg${n}`);
  const servers: Child[] = [];
  const notes: string[] = [];
  try {
    const apiKey = benchApiKey();
    const configFile = writeConfig(fresh.dir, referenceConfig());
    const profs = Array.from({ length: n }, (_, i) => profDir(sc, `BPG-${n}p-${i}`));
    // All at once, as a deployment starts them: one migrates the database, the others wait for it.
    const started = await Promise.allSettled(
      Array.from({ length: n }, (_, i) =>
        startMeterhook({ runner: sc.runner, dataDir: fresh.dir, configFile, apiKey, cpuProfDir: profs[i], env: fresh.env }),
      ),
    );
    for (const s of started) if (s.status === 'fulfilled') servers.push(s.value);
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    const conns = spread(connections, servers.length);
    const factories = conns.map((_, i) => new BodyFactory(factoryOptions(`bpg-${sc.nonce}-p${n}-${i}`)));
    const load = (durationS: number) =>
      Promise.all(
        conns.map((c, i) =>
          cannon({
            url: servers[i]!.url,
            method: 'POST',
            path: '/usagebatch',
            headers: { 'content-type': 'application/json', 'x-apikey': apiKey },
            connections: c,
            durationS,
            body: () => factories[i]!.next(),
          }),
        ),
      );
    progress(`BPG: ${n} meterhook process(es) — ${sc.opts.warmupS}s warm-up + ${sc.opts.durationS}s, connections ${conns.join('+')}`);
    const warmup = await load(sc.opts.warmupS);
    const cpu0 = servers.map((s) => s.monitor.cpuSeconds());
    const sys0 = systemCpu();
    const t0 = performance.now();
    const measured = await load(sc.opts.durationS);
    const wallS = (performance.now() - t0) / 1000;
    const serverCpuCores = servers.reduce((a, s, i) => a + (s.monitor.cpuSeconds() - cpu0[i]!) / wallS, 0);
    const machine = coresBusy(sys0, systemCpu());
    const ok = measured.reduce((a, m) => a + m.ok2xx, 0);
    const non2xx = measured.reduce((a, m) => a + m.non2xx + m.errors, 0);
    const durationS = Math.max(...measured.map((m) => m.durationS));
    let peakRss = 0;
    for (const s of servers.splice(0)) {
      const st = await s.stop();
      peakRss = Math.max(peakRss, st.peakRssBytes);
      if (st.exitCode !== 0)
        notes.push(`BPG ${n}p: a server exited with code ${st.exitCode} signal ${st.signal}: ${s.output().slice(-500)}`);
    }
    const profiles: Record<string, unknown> = {};
    profs.forEach((dir, i) => {
      collectProfile(dir, `BPG ${n}p server ${i + 1}`, notes, profiles);
    });
    const acknowledged = (warmup.reduce((a, m) => a + m.ok2xx, 0) + ok) * EVENTS_PER_REQUEST;
    const stored = num((await fresh.query<{ n: unknown }>('SELECT count(*) AS n FROM events'))[0]?.n);
    if (stored < acknowledged)
      notes.push(`DURABILITY PROBLEM (${n}p): ${acknowledged} events acknowledged with 2xx but only ${stored} stored`);
    if (non2xx > 0) notes.push(`BPG ${n}p: ${non2xx} non-2xx responses or errors (${JSON.stringify(measured.map((m) => m.statusCodes))})`);
    return {
      processes: n,
      connections: conns,
      eventsPerS: (ok * EVENTS_PER_REQUEST) / durationS,
      // autocannon keeps percentiles per instance, not a mergeable histogram: the worst instance's p99.
      p50Ms: Math.max(...measured.map((m) => m.latencyMs.p50)),
      p99Ms: Math.max(...measured.map((m) => m.latencyMs.p99)),
      serverCpuCores: round(serverCpuCores, 2),
      loaderCpuCores: round(
        measured.reduce((a, m) => a + m.loaderCpuCores, 0),
        2,
      ),
      machineBusyCores: machine?.busy,
      iowaitCores: machine?.iowait,
      peakRssMb: mb(peakRss),
      acknowledged,
      stored,
      measured: measured.map(strip),
      ...profiles,
      notes,
    };
  } finally {
    for (const s of servers) await s.stop();
    await fresh.dispose();
  }
}

export async function runBPG(scIn: ScenarioContext): Promise<ScenarioResult> {
  if (scIn.opts.store !== 'postgres') throw new Error('BPG measures the PostgreSQL store: run it with --store postgres');
  // A fresh server's first durable batches take longer than the one second of --quick: give them a little more.
  const sc =
    scIn.opts.quick && !scIn.opts.explicit.has('duration')
      ? { ...scIn, opts: { ...scIn.opts, durationS: Math.max(scIn.opts.durationS, 2), warmupS: Math.max(scIn.opts.warmupS, 1) } }
      : scIn;
  const connections = sc.opts.connections ?? 8;
  const raw = await rawInsert(sc, connections, false);
  const rawHours = await rawInsert(sc, connections, true);
  const runs = [];
  for (const n of PROCESS_COUNTS) runs.push(await processes(sc, n, connections));
  const rows: Row[] = [
    {
      scenario: 'BPG',
      label: `raw deduped insert (unnest, ON CONFLICT), ${connections} conns`,
      value: Math.round(raw.eventsPerS),
      unit: 'ev/s',
      p50Ms: round(raw.latencyMs.p50, 1),
      p99Ms: round(raw.latencyMs.p99, 1),
    },
    {
      scenario: 'BPG',
      label: `raw insert + hour totals upsert, ${connections} conns`,
      value: Math.round(rawHours.eventsPerS),
      unit: 'ev/s',
      baseline: Math.round(raw.eventsPerS),
      ratio: round(rawHours.eventsPerS / raw.eventsPerS, 2),
      p50Ms: round(rawHours.latencyMs.p50, 1),
      p99Ms: round(rawHours.latencyMs.p99, 1),
    },
  ];
  const notes: string[] = [];
  let previous = 0;
  for (const r of runs) {
    const ratio = r.eventsPerS / raw.eventsPerS;
    const monotonic = r.eventsPerS >= previous;
    const two = r.processes === 2;
    const ok = monotonic && r.p99Ms < 500 && (!two || (r.eventsPerS >= 50_000 && ratio >= 0.5));
    rows.push({
      scenario: 'BPG',
      label: `meterhook, ${r.processes} process${r.processes > 1 ? 'es' : ''}, conns ${r.connections.join('+')}`,
      value: Math.round(r.eventsPerS),
      unit: 'ev/s',
      baseline: Math.round(raw.eventsPerS),
      ratio: round(ratio, 2),
      p50Ms: r.p50Ms,
      p99Ms: r.p99Ms,
      rssMb: r.peakRssMb,
      target: `${two ? '>= 50,000 ev/s, >= 0.5x raw, ' : ''}${r.processes > 1 ? `>= ${r.processes - 1}p, ` : ''}p99 < 500 ms`,
      verdict: judge(sc.opts.quick, ok),
    });
    previous = r.eventsPerS;
    notes.push(
      ...r.notes,
      `BPG ${r.processes}p: server CPU ${r.serverCpuCores} cores over all processes, load generator ${r.loaderCpuCores} cores, ` +
        `machine busy ${r.machineBusyCores ?? '?'} cores, iowait ${r.iowaitCores ?? '?'}; ` +
        `stored ${r.stored} for ${r.acknowledged} acknowledged`,
    );
  }
  notes.push(
    `BPG: raw insert stored ${raw.stored} rows (${raw.batches} batches measured); p99 for several processes is the worst process's p99`,
  );
  return {
    id: 'BPG',
    title: 'PostgreSQL batch ingest against processes (1,000 events per request)',
    rows,
    details: { connections, eventsPerRequest: EVENTS_PER_REQUEST, raw, rawHours, runs },
    notes,
  };
}
