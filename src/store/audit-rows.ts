// Owns the audit log's row shape for both adapters: the column list, a record's parameters in that order
// and a row back to a record. Must never run SQL: the adapters do, each in its own dialect.

import type { AuditAction, AuditRecord } from '../domain/audit.js';

export const AUDIT_COLUMNS = 'id, action, key_id, at, method, route, target, status, error_code, request_id';

export function auditParams(r: AuditRecord): unknown[] {
  return [r.id, r.action, r.keyId, r.at, r.method, r.route, JSON.stringify(r.target), r.status, r.errorCode, r.requestId];
}

export interface AuditRow {
  id: string;
  action: string;
  key_id: string;
  at: number | string;
  method: string;
  route: string;
  target: string;
  status: number;
  error_code: string | null;
  request_id: string;
}

export function toAuditRecord(row: AuditRow): AuditRecord {
  return {
    id: row.id,
    action: row.action as AuditAction,
    keyId: row.key_id,
    at: Number(row.at),
    method: row.method,
    route: row.route,
    target: JSON.parse(row.target) as Record<string, string>,
    status: Number(row.status),
    errorCode: row.error_code,
    requestId: row.request_id,
  };
}
