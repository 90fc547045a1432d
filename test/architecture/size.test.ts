// Every source file stays small enough to read whole: at most 500 lines, each at most 140 characters.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

const MAX_LINES = 500;
const MAX_WIDTH = 140;

/** The tracked .ts and .js files of the code folders (git's list, so build output and dependencies are out). */
const files = execFileSync('git', ['ls-files', 'src', 'test', 'scripts', 'bench', 'examples'], { encoding: 'utf8' })
  .split('\n')
  .filter((f) => /\.(ts|js)$/.test(f));

describe('source size', () => {
  it('finds the files it checks', () => {
    assert.ok(files.length > 100, `found ${files.length} files`);
    assert.ok(files.includes('src/main.ts'));
  });

  it(`keeps every file at most ${MAX_LINES} lines`, () => {
    const long = files
      .map((f) => ({ f, n: readFileSync(f, 'utf8').replace(/\n$/, '').split('\n').length }))
      .filter((x) => x.n > MAX_LINES)
      .map((x) => `${x.f}: ${x.n} lines`);
    assert.deepEqual(long, []);
  });

  it(`keeps every line at most ${MAX_WIDTH} characters`, () => {
    const wide: string[] = [];
    for (const f of files) {
      readFileSync(f, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          const width = [...line].length;
          if (width > MAX_WIDTH) wide.push(`${f}:${i + 1}: ${width} characters`);
        });
    }
    assert.deepEqual(wide, []);
  });
});
