// Owns calendar-period math (hour/day/ISO week/month/year) over half-open UTC intervals [start, end) in epoch ms.
// Must never depend on the process TZ (only getUTC*/setUTC* are used) and never do I/O.

export const PERIODS = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
export type Period = (typeof PERIODS)[number];

export const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const WEEK_MS = 7 * DAY_MS;

export interface Interval {
  start: number;
  end: number;
}

// Keys carry a fixed 4-digit year, so parsing only accepts years that fit in it without a sign.
const MIN_KEY_YEAR = 1000;
const MAX_KEY_YEAR = 9999;

export function isPeriod(x: unknown): x is Period {
  return typeof x === 'string' && (PERIODS as readonly string[]).includes(x);
}

/** Floored modulo, so instants before 1970 still align downwards instead of towards zero. */
function mod(a: number, m: number): number {
  return ((a % m) + m) % m;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

// Date.UTC maps years 0–99 to 1900–1999; setUTCFullYear does not, so go through it.
function utcMidnight(year: number, month0: number, day: number): number {
  const d = new Date(0);
  d.setUTCFullYear(year, month0, day);
  return d.getTime();
}

/** Validates t and floors it, so fractional or pre-epoch instants land in the period at or before them. */
function instant(t: number): number {
  if (!Number.isFinite(t)) throw new RangeError(`not a finite epoch-ms instant: ${String(t)}`);
  return Math.floor(t);
}

interface UtcParts {
  year: number;
  month0: number;
  day: number;
  hour: number;
  minute: number;
}

function utcParts(t: number): UtcParts {
  const d = new Date(t);
  return {
    year: d.getUTCFullYear(),
    month0: d.getUTCMonth(),
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
  };
}

function dayStart(t: number): number {
  return t - mod(t, DAY_MS);
}

/** Monday 00:00 UTC of the ISO week containing t. */
function isoWeekStart(t: number): number {
  const day = dayStart(t);
  const mondayBased = (new Date(day).getUTCDay() + 6) % 7;
  return day - mondayBased * DAY_MS;
}

/** ISO week-year and week number: the week belongs to the year that holds its Thursday. */
function isoWeek(t: number): { weekYear: number; week: number } {
  const thursday = isoWeekStart(t) + 3 * DAY_MS;
  const weekYear = new Date(thursday).getUTCFullYear();
  const week = Math.floor((thursday - utcMidnight(weekYear, 0, 1)) / WEEK_MS) + 1;
  return { weekYear, week };
}

/** Monday of ISO week 1 of weekYear: the week that contains 4 January. */
function isoWeekOneStart(weekYear: number): number {
  return isoWeekStart(utcMidnight(weekYear, 0, 4));
}

function daysInMonth(year: number, month0: number): number {
  return (utcMidnight(year, month0 + 1, 1) - utcMidnight(year, month0, 1)) / DAY_MS;
}

/** The interval of `period` that contains instant t. */
export function periodInterval(period: Period, t: number): Interval {
  const ms = instant(t);
  switch (period) {
    case 'hourly': {
      const start = ms - mod(ms, HOUR_MS);
      return { start, end: start + HOUR_MS };
    }
    case 'daily': {
      const start = dayStart(ms);
      return { start, end: start + DAY_MS };
    }
    case 'weekly': {
      const start = isoWeekStart(ms);
      return { start, end: start + WEEK_MS };
    }
    case 'monthly': {
      const { year, month0 } = utcParts(ms);
      return { start: utcMidnight(year, month0, 1), end: utcMidnight(year, month0 + 1, 1) };
    }
    case 'yearly': {
      const { year } = utcParts(ms);
      return { start: utcMidnight(year, 0, 1), end: utcMidnight(year + 1, 0, 1) };
    }
    default:
      return unknownPeriod(period);
  }
}

/**
 * The reference key of the period containing t: hourly YYYYMMDDHH, daily YYYYMMDD,
 * weekly GGGGWW (ISO week-year + 2-digit ISO week), monthly YYYYMM, yearly YYYY.
 */
export function periodKey(period: Period, t: number): string {
  const ms = instant(t);
  const p = utcParts(ms);
  const ymd = `${pad(p.year, 4)}${pad(p.month0 + 1, 2)}${pad(p.day, 2)}`;
  switch (period) {
    case 'hourly':
      return `${ymd}${pad(p.hour, 2)}`;
    case 'daily':
      return ymd;
    case 'weekly': {
      const { weekYear, week } = isoWeek(ms);
      return `${pad(weekYear, 4)}${pad(week, 2)}`;
    }
    case 'monthly':
      return `${pad(p.year, 4)}${pad(p.month0 + 1, 2)}`;
    case 'yearly':
      return pad(p.year, 4);
    default:
      return unknownPeriod(period);
  }
}

// Exact ASCII digit counts; `$` without the m flag only matches at the very end, so "2024\n" is rejected.
const KEY_SHAPE: Record<Period, RegExp> = {
  hourly: /^([0-9]{4})([0-9]{2})([0-9]{2})([0-9]{2})$/,
  daily: /^([0-9]{4})([0-9]{2})([0-9]{2})$/,
  weekly: /^([0-9]{4})([0-9]{2})$/,
  monthly: /^([0-9]{4})([0-9]{2})$/,
  yearly: /^([0-9]{4})$/,
};

/**
 * Inverse of periodKey: the interval a key names, or null when the key is malformed or names no real period
 * (e.g. month 13, ISO week 53 in a year that has only 52, day 20230229, hour 24).
 * Must round-trip: parsePeriodKey(p, periodKey(p, t)) equals periodInterval(p, t).
 */
export function parsePeriodKey(period: Period, key: string): Interval | null {
  if (typeof key !== 'string' || !isPeriod(period)) return null;
  const match = KEY_SHAPE[period].exec(key);
  if (match === null) return null;
  const [year = NaN, second = NaN, day = NaN, hour = NaN] = match.slice(1).map(Number);
  if (year < MIN_KEY_YEAR || year > MAX_KEY_YEAR) return null;

  switch (period) {
    case 'yearly':
      return periodInterval('yearly', utcMidnight(year, 0, 1));
    case 'monthly':
      if (second < 1 || second > 12) return null;
      return periodInterval('monthly', utcMidnight(year, second - 1, 1));
    case 'weekly': {
      if (second < 1) return null;
      const start = isoWeekOneStart(year) + (second - 1) * WEEK_MS;
      // Week 53 only exists in some years; past the last week the Monday belongs to week 1 of the next year.
      if (isoWeek(start).weekYear !== year) return null;
      return { start, end: start + WEEK_MS };
    }
    case 'daily':
    case 'hourly': {
      if (second < 1 || second > 12) return null;
      if (day < 1 || day > daysInMonth(year, second - 1)) return null;
      const start = utcMidnight(year, second - 1, day);
      if (period === 'daily') return { start, end: start + DAY_MS };
      if (hour > 23) return null;
      const hourStart = start + hour * HOUR_MS;
      return { start: hourStart, end: hourStart + HOUR_MS };
    }
    default:
      return unknownPeriod(period);
  }
}

/** YYYYMMDDHHmm of t. */
export function minuteKey(t: number): string {
  const p = utcParts(instant(t));
  return `${pad(p.year, 4)}${pad(p.month0 + 1, 2)}${pad(p.day, 2)}${pad(p.hour, 2)}${pad(p.minute, 2)}`;
}

/** All the reference's per-event keys: { minute, hour, day, week, month, year }. */
export function eventPeriodKeys(t: number): {
  minute: string;
  hour: string;
  day: string;
  week: string;
  month: string;
  year: string;
} {
  return {
    minute: minuteKey(t),
    hour: periodKey('hourly', t),
    day: periodKey('daily', t),
    week: periodKey('weekly', t),
    month: periodKey('monthly', t),
    year: periodKey('yearly', t),
  };
}

/** The inclusive end shown in JSON, i.e. new Date(interval.end - 1).toISOString() (…59:59.999Z). */
export function displayEnd(interval: Interval): string {
  return new Date(interval.end - 1).toISOString();
}

/** The start instants of the UTC hours in [start, end), ascending; start/end are hour-aligned. */
export function hoursIn(interval: Interval): number[] {
  const { start, end } = interval;
  // A misaligned bound would silently yield instants that are not hour starts; fail loudly instead.
  if (!Number.isInteger(start) || !Number.isInteger(end) || mod(start, HOUR_MS) !== 0 || mod(end, HOUR_MS) !== 0) {
    throw new RangeError(`interval is not hour-aligned: [${start}, ${end})`);
  }
  if (end < start) throw new RangeError(`interval end precedes start: [${start}, ${end})`);
  const hours: number[] = [];
  for (let h = start; h < end; h += HOUR_MS) hours.push(h);
  return hours;
}

/** For an hour-aligned instant h, the intervals of every period in `periods` that contain h (one per period). */
export function periodsContaining(periods: readonly Period[], t: number): Array<{ period: Period; key: string; interval: Interval }> {
  // Duplicates in `periods` are collapsed so each period contributes exactly one interval.
  return [...new Set(periods)].map((period) => ({
    period,
    key: periodKey(period, t),
    interval: periodInterval(period, t),
  }));
}

function unknownPeriod(period: never): never {
  throw new RangeError(`unknown period: ${String(period)}`);
}
