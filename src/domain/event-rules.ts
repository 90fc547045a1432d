// Owns what a valid usage event is: field checks with the reference's exact messages, limits, and
// normalisation into the stored form. Must never touch storage or HTTP.

import { dimensionRuleOf, type EventRules } from './rules.js';
import { valueLimitError } from './decimal.js';
import { deriveDimensions, NOTHING_DERIVED } from './dimensions.js';
import { formatDuration } from './durations.js';
import { isWellFormed, mayHoldLoneSurrogate, metadataSurrogateError } from './text.js';
import { isSupportedInstant, parseInstant, SUPPORTED_INSTANTS } from './timestamps.js';

export const LIMITS = {
  customerIdMax: 256,
  eventTypeMax: 128,
  idMax: 128,
  metadataBytesMax: 8192,
  metadataDepthMax: 5,
} as const;

/**
 * An event ready to store. metadata is its JSON text, serialised once here, or null when it is absent,
 * null or `{}`: the three are the same content, so they are stored alike.
 */
export interface NewEvent {
  customerId: string;
  eventType: string;
  value: number;
  metadata: string | null;
  ts: number;
  /** Whether the client chose ts; a retry without a timestamp must not conflict over receive time. */
  tsExplicit: boolean;
  id: string | null;
  /**
   * Its group key and unique value under its type's groupBy and unique field (dimensions.ts), derived at
   * capture from the parsed metadata; absent when the caller did not derive them (the store then does).
   */
  group?: string | null;
  unique?: string | null;
}

export interface EventContext {
  now: number;
  config: EventRules;
}

export type Checked = { ok: true; event: NewEvent } | { ok: false; errors: string[] };

/** What is wrong with a customer id (as capture checks it), or undefined when it is a valid one. */
export function customerIdProblem(customerId: unknown): string | undefined {
  if (customerId === undefined || customerId === null || customerId === '') return 'customerId is required';
  if (typeof customerId !== 'string') return 'customerId must be a string';
  if (customerId.length > LIMITS.customerIdMax) return `customerId must be at most ${LIMITS.customerIdMax} characters`;
  if (customerId.includes('\u0000')) return 'customerId must not contain the NUL character (U+0000)';
  if (!isWellFormed(customerId)) return 'customerId must not contain lone UTF-16 surrogates';
  return undefined;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function hasEventTypes(config: EventContext['config']): boolean {
  return config.eventTypes.length > 0;
}

export function isConfiguredType(config: EventContext['config'], t: string): boolean {
  return Object.hasOwn(config.events, t);
}

export const LONE_SURROGATE_TYPE = 'eventType must not contain lone UTF-16 surrogates';

export function invalidTypeMessage(config: EventContext['config'], t: string): string {
  const shown = t.length > 200 ? `${t.slice(0, 200)}…` : t;
  return `Invalid event type: ${shown}. Must be one of: ${config.eventTypes.join(', ')}`;
}

function depthOf(v: unknown, level: number, max: number): number {
  if (typeof v !== 'object' || v === null) return level - 1;
  if (level > max) return level;
  let deepest = level;
  for (const child of Object.values(v)) {
    const d = depthOf(child, level + 1, max);
    if (d > deepest) deepest = d;
    if (deepest > max) break;
  }
  return deepest;
}

/**
 * Checks the fields of one event (customerId, value, metadata, timestamp, id) and collects every
 * problem, in the reference's order. idOverride carries an Idempotency-Key header.
 */
export function checkEventFields(body: Record<string, unknown>, eventType: string, ctx: EventContext, idHeader?: string): Checked {
  const errors: string[] = [];
  const { customerId, value, metadata, timestamp } = body;

  const customerProblem = customerIdProblem(customerId);
  if (customerProblem !== undefined) errors.push(customerProblem);

  if (value === undefined || value === null) {
    errors.push('value is required');
  } else if (typeof value !== 'number' || !Number.isFinite(value)) {
    errors.push('value must be a finite number');
  } else {
    const limit = valueLimitError(value);
    if (limit !== null) errors.push(limit);
  }

  let metadataText: string | null = null;
  if (metadata !== undefined && metadata !== null) {
    if (!isPlainObject(metadata)) {
      errors.push('metadata must be an object if provided');
    } else if (depthOf(metadata, 1, LIMITS.metadataDepthMax) > LIMITS.metadataDepthMax) {
      errors.push(`metadata must not be nested more than ${LIMITS.metadataDepthMax} levels deep`);
    } else {
      metadataText = JSON.stringify(metadata);
      if (Buffer.byteLength(metadataText) > LIMITS.metadataBytesMax) {
        errors.push(`metadata must be at most ${LIMITS.metadataBytesMax} bytes when serialized`);
      }
      // Only text that may hold one is walked: the scan of the serialised text is the common cost.
      const surrogate = mayHoldLoneSurrogate(metadataText) ? metadataSurrogateError(metadata) : undefined;
      if (surrogate !== undefined) errors.push(surrogate);
      if (metadataText === '{}') metadataText = null;
    }
  }

  let ts = ctx.now;
  let tsExplicit = false;
  if (timestamp !== undefined && timestamp !== null) {
    const parsed = parseInstant(timestamp);
    if (Number.isNaN(parsed)) {
      errors.push('timestamp must be an ISO-8601 string with a UTC offset (e.g. 2026-01-12T10:00:00Z) or epoch milliseconds');
    } else if (ctx.now - parsed > ctx.config.maxEventAgeMs) {
      errors.push(`timestamp is older than the maximum event age of ${formatDuration(ctx.config.maxEventAgeMs)}`);
    } else if (parsed - ctx.now > ctx.config.maxFutureSkewMs) {
      errors.push(`timestamp is more than ${formatDuration(ctx.config.maxFutureSkewMs)} in the future`);
    } else if (!isSupportedInstant(parsed)) {
      // Only reachable with a very large maxEventAge or maxFutureSkew: queries accept the same range.
      errors.push(`timestamp must be ${SUPPORTED_INSTANTS}`);
    } else {
      ts = parsed;
      tsExplicit = true;
    }
  }

  let id: string | null = null;
  const bodyId = body.id;
  if (bodyId !== undefined && bodyId !== null) {
    if (typeof bodyId !== 'string' || bodyId.length < 1 || bodyId.length > LIMITS.idMax) {
      errors.push(`id must be a string of 1 to ${LIMITS.idMax} characters`);
    } else if (bodyId.includes('\u0000')) {
      errors.push('id must not contain the NUL character (U+0000)');
    } else if (!isWellFormed(bodyId)) {
      errors.push('id must not contain lone UTF-16 surrogates');
    } else {
      id = bodyId;
    }
  }
  if (idHeader !== undefined) {
    if (idHeader.length < 1 || idHeader.length > LIMITS.idMax) {
      errors.push(`Idempotency-Key must be 1 to ${LIMITS.idMax} characters`);
    } else if (id !== null && id !== idHeader) {
      errors.push('id and the Idempotency-Key header must match when both are given');
    } else {
      id = idHeader;
    }
  }

  if (errors.length > 0) return { ok: false, errors };
  const meter = Object.hasOwn(ctx.config.events, eventType) ? ctx.config.events[eventType] : undefined;
  const rule = meter && dimensionRuleOf(meter);
  const derived = rule ? deriveDimensions(metadataText === null ? null : (metadata as Record<string, unknown>), rule) : NOTHING_DERIVED;
  return {
    ok: true,
    event: {
      customerId: customerId as string,
      eventType,
      value: value as number,
      metadata: metadataText,
      ts,
      tsExplicit,
      id,
      group: derived.group,
      unique: derived.unique,
    },
  };
}

/** One element of a batch: its own eventType checks come first, then the field checks. */
export function checkBatchElement(el: unknown, ctx: EventContext): Checked {
  if (!isPlainObject(el)) return { ok: false, errors: ['Event must be an object'] };
  const t = el.eventType;
  let typeError: string | undefined;
  if (t === undefined || t === null || t === '') typeError = 'eventType is required';
  else if (typeof t !== 'string') typeError = 'eventType must be a string';
  // Configured types are ASCII, so only an unknown type can hold a lone surrogate.
  else if (!isConfiguredType(ctx.config, t)) typeError = isWellFormed(t) ? invalidTypeMessage(ctx.config, t) : LONE_SURROGATE_TYPE;
  const fields = checkEventFields(el, typeof t === 'string' ? t : '', ctx);
  if (typeError === undefined) return fields;
  return { ok: false, errors: [typeError, ...(fields.ok ? [] : fields.errors)] };
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (isPlainObject(v)) {
    // fromEntries defines keys, so a "__proto__" key stays data instead of setting the prototype.
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, canonical(v[k])]),
    );
  }
  return v;
}

/** Absent, null and `{}` metadata are the same content (events stored before normalisation hold `{}`). */
function sameMetadata(a: string | null, b: string | null): boolean {
  if (a === '{}') a = null;
  if (b === '{}') b = null;
  if (a === b) return true;
  if (a === null || b === null) return false;
  return JSON.stringify(canonical(JSON.parse(a))) === JSON.stringify(canonical(JSON.parse(b)));
}

/** Whether a repeat of an id carries the same content as what is stored (so it is a harmless retry). */
export function sameContent(stored: { value: number; metadata: string | null; ts: number }, incoming: NewEvent): boolean {
  if (stored.value !== incoming.value) return false;
  if (incoming.tsExplicit && stored.ts !== incoming.ts) return false;
  return sameMetadata(stored.metadata, incoming.metadata);
}
