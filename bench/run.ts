// Entry point of `npm run bench`: parses flags, picks how meterhook servers run (compiled dist/ or
// tsx), runs the scenarios B1–B7 of performance.md, prints a table and writes a JSON report.
// Must never leave a child process or a temp data dir behind, and never write under bench/results
// in --quick mode (CI's smoke run leaves no files in the repo).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { readServerSettings } from '../src/config/server-settings.js';
import { openStore } from '../src/main.js';
import { defaultScenarios, parseBenchArgs, USAGE, UsageError, type BenchOptions, type ScenarioId } from './args.js';
import { runNonce } from './bodies.js';
import { machineInfo } from './machine.js';
import { formatSettings, serverSettings, startBenchCluster, type BenchCluster } from './pg-cluster.js';
import { progress, renderTable, writeJson, type ScenarioResult } from './report.js';
import { runB1, runB1G } from './scenarios/b1-batch-ingest.js';
import { runB2 } from './scenarios/b2-single-ingest.js';
import { runB3 } from './scenarios/b3-close-periods.js';
import { runB4, runB4G } from './scenarios/b4-current-usage.js';
import { runB5 } from './scenarios/b5-webhook-delivery.js';
import { runB6 } from './scenarios/b6-high-cardinality.js';
import { runB7 } from './scenarios/b7-drop-in-ingest.js';
import { runBPG } from './scenarios/bpg-scaling.js';
import type { ScenarioContext } from './scenarios/context.js';
import { REPO_ROOT, RUN_SERVER_ENV, chooseRunner, killAllChildren } from './server-process.js';

const RUNNERS: Record<ScenarioId, (sc: ScenarioContext) => Promise<ScenarioResult>> = {
  B1: runB1,
  B1G: runB1G,
  B2: runB2,
  B3: runB3,
  B4: runB4,
  B4G: runB4G,
  B5: runB5,
  B6: runB6,
  B7: runB7,
  BPG: runBPG,
};
const TITLES: Record<ScenarioId, string> = {
  B1: 'Batch ingest',
  B1G: 'Batch ingest with groups',
  B2: 'Single-event ingest',
  B3: 'Closing periods',
  B4: 'Current usage',
  B4G: 'Current usage with groups',
  B5: 'Webhook delivery',
  B6: 'High-cardinality overload',
  B7: 'Drop-in ingest',
  BPG: 'PostgreSQL ingest against processes',
};

/**
 * Whether this build's openStore accepts a PostgreSQL DATABASE_URL. Probed against an address where
 * nothing listens: a build with the adapter fails to connect, one without rejects the URL itself.
 */
async function postgresSupport(): Promise<{ ok: true } | { ok: false; reason: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterhook-bench-probe-'));
  try {
    const settings = readServerSettings(
      { METERHOOK_DATA_DIR: dir, DATABASE_URL: 'postgres://meterhook@127.0.0.1:1/meterhook_probe' },
      REPO_ROOT,
    );
    const store = await openStore(settings);
    const kind = store.stats().adapter;
    await store.close();
    return kind === 'postgres' ? { ok: true } : { ok: false, reason: `openStore ignored DATABASE_URL and opened ${kind}` };
  } catch (err) {
    const msg = (err as Error).message ?? String(err);
    return /not support|unsupported/i.test(msg) ? { ok: false, reason: msg } : { ok: true };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function checkAdminUrl(url: string): Promise<string | undefined> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return undefined;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await c.end().catch(() => undefined);
  }
}

function resultFile(opts: BenchOptions): string {
  if (opts.out) return path.resolve(opts.out);
  if (opts.quick) return path.join(os.tmpdir(), `meterhook-bench-quick-${opts.store}.json`);
  const date = new Date().toISOString().slice(0, 10);
  const subset = opts.scenarios.length === defaultScenarios(opts.store).length ? '' : `-${opts.scenarios.join('-').toLowerCase()}`;
  return path.join(REPO_ROOT, 'bench', 'results', `${date}-${opts.store}${subset}.json`);
}

async function main(): Promise<number> {
  let opts: BenchOptions;
  try {
    const parsed = parseBenchArgs(process.argv.slice(2));
    if (parsed === 'help') {
      process.stdout.write(USAGE);
      return 0;
    }
    opts = parsed;
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`bench: ${err.message}\n\n${USAGE}`);
    return 2;
  }

  let adminDatabaseUrl: string | undefined;
  let cluster: BenchCluster | undefined;
  let pgSettings: Record<string, string> | undefined;
  if (opts.store === 'postgres') {
    const support = await postgresSupport();
    if (!support.ok) {
      process.stderr.write(`bench: --store postgres is not available in this build (${support.reason})\n`);
      return 2;
    }
    const url = process.env.DATABASE_URL;
    if (opts.ownCluster || !url) {
      progress('starting a throwaway durable PostgreSQL cluster (fsync on, synchronous_commit on, default shared_buffers)');
      try {
        cluster = await startBenchCluster();
      } catch (err) {
        process.stderr.write(`bench: cannot start a PostgreSQL cluster: ${(err as Error).message}\n`);
        return 2;
      }
      adminDatabaseUrl = cluster.url;
    } else {
      if (!/^postgres(ql)?:\/\//i.test(url)) {
        process.stderr.write(
          'bench: --store postgres needs DATABASE_URL=postgres://user@host:port/db for a role that may CREATE DATABASE ' +
            '(each run gets its own database, dropped afterwards), or no DATABASE_URL for a throwaway cluster\n',
        );
        return 2;
      }
      const problem = await checkAdminUrl(url);
      if (problem) {
        process.stderr.write(`bench: cannot use DATABASE_URL: ${problem}\n`);
        return 2;
      }
      adminDatabaseUrl = url;
    }
    pgSettings = await serverSettings(adminDatabaseUrl);
  }

  if (opts.keyRateLimit !== undefined) {
    RUN_SERVER_ENV.METERHOOK_KEY_RATE_LIMIT = String(opts.keyRateLimit);
    RUN_SERVER_ENV.METERHOOK_KEY_RATE_BURST = String(opts.keyRateLimit);
  }
  const runner = chooseRunner(opts.build, progress);
  const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'meterhook-bench-'));
  const cleanup = () => {
    killAllChildren();
    cluster?.stop();
    if (opts.cpuProf) {
      // Keep the profiles; drop the (possibly multi-GB) data dirs.
      for (const name of fs.readdirSync(tmpRoot))
        if (name !== 'profiles' && !name.endsWith('.cpuprofile')) fs.rmSync(path.join(tmpRoot, name), { recursive: true, force: true });
    } else fs.rmSync(tmpRoot, { recursive: true, force: true });
  };
  const onSignal = (sig: NodeJS.Signals) => {
    process.stderr.write(`bench: ${sig}, stopping servers and removing ${tmpRoot}\n`);
    cleanup();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const machine = machineInfo(REPO_ROOT);
  const sc: ScenarioContext = { opts, runner, tmpRoot, nonce: runNonce(), adminDatabaseUrl };
  const started = new Date();
  const out = process.stdout;
  out.write(
    `meterhook benchmark — ${opts.quick ? 'QUICK smoke run (checks the harness, not speed; no verdicts)' : 'full run'}` +
      `, store ${opts.store}\n`,
  );
  out.write(
    `machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGb} GB, node ${machine.node}, ${machine.platform}; ` +
      `commit ${machine.gitCommit.slice(0, 12)}${machine.gitDirty ? ' (uncommitted changes)' : ''}; ` +
      `load avg ${machine.loadAverage.join(' ')}\n`,
  );
  out.write(`server: ${runner.description}\n`);
  if (opts.keyRateLimit !== undefined)
    out.write(`server: per-key rate limit ${opts.keyRateLimit} requests/s, burst ${opts.keyRateLimit}\n`);
  if (pgSettings)
    out.write(
      `postgres: ${cluster ? 'throwaway cluster started by the benchmark' : 'the server of DATABASE_URL'}; ${formatSettings(pgSettings)}\n`,
    );
  out.write(
    `note: autocannon runs in this harness process and competes with the server for the ${machine.cores} cores; ` +
      'meterhook and the baseline are single-threaded, so one core each for server and load generator is the intended split ' +
      '(CPU use of both is in the notes).\n\n',
  );

  const results: ScenarioResult[] = [];
  for (const id of opts.scenarios) {
    progress(`${id} ${TITLES[id]}: starting`);
    const t0 = performance.now();
    const loadBefore = os.loadavg()[0]!;
    try {
      const r = await RUNNERS[id](sc);
      r.details.wallSeconds = Math.round((performance.now() - t0) / 100) / 10;
      // Shared machines are noisy: the 1-minute load average says how much else was running.
      r.details.loadAverage1m = { before: Math.round(loadBefore * 100) / 100, after: Math.round(os.loadavg()[0]! * 100) / 100 };
      r.notes.push(
        `${id}: 1-minute load average ${loadBefore.toFixed(2)} before, ${os.loadavg()[0]!.toFixed(2)} after (${machine.cores} cores)`,
      );
      results.push(r);
    } catch (err) {
      progress(`${id} failed: ${(err as Error).stack ?? String(err)}`);
      results.push({ id, title: TITLES[id], rows: [], details: {}, notes: [], error: (err as Error).message });
    }
    progress(`${id}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }

  out.write(`${renderTable(results)}\n\n`);
  for (const r of results) for (const n of r.notes) out.write(`- ${n}\n`);
  for (const r of results) if (r.error) out.write(`- ${r.id} ERROR: ${r.error}\n`);

  const file = resultFile(opts);
  writeJson(file, {
    date: started.toISOString(),
    finishedAt: new Date().toISOString(),
    store: opts.store,
    keyRateLimit: opts.keyRateLimit ?? null,
    quick: opts.quick,
    machine,
    server: runner.description,
    ...(pgSettings ? { postgres: { cluster: cluster ? 'throwaway' : 'DATABASE_URL', settings: pgSettings } } : {}),
    options: { ...opts, explicit: [...opts.explicit] },
    results,
  });
  out.write(`\nJSON report: ${file}\n`);
  if (opts.cpuProf) out.write(`CPU profiles kept under ${tmpRoot}\n`);
  cleanup();
  return results.some((r) => r.error) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    killAllChildren();
    process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
