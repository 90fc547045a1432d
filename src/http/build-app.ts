// Owns the HTTP composition: Fastify with JSON parsing, auth, request ids, error mapping and routes.
// Must never contain business logic: routes validate, call a service and shape the reply.

import Fastify, { LogController } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { DomainError } from '../domain/errors.js';
import { ROUTE_SCOPES, type RouteScope } from '../domain/scopes.js';
import { requestId } from '../domain/ids.js';
import type { AppDeps } from './app-types.js';
import { registerAuditHook } from './audit-hook.js';
import { registerCors } from './cors.js';
import { DEFAULT_HTTP_LIMITS, type TrustProxy } from '../config/server-settings.js';
import { createCaptureAdmission } from './capture-admission.js';
import { limitConnections, serverOptions } from './connection-limits.js';
import { HttpError, MalformedJson, NotFound, RateLimited, sendError, Unauthorized } from './errors.js';
import { presentedKey } from './presented-key.js';
import { admitGrant } from './restriction.js';
import { keyRoutes } from './routes/keys.js';
import { assertDecodedQuery, parseQueryString, type DeclaredQuery } from './query-string.js';
import { aggregationRoutes } from './routes/aggregations.js';
import { auditRoutes } from './routes/audit.js';
import { captureRoutes } from './routes/capture.js';
import { customerRoutes } from './routes/customers.js';
import { customerListRoutes } from './routes/customers-list.js';
import { DASHBOARD_PATHS, dashboardRoutes } from './routes/dashboard.js';
import { eventRoutes } from './routes/events.js';
import { metaRoutes } from './routes/meta.js';
import { webhookRoutes } from './routes/webhooks.js';
import { metricsRoutes } from './routes/metrics.js';
import { lagoRoutes } from './routes/compat/lago.js';
import { metronomeRoutes } from './routes/compat/metronome.js';
import { openMeterRoutes } from './routes/compat/openmeter.js';
import { orbRoutes } from './routes/compat/orb.js';
import { stripeRoutes } from './routes/compat/stripe.js';
import { DOC_PATHS, registerOpenApi } from './openapi.js';

export type { AppDeps } from './app-types.js';
export { presentedKey } from './presented-key.js';

const SINGLE_BODY_LIMIT = 64 * 1024;
const BATCH_BODY_LIMIT = 16 * 1024 * 1024;

/** A hop count trusts that many proxies nearest to this server; Fastify takes it as a function. */
function trustProxyOption(t: TrustProxy): boolean | string[] | ((address: string, hop: number) => boolean) {
  return typeof t === 'number' ? (_address, hop) => hop < t : t;
}

function createFastify(deps: AppDeps) {
  const limits = deps.http ?? DEFAULT_HTTP_LIMITS;
  return Fastify({
    loggerInstance: deps.logger ?? deps.ctx.logger,
    // Header and request timeouts bound how long a stalled client holds a connection (Fastify's own default is none).
    http: serverOptions(limits),
    requestTimeout: limits.requestTimeoutMs,
    trustProxy: trustProxyOption(deps.trustProxy ?? false),
    genReqId: () => requestId(),
    bodyLimit: SINGLE_BODY_LIMIT,
    // Per-request lines go out at debug from onResponse below; info stays quiet under load.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    // Long enough for a 256-character customer id even fully percent-encoded; schemas enforce the real limits.
    // A query value whose escapes do not decode as UTF-8 is answered 400 (see the preValidation hook).
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 3072, querystringParser: parseQueryString },
    // Requests the router rejects itself (bad URL encoding, over-long parameters) still get our JSON and request id.
    frameworkErrors: (err, req, reply) => {
      void reply.header('x-request-id', req.id);
      sendError(req, reply, err, deps.ctx.metrics);
    },
    ajv: { customOptions: { coerceTypes: 'array', removeAdditional: false, allErrors: true } },
  }).withTypeProvider<TypeBoxTypeProvider>();
}

export type App = ReturnType<typeof createFastify>;

export async function buildApp(deps: AppDeps): Promise<App> {
  const app = createFastify(deps);
  // Registered (and awaited) before any route, so every route's schema reaches the OpenAPI document.
  await registerOpenApi(app, deps.version);

  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser(/^application\/([\w.+-]+\+)?json(\s*;.*)?$/i, { parseAs: 'string' }, (_req, body, done) => {
    const text = body as string;
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      // Only the position: V8's message quotes the body, which does not belong in logs.
      const pos = /position (\d+)/.exec((err as Error).message)?.[1];
      done(new MalformedJson(pos === undefined ? 'not valid JSON' : `not valid JSON at position ${pos}`), undefined);
    }
  });

  limitConnections(app.server, deps.http ?? DEFAULT_HTTP_LIMITS);
  // Every route registered from here on declares what it needs; one that does not fails the build.
  app.addHook('onRoute', (route) => {
    if (!ROUTE_SCOPES.includes(route.config?.scope as RouteScope)) {
      throw new Error(`route ${String(route.method)} ${route.url} declares no scope (config.scope: ${ROUTE_SCOPES.join(' | ')})`);
    }
  });
  app.decorateRequest('keyGrant', undefined);
  // Before the auth hook: a browser's preflight carries no key.
  registerCors(app, deps.ctx.config.corsAllowedOrigins);
  const throttle = deps.authThrottle;
  app.addHook('onRequest', async (req, reply) => {
    void reply.header('x-request-id', req.id);
    // No route matched: a key is still needed, so which routes exist is not revealed without one.
    const need: RouteScope = req.routeOptions.url === undefined ? 'any' : (req.routeOptions.config.scope ?? 'admin');
    const pathname = req.url.split('?')[0] ?? '';
    // A public route is public at its exact path only (not with a trailing slash or an escaped letter),
    // and the dashboard at the paths it lists.
    if (need === 'public' && (pathname === req.routeOptions.url || DASHBOARD_PATHS.includes(pathname))) return;
    if (DOC_PATHS.some((p) => pathname === p || pathname.startsWith(`${p}/`))) return;
    const key = presentedKey(req.headers);
    if (!key) throw new Unauthorized('Missing API key: send it in the x-apikey header or as Authorization: Bearer <key>');
    // An address that failed too often is refused before its key is looked at, so guessing gains nothing.
    const wait = throttle?.retryAfterSeconds(req.ip) ?? 0;
    if (wait > 0) throw new RateLimited(`Too many failed authentications from this address; retry in ${wait} s`, wait);
    const grant = await deps.apiKeys.verify(key);
    if (!grant) {
      throttle?.fail(req.ip);
      throw new Unauthorized('Invalid API key');
    }
    admitGrant(req, deps, grant, need);
  });

  // After authentication, before any schema or route looks at the query.
  app.addHook('preValidation', async (req) => {
    assertDecodedQuery(req.query, req.routeOptions.schema?.querystring as DeclaredQuery | undefined);
  });

  registerAuditHook(app, deps);

  app.addHook('onResponse', async (req, reply) => {
    req.log.debug({ method: req.method, url: req.url, status: reply.statusCode, ms: reply.elapsedTime }, 'request');
  });

  // The store's classifier sees every error a route did not turn into a domain error: a store fault
  // (busy, full, read-only, connection lost) is a 503 with Retry-After whichever route met it.
  const classified = (err: unknown): unknown =>
    err instanceof DomainError || err instanceof HttpError ? err : (deps.ctx.store.classifyError(err) ?? err);
  app.setErrorHandler((err, req, reply) => sendError(req, reply, classified(err), deps.ctx.metrics));
  app.setNotFoundHandler(async (req) => {
    throw new NotFound(`Route ${req.method} ${req.url.split('?')[0]} not found`);
  });

  // Each route file is a self-contained plugin; it inherits the hooks and handlers set above.
  const admission = deps.captureAdmission ?? createCaptureAdmission(deps.ctx.committer);
  await app.register(metaRoutes, { deps });
  await app.register(captureRoutes, { deps, singleBodyLimit: SINGLE_BODY_LIMIT, batchBodyLimit: BATCH_BODY_LIMIT, admission });
  await app.register(eventRoutes, { deps });
  await app.register(aggregationRoutes, { deps });
  await app.register(customerRoutes, { deps });
  await app.register(customerListRoutes, { deps });
  await app.register(dashboardRoutes, { deps });
  await app.register(webhookRoutes, { deps });
  await app.register(metricsRoutes, { deps });
  await app.register(keyRoutes, { deps });
  await app.register(auditRoutes, { deps });
  await app.register(stripeRoutes, { deps, admission });
  await app.register(openMeterRoutes, { deps, admission });
  await app.register(lagoRoutes, { deps, admission });
  await app.register(orbRoutes, { deps, admission });
  await app.register(metronomeRoutes, { deps, admission });
  return app;
}
