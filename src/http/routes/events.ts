// Owns GET /events: raw events newest first, with parsed bounds and a stable keyset cursor.
// Must never compare instants as strings or return an unbounded page.

import Type from 'typebox';
import type { RoutePlugin } from '../app-types.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import { presentEvent } from '../presenters.js';
import { CursorParam, InstantParam, LimitParam, instantParam, limitOf, IdParam } from '../query-params.js';
import { errorResponses, STORE } from '../schemas/common.js';
import { StoredEvent } from '../schemas/records.js';

const EventsQuery = Type.Object({
  customerId: Type.Optional(IdParam(256)),
  eventType: Type.Optional(IdParam(128)),
  from: InstantParam('Earliest event time, inclusive'),
  to: InstantParam('Latest event time, inclusive'),
  limit: LimitParam,
  cursor: CursorParam,
});

export const eventRoutes: RoutePlugin = async (app, { deps }) => {
  app.get(
    '/events',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Raw events, newest first',
        description: 'The X-Next-Cursor header pages on.',
        querystring: EventsQuery,
        response: { 200: Type.Array(StoredEvent), ...errorResponses(400, ...STORE) },
      },
    },
    async (req, reply) => {
      const q = req.query;
      const limit = limitOf(q.limit);
      const before = q.cursor ? decodeCursor(q.cursor, ['instant', 'seq']) : undefined;
      const rows = await deps.ctx.store.listEvents({
        customerId: q.customerId,
        eventType: q.eventType,
        from: instantParam('from', q.from),
        to: instantParam('to', q.to),
        limit: limit + 1,
        before: before && { ts: before[0], seq: before[1] },
      });
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      if (rows.length > limit && last) void reply.header('x-next-cursor', encodeCursor([last.ts, last.seq]));
      return page.map(presentEvent);
    },
  );
};
