// Owns the audit hook: a route that declares `config.audit` leaves one record per answer to a verified key
// (refusals by a valid key included, so a read key trying an admin action is on record), with who, when,
// the route pattern, its path parameters and the answer's status and error code. Must never record a key's
// value, a body or a query, and never turn the action's answer into an error: a failed write is logged and
// counted (meterhook_audit_write_failures_total), and the answer goes out unchanged.

import type { FastifyReply, FastifyRequest } from 'fastify';
import { ENV_KEY_ID, type AuditRecord } from '../domain/audit.js';
import { timedDeterministicId } from '../domain/ids.js';
import type { AppDeps, AppInstance } from './app-types.js';

/** The error code of a JSON error answer, or null. */
function errorCode(status: number, payload: unknown): string | null {
  if (status < 400 || typeof payload !== 'string') return null;
  try {
    const code = (JSON.parse(payload) as { code?: unknown }).code;
    return typeof code === 'string' ? code : null;
  } catch {
    return null;
  }
}

function pathParams(req: FastifyRequest): Record<string, string> {
  const out: Record<string, string> = {};
  const params = (req.params ?? {}) as Record<string, unknown>;
  for (const [k, v] of Object.entries(params)) if (typeof v === 'string') out[k] = v;
  return out;
}

export function auditRecordOf(req: FastifyRequest, reply: FastifyReply, payload: unknown, at: number): AuditRecord | undefined {
  const action = req.routeOptions.config?.audit;
  const grant = req.keyGrant;
  if (action === undefined || grant === undefined || req.routeOptions.url === undefined) return undefined;
  return {
    id: timedDeterministicId('aud', at, req.id),
    action,
    keyId: grant.id ?? ENV_KEY_ID,
    at,
    method: req.method,
    route: req.routeOptions.url,
    target: pathParams(req),
    status: reply.statusCode,
    errorCode: errorCode(reply.statusCode, payload),
    requestId: req.id,
  };
}

/** Registers the hook; onSend, so the record is written before the answer leaves, yet cannot change it. */
export function registerAuditHook(app: AppInstance, deps: AppDeps): void {
  const { store, clock, metrics } = deps.ctx;
  app.addHook('onSend', async (req, reply, payload) => {
    const record = auditRecordOf(req, reply, payload, clock.now());
    if (!record) return payload;
    try {
      await store.audit.appendAudit(record);
    } catch (err) {
      metrics?.auditWriteFailures.inc();
      req.log.error({ err, action: record.action, requestId: record.requestId }, 'audit record not written');
    }
    return payload;
  });
}
