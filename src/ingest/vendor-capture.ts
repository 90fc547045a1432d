// Owns the capture of vendor events (the drop-in Stripe, OpenMeter, Lago, Orb and Metronome surfaces): each
// mapped event is checked by the same rules as a /usagebatch element and stored through the same group
// commit, request metrics and idempotency. Must never store part of a batch that is taken whole, nor a
// checked-invalid event of a batch that is taken per event.

import { BatchTooLarge, BatchValidationFailed, EventIdConflict, NoEventTypes } from '../domain/errors.js';
import { checkBatchElement, hasEventTypes, type NewEvent } from '../domain/event-rules.js';
import { eventIdFromSeq } from '../domain/ids.js';
import { inVendorTerms, type MappedEvent, type VendorFieldNames } from '../domain/vendor-events.js';
import { commit, eventContext, type IngestContext } from './ingest-service.js';

/** What became of one stored event: its meterhook id, and whether it repeated a stored one. */
export interface VendorStored {
  index: number;
  eventId: string;
  duplicate: boolean;
  event: NewEvent;
}

export interface VendorInvalid {
  index: number;
  errors: string[];
}

interface Checked {
  valid: Array<{ index: number; event: NewEvent }>;
  invalid: VendorInvalid[];
}

function check(ctx: IngestContext, mapped: MappedEvent[], names: VendorFieldNames): Checked {
  if (!hasEventTypes(ctx.config)) throw new NoEventTypes();
  const ec = eventContext(ctx);
  const valid: Checked['valid'] = [];
  const invalid: VendorInvalid[] = [];
  mapped.forEach((m, index) => {
    const c = checkBatchElement(m.element, ec);
    const errors = [...m.errors, ...(c.ok ? [] : c.errors.map((e) => inVendorTerms(e, names, m.valueName)))];
    if (errors.length > 0) invalid.push({ index, errors: [...new Set(errors)] });
    else if (c.ok) valid.push({ index, event: c.event });
  });
  return { valid, invalid };
}

async function store(ctx: IngestContext, valid: Checked['valid']): Promise<VendorStored[]> {
  if (valid.length === 0) return [];
  const outcome = await commit(ctx, { events: valid.map((v) => v.event), receivedAt: ctx.clock.now() });
  return outcome.results.map((r, i) => ({
    index: valid[i]!.index,
    eventId: eventIdFromSeq(r.seq),
    duplicate: r.duplicate,
    event: valid[i]!.event,
  }));
}

/**
 * Takes a vendor's batch whole: every event valid, or BatchValidationFailed (messages in the vendor's field
 * names) and nothing stored; an id repeated with other content is EventIdConflict and nothing is stored.
 */
export async function captureVendorBatch(
  ctx: IngestContext,
  mapped: MappedEvent[],
  names: VendorFieldNames,
  maxEvents: number,
): Promise<VendorStored[]> {
  if (mapped.length > maxEvents) throw new BatchTooLarge(mapped.length, maxEvents);
  const { valid, invalid } = check(ctx, mapped, names);
  if (invalid.length > 0) throw new BatchValidationFailed(invalid, valid.length);
  return store(ctx, valid);
}

/**
 * Takes a vendor's batch per event (Orb's model): the valid events are stored, in one transaction; the
 * invalid ones, and those whose id was used before with other content, are answered with their problems.
 */
export async function captureVendorEach(
  ctx: IngestContext,
  mapped: MappedEvent[],
  names: VendorFieldNames,
  maxEvents: number,
): Promise<{ stored: VendorStored[]; invalid: VendorInvalid[] }> {
  if (mapped.length > maxEvents) throw new BatchTooLarge(mapped.length, maxEvents);
  const { valid, invalid } = check(ctx, mapped, names);
  let pending = valid;
  // A conflict rolls the unit back: the conflicting events are set aside and the rest committed again,
  // so at most one extra transaction per conflicting request.
  for (;;) {
    try {
      return { stored: await store(ctx, pending), invalid: invalid.sort((a, b) => a.index - b.index) };
    } catch (err) {
      if (!(err instanceof EventIdConflict)) throw err;
      const refused = new Set(err.conflicts.map((c) => c.index));
      for (const i of refused) {
        invalid.push({ index: pending[i]!.index, errors: [`${names.id} was already used for an event with different content`] });
      }
      pending = pending.filter((_, i) => !refused.has(i));
    }
  }
}
