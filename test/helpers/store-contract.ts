// Reads and checks the store-contract marker that decides which store passes of the test runner run a suite.
// Must never guess: a malformed marker is an error, never read as "SQLite only".

import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * The marker, one line of a suite's leading comment block:
 *   // store-contract: sqlite, postgres    runs in the SQLite pass and again in the PostgreSQL pass
 *   // store-contract: sqlite — <reason>   runs in the SQLite pass only (about SQLite itself)
 *   // store-contract: self — <reason>     runs once and picks its stores itself (its own cluster, server processes)
 */
export type StoreContract = { passes: 'sqlite, postgres' } | { passes: 'sqlite' | 'self'; reason: string };

const MARKER = /^\/\/\s*store-contract:\s*(.*)$/;
const VALUE = /^(sqlite, postgres|sqlite|self)(?:\s+[—-]\s+(\S.*))?$/;

/** The suite's marker, or undefined when its leading comment block has none; throws on a malformed one. */
export function readStoreContract(text: string, file = 'suite'): StoreContract | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith('//')) break;
    const m = MARKER.exec(line.trim());
    if (!m) continue;
    const v = VALUE.exec(m[1]!.trim());
    if (!v) throw new Error(`${file}: store-contract must be "sqlite, postgres", "sqlite — <reason>" or "self — <reason>": ${line}`);
    if (v[1] === 'sqlite, postgres') {
      if (v[2]) throw new Error(`${file}: a suite that runs on both stores needs no reason: ${line}`);
      return { passes: 'sqlite, postgres' };
    }
    if (!v[2]) throw new Error(`${file}: store-contract "${v[1]}" skips the PostgreSQL pass and must say why: ${line}`);
    return { passes: v[1] as 'sqlite' | 'self', reason: v[2] };
  }
  return undefined;
}

export function runsOnPostgres(file: string): boolean {
  return readStoreContract(readFileSync(file, 'utf8'), file)?.passes === 'sqlite, postgres';
}

/** Every test/**\/*.test.ts under `dir`, sorted. */
export function collectSuites(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...collectSuites(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

/**
 * Names of test helpers that build an in-process app or open a store: every function exported from
 * `helpersDir` that is declared to return Promise<TestApp> or Promise<Store>, or whose body opens a store
 * (`new SqliteStore(`, `new PostgresStore(`) or calls such a helper (as a `withApp(opts, fn)` would).
 */
export function storeBuilders(helpersDir: string): string[] {
  const bodies = new Map<string, string>();
  for (const name of readdirSync(helpersDir).sort()) {
    if (!name.endsWith('.ts')) continue;
    const text = readFileSync(path.join(helpersDir, name), 'utf8');
    const starts = [...text.matchAll(/^export\s+(?:async\s+)?function\s+(\w+)/gm)];
    starts.forEach((m, i) => {
      bodies.set(m[1]!, text.slice(m.index, starts[i + 1]?.index ?? text.length));
    });
  }
  const returnsStore = /^[^{]*?\)\s*:\s*Promise<(?:TestApp|Store)>\s*\{/;
  const builders = new Set([...bodies].filter(([, body]) => returnsStore.test(body)).map(([name]) => name));
  for (let grew = true; grew; ) {
    grew = false;
    for (const [name, body] of bodies) {
      if (builders.has(name) || !opensStore(body.slice(body.indexOf('{')), [...builders])) continue;
      builders.add(name);
      grew = true;
    }
  }
  return [...builders].sort();
}

/** What in a suite's code builds an app or opens a store in-process (comments and strings aside), if anything. */
export function opensStore(text: string, builders: string[]): string | undefined {
  const code = text
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '')
    .replace(/'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"/g, "''");
  const direct = /\bnew\s+(SqliteStore|PostgresStore)\s*\(/.exec(code);
  if (direct) return `new ${direct[1]}()`;
  for (const b of builders) if (new RegExp(`\\b${b}\\s*\\(`).test(code)) return `${b}()`;
  return undefined;
}
