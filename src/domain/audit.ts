// Owns what an audit record is: the admin actions that are recorded, the record's fields and the query
// that lists them. Must never hold a key's value, a request body or any secret: a record names who (the
// key's id), what (the action, method, route pattern and path parameters) and how it ended (status, code).

/** Actions a route may declare with `config.audit`; each answer of such a route leaves one record. */
export const AUDIT_ACTIONS = [
  'delivery.retry',
  'delivery.recover',
  'endpoint.enable',
  'aggregation.trigger',
  'key.create',
  'key.revoke',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** The key id recorded for a key from the environment (those have no stored id). */
export const ENV_KEY_ID = 'env';

export interface AuditRecord {
  /** Sortable by time, derived from the time and the request id. */
  id: string;
  action: AuditAction;
  /** The stored key's id, or ENV_KEY_ID. */
  keyId: string;
  /** Epoch ms, from the injected clock. */
  at: number;
  method: string;
  /** The route pattern, e.g. /webhooks/deliveries/:id/retry. */
  route: string;
  /** The route's path parameters (a delivery id, an endpoint name). */
  target: Record<string, string>;
  status: number;
  /** The error code of an error answer; null when the action succeeded. */
  errorCode: string | null;
  requestId: string;
}

/** GET /audit's filters and keyset position: newest first, `before` is the last record of the previous page. */
export interface AuditQuery {
  action?: AuditAction;
  keyId?: string;
  from?: number;
  to?: number;
  limit: number;
  before?: { at: number; id: string };
}
