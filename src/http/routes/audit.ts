// Owns GET /session (what the presented key may do) and GET /audit (the admin actions on record, newest
// first). Must never return a key's value or hash, nor let a key without the admin scope read the log.

import Type from 'typebox';
import { AUDIT_ACTIONS, ENV_KEY_ID } from '../../domain/audit.js';
import type { RoutePlugin } from '../app-types.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import { CursorParam, IdParam, InstantParam, instantParam, LimitParam, limitOf } from '../query-params.js';
import { AuditEntry, Session } from '../schemas/access.js';
import { AUTHENTICATED, errorResponses, STORE } from '../schemas/common.js';

const AuditQuery = Type.Object({
  action: Type.Optional(Type.Enum([...AUDIT_ACTIONS])),
  keyId: Type.Optional(IdParam(64)),
  from: InstantParam('Earliest record time, inclusive'),
  to: InstantParam('Latest record time, inclusive'),
  limit: LimitParam,
  cursor: CursorParam,
});

export const auditRoutes: RoutePlugin = async (app, { deps }) => {
  const { store } = deps.ctx;

  app.get(
    '/session',
    {
      config: { scope: 'any', customerKeys: true },
      schema: {
        summary: 'What the presented key may do: its id, scopes and customer restriction',
        response: { 200: Session, ...errorResponses(...AUTHENTICATED) },
      },
    },
    async (req) => {
      const scopes = [...(req.keyGrant?.scopes ?? [])];
      return {
        keyId: req.keyGrant?.id ?? ENV_KEY_ID,
        scopes,
        customerId: req.keyGrant?.customerId ?? null,
        admin: scopes.includes('admin'),
      };
    },
  );

  app.get(
    '/audit',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'Admin actions on record, newest first',
        description: 'The X-Next-Cursor header pages on.',
        querystring: AuditQuery,
        response: { 200: Type.Array(AuditEntry), ...errorResponses(400, ...STORE) },
      },
    },
    async (req, reply) => {
      const q = req.query;
      const limit = limitOf(q.limit);
      const before = q.cursor ? decodeCursor(q.cursor, ['instant', 'id']) : undefined;
      const rows = await store.audit.listAudit({
        action: q.action,
        keyId: q.keyId,
        from: instantParam('from', q.from),
        to: instantParam('to', q.to),
        limit: limit + 1,
        before: before && { at: before[0], id: before[1] },
      });
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      if (rows.length > limit && last) void reply.header('x-next-cursor', encodeCursor([last.at, last.id]));
      return page.map((r) => ({ ...r, at: new Date(r.at).toISOString() }));
    },
  );
};
