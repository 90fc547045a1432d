// Owns the checks the client makes before sending: text the server would refuse because it holds a
// lone UTF-16 surrogate (ids, customer ids, event types, metadata keys and values), with the server's
// own messages. Must never import server code: these rules are copied from src/domain on purpose.

import { MeterhookValidationError } from './errors.js';

// With the u flag a class of surrogates matches only unpaired ones (a pair is one code point above U+FFFF).
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** Whether `s` has no lone UTF-16 surrogate (JSON would carry one, but no store can keep it). */
export function isWellFormed(s: string): boolean {
  const native = (s as unknown as { isWellFormed?: () => boolean }).isWellFormed;
  return typeof native === 'function' ? native.call(s) : !LONE_SURROGATE.test(s);
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function metadataProblem(v: unknown, path: string): string | undefined {
  if (typeof v === 'string') return isWellFormed(v) ? undefined : `metadata values must not contain lone UTF-16 surrogates (at ${path})`;
  if (typeof v !== 'object' || v === null) return undefined;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const p = metadataProblem(v[i], `${path}[${i}]`);
      if (p) return p;
    }
    return undefined;
  }
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!isWellFormed(k)) return `metadata keys must not contain lone UTF-16 surrogates (in ${path})`;
    const p = metadataProblem(o[k], IDENTIFIER.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`);
    if (p) return p;
  }
  return undefined;
}

const bad = (v: unknown): boolean => typeof v === 'string' && !isWellFormed(v);

/** The server's messages for the lone surrogates of one event, in its order; empty when there are none. */
export function eventTextProblems(e: { eventType?: unknown; customerId?: unknown; metadata?: unknown; id?: unknown }): string[] {
  const problems: string[] = [];
  if (bad(e.eventType)) problems.push('eventType must not contain lone UTF-16 surrogates');
  if (bad(e.customerId)) problems.push('customerId must not contain lone UTF-16 surrogates');
  const m = e.metadata === undefined || e.metadata === null ? undefined : metadataProblem(e.metadata, 'metadata');
  if (m) problems.push(m);
  if (bad(e.id)) problems.push('id must not contain lone UTF-16 surrogates');
  return problems;
}

/** Throws MeterhookValidationError (422, as the server would answer) when the event holds a lone surrogate. */
export function assertEventText(e: Parameters<typeof eventTextProblems>[0]): void {
  const problems = eventTextProblems(e);
  if (problems.length > 0) throw MeterhookValidationError.ofEvent(problems);
}

/**
 * Throws MeterhookValidationError (400, as the server would answer) for a path or query value with a
 * lone surrogate: a URL cannot carry one (URLSearchParams would send U+FFFD, and match another id).
 */
export function assertParamText(name: string, v: unknown): void {
  if (bad(v)) throw MeterhookValidationError.ofParam(`${name} must not contain lone UTF-16 surrogates`);
}
