// meterhook import as a real process against a real server, for text no store can keep: rows with
// lone UTF-16 surrogates (JSON escapes) and rows whose bytes are not UTF-8 are rejected with their
// line numbers, nothing of them is stored, and the rest of the file is.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { AT, cliHarness } from '../helpers/cli-harness.js';

const h = cliHarness('meterhook-cli-text-');
const { cli, write, usageOf } = h;

describe('meterhook import refuses text no store can keep', () => {
  it('NDJSON rows with lone UTF-16 surrogates are rejected with their line numbers; nothing of them is stored', async () => {
    const row = (extra: Record<string, unknown>) =>
      JSON.stringify({ eventType: 'api.calls', customerId: 'cust_lone_nd', value: 1, timestamp: AT, ...extra });
    const text = [
      row({ value: 2, id: 'nd-ok' }),
      row({ id: 'k\ud800' }), // JSON.stringify writes the escape \ud800, as any producer would
      row({ customerId: 'cust_lone_nd\udc00' }),
      row({ metadata: { tags: ['x', '\ud800'] } }),
      row({ eventType: 'api.calls\ud800' }),
      row({ value: 3, metadata: { emoji: '\ud83d\ude00' } }),
    ].join('\n');
    const file = write('lone.ndjson', `${text}\n`);
    const first = await cli(['import', file, '--json']);
    assert.equal(first.code, 1, first.stderr);
    const s1 = JSON.parse(first.stdout) as { rows: number; inserted: number; rejected: Array<{ line: number; errors: string[] }> };
    assert.equal(s1.rows, 6);
    assert.equal(s1.inserted, 2);
    assert.deepEqual(
      s1.rejected.map((r) => [r.line, r.errors]),
      [
        [2, ['id must not contain lone UTF-16 surrogates']],
        [3, ['customerId must not contain lone UTF-16 surrogates']],
        [4, ['metadata values must not contain lone UTF-16 surrogates (at metadata.tags[1])']],
        [5, ['eventType must not contain lone UTF-16 surrogates']],
      ],
    );
    assert.deepEqual((await usageOf('cust_lone_nd')).eventCounts, { 'api.calls': 2 });
    const rerun = await cli(['import', file]);
    assert.equal(rerun.code, 1);
    assert.match(rerun.stdout, /6 rows read, 0 inserted, 2 duplicates, 4 rejected/);
    assert.match(rerun.stdout, /^ {2}line 2: id must not contain lone UTF-16 surrogates$/m);
    assert.deepEqual((await usageOf('cust_lone_nd')).events, { 'api.calls': 5 }, 'nothing doubled');
  });

  it('CSV rows whose bytes are not UTF-8 (an encoded lone surrogate) are rejected with their line; nothing of them is stored', async () => {
    const bytes = (s: string) => Buffer.from(s, 'utf8');
    const lone = Buffer.from([0xed, 0xa0, 0x80]); // U+D800 as CESU-8/WTF-8: a decoder would turn it into U+FFFD
    const csv = Buffer.concat([
      bytes(`eventType,customerId,value,timestamp,id,metadata\r\napi.calls,cust_lone_csv,1,${AT},csv-ok,\r\n`),
      bytes(`api.calls,cust_lone_csv`),
      lone,
      bytes(`,1,${AT},,\r\n`), // line 3
      bytes(`api.calls,cust_lone_csv,1,${AT},"two`),
      bytes('\n'),
      lone,
      bytes(`",\r\n`), // lines 4-5, one record
      bytes(`api.calls,cust_lone_csv,1,${AT},,"{""note"":""\\ud800""}"\r\n`), // line 6: the escape, in valid UTF-8
      bytes(`api.calls,cust_lone_csv,4,${AT},csv-ok-2,"{""emoji"":""\u{1F600}""}"\r\n`),
    ]);
    const file = path.join(h.dir(), 'lone.csv');
    fs.writeFileSync(file, csv);
    const first = await cli(['import', file, '--json']);
    assert.equal(first.code, 1, first.stderr);
    const s1 = JSON.parse(first.stdout) as { rows: number; inserted: number; rejected: Array<{ line: number; errors: string[] }> };
    assert.equal(s1.rows, 5);
    assert.equal(s1.inserted, 2);
    assert.deepEqual(
      s1.rejected.map((r) => r.line),
      [3, 4, 6],
    );
    assert.match(s1.rejected[0]!.errors[0]!, /^not valid UTF-8 \(for example an encoded lone UTF-16 surrogate\)/);
    assert.match(s1.rejected[1]!.errors[0]!, /^not valid UTF-8/);
    assert.deepEqual(s1.rejected[2]!.errors, ['metadata values must not contain lone UTF-16 surrogates (at metadata.note)']);
    assert.deepEqual((await usageOf('cust_lone_csv')).events, { 'api.calls': 5 });
    assert.deepEqual((await usageOf(encodeURIComponent('cust_lone_csv\ufffd'))).events, {}, 'no customer was created under U+FFFD');

    const header = path.join(h.dir(), 'lone-header.csv');
    fs.writeFileSync(header, Buffer.concat([bytes('eventType,customerId,value,metadata.'), lone, bytes('\napi.calls,c,1,x\n')]));
    const bad = await cli(['import', header]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /CSV header \(line 1\) is not valid UTF-8/);
  });
});
