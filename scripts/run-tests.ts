// Runs the whole suite: every test/**/*.test.ts on SQLite, then every in-process suite again on a
// real PostgreSQL (TEST_DATABASE_URL, or a throwaway cluster started here). Never skips PostgreSQL.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { startPgCluster } from '../test/helpers/postgres-cluster.js';

function collect(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...collect(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

function run(files: string[], env: NodeJS.ProcessEnv): number {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=120000', ...files],
    { stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test', ...env } },
  );
  return r.status ?? 1;
}

const args = process.argv.slice(2);
const only = args.find((a) => a.startsWith('--store='))?.slice('--store='.length);
const filter = args.filter((a) => !a.startsWith('--'));
const files = collect('test').filter((f) => filter.length === 0 || filter.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}

let status = 0;
if (only !== 'postgres') {
  console.log(`\n# store: sqlite (${files.length} files)`);
  status = run(files, { METERHOOK_TEST_STORE: 'sqlite' }) || status;
}
// The store contract: every suite that builds the app in-process runs again on PostgreSQL.
const contract = files.filter((f) => readFileSync(f, 'utf8').includes("from '../helpers/app.js'") && !f.includes('/e2e/'));
if (only !== 'sqlite' && contract.length > 0) {
  const cluster = await startPgCluster();
  try {
    console.log(`\n# store: postgres (${contract.length} files, ${cluster.url.replace(/\/\/[^@]*@/, '//')})`);
    status = run(contract, { METERHOOK_TEST_STORE: 'postgres', TEST_DATABASE_URL: cluster.url }) || status;
  } finally {
    await cluster.stop();
  }
}
process.exit(status);
