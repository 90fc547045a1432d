// Owns the response schemas of what a key may see about itself and about admin actions: GET /session and
// GET /audit. Must never describe a field that carries a key's value or hash.

import Type from 'typebox';
import { AUDIT_ACTIONS } from '../../domain/audit.js';
import { SCOPES } from '../../domain/scopes.js';
import { MapOf, Nullable } from './common.js';

export const AuditEntry = Type.Object({
  id: Type.String(),
  action: Type.Enum([...AUDIT_ACTIONS]),
  keyId: Type.String({ description: 'The stored key\'s id, or "env" for a key from METERHOOK_API_KEYS' }),
  at: Type.String({ format: 'date-time' }),
  method: Type.String(),
  route: Type.String({ description: 'The route pattern, e.g. /webhooks/deliveries/:id/retry' }),
  target: MapOf(Type.String(), 'The path parameters of the request'),
  status: Type.Integer({ description: 'The HTTP status of the answer' }),
  errorCode: Nullable(Type.String(), 'The error code of an error answer'),
  requestId: Type.String(),
});

export const Session = Type.Object({
  keyId: Type.String({ description: 'The stored key\'s id, or "env" for a key from METERHOOK_API_KEYS' }),
  scopes: Type.Array(Type.Enum([...SCOPES])),
  customerId: Nullable(Type.String(), 'The customer a key is restricted to; null: every customer'),
  admin: Type.Boolean({ description: 'Whether the key may call the admin routes' }),
});
