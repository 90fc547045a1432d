// Owns GET /events: raw events newest first, with parsed bounds, metadata filters and a stable keyset cursor.
// Must never compare instants as strings or return an unbounded page.

import Type from 'typebox';
import { listEventPage } from '../../aggregate/event-listing.js';
import { MAX_DIMENSION_KEY_LENGTH } from '../../domain/dimensions.js';
import {
  MAX_METADATA_FILTER_VALUE_LENGTH,
  MAX_METADATA_FILTERS,
  METADATA_FILTER_PREFIX,
  metadataFilterOf,
} from '../../domain/metadata-filter.js';
import type { RoutePlugin } from '../app-types.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import { presentEvent } from '../presenters.js';
import { CursorParam, InstantParam, LimitParam, instantParam, limitOf, IdParam } from '../query-params.js';
import { errorResponses, STORE } from '../schemas/common.js';
import { StoredEvent } from '../schemas/records.js';
import { listCustomer } from '../restriction.js';

const FILTER_DESCRIPTION =
  `metadata.<key>=<value>: only events whose metadata value at <key> has this string form (a string as it is, ` +
  `a number as its JSON text, a boolean as true/false; a missing key, null, an object or an array matches no value). ` +
  `Needs customerId; several keys must all match; each key at most once, of at most ${MAX_DIMENSION_KEY_LENGTH} characters, ` +
  `values of at most ${MAX_METADATA_FILTER_VALUE_LENGTH}, at most ${MAX_METADATA_FILTERS} filters`;

const EventsQuery = Type.Object(
  {
    customerId: Type.Optional(IdParam(256)),
    eventType: Type.Optional(IdParam(128)),
    from: InstantParam('Earliest event time, inclusive'),
    to: InstantParam('Latest event time, inclusive'),
    limit: LimitParam,
    cursor: CursorParam,
  },
  // Checked by metadataFilterOf, whose 400s say what is wrong; declared here so the route reads them.
  { patternProperties: { [`^${METADATA_FILTER_PREFIX.replace('.', '\\.')}`]: { description: FILTER_DESCRIPTION } } },
);

export const eventRoutes: RoutePlugin = async (app, { deps }) => {
  app.get(
    '/events',
    {
      config: { scope: 'read', customerKeys: true },
      schema: {
        summary: 'Raw events, newest first',
        description:
          'The X-Next-Cursor header pages on. Filter on metadata with metadata.<key>=<value> (with customerId): ' +
          'a filtered page examines a bounded number of stored events, so it may hold fewer than limit events, ' +
          'or none, and still carry X-Next-Cursor; follow it until the header is absent. ' +
          FILTER_DESCRIPTION,
        querystring: EventsQuery,
        response: { 200: Type.Array(StoredEvent), ...errorResponses(400, 404, ...STORE) },
      },
    },
    async (req, reply) => {
      const q = req.query;
      const metadata = metadataFilterOf(q);
      const before = q.cursor ? decodeCursor(q.cursor, ['instant', 'seq']) : undefined;
      const page = await listEventPage(
        deps.ctx.store,
        {
          customerId: listCustomer(req, q.customerId),
          eventType: q.eventType,
          from: instantParam('from', q.from),
          to: instantParam('to', q.to),
          limit: limitOf(q.limit),
          before: before && { ts: before[0], seq: before[1] },
          metadata,
        },
        deps.eventListing,
      );
      if (page.next) void reply.header('x-next-cursor', encodeCursor([page.next.ts, page.next.seq]));
      return page.events.map(presentEvent);
    },
  );
};
