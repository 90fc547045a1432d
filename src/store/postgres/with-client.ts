// Owns borrowing a pooled connection safely: a checked-out client that loses its server must not
// crash the process, and a broken connection must not return to the pool. Must never leak a client.

import type pg from 'pg';
import { StoreUnavailable } from '../../domain/errors.js';

export async function withClient<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  // pg-pool removes its own error listener while a client is checked out; without one, a dropped
  // connection (database restart) is an unhandled 'error' event that kills the process.
  let broken: Error | undefined;
  const onError = (err: Error) => {
    broken = err;
  };
  c.on('error', onError);
  try {
    return await fn(c);
  } catch (err) {
    broken ??= isConnectionLoss(err) ? (err as Error) : undefined;
    throw err;
  } finally {
    c.off('error', onError);
    c.release(broken);
  }
}

function isConnectionLoss(error: unknown): boolean {
  // The store's fault boundary may already have classified it: judge the driver's own error.
  const err = error instanceof StoreUnavailable ? error.cause : error;
  const code = (err as { code?: string })?.code ?? '';
  return code.startsWith('08') || code.startsWith('57P') || /Connection terminated|ECONNRESET/i.test(String((err as Error)?.message));
}
