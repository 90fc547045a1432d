// `meterhook usage` for meters with dimensions, as a real process against a real server: --json passes the
// groups through as the API answers them; the human output prints each meter's groups under the totals, as an
// indented table of dimensions, exact value and events, "(none)" for a missing value, the overflow group
// named, and a value that could move the terminal quoted with its control characters escaped.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dimensionText } from '../../src/cli/commands/reads.js';
import { AT, cliHarness } from '../helpers/cli-harness.js';
import { http } from '../helpers/server-process.js';

const h = cliHarness('meterhook-cli-groups-', {
  periods: ['hourly', 'daily', 'monthly'],
  events: {
    'llm.tokens': { op: 'sum', groupBy: ['model', 'region'] },
    'active.users': { op: 'unique', field: 'userId', groupBy: ['plan'] },
    'api.calls': { op: 'sum' },
  },
  maxGroupsPerHour: 3,
});

const RED = '\u001b[31mred';
const at = (second: number) => new Date(Date.parse(AT) + second * 1000).toISOString();
const tokens = (value: number, metadata: Record<string, unknown>, second: number) => ({
  eventType: 'llm.tokens',
  customerId: 'cust_dims',
  value,
  timestamp: at(second),
  metadata,
});

describe('meterhook usage with groups', () => {
  it('--json passes the groups through; the human output lists them under the totals', async () => {
    const events = [
      tokens(0.1, { model: 'gpt-4o', region: 'eu' }, 0),
      tokens(5, { model: 'llama' }, 1),
      tokens(1, { model: RED, region: 'us' }, 2),
      tokens(7, { model: 'past-the-limit', region: 'us' }, 3), // a fourth group in the hour: the overflow group
      tokens(0.2, { model: 'gpt-4o', region: 'eu' }, 4),
      ...['u1', 'u2', 'u1'].map((userId, i) => ({
        eventType: 'active.users',
        customerId: 'cust_dims',
        value: 1,
        timestamp: at(i),
        metadata: { userId, plan: 'pro' },
      })),
      { eventType: 'api.calls', customerId: 'cust_dims', value: 3, timestamp: AT },
    ];
    const server = h.server();
    const sent = await http(`${server.url}/usagebatch`, { headers: { 'x-apikey': server.key! }, body: events });
    assert.equal(sent.status, 201, sent.text);
    const api = await http(`${server.url}/customers/cust_dims/usage?period=hourly&at=${encodeURIComponent(AT)}`, {
      headers: { 'x-apikey': server.key! },
    });

    const json = await h.cli(['usage', 'cust_dims', '--period', 'hourly', '--at', AT, '--json']);
    assert.equal(json.code, 0, json.stderr);
    const u = JSON.parse(json.stdout) as { groups: Record<string, unknown[]> };
    assert.deepEqual(u.groups, api.body.groups);
    assert.deepEqual(Object.keys(u.groups).sort(), ['active.users', 'llm.tokens']);
    assert.deepEqual(u.groups['llm.tokens']!.at(-1), { dimensions: {}, value: 7, valueDecimal: '7', count: 1, overflow: true });

    const human = await h.cli(['usage', 'cust_dims', '--period', 'hourly', '--at', AT]);
    assert.equal(human.code, 0, human.stderr);
    const lines = human.stdout.split('\n');
    const from = (title: string) => lines.slice(lines.indexOf(title), lines.indexOf(title) + 6);
    assert.deepEqual(from('  llm.tokens by model, region'), [
      '  llm.tokens by model, region',
      '    model                         region  value  events',
      '    "\\u001b[31mred"               us      1      1',
      '    gpt-4o                        eu      0.3    2',
      '    llama                         (none)  5      1',
      '    other (over the group limit)          7      1',
    ]);
    assert.deepEqual(from('  active.users by plan').slice(0, 3), [
      '  active.users by plan',
      '    plan  value  events',
      '    pro   2      3',
    ]);
    assert.match(human.stdout, /^ {2}llm\.tokens +13\.3 +5$/m, 'the totals table is as before');
    assert.ok(!human.stdout.includes('api.calls by'), 'a meter without groupBy has no groups');
    assert.ok(!human.stdout.includes('\u001b'), 'no escape character reaches the terminal');
  });

  it('prints a dimension value plainly, or quoted when it could pass for a marker or move the terminal', () => {
    assert.equal(dimensionText(null), '(none)');
    assert.equal(dimensionText('gpt-4o mini'), 'gpt-4o mini');
    assert.equal(dimensionText('<img src=x>'), '<img src=x>');
    assert.equal(dimensionText('(none)'), '"(none)"');
    assert.equal(dimensionText(''), '""');
    assert.equal(dimensionText(' eu'), '" eu"');
    assert.equal(dimensionText('a\tb'), '"a\\tb"');
    assert.equal(dimensionText('\u009b2J'), '"\\u009b2J"', 'a C1 control (CSI)');
    assert.equal(dimensionText('abc\u202edef'), '"abc\\u202edef"', 'a bidi override');
    assert.equal(dimensionText('x\u{f0000}'), '"x\\udb80\\udc00"', 'a private-use code point beyond the BMP');
  });
});
