// Smoke test of the benchmark harness, second half: `npm run bench -- --quick` runs B4G, B5, B6 and B7 end to end and
// prints a table row with numbers for each (bench-smoke runs the others). Never a speed check.

import { test } from 'node:test';
import { smokeScenarios, TIMEOUT_MS } from '../helpers/bench-smoke.js';

test('npm run bench -- --quick runs B4G, B5, B6 and B7 and prints numeric figures', { timeout: TIMEOUT_MS + 30_000 }, async () => {
  await smokeScenarios(['B4G', 'B5', 'B6', 'B7']);
});
