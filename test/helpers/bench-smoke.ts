// Owns the benchmark smoke runs: `npm run bench -- --quick` on a set of scenarios in a child process, bounded in
// time, and the check that each scenario printed a table row with numbers. Must never compare a figure with a target.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const TIMEOUT_MS = 120_000;

export function runBench(args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    for (const k of ['DATABASE_URL', 'PORT', 'METERHOOK_DATA_DIR', 'METERHOOK_API_KEYS', 'NODE_OPTIONS']) delete env[k];
    const proc = spawn(process.execPath, ['--import', 'tsx', path.join('bench', 'run.ts'), ...args], {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    proc.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    // SIGINT lets the harness stop its servers and remove its temp dirs; SIGKILL if it hangs anyway.
    const timer = setTimeout(() => {
      proc.kill('SIGINT');
      setTimeout(() => proc.kill('SIGKILL'), 10_000).unref();
    }, TIMEOUT_MS);
    proc.on('error', reject);
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Runs `--quick --scenario <ids>` and checks every scenario's rows: numbers with units, no NaN, and no file under bench/results. */
export async function smokeScenarios(ids: readonly string[]): Promise<void> {
  const resultsDir = path.join(REPO_ROOT, 'bench', 'results');
  const before = new Set(fs.existsSync(resultsDir) ? fs.readdirSync(resultsDir) : []);
  const out = path.join(os.tmpdir(), `meterhook-bench-smoke-${ids.join('-')}-${process.pid}.json`);
  const r = await runBench(['--quick', '--scenario', ids.join(','), '--out', out]);
  const context = `exit ${r.code} signal ${r.signal}\nstdout:\n${r.stdout}\nstderr (tail):\n${r.stderr.slice(-4000)}`;
  try {
    assert.equal(r.code, 0, context);
    const rows = r.stdout.split('\n').filter((l) => l.startsWith('|'));
    for (const id of ids) {
      const mine = rows.filter((l) => l.split('|')[1]?.trim() === id);
      assert.ok(mine.length > 0, `no table row for ${id}\n${context}`);
      for (const row of mine) {
        const measured = row.split('|')[3]?.trim() ?? '';
        assert.match(
          measured,
          /^-?[\d,]+(\.\d+)? \S.*$/,
          `${id}: the meterhook figure is not a number with a unit: ${JSON.stringify(row)}`,
        );
        assert.doesNotMatch(row, /\bNaN\b|Infinity|ERROR/, `${id}: ${row}`);
      }
    }
    assert.match(r.stdout, /JSON report: /, context);
    // B4 and B4G report the machine's floor for a sequential read next to their own figures.
    if (ids.some((id) => id === 'B4' || id === 'B4G'))
      assert.match(r.stdout, /B4: the machine's floor, \d+ sequential GET \/healthz .*: p50 [\d.]+ ms, p99 [\d.]+ ms/, context);
    // A quick run leaves nothing under bench/results.
    const after = fs.existsSync(resultsDir) ? fs.readdirSync(resultsDir) : [];
    assert.deepEqual(
      after.filter((f) => !before.has(f)),
      [],
      'a --quick run wrote into bench/results',
    );
  } finally {
    fs.rmSync(out, { force: true });
  }
}
