// Owns how the dashboard writes numbers and instants: digit grouping, exact decimal text, UTC times.
// Must never touch the DOM or the API: these are pure functions of their arguments.
// @ts-check

const num = new Intl.NumberFormat('en-US', { maximumFractionDigits: 3 });

/**
 * A finite number with digit grouping and at most 3 decimals; a dash for anything else.
 * @param {unknown} v
 * @returns {string}
 */
export function fmtNum(v) {
  return typeof v === 'number' && Number.isFinite(v) ? num.format(v) : '—';
}

/**
 * An exact total (decimal text) with digit grouping and every decimal place kept; else the number.
 * @param {string | undefined} text
 * @param {number | undefined} fallback
 * @returns {string}
 */
export function fmtExact(text, fallback) {
  if (typeof text !== 'string' || !/^-?\d+(\.\d+)?$/.test(text)) return fmtNum(fallback);
  const [int = '', frac] = text.split('.');
  const neg = int.startsWith('-');
  const grouped = (neg ? int.slice(1) : int).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${neg ? '-' : ''}${grouped}${frac ? `.${frac}` : ''}`;
}

/**
 * "2026-01-12 10:00:00 UTC", or a dash.
 * @param {string | null | undefined} iso
 * @returns {string}
 */
export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}
