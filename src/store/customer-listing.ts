// Owns the customer listing query (customers with rollups, in id order, prefix search, keyset paging) for
// both adapters. A prefix becomes a range [prefix, next) on an index in byte order, so a search reads only
// the ids it can match, even when none does. Must never read ids outside that range, nor sort in memory.

import type { ListSql } from './sql-where.js';

export interface CustomerListQuery {
  prefix?: string;
  after?: string;
  limit: number;
}

const MAX_CODE_POINT = 0x10ffff;

/**
 * The least string above every string that starts with `prefix`, in code point order (which is UTF-8 byte
 * order): the prefix with its last code point raised by one, dropping code points that cannot be raised.
 * Undefined when every code point is U+10FFFF, where nothing is above.
 */
export function prefixUpperBound(prefix: string): string | undefined {
  const cps = [...prefix].map((c) => c.codePointAt(0)!);
  while (cps.length > 0) {
    const last = cps.pop()!;
    if (last < MAX_CODE_POINT) {
      // Surrogate code points are not characters; the next character after U+D7FF is U+E000.
      const next = last + 1 >= 0xd800 && last + 1 <= 0xdfff ? 0xe000 : last + 1;
      return String.fromCodePoint(...cps, next);
    }
  }
  return undefined;
}

/**
 * SQLite walks the rollups primary key (customer_id, hour, event_type), whose BINARY collation is byte
 * order. PostgreSQL walks rollups_customer_c (customer_id COLLATE "C", hour), so the range and the order
 * are byte order whatever the database's collation, and the answer is index-only.
 */
export function customerListSql(dialect: 'sqlite' | 'postgres', q: CustomerListQuery): ListSql {
  const params: unknown[] = [];
  const p = (v: unknown): string => {
    params.push(v);
    return dialect === 'sqlite' ? '?' : `$${params.length}`;
  };
  const col = dialect === 'sqlite' ? 'customer_id' : 'customer_id COLLATE "C"';
  const where: string[] = [];
  if (q.prefix) {
    where.push(`${col} >= ${p(q.prefix)}`);
    const upper = prefixUpperBound(q.prefix);
    if (upper !== undefined) where.push(`${col} < ${p(upper)}`);
  }
  if (q.after !== undefined) where.push(`${col} > ${p(q.after)}`);
  const sql = `SELECT ${col} AS customer_id, max(hour) AS last_hour FROM rollups ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
               GROUP BY ${col} ORDER BY ${col} LIMIT ${p(q.limit)}`;
  return { sql, params };
}
