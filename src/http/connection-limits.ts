// Owns the bounds on connections: the Node server's header and request timeouts (with a check interval
// short enough to honour them), the cap on open connections, and the cap per client address.
// Must never read a request or its body, nor keep state for a connection that has closed.

import type { Server, ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import { addressKey } from '../auth/auth-throttle.js';
import type { HttpLimits } from '../config/server-settings.js';

/**
 * How often Node looks for requests past their timeouts: a quarter of the shorter timeout, at most 1 s,
 * so a stalled request is cut within its timeout plus that (Node's own default is 30 s).
 */
export function checkIntervalMs(l: HttpLimits): number {
  return Math.max(25, Math.min(1_000, Math.floor(Math.min(l.headersTimeoutMs, l.requestTimeoutMs) / 4)));
}

/** The options the Node server is created with; Fastify's own `requestTimeout` must be given the same value. */
export function serverOptions(l: HttpLimits): ServerOptions {
  return { headersTimeout: l.headersTimeoutMs, requestTimeout: l.requestTimeoutMs, connectionsCheckingInterval: checkIntervalMs(l) };
}

/**
 * Caps open connections per process (Node closes the ones beyond it at once) and per client address, so
 * one client's stalled connections cannot take every slot. The per-address count lives only while a
 * connection is open, so the map never holds more entries than there are connections.
 */
export function limitConnections(server: Server, l: HttpLimits): void {
  server.maxConnections = l.maxConnections;
  if (l.maxConnectionsPerAddress <= 0) return;
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const key = addressKey(socket.remoteAddress ?? '');
    const n = (open.get(key) ?? 0) + 1;
    if (n > l.maxConnectionsPerAddress) {
      socket.destroy();
      return;
    }
    open.set(key, n);
    socket.once('close', () => {
      const left = (open.get(key) ?? 1) - 1;
      if (left <= 0) open.delete(key);
      else open.set(key, left);
    });
  });
}
