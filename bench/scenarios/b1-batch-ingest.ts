// B1, batch ingest: POST /usagebatch with 1,000 events per request (3 event types, 10,000 customers,
// two-key metadata, unique ids, timestamps over the current UTC day up to now), 8 connections,
// 2 s warm-up then 10 s measured, against the bare baseline and meterhook.

import { B1_TYPES, GROUP_BY, groupedConfig } from '../config.js';
import { judge, round, type ScenarioResult } from '../report.js';
import type { ScenarioContext } from './context.js';
import { runIngestPair } from './ingest-common.js';

const EVENTS_PER_REQUEST = 1000;

/** B1's figure of this run, for B1G's ratio. */
let plainB1: number | undefined;

export function runB1(sc: ScenarioContext): Promise<ScenarioResult> {
  return runBatch(sc, 'B1');
}

/** B1G: the same bodies with every meter grouped by two keys of 10 and 5 values; the target is >= 0.8x B1. */
export function runB1G(sc: ScenarioContext): Promise<ScenarioResult> {
  return runBatch(sc, 'B1G');
}

async function runBatch(sc: ScenarioContext, id: 'B1' | 'B1G'): Promise<ScenarioResult> {
  const grouped = id === 'B1G';
  const now = Date.now();
  const dayStart = now - (now % 86_400_000);
  const connections = sc.opts.connections ?? 8;
  const r = await runIngestPair(sc, {
    name: id,
    ...(grouped ? { config: groupedConfig() } : {}),
    path: '/usagebatch',
    connections,
    eventsPerRequest: EVENTS_PER_REQUEST,
    // Never in the future: the newest timestamp is the moment the bodies are prepared.
    factory: (idPrefix) => ({
      eventsPerBody: EVENTS_PER_REQUEST,
      single: false,
      eventTypes: B1_TYPES,
      customers: 10_000,
      fromMs: dayStart,
      toMs: now,
      idPrefix,
    }),
  });
  const m = r.meterhook;
  const ratio = m.eventsPerS / r.baseline.eventsPerS;
  const pgStore = sc.opts.store === 'postgres';
  let target = pgStore ? '>= 50,000 ev/s' : '>= 150,000 ev/s, >= 0.5x, RSS < 300 MB';
  let ok = pgStore ? m.eventsPerS >= 50_000 : m.eventsPerS >= 150_000 && ratio >= 0.5 && m.peakRssMb < 300;
  if (grouped) {
    target = plainB1 === undefined ? '>= 0.8x B1 (run B1 too)' : `>= 0.8x B1 (${Math.round(plainB1)} ev/s)`;
    ok = plainB1 !== undefined && m.eventsPerS >= 0.8 * plainB1;
  } else plainB1 = m.eventsPerS;
  const notes = [
    ...r.notes,
    ...(grouped ? [`B1G: every meter grouped by ${GROUP_BY.join(' and ')} (10 × 5 values)`] : []),
    ...(grouped && plainB1 !== undefined ? [`B1G: ${round(m.eventsPerS / plainB1, 2)}x B1 of this run`] : []),
    `${id}: request body ~${Math.round(m.requestBytes / 1024)} KiB (${EVENTS_PER_REQUEST} events); ` +
      `server CPU ${m.serverCpuCores} cores (meterhook) vs ${r.baseline.serverCpuCores} (baseline); ` +
      `load generator CPU ${round(m.measured.loaderCpuCores, 2)} / ${round(r.baseline.measured.loaderCpuCores, 2)} cores; ` +
      `other processes ${m.otherCores ?? '?'} / ${r.baseline.otherCores ?? '?'} cores, ` +
      `iowait ${m.iowaitCores ?? '?'} cores (meterhook run)`,
    `${id}: stored events after stop ${m.storedEvents} for ${m.acknowledgedEvents} acknowledged (warm-up included)`,
  ];
  return {
    id,
    title: `Batch ingest (POST /usagebatch, 1,000 events per request${grouped ? ', grouped by two keys' : ''})`,
    rows: [
      {
        scenario: id,
        label: `batch ingest${grouped ? ' with groups' : ''}, ${connections} conns`,
        value: Math.round(m.eventsPerS),
        unit: 'ev/s',
        baseline: Math.round(r.baseline.eventsPerS),
        ratio: round(ratio, 2),
        p50Ms: m.measured.latencyMs.p50,
        p99Ms: m.measured.latencyMs.p99,
        rssMb: m.peakRssMb,
        target,
        verdict: judge(sc.opts.quick, ok),
      },
    ],
    details: { connections, eventsPerRequest: EVENTS_PER_REQUEST, baseline: r.baseline, meterhook: m, ...r.details },
    notes,
  };
}
