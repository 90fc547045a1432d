// Owns the parsing of client-supplied instants (event timestamps, query bounds) into epoch ms.
// Must never accept a calendar-impossible date or a zone-less local time: those would be billed wrongly.

const ISO = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?([Zz]|([+-])(\d{2}):?(\d{2}))$/;

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** Strict ISO-8601 with an explicit offset; NaN when malformed or impossible (Feb 30, 24:00). */
export function parseIsoInstant(s: string): number {
  const m = ISO.exec(s);
  if (!m) return Number.NaN;
  const [, y, mo, d, h, mi, sec, frac, zone, sign, oh, om] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = sec === undefined ? 0 : Number(sec);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return Number.NaN;
  if (hour > 23 || minute > 59 || second > 59) return Number.NaN;
  const ms = frac === undefined ? 0 : Math.floor(Number(`0.${frac}`) * 1000);
  let offsetMin = 0;
  if (zone !== 'Z' && zone !== 'z') {
    const oH = Number(oh);
    const oM = Number(om);
    if (oH > 23 || oM > 59) return Number.NaN;
    offsetMin = (sign === '-' ? -1 : 1) * (oH * 60 + oM);
  }
  // Date.UTC maps years 0–99 to 1900–1999; setUTCFullYear takes the year literally.
  const at = new Date(Date.UTC(2000, month - 1, day, hour, minute, second, ms));
  at.setUTCFullYear(year);
  return at.getTime() - offsetMin * 60_000;
}

/**
 * The instants meterhook works with anywhere (event times, query bounds, cursors): 1970-01-01T00:00:00.000Z
 * to 9999-12-31T23:59:59.999Z. Period keys carry a 4-digit year, every period containing such an instant
 * (a year, an ISO week) still ends inside the range Date can show, and both stores hold it as an integer.
 */
export const MIN_INSTANT = 0;
export const MAX_INSTANT = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
export const SUPPORTED_INSTANTS = 'between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z';

export function isSupportedInstant(t: number): boolean {
  return Number.isInteger(t) && t >= MIN_INSTANT && t <= MAX_INSTANT;
}

/** Epoch-millisecond numbers must be whole and inside the range Date can show. */
export function isEpochMillis(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 && n <= 8.64e15;
}

/**
 * An instant given as ISO-8601 with offset, or epoch milliseconds (a number, or digits in a query
 * string). Returns NaN when it is neither.
 */
export function parseInstant(v: unknown): number {
  if (isEpochMillis(v)) return v;
  if (typeof v === 'string') {
    if (/^\d{1,16}$/.test(v)) {
      const n = Number(v);
      return isEpochMillis(n) ? n : Number.NaN;
    }
    return parseIsoInstant(v);
  }
  return Number.NaN;
}
