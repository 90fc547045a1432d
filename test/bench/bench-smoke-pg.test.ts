// Smoke test of the benchmark harness on PostgreSQL: `npm run bench -- --quick --store postgres --scenario BPG` with no
// DATABASE_URL starts its own throwaway durable cluster, runs the raw deduped insert and 1, 2 and 3 servers on one
// database, prints a row with numbers for each and the server settings it used. Never a speed check.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { runBench, TIMEOUT_MS } from '../helpers/bench-smoke.js';

test('BPG on a throwaway durable cluster prints the raw insert, the raw insert with hour totals, 1, 2 and 3 processes and the settings', {
  timeout: TIMEOUT_MS + 30_000,
}, async () => {
  const out = path.join(os.tmpdir(), `meterhook-bench-smoke-bpg-${process.pid}.json`);
  try {
    const r = await runBench(['--quick', '--store', 'postgres', '--scenario', 'BPG', '--out', out]);
    const context = `exit ${r.code} signal ${r.signal}\nstdout:\n${r.stdout}\nstderr (tail):\n${r.stderr.slice(-4000)}`;
    assert.equal(r.code, 0, context);
    assert.match(r.stdout, /postgres: throwaway cluster started by the benchmark; .*fsync=on, synchronous_commit=on/, context);
    const rows = r.stdout.split('\n').filter((l) => l.split('|')[1]?.trim() === 'BPG');
    const labels = rows.map((l) => l.split('|')[2]!.trim());
    assert.equal(rows.length, 5, context);
    assert.match(labels[0]!, /^raw deduped insert/);
    assert.match(labels[1]!, /^raw insert \+ hour totals upsert/);
    for (const [i, n] of ['1 process,', '2 processes,', '3 processes,'].entries()) assert.ok(labels[i + 2]!.includes(n), labels.join('\n'));
    for (const row of rows) {
      assert.match(row.split('|')[3]!.trim(), /^[\d,]+ ev\/s$/, row);
      assert.doesNotMatch(row, /\bNaN\b|Infinity|ERROR/, row);
    }
    assert.doesNotMatch(r.stdout, /DURABILITY PROBLEM/, context);
    const doc = JSON.parse(fs.readFileSync(out, 'utf8')) as { postgres?: { cluster: string; settings: Record<string, string> } };
    assert.equal(doc.postgres?.cluster, 'throwaway');
    for (const k of ['fsync', 'synchronous_commit', 'shared_buffers', 'wal_level', 'max_connections'])
      assert.ok(doc.postgres.settings[k], k);
    assert.equal(doc.postgres.settings.fsync, 'on');
    assert.equal(doc.postgres.settings.synchronous_commit, 'on');
  } finally {
    fs.rmSync(out, { force: true });
  }
});

test('--own-cluster without --store postgres is a usage error (exit 2)', async () => {
  const r = await runBench(['--own-cluster']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--own-cluster needs --store postgres/);
});
