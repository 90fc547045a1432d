// Owns what an API key may do: its scopes (ingest, read, admin), what each route needs, and whether a key's
// scopes grant it. Must never know a route's path or a key's value: routes declare a need, keys carry scopes.

/** `ingest`: the capture routes; `read`: usage, events, aggregations, customers, stats; `admin`: everything. */
export const SCOPES = ['ingest', 'read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** What a route needs: a scope, any valid key (`any`), or no key at all (`public`). */
export type RouteScope = Scope | 'any' | 'public';
export const ROUTE_SCOPES: readonly RouteScope[] = [...SCOPES, 'any', 'public'];

/** Whether a key with `scopes` may call a route that needs `need`; admin may call every route. */
export function grants(scopes: readonly Scope[], need: RouteScope): boolean {
  if (need === 'public' || need === 'any') return true;
  return scopes.includes('admin') || scopes.includes(need);
}

/** Scopes in their canonical order, each once. */
export function canonicalScopes(scopes: Iterable<Scope>): Scope[] {
  const set = new Set(scopes);
  return SCOPES.filter((s) => set.has(s));
}

/** "read,ingest" → ['ingest', 'read']; unknown names are listed in `unknown`. */
export function parseScopes(text: string): { scopes: Scope[]; unknown: string[] } {
  const names = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const unknown = names.filter((n) => !(SCOPES as readonly string[]).includes(n));
  return { scopes: canonicalScopes(names.filter((n): n is Scope => (SCOPES as readonly string[]).includes(n))), unknown };
}
