// Composition root of the server: config → store → composeServices → listen, dispatcher, scheduler;
// and a shutdown that stops every timer and drains in-flight work. Must never hold business logic of its own.

import path from 'node:path';
import type { Logger } from 'pino';
import type { Scheduler } from './aggregate/scheduler.js';
import { createApiKey } from './auth/api-keys.js';
import type { MeterhookConfig } from './config/schema.js';
import type { ServerSettings } from './config/server-settings.js';
import { systemClock, type Clock } from './domain/clock.js';
import type { IngestContext } from './ingest/ingest-service.js';
import { PostgresStore } from './store/postgres/pg-store.js';
import { SqliteStore, type SqliteSynchronous } from './store/sqlite/sqlite-store.js';
import type { Store } from './store/store.js';
import { createLogger } from './observability/logger.js';
import type { Dispatcher } from './webhooks/dispatcher.js';
import type { App } from './http/build-app.js';
import { composeServices, type Services } from './services/compose.js';

export interface StartOptions {
  settings: ServerSettings;
  config: MeterhookConfig;
  clock?: Clock;
  logger?: Logger;
  /** Start the cron scheduler (default true). */
  scheduler?: boolean;
  /** Start the webhook dispatcher (default true). */
  dispatcher?: boolean;
  /** Where the one-time first-start key notice goes (default stdout). */
  announce?: (text: string) => void;
  sqliteSynchronous?: SqliteSynchronous;
}

export interface RunningServer {
  app: App;
  url: string;
  ctx: IngestContext;
  scheduler: Scheduler;
  dispatcher: Dispatcher;
  stop(): Promise<void>;
}

/** DATABASE_URL=postgres://… selects PostgreSQL; otherwise the embedded SQLite file in the data dir. */
export async function openStore(
  settings: ServerSettings,
  o: { synchronous?: SqliteSynchronous; logger?: Logger; maxEventAgeMs?: number } = {},
): Promise<Store> {
  const url = settings.databaseUrl;
  if (url) {
    if (!/^postgres(ql)?:\/\//i.test(url)) throw new Error('DATABASE_URL must be a postgres:// or postgresql:// URL');
    const now = Date.now();
    return PostgresStore.open({
      url,
      poolSize: settings.pgPoolSize,
      onPoolError: (err) => o.logger?.warn({ err: err.message }, 'PostgreSQL connection lost; it will be re-established'),
      partitionsFrom: now - (o.maxEventAgeMs ?? 35 * 86_400_000) - 31 * 86_400_000,
      partitionsTo: now + 93 * 86_400_000,
    });
  }
  return new SqliteStore({
    file: path.join(settings.dataDir, 'meterhook.db'),
    synchronous: o.synchronous,
    onBackgroundError: (err, work) =>
      o.logger?.error({ err: (err as Error).message, work }, 'SQLite background work failed; it will be retried'),
    derived: {
      onQuarantine: (seq, customerId, err) =>
        o.logger?.error(
          { err: (err as Error).message, seq, customerId },
          'an event could not be folded into usage; it is set aside, ' +
            'counted in meterhook_store_deferred_events{stage="quarantined"} and retried every minute',
        ),
    },
  });
}

function firstKeyNotice(key: string, port: number): string {
  return [
    '',
    'meterhook: no API key was configured, so one was created. It is shown only this once;',
    'only its hash is stored. Keep it somewhere safe:',
    '',
    `    ${key}`,
    '',
    'Send a first event:',
    '',
    `    curl -s -X POST http://localhost:${port}/usage/api.calls -H 'x-apikey: ${key}' \\`,
    `      -H 'content-type: application/json' -d '{"customerId":"cust_123","value":1}'`,
    '',
  ].join('\n');
}

export async function startServer(opts: StartOptions): Promise<RunningServer> {
  const { settings, config } = opts;
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger ?? createLogger(settings.logLevel);
  const store = await openStore(settings, { synchronous: opts.sqliteSynchronous, logger, maxEventAgeMs: config.maxEventAgeMs });
  let services: Services | undefined;
  try {
    // One server per SQLite file: refuse to start rather than fail on the first event.
    await store.start();
    services = await composeServices({
      store,
      config,
      clock,
      logger,
      apiKeys: settings.apiKeys,
      dryRun: settings.dryRun,
      http: settings.http,
      authThrottle: settings.authThrottle,
      keyRateLimit: settings.keyRateLimit,
      trustProxy: settings.trustProxy,
    });
    const { app, apiKeys } = services;
    let firstKey: string | undefined;
    if (apiKeys.configuredKeyCount === 0) {
      // Only a store that never had a key gets one: revoking every key must not mint a fresh admin key.
      if ((await store.listApiKeys()).length === 0) {
        firstKey = (await createApiKey(store, clock, 'first-start', ['admin'])).key;
        await apiKeys.reload();
      } else {
        logger.warn('no API key is active (every stored key is revoked): create one with `meterhook keys create`');
      }
    }
    if (settings.dryRun) logger.warn('DRY_RUN is on: webhooks are signed and logged, never sent');
    await app.listen({ port: settings.port, host: settings.host });
    if (opts.dispatcher !== false) await services.dispatcher.start();
    if (opts.scheduler !== false) services.scheduler.start();
    const addr = app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : settings.port;
    const url = `http://${settings.host === '0.0.0.0' || settings.host === '::' ? '127.0.0.1' : settings.host}:${port}`;
    // Printed after listen so the curl line names the port actually bound (PORT=0 picks one).
    if (firstKey) (opts.announce ?? ((t) => process.stdout.write(`${t}\n`)))(firstKeyNotice(firstKey, port));
    logger.info({ url, store: store.stats().adapter, schedule: config.schedule, periods: config.periods }, 'meterhook listening');

    const running = services;
    let stopping: Promise<void> | null = null;
    const stop = () =>
      (stopping ??= (async () => {
        await running.close();
        await store.close();
        logger.info('meterhook stopped');
      })());
    return { app, url, ctx: running.ctx, scheduler: running.scheduler, dispatcher: running.dispatcher, stop };
  } catch (err) {
    await services?.close().catch(() => undefined);
    await store.close();
    throw err;
  }
}
