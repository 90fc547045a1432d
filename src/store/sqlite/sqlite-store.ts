// Owns the embedded SQLite adapter of the store port (better-sqlite3, WAL, one connection), behind
// its fault boundary (every error through sqliteFault). Must never be opened by two processes for
// writing: SQLite is the single-node store.

import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { StoreUnavailable } from '../../domain/errors.js';
import type { DimensionRules } from '../../domain/rules.js';
import type { GroupOperators } from '../../domain/operators.js';
import { periodInterval, type Period } from '../../domain/periods.js';
import { planClose, planProvisional, type MarkInput } from '../close-plan.js';
import { installFaultBoundary, WriteHealth, type WriteWork } from '../fault-boundary.js';
import {
  installReadBarrier,
  type AggregationQuery,
  type AppendOutcome,
  type AppendUnit,
  type AuditPort,
  type ClaimOptions,
  type CloseResult,
  type DeliveryQuery,
  type EventQuery,
  type ProvisionalResult,
  type Store,
  type StoreStats,
} from '../store.js';
import type {
  AggregationRecord,
  ApiKeyRecord,
  CloseDecider,
  DirtyMark,
  GroupState,
  ProvisionalDecider,
  RollupRow,
  StoredEvent,
  UniqueCount,
} from '../../domain/records.js';
import type {
  AttemptOutcome,
  AttemptRecord,
  ClaimedDelivery,
  DeliveryRecord,
  DeliveryStatus,
  EndpointState,
  OutboxMessage,
} from '../../domain/deliveries.js';
import { createDeliveryStore } from './sqlite-deliveries.js';
import { migrate } from './migrations.js';
import { createAppender } from './sqlite-append.js';
import { takeWriterLock } from './writer-lock.js';
import { createDerivedState, type DerivedOptions } from './sqlite-derived.js';
import { createListingIndex, type ListingIndexOptions } from './sqlite-listing-index.js';
import { createWriteProbe, sqliteFault } from './sqlite-faults.js';
import { createRetention } from './sqlite-retention.js';
import { createAuditLog } from './sqlite-audit.js';
import { INDEXED_EVENT_COLUMNS, OLDEST_UNDELIVERED_SQL, prepareUsageStatements } from './sqlite-sql.js';
import { createDimensionReads } from './sqlite-dimensions.js';
import type { MergeCustomer, PeriodMerge } from '../group-merge-plan.js';
import {
  aggregationParams,
  messageParams,
  toAggregation,
  toApiKey,
  API_KEY_COLUMNS,
  apiKeyParams,
  toEvent,
  toMark,
  toMessage,
  toRollup,
  type AggregationRow,
  type EventRow,
  type MarkRow,
} from '../rows.js';
import { aggregationListSql, eventListSql, SQLITE_STYLE } from '../sql-where.js';
import { customerListSql, type CustomerListQuery } from '../customer-listing.js';

export type SqliteSynchronous = 'NORMAL' | 'FULL';
type MarkKey = { periodStart: number; customerId: string };

export interface SqliteStoreOptions {
  /** A file path, or ':memory:'. */
  file: string;
  /** NORMAL survives a process crash; FULL also survives power loss (fsync at every commit). */
  synchronous?: SqliteSynchronous;
  /** When derived tables (rollups, marks, indexes) catch up with appended events. */
  derived?: DerivedOptions;
  /** When the event listing indexes catch up with appended events. */
  listing?: ListingIndexOptions;
  /** Told about background work (derived state, listing indexes) that failed and will be retried. */
  onBackgroundError?: (err: unknown, work: 'derived' | 'listing_index') => void;
}

export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly append: ReturnType<typeof createAppender>;
  private readonly derived: ReturnType<typeof createDerivedState>;
  private readonly listing: ReturnType<typeof createListingIndex>;
  private readonly file: string;
  private writerLock: { release(): void } | undefined;
  private readonly deliveries: ReturnType<typeof createDeliveryStore>;
  private readonly stmt;
  private readonly health = new WriteHealth();
  private readonly probe: () => void;
  private readonly retention: ReturnType<typeof createRetention>;
  private readonly dims: ReturnType<typeof createDimensionReads>;
  readonly audit: AuditPort;

  constructor(opts: SqliteStoreOptions) {
    this.file = opts.file;
    if (opts.file !== ':memory:') fs.mkdirSync(path.dirname(opts.file), { recursive: true });
    this.db = new Database(opts.file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${opts.synchronous ?? 'NORMAL'}`);
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('cache_size = -32768');
    this.db.pragma('temp_store = MEMORY');
    migrate(this.db);
    // A background slice or chunk that fails stays pending and is retried; readiness reports it meanwhile.
    const onError = (work: 'derived' | 'listing_index') => (e: unknown) => {
      this.noteFault(work, e);
      if (opts.onBackgroundError) opts.onBackgroundError(e, work);
      else console.error(`meterhook: SQLite background work (${work}) failed; will retry`, e);
    };
    this.derived = createDerivedState(this.db, { ...opts.derived, onError: onError('derived') });
    this.append = createAppender(this.db, this.derived);
    this.listing = createListingIndex(this.db, this.derived, { ...opts.listing, onError: onError('listing_index') });
    this.probe = createWriteProbe(this.db);
    this.deliveries = createDeliveryStore(this.db);
    this.retention = createRetention(this.db);
    this.audit = createAuditLog(this.db);
    const db = this.db;
    const usage = prepareUsageStatements(db);
    this.dims = createDimensionReads(db, usage.merged);
    this.stmt = {
      ...usage,
      insertKey: db.prepare(`INSERT INTO api_keys (${API_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      bumpKeys: db.prepare('UPDATE key_version SET version = version + 1 WHERE id = 1'),
      keyVersion: db.prepare('SELECT version FROM key_version WHERE id = 1'),
      listKeys: db.prepare('SELECT * FROM api_keys ORDER BY created_at, id'),
      revokeKey: db.prepare('UPDATE api_keys SET revoked_at = ? WHERE (id = ? OR prefix = ?) AND revoked_at IS NULL'),
    };
    installFaultBoundary(this, SqliteStore.prototype, sqliteFault, this.health);
    // Every usage read and the close see all committed events: derived state is brought up to date
    // first, here, for each UsagePort method, so no read has to remember to.
    installReadBarrier(this, () => this.applyDerived());
  }

  private noteFault(work: WriteWork, err: unknown): StoreUnavailable | undefined {
    const fault = sqliteFault(err);
    if (fault) this.health.fail(work, fault);
    return fault;
  }

  /** Applies every pending event to the derived tables; readers need it, and a fault there is a write fault. */
  private applyDerived(): void {
    try {
      this.derived.applyAll();
    } catch (err) {
      throw this.noteFault('derived', err) ?? err;
    }
    this.health.clear('derived');
  }

  private catchUpListing(): void {
    try {
      this.listing.catchUp();
    } catch (err) {
      throw this.noteFault('listing_index', err) ?? err;
    }
    this.health.clear('listing_index');
  }

  /** Committed events not yet folded into rollups, marks and indexes (readers apply them first). */
  pendingDerivedEvents(): number {
    return this.derived.pendingCount();
  }

  /** Committed events not yet in the listing indexes (GET /events brings them up to date first). */
  unindexedEvents(): number {
    return this.listing.lag();
  }

  stats(): StoreStats {
    return {
      adapter: 'sqlite',
      deferred: {
        derived: this.derived.pendingCount(),
        listing_index: Math.max(0, this.listing.lag()),
        quarantined: this.derived.quarantinedCount(),
      },
      groupsOverflowed: this.derived.groupsOverflowed(),
    };
  }

  async start(): Promise<void> {
    this.claimWriter();
  }

  /** Nothing to keep up on a tick: background slices and chunks run on their own timers. */
  async maintain(_now: number): Promise<void> {}

  backlogRetryAfter(): number {
    return this.derived.backlogRetryAfter();
  }

  /** The derived state's in-memory structures with their bounds (estimated bytes, see memory-budget.ts). */
  memoryStats(): ReturnType<ReturnType<typeof createDerivedState>['memory']> {
    return this.derived.memory();
  }

  /**
   * Takes the file's writer lock, or throws WriterLockTaken if another live process holds it. The
   * first append does it anyway; a server calls it at startup to refuse to start instead.
   */
  claimWriter(): void {
    if (this.writerLock || this.file === ':memory:') return;
    this.writerLock = takeWriterLock(this.file);
    // Another process may have written since this store opened: take in its events, then its seqs.
    this.applyDerived();
    this.derived.becameWriter();
  }

  async appendEvents(units: AppendUnit[], periods: readonly Period[], dimensions?: DimensionRules): Promise<AppendOutcome[]> {
    this.claimWriter();
    return this.append.append(units, periods, dimensions);
  }

  async listEvents(q: EventQuery): Promise<StoredEvent[]> {
    this.catchUpListing();
    // Walks one derived index newest first and fetches each event by seq: a customer's own index
    // when filtered by customer, the time index otherwise.
    const ix = q.customerId !== undefined ? 'events_by_customer' : 'events_by_time';
    const w = eventListSql(q, SQLITE_STYLE, INDEXED_EVENT_COLUMNS);
    const sql = `SELECT e.* FROM ${ix} i CROSS JOIN events e ON e.seq = i.seq ${w.sql}`;
    return (this.db.prepare(sql).all(...w.params) as EventRow[]).map(toEvent);
  }

  private rollupsOf(customerId: string, from: number, to: number): RollupRow[] {
    return (this.stmt.rollups.all(customerId, from, to) as Parameters<typeof toRollup>[0][]).map(toRollup);
  }

  async readRollups(customerId: string, from: number, to: number): Promise<RollupRow[]> {
    return this.rollupsOf(customerId, from, to);
  }

  async mergedRollups(customerId: string, from: number, to: number): Promise<RollupRow[]> {
    return this.stmt.merged({ c: customerId, from, to }).map(toRollup);
  }

  async mergedGroups(customerId: string, from: number, to: number): Promise<GroupState[]> {
    return this.dims.merged(customerId, from, to);
  }

  async mergedPeriod(customerId: string, period: Period, from: number, to: number, ops: GroupOperators): Promise<PeriodMerge> {
    return this.dims.period(customerId, period, from, to, ops);
  }

  async advanceGroupMerges(period: Period, start: number, through: number, customers: readonly MergeCustomer[]) {
    return this.dims.advance(period, start, through, customers);
  }

  async dropGroupMerges(period: Period, beforeStart: number): Promise<number> {
    return this.dims.drop(period, beforeStart);
  }

  async readGroups(customerId: string, eventType: string, from: number, to: number): Promise<Array<GroupState & { hour: number }>> {
    return this.dims.hours(customerId, eventType, from, to);
  }

  async uniqueCounts(customerId: string, period: Period, periodStart: number): Promise<UniqueCount[]> {
    return this.dims.uniques(customerId, period, periodStart);
  }

  async uniqueCountsOver(customerId: string, eventType: string, period: Period, from: number, to: number) {
    return this.dims.uniquesOver(customerId, eventType, period, from, to);
  }

  private marks(
    stmt: Database.Statement,
    period: Period,
    bound: number,
    limit: number,
    after?: { periodStart: number; customerId: string },
  ): DirtyMark[] {
    const rows = stmt.all(period, bound, after?.periodStart ?? Number.MIN_SAFE_INTEGER, after?.customerId ?? '', limit) as MarkRow[];
    return rows.map(toMark);
  }

  async listDueMarks(period: Period, beforeStart: number, limit: number, after?: MarkKey): Promise<DirtyMark[]> {
    return this.marks(this.stmt.dueMarks, period, beforeStart, limit, after);
  }

  async listOpenMarks(period: Period, fromStart: number, limit: number, after?: MarkKey): Promise<DirtyMark[]> {
    return this.marks(this.stmt.openMarks, period, fromStart, limit, after);
  }

  private existing(m: DirtyMark): AggregationRecord | undefined {
    const row = this.stmt.getAgg.get(m.customerId, m.period, m.periodStart) as AggregationRow | undefined;
    return row ? toAggregation(row) : undefined;
  }

  private inputsOf(marks: DirtyMark[]): MarkInput[] {
    return marks.map((mark) => {
      const iv = periodInterval(mark.period, mark.periodStart);
      return {
        mark,
        rollups: this.rollupsOf(mark.customerId, iv.start, iv.end),
        existing: this.existing(mark),
        dimensions: {
          groups: this.dims.merged(mark.customerId, iv.start, iv.end),
          uniques: this.dims.uniques(mark.customerId, mark.period, iv.start),
        },
      };
    });
  }

  async closePeriods(marks: DirtyMark[], decide: CloseDecider): Promise<CloseResult> {
    const run = this.db.transaction((): CloseResult => {
      const plan = planClose(this.inputsOf(marks), decide);
      for (const a of plan.aggregations) this.stmt.upsertAgg.run(...aggregationParams(a));
      let messages = 0;
      for (const { message, deliveries } of plan.messages) {
        const info = this.stmt.insertMessage.run(...messageParams(message));
        messages += info.changes;
        // Only a newly written message gets deliveries: a repeated close must not add more.
        if (info.changes === 1) this.deliveries.insertDeliveries(message, deliveries);
      }
      // Same transaction as the rollup read: nothing can have arrived in between.
      for (const m of marks) this.stmt.deleteMark.run(m.period, m.periodStart, m.customerId);
      return { ...plan.counts, messages };
    });
    const result = run.immediate();
    this.derived.forgetMarks(marks);
    return result;
  }

  async writeProvisional(marks: DirtyMark[], decide: ProvisionalDecider): Promise<ProvisionalResult> {
    const run = this.db.transaction((): ProvisionalResult => {
      const plan = planProvisional(this.inputsOf(marks), decide);
      for (const a of plan.aggregations) this.stmt.upsertAgg.run(...aggregationParams(a));
      return plan.counts;
    });
    return run.immediate();
  }

  async listAggregations(q: AggregationQuery): Promise<AggregationRecord[]> {
    const w = aggregationListSql(q, SQLITE_STYLE);
    return (this.db.prepare(`SELECT * FROM aggregations ${w.sql}`).all(...w.params) as AggregationRow[]).map(toAggregation);
  }

  async getAggregation(customerId: string, period: Period, periodStart: number): Promise<AggregationRecord | undefined> {
    return this.existing({ customerId, period, periodStart, changeSeq: 0 });
  }

  async listMessages(aggregationId: string): Promise<OutboxMessage[]> {
    return (this.stmt.messagesOf.all(aggregationId) as Parameters<typeof toMessage>[0][]).map(toMessage);
  }

  async syncEndpoints(endpoints: Array<{ id: string; url: string }>): Promise<void> {
    this.deliveries.syncEndpoints(endpoints);
  }

  async listEndpoints(): Promise<EndpointState[]> {
    return this.deliveries.listEndpoints();
  }

  async enableEndpoint(id: string, now: number): Promise<number> {
    return this.deliveries.enableEndpoint(id, now);
  }

  async claimDeliveries(o: ClaimOptions): Promise<ClaimedDelivery[]> {
    return this.deliveries.claimDeliveries.immediate(o);
  }

  async claimDelivery(id: string, o: { now: number; leaseMs: number; owner: string }): Promise<ClaimedDelivery | undefined> {
    return this.deliveries.claimDelivery.immediate(id, o);
  }

  async recordAttempt(attempt: AttemptRecord, owner: string, outcome: AttemptOutcome, now: number): Promise<boolean> {
    return this.deliveries.recordAttempt.immediate(attempt, owner, outcome, now);
  }

  async releaseDelivery(id: string, owner: string): Promise<void> {
    this.deliveries.releaseDelivery(id, owner);
  }

  async listDeliveries(q: DeliveryQuery): Promise<DeliveryRecord[]> {
    return this.deliveries.listDeliveries(q);
  }

  async getDelivery(id: string) {
    return this.deliveries.getDelivery(id);
  }

  async latestDeliveries(aggregationIds: string[]): Promise<Map<string, DeliveryRecord[]>> {
    return this.deliveries.latestDeliveries(aggregationIds);
  }

  async requeueDeliveries(since: number, now: number, deadlineMs: number): Promise<number> {
    return this.deliveries.requeueDeliveries.immediate(since, now, deadlineMs);
  }

  async deliveryCounts(): Promise<Record<DeliveryStatus, number>> {
    return this.deliveries.deliveryCounts();
  }

  async oldestUndeliveredAt(): Promise<number | null> {
    const r = this.db.prepare(OLDEST_UNDELIVERED_SQL).get() as { t: number | null };
    return r.t;
  }

  async listCustomers(q: CustomerListQuery): Promise<Array<{ customerId: string; lastHour: number }>> {
    // A bounded range of the rollup primary key (customer_id first): cost grows with the page, not the table.
    const { sql, params } = customerListSql('sqlite', q);
    const rows = this.db.prepare(sql).all(...params) as Array<{ customer_id: string; last_hour: number }>;
    return rows.map((r) => ({ customerId: r.customer_id, lastHour: r.last_hour }));
  }

  async oldestOpenPeriodStart(): Promise<number | null> {
    const r = this.db.prepare('SELECT min(period_start) AS s FROM dirty_periods').get() as { s: number | null };
    return r.s;
  }

  async deleteEventsBefore(cutoff: number): Promise<{ deleted: number; partitionsDropped: string[] }> {
    // Events not yet in the indexes would be missed: bring them up to date first, so each is deleted whole.
    const deleted = await this.retention.deleteEventsBefore(cutoff, () => {
      this.applyDerived();
      this.catchUpListing();
    });
    return { deleted, partitionsDropped: [] };
  }

  async requestKeyHash(key: string): Promise<string | undefined> {
    return this.db.prepare('SELECT body_hash FROM request_keys WHERE request_key = ?').pluck().get(key) as string | undefined;
  }

  async deleteRequestKeysBefore(cutoff: number): Promise<number> {
    return this.retention.deleteRequestKeysBefore(cutoff);
  }

  async insertApiKey(k: ApiKeyRecord): Promise<void> {
    this.db.transaction(() => {
      this.stmt.insertKey.run(...apiKeyParams(k));
      this.stmt.bumpKeys.run();
    })();
  }

  async keyVersion(): Promise<number> {
    return Number((this.stmt.keyVersion.get() as { version: number } | undefined)?.version ?? 0);
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    return (this.stmt.listKeys.all() as Parameters<typeof toApiKey>[0][]).map(toApiKey);
  }

  async revokeApiKey(idOrPrefix: string, at: number): Promise<boolean> {
    return this.db.transaction(() => {
      const changed = this.stmt.revokeKey.run(at, idOrPrefix, idOrPrefix).changes > 0;
      if (changed) this.stmt.bumpKeys.run();
      return changed;
    })();
  }

  async ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  async checkWrites(): Promise<void> {
    if (this.health.ok) return;
    // The failed work itself is the best probe: pending events are applied, the listing caught up.
    if (this.health.has('derived')) this.applyDerived();
    if (this.health.has('listing_index')) this.catchUpListing();
    if (this.health.has('write')) {
      this.probe();
      this.health.clear('write');
    }
  }

  classifyError(err: unknown): StoreUnavailable | undefined {
    return sqliteFault(err);
  }

  async close(): Promise<void> {
    if (!this.db.open) return;
    try {
      this.derived.applyAll();
    } finally {
      this.derived.close();
      this.listing.close();
      this.db.close();
      this.writerLock?.release();
    }
  }
}
