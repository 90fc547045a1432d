// Owns meterhook's numeric model: the exact decimal an event value denotes, the limits a value must
// respect, fixed-point arithmetic for totals (bigint scaled by 10^12), canonical decimal text and the
// one rounding rule (half away from zero, at 12 decimal places).
// Must never add, compare or round a total in binary floating point.

/** Digits kept after the decimal point, in values and in every total. */
export const DECIMAL_PLACES = 12;
/** Limits on one event value, checked at capture (422 beyond them). */
export const VALUE_LIMITS = {
  /** Significant digits of the value's decimal form. */
  significantDigits: 15,
  /** Digits after the decimal point. */
  decimalPlaces: DECIMAL_PLACES,
  /** Digits before the decimal point: the absolute value is below 10^15. */
  integerDigits: 15,
} as const;

/** An exact decimal, as the integer value × 10^12. */
export type Fixed = bigint;

const UNIT = 10n ** BigInt(DECIMAL_PLACES);
const HALF_UNIT_DIGITS = DECIMAL_PLACES;
export const FIXED_ZERO: Fixed = 0n;
const ZEROS = Array.from({ length: DECIMAL_PLACES + 1 }, (_, i) => '0'.repeat(i));

interface Parts {
  negative: boolean;
  /** Decimal digits without leading zeros ('' for zero). */
  digits: string;
  /** The value is digits × 10^exponent. */
  exponent: number;
}

const DECIMAL_TEXT = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

function partsOf(text: string): Parts | null {
  const m = DECIMAL_TEXT.exec(text);
  if (!m) return null;
  const int = m[2] ?? '';
  const frac = m[3] ?? '';
  if (int === '' && frac === '') return null;
  let digits = (int + frac).replace(/^0+/, '');
  let exponent = (m[4] === undefined ? 0 : Number(m[4])) - frac.length;
  if (digits === '') return { negative: false, digits: '', exponent: 0 };
  const trailing = digits.length - digits.replace(/0+$/, '').length;
  if (trailing > 0) {
    digits = digits.slice(0, digits.length - trailing);
    exponent += trailing;
  }
  return { negative: m[1] === '-', digits, exponent };
}

/**
 * Why a finite number cannot be an event value, or null when it can. The value is the shortest
 * decimal that reads back as the same double (what JSON.stringify prints), so `0.1` is exactly 0.1.
 */
export function valueLimitError(v: number): string | null {
  // Fast path: integers of up to 15 digits, the most common values.
  if (Number.isInteger(v) && v > -1e15 && v < 1e15) return null;
  // Fast path: plain decimal text (1e-6 <= |v| < 1e15 prints without an exponent), counted directly.
  if (v > -1e15 && v < 1e15 && (v >= 1e-6 || v <= -1e-6)) {
    const text = v < 0 ? String(-v) : String(v);
    const point = text.indexOf('.');
    const places = text.length - point - 1;
    if (places > VALUE_LIMITS.decimalPlaces) return `value must have at most ${VALUE_LIMITS.decimalPlaces} decimal places`;
    let first = 0;
    while (text.charCodeAt(first) === 48 || first === point) first++;
    const significant = text.length - first - (first < point ? 1 : 0);
    if (significant > VALUE_LIMITS.significantDigits) return `value must have at most ${VALUE_LIMITS.significantDigits} significant digits`;
    return null;
  }
  const p = partsOf(String(v))!;
  if (p.digits.length + p.exponent > VALUE_LIMITS.integerDigits) {
    return `value must be less than 1e${VALUE_LIMITS.integerDigits} in absolute value`;
  }
  if (-p.exponent > VALUE_LIMITS.decimalPlaces) {
    return `value must have at most ${VALUE_LIMITS.decimalPlaces} decimal places`;
  }
  if (p.digits.length > VALUE_LIMITS.significantDigits) {
    return `value must have at most ${VALUE_LIMITS.significantDigits} significant digits`;
  }
  return null;
}

/** digits × 10^shift as a fixed value, rounding half away from zero when shift is negative. */
function scale(p: Parts, shift: number): Fixed {
  if (p.digits === '') return 0n;
  let n: bigint;
  if (shift >= 0) {
    n = BigInt(p.digits) * 10n ** BigInt(shift);
  } else if (-shift > p.digits.length) {
    n = 0n;
  } else {
    const keep = p.digits.length + shift;
    const head = keep === 0 ? 0n : BigInt(p.digits.slice(0, keep));
    const first = p.digits.charCodeAt(keep) - 48;
    n = first >= 5 ? head + 1n : head;
  }
  return p.negative ? -n : n;
}

/**
 * The exact fixed value of a number's decimal form. Values that passed valueLimitError are exact;
 * any other finite double (data stored before the limits existed) is rounded half away from zero
 * to 12 places.
 */
export function fixedOfNumber(v: number): Fixed {
  if (Number.isSafeInteger(v)) return BigInt(v) * UNIT;
  if (!Number.isFinite(v)) throw new RangeError(`not a finite number: ${v}`);
  // Fast path: plain decimal text with at most 12 places, as every accepted value of 1e-6 or more has.
  if (v > -1e15 && v < 1e15 && (v >= 1e-6 || v <= -1e-6)) {
    const text = String(v);
    const point = text.indexOf('.');
    const places = text.length - point - 1;
    if (places <= DECIMAL_PLACES) return BigInt(text.slice(0, point) + text.slice(point + 1) + ZEROS[DECIMAL_PLACES - places]!);
  }
  const p = partsOf(String(v))!;
  return scale(p, p.exponent + DECIMAL_PLACES);
}

/**
 * Reads decimal text (canonical text, PostgreSQL numeric output, or any plain or exponent form),
 * rounding half away from zero beyond 12 places. Throws on text that is not a decimal.
 */
export function parseFixed(text: string): Fixed {
  // Canonical text of an integer: one bigint parse.
  if (/^-?\d{1,15}$/.test(text)) return BigInt(text) * UNIT;
  // Canonical text with a fraction of at most 12 places (what both stores hand back): one bigint parse.
  if (/^-?\d{1,18}\.\d{1,12}$/.test(text)) {
    const point = text.indexOf('.');
    return BigInt(text.slice(0, point) + text.slice(point + 1) + ZEROS[DECIMAL_PLACES - (text.length - point - 1)]!);
  }
  const p = partsOf(text);
  if (!p) throw new RangeError(`not a decimal: ${JSON.stringify(text.slice(0, 40))}`);
  return scale(p, p.exponent + DECIMAL_PLACES);
}

/** Canonical decimal text: no exponent, no trailing zeros after the point, "-" only below zero. */
export function formatFixed(x: Fixed): string {
  const negative = x < 0n;
  const abs = negative ? -x : x;
  const int = abs / UNIT;
  const frac = abs % UNIT;
  const sign = negative ? '-' : '';
  if (frac === 0n) return `${sign}${int}`;
  const fracText = frac.toString().padStart(HALF_UNIT_DIGITS, '0').replace(/0+$/, '');
  return `${sign}${int}.${fracText}`;
}

/**
 * formatFixed(fixedOfNumber(v)) without the bigint: a safe integer, or a value printed in plain notation with at
 * most 12 places (every accepted value of 1e-6 or more), is already its own canonical text.
 */
export function numberText(v: number): string {
  if (Number.isSafeInteger(v)) return String(v);
  if (v > -1e15 && v < 1e15 && (v >= 1e-6 || v <= -1e-6)) {
    const text = String(v);
    if (text.length - text.indexOf('.') - 1 <= DECIMAL_PLACES) return text;
  }
  return formatFixed(fixedOfNumber(v));
}

/** The nearest double, for the JSON number fields that reference clients read. */
export function fixedToNumber(x: Fixed): number {
  return Number(formatFixed(x));
}

/** x / n rounded half away from zero to 12 places (avg); n > 0. */
export function divideFixed(x: Fixed, n: number): Fixed {
  const d = BigInt(n);
  const q = x / d;
  const r = x % d;
  const twice = (r < 0n ? -r : r) * 2n;
  if (twice >= d) return x < 0n ? q - 1n : q + 1n;
  return q;
}

export function fixedOfCount(n: number): Fixed {
  return BigInt(n) * UNIT;
}

/** Adds two decimal texts exactly (SQLite's registered dec_add); the result is canonical. */
export function addDecimalText(a: string, b: string): string {
  return formatFixed(parseFixed(a) + parseFixed(b));
}
