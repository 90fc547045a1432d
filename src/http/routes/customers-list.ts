// Owns the dashboard's data routes: GET /customers (customers with usage, prefix search, keyset
// paging), GET /customers/:customerId/usage/series (usage over time from hourly rollups) and
// GET /stats (the overview). Must never compute numbers here: the aggregate services do.

import Type from 'typebox';
import {
  overview,
  seriesRange,
  SERIES_BUCKETS,
  usageSeries,
  MAX_SERIES_BUCKETS,
  DEFAULT_SERIES_DAYS,
} from '../../aggregate/usage-series.js';
import { OPERATORS } from '../../config/schema.js';
import type { RoutePlugin } from '../app-types.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import { EventTypeNotAllowed } from '../errors.js';
import { CursorParam, IdParam, InstantParam, LimitParam, instantParam, limitOf } from '../query-params.js';
import { errorBody, errorResponses, Nullable, STORE } from '../schemas/common.js';
import { MAX_DIMENSION_KEY_LENGTH } from '../../domain/dimensions.js';
import { assertReadableCustomer, restrictedCustomer } from '../restriction.js';

const CustomersQuery = Type.Object({
  search: Type.Optional(
    Type.String({
      maxLength: 256,
      pattern: '^[^\\u0000]*$',
      description: 'Only customer ids starting with this (case-sensitive); empty means all',
    }),
  ),
  limit: LimitParam,
  cursor: CursorParam,
});
const CustomerRow = Type.Object({
  customerId: Type.String(),
  lastUsageAt: Type.String({ description: 'Start of the latest UTC hour with usage' }),
});

const SeriesParams = Type.Object({ customerId: IdParam(256) });
const SeriesQuery = Type.Object({
  eventType: Type.Optional(IdParam(128, 'A configured event type (default: the first configured one)')),
  bucket: Type.Optional(Type.Enum([...SERIES_BUCKETS], { default: 'hour', description: 'hour or day (UTC)' })),
  from: InstantParam(
    'First instant, inclusive; its bucket is included ' +
      `(default: ${DEFAULT_SERIES_DAYS.hour} days of hours or ${DEFAULT_SERIES_DAYS.day} days before to)`,
  ),
  to: InstantParam('Last instant, inclusive; its bucket is included (default now)'),
  groupBy: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: MAX_DIMENSION_KEY_LENGTH,
      pattern: '^[^\\u0000]*$',
      description: "One of the meter's groupBy keys: adds one series per value of it",
    }),
  ),
});
const Points = Type.Array(
  Type.Object({
    t: Type.String({ description: 'Bucket start (UTC)' }),
    value: Type.Number({ description: "The event type's operator over the bucket (nearest JSON number)" }),
    valueDecimal: Type.String({ description: 'The same value as exact decimal text (e.g. "0.3")' }),
    count: Type.Integer({ description: 'Events in the bucket' }),
  }),
  { description: 'Buckets with data only, oldest first' },
);
const Series = Type.Object({
  customerId: Type.String(),
  eventType: Type.String(),
  op: Type.Enum([...OPERATORS]),
  bucket: Type.Enum([...SERIES_BUCKETS]),
  from: Type.String({ description: 'Start of the first bucket' }),
  to: Type.String({ description: 'Last instant of the last bucket' }),
  points: Points,
  groupBy: Type.Optional(Type.String({ description: 'The dimension the groups split on, when groupBy was given' })),
  groups: Type.Optional(
    Type.Array(
      Type.Object({
        value: Nullable(Type.String(), "The dimension's value (null: missing, null or not a scalar; null too for the overflow series)"),
        overflow: Type.Optional(Type.Literal(true, { description: 'The overflow group (maxGroupsPerHour)' })),
        points: Points,
      }),
      { description: 'One series per value of the dimension: null first, then by value; the overflow series last' },
    ),
  ),
});

const BadRequest = errorBody('Bad request: a parameter is not valid, or the event type is not configured (invalid_event_type)', {
  allowed: Type.Optional(Type.Array(Type.String(), { description: 'The configured event types, for invalid_event_type' })),
});

const Counts = Type.Record(Type.String(), Type.Number());
const Stats = Type.Object({
  generatedAt: Type.String(),
  eventTypes: Type.Record(Type.String(), Type.String(), { description: 'Configured event types and their operators' }),
  events: Type.Object(
    {
      from: Type.String(),
      to: Type.String(),
      bucket: Type.String(),
      total: Type.Integer(),
      byType: Counts,
      points: Type.Array(Type.Object({ t: Type.String(), count: Type.Integer(), byType: Counts })),
      customersWithUsage: Type.Integer(),
      customersScanned: Type.Integer(),
      complete: Type.Boolean({ description: 'False when there were too many customers to examine all of them' }),
    },
    { description: 'Events per hour over the last 7 days, by event time, summed over customers' },
  ),
  aggregations: Type.Object(
    {
      from: Type.String(),
      final: Type.Integer(),
      provisional: Type.Integer(),
      complete: Type.Boolean(),
    },
    { description: 'Aggregation documents of periods starting in the window' },
  ),
  deliveries: Type.Record(Type.String(), Type.Integer(), { description: 'Webhook deliveries by status' }),
  endpoints: Type.Object({ total: Type.Integer(), active: Type.Integer(), disabled: Type.Integer(), failing: Type.Integer() }),
});

export const customerListRoutes: RoutePlugin = async (app, { deps }) => {
  const { ctx } = deps;

  app.get(
    '/customers',
    {
      config: { scope: 'read', customerKeys: true },
      schema: {
        summary: 'Customers with usage, in id order',
        description: 'Prefix search on the customer id; the X-Next-Cursor header pages on.',
        querystring: CustomersQuery,
        response: { 200: Type.Array(CustomerRow), ...errorResponses(400, ...STORE) },
      },
    },
    async (req, reply) => {
      const q = req.query;
      const limit = limitOf(q.limit);
      const after = q.cursor ? decodeCursor(q.cursor, ['id'])[0] : undefined;
      const own = restrictedCustomer(req);
      // A customer-restricted key lists its own customer only (when it has usage and matches the search).
      const rows =
        own === null
          ? await ctx.store.listCustomers({ prefix: q.search || undefined, after, limit: limit + 1 })
          : (await ctx.store.listCustomers({ prefix: own, after, limit: 1 })).filter(
              (c) => c.customerId === own && own.startsWith(q.search ?? ''),
            );
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      if (rows.length > limit && last) void reply.header('x-next-cursor', encodeCursor([last.customerId]));
      return page.map((c) => ({ customerId: c.customerId, lastUsageAt: new Date(c.lastHour).toISOString() }));
    },
  );

  app.get(
    '/customers/:customerId/usage/series',
    {
      config: { scope: 'read', customerKeys: true },
      schema: {
        summary: 'Usage of one event type over time, in hour or day buckets',
        description:
          "Computed from hourly rollups with the event type's operator (a day merges its hours). " +
          `At most ${MAX_SERIES_BUCKETS.hour} hour buckets or ${MAX_SERIES_BUCKETS.day} day buckets per request.`,
        params: SeriesParams,
        querystring: SeriesQuery,
        response: { 200: Series, 400: BadRequest, ...errorResponses(404, ...STORE) },
      },
    },
    async (req) => {
      assertReadableCustomer(req, req.params.customerId);
      const q = req.query;
      const eventType = q.eventType ?? ctx.config.eventTypes[0];
      if (eventType === undefined || !Object.hasOwn(ctx.config.events, eventType)) {
        const allowed = ctx.config.eventTypes;
        const error = allowed.length === 0 ? 'No event types are configured' : `eventType must be one of: ${allowed.join(', ')}`;
        throw new EventTypeNotAllowed(error, allowed);
      }
      const bucket = q.bucket ?? 'hour';
      const range = seriesRange(bucket, instantParam('from', q.from), instantParam('to', q.to), ctx.clock.now());
      return usageSeries(ctx, req.params.customerId, eventType, bucket, range, q.groupBy);
    },
  );

  app.get(
    '/stats',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Overview for the dashboard',
        description: 'Events per hour over the last 7 days, aggregations of that window, deliveries by status and endpoint health.',
        response: { 200: Stats, ...errorResponses(...STORE) },
      },
    },
    async () => overview(ctx),
  );
};
