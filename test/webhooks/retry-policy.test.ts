// Retry policy: jittered schedule (±20 %, never before 80 %), Retry-After parsing and the deadline.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { parseDuration } from '../../src/domain/durations.js';
import { DEFAULT_DEADLINE, DEFAULT_RETRY_SCHEDULE } from '../../src/config/webhook-config.js';
import { decideRetry, nextDelay, parseRetryAfter, type RetryPolicy } from '../../src/webhooks/retry-policy.js';

const HOUR = 3_600_000;
const DEFAULT_POLICY: RetryPolicy = {
  scheduleMs: DEFAULT_RETRY_SCHEDULE.map(parseDuration),
  deadlineMs: parseDuration(DEFAULT_DEADLINE),
};
const ALMOST_ONE = 1 - Number.EPSILON;

describe('default schedule', () => {
  it('is 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h with a 4 day deadline', () => {
    assert.deepEqual(DEFAULT_POLICY.scheduleMs, [
      5_000,
      300_000,
      1_800_000,
      2 * HOUR,
      5 * HOUR,
      10 * HOUR,
      14 * HOUR,
      20 * HOUR,
      24 * HOUR,
    ]);
    assert.equal(DEFAULT_POLICY.deadlineMs, 4 * 24 * HOUR);
  });
});

describe('nextDelay', () => {
  it('maps rng 0 to 80 %, rng 0.5 to 100 % and rng → 1 to 120 % of the nominal delay', () => {
    DEFAULT_POLICY.scheduleMs.forEach((nominal, i) => {
      assert.equal(
        nextDelay(DEFAULT_POLICY, i + 1, () => 0),
        nominal * 0.8,
        `attempt ${i + 1}, rng 0`,
      );
      assert.equal(
        nextDelay(DEFAULT_POLICY, i + 1, () => 0.5),
        nominal,
        `attempt ${i + 1}, rng 0.5`,
      );
      const high = nextDelay(DEFAULT_POLICY, i + 1, () => ALMOST_ONE)!;
      assert.ok(high <= nominal * 1.2 && high >= nominal * 1.2 - 1, `attempt ${i + 1}, rng→1 gave ${high}`);
    });
  });

  it('uses the n-th schedule entry after the n-th failure', () => {
    const p: RetryPolicy = { scheduleMs: [1_000, 20_000, 300_000], deadlineMs: 10 * HOUR };
    assert.equal(
      nextDelay(p, 1, () => 0.5),
      1_000,
    );
    assert.equal(
      nextDelay(p, 2, () => 0.5),
      20_000,
    );
    assert.equal(
      nextDelay(p, 3, () => 0.5),
      300_000,
    );
  });

  it('returns null once the schedule is used up', () => {
    assert.equal(
      nextDelay(DEFAULT_POLICY, DEFAULT_POLICY.scheduleMs.length + 1, () => 0.5),
      null,
    );
    assert.equal(
      nextDelay({ scheduleMs: [], deadlineMs: HOUR }, 1, () => 0.5),
      null,
    );
    assert.equal(
      nextDelay({ scheduleMs: [100], deadlineMs: HOUR }, 2, () => 0.5),
      null,
    );
  });

  it('actually jitters: different rng values give different delays', () => {
    const seen = new Set([0, 0.1, 0.3, 0.7, 0.9].map((r) => nextDelay(DEFAULT_POLICY, 2, () => r)));
    assert.equal(seen.size, 5);
  });

  it('never starts before 80 % nor after 120 % of the nominal delay (any integer schedule, any rng)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 7 * 24 * HOUR }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (nominal, r) => {
          const d = nextDelay({ scheduleMs: [nominal], deadlineMs: 30 * 24 * HOUR }, 1, () => r)!;
          return Number.isInteger(d) && d >= nominal * 0.8 && d <= nominal * 1.2;
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('parseRetryAfter', () => {
  // A whole second, so an HTTP-date (second resolution) is exact.
  const now = Date.parse('2026-01-12T10:30:00.000Z');

  it('reads delta-seconds', () => {
    assert.equal(parseRetryAfter('120', now), 120_000);
    assert.equal(parseRetryAfter('0', now), 0);
    assert.equal(parseRetryAfter(' 7 ', now), 7_000);
  });

  it('reads an HTTP-date relative to now, and a past date as 0', () => {
    assert.equal(parseRetryAfter(new Date(now + 90_000).toUTCString(), now), 90_000);
    assert.equal(parseRetryAfter('Mon, 12 Jan 2026 11:00:00 GMT', now), 30 * 60_000);
    assert.equal(parseRetryAfter('Mon, 12 Jan 2026 10:00:00 GMT', now), 0);
  });

  it('caps both forms at 24 h', () => {
    assert.equal(parseRetryAfter('86400', now), 24 * HOUR);
    assert.equal(parseRetryAfter('86401', now), 24 * HOUR);
    assert.equal(parseRetryAfter('999999999999', now), 24 * HOUR);
    assert.equal(parseRetryAfter(new Date(now + 3 * 24 * HOUR).toUTCString(), now), 24 * HOUR);
  });

  it('returns null when absent or unreadable', () => {
    assert.equal(parseRetryAfter(undefined, now), null);
    for (const junk of ['', '   ', 'soon', 'tomorrow', '5 minutes', '12abc', '1e3', '0x10', 'Infinity']) {
      assert.equal(parseRetryAfter(junk, now), null, JSON.stringify(junk));
    }
  });

  it('does not read non-conforming numbers or fragments as dates (RFC 9110: HTTP-date / delay-seconds only)', () => {
    // V8's Date.parse accepts these as dates in 2001, which would turn them into "retry right now".
    for (const junk of ['-5', '1.5', '3 4', 'abc 12']) {
      assert.equal(parseRetryAfter(junk, now), null, JSON.stringify(junk));
    }
  });
});

describe('decideRetry', () => {
  const p: RetryPolicy = { scheduleMs: [10_000, 60_000], deadlineMs: HOUR };
  const now = 1_000_000;

  it('schedules the next attempt after the jittered delay', () => {
    assert.deepEqual(decideRetry(p, { failedAttempts: 1, now, deadlineAt: now + HOUR, rng: () => 0.5 }), { retryAt: now + 10_000 });
    assert.deepEqual(decideRetry(p, { failedAttempts: 2, now, deadlineAt: now + HOUR, rng: () => 0 }), { retryAt: now + 48_000 });
  });

  it('uses Retry-After instead of the schedule when given', () => {
    assert.deepEqual(decideRetry(p, { failedAttempts: 1, now, deadlineAt: now + HOUR, retryAfterMs: 45_000, rng: () => 0.5 }), {
      retryAt: now + 45_000,
    });
    assert.deepEqual(decideRetry(p, { failedAttempts: 1, now, deadlineAt: now + HOUR, retryAfterMs: null, rng: () => 0.5 }), {
      retryAt: now + 10_000,
    });
  });

  it('gives up when the schedule is used up', () => {
    assert.deepEqual(decideRetry(p, { failedAttempts: 3, now, deadlineAt: now + HOUR, rng: () => 0.5 }), { give_up: 'schedule_exhausted' });
  });

  it('gives up when the next attempt would start after the deadline; an attempt exactly at it is allowed', () => {
    assert.deepEqual(decideRetry(p, { failedAttempts: 1, now, deadlineAt: now + 10_000, rng: () => 0.5 }), { retryAt: now + 10_000 });
    assert.deepEqual(decideRetry(p, { failedAttempts: 1, now, deadlineAt: now + 9_999, rng: () => 0.5 }), { give_up: 'deadline' });
    assert.deepEqual(decideRetry(p, { failedAttempts: 1, now, deadlineAt: now + HOUR, retryAfterMs: HOUR + 1, rng: () => 0.5 }), {
      give_up: 'deadline',
    });
    assert.deepEqual(decideRetry(p, { failedAttempts: 1, now, deadlineAt: now - 1, rng: () => 0.5 }), { give_up: 'deadline' });
  });
});
