// Owns the PostgreSQL adapter of the store port: a pg pool, transactions, and row locks that let
// several meterhook processes share one database, behind its fault boundary (every error through
// pgFault); ingest commits events, and derived state follows (pg-deriver.ts) before any usage read.
// Must never let two processes close the same mark.

import { planClose, planProvisional, type MarkInput } from '../close-plan.js';
import pg from 'pg';
import { StoreUnavailable } from '../../domain/errors.js';
import { NO_DIMENSIONS, type DimensionRules } from '../../domain/rules.js';
import type { GroupOperators } from '../../domain/operators.js';
import { periodInterval, type Period } from '../../domain/periods.js';
import {
  installReadBarrier,
  type AggregationQuery,
  type AppendOutcome,
  type AppendUnit,
  type CloseResult,
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
  UniqueCount,
  ProvisionalDecider,
  RollupRow,
  StoredEvent,
} from '../../domain/records.js';
import type { OutboxMessage } from '../../domain/deliveries.js';
import { ensurePartitions, migratePg } from './migrations.js';
import { appendEventsPg, openAppendSql, seqsTaken, type Opened } from './pg-append.js';
import { instancesOf, lockGenerations } from './pg-close-generations.js';
import type { QueueItem } from './pg-derived.js';
import { createPgDeriver, type DeriverOptions, type PgDeriver } from './pg-deriver.js';
import { deleteEventsBeforePg } from './pg-retention.js';
import { mergedGroupsPg, readGroupsPg, uniqueCountsOverPg, uniqueCountsPg } from './pg-dimensions.js';
import { withClient } from './with-client.js';
import * as merges from './pg-group-merges.js';
import type { MergeCustomer, PeriodMerge } from '../group-merge-plan.js';

import { installFaultBoundary, WriteHealth } from '../fault-boundary.js';
import { pgFault, writeProbe } from './pg-faults.js';
import { insertDeliveriesPg, pgDeliveries } from './pg-deliveries.js';
import { pgAudit } from './pg-audit.js';
import {
  aggregationColumns,
  messageColumns,
  toAggregation,
  toApiKey,
  API_KEY_COLUMNS,
  apiKeyParams,
  toEvent,
  toMark,
  toMessage,
  toRollup,
  type MarkRow,
} from '../rows.js';
import { aggregationListSql, eventListSql, POSTGRES_STYLE, sqlStringList } from '../sql-where.js';
import { customerListSql, type CustomerListQuery } from '../customer-listing.js';
import { UNDELIVERED_STATUSES } from '../../domain/deliveries.js';
import { INSERT_MESSAGES, UPSERT_AGGREGATIONS } from './pg-upserts.js';

const OLDEST_UNDELIVERED_SQL = `SELECT min(created_at) AS t FROM deliveries
  WHERE status IN (${sqlStringList(UNDELIVERED_STATUSES)})`;

export interface PostgresStoreOptions {
  url: string;
  poolSize?: number;
  /** Keep meterhook's tables in this schema (created if missing); default: the connection's search_path. */
  schema?: string;
  /** How long a request waits for a connection before answering 503. */
  connectTimeoutMs?: number;
  onPoolError?: (err: Error) => void;
  /** When and how derived state is written after ingest commits. */
  derive?: DeriverOptions;
}

type MarkKey = { period: Period; periodStart: number; customerId: string };
const markCols = (ms: MarkKey[]) => [ms.map((m) => m.period), ms.map((m) => m.periodStart), ms.map((m) => m.customerId)];

export class PostgresStore implements Store {
  readonly pool: pg.Pool;
  private readonly d: ReturnType<typeof pgDeliveries>;
  private readonly health = new WriteHealth();
  private readonly deriver: PgDeriver;

  private constructor(opts: PostgresStoreOptions) {
    this.pool = new pg.Pool({
      connectionString: opts.url,
      max: opts.poolSize ?? 10,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 1000,
      idleTimeoutMillis: 30_000,
      ...(opts.schema ? { options: `-c search_path=${opts.schema}` } : {}),
    });
    // An idle client losing its connection (database restart) must not crash the process.
    this.pool.on('error', (err) => opts.onPoolError?.(err));
    this.d = pgDeliveries(this.pool, (fn) => this.tx(fn));
    this.deriver = createPgDeriver(
      (sql, params) => this.q(sql, params),
      (fn) => this.tx(fn),
      this.health,
      pgFault,
      opts.derive,
    );
    installFaultBoundary(this, PostgresStore.prototype, pgFault, this.health);
    // Every usage read and the close see all acknowledged events: the queue rows committed before
    // them are derived first, here, for each UsagePort method, so no read has to remember to.
    installReadBarrier(this, () => this.deriver.barrier());
  }

  /** Connects, migrates (one process at a time) and creates the event partitions around now. */
  static async open(opts: PostgresStoreOptions & { partitionsFrom?: number; partitionsTo?: number }): Promise<PostgresStore> {
    if (opts.schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(opts.schema)) {
      throw new Error(`invalid PostgreSQL schema name ${JSON.stringify(opts.schema)}: use lowercase letters, digits and _`);
    }
    const store = new PostgresStore(opts);
    try {
      if (opts.schema) await store.pool.query(`CREATE SCHEMA IF NOT EXISTS ${opts.schema}`);
      await migratePg(store.pool);
      const now = Date.now();
      await ensurePartitions(store.pool, opts.partitionsFrom ?? now - 400 * 86_400_000, opts.partitionsTo ?? now + 93 * 86_400_000);
    } catch (err) {
      await store.pool.end().catch(() => undefined);
      throw err;
    }
    return store;
  }

  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw pgFault(err) ?? err;
    }
  }

  /** `begin` may carry more statements (no parameters): their results reach `fn`, one round trip for all. */
  async tx<T>(fn: (c: pg.PoolClient, opened: Opened) => Promise<T>, begin = 'BEGIN ISOLATION LEVEL READ COMMITTED'): Promise<T> {
    return this.guard(async () => {
      // READ COMMITTED unless asked, whatever the server's default: close generations need fresh snapshots.
      // A deadlock or serialization failure rolled the whole transaction back, so running it again
      // is safe; it is rare (lock order is fixed) but concurrent processes can still meet.
      for (let attempt = 1; ; attempt++) {
        try {
          return await withClient(this.pool, async (c) => {
            try {
              // Inside the try: a later statement of `begin` can fail after its BEGIN opened the block.
              const out = await fn(c, (await c.query(begin)) as Opened);
              await c.query('COMMIT');
              return out;
            } catch (err) {
              await c.query('ROLLBACK').catch(() => undefined);
              throw err;
            }
          });
        } catch (err) {
          // A private helper inside fn may have classified it already (the boundary wraps every method).
          const code = ((err instanceof StoreUnavailable ? err.cause : err) as { code?: string } | undefined)?.code;
          if ((code === '40P01' || code === '40001') && attempt < 5) {
            await new Promise((r) => setTimeout(r, attempt * 5 + Math.random() * 20));
            continue;
          }
          // Past the retries, guard turns it into StoreUnavailable (Retry-After: 1).
          throw err;
        }
      }
    });
  }

  private q(sql: string, params: unknown[] = []) {
    return this.guard(() => this.pool.query(sql, params));
  }

  /** The pool behind the fault guard, for the reads written as functions of a query runner. */
  private readonly db = { query: (sql: string, params: unknown[]) => this.q(sql, params) };
  readonly audit = pgAudit(this.db);

  /** Starts the deriver's sweep: it polls the backlog and derives rows that processes which died left queued. */
  async start(): Promise<void> {
    this.deriver.start();
  }

  /** Keeps monthly event partitions from a month back to a quarter ahead; cheap when they exist. */
  async maintain(now: number): Promise<void> {
    await this.ensurePartitions(now - 31 * 86_400_000, now + 93 * 86_400_000);
  }

  stats(): StoreStats {
    const d = this.deriver.stats();
    return {
      adapter: 'postgres',
      deferred: { derived: d.events, quarantined: d.setAside },
      deferredAgeSeconds: d.ageSeconds,
      groupsOverflowed: d.groupsOverflowed,
    };
  }

  /** Past the deriver's bound (this process's events not yet derived, or the shared queue), appends wait. */
  backlogRetryAfter(): number {
    return this.deriver.backlogRetryAfter();
  }

  async ensurePartitions(from: number, to: number): Promise<string[]> {
    return this.guard(() => ensurePartitions(this.pool, from, to));
  }

  readonly concurrentAppends = 2;
  async appendEvents(
    units: AppendUnit[],
    periods: readonly Period[],
    dimensions: DimensionRules = NO_DIMENSIONS,
  ): Promise<AppendOutcome[]> {
    let derive: QueueItem[] = [];
    const out = await this.tx(async (c, opened) => {
      derive = [];
      return appendEventsPg(c, units, periods, dimensions, derive, seqsTaken(opened));
    }, openAppendSql(units));
    // Only the attempt that committed: a retried transaction filled its own list.
    this.deriver.committed(derive);
    return out;
  }

  async listEvents(q: EventQuery): Promise<StoredEvent[]> {
    const w = eventListSql(q, POSTGRES_STYLE);
    return (await this.q(`SELECT * FROM events ${w.sql}`, w.params)).rows.map(toEvent);
  }

  async readRollups(customerId: string, from: number, to: number): Promise<RollupRow[]> {
    return (await this.q('SELECT * FROM rollups WHERE customer_id = $1 AND hour >= $2 AND hour < $3', [customerId, from, to])).rows.map(
      toRollup,
    );
  }

  async mergedRollups(customerId: string, from: number, to: number): Promise<RollupRow[]> {
    return (await this.q(merges.MERGED_ROLLUPS_PG, [customerId, from, to])).rows.map(toRollup);
  }

  /** Reads whole states: the operators would only save decoding, and each projection would cost a round trip. */
  mergedPeriod(customerId: string, period: Period, from: number, to: number, _ops: GroupOperators): Promise<PeriodMerge> {
    return this.tx((c) => merges.readPeriodPg(c, customerId, period, from, to), merges.REPEATABLE_READ_ONLY);
  }

  advanceGroupMerges(period: Period, start: number, through: number, customers: readonly MergeCustomer[]) {
    return merges.advanceMergesPg((fn) => this.tx(fn, merges.REPEATABLE_READ), period, start, through, customers);
  }

  dropGroupMerges(period: Period, beforeStart: number): Promise<number> {
    return this.tx((c) => merges.dropMergesPg(c, period, beforeStart));
  }

  readonly mergedGroups = async (customerId: string, from: number, to: number): Promise<GroupState[]> =>
    (await mergedGroupsPg(this.db, [{ customerId, from, to }]))[0]!;

  readonly readGroups = (c: string, type: string, from: number, to: number) => readGroupsPg(this.db, c, type, from, to);

  readonly uniqueCounts = async (customerId: string, period: Period, periodStart: number): Promise<UniqueCount[]> =>
    (await uniqueCountsPg(this.db, [{ customerId, period, periodStart }]))[0]!;

  readonly uniqueCountsOver = (c: string, type: string, p: Period, from: number, to: number) =>
    uniqueCountsOverPg(this.db, c, type, p, from, to);

  private async marks(op: '<' | '>=', period: Period, bound: number, limit: number, after?: { periodStart: number; customerId: string }) {
    const r = await this.q(
      `SELECT period, period_start, customer_id, change_seq FROM dirty_periods
       WHERE period = $1 AND period_start ${op} $2 AND (period_start, customer_id) > ($3, $4)
       ORDER BY period_start, customer_id LIMIT $5`,
      [period, bound, after?.periodStart ?? Number.MIN_SAFE_INTEGER, after?.customerId ?? '', limit],
    );
    return r.rows.map((r) => toMark(r as MarkRow));
  }

  listDueMarks(period: Period, beforeStart: number, limit: number, after?: { periodStart: number; customerId: string }) {
    return this.marks('<', period, beforeStart, limit, after);
  }

  listOpenMarks(period: Period, fromStart: number, limit: number, after?: { periodStart: number; customerId: string }) {
    return this.marks('>=', period, fromStart, limit, after);
  }

  /** Rollups and current documents for a set of marks, read inside the caller's transaction. */
  private async readForMarks(c: pg.PoolClient, marks: DirtyMark[]): Promise<MarkInput[]> {
    const ivs = marks.map((m) => periodInterval(m.period, m.periodStart));
    const rows = await c.query(
      `SELECT m.i, r.* FROM unnest($1::text[], $2::bigint[], $3::bigint[]) WITH ORDINALITY AS m(c, s, e, i)
       JOIN rollups r ON r.customer_id = m.c AND r.hour >= m.s AND r.hour < m.e`,
      [marks.map((m) => m.customerId), ivs.map((iv) => iv.start), ivs.map((iv) => iv.end)],
    );
    const rollups: RollupRow[][] = marks.map(() => []);
    for (const r of rows.rows) rollups[Number(r.i) - 1]!.push(toRollup(r));
    const aggs = await c.query(
      `SELECT a.* FROM aggregations a JOIN unnest($1::text[], $2::bigint[], $3::text[]) AS m(p, s, c)
       ON a.period = m.p AND a.period_start = m.s AND a.customer_id = m.c`,
      markCols(marks),
    );
    const existing = new Map<string, AggregationRecord>();
    for (const r of aggs.rows) {
      const a = toAggregation(r);
      existing.set(`${a.period}\u0000${a.periodStart}\u0000${a.customerId}`, a);
    }
    const groups = await mergedGroupsPg(
      c,
      marks.map((m, i) => ({ customerId: m.customerId, from: ivs[i]!.start, to: ivs[i]!.end })),
    );
    const uniques = await uniqueCountsPg(c, marks);
    return marks.map((mark, i) => ({
      mark,
      rollups: rollups[i]!,
      dimensions: { groups: groups[i]!, uniques: uniques[i]! },
      existing: existing.get(`${mark.period}\u0000${mark.periodStart}\u0000${mark.customerId}`),
    }));
  }

  closePeriods(marks: DirtyMark[], decide: CloseDecider): Promise<CloseResult> {
    return this.tx(async (c) => {
      // Generations first: derivations of these period instances in flight are waited for and new ones wait
      // for this (pg-close-generations.ts), so no rollup is half written. SKIP LOCKED: another closer's marks.
      await lockGenerations(c, instancesOf(marks), 'close');
      const locked = (
        await c.query(
          `SELECT period, period_start, customer_id, change_seq FROM dirty_periods
         WHERE (period, period_start, customer_id) IN (SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[]))
         ORDER BY period, period_start, customer_id FOR UPDATE SKIP LOCKED`,
          markCols(marks),
        )
      ).rows.map((r) => toMark(r as MarkRow));
      if (locked.length === 0) return { finalized: 0, unchanged: 0, created: 0, updated: 0, messages: 0, eventsScanned: 0 };
      const plan = planClose(await this.readForMarks(c, locked), decide);
      if (plan.aggregations.length) await c.query(UPSERT_AGGREGATIONS, aggregationColumns(plan.aggregations));
      let messages = 0;
      if (plan.messages.length) {
        const ins = await c.query(INSERT_MESSAGES, messageColumns(plan.messages.map((x) => x.message)));
        const fresh = new Set(ins.rows.map((x) => x.id as string));
        messages = fresh.size;
        // Only a newly written message gets deliveries: a repeated close must not add more.
        for (const x of plan.messages) if (fresh.has(x.message.id)) await insertDeliveriesPg(c, x.message, x.deliveries);
      }
      await c.query(
        `DELETE FROM dirty_periods WHERE (period, period_start, customer_id)
         IN (SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[]))`,
        markCols(locked),
      );
      return { ...plan.counts, messages };
    });
  }

  writeProvisional(marks: DirtyMark[], decide: ProvisionalDecider): Promise<ProvisionalResult> {
    return this.tx(async (c) => {
      const plan = planProvisional(await this.readForMarks(c, marks), decide);
      // Never overwrite a final document, even one another process wrote a moment ago.
      if (plan.aggregations.length) await c.query(`${UPSERT_AGGREGATIONS} WHERE a.final = false`, aggregationColumns(plan.aggregations));
      return plan.counts;
    });
  }

  async listAggregations(q: AggregationQuery): Promise<AggregationRecord[]> {
    const w = aggregationListSql(q, POSTGRES_STYLE);
    return (await this.q(`SELECT * FROM aggregations ${w.sql}`, w.params)).rows.map(toAggregation);
  }

  async getAggregation(customerId: string, period: Period, periodStart: number): Promise<AggregationRecord | undefined> {
    const r = await this.q('SELECT * FROM aggregations WHERE customer_id = $1 AND period = $2 AND period_start = $3', [
      customerId,
      period,
      periodStart,
    ]);
    return r.rows[0] ? toAggregation(r.rows[0]) : undefined;
  }

  async listMessages(aggregationId: string): Promise<OutboxMessage[]> {
    return (await this.q('SELECT * FROM messages WHERE aggregation_id = $1 ORDER BY revision', [aggregationId])).rows.map(toMessage);
  }

  syncEndpoints(e: Array<{ id: string; url: string }>) {
    return this.guard(() => this.d.syncEndpoints(e));
  }
  listEndpoints() {
    return this.guard(() => this.d.listEndpoints());
  }
  enableEndpoint(id: string, now: number) {
    return this.d.enableEndpoint(id, now);
  }
  claimDeliveries(o: Parameters<Store['claimDeliveries']>[0]) {
    return this.d.claimDeliveries(o);
  }
  claimDelivery(id: string, o: Parameters<Store['claimDelivery']>[1]) {
    return this.d.claimDelivery(id, o);
  }
  recordAttempt(...a: Parameters<Store['recordAttempt']>) {
    return this.d.recordAttempt(...a);
  }
  releaseDelivery(id: string, owner: string) {
    return this.guard(() => this.d.releaseDelivery(id, owner));
  }
  listDeliveries(q: Parameters<Store['listDeliveries']>[0]) {
    return this.guard(() => this.d.listDeliveries(q));
  }
  getDelivery(id: string) {
    return this.guard(() => this.d.getDelivery(id));
  }
  latestDeliveries(ids: string[]) {
    return this.guard(() => this.d.latestDeliveries(ids));
  }
  requeueDeliveries(since: number, now: number, deadlineMs: number) {
    return this.d.requeueDeliveries(since, now, deadlineMs);
  }
  deliveryCounts() {
    return this.guard(() => this.d.deliveryCounts());
  }

  async oldestUndeliveredAt(): Promise<number | null> {
    const r = await this.q(OLDEST_UNDELIVERED_SQL);
    return r.rows[0]?.t === null || r.rows[0]?.t === undefined ? null : Number(r.rows[0].t);
  }

  async listCustomers(q: CustomerListQuery): Promise<Array<{ customerId: string; lastHour: number }>> {
    const { sql, params } = customerListSql('postgres', q);
    const r = await this.q(sql, params);
    return r.rows.map((x) => ({ customerId: x.customer_id as string, lastHour: Number(x.last_hour) }));
  }

  async oldestOpenPeriodStart(): Promise<number | null> {
    const r = await this.q('SELECT min(period_start) AS s FROM dirty_periods');
    return r.rows[0]?.s === null || r.rows[0]?.s === undefined ? null : Number(r.rows[0].s);
  }

  deleteEventsBefore(cutoff: number): Promise<{ deleted: number; partitionsDropped: string[] }> {
    return this.guard(() => deleteEventsBeforePg(this.pool, cutoff));
  }

  async requestKeyHash(key: string): Promise<string | undefined> {
    const r = await this.q('SELECT body_hash FROM request_keys WHERE request_key = $1', [key]);
    return r.rows[0]?.body_hash as string | undefined;
  }

  async deleteRequestKeysBefore(cutoff: number): Promise<number> {
    let deleted = 0;
    for (;;) {
      const r = await this.q(
        `DELETE FROM request_keys WHERE request_key IN
           (SELECT request_key FROM request_keys WHERE created_at < $1 ORDER BY created_at LIMIT 5000)`,
        [cutoff],
      );
      deleted += r.rowCount ?? 0;
      if ((r.rowCount ?? 0) < 5000) return deleted;
    }
  }

  async insertApiKey(k: ApiKeyRecord): Promise<void> {
    await this.q(
      `WITH k AS (INSERT INTO api_keys (${API_KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING 1)
       UPDATE key_version SET version = version + 1 WHERE id = 1 AND EXISTS (SELECT 1 FROM k)`,
      apiKeyParams(k),
    );
  }

  async keyVersion(): Promise<number> {
    return Number((await this.q('SELECT version FROM key_version WHERE id = 1')).rows[0]?.version ?? 0);
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    return (await this.q('SELECT * FROM api_keys ORDER BY created_at, id')).rows.map(toApiKey);
  }

  async revokeApiKey(idOrPrefix: string, at: number): Promise<boolean> {
    const r = await this.q(
      `WITH k AS (UPDATE api_keys SET revoked_at = $1 WHERE (id = $2 OR prefix = $2) AND revoked_at IS NULL RETURNING 1),
       b AS (UPDATE key_version SET version = version + 1 WHERE id = 1 AND EXISTS (SELECT 1 FROM k))
       SELECT count(*)::int AS n FROM k`,
      [at, idOrPrefix],
    );
    return Number(r.rows[0]?.n ?? 0) > 0;
  }

  async ping(): Promise<void> {
    await this.q('SELECT 1');
  }

  async checkWrites(): Promise<void> {
    if (this.health.ok) return;
    if (this.health.has('write')) await this.tx(writeProbe);
    this.health.clear('write');
    if (this.health.has('derived')) await this.deriver.drain();
  }

  classifyError(err: unknown): StoreUnavailable | undefined {
    return pgFault(err);
  }

  async close(): Promise<void> {
    if (this.pool.ended) return;
    await this.deriver.stop();
    await this.pool.end();
  }
}
