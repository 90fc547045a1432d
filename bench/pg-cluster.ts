// Owns the benchmark's own PostgreSQL: a throwaway, durable cluster (system initdb/pg_ctl; fsync on,
// synchronous_commit on, the default shared_buffers) started when --store postgres has no DATABASE_URL,
// and the server settings every PostgreSQL run reports. Must never tune durability away: figures
// measured without fsync say nothing about a production database, and must never outlive the run.

import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from './server-process.js';

const BIN_DIRS = ['/usr/lib/postgresql/17/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/15/bin', '/usr/local/bin', '/usr/bin'];

/** The settings a figure depends on, read from the server (SHOW), printed and kept in the JSON. */
export const REPORTED_SETTINGS = [
  'server_version',
  'fsync',
  'synchronous_commit',
  'full_page_writes',
  'shared_buffers',
  'wal_level',
  'max_connections',
];

export interface BenchCluster {
  /** A superuser URL to the cluster's `postgres` database. */
  url: string;
  dataDir: string;
  stop(): void;
}

function findBin(name: string): string {
  for (const d of BIN_DIRS) {
    const p = path.join(d, name);
    if (fs.existsSync(p)) return p;
  }
  throw new Error(`PostgreSQL's ${name} was not found (looked in ${BIN_DIRS.join(', ')}); install the server or set DATABASE_URL`);
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Runs a PostgreSQL binary; as root it runs as the postgres user, which initdb and postgres require. */
function runPg(bin: string, args: string[]): void {
  const cmd = isRoot ? 'runuser' : bin;
  const full = isRoot ? ['-u', 'postgres', '--', bin, ...args] : args;
  const r = spawnSync(cmd, full, { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${path.basename(bin)} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
}

/**
 * Starts a fresh cluster in a temp dir on a free loopback port. Durable: fsync and synchronous_commit
 * stay on and shared_buffers stays at its default; only max_connections is raised, so that three
 * servers' pools and the raw-insert baseline fit at once.
 */
export async function startBenchCluster(): Promise<BenchCluster> {
  const initdb = findBin('initdb');
  const pgCtl = findBin('pg_ctl');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterhook-bench-pg-'));
  const data = path.join(dir, 'data');
  if (isRoot) execFileSync('chown', ['-R', 'postgres', dir]);
  fs.chmodSync(dir, 0o755);
  // --no-sync only skips flushing initdb's own files; the running server is durable.
  runPg(initdb, ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-locale', '--no-sync']);
  const port = await freePort();
  const opts = `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=on -c synchronous_commit=on -c max_connections=200`;
  runPg(pgCtl, ['-D', data, '-l', path.join(dir, 'log'), '-o', opts, '-w', '-t', '60', 'start']);
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    try {
      runPg(pgCtl, ['-D', data, '-m', 'immediate', '-w', 'stop']);
    } catch {
      // already stopped
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', stop);
  return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, dataDir: data, stop };
}

/** The REPORTED_SETTINGS of the server behind url. */
export async function serverSettings(url: string): Promise<Record<string, string>> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await c.connect();
  try {
    const out: Record<string, string> = {};
    for (const name of REPORTED_SETTINGS) out[name] = String((await c.query(`SHOW ${name}`)).rows[0]?.[name] ?? '?');
    return out;
  } finally {
    await c.end().catch(() => undefined);
  }
}

export function formatSettings(s: Record<string, string>): string {
  return REPORTED_SETTINGS.map((k) => `${k}=${s[k] ?? '?'}`).join(', ');
}
