// B3, closing periods: N events (1,000 customers × 7 event types, one per operator, timestamps over
// the previous calendar month) loaded in-process through the real ingest service (captureBatch on a
// SQLite file), then closeDuePeriods timed with the clock past every period's end + grace, until
// every hourly, daily, weekly and monthly aggregation is final and its outbox message written.
// Events are loaded in timestamp order, as live traffic arrives (the load is not timed).
// Runs again with 2N events: the close should cost hours × customers, not events.

import path from 'node:path';
import { closeDuePeriods, type CloseSummary } from '../../src/aggregate/close-due-periods.js';
import { ManualClock } from '../../src/domain/clock.js';
import { periodInterval } from '../../src/domain/periods.js';
import { customerId, metadataFor, rng, valueFor } from '../bodies.js';
import { ALL_TYPES, referenceConfig } from '../config.js';
import { openInProcess, loadEvents, type LoadFigures } from '../in-process.js';
import { formatHot, profileInProcess, type HotFunction } from '../profile.js';
import { judge, mb, progress, round, type ScenarioResult } from '../report.js';
import { dirBytes, freshStore, num, type ScenarioContext } from './context.js';

const CUSTOMERS = 1000;

interface CloseRun {
  events: number;
  load: LoadFigures;
  closeS: number;
  sPerMillion: number;
  closeClock: string;
  summary: Omit<CloseSummary, 'customers'> & { customers: number };
  before: { rollups: number; marks: Record<string, number> };
  after: { aggregations: number; finalAggregations: number; messages: number; marksLeft: number };
  dbBytes: number;
  heapUsedMb: number;
  profile?: { totalMs: number; hot: HotFunction[] };
}

async function closeRun(sc: ScenarioContext, events: number, label: string): Promise<CloseRun> {
  const now = new Date();
  const monthStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
  const prevStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1);
  const span = monthStart - prevStart;
  const fresh = await freshStore(sc, `b3-${label}`);
  // While loading, "now" is the end of the previous month: every event is in the past and younger than maxEventAge (35 d).
  const clock = new ManualClock(monthStart);
  const configDoc = referenceConfig();
  const ip = await openInProcess({ dataDir: fresh.dir, configDoc, clock, databaseUrl: fresh.databaseUrl });
  try {
    const r = rng(0xb3 + events);
    const load = await loadEvents(ip, {
      total: events,
      label: `B3 ${label} load`,
      make: (i) => {
        const eventType = ALL_TYPES[Math.floor(r() * ALL_TYPES.length)]!;
        return {
          eventType,
          customerId: customerId(Math.floor(r() * CUSTOMERS), 3),
          id: `b3-${sc.nonce}-${label}-${i}`,
          value: valueFor(eventType, r),
          // Uniform over the month, in arrival order (as live traffic comes in), random customer and type.
          timestamp: prevStart + Math.floor(((i + r()) * span) / events),
          metadata: metadataFor(r),
        };
      },
    });
    progress(
      `B3 ${label}: loaded ${events.toLocaleString('en-US')} events in ${load.seconds.toFixed(1)} s ` +
        `(${Math.round(load.eventsPerS).toLocaleString('en-US')}/s, not timed); closing periods`,
    );

    const count = async (sql: string) => num((await fresh.query<{ n: unknown }>(sql))[0]?.n);
    const before = {
      rollups: await count('SELECT count(*) AS n FROM rollups'),
      marks: Object.fromEntries(
        (await fresh.query<{ period: string; n: unknown }>('SELECT period, count(*) AS n FROM dirty_periods GROUP BY period')).map((x) => [
          x.period,
          num(x.n),
        ]),
      ),
    };

    // Past the end + grace of every period holding data (the last ISO week can run into this month).
    const last = monthStart - 1;
    const closeAt = Math.max(...ip.config.periods.map((p) => periodInterval(p, last).end)) + ip.config.gracePeriodMs + 1000;
    clock.set(closeAt);
    let summary: CloseSummary;
    let profile: CloseRun['profile'];
    const t0 = performance.now();
    if (sc.opts.cpuProf) {
      const p = await profileInProcess(() => closeDuePeriods(ip.ctx, closeAt), path.join(sc.tmpRoot, `b3-${label}.cpuprofile`));
      summary = p.result;
      profile = p.profile;
    } else {
      summary = await closeDuePeriods(ip.ctx, closeAt);
    }
    const closeS = (performance.now() - t0) / 1000;
    await ip.close();

    const after = {
      aggregations: await count('SELECT count(*) AS n FROM aggregations'),
      finalAggregations: await count('SELECT count(*) AS n FROM aggregations WHERE final'),
      messages: await count('SELECT count(*) AS n FROM messages'),
      marksLeft: await count('SELECT count(*) AS n FROM dirty_periods'),
    };
    const { customers, ...rest } = summary;
    return {
      events,
      load,
      closeS,
      sPerMillion: closeS / (events / 1e6),
      closeClock: new Date(closeAt).toISOString(),
      summary: { ...rest, customers: customers.size },
      before,
      after,
      dbBytes: dirBytes(fresh.dir),
      heapUsedMb: mb(process.memoryUsage().heapUsed),
      profile,
    };
  } finally {
    await ip.close().catch(() => undefined);
    await fresh.dispose();
  }
}

export async function runB3(sc: ScenarioContext): Promise<ScenarioResult> {
  const n = sc.opts.events;
  const one = await closeRun(sc, n, '1x');
  progress(`B3 1x: close took ${one.closeS.toFixed(2)} s (${one.sPerMillion.toFixed(2)} s per million events)`);
  const two = await closeRun(sc, 2 * n, '2x');
  progress(`B3 2x: close took ${two.closeS.toFixed(2)} s (${two.sPerMillion.toFixed(2)} s per million events)`);
  const growth = two.closeS / one.closeS;
  const notes: string[] = [];
  for (const run of [one, two]) {
    const complete =
      run.after.marksLeft === 0 && run.after.finalAggregations === run.summary.finalized && run.after.messages === run.summary.messages;
    notes.push(
      `B3 ${run.events.toLocaleString('en-US')} events: close ${run.closeS.toFixed(2)} s; ` +
        `finalized ${run.summary.finalized} aggregations, ${run.summary.messages} outbox messages, ` +
        `${run.summary.eventsScanned} events scanned via rollups; ` +
        `before: ${run.before.rollups} rollup rows, marks ${JSON.stringify(run.before.marks)}; ` +
        `after: ${run.after.marksLeft} marks left, ${run.after.finalAggregations} final aggregations` +
        `${complete ? '' : ' — INCOMPLETE CLOSE'}; ` +
        `load (untimed) ${run.load.seconds.toFixed(1)} s = ${Math.round(run.load.eventsPerS)} ev/s in-process; ` +
        `${run.dbBytes > 0 ? `SQLite files ${mb(run.dbBytes)} MB` : ''}`,
    );
    if (run.profile)
      notes.push(`B3 ${run.events} close profile (in-process, self time of ${run.profile.totalMs} ms):\n${formatHot(run.profile.hot)}`);
  }
  notes.push(
    `B3 runs in the harness process (tsx-transpiled src/) against a fresh ${sc.opts.store} store: ` +
      'closeDuePeriods is a library call, not an HTTP request.',
  );
  return {
    id: 'B3',
    title: 'Closing periods (closeDuePeriods over a month of data)',
    rows: [
      {
        scenario: 'B3',
        label: `close all periods, ${n.toLocaleString('en-US')} ev (${one.closeS.toFixed(2)} s)`,
        value: round(one.sPerMillion, 3)!,
        unit: 's/M ev',
        target: '< 1 s per M events',
        verdict: judge(sc.opts.quick, one.sPerMillion < 1),
      },
      {
        scenario: 'B3',
        label: `close all periods, ${(2 * n).toLocaleString('en-US')} ev (${two.closeS.toFixed(2)} s); ratio = time 2x / 1x`,
        value: round(two.sPerMillion, 3)!,
        unit: 's/M ev',
        ratio: round(growth, 2),
        target: 'time 2x/1x < 1.2',
        verdict: judge(sc.opts.quick, growth < 1.2),
      },
    ],
    details: { customers: CUSTOMERS, eventTypes: ALL_TYPES, runs: [one, two], timeRatio2x: growth },
    notes,
  };
}
