// Owns CORS for browser portals: which routes a page on another origin may call (the read routes and
// GET /session), the preflight answer (204, no key needed) and the headers of an allowed origin's answers.
// Must never open an admin or ingest route to another origin, nor answer a disallowed origin with any
// Access-Control-* header: the browser then refuses the answer, which is the point.

import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RouteScope } from '../domain/scopes.js';
import type { AppInstance } from './app-types.js';

/** The routes a portal needs: every read route, and GET /session to learn what its key may do. */
export function isCorsRoute(url: string, scope: RouteScope | undefined): boolean {
  return scope === 'read' || url === '/session';
}

export const CORS_ALLOWED_HEADERS = 'authorization, x-apikey, content-type';
export const CORS_EXPOSED_HEADERS = 'x-next-cursor, x-request-id, retry-after';
const PREFLIGHT_MAX_AGE = '600';

interface CorsRoute {
  pattern: RegExp;
  methods: Set<string>;
}

/** `/customers/:customerId/usage` as a regular expression over a request's path (a trailing slash allowed). */
function patternOf(url: string): RegExp {
  const parts = url.split('/').map((p) => (p.startsWith(':') ? '[^/]+' : p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  return new RegExp(`^${parts.join('/')}/?$`);
}

function varyOrigin(reply: FastifyReply): void {
  const vary = reply.getHeader('vary');
  if (vary === undefined) void reply.header('vary', 'Origin');
  else if (!/\borigin\b/i.test(String(vary))) void reply.header('vary', `${String(vary)}, Origin`);
}

/**
 * Registers the onRoute collector and the onRequest hook. Call before the auth hook and before any route:
 * a preflight is answered here, without a key, and an allowed origin's answer (errors included, so a page
 * can read a 401) carries Access-Control-Allow-Origin.
 */
export function registerCors(app: AppInstance, allowedOrigins: readonly string[]): void {
  const allowed = new Set(allowedOrigins);
  const routes = new Map<string, CorsRoute>();
  app.addHook('onRoute', (route) => {
    if (!isCorsRoute(route.url, route.config?.scope as RouteScope | undefined)) return;
    const entry = routes.get(route.url) ?? { pattern: patternOf(route.url), methods: new Set<string>() };
    for (const m of [route.method].flat()) entry.methods.add(String(m).toUpperCase());
    routes.set(route.url, entry);
  });
  const methodsFor = (pathname: string): Set<string> | undefined => {
    for (const r of routes.values()) if (r.pattern.test(pathname)) return r.methods;
    return undefined;
  };

  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const origin = req.headers.origin;
    const pathname = req.url.split('?')[0] ?? '';
    const requested = req.headers['access-control-request-method'];
    if (req.method === 'OPTIONS' && typeof requested === 'string') {
      const methods = methodsFor(pathname);
      if (!methods) return;
      varyOrigin(reply);
      if (typeof origin !== 'string' || !allowed.has(origin) || !methods.has(requested.toUpperCase())) return;
      void reply.header('access-control-allow-origin', origin);
      void reply.header('access-control-allow-methods', [...methods].join(', '));
      void reply.header('access-control-allow-headers', CORS_ALLOWED_HEADERS);
      void reply.header('access-control-max-age', PREFLIGHT_MAX_AGE);
      void reply.header('x-request-id', req.id);
      void reply.code(204).send();
      return reply;
    }
    const url = req.routeOptions.url;
    if (url === undefined || !isCorsRoute(url, req.routeOptions.config.scope)) return;
    varyOrigin(reply);
    if (typeof origin !== 'string' || !allowed.has(origin)) return;
    void reply.header('access-control-allow-origin', origin);
    void reply.header('access-control-expose-headers', CORS_EXPOSED_HEADERS);
  });
}
