// Smoke test of the benchmark harness, first half: `npm run bench -- --quick` runs B1, B1G, B2, B3 and B4 end to end
// and prints a table row with numbers for each (bench-smoke-rest runs the others; the halves keep each file within
// the runner's per-file time). It checks that the harness works, never speed: no figure is compared with a target.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runBench, smokeScenarios, TIMEOUT_MS } from '../helpers/bench-smoke.js';

test('npm run bench -- --quick runs B1, B1G, B2, B3 and B4 and prints numeric figures', { timeout: TIMEOUT_MS + 30_000 }, async () => {
  await smokeScenarios(['B1', 'B1G', 'B2', 'B3', 'B4']);
});

test('unknown flags are a usage error (exit 2)', async () => {
  const r = await runBench(['--no-such-flag']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /Usage: npm run bench/);
});
