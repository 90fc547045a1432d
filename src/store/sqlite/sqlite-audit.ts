// Owns SQLite's audit log: append a record, list records newest first, delete those past retention.
// Must never update a record: the table's trigger refuses it, and nothing here tries.

import type Database from 'better-sqlite3';
import type { AuditQuery, AuditRecord } from '../../domain/audit.js';
import { AUDIT_COLUMNS, auditParams, toAuditRecord, type AuditRow } from '../audit-rows.js';
import { auditListSql, SQLITE_STYLE } from '../sql-where.js';
import type { AuditPort } from '../store.js';
import { deleteInChunks, RETENTION_CHUNK } from './sqlite-retention.js';

export function createAuditLog(db: Database.Database): AuditPort {
  const insert = db.prepare(`INSERT INTO audit_log (${AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const chunk = db.prepare(
    `DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < ? ORDER BY at LIMIT ${RETENTION_CHUNK})`,
  );
  return {
    async appendAudit(r: AuditRecord): Promise<void> {
      insert.run(...auditParams(r));
    },
    async listAudit(q: AuditQuery): Promise<AuditRecord[]> {
      const { sql, params } = auditListSql(q, SQLITE_STYLE);
      return (db.prepare(`SELECT ${AUDIT_COLUMNS} FROM audit_log ${sql}`).all(...params) as AuditRow[]).map(toAuditRecord);
    },
    async deleteAuditBefore(cutoff: number): Promise<number> {
      return deleteInChunks(() => chunk.run(cutoff).changes);
    },
  };
}
