// Owns capture: checks events in the reference's order, then stores them through group commit, and
// makes a batch with an Idempotency-Key idempotent as a whole request. Must never store part of a
// request: a batch is whole or rejected, and a 2xx means committed.

import type { ServiceContext } from '../aggregate/context.js';
import {
  BatchBodyInvalid,
  BatchTooLarge,
  BatchValidationFailed,
  BodyNotObject,
  EventIdConflict,
  EventValidationFailed,
  InvalidRequestKey,
  NoEventTypes,
  RequestKeyConflict,
  UnknownEventType,
} from '../domain/errors.js';
import {
  checkBatchElement,
  checkEventFields,
  hasEventTypes,
  invalidTypeMessage,
  isConfiguredType,
  isPlainObject,
  LONE_SURROGATE_TYPE,
  type EventContext,
  type NewEvent,
} from '../domain/event-rules.js';
import { isWellFormed } from '../domain/text.js';
import { eventIdFromSeq } from '../domain/ids.js';
import { INVALID_REQUEST_KEY, isValidRequestKey, requestBodyHash, type RequestKey } from '../domain/request-keys.js';
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
  /** The Idempotency-Key was recorded before with the same body: nothing was stored by this request. */
  replayed: boolean;
}

export function eventContext(ctx: ServiceContext): EventContext {
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
export async function commit(ctx: IngestContext, unit: AppendUnit): Promise<Extract<AppendOutcome, { ok: true }>> {
  const started = process.hrtime.bigint();
  const outcome = await ctx.committer.submit(unit);
  const m = ctx.metrics;
  if (!outcome.ok) {
    if ('requestKeyConflict' in outcome) throw new RequestKeyConflict(unit.requestKey?.key ?? '');
    throw new EventIdConflict(outcome.conflicts);
  }
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

/**
 * A batch's Idempotency-Key header. The whole request is then idempotent: a retry with the same key
 * and the same body (compared by canonical hash) is answered as a replay and stores nothing; the same
 * key with another body is a RequestKeyConflict. The key is recorded with the batch's events, in the
 * same transaction, so a batch that is refused (409, 422) records none.
 */
export function checkRequestKey(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (!isValidRequestKey(header)) throw new InvalidRequestKey(INVALID_REQUEST_KEY);
  return header;
}

export async function captureBatch(ctx: IngestContext, body: unknown, requestKey?: string): Promise<CapturedBatch> {
  const key = checkRequestKey(requestKey);
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
  const rk: RequestKey | undefined = key === undefined ? undefined : { key, hash: requestBodyHash(body), createdAt: ec.now };
  if (invalid.length > 0) {
    // A retry of a stored batch may no longer pass (its timestamps aged, its type was removed): the
    // key decides first, so the retry is still answered as what it is.
    const stored = rk ? await ctx.store.requestKeyHash(rk.key) : undefined;
    if (rk && stored !== undefined) {
      if (stored !== rk.hash) throw new RequestKeyConflict(rk.key);
      return { count: body.length, inserted: 0, duplicates: body.length, replayed: true };
    }
    throw new BatchValidationFailed(invalid, events.length);
  }
  const outcome = await commit(ctx, { events, receivedAt: ec.now, ...(rk ? { requestKey: rk } : {}) });
  const replayed = 'replayed' in outcome && outcome.replayed;
  return { count: events.length, inserted: outcome.inserted, duplicates: outcome.duplicates, replayed };
}
