// Owns the metadata filter of an event listing: its query form `metadata.<key>=<value>`, the limits on
// it, and whether a stored event matches it. Must never do I/O, nor compare a value by anything but its
// dimensionValue: a filter selects exactly the events that a `groupBy` on the same key puts in that group.

import { dimensionValue, MAX_DIMENSION_KEY_LENGTH } from './dimensions.js';
import { InvalidQuery } from './errors.js';
import { isWellFormed } from './text.js';

/** A query parameter whose name starts with this is a metadata filter; the rest of the name is the key. */
export const METADATA_FILTER_PREFIX = 'metadata.';
/** Most metadata filters one listing may combine. */
export const MAX_METADATA_FILTERS = 10;
/** Longest value a metadata filter may ask for, in UTF-16 code units. */
export const MAX_METADATA_FILTER_VALUE_LENGTH = 1024;

/** Metadata keys and the string form each must have, all at once (AND); at most one value per key. */
export type MetadataFilter = ReadonlyArray<readonly [key: string, value: string]>;

function textProblem(what: string, s: string): string | undefined {
  if (s.includes('\u0000')) return `${what} must not contain NUL`;
  if (!isWellFormed(s)) return `${what} must not contain lone UTF-16 surrogates`;
  return undefined;
}

function filterOf(key: string, values: string | readonly string[]): readonly [string, string] {
  const name = `${METADATA_FILTER_PREFIX}${key}`;
  if (key.length === 0) throw new InvalidQuery(`A metadata filter needs a key: write ${METADATA_FILTER_PREFIX}<key>=<value> (got ${name})`);
  if (key.length > MAX_DIMENSION_KEY_LENGTH) {
    throw new InvalidQuery(`The key of a metadata filter must be at most ${MAX_DIMENSION_KEY_LENGTH} characters (got ${key.length})`);
  }
  const keyProblem = textProblem('The key of a metadata filter', key);
  if (keyProblem) throw new InvalidQuery(keyProblem);
  if (typeof values !== 'string') {
    throw new InvalidQuery(`${name} is given ${values.length} times: a metadata filter takes one value per key`);
  }
  if (values.length > MAX_METADATA_FILTER_VALUE_LENGTH) {
    throw new InvalidQuery(`${name} must be at most ${MAX_METADATA_FILTER_VALUE_LENGTH} characters (got ${values.length})`);
  }
  const valueProblem = textProblem(name, values);
  if (valueProblem) throw new InvalidQuery(valueProblem);
  return [key, values];
}

/**
 * The metadata filter of a parsed query string: every parameter named `metadata.<key>`, in query order.
 * A bare `metadata` or a `metadata[<key>]` parameter is refused rather than ignored, since ignoring it
 * would answer with unfiltered events. Throws InvalidQuery for an empty or over-long key, a key given
 * twice, an over-long value, NUL or a lone surrogate, or more than MAX_METADATA_FILTERS filters.
 */
export function metadataFilterOf(query: Readonly<Record<string, unknown>>): MetadataFilter {
  const out: Array<readonly [string, string]> = [];
  for (const [name, values] of Object.entries(query)) {
    if (name === 'metadata' || name.startsWith('metadata[')) {
      throw new InvalidQuery(
        `Filter on metadata with ${METADATA_FILTER_PREFIX}<key>=<value> (got a parameter named ${JSON.stringify(name)})`,
      );
    }
    if (!name.startsWith(METADATA_FILTER_PREFIX)) continue;
    out.push(filterOf(name.slice(METADATA_FILTER_PREFIX.length), values as string | string[]));
  }
  if (out.length > MAX_METADATA_FILTERS) {
    throw new InvalidQuery(`At most ${MAX_METADATA_FILTERS} metadata filters may be combined (got ${out.length})`);
  }
  return out;
}

/**
 * Whether stored metadata (its JSON text, or null for none) has, at every filtered key, a value whose
 * dimensionValue is the filter's value. A missing key, null, an object or an array matches no value.
 */
export function matchesMetadata(metadata: string | null, filter: MetadataFilter): boolean {
  if (filter.length === 0) return true;
  if (metadata === null) return false;
  const parsed = JSON.parse(metadata) as unknown;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return false;
  const obj = parsed as Record<string, unknown>;
  for (const [key, value] of filter) {
    if (!Object.hasOwn(obj, key) || dimensionValue(obj[key]) !== value) return false;
  }
  return true;
}
