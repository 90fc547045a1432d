// Owns the admission of capture requests before their body is read: a request is refused with 503
// `overloaded` and Retry-After when ingest is overloaded (group-commit queue or store backlog at its
// bound), or when the bodies already being received, parsed and checked would pass the in-flight
// budget (by declared length). Refusing before the body is read costs no parsing and no memory.
// Must never hold a reservation past its response, nor refuse a request when nothing else is in flight
// for its size alone (a single maximal batch is always taken).

import type { FastifyReply, FastifyRequest } from 'fastify';
import { MEMORY_BUDGET } from '../config/memory-budget.js';
import { Overloaded } from '../domain/errors.js';
import type { GroupCommitter } from '../ingest/group-commit.js';

export interface CaptureAdmissionOptions {
  /** Declared body bytes of capture requests in flight at once (memory-budget.ts). */
  inFlightBodyBytes?: number;
}

export function createCaptureAdmission(committer: GroupCommitter, opts: CaptureAdmissionOptions = {}) {
  const budget = opts.inFlightBodyBytes ?? MEMORY_BUDGET.inFlightBodyBytes;
  let inFlightBytes = 0;
  let inFlight = 0;
  let peakBytes = 0;

  /** An onRequest hook for a capture route whose body may be up to `bodyLimit` bytes. */
  function hook(bodyLimit: number) {
    return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
      const wait = committer.retryAfter();
      if (wait > 0) throw new Overloaded(wait);
      const declared = Number(req.headers['content-length']);
      // Without a length (chunked), the body may be as large as the route allows.
      const bytes = Number.isFinite(declared) && declared >= 0 ? Math.min(declared, bodyLimit) : bodyLimit;
      if (inFlight > 0 && inFlightBytes + bytes > budget) throw new Overloaded(1);
      inFlight++;
      inFlightBytes += bytes;
      peakBytes = Math.max(peakBytes, inFlightBytes);
      let held = true;
      const release = () => {
        if (!held) return;
        held = false;
        inFlight--;
        inFlightBytes -= bytes;
      };
      reply.raw.once('finish', release);
      reply.raw.once('close', release);
    };
  }

  return {
    hook,
    stats: () => ({ inFlight, inFlightBytes, peakInFlightBytes: peakBytes, maxInFlightBytes: budget }),
  };
}

export type CaptureAdmission = ReturnType<typeof createCaptureAdmission>;
