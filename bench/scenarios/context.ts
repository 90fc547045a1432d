// Owns what every scenario receives from the entry point: options, the server runner, a temp root,
// the run nonce, and helpers shared by scenarios: a fresh store per run (a SQLite data dir, or a
// fresh database on the PostgreSQL server of DATABASE_URL), read-only checks of what a stopped
// server left in its store, and CPU profile summaries. Must never hold results: scenarios return them.

import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { BenchOptions } from '../args.js';
import { formatHot, summarizeProfileDir } from '../profile.js';
import type { Runner } from '../server-process.js';

export interface ScenarioContext {
  opts: BenchOptions;
  runner: Runner;
  tmpRoot: string;
  nonce: string;
  /** --store postgres: the server's admin URL; each run gets its own database on it. */
  adminDatabaseUrl: string | undefined;
}

/** A fresh, empty store for one server or in-process run. */
export interface FreshStore {
  /** Data dir (SQLite file, config file, anything else the run writes). */
  dir: string;
  /** Set for PostgreSQL: pass as DATABASE_URL. */
  databaseUrl: string | undefined;
  env: Record<string, string>;
  /** Runs a read-only query (`?` placeholders) against the store. */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Removes the data dir and drops the database. */
  dispose(): Promise<void>;
}

let freshCount = 0;

export async function freshStore(sc: ScenarioContext, name: string): Promise<FreshStore> {
  const dir = fs.mkdtempSync(path.join(sc.tmpRoot, `${name}-`));
  if (!sc.adminDatabaseUrl) {
    return {
      dir,
      databaseUrl: undefined,
      env: {},
      async query<T>(sql: string, params: unknown[] = []) {
        const db = new Database(path.join(dir, 'meterhook.db'), { readonly: true, fileMustExist: true });
        try {
          return db.prepare(sql).all(...params) as T[];
        } finally {
          db.close();
        }
      },
      async dispose() {
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const dbName = `mhbench_${sc.nonce}_${name.replace(/[^a-z0-9]/gi, '').toLowerCase()}_${++freshCount}`;
  const admin = new pg.Client({ connectionString: sc.adminDatabaseUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${dbName}`);
  } finally {
    await admin.end();
  }
  const u = new URL(sc.adminDatabaseUrl);
  u.pathname = `/${dbName}`;
  const databaseUrl = u.toString();
  return {
    dir,
    databaseUrl,
    env: { DATABASE_URL: databaseUrl },
    async query<T>(sql: string, params: unknown[] = []) {
      let i = 0;
      const c = new pg.Client({ connectionString: databaseUrl });
      await c.connect();
      try {
        return (
          await c.query(
            sql.replace(/\?/g, () => `$${++i}`),
            params,
          )
        ).rows as T[];
      } finally {
        await c.end();
      }
    },
    async dispose() {
      fs.rmSync(dir, { recursive: true, force: true });
      const a = new pg.Client({ connectionString: sc.adminDatabaseUrl });
      await a.connect();
      try {
        await a.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      } finally {
        await a.end();
      }
    },
  };
}

/** A --cpu-prof directory for a server run, when profiling was asked for. */
export function profDir(sc: ScenarioContext, name: string): string | undefined {
  if (!sc.opts.cpuProf) return undefined;
  const dir = path.join(sc.tmpRoot, 'profiles', name);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** Summarizes a server's profile into the scenario's notes and details (after the server stopped). */
export function collectProfile(dir: string | undefined, label: string, notes: string[], details: Record<string, unknown>): void {
  if (!dir) return;
  const s = summarizeProfileDir(dir);
  if (!s) {
    notes.push(`${label}: no CPU profile was written`);
    return;
  }
  details[`${label}Profile`] = s;
  notes.push(`${label}: hottest functions by self time (of ${s.totalMs} ms sampled; ${s.file}):\n${formatHot(s.hot)}`);
}

/** Bytes under a directory (the SQLite file and its WAL); 0 for PostgreSQL runs. */
export function dirBytes(dir: string): number {
  let total = 0;
  for (const name of fs.readdirSync(dir)) {
    const st = fs.statSync(path.join(dir, name));
    total += st.isDirectory() ? dirBytes(path.join(dir, name)) : st.size;
  }
  return total;
}

export const num = (v: unknown): number => Number(v);
