// B2, single-event ingest: POST /usage/api.calls with a unique id per request (10,000 customers,
// two-key metadata, server-stamped time), 64 connections, 2 s warm-up then 10 s measured, against
// the bare baseline (same single body) and meterhook.

import { judge, round, type ScenarioResult } from '../report.js';
import type { ScenarioContext } from './context.js';
import { runIngestPair } from './ingest-common.js';

export async function runB2(sc: ScenarioContext): Promise<ScenarioResult> {
  const connections = sc.opts.connections ?? 64;
  const r = await runIngestPair(sc, {
    name: 'B2',
    path: '/usage/api.calls',
    connections,
    eventsPerRequest: 1,
    factory: (idPrefix) => ({ eventsPerBody: 1, single: true, eventTypes: ['api.calls'], customers: 10_000, idPrefix, templates: 64 }),
  });
  const m = r.meterhook;
  const ratio = m.reqPerS / r.baseline.reqPerS;
  // On PostgreSQL every group commit is a durable round trip to another process: the target is the rate alone.
  const pgStore = sc.opts.store === 'postgres';
  const ok = pgStore ? m.reqPerS >= 10_000 : m.reqPerS >= 15_000 && ratio >= 0.4 && m.measured.latencyMs.p99 < 20;
  const notes = [
    ...r.notes,
    `B2: server CPU ${m.serverCpuCores} cores (meterhook) vs ${r.baseline.serverCpuCores} (baseline); ` +
      `load generator CPU ${round(m.measured.loaderCpuCores, 2)} / ${round(r.baseline.measured.loaderCpuCores, 2)} cores; ` +
      `other processes ${m.otherCores ?? '?'} / ${r.baseline.otherCores ?? '?'} cores, ` +
      `iowait ${m.iowaitCores ?? '?'} cores (meterhook run); ` +
      `baseline p99 ${r.baseline.measured.latencyMs.p99} ms`,
    `B2: stored events after stop ${m.storedEvents} for ${m.acknowledgedEvents} acknowledged (warm-up included)`,
  ];
  return {
    id: 'B2',
    title: 'Single-event ingest (POST /usage/api.calls)',
    rows: [
      {
        scenario: 'B2',
        label: `single ingest, ${connections} conns`,
        value: Math.round(m.reqPerS),
        unit: 'req/s',
        baseline: Math.round(r.baseline.reqPerS),
        ratio: round(ratio, 2),
        p50Ms: m.measured.latencyMs.p50,
        p99Ms: m.measured.latencyMs.p99,
        rssMb: m.peakRssMb,
        target: pgStore ? '>= 10,000 req/s' : '>= 15,000 req/s, >= 0.4x, p99 < 20 ms',
        verdict: judge(sc.opts.quick, ok),
      },
    ],
    details: { connections, baseline: r.baseline, meterhook: m, ...r.details },
    notes,
  };
}
