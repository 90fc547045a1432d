// Which suites the PostgreSQL pass runs: every suite that builds the app or opens a store in-process declares its store passes.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { collectSuites, opensStore, readStoreContract, storeBuilders } from '../helpers/store-contract.js';

const suites = collectSuites('test').map((file) => ({ file, text: readFileSync(file, 'utf8') }));
const builders = storeBuilders('test/helpers');

describe('store-contract markers', () => {
  it('finds the helpers that build an app or open a store', () => {
    for (const name of ['buildTestApp', 'openTestStore', 'reopenTestStore', 'hookApp']) assert.ok(builders.includes(name), name);
    assert.ok(!builders.includes('startReceiver'), 'a helper returning something else is not a builder');
  });

  it('every suite that builds the app or opens a store in-process has a marker', () => {
    const missing = suites
      .map(({ file, text }) => ({ file, opens: opensStore(text, builders), contract: readStoreContract(text, file) }))
      .filter((s) => s.opens && !s.contract)
      .map((s) => `${s.file} (calls ${s.opens})`);
    assert.deepEqual(missing, [], 'add "// store-contract: sqlite, postgres" (or "sqlite|self — <reason>") to the header');
  });

  it('every suite marked for both stores builds an app or opens a store (else the PostgreSQL pass repeats it for nothing)', () => {
    const both = suites.filter(({ file, text }) => readStoreContract(text, file)?.passes === 'sqlite, postgres');
    const idle = both.filter(({ text }) => !opensStore(text, builders));
    assert.deepEqual(
      idle.map((s) => s.file),
      [],
    );
  });

  it('the PostgreSQL pass is not empty, and every suite that skips it says why', () => {
    const contracts = suites.map(({ file, text }) => ({ file, contract: readStoreContract(text, file) }));
    assert.ok(contracts.filter((c) => c.contract?.passes === 'sqlite, postgres').length >= 20);
    for (const { file, contract } of contracts) {
      if (contract && contract.passes !== 'sqlite, postgres') assert.ok(contract.reason.length >= 10, `${file}: say why`);
    }
  });
});

describe('reading a marker', () => {
  const head = (...lines: string[]) => [...lines, "import assert from 'node:assert/strict';", ''].join('\n');

  it('reads it anywhere in the leading comment block, and only there', () => {
    assert.deepEqual(readStoreContract(head('// A suite.', '// store-contract: sqlite, postgres')), { passes: 'sqlite, postgres' });
    assert.deepEqual(readStoreContract(head('// store-contract: self — starts its own cluster')), {
      passes: 'self',
      reason: 'starts its own cluster',
    });
    assert.deepEqual(readStoreContract(head('// A suite.', '// store-contract: sqlite - about SQLite pages')), {
      passes: 'sqlite',
      reason: 'about SQLite pages',
    });
    assert.equal(readStoreContract(head('// A suite.')), undefined);
    const late = head('// A suite.', '', '// store-contract: sqlite, postgres');
    assert.equal(readStoreContract(late), undefined, 'after the header it is no marker');
  });

  it('refuses a malformed marker instead of reading it as SQLite only', () => {
    assert.throws(() => readStoreContract(head('// store-contract: postgres')), /must be/);
    assert.throws(() => readStoreContract(head('// store-contract: sqlite,postgres')), /must be/);
    assert.throws(() => readStoreContract(head('// store-contract: sqlite')), /must say why/);
    assert.throws(() => readStoreContract(head('// store-contract: self')), /must say why/);
    assert.throws(() => readStoreContract(head('// store-contract: sqlite, postgres — because')), /needs no reason/);
  });

  it('sees a store opened in code, not in a comment or a string', () => {
    assert.equal(opensStore('const s = new SqliteStore({ file });', builders), 'new SqliteStore()');
    assert.equal(opensStore('const s = new PostgresStore({ url });', builders), 'new PostgresStore()');
    assert.equal(opensStore('const t = await buildTestApp({ now });', builders), 'buildTestApp()');
    assert.equal(opensStore('const t = await hookApp(o);', builders), 'hookApp()');
    assert.equal(opensStore('// buildTestApp() is not called here\nconst x = 1;', builders), undefined);
    assert.equal(opensStore("const hint = 'call buildTestApp() first';", builders), undefined);
    assert.equal(opensStore("import type { TestApp } from '../helpers/app.js';", builders), undefined);
  });
});
