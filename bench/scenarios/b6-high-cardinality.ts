// Owns B6, high-cardinality overload: POST /usagebatch with 1,000 events per request where every
// event is a customer never seen before (3 types, timestamps over the current UTC day, 5 periods
// configured), 8 connections at full speed for 60 s, against one server started as `npm start` runs
// it. Reports peak RSS, acknowledged events/s and the share of 503 answers; checks that /healthz keeps
// answering during the load, that the server takes a batch again by itself once the load stops, and
// that every acknowledged event is stored. Must never count a 503 as acknowledged, and must fail (an
// error, exit 1) if the server dies or its RSS reaches 300 MB.

import { B1_TYPES, EVENT_TYPES, benchApiKey, writeConfig } from '../config.js';
import { BodyFactory } from '../bodies.js';
import { cannon, httpJson } from '../load.js';
import { judge, mb, progress, round, summarize, type ScenarioResult } from '../report.js';
import { coresBusy, startMeterhook, systemCpu } from '../server-process.js';
import { collectProfile, freshStore, num, profDir, type ScenarioContext } from './context.js';

const EVENTS_PER_REQUEST = 1000;
const RSS_LIMIT_MB = 300;
const RECOVERY_TIMEOUT_MS = 120_000;

/** Polls GET /healthz once a second while the load runs; a server that stops answering shows here. */
function healthProbe(url: string) {
  const latencies: number[] = [];
  let failures = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const t0 = performance.now();
      try {
        const r = await httpJson(`${url}/healthz`, { timeoutMs: 5_000 });
        if (r.status === 200) latencies.push(performance.now() - t0);
        else failures++;
      } catch {
        failures++;
      }
      await new Promise((r) => setTimeout(r, 1_000));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return { answered: latencies.length, failures, latencyMs: summarize(latencies) };
    },
  };
}

export async function runB6(sc: ScenarioContext): Promise<ScenarioResult> {
  const now = Date.now();
  const dayStart = now - (now % 86_400_000);
  const connections = sc.opts.connections ?? 8;
  const durationS = sc.opts.b6DurationS;
  const fresh = await freshStore(sc, 'b6');
  const notes: string[] = [];
  const details: Record<string, unknown> = { connections, eventsPerRequest: EVENTS_PER_REQUEST, durationS };
  try {
    const apiKey = benchApiKey();
    const configFile = writeConfig(fresh.dir, {
      periods: ['hourly', 'daily', 'weekly', 'monthly', 'yearly'],
      events: EVENT_TYPES,
      webhooks: [],
      schedule: '*/15 * * * *',
      gracePeriod: '5m',
    });
    const prof = profDir(sc, 'B6');
    progress(`B6: meterhook (${sc.runner.kind}) — ${durationS}s at ${connections} connections, every event a new customer`);
    const server = await startMeterhook({ runner: sc.runner, dataDir: fresh.dir, configFile, apiKey, cpuProfDir: prof, env: fresh.env });
    const headers = { 'content-type': 'application/json', 'x-apikey': apiKey };
    const factory = new BodyFactory({
      eventsPerBody: EVENTS_PER_REQUEST,
      single: false,
      eventTypes: B1_TYPES,
      customers: 1,
      uniqueCustomers: true,
      fromMs: dayStart,
      toMs: now,
      idPrefix: `b6-${sc.nonce}`,
    });
    let died: string | undefined;
    server.proc.once('exit', (code, signal) => (died = `exited during the run (code ${code}, signal ${signal})`));
    const probe = healthProbe(server.url);
    const cpu0 = server.monitor.cpuSeconds();
    const sys0 = systemCpu();
    const t0 = performance.now();
    const load = await cannon({
      url: server.url,
      method: 'POST',
      path: '/usagebatch',
      headers,
      connections,
      durationS,
      body: () => factory.next(),
    });
    const wallS = (performance.now() - t0) / 1000;
    const serverCpuCores = round((server.monitor.cpuSeconds() - cpu0) / wallS, 2);
    const machine = coresBusy(sys0, systemCpu());
    const health = await probe.stop();
    const rssDuringLoad = mb(server.monitor.stop().peakRssBytes);
    server.monitor.start();

    // Recovery: with no load, the server must take a batch again by itself.
    let recoveredAfterS: number | undefined;
    const recoveryStatuses: Record<string, number> = {};
    if (!died) {
      const r0 = performance.now();
      while (!died && performance.now() - r0 < RECOVERY_TIMEOUT_MS) {
        try {
          const r = await httpJson(`${server.url}/usagebatch`, { headers, body: factory.next().toString('latin1'), timeoutMs: 30_000 });
          recoveryStatuses[r.status] = (recoveryStatuses[r.status] ?? 0) + 1;
          if (r.status === 201) {
            recoveredAfterS = round((performance.now() - r0) / 1000, 1);
            break;
          }
        } catch (err) {
          recoveryStatuses[(err as Error).name] = (recoveryStatuses[(err as Error).name] ?? 0) + 1;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    const aliveAtEnd = !died;
    const stop = await server.stop();
    const peakRssMb = Math.max(rssDuringLoad, mb(stop.peakRssBytes));
    if (!aliveAtEnd) notes.push(`B6: meterhook ${died}: ${server.output().slice(-1500)}`);
    else if (stop.exitCode !== 0)
      notes.push(`B6: meterhook exited with code ${stop.exitCode} signal ${stop.signal} at stop: ${server.output().slice(-500)}`);
    const serverLog = server.output().trim();
    if (serverLog) details.serverLog = serverLog.slice(-4000);

    const total = load.ok2xx + load.non2xx;
    const count503 = load.statusCodes['503'] ?? 0;
    const share503 = total > 0 ? count503 / total : 0;
    const acknowledgedEvents = (load.ok2xx + (recoveredAfterS !== undefined ? 1 : 0)) * EVENTS_PER_REQUEST;
    const eventsPerS = (load.ok2xx * EVENTS_PER_REQUEST) / load.durationS;
    const storedEvents = num((await fresh.query<{ n: unknown }>('SELECT count(*) AS n FROM events'))[0]?.n);
    if (storedEvents < acknowledgedEvents)
      notes.push(`DURABILITY PROBLEM: ${acknowledgedEvents} events acknowledged with 2xx but only ${storedEvents} stored`);
    collectProfile(prof, 'meterhook', notes, details);
    const other = Object.entries(load.statusCodes).filter(([c]) => !c.startsWith('2') && c !== '503');
    notes.push(
      `B6: ${load.ok2xx.toLocaleString('en-US')} batches acknowledged, ` +
        `${count503.toLocaleString('en-US')} answered 503 (${round(share503 * 100, 1)} %)` +
        `${other.length ? `, other statuses ${JSON.stringify(Object.fromEntries(other))}` : ''}, ` +
        `${load.errors} connection errors, ${load.timeouts} timeouts; ` +
        `${storedEvents.toLocaleString('en-US')} events stored for ${acknowledgedEvents.toLocaleString('en-US')} acknowledged ` +
        '(each a new customer)',
      `B6: /healthz during the load answered ${health.answered} times ` +
        `(p50 ${round(health.latencyMs.p50, 1)} ms, max ${round(health.latencyMs.max, 1)} ms), failed ${health.failures} times; ` +
        `after the load a batch was taken again after ${recoveredAfterS ?? 'never'} s (${JSON.stringify(recoveryStatuses)})`,
      `B6: server CPU ${serverCpuCores} cores; load generator ${round(load.loaderCpuCores, 2)} cores; ` +
        `machine busy ${machine?.busy ?? '?'} cores, iowait ${machine?.iowait ?? '?'}`,
    );
    Object.assign(details, {
      statusCodes: load.statusCodes,
      ok2xx: load.ok2xx,
      count503,
      share503,
      errors: load.errors,
      timeouts: load.timeouts,
      latencyMs: load.latencyMs,
      eventsPerS,
      storedEvents,
      acknowledgedEvents,
      peakRssMb,
      rssDuringLoadMb: rssDuringLoad,
      health,
      recoveredAfterS,
      recoveryStatuses,
      serverCpuCores,
      machine,
      alive: aliveAtEnd,
    });
    const failures: string[] = [];
    if (!aliveAtEnd) failures.push(`meterhook ${died}`);
    if (peakRssMb >= RSS_LIMIT_MB) failures.push(`peak RSS ${peakRssMb} MB reached the ${RSS_LIMIT_MB} MB limit`);
    if (aliveAtEnd && recoveredAfterS === undefined)
      failures.push(`no batch was accepted within ${RECOVERY_TIMEOUT_MS / 1000} s after the load stopped`);
    const ok = failures.length === 0 && health.failures === 0;
    return {
      id: 'B6',
      title: 'High-cardinality overload (POST /usagebatch, every event a new customer)',
      rows: [
        {
          scenario: 'B6',
          label: `new customer per event, ${connections} conns`,
          value: Math.round(eventsPerS),
          unit: 'ev/s',
          p50Ms: load.latencyMs.p50,
          p99Ms: load.latencyMs.p99,
          rssMb: peakRssMb,
          target: `alive, RSS < ${RSS_LIMIT_MB} MB, recovers; 503 ${round(share503 * 100, 1)} %`,
          verdict: judge(sc.opts.quick, ok),
        },
      ],
      details,
      notes,
      ...(failures.length > 0
        ? { error: `${failures.join('; ')} (peak RSS ${peakRssMb} MB, ${Math.round(eventsPerS)} ev/s acknowledged)` }
        : {}),
    };
  } finally {
    await fresh.dispose();
  }
}
