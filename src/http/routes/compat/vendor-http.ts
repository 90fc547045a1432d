// Owns what the drop-in vendor surfaces share over HTTP: turning any failure (auth, framing, validation,
// conflicts, overload, store faults) into one classified Failure that each vendor renders in its own error
// shape, the rejected-event metric, and the admission of their bodies. Must never decide a status by
// anything but the error's code (http/errors.ts), nor answer bad input with a 500.

import type { FastifyReply, FastifyRequest } from 'fastify';
import { BatchValidationFailed, DomainError, EventIdConflict, type ErrorCode } from '../../../domain/errors.js';
import {
  toCaptureInput,
  type MappedEvent,
  type VendorEvent,
  type VendorFieldNames,
  type VendorRules,
} from '../../../domain/vendor-events.js';
import type { AppDeps } from '../../app-types.js';
import { HttpError, mapError } from '../../errors.js';
import { assertCapturableCustomers } from '../../restriction.js';

/** The mapped events, once a customer-restricted key is known to send only for its own customer (403 otherwise). */
export function confined(req: FastifyRequest, mapped: MappedEvent[]): MappedEvent[] {
  assertCapturableCustomers(
    req,
    mapped.map((m) => m.element.customerId),
  );
  return mapped;
}

/** A failure as every vendor surface sees it, before it is put in the vendor's words and shape. */
export interface Failure {
  status: number;
  code: ErrorCode;
  message: string;
  /** Per-event problems of a refused batch (validation), by index in the request. */
  invalid: Array<{ index: number; errors: string[] }>;
  /** Indexes (in the checked events) and ids used before with other content. */
  conflicts: Array<{ index: number; id: string }>;
  retryAfterSeconds?: number;
}

export interface Rendered {
  body: unknown;
  /** Default application/json (the route's serializer); a type given here is sent exactly as given. */
  contentType?: string;
  /** Default the failure's status. */
  status?: number;
  headers?: Record<string, string>;
}

/** Renders a failure; `cause` is the error as thrown, for a vendor that tells some apart (an expired session). */
export type Renderer = (f: Failure, req: FastifyRequest, cause: unknown) => Rendered;

/** How many events a request carried, for the rejected-events metric (vendor bodies differ). */
export type EventCount = (body: unknown) => number;

/** The error handler of one vendor's routes: classify, count, log a 500, render in the vendor's shape. */
export function vendorErrorHandler(deps: AppDeps, render: Renderer, countEvents: EventCount) {
  return (err: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply => {
    const classified = err instanceof DomainError || err instanceof HttpError ? err : (deps.ctx.store.classifyError(err) ?? err);
    const m = mapError(req, classified);
    const failure: Failure = {
      status: m.status,
      code: m.code,
      message: typeof m.body.error === 'string' ? m.body.error : 'Request failed',
      invalid: classified instanceof BatchValidationFailed ? classified.validationErrors : [],
      conflicts: classified instanceof EventIdConflict ? classified.conflicts : [],
    };
    const retry = m.headers?.['retry-after'];
    if (retry !== undefined) failure.retryAfterSeconds = Number(retry);
    const metrics = deps.ctx.metrics;
    if (metrics && m.code !== 'unauthorized') metrics.eventsRejected.inc({ reason: m.code }, Math.max(1, countEvents(req.body)));
    if (m.status >= 500 && !(classified instanceof DomainError)) req.log.error({ err }, 'unhandled error');
    if (classified instanceof DomainError && classified.code === 'store_unavailable')
      req.log.warn({ err: classified.cause ?? err }, m.body.error);
    const out = render(failure, req, classified);
    if (m.headers) void reply.headers(m.headers);
    if (out.headers) void reply.headers(out.headers);
    void reply.code(out.status ?? m.status);
    // Fastify adds "; charset=utf-8" to JSON text; a client that compares the type exactly
    // (OpenMeter's SDK wants application/problem+json) is sent the JSON as bytes, which keep the type as set.
    if (out.contentType !== undefined) return reply.type(out.contentType).send(Buffer.from(JSON.stringify(out.body)));
    return reply.send(out.body);
  };
}

/** The problems of a refused batch as lines, "events[3]: subject is required". */
export function problemLines(f: Failure, listName: string): string[] {
  return f.invalid.flatMap((p) => p.errors.map((e) => `${listName}[${p.index}]: ${e}`));
}

/** A failure's words: the per-event problems when there are some, the message otherwise. */
export function failureText(f: Failure, listName: string, single: boolean): string {
  if (f.invalid.length === 0) return f.message;
  if (single) return f.invalid.flatMap((p) => p.errors).join('; ');
  return problemLines(f, listName).join('; ');
}

export function arrayLength(v: unknown): number {
  return Array.isArray(v) ? v.length : 1;
}

/** The body schemas document the vendor's wire format; the vendor mapping and capture's rules do the checking. */
export const documentOnly = () => () => true;

/** Body limits of the vendor surfaces: a 100-event batch fits in 1 MiB; the open-ended ones match /usagebatch. */
export const SMALL_BATCH_BODY_LIMIT = 1024 * 1024;
export const LARGE_BATCH_BODY_LIMIT = 16 * 1024 * 1024;

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The field names of a vendor whose events carry a `properties` bag (Lago, Orb, Metronome). */
export function withPropertiesBag(names: Pick<VendorFieldNames, 'eventType' | 'customerId' | 'id' | 'timestamp'>): VendorFieldNames {
  return { ...names, bag: 'properties', property: (p) => `properties.${p}` };
}

/** A vendor's event picked out of its body, with the problems only its own shape can have. */
export type VendorPick = (raw: unknown) => { event: VendorEvent; errors: string[] };

/** Maps a vendor's raw events through the shared mapping, its own problems listed first. */
export function mapEvents(list: unknown[], pick: VendorPick, rules: VendorRules, names: VendorFieldNames): MappedEvent[] {
  return list.map((raw) => {
    const { event, errors } = pick(raw);
    const m = toCaptureInput(event, rules, names);
    m.errors.unshift(...errors);
    return m;
  });
}

/** Stainless clients (Orb, Metronome) retry 408, 409, 429 and 5xx unless told not to: a refused request is not retried. */
export function noRetryUnlessTransient(status: number): Record<string, string> {
  return status < 500 && status !== 429 ? { 'x-should-retry': 'false' } : {};
}

/** The vendor's required fields that capture leaves optional (an id, a timestamp): "transaction_id is required". */
export function missingFields(ev: Record<string, unknown>, fields: readonly string[]): string[] {
  return fields.filter((f) => ev[f] === undefined || ev[f] === null || ev[f] === '').map((f) => `${f} is required`);
}
