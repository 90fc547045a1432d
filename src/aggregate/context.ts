// Owns the explicit context every service receives: store, clock, logger and config.
// Must never grow ambient globals: anything a service needs is passed here.

import type { Logger } from 'pino';
import type { MeterhookConfig } from '../config/schema.js';
import type { Clock } from '../domain/clock.js';
import type { Metrics } from '../observability/metrics.js';
import type { Store } from '../store/store.js';

export interface ServiceContext {
  store: Store;
  clock: Clock;
  config: MeterhookConfig;
  logger: Logger;
  /** Told when a close wrote webhook messages, so delivery starts without waiting for a poll. */
  onMessages?: () => void;
  /** Running merges of groups that reads found stale, for the next tick to rebuild (group-merges.ts). */
  staleMerges?: Set<string>;
  /** Prometheus counters; absent in contexts that do not export metrics. */
  metrics?: Metrics;
}
