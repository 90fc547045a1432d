// Starts a throwaway, real PostgreSQL cluster for tests (system initdb/pg_ctl), or uses
// TEST_DATABASE_URL when set. Never a mock, never a silent skip: if neither works, tests fail loudly.

import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

const BIN_DIRS = ['/usr/lib/postgresql/17/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/15/bin', '/usr/local/bin', '/usr/bin'];

function findBin(name: string): string {
  for (const d of BIN_DIRS) {
    const p = path.join(d, name);
    if (fs.existsSync(p)) return p;
  }
  throw new Error(
    `PostgreSQL's ${name} was not found (looked in ${BIN_DIRS.join(', ')}). ` +
      'Install the server (apt-get install postgresql) or set TEST_DATABASE_URL.',
  );
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface PgCluster {
  /** A connection URL to the cluster's `postgres` database as a superuser. */
  url: string;
  /** Creates a fresh database and returns its URL; each test file gets its own. */
  createDatabase(prefix?: string): Promise<string>;
  /** Stop the server (fast shutdown); used by outage tests. */
  stopServer(): void;
  startServer(): void;
  stop(): Promise<void>;
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Runs a PostgreSQL binary; as root it runs as the postgres user, which initdb and postgres require. */
function runPg(bin: string, args: string[]): void {
  const cmd = isRoot ? 'runuser' : bin;
  const full = isRoot ? ['-u', 'postgres', '--', bin, ...args] : args;
  const r = spawnSync(cmd, full, { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${path.basename(bin)} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
}

async function createDatabaseOn(url: string, prefix: string): Promise<string> {
  const name = `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

export async function startPgCluster(): Promise<PgCluster> {
  const external = process.env.TEST_DATABASE_URL;
  if (external) {
    return {
      url: external,
      createDatabase: (prefix = 'mh') => createDatabaseOn(external, prefix),
      stopServer: () => {
        throw new Error('cannot stop an external TEST_DATABASE_URL server');
      },
      startServer: () => undefined,
      stop: async () => undefined,
    };
  }
  const initdb = findBin('initdb');
  const pgCtl = findBin('pg_ctl');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterhook-pg-'));
  const data = path.join(dir, 'data');
  if (isRoot) execFileSync('chown', ['-R', 'postgres', dir]);
  fs.chmodSync(dir, 0o755);
  runPg(initdb, ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-locale', '--no-sync']);
  const port = await freePort();
  const opts =
    `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c synchronous_commit=off ` +
    '-c full_page_writes=off -c max_connections=200';
  const start = () => runPg(pgCtl, ['-D', data, '-l', path.join(dir, 'log'), '-o', opts, '-w', '-t', '30', 'start']);
  const stopServer = () => runPg(pgCtl, ['-D', data, '-m', 'fast', '-w', 'stop']);
  start();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let stopped = false;
  const cleanup = () => {
    if (stopped) return;
    stopped = true;
    try {
      stopServer();
    } catch {
      // already stopped
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', cleanup);
  return {
    url,
    createDatabase: (prefix = 'mh') => createDatabaseOn(url, prefix),
    stopServer,
    startServer: start,
    stop: async () => cleanup(),
  };
}
