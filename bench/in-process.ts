// Owns in-process access to a meterhook store for scenarios that must first load millions of events
// (B3, B4): the real ingest service (captureBatch → group commit → store) on a file in a temp dir,
// driven with a clock the scenario controls. Must never write events with hand-written SQL.

import { pino } from 'pino';
import { parseConfig } from '../src/config/load-config.js';
import { Overloaded } from '../src/domain/errors.js';
import type { MeterhookConfig } from '../src/config/schema.js';
import { readServerSettings } from '../src/config/server-settings.js';
import type { Clock } from '../src/domain/clock.js';
import { GroupCommitter } from '../src/ingest/group-commit.js';
import { captureBatch, type IngestContext } from '../src/ingest/ingest-service.js';
import { openStore } from '../src/main.js';
import type { Store } from '../src/store/store.js';
import { progress } from './report.js';

export interface InProcess {
  ctx: IngestContext;
  store: Store;
  config: MeterhookConfig;
  close(): Promise<void>;
}

export async function openInProcess(o: {
  dataDir: string;
  configDoc: Record<string, unknown>;
  clock: Clock;
  databaseUrl?: string;
}): Promise<InProcess> {
  const config = parseConfig(o.configDoc, { env: {}, source: '<bench>' });
  const settings = readServerSettings(
    { METERHOOK_DATA_DIR: o.dataDir, ...(o.databaseUrl ? { DATABASE_URL: o.databaseUrl } : {}) },
    process.cwd(),
  );
  const logger = pino({ level: 'warn' });
  const store = await openStore(settings, { logger, maxEventAgeMs: config.maxEventAgeMs });
  const committer = new GroupCommitter(store, () => config.periods);
  const ctx: IngestContext = { store, clock: o.clock, config, logger, committer };
  return {
    ctx,
    store,
    config,
    async close() {
      await committer.drain();
      await store.close();
    },
  };
}

export interface LoadFigures {
  events: number;
  inserted: number;
  seconds: number;
  eventsPerS: number;
}

/** captureBatch that waits and sends the batch again while ingest answers Overloaded, as a client honouring 503 does. */
async function captureWhenAdmitted(ctx: IngestContext, body: unknown[]): ReturnType<typeof captureBatch> {
  for (;;) {
    try {
      return await captureBatch(ctx, body);
    } catch (err) {
      if (!(err instanceof Overloaded)) throw err;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

/**
 * Sends `total` events through captureBatch in batches of `batchSize`, keeping `inFlight` batches
 * outstanding so group commit can merge them, and prints progress on stderr.
 */
export async function loadEvents(
  ip: InProcess,
  o: { total: number; make: (i: number) => Record<string, unknown>; batchSize?: number; inFlight?: number; label: string },
): Promise<LoadFigures> {
  const batchSize = Math.min(o.batchSize ?? 1000, ip.config.maxBatchSize);
  const inFlight = o.inFlight ?? 8;
  const t0 = performance.now();
  let lastReport = t0;
  let next = 0;
  let inserted = 0;
  let done = 0;
  const pending = new Set<Promise<void>>();
  let failure: unknown;

  while (next < o.total && failure === undefined) {
    const n = Math.min(batchSize, o.total - next);
    const body = new Array<Record<string, unknown>>(n);
    for (let k = 0; k < n; k++) body[k] = o.make(next + k);
    next += n;
    const p: Promise<void> = captureWhenAdmitted(ip.ctx, body).then(
      (r) => {
        inserted += r.inserted;
        done += r.count;
      },
      (err: unknown) => {
        failure ??= err;
      },
    );
    const tracked = p.finally(() => pending.delete(tracked));
    pending.add(tracked);
    if (pending.size >= inFlight) await Promise.race(pending);
    const now = performance.now();
    if (now - lastReport > 10_000) {
      lastReport = now;
      const rate = done / ((now - t0) / 1000);
      const eta = (o.total - done) / Math.max(1, rate);
      progress(
        `${o.label}: ${done.toLocaleString('en-US')} / ${o.total.toLocaleString('en-US')} events loaded ` +
          `(${Math.round(rate).toLocaleString('en-US')}/s, ~${Math.ceil(eta)} s left)`,
      );
    }
  }
  await Promise.all(pending);
  // Part of loading: SQLite folds committed events into rollups and marks in the background, as a
  // server does between bursts; the timed part must not start with that work still queued.
  const deferred = ip.ctx.store as Partial<{ pendingDerivedEvents(): number }>;
  while (failure === undefined && (deferred.pendingDerivedEvents?.() ?? 0) > 0) await new Promise((r) => setTimeout(r, 20));
  if (failure !== undefined) {
    const f = failure as { validationErrors?: unknown; conflicts?: unknown };
    const detail = f.validationErrors ?? f.conflicts;
    throw new Error(`${o.label}: loading failed: ${(failure as Error).message}${detail ? ` ${JSON.stringify(detail).slice(0, 500)}` : ''}`);
  }
  const seconds = (performance.now() - t0) / 1000;
  return { events: o.total, inserted, seconds, eventsPerS: o.total / seconds };
}
