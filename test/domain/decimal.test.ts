// The numeric model: values as the exact decimal their JSON number denotes, limits, canonical text,
// exact sums, and avg's rounding, checked against independent oracles (string and bigint arithmetic
// built here, not the code under test).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  DECIMAL_PLACES,
  divideFixed,
  fixedOfNumber,
  fixedToNumber,
  formatFixed,
  numberText,
  parseFixed,
  valueLimitError,
  VALUE_LIMITS,
} from '../../src/domain/decimal.js';

/** A random decimal text: sign, up to 15 integer digits, up to 12 fraction digits (trailing zeros trimmed). */
const decimalTextArb = fc
  .tuple(fc.boolean(), fc.stringMatching(/^(0|[1-9][0-9]{0,14})$/), fc.stringMatching(/^[0-9]{0,12}$/))
  .map(([neg, int, frac]) => {
    const f = frac.replace(/0+$/, '');
    const text = f === '' ? int : `${int}.${f}`;
    return neg && text !== '0' ? `-${text}` : text;
  });

/** Significant digits of canonical decimal text, counted on the digits alone. */
function significant(text: string): number {
  const digits = text.replace(/^-/, '').replace('.', '').replace(/^0+/, '');
  return digits.replace(/0+$/, '').length || 0;
}

/** The oracle's scaled integer of canonical text: string padding, no arithmetic on floats. */
function oracleScaled(text: string): bigint {
  const neg = text.startsWith('-');
  const [int, frac = ''] = text.replace(/^-/, '').split('.');
  const n = BigInt(int! + frac.padEnd(DECIMAL_PLACES, '0'));
  return neg ? -n : n;
}

describe('event values', () => {
  it('a value within the limits is the decimal it was written as, and reads back as the same number (property)', () => {
    fc.assert(
      fc.property(decimalTextArb, (text) => {
        const v = Number(text);
        if (significant(text) > VALUE_LIMITS.significantDigits) {
          // A double cannot hold every 16- or 17-digit decimal: the value is the shortest decimal of
          // the parsed number, accepted only if that one is within the limits.
          const shortest = String(v);
          if (valueLimitError(v) === null) {
            assert.ok(significant(shortest) <= VALUE_LIMITS.significantDigits, shortest);
            assert.equal(fixedOfNumber(v), oracleScaled(shortest));
          }
          return;
        }
        assert.equal(valueLimitError(v), null, text);
        assert.equal(fixedOfNumber(v), oracleScaled(text));
        assert.equal(formatFixed(fixedOfNumber(v)), text === '-0' ? '0' : text);
        assert.equal(fixedToNumber(fixedOfNumber(v)), v);
      }),
      { numRuns: 2000 },
    );
  });

  it('names each limit: significant digits, magnitude, decimal places', () => {
    assert.match(valueLimitError(0.30000000000000004)!, /at most 12 decimal places/);
    assert.match(valueLimitError(1234567890.1234567)!, /at most 15 significant digits/);
    assert.match(valueLimitError(12345678.123456789)!, /at most 15 significant digits/);
    assert.match(valueLimitError(1e15)!, /less than 1e15/);
    assert.match(valueLimitError(-1e308)!, /less than 1e15/);
    assert.match(valueLimitError(1e-13)!, /at most 12 decimal places/);
    assert.equal(valueLimitError(999_999_999_999_999), null);
    assert.equal(valueLimitError(-999_999_999_999_999), null);
    assert.equal(valueLimitError(0.000000000001), null);
    assert.equal(valueLimitError(123.456789012345), null);
    assert.equal(valueLimitError(-0), null);
  });

  it('values stored before the limits existed are rounded half away from zero at 12 places, never lost', () => {
    assert.equal(formatFixed(fixedOfNumber(0.30000000000000004)), '0.3');
    assert.equal(formatFixed(fixedOfNumber(1.2999999999999998)), '1.3');
    assert.equal(formatFixed(fixedOfNumber(5e-13)), '0.000000000001');
    assert.equal(formatFixed(fixedOfNumber(-5e-13)), '-0.000000000001');
    assert.equal(formatFixed(fixedOfNumber(4e-13)), '0');
    assert.equal(formatFixed(fixedOfNumber(1e308)), `1${'0'.repeat(308)}`);
    assert.equal(formatFixed(fixedOfNumber(1e308) + fixedOfNumber(1e308) + fixedOfNumber(-1e308) + fixedOfNumber(-1e308)), '0');
  });
});

describe('decimal text', () => {
  it('parses every form the stores give back: canonical, PostgreSQL numeric with trailing zeros, exponent', () => {
    assert.equal(parseFixed('0.3'), 300_000_000_000n);
    assert.equal(parseFixed('0.300000000000000000'), 300_000_000_000n);
    assert.equal(parseFixed('-12.5000'), -12_500_000_000_000n);
    assert.equal(parseFixed('1e+21'), 10n ** 33n);
    assert.equal(parseFixed('7'), 7_000_000_000_000n);
    assert.equal(parseFixed('-0.5'), -500_000_000_000n);
    assert.equal(parseFixed('-0.000000000001'), -1n);
    assert.equal(parseFixed('123456789012345678.25'), 123456789012345678_250_000_000_000n);
    assert.equal(parseFixed('0.0000000000015'), 2n, 'past 12 places: rounded half away from zero');
    assert.equal(parseFixed('123456789012345678901234567890'), 123456789012345678901234567890n * 10n ** 12n);
    assert.throws(() => parseFixed('abc'), RangeError);
    assert.throws(() => parseFixed(''), RangeError);
  });

  it('numberText is the canonical text of fixedOfNumber, without the bigint (property)', () => {
    const numberArb = fc.oneof(
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      decimalTextArb.map(Number),
      fc.integer().map((n) => n / 1000),
      fc.constantFrom(0, -0, 1e-6, -1e-6, 9.99e-7, 1e15, -1e15, 999_999_999_999_999.9, 2 ** 53, -(2 ** 53), 5e-13, 1e21),
    );
    fc.assert(
      fc.property(numberArb, (v) => assert.equal(numberText(v), formatFixed(fixedOfNumber(v)), String(v))),
      { numRuns: 5000 },
    );
  });

  it('format and parse round-trip any fixed value, however large (property)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }), (x) => {
        const text = formatFixed(x);
        assert.match(text, /^-?(0|[1-9]\d*)(\.\d*[1-9])?$/);
        assert.equal(parseFixed(text), x);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('sums and averages', () => {
  it('a sum does not depend on grouping or order, and equals the oracle sum of the texts (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          decimalTextArb.filter((t) => significant(t) <= 15),
          { minLength: 1, maxLength: 60 },
        ),
        fc.integer({ min: 1, max: 10 }),
        (texts, cut) => {
          const values = texts.map(Number);
          const oracle = texts.reduce((s, t) => s + oracleScaled(t), 0n);
          const whole = values.reduce((s, v) => s + fixedOfNumber(v), 0n);
          const groups: bigint[] = [];
          for (let i = 0; i < values.length; i += cut) groups.push(values.slice(i, i + cut).reduce((s, v) => s + fixedOfNumber(v), 0n));
          const reversed = [...values].reverse().reduce((s, v) => s + fixedOfNumber(v), 0n);
          assert.equal(whole, oracle);
          assert.equal(
            groups.reduce((a, b) => a + b, 0n),
            oracle,
          );
          assert.equal(reversed, oracle);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('avg is rounded half away from zero at 12 places (property against a rational oracle)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }), fc.integer({ min: 1, max: 1_000_000 }), (sum, n) => {
        const q = divideFixed(sum, n);
        // |sum/n - q| <= 1/2 unit, and a tie goes away from zero: compare 2·|sum - q·n| with n.
        const diff = sum - q * BigInt(n);
        const twice = 2n * (diff < 0n ? -diff : diff);
        assert.ok(twice <= BigInt(n), `${sum}/${n} -> ${q}`);
        if (twice === BigInt(n)) assert.ok(sum >= 0n ? q * BigInt(n) > sum : q * BigInt(n) < sum, 'tie away from zero');
      }),
      { numRuns: 2000 },
    );
  });
});
