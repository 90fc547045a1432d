// Owns the text form of the column arrays that the set-based statements send (unnest($1::text[]) and
// the like): one PostgreSQL array literal per column, built in one pass. The driver's own conversion
// quotes and escapes every element with two regular expressions and checks its type first, which is a
// large share of an ingest's CPU at 1,000 events per statement.
// Must never produce a literal that PostgreSQL reads back as anything other than the values given.

const NEEDS_ESCAPE = /["\\]/;
const NUMERIC_TEXT = /^-?\d+(\.\d+)?$/;

/** `{"a","b\"c",NULL}`: every element double-quoted (so empty strings, spaces, commas and braces are literal), `"` and `\` escaped. */
export function textArray(values: readonly (string | null | undefined)[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out += ',';
    const v = values[i];
    if (v === null || v === undefined) out += 'NULL';
    else out += `"${NEEDS_ESCAPE.test(v) ? v.replace(/[\\"]/g, '\\$&') : v}"`;
  }
  return `${out}}`;
}

/**
 * `{1,2.5,-3e-7,NULL}`: numbers by their JavaScript text, which float8, bigint and numeric all read
 * exactly (integers here are safe integers; a non-finite number is refused, as the driver would send it
 * as text PostgreSQL rejects anyway). Strings are taken as numeric text already formatted.
 */
export function numberArray(values: readonly (number | string | null | undefined)[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out += ',';
    const v = values[i];
    if (v === null || v === undefined) out += 'NULL';
    else if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new RangeError(`not a finite number: ${v}`);
      out += String(v);
    } else if (NUMERIC_TEXT.test(v)) out += v;
    else throw new RangeError(`not numeric text: ${JSON.stringify(v)}`);
  }
  return `${out}}`;
}
