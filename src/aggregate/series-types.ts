// Owns the shapes of usage series shared by the total and the per-group series: buckets, points and ranges.
// Must never hold behaviour: usage-series.ts and group-series.ts compute them.

export const SERIES_BUCKETS = ['hour', 'day'] as const;
export type SeriesBucket = (typeof SERIES_BUCKETS)[number];

export interface SeriesPoint {
  /** Start of the bucket (UTC). */
  t: string;
  value: number;
  /** Exact decimal text of value. */
  valueDecimal: string;
  count: number;
}

export interface SeriesRange {
  from: number;
  to: number;
}
