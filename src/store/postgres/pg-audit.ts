// Owns PostgreSQL's audit log: append a record, list records newest first, delete those past retention.
// Must never update a record: the table's trigger refuses it, and nothing here tries.

import type { AuditQuery, AuditRecord } from '../../domain/audit.js';
import { AUDIT_COLUMNS, auditParams, toAuditRecord, type AuditRow } from '../audit-rows.js';
import { auditListSql, POSTGRES_STYLE } from '../sql-where.js';
import type { AuditPort } from '../store.js';

interface Queryable {
  query(sql: string, params: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }>;
}

export function pgAudit(db: Queryable): AuditPort {
  return {
    async appendAudit(r: AuditRecord): Promise<void> {
      await db.query(`INSERT INTO audit_log (${AUDIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, auditParams(r));
    },
    async listAudit(q: AuditQuery): Promise<AuditRecord[]> {
      const { sql, params } = auditListSql(q, POSTGRES_STYLE);
      return ((await db.query(`SELECT ${AUDIT_COLUMNS} FROM audit_log ${sql}`, params)).rows as AuditRow[]).map(toAuditRecord);
    },
    async deleteAuditBefore(cutoff: number): Promise<number> {
      let deleted = 0;
      for (;;) {
        const r = await db.query('DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < $1 ORDER BY at LIMIT 5000)', [
          cutoff,
        ]);
        deleted += r.rowCount ?? 0;
        if ((r.rowCount ?? 0) < 5000) return deleted;
      }
    },
  };
}
