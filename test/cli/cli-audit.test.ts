// `meterhook audit` as a real process against a real server: an admin action shows up with its key and
// route, the filters narrow it, --json prints the records, and a bad --action is a usage error (exit 2).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cliHarness } from '../helpers/cli-harness.js';

const h = cliHarness('meterhook-cli-audit-');

describe('meterhook audit', () => {
  it('lists admin actions, filtered, as a table or JSON', async () => {
    assert.equal((await h.cli(['trigger'])).code, 0);
    const listed = await h.cli(['audit']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /aggregation\.trigger\s+env\s+POST \/aggregations\/trigger\s+-\s+20[02]/);
    const json = await h.cli(['audit', '--json', '--action', 'aggregation.trigger', '--key', 'env']);
    assert.equal(json.code, 0, json.stderr);
    const rows = JSON.parse(json.stdout) as Array<{ action: string; keyId: string }>;
    assert.equal(rows.length, 1);
    assert.deepEqual([rows[0]!.action, rows[0]!.keyId], ['aggregation.trigger', 'env']);
    const none = await h.cli(['audit', '--action', 'delivery.retry']);
    assert.equal(none.code, 0);
    assert.match(none.stdout, /no audit records/);
    const bad = await h.cli(['audit', '--action', 'nope']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--action must be one of/);
  });
});
