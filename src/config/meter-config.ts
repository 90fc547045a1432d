// Owns what a valid meter entry of `events` is beyond its operator: `groupBy` keys and a `unique` field, with
// messages that name the rule each bad value breaks. Must never do I/O or accept a partial meter silently.

import { MAX_DIMENSION_KEY_LENGTH, MAX_GROUP_BY_KEYS } from '../domain/dimensions.js';
import type { Operator } from '../domain/operators.js';
import { isWellFormed } from '../domain/text.js';
import type { EventMeter } from '../domain/rules.js';
import { describeValue } from './schema.js';

const keyProblem = (k: unknown): string | undefined => {
  if (typeof k !== 'string' || k === '') return `must be a non-empty metadata key (got ${describeValue(k)})`;
  if (k.length > MAX_DIMENSION_KEY_LENGTH) return `must be at most ${MAX_DIMENSION_KEY_LENGTH} characters (got ${k.length})`;
  if (!isWellFormed(k) || k.includes('\u0000')) return 'must not contain NUL or lone UTF-16 surrogates';
  return undefined;
};

/**
 * The meter of one `events` entry whose `op` is known. `fail(path, text)` reports a problem at
 * `events["<type>"].<path>`; the meter returned then holds only what was valid (the config is refused anyway).
 */
export function parseMeter(spec: Record<string, unknown>, fail: (path: string[], text: string) => void): EventMeter {
  const op = spec.op as Operator;
  const meter: EventMeter = { op };
  if (spec.groupBy !== undefined) {
    const g = spec.groupBy;
    const shape = `must be an array of 1 to ${MAX_GROUP_BY_KEYS} distinct metadata keys, such as ["model", "region"]`;
    if (!Array.isArray(g) || g.length < 1 || g.length > MAX_GROUP_BY_KEYS) {
      fail(['groupBy'], `${shape} (got ${Array.isArray(g) ? `${g.length} keys` : describeValue(g)})`);
    } else {
      let ok = true;
      g.forEach((k: unknown, i) => {
        const problem = keyProblem(k) ?? (g.indexOf(k) !== i ? `duplicate of groupBy[${g.indexOf(k)}] (${JSON.stringify(k)})` : undefined);
        if (problem !== undefined) {
          ok = false;
          fail(['groupBy', String(i)], problem);
        }
      });
      if (ok) meter.groupBy = Object.freeze([...(g as string[])]);
    }
  }
  if (op === 'unique') {
    const problem =
      spec.field === undefined
        ? 'is required with op "unique": the metadata key whose distinct values are counted'
        : keyProblem(spec.field);
    if (problem !== undefined) fail(['field'], problem);
    else meter.field = spec.field as string;
  } else if (spec.field !== undefined) {
    fail(['field'], `is only for op "unique" (this meter's op is "${op}")`);
  }
  return meter;
}
