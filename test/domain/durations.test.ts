import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DurationError, formatDuration, parseDuration } from '../../src/domain/durations.js';

describe('parseDuration', () => {
  const valid: Array<[string, number]> = [
    ['0s', 0],
    ['0ms', 0],
    ['250ms', 250],
    ['1s', 1_000],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['35d', 3_024_000_000],
    ['1w', 604_800_000],
    ['1h30m', 5_400_000],
    ['1s500ms', 1_500],
    ['1w2d3h4m5s6ms', 604_800_000 + 2 * 86_400_000 + 3 * 3_600_000 + 4 * 60_000 + 5_000 + 6],
    ['1.5h', 5_400_000],
    ['1.1s', 1_100],
    ['0.25s', 250],
    ['007s', 7_000],
    ['30m1h', 5_400_000],
    [`${Number.MAX_SAFE_INTEGER}ms`, Number.MAX_SAFE_INTEGER],
  ];
  for (const [input, expected] of valid) {
    it(`parses ${JSON.stringify(input)} as ${expected} ms`, () => {
      assert.equal(parseDuration(input), expected);
    });
  }

  const hint = 'use a number followed by ms, s, m, h, d or w, e.g. "5m"';
  const invalid: Array<[string, string]> = [
    ['5x', `invalid duration "5x": ${hint}`],
    ['', `invalid duration "": ${hint}`],
    ['5', `invalid duration "5": ${hint}`],
    ['m', `invalid duration "m": ${hint}`],
    ['-5m', `invalid duration "-5m": ${hint}`],
    ['5M', `invalid duration "5M": ${hint}`],
    ['1h 30m', `invalid duration "1h 30m": ${hint}`],
    [' 5m', `invalid duration " 5m": ${hint}`],
    ['5m ', `invalid duration "5m ": ${hint}`],
    ['.5s', `invalid duration ".5s": ${hint}`],
    ['5.s', `invalid duration "5.s": ${hint}`],
    ['1e3ms', `invalid duration "1e3ms": ${hint}`],
    ['Infinitys', `invalid duration "Infinitys": ${hint}`],
    ['0.5ms', 'invalid duration "0.5ms": must be a whole number of milliseconds'],
    ['0.0001s', 'invalid duration "0.0001s": must be a whole number of milliseconds'],
    [`${Number.MAX_SAFE_INTEGER + 1}ms`, `invalid duration "${Number.MAX_SAFE_INTEGER + 1}ms": too large`],
    ['99999999999999999w', 'invalid duration "99999999999999999w": too large'],
  ];
  for (const [input, message] of invalid) {
    it(`rejects ${JSON.stringify(input)}`, () => {
      assert.throws(
        () => parseDuration(input),
        (err: unknown) => err instanceof DurationError && err.name === 'DurationError' && err.message === message,
      );
    });
  }

  it('rejects non-string input at runtime with a DurationError', () => {
    assert.throws(() => parseDuration(5 as unknown as string), DurationError);
    assert.throws(() => parseDuration(undefined as unknown as string), DurationError);
  });
});

describe('formatDuration', () => {
  const cases: Array<[number, string]> = [
    [0, '0s'],
    [1, '1ms'],
    [250, '250ms'],
    [1_500, '1s500ms'],
    [60_000, '1m'],
    [300_000, '5m'],
    [5_400_000, '1h30m'],
    [86_400_000, '1d'],
    [604_800_000, '1w'],
    [3_024_000_000, '5w'],
    [694_861_001, '1w1d1h1m1s1ms'],
  ];
  for (const [ms, expected] of cases) {
    it(`formats ${ms} as ${JSON.stringify(expected)}`, () => {
      assert.equal(formatDuration(ms), expected);
    });
  }

  for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.MAX_SAFE_INTEGER + 1]) {
    it(`rejects ${String(bad)}`, () => {
      assert.throws(() => formatDuration(bad), RangeError);
    });
  }

  it('round-trips through parseDuration for any non-negative safe integer', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (ms) => parseDuration(formatDuration(ms)) === ms));
  });
});
