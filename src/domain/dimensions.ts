// Owns what a dimension is: the string form of a metadata value, the group key of an event under a type's
// `groupBy`, the stored form of a `unique` field's value, and the limits on them.
// Must never do I/O or depend on a store: capture, the folds and the filters all call these same functions.

import { createHash } from 'node:crypto';

/** At most this many metadata keys in one `groupBy`. */
export const MAX_GROUP_BY_KEYS = 3;
/** Longest metadata key a `groupBy`, a `unique` field or a filter may name. */
export const MAX_DIMENSION_KEY_LENGTH = 128;
/** Most distinct groups of one customer, event type and hour; later new groups of that hour fold into the overflow group. */
export const DEFAULT_MAX_GROUPS_PER_HOUR = 1000;
export const MAX_GROUPS_PER_HOUR_LIMIT = 100_000;
/** The stored group key of the overflow group: never a JSON object, so never a real group's key. */
export const OVERFLOW_GROUP = '*';
/** The stored group key of a type's whole set of unique values, across its groups. */
export const ALL_GROUPS = '';
/** Unique values longer than this are stored as their SHA-256, so a stored value is at most 64 characters. */
export const MAX_STORED_UNIQUE_LENGTH = 64;

/** What a type derives from an event's metadata beside its value. */
export interface DimensionRule {
  /** Metadata keys whose values split the type's totals into groups, or null. */
  groupBy: readonly string[] | null;
  /** The metadata key whose distinct values a `unique` type counts, or null. */
  uniqueField: string | null;
}

/**
 * The string form of a metadata value as a dimension: a string as it is, a number as its JSON text, a
 * boolean as "true" or "false". A missing key, null, an object or an array is null: a group of its own.
 */
export function dimensionValue(v: unknown): string | null {
  switch (typeof v) {
    case 'string':
      return v;
    case 'number':
      return Number.isFinite(v) ? JSON.stringify(v) : null;
    case 'boolean':
      return v ? 'true' : 'false';
    default:
      return null;
  }
}

const own = (metadata: Record<string, unknown> | null, key: string): unknown =>
  metadata !== null && Object.hasOwn(metadata, key) ? metadata[key] : undefined;

/**
 * The stored group key of an event: the JSON object of its dimension values in `groupBy` order, such as
 * `{"model":"gpt-4o","region":null}`. Equal keys are equal groups; the text is the group's identity.
 * Keys of short values are interned per `groupBy` (KEY_MEMO_LIMIT each): capture derives one per event, and
 * the events of a slice then share a few strings instead of holding one each until the slice commits.
 */
export function groupKey(metadata: Record<string, unknown> | null, groupBy: readonly string[]): string {
  let memo = keyMemos.get(groupBy);
  if (!memo) keyMemos.set(groupBy, (memo = { size: 0, root: new Map() }));
  // A long value anywhere: not interned, and no node of the memo made for it.
  for (let i = 0; i < groupBy.length; i++) {
    const v = dimensionValue(own(metadata, groupBy[i]!));
    if (v !== null && v.length > MEMO_VALUE_LENGTH) return buildGroupKey(metadata, groupBy);
  }
  let level: Map<string | null, unknown> = memo.root;
  for (let i = 0; i < groupBy.length; i++) {
    const v = dimensionValue(own(metadata, groupBy[i]!));
    const last = i === groupBy.length - 1;
    const next = level.get(v);
    if (next !== undefined) {
      if (last) return next as string;
      level = next as Map<string | null, unknown>;
      continue;
    }
    if (memo.size >= KEY_MEMO_LIMIT) {
      memo.root.clear();
      memo.size = 0;
      return buildGroupKey(metadata, groupBy);
    }
    if (last) {
      const key = buildGroupKey(metadata, groupBy);
      level.set(v, key);
      memo.size++;
      return key;
    }
    const child = new Map<string | null, unknown>();
    level.set(v, child);
    level = child;
  }
  return buildGroupKey(metadata, groupBy);
}

/** Interned keys per groupBy array (the config's own, so a reload starts afresh): a tree by dimension value. */
const keyMemos = new WeakMap<readonly string[], { size: number; root: Map<string | null, unknown> }>();
/** Most interned keys per groupBy; past it the memo starts again, so a high-cardinality dimension costs no memory. */
export const KEY_MEMO_LIMIT = 4096;
/** Values longer than this are never interned: the memo holds at most KEY_MEMO_LIMIT keys of short values. */
const MEMO_VALUE_LENGTH = 64;

function buildGroupKey(metadata: Record<string, unknown> | null, groupBy: readonly string[]): string {
  // Built as text: the same JSON as the object, with the keys in groupBy order.
  let out = '{';
  for (let i = 0; i < groupBy.length; i++) {
    const k = groupBy[i]!;
    const v = dimensionValue(own(metadata, k));
    out += `${i === 0 ? '' : ','}${JSON.stringify(k)}:${v === null ? 'null' : JSON.stringify(v)}`;
  }
  return `${out}}`;
}

/** A group key's dimensions, or null for the overflow group. */
export function dimensionsOf(key: string): Record<string, string | null> | null {
  if (key === OVERFLOW_GROUP) return null;
  return JSON.parse(key) as Record<string, string | null>;
}

/**
 * The stored form of a `unique` value, or null when the event has none (missing, null, object, array).
 * Its JSON string, so any text (NUL included) stores in both databases; past MAX_STORED_UNIQUE_LENGTH,
 * `#` and the base64url SHA-256 of the value, which no JSON string starts with.
 */
export function uniqueToken(metadata: Record<string, unknown> | null, field: string): string | null {
  const v = dimensionValue(own(metadata, field));
  if (v === null) return null;
  const json = JSON.stringify(v);
  if (json.length <= MAX_STORED_UNIQUE_LENGTH) return json;
  return `#${createHash('sha256').update(v, 'utf8').digest('base64url')}`;
}

/** What an event derives under its type's rule: its group key and its unique value (null when none). */
export interface Derived {
  group: string | null;
  unique: string | null;
}

export const NOTHING_DERIVED: Derived = Object.freeze({ group: null, unique: null });

export function deriveDimensions(metadata: Record<string, unknown> | null, rule: DimensionRule | undefined): Derived {
  if (!rule) return NOTHING_DERIVED;
  return {
    group: rule.groupBy ? groupKey(metadata, rule.groupBy) : null,
    unique: rule.uniqueField ? uniqueToken(metadata, rule.uniqueField) : null,
  };
}

/** The same from stored metadata text (a replay), parsing it only when the type has a rule. */
export function deriveFromText(metadata: string | null, rule: DimensionRule | undefined): Derived {
  if (!rule) return NOTHING_DERIVED;
  const parsed = metadata === null ? null : (JSON.parse(metadata) as unknown);
  const obj = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : null;
  return deriveDimensions(obj, rule);
}

/** Orders group keys for output: by each dimension in `groupBy` order, null first; the overflow group last. */
export function compareGroupKeys(a: string, b: string): number {
  return compareParsedGroups(parsedGroup(a), parsedGroup(b));
}

/** A group key with its dimension values parsed once, for sorting many keys (sortByGroupKey). */
export interface ParsedGroup {
  key: string;
  /** The dimensions of the key, null for the overflow group. */
  dimensions: Record<string, string | null> | null;
  values: ReadonlyArray<string | null>;
}

/** Parsed keys by key text: a period's answer sorts the same few hundred keys each time. Frozen, so shared safely. */
const parsedMemo = new Map<string, ParsedGroup>();
/** Most keys kept parsed; past it the memo starts again, so high cardinality costs no memory. */
const PARSED_MEMO_LIMIT = 4096;

export function parsedGroup(key: string): ParsedGroup {
  const known = parsedMemo.get(key);
  if (known) return known;
  const dimensions = dimensionsOf(key);
  const parsed: ParsedGroup = Object.freeze({
    key,
    dimensions: dimensions && Object.freeze(dimensions),
    values: Object.freeze(dimensions === null ? [] : Object.values(dimensions)),
  });
  if (key.length <= MEMO_VALUE_LENGTH * 3 + 64) {
    if (parsedMemo.size >= PARSED_MEMO_LIMIT) parsedMemo.clear();
    parsedMemo.set(key, parsed);
  }
  return parsed;
}

/** Items in compareGroupKeys order of their keys, each with its parsed key: each key is parsed once. */
export function sortByGroupKey<T>(items: readonly T[], keyOf: (item: T) => string): Array<{ item: T; group: ParsedGroup }> {
  return items.map((item) => ({ item, group: parsedGroup(keyOf(item)) })).sort((x, y) => compareParsedGroups(x.group, y.group));
}

function compareParsedGroups(a: ParsedGroup, b: ParsedGroup): number {
  if (a.key === b.key) return 0;
  if (a.dimensions === null) return 1;
  if (b.dimensions === null) return -1;
  const da = a.values;
  const db = b.values;
  for (let i = 0; i < Math.max(da.length, db.length); i++) {
    const x = da[i] ?? null;
    const y = db[i] ?? null;
    if (x === y) continue;
    if (x === null) return -1;
    if (y === null) return 1;
    return x < y ? -1 : 1;
  }
  return a.key < b.key ? -1 : 1;
}
