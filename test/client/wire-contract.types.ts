// Type-level assertions that the SDK's hand-written wire types (src/client/types.ts) match the route
// schemas (src/http/schemas/records.ts): the same field names at every level, the same optional
// fields, and every value the server sends assignable to the client's type. `npm run typecheck`
// checks this file, and test/client/wire-contract.test.ts compiles it, so a drift fails either way.
// Must never import the web framework or change the client: it only states facts about types.

import type { Static } from 'typebox';
import type { MeterhookClient } from '../../src/client/client.js';
import type * as Wire from '../../src/client/types.js';
import type * as Schemas from '../../src/http/schemas/records.js';
import type * as Access from '../../src/http/schemas/access.js';
import type * as KeySchemas from '../../src/http/routes/keys.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
// biome-ignore lint/complexity/noBannedTypes: {} extends Pick<T, K> is how an optional key is told apart
type OptionalKeys<T> = { [K in keyof T]-?: {} extends Pick<T, K> ? K : never }[keyof T];

/**
 * The server's type S fits the client's type C: S is assignable to C, and every object inside has the
 * same keys, optional in the same places (the client may still widen a value, e.g. a union to string).
 */
export type Fits<S, C> = [S] extends [C] ? Shape<NonNullable<S>, NonNullable<C>> : false;
type Shape<S, C> = [S] extends [readonly (infer SE)[]]
  ? [C] extends [readonly (infer CE)[]]
    ? Fits<SE, CE>
    : false
  : [S] extends [object]
    ? [C] extends [object]
      ? ObjectFits<S, C>
      : false
    : true;
type ObjectFits<S, C> =
  Equal<keyof S, keyof C> extends true
    ? Equal<OptionalKeys<S>, OptionalKeys<C>> extends true
      ? false extends { [K in keyof S]-?: K extends keyof C ? Fits<S[K], C[K]> : false }[keyof S]
        ? false
        : true
      : false
    : false;

type Expect<T extends true> = T;
type Not<T extends boolean> = T extends true ? false : true;

type Answer<M extends (...args: never[]) => unknown> = Awaited<ReturnType<M>>;
type RequiredKeys<T> = Exclude<keyof T, OptionalKeys<T>>;

export type Checks = [
  Expect<Fits<Static<typeof Schemas.CaptureResult>, Wire.CaptureResult>>,
  Expect<Fits<Static<typeof Schemas.BatchResult>, Wire.BatchResult>>,
  Expect<Fits<Static<typeof Schemas.StoredEvent>, Wire.StoredEvent>>,
  Expect<Fits<Static<typeof Schemas.WebhookStatus>, Wire.WebhookStatus>>,
  Expect<Fits<Static<typeof Schemas.Aggregation>, Wire.Aggregation>>,
  Expect<Fits<Static<typeof Schemas.Usage>, Wire.Usage>>,
  // The client has one type for both trigger answers: the 202's fields, optional where the 200 lacks them.
  Expect<Fits<Static<typeof Schemas.TriggerQueued>, Required<Wire.TriggerResult>>>,
  Expect<Fits<Static<typeof Schemas.TriggerNothing>, Pick<Wire.TriggerResult, RequiredKeys<Wire.TriggerResult>>>>,
  Expect<Fits<Static<typeof Schemas.Delivery>, Wire.Delivery>>,
  Expect<Fits<Static<typeof Schemas.DeliveryAttempt>, Wire.DeliveryAttempt>>,
  Expect<Fits<Static<typeof Schemas.DeliveryDetail>, Wire.DeliveryDetail>>,
  Expect<Fits<Static<typeof Schemas.DeliveryRetryResult>, Wire.DeliveryRetryResult>>,
  Expect<Fits<Static<typeof Schemas.RecoverResult>, Answer<MeterhookClient['deliveries']['recover']>>>,
  Expect<Fits<Static<typeof Schemas.Endpoint>, Wire.Endpoint>>,
  Expect<Fits<Static<typeof Schemas.EndpointEnabled>, Answer<MeterhookClient['enableEndpoint']>>>,
  Expect<Fits<Static<typeof Access.Session>, Wire.Session>>,
  Expect<Fits<Static<typeof Access.AuditEntry>, Wire.AuditEntry>>,
  Expect<Equal<Static<typeof Access.AuditEntry>['action'], Wire.AuditAction>>,
  Expect<Fits<Static<typeof KeySchemas.ApiKey>, Wire.ApiKey>>,
  Expect<Fits<Static<typeof KeySchemas.CreatedKey>, Wire.CreatedApiKey>>,
  Expect<Equal<Static<typeof Schemas.Aggregation>['period'], Wire.Period>>,
  Expect<Equal<Static<typeof Schemas.Delivery>['status'], Wire.DeliveryStatus>>,
];

/** The checks can fail: each of these drifts is caught. */
export type Drifts = [
  Expect<Not<Fits<{ a: string; b: number }, { a: string }>>>, // the server sends a field the client lacks
  Expect<Not<Fits<{ a: string }, { a: string; b: number }>>>, // the client expects a field never sent
  Expect<Not<Fits<{ a?: string }, { a: string }>>>, // sometimes absent, but the client says always there
  Expect<Not<Fits<{ a: string }, { a?: string }>>>, // always there, but the client says optional
  Expect<Not<Fits<{ a: string | null }, { a: string }>>>, // null the client does not expect
  Expect<Not<Fits<{ a: Array<{ b: string; c: string }> }, { a: Array<{ b: string }> }>>>, // nested, in an array
  Expect<Not<Fits<{ a: { b: number } | null }, { a: { b: number; c: number } | null }>>>, // nested, nullable
  Expect<Fits<{ a: 'x' | 'y' }, { a: string }>>, // a client may widen a value
];
