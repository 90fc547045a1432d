// Owns the benchmark's command line: flags, defaults per mode (full or --quick) and the usage text.
// Must never guess at an unknown flag: anything it does not know is a usage error (exit 2).

import { parseArgs } from 'node:util';

export const SCENARIOS = ['B1', 'B1G', 'B2', 'B3', 'B4', 'B4G', 'B5', 'B6', 'B7', 'BPG'] as const;
/** Scenarios that only measure the PostgreSQL store; a SQLite run leaves them out unless asked for. */
export const POSTGRES_ONLY: readonly ScenarioId[] = ['BPG'];

/** What runs without --scenario: everything the store can run. */
export function defaultScenarios(store: StoreKind): ScenarioId[] {
  return SCENARIOS.filter((s) => store === 'postgres' || !POSTGRES_ONLY.includes(s));
}
export type ScenarioId = (typeof SCENARIOS)[number];
export type StoreKind = 'sqlite' | 'postgres';

export interface BenchOptions {
  quick: boolean;
  store: StoreKind;
  scenarios: ScenarioId[];
  /** Measured seconds for B1 and B2 (after the warm-up). */
  durationS: number;
  warmupS: number;
  /** B6: seconds of full-speed high-cardinality load. */
  b6DurationS: number;
  /** Overrides both B1's 8 and B2's 64 connections when given. */
  connections: number | undefined;
  /** B3: events in the first run (the second run loads twice as many). */
  events: number;
  /** B4: events stored before querying. */
  stored: number;
  /** B5: messages to deliver. */
  messages: number;
  /** B4: sequential GET requests timed. */
  usageRequests: number;
  /** Pass --cpu-prof to meterhook server processes (and profile B3's close in-process) and summarize the hottest functions. */
  cpuProf: boolean;
  /** Build dist/ with tsc when it is older than src/ (default on in full runs, off in --quick). */
  build: boolean;
  /** --store postgres: start a throwaway durable cluster even when DATABASE_URL is set. */
  ownCluster: boolean;
  /** Requests/s of the per-key rate limit the servers run with (METERHOOK_KEY_RATE_LIMIT); undefined: off. */
  keyRateLimit: number | undefined;
  /** Where result JSON goes: null means the default (bench/results, or a temp dir for --quick). */
  out: string | undefined;
  explicit: Set<string>;
}

export const USAGE = `Usage: npm run bench -- [options]

Runs the meterhook benchmark scenarios (see docs: shared design performance.md) against real
server processes on loopback, and prints a table plus a JSON report.

Options:
  --quick                 smoke run: tiny sizes, a few seconds per scenario; checks the harness, not speed.
                          Writes its JSON to a temp dir, never under bench/results.
  --store sqlite|postgres store to benchmark (default sqlite). postgres uses the server DATABASE_URL points at
                          (a role that may CREATE DATABASE) or, without it, starts its own throwaway durable
                          cluster (initdb/pg_ctl; fsync and synchronous_commit on, default shared_buffers)
  --own-cluster           with --store postgres: start the throwaway cluster even when DATABASE_URL is set
  --scenario B1,B3        run only these scenarios (default: all of B1..B7, plus BPG with --store postgres)
  --duration <s>          measured seconds for B1, B2 and BPG (default 10; quick 1)
  --warmup <s>            warm-up seconds before B1, B2 and BPG (default 2; quick 0.5)
  --connections <n>       connections for B1, B2, B6 and BPG (default B1 8, B2 64, B6 8, BPG 8 in all)
  --b6-duration <s>       B6 seconds of full-speed load, every event a new customer (default 60; quick 2)
  --events <n>            B3 events in the first run; the second run uses 2x (default 1000000; quick 20000)
  --stored <n>            B4 stored events (default 10000000; quick 50000)
  --messages <n>          B5 webhook messages (default 10000; quick 200)
  --requests <n>          B4 sequential usage requests timed (default 2000; quick 200)
  --cpu-prof              run meterhook servers with --cpu-prof and print the hottest functions
  --key-rate-limit <n>    run meterhook servers with a per-key rate limit of n requests/s and burst n
                          (METERHOOK_KEY_RATE_LIMIT/BURST), to measure what the token bucket costs (default off)
  --build / --no-build    compile dist/ with tsc when stale (default: build in full runs, not in --quick)
  --out <file>            write the JSON report here instead of the default location
  -h, --help              show this help
`;

export class UsageError extends Error {}

function positiveNumber(name: string, raw: string | undefined, integer: boolean): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${name} must be a positive ${integer ? 'integer' : 'number'} (got ${JSON.stringify(raw)})`);
  }
  return n;
}

export function parseBenchArgs(argv: string[]): BenchOptions | 'help' {
  const parsed = (() => {
    try {
      return parseArgs({
        args: argv,
        strict: true,
        allowPositionals: false,
        options: {
          quick: { type: 'boolean' },
          store: { type: 'string' },
          scenario: { type: 'string' },
          duration: { type: 'string' },
          warmup: { type: 'string' },
          'b6-duration': { type: 'string' },
          connections: { type: 'string' },
          events: { type: 'string' },
          stored: { type: 'string' },
          messages: { type: 'string' },
          requests: { type: 'string' },
          'cpu-prof': { type: 'boolean' },
          build: { type: 'boolean' },
          'no-build': { type: 'boolean' },
          'own-cluster': { type: 'boolean' },
          'key-rate-limit': { type: 'string' },
          out: { type: 'string' },
          help: { type: 'boolean', short: 'h' },
        },
      });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  })();
  const v = parsed.values;
  if (v.help) return 'help';
  const quick = v.quick === true;

  const store = (v.store ?? 'sqlite').toLowerCase();
  if (store !== 'sqlite' && store !== 'postgres')
    throw new UsageError(`--store must be sqlite or postgres (got ${JSON.stringify(v.store)})`);
  if (v['own-cluster'] && store !== 'postgres') throw new UsageError('--own-cluster needs --store postgres');

  let scenarios = defaultScenarios(store);
  if (v.scenario !== undefined) {
    const wanted = v.scenario
      .split(',')
      .map((s) => s.trim().toUpperCase())
      .filter((s) => s !== '');
    const bad = wanted.filter((s) => !(SCENARIOS as readonly string[]).includes(s));
    if (wanted.length === 0 || bad.length > 0) {
      throw new UsageError(`--scenario takes a comma-separated list of ${SCENARIOS.join(', ')} (got ${JSON.stringify(v.scenario)})`);
    }
    scenarios = SCENARIOS.filter((s) => wanted.includes(s));
  }
  if (v.build && v['no-build']) throw new UsageError('--build and --no-build contradict each other');

  const explicit = new Set(Object.keys(v).filter((k) => (v as Record<string, unknown>)[k] !== undefined));
  return {
    quick,
    store,
    scenarios,
    durationS: positiveNumber('duration', v.duration, false) ?? (quick ? 1 : 10),
    warmupS: positiveNumber('warmup', v.warmup, false) ?? (quick ? 0.5 : 2),
    b6DurationS: positiveNumber('b6-duration', v['b6-duration'], false) ?? (quick ? 2 : 60),
    connections: positiveNumber('connections', v.connections, true),
    events: positiveNumber('events', v.events, true) ?? (quick ? 20_000 : 1_000_000),
    stored: positiveNumber('stored', v.stored, true) ?? (quick ? 50_000 : 10_000_000),
    messages: positiveNumber('messages', v.messages, true) ?? (quick ? 200 : 10_000),
    usageRequests: positiveNumber('requests', v.requests, true) ?? (quick ? 200 : 2_000),
    cpuProf: v['cpu-prof'] === true,
    ownCluster: v['own-cluster'] === true,
    keyRateLimit: positiveNumber('key-rate-limit', v['key-rate-limit'], true),
    build: v.build === true ? true : v['no-build'] === true ? false : !quick,
    out: v.out,
    explicit,
  };
}
