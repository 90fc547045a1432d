// Owns the one mapping of a metering vendor's usage event (Stripe, OpenMeter, Lago, Orb, Metronome) onto
// meterhook's capture input: the value read from the type's valueProperty, the other properties as metadata,
// vendor timestamps as instants, and capture's messages spoken in the vendor's field names.
// Must never check what capture checks (customer, type, id, metadata limits, the time window): event-rules.ts
// does that for every surface alike, so a vendor's event is valid exactly when the same /usagebatch event is.

import type { Operator } from './operators.js';
import { parseIsoInstant } from './timestamps.js';

/** What the mapping reads of the configuration: each type's operator and the property carrying its value. */
export interface VendorRules {
  events: Record<string, { op: Operator }>;
  valueProperties: Record<string, string>;
}

/** A vendor's names for capture's fields, so a message says `payload[stripe_customer_id]`, not `customerId`. */
export interface VendorFieldNames {
  eventType: string;
  customerId: string;
  id: string;
  timestamp: string;
  /** The name of the property bag, e.g. `properties`, `payload` or `data`. */
  bag: string;
  /** How a property inside the bag is named, e.g. `payload[value]` or `properties.tokens`. */
  property: (name: string) => string;
}

/** A vendor event, its fields picked out of the vendor's body as sent (nothing checked yet). */
export interface VendorEvent {
  eventType: unknown;
  customerId: unknown;
  id: unknown;
  /** Epoch milliseconds; undefined when absent (capture uses the receive time); NaN when it did not parse. */
  timestamp: number | undefined;
  /** Says what the vendor's timestamp must be, for the message when it did not parse. */
  timestampRule: string;
  /** The property bag: the value property is read from it, the rest become metadata. */
  properties: unknown;
  /** Property names that identify rather than describe (Stripe's stripe_customer_id): kept out of metadata. */
  consumed?: readonly string[];
}

/** A /usagebatch element built from a vendor event, and the problems only the vendor's shape can have. */
export interface MappedEvent {
  element: Record<string, unknown>;
  errors: string[];
  /** The vendor's name of the value, for capture's messages about it (its limits). */
  valueName: string;
}

const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** A number, or a decimal number written as text (Stripe's payload values are strings); NaN otherwise. */
export function numericValue(v: unknown): number {
  if (typeof v === 'number') return Number.isFinite(v) ? v : Number.NaN;
  if (typeof v === 'string' && DECIMAL.test(v.trim())) {
    const n = Number(v.trim());
    return Number.isFinite(n) ? n : Number.NaN;
  }
  return Number.NaN;
}

/** Unix seconds (a number or digits, with an optional fraction as Lago allows) as epoch ms; NaN when not. */
export function unixSecondsToMillis(v: unknown): number {
  const s = typeof v === 'number' ? v : typeof v === 'string' && /^\d+(?:\.\d+)?$/.test(v.trim()) ? Number(v.trim()) : Number.NaN;
  if (!Number.isFinite(s) || s < 0) return Number.NaN;
  return Math.round(s * 1000);
}

export const RFC3339_RULE = 'must be an RFC 3339 date-time such as 2026-01-12T10:00:00Z';

/** A vendor's RFC 3339 timestamp as epoch ms: undefined when absent (receive time), NaN when it does not parse. */
export function rfc3339ToMillis(v: unknown): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  return typeof v === 'string' ? parseIsoInstant(v) : Number.NaN;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Maps one vendor event. The value is the type's valueProperty (default "value"), a number or numeric
 * text; a count or unique type reads none (each event counts 1) and keeps every property as metadata. An unknown
 * type is left for capture to refuse with its usual message.
 */
export function toCaptureInput(ev: VendorEvent, rules: VendorRules, names: VendorFieldNames): MappedEvent {
  const errors: string[] = [];
  const props = ev.properties;
  if (props !== undefined && props !== null && !isObject(props)) errors.push(`${names.bag} must be an object`);
  const bag = isObject(props) ? props : {};
  const type = typeof ev.eventType === 'string' ? ev.eventType : undefined;
  const op = type !== undefined && Object.hasOwn(rules.events, type) ? rules.events[type]!.op : undefined;
  // count and unique read no value: each event counts 1, and a unique meter counts its field's values.
  const valueProperty = op !== undefined && op !== 'count' && op !== 'unique' ? rules.valueProperties[type!] : undefined;

  let value: number | undefined = op === undefined ? 0 : 1;
  if (valueProperty !== undefined) {
    const raw = Object.hasOwn(bag, valueProperty) ? bag[valueProperty] : undefined;
    const n = numericValue(raw);
    value = Number.isNaN(n) ? undefined : n;
    if (raw === undefined || raw === null || raw === '') errors.push(`${names.property(valueProperty)} is required`);
    else if (value === undefined) errors.push(`${names.property(valueProperty)} must be a number (got ${describe(raw)})`);
  }
  const skip = new Set(ev.consumed ?? []);
  if (valueProperty !== undefined) skip.add(valueProperty);
  const metadata: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(bag)) if (!skip.has(k)) Object.defineProperty(metadata, k, { value: v, enumerable: true });
  if (ev.timestamp !== undefined && Number.isNaN(ev.timestamp)) errors.push(`${names.timestamp} ${ev.timestampRule}`);

  const element: Record<string, unknown> = {
    eventType: ev.eventType,
    customerId: ev.customerId,
    value: value ?? 0,
    metadata,
  };
  if (ev.timestamp !== undefined && !Number.isNaN(ev.timestamp)) element.timestamp = ev.timestamp;
  if (ev.id !== undefined && ev.id !== null) element.id = ev.id;
  return { element, errors, valueName: names.property(valueProperty ?? 'value') };
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (Array.isArray(v)) return 'an array';
  if (v === null || typeof v !== 'object') return String(v);
  return 'an object';
}

const CAPTURE_FIELD = /^(eventType|customerId|timestamp|id|metadata|value)\b/;

/** A capture message in the vendor's field names: "customerId is required" becomes "subject is required". */
export function inVendorTerms(message: string, names: VendorFieldNames, valueName: string): string {
  const m = CAPTURE_FIELD.exec(message);
  if (!m) return message;
  const field = m[1] as 'eventType' | 'customerId' | 'timestamp' | 'id' | 'metadata' | 'value';
  const name = field === 'metadata' ? names.bag : field === 'value' ? valueName : names[field];
  return name + message.slice(field.length);
}
