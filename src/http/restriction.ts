// Owns the confinement of customer-restricted API keys, in one place for every route: which routes such a key
// may call (the route's customerKeys flag), the customer a read may name, and the customers a capture may store
// for. Must never tell a foreign customer from an unknown one: both are the same 404.

import type { FastifyRequest } from 'fastify';
import type { KeyGrant } from '../auth/api-keys.js';
import { grants, type RouteScope } from '../domain/scopes.js';
import type { AppDeps } from './app-types.js';
import { Forbidden, NotFound, RateLimited, Unauthorized } from './errors.js';

/**
 * What every request with a verified key goes through, in order, before its body is read: the key's expiry
 * (401), its scopes (403), a customer key on a route that does not take one (403), then its rate limit (429).
 */
export function admitGrant(req: FastifyRequest, deps: AppDeps, grant: KeyGrant, need: RouteScope): void {
  if (grant.expiresAt !== null && deps.ctx.clock.now() >= grant.expiresAt) throw new Unauthorized('This API key has expired');
  // Set before the scope check: a refused call by a valid key is still that key's call (the audit log records it).
  req.keyGrant = grant;
  if (!grants(grant.scopes, need)) throw new Forbidden(`This API key may not call this route: it needs the ${need} scope`);
  assertCustomerKeyAllowed(req);
  const wait = deps.keyRateLimiter?.take(grant.id ?? 'env', grant.rateLimit) ?? 0;
  if (wait > 0) {
    deps.ctx.metrics?.rateLimited.inc({ scope: need });
    throw new RateLimited(`This API key's rate limit is reached; retry in ${wait} s`, wait);
  }
}

/** The customer the request's key is confined to, or null for an unrestricted key. */
export function restrictedCustomer(req: FastifyRequest): string | null {
  return req.keyGrant?.customerId ?? null;
}

/** The 404 a restricted key gets for any customer but its own, word for word whichever customer it named. */
export function customerNotFound(): NotFound {
  return new NotFound('Customer not found');
}

/** Whether a customer key may call the route at all: only routes that opt in with config.customerKeys. */
export function assertCustomerKeyAllowed(req: FastifyRequest): void {
  if (restrictedCustomer(req) !== null && req.routeOptions.config.customerKeys !== true) {
    throw new Forbidden('This API key is restricted to one customer and may not call this route');
  }
}

/** A read naming `customerId` (a path parameter or a filter): a restricted key may name only its own customer. */
export function assertReadableCustomer(req: FastifyRequest, customerId: string | undefined): void {
  const own = restrictedCustomer(req);
  if (own !== null && customerId !== undefined && customerId !== own) throw customerNotFound();
}

/** The customer filter a list applies: the one asked for, narrowed to a restricted key's own customer. */
export function listCustomer(req: FastifyRequest, asked: string | undefined): string | undefined {
  assertReadableCustomer(req, asked);
  return restrictedCustomer(req) ?? asked;
}

/**
 * Before anything of a capture is stored: every event a restricted key sends must be for its own customer, or the
 * whole request is refused 403 (a customer id that is not text is left to validation, which refuses it too).
 */
export function assertCapturableCustomers(req: FastifyRequest, customerIds: Iterable<unknown>): void {
  const own = restrictedCustomer(req);
  if (own === null) return;
  for (const id of customerIds) {
    if (typeof id === 'string' && id !== own) {
      throw new Forbidden('This API key is restricted to one customer and may not store events for another customer');
    }
  }
}
