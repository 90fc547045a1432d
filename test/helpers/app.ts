// Builds a meterhook app in-process with composeServices (as the server does) against a fresh real
// SQLite file or PostgreSQL schema, with a manual clock and a known API key. Tests call app.inject();
// nothing listens on a port and no database is mocked.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { parseConfig } from '../../src/config/load-config.js';
import type { MeterhookConfig } from '../../src/config/schema.js';
import type { EventPageOptions } from '../../src/aggregate/event-listing.js';
import { ManualClock } from '../../src/domain/clock.js';
import type { App } from '../../src/http/build-app.js';
import type { GroupCommitter, GroupCommitOptions } from '../../src/ingest/group-commit.js';
import type { CaptureAdmission, CaptureAdmissionOptions } from '../../src/http/capture-admission.js';
import type { IngestContext } from '../../src/ingest/ingest-service.js';
import { SqliteStore, type SqliteStoreOptions } from '../../src/store/sqlite/sqlite-store.js';
import { PostgresStore } from '../../src/store/postgres/pg-store.js';
import type { Store } from '../../src/store/store.js';
import { startPgCluster, type PgCluster } from './postgres-cluster.js';
import type { Dispatcher } from '../../src/webhooks/dispatcher.js';
import type { ApiKeyVerifier } from '../../src/auth/api-keys.js';
import type { AuthThrottleOptions } from '../../src/auth/auth-throttle.js';
import type { KeyRateLimit } from '../../src/domain/records.js';
import type { HttpLimits } from '../../src/config/server-settings.js';
import { composeServices } from '../../src/services/compose.js';

export const TEST_KEY = 'mh_test_key_for_in_process_tests';

/** The reference template's example configuration: one event type per operator. */
export const REFERENCE_CONFIG = {
  periods: ['hourly', 'daily', 'weekly', 'monthly'],
  events: {
    'api.calls': { op: 'sum' },
    'storage.bytes': { op: 'max' },
    'response.time.ms': { op: 'avg' },
    'test.min': { op: 'min' },
    'test.count': { op: 'count' },
    'test.first': { op: 'first' },
    'test.last': { op: 'last' },
  },
  webhooks: [],
};

export interface TestApp {
  app: App;
  ctx: IngestContext;
  clock: ManualClock;
  config: MeterhookConfig;
  store: Store;
  /** Built but not started: tests that deliver webhooks call `await t.dispatcher.start()`. */
  dispatcher: Dispatcher;
  dir: string;
  /** Headers with the test API key and a JSON content type. */
  headers: Record<string, string>;
  committer: GroupCommitter;
  admission: CaptureAdmission;
  /** The app's key verifier: `await t.apiKeys.reload()` after storing a key makes it known at once. */
  apiKeys: ApiKeyVerifier;
  close(): Promise<void>;
}

/** Which store the in-process suites run against: METERHOOK_TEST_STORE=postgres runs them on PostgreSQL. */
export const TEST_STORE: 'sqlite' | 'postgres' = process.env.METERHOOK_TEST_STORE === 'postgres' ? 'postgres' : 'sqlite';

let cluster: Promise<PgCluster> | undefined;
let schemas = 0;

/** Test-only bounds, smaller than the memory budget's, so a test can drive the app past them. */
export interface TestLimits {
  committer?: GroupCommitOptions;
  admission?: CaptureAdmissionOptions;
  /** SQLite only: derived-state and listing-index options. */
  sqlite?: Pick<SqliteStoreOptions, 'derived' | 'listing'>;
  /** The scan budget of a filtered GET /events page. */
  eventListing?: EventPageOptions;
}

const reopeners = new WeakMap<Store, () => Promise<Store>>();

/** A fresh store: a SQLite file in `dir`, or a fresh schema on the test PostgreSQL server. */
export async function openTestStore(dir: string, sqlite: Omit<SqliteStoreOptions, 'file'> = {}): Promise<Store> {
  let open: () => Promise<Store>;
  if (TEST_STORE === 'sqlite') {
    open = async () => new SqliteStore({ ...sqlite, file: path.join(dir, 'meterhook.db') });
  } else {
    cluster ??= startPgCluster();
    const { url } = await cluster;
    const schema = `t${process.pid}_${++schemas}_${Math.random().toString(36).slice(2, 6)}`;
    open = () => PostgresStore.open({ url, schema, poolSize: 4, partitionsFrom: Date.UTC(2024, 0, 1), partitionsTo: Date.UTC(2028, 0, 1) });
  }
  const store = await open();
  reopeners.set(store, open);
  return store;
}

/** Opens the same data again (the same SQLite file or PostgreSQL schema), as a restart would; close the old store first. */
export async function reopenTestStore(store: Store): Promise<Store> {
  const open = reopeners.get(store);
  if (!open) throw new Error('not a store from openTestStore');
  const again = await open();
  reopeners.set(again, open);
  return again;
}

export function tempDir(prefix = 'meterhook-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Runs fn against a fresh store of the pass's kind in a temp directory, then closes and removes it. */
export async function withTempStore(prefix: string, fn: (store: Store) => Promise<void>): Promise<void> {
  const dir = tempDir(prefix);
  const store = await openTestStore(dir);
  try {
    await fn(store);
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function buildTestApp(
  opts: {
    config?: Record<string, unknown>;
    now?: string | number;
    env?: NodeJS.ProcessEnv;
    dryRun?: boolean;
    rng?: () => number;
    /** A logger to capture log lines (default: silent). */
    logger?: import('pino').Logger;
    /** SQLite store options (when the suite runs on SQLite), e.g. when derived state is applied. */
    sqlite?: Omit<SqliteStoreOptions, 'file'>;
    limits?: TestLimits;
    /** Connection timeouts and caps, for suites that listen on a real socket. */
    http?: HttpLimits;
    /**
     * The failed-authentication throttle. Off by default: suites send many wrong keys from inject's one
     * address on a clock that stands still; test/http/abuse-limits.test.ts turns it on.
     */
    authThrottle?: AuthThrottleOptions;
    /** Keys from the environment (default [TEST_KEY]). */
    envKeys?: string[];
    /** The default per-key rate limit (default off). */
    keyRateLimit?: KeyRateLimit | null;
    /** An open store to share (another app on the same database); the app's close leaves it open. */
    store?: Store;
  } = {},
): Promise<TestApp> {
  const dir = tempDir();
  const config = parseConfig(opts.config ?? REFERENCE_CONFIG, { env: opts.env ?? {}, source: '<test>' });
  const clock = new ManualClock(typeof opts.now === 'string' ? Date.parse(opts.now) : (opts.now ?? Date.parse('2026-01-12T10:30:00Z')));
  const store = opts.store ?? (await openTestStore(dir, { ...opts.sqlite, ...opts.limits?.sqlite }));
  const logger = opts.logger ?? pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const services = await composeServices({
    store,
    config,
    clock,
    logger,
    apiKeys: opts.envKeys ?? [TEST_KEY],
    keyRateLimit: opts.keyRateLimit,
    dryRun: opts.dryRun ?? false,
    rng: opts.rng,
    version: '0.0.0-test',
    committer: opts.limits?.committer,
    admission: opts.limits?.admission,
    eventListing: opts.limits?.eventListing,
    http: opts.http,
    authThrottle: opts.authThrottle ?? { failures: 0, windowMs: 60_000 },
  });
  const { app, ctx, dispatcher, committer, admission, apiKeys } = services;
  await app.ready();
  return {
    app,
    ctx,
    clock,
    config,
    store,
    dispatcher,
    dir,
    headers: { 'x-apikey': TEST_KEY, 'content-type': 'application/json' },
    committer,
    admission,
    apiKeys,
    async close() {
      await services.close();
      if (!opts.store) await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
