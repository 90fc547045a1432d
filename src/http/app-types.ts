// Owns the types the HTTP composition and its route plugins share: the app's dependencies, the
// Fastify instance type, and the options each route plugin is registered with.
// Must never import build-app.ts or a route file: they import this, so nothing imports them back.

import type { FastifyBaseLogger, FastifyInstance, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerDefault } from 'fastify';
import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { EventPageOptions } from '../aggregate/event-listing.js';
import type { AuthThrottle } from '../auth/auth-throttle.js';
import type { KeyRateLimiter } from '../auth/key-rate-limit.js';
import type { ApiKeyVerifier, KeyGrant } from '../auth/api-keys.js';
import type { HttpLimits, TrustProxy } from '../config/server-settings.js';
import type { AuditAction } from '../domain/audit.js';
import type { RouteScope } from '../domain/scopes.js';
import type { IngestContext } from '../ingest/ingest-service.js';
import type { Dispatcher } from '../webhooks/dispatcher.js';
import type { CaptureAdmission } from './capture-admission.js';

export interface AppDeps {
  ctx: IngestContext;
  apiKeys: ApiKeyVerifier;
  dispatcher: Dispatcher;
  version: string;
  /** Answers whether the service can take traffic (default: the store answers and its writes work). */
  ready?: () => Promise<boolean>;
  logger?: FastifyBaseLogger;
  /** Admission of capture requests (default: the memory budget's in-flight bound on ctx.committer). */
  captureAdmission?: CaptureAdmission;
  /** How far a filtered GET /events page looks (default: the service's scan budget). */
  eventListing?: EventPageOptions;
  /** Connection timeouts and caps (default DEFAULT_HTTP_LIMITS). */
  http?: HttpLimits;
  /** Throttles addresses that fail authentication (default: none). */
  authThrottle?: AuthThrottle;
  /** Per-key token buckets (default: none, no key is rate limited). */
  keyRateLimiter?: KeyRateLimiter;
  /** Which proxies' X-Forwarded-For names the client (default: none; the socket's address is the client). */
  trustProxy?: TrustProxy;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** What the route needs: a key scope, any valid key, or none (public). Every route declares one. */
    scope?: RouteScope;
    /** Whether a customer-restricted key may call the route (default false: it is answered 403). */
    customerKeys?: boolean;
    /** An admin action: every answer of the route to a verified key leaves one audit record (src/http/audit-hook.ts). */
    audit?: AuditAction;
  }
  interface FastifyRequest {
    /** The verified key of the request (undefined on public routes). */
    keyGrant?: KeyGrant;
  }
}

/** The Fastify instance every part of the app is given: TypeBox schemas type each route's request. */
export type AppInstance = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression<RawServerDefault>,
  RawReplyDefaultExpression<RawServerDefault>,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

/** What build-app.ts registers every route plugin with. */
export interface RouteOptions {
  deps: AppDeps;
}

/** A route plugin: a self-contained set of routes with their request and response schemas. */
export type RoutePlugin<Extra extends object = Record<never, never>> = FastifyPluginAsyncTypebox<RouteOptions & Extra>;
