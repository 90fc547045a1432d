// The client commands as real processes against a real server: send, import (NDJSON and CSV, bad
// rows reported with their line numbers, reruns counted as duplicates), trigger, aggregations list
// and usage, in both human and --json output.

import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { AT, cliHarness } from '../helpers/cli-harness.js';
import { http } from '../helpers/server-process.js';

const h = cliHarness('meterhook-cli-');
const { cli, write, usageOf } = h;

describe('meterhook send', () => {
  it('captures one event, and a repeat with the same --id is a duplicate', async () => {
    const first = await cli([
      'send',
      'api.calls',
      '--customer',
      'cust_send',
      '--value',
      '3',
      '--timestamp',
      AT,
      '--id',
      'send-1',
      '--metadata',
      '{"region":"eu"}',
    ]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^captured api\.calls for cust_send: value 3 at .* \(id send-1, evt_\w+\)$/m);

    const again = await cli([
      'send',
      'api.calls',
      '-c',
      'cust_send',
      '-v',
      '3',
      '-t',
      AT,
      '--id',
      'send-1',
      '-m',
      '{"region":"eu"}',
      '--json',
    ]);
    assert.equal(again.code, 0, again.stderr);
    const body = JSON.parse(again.stdout) as { duplicate: boolean; id: string; customerId: string };
    assert.equal(body.duplicate, true);
    assert.equal(body.id, 'send-1');

    const noId = await cli(['send', 'api.calls', '-c', 'cust_send', '-v', '0.5', '-t', AT, '--json']);
    assert.equal(noId.code, 0, noId.stderr);
    assert.match((JSON.parse(noId.stdout) as { id: string }).id, /^[0-9a-f-]{36}$/, 'an id is assigned');

    const u = await usageOf('cust_send');
    assert.equal(u.events['api.calls'], 3.5);
    assert.equal(u.eventCounts['api.calls'], 2);
    const events = await http(`${h.server().url}/events?customerId=cust_send`, { headers: { 'x-apikey': h.server().key! } });
    assert.deepEqual(events.body.find((e: { id: string }) => e.id === 'send-1').metadata, { region: 'eu' });
  });

  it('exits 1 on an HTTP error (409 conflict, 400 unknown type) with the server message', async () => {
    const conflict = await cli(['send', 'api.calls', '-c', 'cust_send', '-v', '4', '-t', AT, '--id', 'send-1']);
    assert.equal(conflict.code, 1);
    assert.match(conflict.stderr, /HTTP 409: Event id conflict: "send-1"/);

    const badType = await cli(['send', 'no.such.type', '-c', 'cust_send', '-v', '1', '--json']);
    assert.equal(badType.code, 1);
    const err = JSON.parse(badType.stdout) as { status: number; exitCode: number; body: { error: string } };
    assert.equal(err.status, 400);
    assert.equal(err.exitCode, 1);
    assert.match(err.body.error, /^Invalid event type: no\.such\.type/);
  });

  it('exits 2 on bad input before contacting the server', async () => {
    const badValue = await cli(['send', 'api.calls', '-c', 'x', '-v', 'abc']);
    assert.equal(badValue.code, 2);
    assert.match(badValue.stderr, /--value must be a number/);
    const badMeta = await cli(['send', 'api.calls', '-c', 'x', '-v', '1', '--metadata', '[1,2]']);
    assert.equal(badMeta.code, 2);
    assert.match(badMeta.stderr, /--metadata must be a JSON object/);
  });
});

describe('meterhook import', () => {
  it('imports NDJSON, reports bad rows with their line numbers, and a rerun counts everything as duplicates', async () => {
    const rows = [
      { eventType: 'api.calls', customerId: 'cust_nd', value: 1, timestamp: AT },
      { eventType: 'api.calls', customerId: 'cust_nd', value: 2, timestamp: AT, metadata: { plan: 'pro' } },
      { eventType: 'api.calls', customerId: 'cust_nd', value: 'x', timestamp: AT }, // line 3: refused by the server
      { eventType: 'api.calls', customerId: 'cust_nd', value: 4, timestamp: AT, id: 'nd-explicit' },
    ];
    const text = [
      ...rows.map((r) => JSON.stringify(r)),
      '',
      '{not json',
      JSON.stringify({ eventType: 'api.calls', customerId: 'cust_nd', value: 8, timestamp: AT }),
    ].join('\n');
    const file = write('events.ndjson', `${text}\n`);

    const first = await cli(['import', file, '--json']);
    assert.equal(first.code, 1, 'rejected rows make the exit code 1');
    const s1 = JSON.parse(first.stdout) as {
      rows: number;
      inserted: number;
      duplicates: number;
      rejected: Array<{ line: number; errors: string[] }>;
      completed: boolean;
    };
    assert.equal(s1.rows, 6);
    assert.equal(s1.inserted, 4);
    assert.equal(s1.duplicates, 0);
    assert.equal(s1.completed, true);
    assert.deepEqual(
      s1.rejected.map((r) => r.line),
      [3, 6],
    );
    assert.deepEqual(s1.rejected[0]!.errors, ['value must be a finite number']);
    assert.match(s1.rejected[1]!.errors[0]!, /^invalid JSON/);
    assert.deepEqual((await usageOf('cust_nd')).events, { 'api.calls': 15 });

    const rerun = await cli(['import', file]);
    assert.equal(rerun.code, 1);
    assert.match(rerun.stdout, /6 rows read, 0 inserted, 4 duplicates, 2 rejected/);
    assert.match(rerun.stdout, /^ {2}line 3: value must be a finite number$/m);
    assert.match(rerun.stdout, /^ {2}line 6: invalid JSON/m);
    assert.deepEqual((await usageOf('cust_nd')).events, { 'api.calls': 15 }, 'nothing doubled');
  });

  it('imports CSV with metadata columns and quoted fields; a bad row is reported with its line', async () => {
    const csv = [
      'eventType,customerId,value,timestamp,id,metadata.region,metadata',
      `api.calls,cust_csv,1,${AT},,eu,`,
      `api.calls,cust_csv,2,${AT},,"us, east","{""tier"":""pro""}"`,
      `api.calls,cust_csv,abc,${AT},,,`, // line 4: not a number
      'api.calls,cust_csv,3', // line 5: too few fields
      `api.calls,cust_csv,4,${AT},csv-explicit,"two`, // a quoted field spanning lines 6-7
      'lines",',
      `api.calls,cust_csv,5,${Date.parse(AT)},,,`, // epoch ms timestamp
    ].join('\r\n');
    const file = write('events.csv', `${csv}\r\n`);

    const first = await cli(['import', file, '--json']);
    assert.equal(first.code, 1, first.stderr);
    const s1 = JSON.parse(first.stdout) as {
      rows: number;
      inserted: number;
      rejected: Array<{ line: number; id?: string; errors: string[] }>;
    };
    assert.equal(s1.rows, 6);
    assert.equal(s1.inserted, 4);
    assert.deepEqual(s1.rejected, [
      { line: 4, id: s1.rejected[0]!.id, errors: ['value must be a finite number'] },
      { line: 5, errors: ['expected 7 fields, found 3'] },
    ]);
    assert.deepEqual((await usageOf('cust_csv')).events, { 'api.calls': 12 });
    const events = await http(`${h.server().url}/events?customerId=cust_csv`, { headers: { 'x-apikey': h.server().key! } });
    const byValue = new Map((events.body as Array<{ value: number; metadata: unknown; id: string }>).map((e) => [e.value, e]));
    assert.deepEqual(byValue.get(1)!.metadata, { region: 'eu' });
    assert.deepEqual(byValue.get(2)!.metadata, { region: 'us, east', tier: 'pro' });
    assert.deepEqual(byValue.get(4)!.metadata, { region: 'two\nlines' });
    assert.equal(byValue.get(4)!.id, 'csv-explicit');
    assert.match(byValue.get(1)!.id, /^imp_/);

    const rerun = await cli(['import', file, '--json']);
    assert.equal(rerun.code, 1);
    const s2 = JSON.parse(rerun.stdout) as { inserted: number; duplicates: number; rejected: Array<{ line: number }> };
    assert.equal(s2.inserted, 0);
    assert.equal(s2.duplicates, 4);
    assert.deepEqual(
      s2.rejected.map((r) => r.line),
      [4, 5],
    );
    assert.deepEqual((await usageOf('cust_csv')).events, { 'api.calls': 12 }, 'nothing doubled');
  });

  it('a clean file imports in several batches with progress lines, exits 0, and its rerun is all duplicates', async () => {
    const lines = Array.from({ length: 25 }, (_, i) =>
      JSON.stringify({ eventType: 'api.calls', customerId: 'cust_clean', value: i + 1, timestamp: AT }),
    );
    const file = write('clean.jsonl', `${lines.join('\n')}\n`);
    const first = await cli(['import', file, '--batch-size', '10']);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^imported .*clean\.jsonl \(ndjson\): 25 rows read, 25 inserted, 0 duplicates, 0 rejected$/m);
    const progress = first.stderr.split('\n').filter((l) => l.startsWith('import: '));
    assert.equal(progress.length, 3, `one plain progress line per batch when stderr is not a TTY:\n${first.stderr}`);
    assert.match(progress[2]!, /^import: 100% {2}25 rows {2}inserted 25 {2}duplicates 0 {2}rejected 0$/);

    const rerun = await cli(['import', file, '--json', '--no-progress']);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.equal(rerun.stderr, '');
    const s = JSON.parse(rerun.stdout) as { rows: number; inserted: number; duplicates: number };
    assert.deepEqual([s.rows, s.inserted, s.duplicates], [25, 0, 25]);
    assert.deepEqual((await usageOf('cust_clean')).events, { 'api.calls': 325 });
  });

  it('exits 2 for a missing file, an unknown format or a bad CSV header, sending nothing', async () => {
    const missing = await cli(['import', path.join(h.dir(), 'nope.csv')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read .*nope\.csv/);
    const unknown = await cli(['import', write('events.txt', 'x\n')]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /--format ndjson or --format csv/);
    const header = await cli(['import', write('bad-header.csv', 'eventType,customer,value\napi.calls,c,1\n')]);
    assert.equal(header.code, 2);
    assert.match(header.stderr, /unknown column "customer"/);
  });
});

describe('meterhook trigger, aggregations list, usage', () => {
  it('trigger --json computes provisional documents', async () => {
    const r = await cli(['trigger', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const body = JSON.parse(r.stdout) as { message: string; provisional: number; customersFound: number };
    assert.equal(body.message, 'Aggregation jobs queued for processing');
    assert.ok(body.provisional > 0);
    assert.ok(body.customersFound >= 4);
    const human = await cli(['trigger']);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^finalized \d+ period\(s\), \d+ provisional document\(s\) for \d+ customer\(s\)$/m);
  });

  it('aggregations list --json filters by customer and period, and --limit follows pages', async () => {
    const r = await cli(['aggregations', 'list', '--customer', 'cust_clean', '--period', 'monthly', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const docs = JSON.parse(r.stdout) as Array<{ customerId: string; period: string; events: Record<string, number>; final: boolean }>;
    assert.equal(docs.length, 1);
    assert.equal(docs[0]!.customerId, 'cust_clean');
    assert.equal(docs[0]!.period, 'monthly');
    assert.deepEqual(docs[0]!.events, { 'api.calls': 325 });
    assert.equal(docs[0]!.final, false);

    const limited = await cli(['aggregations', 'list', '--limit', '3', '--json']);
    assert.equal(limited.code, 0, limited.stderr);
    assert.equal((JSON.parse(limited.stdout) as unknown[]).length, 3);

    const human = await cli(['aggregations', 'list', '--customer', 'cust_clean', '--limit', '2']);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^period +key +customer +state +events \(count\)$/m);
    assert.match(human.stdout, /cust_clean +provisional +api\.calls=325 \(25\)/);
    assert.match(human.stdout, /^more: meterhook aggregations list --cursor \S+$/m);

    const none = await cli(['aggregations', 'list', '--customer', 'nobody', '--json']);
    assert.deepEqual(JSON.parse(none.stdout), []);
  });

  it('usage --json and human output', async () => {
    const r = await cli(['usage', 'cust_csv', '--period', 'hourly', '--at', AT, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const u = JSON.parse(r.stdout) as {
      customerId: string;
      period: string;
      events: Record<string, number>;
      eventCounts: Record<string, number>;
    };
    assert.equal(u.customerId, 'cust_csv');
    assert.equal(u.period, 'hourly');
    assert.deepEqual(u.events, { 'api.calls': 12 });
    assert.deepEqual(u.eventCounts, { 'api.calls': 4 });

    const human = await cli(['usage', 'cust_csv', '--period', 'hourly', '--at', String(Date.parse(AT))]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^cust_csv {2}hourly \d{10} {2}\S+ → \S+ {2}open$/m);
    assert.match(human.stdout, /^ {2}api\.calls +12 +4$/m);

    const nobody = await cli(['usage', 'nobody', '--json']);
    assert.equal(nobody.code, 0);
    assert.deepEqual((JSON.parse(nobody.stdout) as { events: object }).events, {});
  });
});
