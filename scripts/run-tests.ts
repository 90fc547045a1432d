// Runs the whole suite: every test/**/*.test.ts on SQLite, then every suite whose store-contract marker
// names postgres again on a real PostgreSQL (TEST_DATABASE_URL, or a throwaway cluster started here). Never skips PostgreSQL.
import { spawnSync } from 'node:child_process';
import { startPgCluster } from '../test/helpers/postgres-cluster.js';
import { collectSuites, runsOnPostgres } from '../test/helpers/store-contract.js';

function run(files: string[], env: NodeJS.ProcessEnv): number {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=120000', ...files], {
    stdio: 'inherit',
    env: { ...process.env, NODE_ENV: 'test', ...env },
  });
  return r.status ?? 1;
}

const args = process.argv.slice(2);
const only = args.find((a) => a.startsWith('--store='))?.slice('--store='.length);
const filter = args.filter((a) => !a.startsWith('--'));
const files = collectSuites('test').filter((f) => filter.length === 0 || filter.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}

// The store contract: every suite marked `// store-contract: sqlite, postgres` runs again on PostgreSQL
// (test/helpers/store-contract.ts; test/meta/test-selection.test.ts fails for an in-process suite without a marker).
const contract = files.filter(runsOnPostgres);
if (args.includes('--list-postgres')) {
  for (const f of contract) console.log(f);
  process.exit(0);
}

let status = 0;
if (only !== 'postgres') {
  console.log(`\n# store: sqlite (${files.length} files)`);
  status = run(files, { METERHOOK_TEST_STORE: 'sqlite' }) || status;
}
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
