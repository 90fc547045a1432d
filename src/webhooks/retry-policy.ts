// Owns the retry policy as data plus pure functions: the delay before the next attempt, Retry-After
// parsing and the deadline. Must never read the clock or sleep: callers pass `now` and an rng.

export interface RetryPolicy {
  /** Nominal delay after the 1st, 2nd, … failed attempt. */
  scheduleMs: number[];
  /** No attempt starts later than createdAt + deadlineMs. */
  deadlineMs: number;
}

const RETRY_AFTER_CAP_MS = 24 * 3_600_000;

/** Nominal delay after `failedAttempts` failures, with ±20 % jitter; null when the schedule is used up. */
export function nextDelay(policy: RetryPolicy, failedAttempts: number, rng: () => number = Math.random): number | null {
  const nominal = policy.scheduleMs[failedAttempts - 1];
  if (nominal === undefined) return null;
  const jittered = Math.round(nominal * (0.8 + 0.4 * rng()));
  // Rounding must never pull an attempt before 80 % (or past 120 %) of its nominal delay.
  return Math.min(Math.max(jittered, Math.ceil(nominal * 0.8)), Math.floor(nominal * 1.2));
}

// RFC 9110 HTTP-date: IMF-fixdate, obsolete RFC 850 and asctime forms. Date.parse alone would also
// read fragments such as "-5" or "1.5" as dates.
const HTTP_DATE = [
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/,
  new RegExp(
    '^(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), ' +
      '\\d{2}-(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)-\\d{2} \\d{2}:\\d{2}:\\d{2} GMT$',
  ),
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/,
];

/** Retry-After as delta-seconds or an HTTP-date, in ms from now, capped at 24 h; null when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: number): number | null {
  if (value === undefined) return null;
  const v = value.trim();
  let ms: number;
  if (/^\d+$/.test(v)) ms = Number(v) * 1000;
  else {
    if (!HTTP_DATE.some((re) => re.test(v))) return null;
    const at = Date.parse(v);
    if (Number.isNaN(at)) return null;
    ms = Math.max(0, at - now);
  }
  return Math.min(ms, RETRY_AFTER_CAP_MS);
}

export type RetryDecision = { retryAt: number } | { give_up: 'schedule_exhausted' | 'deadline' };

/** When to try again after a failure, honouring Retry-After; gives up past the schedule or the deadline. */
export function decideRetry(
  policy: RetryPolicy,
  o: { failedAttempts: number; now: number; deadlineAt: number; retryAfterMs?: number | null; rng?: () => number },
): RetryDecision {
  const scheduled = nextDelay(policy, o.failedAttempts, o.rng);
  if (scheduled === null) return { give_up: 'schedule_exhausted' };
  const at = o.now + (o.retryAfterMs ?? scheduled);
  if (at > o.deadlineAt) return { give_up: 'deadline' };
  return { retryAt: at };
}
