// Owns capture: checks events in the reference's order, then stores them through group commit.
// Must never store part of a request: a batch is whole or rejected, and a 2xx means committed.

import type { ServiceContext } from '../aggregate/context.js';
import {
  BatchBodyInvalid, BatchTooLarge, BatchValidationFailed, BodyNotObject, EventIdConflict, EventValidationFailed,
  NoEventTypes, UnknownEventType,
} from '../domain/errors.js';
import {
  checkBatchElement, checkEventFields, hasEventTypes, invalidTypeMessage, isConfiguredType, isPlainObject,
  LONE_SURROGATE_TYPE, type EventContext, type NewEvent,
} from '../domain/event-rules.js';
import { isWellFormed } from '../domain/text.js';
import { eventIdFromSeq } from '../domain/ids.js';
import type { AppendOutcome, AppendUnit } from '../store/store.js';
import type { GroupCommitter } from './group-commit.js';

export interface IngestContext extends ServiceContext {
  committer: GroupCommitter;
}

export interface CapturedOne {
  duplicate: boolean;
  eventId: string;
  id: string | null;
  timestamp: number;
}

export interface CapturedBatch {
  count: number;
  inserted: number;
  duplicates: number;
}

function eventContext(ctx: ServiceContext): EventContext {
  return { now: ctx.clock.now(), config: ctx.config };
}

export function assertEventType(ctx: ServiceContext, eventType: string): void {
  if (!hasEventTypes(ctx.config)) throw new NoEventTypes();
  if (!isConfiguredType(ctx.config, eventType)) {
    // Configured types are ASCII: only an unknown type can hold a lone surrogate, and that is named as such.
    if (!isWellFormed(eventType)) throw new EventValidationFailed([LONE_SURROGATE_TYPE]);
    throw new UnknownEventType(invalidTypeMessage(ctx.config, eventType), eventType, ctx.config.eventTypes);
  }
}

/** Group-commits one unit and records what happened; an id conflict becomes EventIdConflict. */
async function commit(ctx: IngestContext, unit: AppendUnit): Promise<Extract<AppendOutcome, { ok: true }>> {
  const started = process.hrtime.bigint();
  const outcome = await ctx.committer.submit(unit);
  const m = ctx.metrics;
  if (!outcome.ok) throw new EventIdConflict(outcome.conflicts);
  if (m) {
    m.ingestLatency.observe(Number(process.hrtime.bigint() - started) / 1e9);
    m.batchSize.observe(unit.events.length);
    if (outcome.inserted) m.eventsIngested.inc(outcome.inserted);
    if (outcome.duplicates) m.eventsDuplicate.inc(outcome.duplicates);
  }
  return outcome;
}

export async function captureOne(ctx: IngestContext, eventType: string, body: unknown, idHeader?: string): Promise<CapturedOne> {
  assertEventType(ctx, eventType);
  if (!isPlainObject(body)) throw new BodyNotObject();
  const ec = eventContext(ctx);
  const checked = checkEventFields(body, eventType, ec, idHeader);
  if (!checked.ok) throw new EventValidationFailed(checked.errors);
  const outcome = await commit(ctx, { events: [checked.event], receivedAt: ec.now });
  const r = outcome.results[0]!;
  return { duplicate: r.duplicate, eventId: eventIdFromSeq(r.seq), id: checked.event.id, timestamp: checked.event.ts };
}

export async function captureBatch(ctx: IngestContext, body: unknown): Promise<CapturedBatch> {
  if (body === undefined || body === null) throw new BatchBodyInvalid('Request body is required');
  if (!Array.isArray(body)) throw new BatchBodyInvalid('Request body must be an array of events');
  if (body.length === 0) throw new BatchBodyInvalid('Events array cannot be empty');
  if (body.length > ctx.config.maxBatchSize) throw new BatchTooLarge(body.length, ctx.config.maxBatchSize);
  if (!hasEventTypes(ctx.config)) throw new NoEventTypes();
  const ec = eventContext(ctx);
  const events: NewEvent[] = [];
  const invalid: Array<{ index: number; errors: string[] }> = [];
  body.forEach((el, index) => {
    const c = checkBatchElement(el, ec);
    if (c.ok) events.push(c.event);
    else invalid.push({ index, errors: c.errors });
  });
  if (invalid.length > 0) throw new BatchValidationFailed(invalid, events.length);
  const outcome = await commit(ctx, { events, receivedAt: ec.now });
  return { count: events.length, inserted: outcome.inserted, duplicates: outcome.duplicates };
}
