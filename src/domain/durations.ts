// Owns the human duration syntax used in config ("5m", "1h30m", "250ms"): parsing to and formatting from integer milliseconds.
// Must never do I/O, read the clock, or return a value that is not a non-negative safe integer.

export class DurationError extends Error {
  override readonly name = 'DurationError';
}

// Ordered largest first so formatting is greedy; parsing looks units up by name.
const UNITS = [
  ['w', 604_800_000n],
  ['d', 86_400_000n],
  ['h', 3_600_000n],
  ['m', 60_000n],
  ['s', 1_000n],
  ['ms', 1n],
] as const;

const UNIT_MS: ReadonlyMap<string, bigint> = new Map(UNITS);

// `ms` must precede `m` and `s` in the alternation, otherwise "5ms" would be read as "5m" followed by junk.
const PART = /(\d+)(?:\.(\d+))?(ms|s|m|h|d|w)/y;

const HINT = 'use a number followed by ms, s, m, h, d or w, e.g. "5m"';

function invalid(s: unknown, reason: string = HINT): DurationError {
  const shown = typeof s === 'string' ? JSON.stringify(s) : String(s);
  return new DurationError(`invalid duration ${shown}: ${reason}`);
}

/**
 * Milliseconds denoted by `s`, e.g. "1h30m" → 5400000.
 * Arithmetic is done in BigInt on the decimal digits, because "1.1s" in floating point is 1100.0000000000002 ms.
 */
export function parseDuration(s: string): number {
  if (typeof s !== 'string' || s.length === 0) throw invalid(s);
  let total = 0n;
  let pos = 0;
  while (pos < s.length) {
    PART.lastIndex = pos;
    const m = PART.exec(s);
    if (m === null) throw invalid(s);
    const [, whole = '', frac = '', unit = ''] = m;
    const unitMs = UNIT_MS.get(unit);
    if (unitMs === undefined) throw invalid(s);
    const scale = 10n ** BigInt(frac.length);
    const scaled = BigInt(whole + frac) * unitMs;
    if (scaled % scale !== 0n) throw invalid(s, 'must be a whole number of milliseconds');
    total += scaled / scale;
    pos = PART.lastIndex;
  }
  if (total > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid(s, 'too large');
  return Number(total);
}

/** Compact form of a millisecond count, largest units first: 5400000 → "1h30m", 0 → "0s". Inverse of parseDuration. */
export function formatDuration(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0) {
    throw new RangeError(`formatDuration: expected a non-negative safe integer of milliseconds (got ${String(ms)})`);
  }
  if (ms === 0) return '0s';
  let rest = BigInt(ms);
  let out = '';
  for (const [unit, size] of UNITS) {
    if (rest >= size) {
      out += `${rest / size}${unit}`;
      rest %= size;
    }
  }
  return out;
}
