// The dashboard runs in the browser and keeps its own list of delivery statuses (in display order):
// it must name exactly the statuses of domain/deliveries.ts, so a status added there shows up here too.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { DELIVERY_STATUSES } from '../../src/domain/deliveries.js';

describe('dashboard delivery statuses', () => {
  it('are the domain statuses, each once', () => {
    const text = readFileSync(new URL('../../src/dashboard/deliveries.js', import.meta.url), 'utf8');
    const literal = /export const STATUSES = \[([^\]]*)\]/.exec(text);
    assert.ok(literal, 'src/dashboard/deliveries.js exports STATUSES as an array literal');
    const shown = [...literal[1]!.matchAll(/'([a-z_]+)'/g)].map((m) => m[1]!);
    assert.equal(new Set(shown).size, shown.length, `a status is listed twice: ${shown.join(', ')}`);
    assert.deepEqual([...shown].sort(), [...DELIVERY_STATUSES].sort());
  });
});
