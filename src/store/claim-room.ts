// Owns the per-endpoint budget of one delivery claim, shared by both adapters.
// Must never let one claim exceed an endpoint's room, counting what the worker already has in flight.

import type { ClaimOptions } from './store.js';

export function roomPerEndpoint(o: Pick<ClaimOptions, 'perEndpointLimit' | 'inFlight'>) {
  const used = new Map(Object.entries(o.inFlight));
  return {
    /** Slots the endpoint still has in this claim. */
    left(endpointId: string): number {
      return Math.max(0, o.perEndpointLimit - (used.get(endpointId) ?? 0));
    },
    /** Takes one slot of the endpoint if it has room. */
    take(endpointId: string): boolean {
      const n = used.get(endpointId) ?? 0;
      if (n >= o.perEndpointLimit) return false;
      used.set(endpointId, n + 1);
      return true;
    },
  };
}
