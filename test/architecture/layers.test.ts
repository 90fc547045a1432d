// The source folders form an acyclic stack: each folder imports only folders below it, and no files import each other in a cycle.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

/**
 * From the bottom up. A folder may import itself and the folders of layers listed before it, never a
 * peer in its own layer. `domain` and the SDK (`client`, which ships alone) import nothing else.
 */
export const LAYERS = [
  ['domain', 'client'],
  ['config'],
  ['store'],
  ['observability'],
  ['auth'],
  ['webhooks'],
  ['aggregate'],
  ['ingest'],
  ['http'],
  ['services'],
  ['main.ts'],
  ['cli'],
] as const;
/**
 * The dashboard runs in the browser: nothing imports it, and it imports nothing of the server. Its
 * JSDoc may name the SDK's wire types (type-only: the browser never loads them).
 */
const STANDALONE = ['dashboard'];
const ALLOWED = new Set(['dashboard -> client']);

const SRC = path.resolve('src');

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (/\.(ts|js)$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Every relative specifier a file imports or re-exports, type-only and dynamic imports included. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  const patterns = [/^\s*(?:import|export)\s[^;]*?from\s*['"](\.{1,2}\/[^'"]+)['"]/gms, /\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g];
  for (const re of patterns) for (const m of text.matchAll(re)) out.push(m[1]!);
  return out.map((spec) => {
    const resolved = path.resolve(path.dirname(file), spec);
    return resolved.replace(/\.js$/, '.ts');
  });
}

/** The folder of a file directly under src/, or the file's own name when it sits at the top. */
function unitOf(file: string): string {
  return path.relative(SRC, file).split(path.sep)[0]!;
}

function rankOf(unit: string): number {
  return LAYERS.findIndex((layer) => (layer as readonly string[]).includes(unit));
}

const files = sourceFiles(SRC);
const graph = new Map(files.map((f) => [f, importsOf(f).filter((t) => t.startsWith(SRC))]));

describe('source layers', () => {
  it('place every folder and top-level file of src/ in exactly one layer', () => {
    const units = [...new Set(files.map(unitOf))];
    for (const u of units) {
      assert.ok(rankOf(u) >= 0 || STANDALONE.includes(u), `src/${u} is in no layer of test/architecture/layers.test.ts`);
    }
  });

  it('import only downwards: a folder uses itself and the layers below it, and domain/ nothing else', () => {
    const wrong: string[] = [];
    for (const [from, targets] of graph) {
      const a = unitOf(from);
      for (const to of targets) {
        const b = unitOf(to);
        if (a === b || ALLOWED.has(`${a} -> ${b}`)) continue;
        const upward = STANDALONE.includes(a) || STANDALONE.includes(b) || rankOf(b) >= rankOf(a);
        if (upward) wrong.push(`${path.relative(SRC, from)} -> ${path.relative(SRC, to)}`);
      }
    }
    assert.deepEqual(wrong, [], `imports that go up or sideways:\n${wrong.join('\n')}`);
  });

  it('have no import cycle between files, type-only imports included', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (f: string): void => {
      state.set(f, 'open');
      stack.push(f);
      for (const t of graph.get(f) ?? []) {
        if (!graph.has(t)) continue;
        if (state.get(t) === 'open')
          cycles.push(
            stack
              .slice(stack.indexOf(t))
              .concat(t)
              .map((x) => path.relative(SRC, x))
              .join(' -> '),
          );
        else if (!state.has(t)) visit(t);
      }
      stack.pop();
      state.set(f, 'done');
    };
    for (const f of files) if (!state.has(f)) visit(f);
    assert.deepEqual(cycles, [], `import cycles:\n${cycles.join('\n')}`);
  });

  it('sees the imports it checks (the scan finds the stack itself)', () => {
    const main = path.join(SRC, 'main.ts');
    assert.ok((graph.get(main) ?? []).length > 5, 'main.ts imports were found');
    assert.ok(files.length > 50, `found ${files.length} source files`);
  });
});
