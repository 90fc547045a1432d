// Owns how a PostgreSQL derivation and a close exclude each other per period instance, and the marks a
// process knows exist. A derivation locks the close_generations rows of the period instances it marks
// FOR SHARE (so derivations run side by side) and a close locks its own FOR UPDATE and adds one to each
// generation (so it waits for the derivations in flight and they wait for it). Marks are deleted only by
// a close, so a mark this process saw after a derivation committed at generation g still exists while
// the generation reads g: it is skipped, not written again.
// Must never skip a mark whose generation changed since it was seen, nor learn marks before their
// transaction committed, nor lock generation rows in other than (period, period start) order.

import type pg from 'pg';
import { compareText } from '../../domain/fold.js';
import { numberArray, textArray } from './pg-arrays.js';

export interface PeriodInstance {
  period: string;
  periodStart: number;
}

const keyOf = (period: string, start: number) => `${period}\u0000${start}`;

/** The distinct period instances of `marks`, in lock order. */
export function instancesOf(marks: readonly PeriodInstance[]): PeriodInstance[] {
  const seen = new Map<string, PeriodInstance>();
  for (const m of marks) {
    const k = keyOf(m.period, m.periodStart);
    if (!seen.has(k)) seen.set(k, { period: m.period, periodStart: m.periodStart });
  }
  return [...seen.values()].sort((a, b) => compareText(a.period, b.period) || a.periodStart - b.periodStart);
}

/**
 * Creates the rows of `instances` that do not exist and locks them all (in order), FOR SHARE for a
 * derivation and FOR UPDATE for a close; returns each instance's generation as read under the lock.
 */
export async function lockGenerations(
  c: pg.PoolClient,
  instances: readonly PeriodInstance[],
  mode: 'derive' | 'close',
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (instances.length === 0) return out;
  const cols = [textArray(instances.map((i) => i.period)), numberArray(instances.map((i) => i.periodStart))];
  await c.query(
    `INSERT INTO close_generations (period, period_start)
     SELECT * FROM unnest($1::text[], $2::bigint[]) AS u(p, s) ORDER BY p COLLATE "C", s ON CONFLICT DO NOTHING`,
    cols,
  );
  const rows = await c.query(
    `SELECT period, period_start, generation FROM close_generations
     WHERE (period, period_start) IN (SELECT * FROM unnest($1::text[], $2::bigint[]))
     ORDER BY period COLLATE "C", period_start FOR ${mode === 'derive' ? 'SHARE' : 'UPDATE'}`,
    cols,
  );
  for (const r of rows.rows) out.set(keyOf(r.period as string, Number(r.period_start)), Number(r.generation));
  if (mode === 'close')
    await c.query(
      `UPDATE close_generations SET generation = generation + 1
       WHERE (period, period_start) IN (SELECT * FROM unnest($1::text[], $2::bigint[]))`,
      cols,
    );
  return out;
}

/** What one derivation raised, to learn once its transaction has committed. */
export interface SeenMarks {
  generations: Map<string, number>;
  marks: Array<PeriodInstance & { customerId: string }>;
}

/** Estimated heap of one known mark: the id's UTF-16 text plus a Set entry. */
const markBytes = (customerId: string) => 2 * customerId.length + 48;

/**
 * The marks this process saw exist, per period instance and generation. Bounded by estimated heap
 * (default 8 MiB: about 100,000 marks of 36-character ids): past it, the instances learned first are
 * forgotten (their marks are written again, which is only slower).
 */
export class KnownMarks {
  private readonly byInstance = new Map<string, { generation: number; customers: Set<string> }>();
  private size = 0;
  private bytes = 0;

  constructor(private readonly maxBytes = 8 * 1024 * 1024) {}

  /** Whether this mark is known to exist at the generation read under this derivation's lock. */
  knows(period: string, periodStart: number, customerId: string, generations: ReadonlyMap<string, number>): boolean {
    const k = keyOf(period, periodStart);
    const known = this.byInstance.get(k);
    return known !== undefined && known.generation === generations.get(k) && known.customers.has(customerId);
  }

  /** After the derivation's commit: its marks exist at the generations it read (no close ran while it held them). */
  learn(seen: SeenMarks): void {
    for (const m of seen.marks) {
      const k = keyOf(m.period, m.periodStart);
      const generation = seen.generations.get(k);
      if (generation === undefined) continue;
      let known = this.byInstance.get(k);
      if (known && known.generation > generation) continue;
      if (!known || known.generation < generation) {
        if (known) this.drop(k);
        known = { generation, customers: new Set() };
        this.byInstance.set(k, known);
      }
      if (!known.customers.has(m.customerId)) {
        known.customers.add(m.customerId);
        this.size++;
        this.bytes += markBytes(m.customerId);
      }
    }
    for (const k of this.byInstance.keys()) {
      if (this.bytes <= this.maxBytes) break;
      this.drop(k);
    }
  }

  get marks(): number {
    return this.size;
  }

  private drop(k: string): void {
    const known = this.byInstance.get(k);
    if (!known) return;
    this.size -= known.customers.size;
    for (const c of known.customers) this.bytes -= markBytes(c);
    this.byInstance.delete(k);
  }
}
