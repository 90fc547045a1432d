// Owns the parsing of the URL query string: `+` as a space, percent-escapes decoded as UTF-8, a
// repeated key as an array. Must never pass on a value whose escapes do not decode (such as an
// encoded lone UTF-16 surrogate, %ED%A0%80) as literal text: it would silently match nothing. A
// parameter the route does not read stays ignored, as any unknown parameter is.

import { InvalidQuery } from '../domain/errors.js';

/** Names of the parameters whose escapes did not decode, kept on the parsed object (never enumerated). */
const UNDECODABLE = Symbol('undecodable query parameters');

type Query = Record<string, string | string[]> & { [UNDECODABLE]?: string[] };

function decode(raw: string): string | null {
  const s = raw.includes('+') ? raw.replaceAll('+', ' ') : raw;
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}

export function parseQueryString(input: string): Record<string, string | string[]> {
  // No prototype: a "__proto__" or "constructor" parameter stays data.
  const out = Object.create(null) as Query;
  if (input.length === 0) return out;
  for (const pair of input.split('&')) {
    if (pair.length === 0) continue;
    const eq = pair.indexOf('=');
    const rawKey = eq === -1 ? pair : pair.slice(0, eq);
    const key = decode(rawKey);
    const value = eq === -1 ? '' : decode(pair.slice(eq + 1));
    if (key === null || value === null) {
      (out[UNDECODABLE] ??= []).push(key ?? rawKey);
      continue;
    }
    const current = out[key];
    if (current === undefined) out[key] = value;
    else if (Array.isArray(current)) current.push(value);
    else out[key] = [current, value];
  }
  return out;
}

/** The parameters a route reads: its querystring schema's properties, and names its patternProperties match. */
export interface DeclaredQuery {
  properties?: Record<string, unknown>;
  patternProperties?: Record<string, unknown>;
}

/**
 * Throws a 400 when a parameter the route declares (`declared`: its querystring schema) had escapes
 * that do not decode as UTF-8.
 */
export function assertDecodedQuery(query: unknown, declared: DeclaredQuery | undefined): void {
  const bad = (query as Query | undefined)?.[UNDECODABLE];
  if (!bad || bad.length === 0 || !declared) return;
  const patterns = Object.keys(declared.patternProperties ?? {}).map((p) => new RegExp(p, 'u'));
  const reads = (name: string) => Object.hasOwn(declared.properties ?? {}, name) || patterns.some((re) => re.test(name));
  const read = bad.filter(reads);
  if (read.length === 0) return;
  const names = [...new Set(read)].join(', ');
  throw new InvalidQuery(
    `Query parameter ${names} is not valid percent-encoded UTF-8 (a lone UTF-16 surrogate, for example, cannot be encoded)`,
  );
}
