// Owns Stripe's meter event wire format: the form encoding of v1, the event fields of v1 and v2 mapped onto
// vendor events, the billing.meter_event and v2 answers, and Stripe's { error: { type, message, … } } body.
// Must never check an event itself (the shared mapping and capture do), nor answer a conflict with 409:
// stripe-node retries every 409, so a conflicting identifier is a 400 the client does not retry.

import Type from 'typebox';
import type { NewEvent } from '../../../domain/event-rules.js';
import {
  RFC3339_RULE,
  rfc3339ToMillis,
  unixSecondsToMillis,
  type VendorEvent,
  type VendorFieldNames,
} from '../../../domain/vendor-events.js';
import { HttpError, Unauthorized } from '../../errors.js';
import { MapOf } from '../../schemas/common.js';
import { failureText, type Failure, type Rendered } from './vendor-http.js';

export const STRIPE_NAMES: VendorFieldNames = {
  eventType: 'event_name',
  customerId: 'payload[stripe_customer_id]',
  id: 'identifier',
  timestamp: 'timestamp',
  bag: 'payload',
  property: (p) => `payload[${p}]`,
};

/** Stripe's stream takes at most 100 events per request. */
export const STRIPE_STREAM_MAX = 100;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const FORM_KEY = /^([^[\]]+)\[([^[\]]*)\]$/;

/** Stripe's form encoding, one level of brackets deep (`payload[value]=3`, `expand[0]=x`); later keys win. */
export function parseStripeForm(text: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const set = (o: Record<string, unknown>, k: string, v: unknown) =>
    Object.defineProperty(o, k, { value: v, enumerable: true, writable: true });
  for (const [key, value] of new URLSearchParams(text)) {
    const m = FORM_KEY.exec(key);
    if (!m) {
      set(out, key, value);
      continue;
    }
    const outer = m[1]!;
    if (!isObject(out[outer])) set(out, outer, {});
    set(out[outer] as Record<string, unknown>, m[2]!, value);
  }
  return out;
}

/** One Stripe meter event (v1: timestamp in Unix seconds; v2: an RFC 3339 string). */
export function stripeEvent(raw: unknown, version: 'v1' | 'v2'): VendorEvent {
  const ev = isObject(raw) ? raw : {};
  const payload = ev.payload;
  const ts = ev.timestamp;
  let timestamp: number | undefined;
  if (ts !== undefined && ts !== null && ts !== '') {
    timestamp = version === 'v1' ? unixSecondsToMillis(ts) : rfc3339ToMillis(ts);
  }
  return {
    eventType: ev.event_name,
    customerId: isObject(payload) ? payload.stripe_customer_id : undefined,
    id: ev.identifier,
    timestamp,
    timestampRule: version === 'v1' ? 'must be a Unix timestamp in seconds' : RFC3339_RULE,
    properties: payload,
    consumed: ['stripe_customer_id'],
  };
}

const secondsOf = (ms: number) => Math.floor(ms / 1000);

/** The billing.meter_event object of v1; without an identifier, meterhook's event id stands in for Stripe's generated one. */
export function v1MeterEvent(raw: Record<string, unknown>, event: NewEvent, eventId: string, now: number) {
  return {
    object: 'billing.meter_event' as const,
    created: secondsOf(now),
    event_name: event.eventType,
    identifier: event.id ?? eventId,
    livemode: false,
    payload: isObject(raw.payload) ? raw.payload : {},
    timestamp: secondsOf(event.ts),
  };
}

export function v2MeterEvent(raw: Record<string, unknown>, event: NewEvent, eventId: string, now: number) {
  return {
    object: 'v2.billing.meter_event' as const,
    created: new Date(now).toISOString(),
    event_name: event.eventType,
    identifier: event.id ?? eventId,
    livemode: false,
    payload: isObject(raw.payload) ? raw.payload : {},
    timestamp: new Date(event.ts).toISOString(),
  };
}

const Payload = MapOf(Type.Unknown(), 'stripe_customer_id, the value property (default value) and any other keys, which become metadata');
export const V1Body = Type.Object({
  event_name: Type.String({ description: 'The meterhook event type' }),
  payload: Payload,
  identifier: Type.Optional(Type.String({ description: "The event's id: a repeat with the same content is counted once" })),
  timestamp: Type.Optional(Type.Integer({ description: 'Unix seconds; default: receive time' })),
});
const V2Event = Type.Object({
  event_name: Type.String({ description: 'The meterhook event type' }),
  payload: Payload,
  identifier: Type.Optional(Type.String({ description: "The event's id: a repeat with the same content is counted once" })),
  timestamp: Type.Optional(Type.String({ description: 'RFC 3339; default: receive time' })),
});
export const V2Body = V2Event;
export const StreamBody = Type.Object({ events: Type.Array(V2Event, { maxItems: STRIPE_STREAM_MAX }) });

export const V1MeterEvent = Type.Object({
  object: Type.Literal('billing.meter_event'),
  created: Type.Integer(),
  event_name: Type.String(),
  identifier: Type.String(),
  livemode: Type.Boolean(),
  payload: MapOf(Type.Unknown()),
  timestamp: Type.Integer(),
});
export const V2MeterEvent = Type.Object({
  object: Type.Literal('v2.billing.meter_event'),
  created: Type.String(),
  event_name: Type.String(),
  identifier: Type.String(),
  livemode: Type.Boolean(),
  payload: MapOf(Type.Unknown()),
  timestamp: Type.String(),
});
export const MeterEventSession = Type.Object({
  id: Type.String(),
  object: Type.Literal('v2.billing.meter_event_session'),
  authentication_token: Type.String({ description: 'Bearer token for POST /v2/billing/meter_event_stream, good for 15 minutes' }),
  created: Type.String(),
  expires_at: Type.String(),
  livemode: Type.Boolean(),
});

const StripeErrorBody = (description: string) =>
  Type.Object(
    {
      error: Type.Object({
        type: Type.String({ description: 'invalid_request_error, temporary_session_expired or api_error' }),
        message: Type.String(),
        code: Type.Optional(Type.String({ description: 'resource_already_exists for an identifier used with other content' })),
        param: Type.Optional(Type.String()),
      }),
    },
    { description },
  );

/** The error answers of a Stripe route, in Stripe's shape, so stripe-node raises its typed errors. */
export function stripeErrors() {
  return {
    400: StripeErrorBody('Invalid request (StripeInvalidRequestError): a bad event, an unknown event_name, a conflicting identifier'),
    401: StripeErrorBody('Missing or invalid API key or session token (StripeAuthenticationError)'),
    403: StripeErrorBody('The API key lacks the ingest scope'),
    429: StripeErrorBody('Too many failed authentications from this address; honour Retry-After'),
    500: StripeErrorBody('Internal error (StripeAPIError)'),
    503: StripeErrorBody('Ingest is overloaded or the store is unavailable; honour Retry-After (stripe-node retries)'),
  };
}

/** An expired meter event session: Stripe's temporary_session_expired, which stripe-node raises as its own error class. */
export class SessionExpired extends Unauthorized {
  constructor() {
    super('The meter event session has expired; create a new one with POST /v2/billing/meter_event_session');
  }
}

const PARAM = /^(event_name|identifier|timestamp|payload\[[^\]]*\])/;

export function renderStripe(listName: string | null) {
  return (f: Failure, _req: unknown, cause: unknown): Rendered => {
    const message = failureText(f, listName ?? 'events', listName === null);
    const first = f.invalid[0]?.errors[0];
    const param = first === undefined ? undefined : PARAM.exec(first)?.[1];
    if (f.conflicts.length > 0) {
      const ids = f.conflicts.map((c) => c.id).join(', ');
      return {
        status: 400,
        headers: { 'stripe-should-retry': 'false' },
        body: {
          error: {
            type: 'invalid_request_error',
            message: `identifier already used for a meter event with different content: ${ids}`,
            code: 'resource_already_exists',
            param: 'identifier',
          },
        },
      };
    }
    const type = cause instanceof SessionExpired ? 'temporary_session_expired' : f.status >= 500 ? 'api_error' : 'invalid_request_error';
    const error: Record<string, string> = { type, message };
    if (param !== undefined && listName === null) error.param = param;
    // Stripe answers every refused request 400 (401 for credentials, 403 for a key that may not, 429 to slow down),
    // which stripe-node raises as StripeInvalidRequestError (StripeAuthenticationError, …Permission…, …RateLimit…).
    const status = [401, 403, 429].includes(f.status) || f.status >= 500 ? f.status : 400;
    if (status === 429) error.code = 'rate_limit';
    return { status, body: { error } };
  };
}

/** Not the form or JSON this route takes: Stripe answers such a body with invalid_request_error. */
export class StripeBodyInvalid extends HttpError {
  constructor(message: string) {
    super('invalid_request', message);
  }
}
