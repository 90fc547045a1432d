// B4, current usage: N stored events (1,000 customers × 7 event types, timestamps over the current
// month up to now) loaded in-process through the real ingest service, past periods closed and the
// running merges of groups brought to the hour in-process (a steady-state server's ticks have done
// both already), then a meterhook server on that data dir answers
// GET /customers/:id/usage?period=monthly for random customers: sequentially over one keep-alive
// connection (hrtime, sub-ms) for p50/p99, then as many GET /healthz (the machine's floor for any read),
// and with autocannon at 8 connections for throughput.

import { closeDuePeriods } from '../../src/aggregate/close-due-periods.js';
import { advanceGroupMerges } from '../../src/aggregate/group-merges.js';
import { systemClock } from '../../src/domain/clock.js';
import { periodInterval } from '../../src/domain/periods.js';
import { customerId, metadataFor, rng, valueFor } from '../bodies.js';
import { ALL_TYPES, benchApiKey, groupedConfig, referenceConfig, writeConfig } from '../config.js';
import { loadEvents, openInProcess } from '../in-process.js';
import { cannon, sequentialGets } from '../load.js';
import { judge, mb, progress, round, type ScenarioResult } from '../report.js';
import { startMeterhook } from '../server-process.js';
import { collectProfile, dirBytes, freshStore, profDir, type ScenarioContext } from './context.js';

const CUSTOMERS = 1000;
/** Time from the in-process upkeep to the end of the timed reads, with margin: about a minute at 10 M events. */
const UPKEEP_CLEARANCE_MS = 4 * 60_000;

/**
 * The current time, once the next hour's settling (hh:00 + grace) is at least UPKEEP_CLEARANCE_MS away: when it
 * is nearer, waits until just after it, so that the reads are not timed while the server's tick extends every
 * merge and closes every customer's hour (a few seconds each hour, reported apart as the extension's time).
 */
async function clearOfHourlyUpkeep(graceMs: number, notes: string[]): Promise<number> {
  const now = Date.now();
  const sinceHour = (((now - graceMs) % 3_600_000) + 3_600_000) % 3_600_000;
  const untilSettle = 3_600_000 - sinceHour;
  if (untilSettle >= UPKEEP_CLEARANCE_MS) return now;
  const waitMs = untilSettle + 5_000;
  progress(`B4: the hour settles in ${Math.round(untilSettle / 1000)} s: waiting for it before the upkeep and the timed reads`);
  notes.push(`B4: waited ${Math.round(waitMs / 1000)} s for the hour to settle, so no hourly upkeep ran during the timed reads`);
  await new Promise((r) => setTimeout(r, waitMs));
  return Date.now();
}

export function runB4(sc: ScenarioContext): Promise<ScenarioResult> {
  return runUsage(sc, 'B4');
}

/** B4G: the same data with every meter grouped by two keys (up to 50 groups each): the answers carry groups. */
export function runB4G(sc: ScenarioContext): Promise<ScenarioResult> {
  return runUsage(sc, 'B4G');
}

async function runUsage(sc: ScenarioContext, id: 'B4' | 'B4G'): Promise<ScenarioResult> {
  const grouped = id === 'B4G';
  const n = sc.opts.stored;
  const notes: string[] = [];
  const details: Record<string, unknown> = { customers: CUSTOMERS, eventTypes: ALL_TYPES, stored: n };
  const fresh = await freshStore(sc, id.toLowerCase());
  const dir = fresh.dir;
  try {
    const now = Date.now();
    const monthStart = periodInterval('monthly', now).start;
    const to = Math.max(monthStart, now - 60_000);
    const configDoc = grouped ? groupedConfig() : referenceConfig();
    const ip = await openInProcess({ dataDir: dir, configDoc, clock: systemClock, databaseUrl: fresh.databaseUrl });
    try {
      const r = rng(0xb4);
      const load = await loadEvents(ip, {
        total: n,
        label: 'B4 load',
        make: (i) => {
          const eventType = ALL_TYPES[Math.floor(r() * ALL_TYPES.length)]!;
          return {
            eventType,
            customerId: customerId(Math.floor(r() * CUSTOMERS), 3),
            id: `b4-${sc.nonce}-${i}`,
            value: valueFor(eventType, r),
            // Uniform over the month so far, in arrival order (as live traffic comes in).
            timestamp: monthStart + Math.floor(((i + r()) * (to - monthStart)) / n),
            metadata: metadataFor(r),
          };
        },
      });
      details.load = load;
      progress(
        `B4: loaded ${n.toLocaleString('en-US')} events in ${load.seconds.toFixed(1)} s ` +
          `(${Math.round(load.eventsPerS).toLocaleString('en-US')}/s, not timed); closing past periods in-process`,
      );
      // The server's first tick (at start, then every 15 minutes) closes the hours and extends the merges that
      // became due since the clock last settled (5 minutes past each hour). Done here at the time the server
      // starts, its tick finds nothing to do while the reads are timed; the hour's upkeep is timed on its own.
      const upkeepAt = await clearOfHourlyUpkeep(ip.config.gracePeriodMs, notes);
      const t0 = performance.now();
      const closed = await closeDuePeriods(ip.ctx, upkeepAt);
      const closeS = (performance.now() - t0) / 1000;
      details.catchUpClose = { seconds: closeS, finalized: closed.finalized, messages: closed.messages };
      // A running server's ticks keep the open periods' merges of groups current to the hour: so does this,
      // building them up to the previous hour, then extending them by one hour as the next tick would.
      const t1 = performance.now();
      const built = await advanceGroupMerges(ip.ctx, Math.max(monthStart, upkeepAt - 3_600_000));
      const t2 = performance.now();
      const extended = await advanceGroupMerges(ip.ctx, upkeepAt);
      const t3 = performance.now();
      if (grouped) {
        details.groupMerges = { build: { seconds: (t2 - t1) / 1000, ...built }, extend: { seconds: (t3 - t2) / 1000, ...extended } };
        notes.push(
          `B4G: running merges of the open week, month and year built in-process before the server started: ` +
            `${built.rebuilt} built up to the previous hour in ${((t2 - t1) / 1000).toFixed(1)} s, then ` +
            `${extended.advanced} extended by the last hour in ${((t3 - t2) / 1000).toFixed(1)} s (${extended.rebuilt} rebuilt; untimed)`,
        );
      }
      notes.push(
        `B4: ${n.toLocaleString('en-US')} events over ${((to - monthStart) / 3_600_000).toFixed(0)} h of the current month ` +
          `loaded in-process in ${load.seconds.toFixed(0)} s (${Math.round(load.eventsPerS)} ev/s, untimed); ` +
          `past periods closed in-process before the server started (${closed.finalized} aggregations in ${closeS.toFixed(1)} s, untimed)`,
      );
    } finally {
      await ip.close();
    }
    details.dbMb = mb(dirBytes(dir));

    const apiKey = benchApiKey();
    const configFile = writeConfig(dir, configDoc);
    const prof = profDir(sc, id);
    const server = await startMeterhook({ runner: sc.runner, dataDir: dir, configFile, apiKey, cpuProfDir: prof, env: fresh.env });
    let stop: Awaited<ReturnType<typeof server.stop>> | undefined;
    try {
      const headers = { 'x-apikey': apiKey };
      const pick = rng(0x4b4);
      const randomPath = () => `/customers/${customerId(Math.floor(pick() * CUSTOMERS), 3)}/usage?period=monthly`;
      let empty = 0;
      let bad = 0;
      const check = (status: number, body: string) => {
        if (status !== 200) bad++;
        else if (!/"eventCounts":\{"/.test(body) || (grouped && !body.includes('"groups":{"'))) empty++;
      };
      progress(`B4: warm-up then ${sc.opts.usageRequests} sequential GET /customers/:id/usage?period=monthly`);
      await sequentialGets({
        baseUrl: server.url,
        path: randomPath,
        headers,
        count: Math.max(50, Math.floor(sc.opts.usageRequests / 10)),
        onBody: check,
      });
      const seq = await sequentialGets({ baseUrl: server.url, path: randomPath, headers, count: sc.opts.usageRequests, onBody: check });
      // The machine's own floor for a sequential read: the same number of GET /healthz right after, which
      // does no work. What it adds to the slowest 1% is not the usage read's.
      const floor = await sequentialGets({ baseUrl: server.url, path: () => '/healthz', headers, count: sc.opts.usageRequests });
      const loadS = sc.opts.quick ? 1 : 5;
      progress(`B4: ${loadS}s at 8 connections (autocannon)`);
      const conc = await cannon({ url: server.url, method: 'GET', path: randomPath, headers, connections: 8, durationS: loadS });
      stop = await server.stop();
      details.sequential = seq;
      details.sequentialHealthz = floor;
      const { raw: _raw, ...concurrent } = conc;
      details.concurrent = concurrent;
      if (bad > 0 || conc.non2xx > 0)
        notes.push(`B4: ${bad + conc.non2xx} non-200 answers (${JSON.stringify(seq.statusCodes)} / ${JSON.stringify(conc.statusCodes)})`);
      if (empty > 0) notes.push(`B4: ${empty} answers had no usage (customer without events this month?)`);
      notes.push(
        `B4: sequential p90 ${round(seq.latencyMs.p90, 2)} ms, max ${round(seq.latencyMs.max, 2)} ms; ` +
          `at 8 connections autocannon reports whole-millisecond latencies; DB ${details.dbMb as number} MB`,
        `B4: the machine's floor, ${floor.count} sequential GET /healthz right after on the same server: ` +
          `p50 ${round(floor.latencyMs.p50, 2)} ms, p99 ${round(floor.latencyMs.p99, 2)} ms, max ${round(floor.latencyMs.max, 2)} ms`,
      );
      collectProfile(prof, 'meterhook', notes, details);
      const rssMb = mb(stop.peakRssBytes);
      return {
        id,
        title: `Current usage (GET /customers/:id/usage?period=monthly${grouped ? ', with groups' : ''})`,
        rows: [
          {
            scenario: id,
            label: `usage monthly${grouped ? ' with groups' : ''}, sequential, ${n.toLocaleString('en-US')} stored`,
            value: Math.round(seq.reqPerS),
            unit: 'req/s',
            p50Ms: round(seq.latencyMs.p50, 3),
            p99Ms: round(seq.latencyMs.p99, 3),
            rssMb,
            target: 'p99 < 5 ms',
            verdict: judge(sc.opts.quick, seq.latencyMs.p99 < 5 && bad === 0),
          },
          {
            scenario: id,
            label: `usage monthly${grouped ? ' with groups' : ''}, 8 conns`,
            value: Math.round(conc.reqPerS),
            unit: 'req/s',
            p50Ms: conc.latencyMs.p50,
            p99Ms: conc.latencyMs.p99,
            rssMb,
          },
        ],
        details,
        notes,
      };
    } finally {
      if (!stop) await server.stop();
    }
  } finally {
    await fresh.dispose();
  }
}
