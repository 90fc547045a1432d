// Owns what a benchmark result looks like: rows for the table, per-scenario details for the JSON,
// percentile maths, the printed table and the JSON file. Must never judge a --quick run against targets.

import fs from 'node:fs';
import path from 'node:path';

export type Verdict = 'pass' | 'miss' | 'n/a';

/** One line of the printed table. Numbers are absolute figures; ratio is meterhook / baseline. */
export interface Row {
  scenario: string;
  label: string;
  value: number;
  unit: string;
  baseline?: number;
  ratio?: number;
  p50Ms?: number;
  p99Ms?: number;
  rssMb?: number;
  target?: string;
  verdict?: Verdict;
}

export interface ScenarioResult {
  id: string;
  title: string;
  rows: Row[];
  /** Everything measured, for the JSON report. */
  details: Record<string, unknown>;
  notes: string[];
  error?: string;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx]!;
}

export function summarize(values: readonly number[]): {
  count: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
} {
  const s = [...values].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / Math.max(1, s.length);
  return {
    count: s.length,
    min: s[0] ?? Number.NaN,
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    max: s[s.length - 1] ?? Number.NaN,
    mean,
  };
}

export const round = (n: number | undefined, digits = 2): number | undefined =>
  n === undefined || !Number.isFinite(n) ? n : Math.round(n * 10 ** digits) / 10 ** digits;

export const mb = (bytes: number): number => Math.round((bytes / (1024 * 1024)) * 10) / 10;

/** Applies a verdict only in full runs: a quick run's figures say nothing about speed. */
export function judge(quick: boolean, ok: boolean): Verdict {
  return quick ? 'n/a' : ok ? 'pass' : 'miss';
}

function fmt(n: number | undefined, unit = ''): string {
  if (n === undefined || Number.isNaN(n)) return '-';
  const abs = Math.abs(n);
  const digits = abs >= 1000 ? 0 : abs >= 100 ? 1 : abs >= 10 ? 2 : 3;
  const s = n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
  return unit ? `${s} ${unit}` : s;
}

export function renderTable(results: ScenarioResult[]): string {
  const header = ['scenario', 'measure', 'meterhook', 'baseline', 'ratio', 'p50 ms', 'p99 ms', 'peak RSS MB', 'target', 'verdict'];
  const lines: string[][] = [];
  for (const r of results) {
    if (r.error) {
      lines.push([r.id, `ERROR: ${r.error.split('\n')[0]!.slice(0, 100)}`, '-', '-', '-', '-', '-', '-', '-', 'error']);
      continue;
    }
    for (const row of r.rows) {
      lines.push([
        row.scenario,
        row.label,
        fmt(row.value, row.unit),
        fmt(row.baseline, row.baseline === undefined ? '' : row.unit),
        row.ratio === undefined || Number.isNaN(row.ratio) ? '-' : `${fmt(row.ratio)}x`,
        fmt(row.p50Ms),
        fmt(row.p99Ms),
        fmt(row.rssMb),
        row.target ?? '-',
        row.verdict ?? '-',
      ]);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i >= 2 && i <= 7 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`;
  const sep = `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`;
  return [line(header), sep, ...lines.map(line)].join('\n');
}

export function writeJson(file: string, doc: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(doc, null, 2)}\n`);
  fs.renameSync(tmp, file);
}

/** A line of progress on stderr, so stdout stays the table and its notes. */
export function progress(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}
