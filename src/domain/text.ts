// Owns the well-formedness rules for text meterhook stores: a lone UTF-16 surrogate has no UTF-8
// encoding, so a store would replace it with U+FFFD and two different ids would become one (or a
// retry would no longer match). Must never allocate or walk anything on the common path: these
// checks run for every event.

interface WellFormedString {
  isWellFormed(): boolean;
}

/** Whether `s` has no lone UTF-16 surrogate (String.prototype.isWellFormed, Node 20+). */
export function isWellFormed(s: string): boolean {
  return (s as unknown as WellFormedString).isWellFormed();
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function childPath(path: string, key: string): string {
  return IDENTIFIER.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

/** Where the first lone surrogate of a JSON value is: in an object key (path of that object) or a string. */
export interface LoneSurrogate {
  where: 'key' | 'value';
  path: string;
}

export function findLoneSurrogate(v: unknown, path: string): LoneSurrogate | undefined {
  if (typeof v === 'string') return isWellFormed(v) ? undefined : { where: 'value', path };
  if (typeof v !== 'object' || v === null) return undefined;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const found = findLoneSurrogate(v[i], `${path}[${i}]`);
      if (found) return found;
    }
    return undefined;
  }
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!isWellFormed(k)) return { where: 'key', path };
    // Keys with lone surrogates are reported above, so the path below is printable.
    const found = findLoneSurrogate(o[k], childPath(path, k));
    if (found) return found;
  }
  return undefined;
}

/**
 * Whether JSON text produced by JSON.stringify may hold a lone surrogate: JSON.stringify writes each
 * one as a lowercase `\udXXX` escape and every other character either raw or as `\u00XX`, so text
 * without `\ud` has none. A hit is only a candidate (a literal backslash before "ud" also matches);
 * findLoneSurrogate on the value decides.
 */
export function mayHoldLoneSurrogate(jsonText: string): boolean {
  return jsonText.includes('\\ud');
}

/** The message for the first lone surrogate of a metadata object, or undefined when it has none. */
export function metadataSurrogateError(metadata: unknown): string | undefined {
  const found = findLoneSurrogate(metadata, 'metadata');
  if (!found) return undefined;
  return found.where === 'key'
    ? `metadata keys must not contain lone UTF-16 surrogates (in ${found.path})`
    : `metadata values must not contain lone UTF-16 surrogates (at ${found.path})`;
}
