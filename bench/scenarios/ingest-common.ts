// Owns the shape shared by B1 and B2: the same bodies against the bare baseline and then against a
// fresh meterhook server, each with a warm-up and a measured autocannon run, plus server CPU, peak
// RSS, and a check that every acknowledged event is in the store afterwards.

import { BodyFactory, type BodyFactoryOptions } from '../bodies.js';
import { benchApiKey, referenceConfig, writeConfig } from '../config.js';
import { cannon, type CannonFigures } from '../load.js';
import { mb, progress, round } from '../report.js';
import { coresBusy, startBaseline, startMeterhook, systemCpu, type Child } from '../server-process.js';
import { collectProfile, freshStore, num, profDir, type ScenarioContext } from './context.js';

export interface SideFigures {
  warmup: Omit<CannonFigures, 'raw'>;
  measured: Omit<CannonFigures, 'raw'>;
  /** Events acknowledged per second (2xx × events per request / seconds). */
  eventsPerS: number;
  reqPerS: number;
  serverCpuCores: number;
  /** Machine-wide busy cores during the measured run; minus server and load generator, what other processes took. */
  machineBusyCores: number | undefined;
  otherCores: number | undefined;
  iowaitCores: number | undefined;
  peakRssMb: number;
  requestBytes: number;
}

export interface IngestPairOptions {
  name: string;
  path: string;
  connections: number;
  eventsPerRequest: number;
  factory: (idPrefix: string) => BodyFactoryOptions;
  /** meterhook's configuration; the reference configuration by default. */
  config?: Record<string, unknown>;
}

const strip = ({ raw: _raw, ...rest }: CannonFigures): Omit<CannonFigures, 'raw'> => rest;

async function drive(
  sc: ScenarioContext,
  server: Child,
  o: IngestPairOptions,
  factory: BodyFactory,
  headers: Record<string, string>,
): Promise<SideFigures> {
  const common = {
    url: server.url,
    method: 'POST' as const,
    path: o.path,
    headers,
    connections: o.connections,
    body: () => factory.next(),
  };
  const warmup = await cannon({ ...common, durationS: sc.opts.warmupS });
  const cpu0 = server.monitor.cpuSeconds();
  const sys0 = systemCpu();
  const t0 = performance.now();
  const measured = await cannon({ ...common, durationS: sc.opts.durationS });
  const wallS = (performance.now() - t0) / 1000;
  const serverCpuCores = (server.monitor.cpuSeconds() - cpu0) / wallS;
  const machine = coresBusy(sys0, systemCpu());
  return {
    warmup: strip(warmup),
    measured: strip(measured),
    eventsPerS: (measured.ok2xx * o.eventsPerRequest) / measured.durationS,
    reqPerS: measured.reqPerS,
    serverCpuCores: round(serverCpuCores, 2)!,
    machineBusyCores: machine?.busy,
    otherCores: machine ? round(Math.max(0, machine.busy - serverCpuCores - measured.loaderCpuCores), 2) : undefined,
    iowaitCores: machine?.iowait,
    peakRssMb: 0,
    requestBytes: factory.approxBytes,
  };
}

export async function runIngestPair(
  sc: ScenarioContext,
  o: IngestPairOptions,
): Promise<{
  baseline: SideFigures;
  meterhook: SideFigures & { storedEvents: number; acknowledgedEvents: number };
  notes: string[];
  details: Record<string, unknown>;
}> {
  const notes: string[] = [];
  const details: Record<string, unknown> = {};

  progress(
    `${o.name}: baseline (bare node:http, JSON.parse, 201) — ` +
      `${sc.opts.warmupS}s warm-up + ${sc.opts.durationS}s at ${o.connections} connections`,
  );
  const baseServer = await startBaseline();
  let baseline: SideFigures | undefined;
  try {
    baseline = await drive(sc, baseServer, o, new BodyFactory(o.factory(`${o.name.toLowerCase()}-${sc.nonce}-base`)), {
      'content-type': 'application/json',
    });
  } finally {
    const st = await baseServer.stop();
    if (baseline) baseline.peakRssMb = mb(st.peakRssBytes);
  }

  const fresh = await freshStore(sc, o.name.toLowerCase());
  try {
    const apiKey = benchApiKey();
    const configFile = writeConfig(fresh.dir, o.config ?? referenceConfig());
    const prof = profDir(sc, o.name);
    progress(
      `${o.name}: meterhook (${sc.runner.kind}) — ${sc.opts.warmupS}s warm-up + ${sc.opts.durationS}s at ${o.connections} connections`,
    );
    const server = await startMeterhook({ runner: sc.runner, dataDir: fresh.dir, configFile, apiKey, cpuProfDir: prof, env: fresh.env });
    let side: SideFigures;
    let stop: Awaited<ReturnType<Child['stop']>>;
    try {
      side = await drive(sc, server, o, new BodyFactory(o.factory(`${o.name.toLowerCase()}-${sc.nonce}-mh`)), {
        'content-type': 'application/json',
        'x-apikey': apiKey,
      });
    } finally {
      stop = await server.stop();
    }
    side.peakRssMb = mb(stop.peakRssBytes);
    if (stop.exitCode !== 0)
      notes.push(`meterhook exited with code ${stop.exitCode} signal ${stop.signal}: ${server.output().slice(-500)}`);
    const warnings = server.output().trim();
    if (warnings) details.serverLog = warnings.slice(-4000);

    // Every 2xx must be durable: count what the store holds after a graceful stop.
    const acknowledgedEvents = (side.warmup.ok2xx + side.measured.ok2xx) * o.eventsPerRequest;
    const storedEvents = num((await fresh.query<{ n: unknown }>('SELECT count(*) AS n FROM events'))[0]?.n);
    if (storedEvents < acknowledgedEvents) {
      notes.push(`DURABILITY PROBLEM: ${acknowledgedEvents} events acknowledged with 2xx but only ${storedEvents} stored`);
    }
    collectProfile(prof, 'meterhook', notes, details);
    if (side.measured.non2xx > 0 || side.measured.errors > 0) {
      notes.push(
        `meterhook: ${side.measured.non2xx} non-2xx responses (${JSON.stringify(side.measured.statusCodes)}), ` +
          `${side.measured.errors} errors, ${side.measured.timeouts} timeouts`,
      );
    }
    return { baseline, meterhook: { ...side, storedEvents, acknowledgedEvents }, notes, details };
  } finally {
    await fresh.dispose();
  }
}
