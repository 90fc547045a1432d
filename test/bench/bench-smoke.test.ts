// Smoke test of the benchmark harness: `npm run bench -- --quick` must run B1–B7 end to end and
// print a table row with numbers for each scenario. It checks that the harness works, never speed:
// no figure is compared with a target here (performance.md: a benchmark is never a timed test in CI).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const TIMEOUT_MS = 120_000;

function runBench(args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
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

test('npm run bench -- --quick runs every scenario and prints numeric figures', { timeout: TIMEOUT_MS + 30_000 }, async () => {
  const resultsDir = path.join(REPO_ROOT, 'bench', 'results');
  const before = new Set(fs.existsSync(resultsDir) ? fs.readdirSync(resultsDir) : []);
  const r = await runBench(['--quick']);
  const context = `exit ${r.code} signal ${r.signal}\nstdout:\n${r.stdout}\nstderr (tail):\n${r.stderr.slice(-4000)}`;
  assert.equal(r.code, 0, context);

  const rows = r.stdout.split('\n').filter((l) => l.startsWith('|'));
  for (const id of ['B1', 'B1G', 'B2', 'B3', 'B4', 'B4G', 'B5', 'B6', 'B7']) {
    const mine = rows.filter((l) => l.split('|')[1]?.trim() === id);
    assert.ok(mine.length > 0, `no table row for ${id}\n${context}`);
    for (const row of mine) {
      const measured = row.split('|')[3]?.trim() ?? '';
      assert.match(measured, /^-?[\d,]+(\.\d+)? \S.*$/, `${id}: the meterhook figure is not a number with a unit: ${JSON.stringify(row)}`);
      assert.doesNotMatch(row, /\bNaN\b|Infinity|ERROR/, `${id}: ${row}`);
    }
  }
  assert.match(r.stdout, /JSON report: /, context);
  // A quick run leaves nothing under bench/results.
  const after = fs.existsSync(resultsDir) ? fs.readdirSync(resultsDir) : [];
  assert.deepEqual(
    after.filter((f) => !before.has(f)),
    [],
    'a --quick run wrote into bench/results',
  );
});

test('unknown flags are a usage error (exit 2)', async () => {
  const r = await runBench(['--no-such-flag']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /Usage: npm run bench/);
});
