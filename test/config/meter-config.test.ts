// Configuration of meters with dimensions: groupBy keys, the unique operator's field and the per-hour group bound,
// with messages naming events["<type>"].groupBy and the rule broken.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { parseConfig } from '../../src/config/load-config.js';
import { dimensionRulesOf } from '../../src/domain/rules.js';
import { problemsOf } from '../helpers/config-errors.js';

const meter = (spec: unknown) => problemsOf({ events: { tokens: spec } });

describe('meter configuration: groupBy and unique', () => {
  it('accepts 1 to 3 metadata keys and unique with a field, combined or not', () => {
    const cfg = parseConfig({
      events: {
        tokens: { op: 'sum', groupBy: ['model', 'region', 'tier'] },
        users: { op: 'unique', field: 'userId' },
        seats: { op: 'unique', field: 'userId', groupBy: ['plan'] },
        calls: { op: 'count' },
      },
      maxGroupsPerHour: 50,
    });
    assert.deepEqual(cfg.events.tokens, { op: 'sum', groupBy: ['model', 'region', 'tier'] });
    assert.deepEqual(cfg.events.seats, { op: 'unique', groupBy: ['plan'], field: 'userId' });
    assert.deepEqual(cfg.events.calls, { op: 'count' });
    assert.equal(cfg.maxGroupsPerHour, 50);
    const rules = dimensionRulesOf(cfg);
    assert.deepEqual(Object.keys(rules.types).sort(), ['seats', 'tokens', 'users']);
    assert.deepEqual(rules.types.users, { groupBy: null, uniqueField: 'userId' });
    assert.equal(rules.maxGroupsPerHour, 50);
  });

  it('names events["<type>"].groupBy for each broken rule', () => {
    const shape = 'must be an array of 1 to 3 distinct metadata keys, such as ["model", "region"]';
    assert.deepEqual(meter({ op: 'sum', groupBy: [] }), [`events["tokens"].groupBy: ${shape} (got 0 keys)`]);
    assert.deepEqual(meter({ op: 'sum', groupBy: ['a', 'b', 'c', 'd'] }), [`events["tokens"].groupBy: ${shape} (got 4 keys)`]);
    assert.deepEqual(meter({ op: 'sum', groupBy: 'model' }), [`events["tokens"].groupBy: ${shape} (got "model")`]);
    assert.deepEqual(meter({ op: 'sum', groupBy: ['model', 'model'] }), ['events["tokens"].groupBy[1]: duplicate of groupBy[0] ("model")']);
    assert.deepEqual(meter({ op: 'sum', groupBy: ['', 3] }), [
      'events["tokens"].groupBy[0]: must be a non-empty metadata key (got "")',
      'events["tokens"].groupBy[1]: must be a non-empty metadata key (got 3)',
    ]);
    assert.deepEqual(meter({ op: 'sum', groupBy: ['x'.repeat(129)] }), [
      'events["tokens"].groupBy[0]: must be at most 128 characters (got 129)',
    ]);
    assert.deepEqual(meter({ op: 'sum', groupBy: ['a\u0000b'] }), [
      'events["tokens"].groupBy[0]: must not contain NUL or lone UTF-16 surrogates',
    ]);
  });

  it('unique needs a field, and only unique takes one', () => {
    assert.deepEqual(meter({ op: 'unique' }), [
      'events["tokens"].field: is required with op "unique": the metadata key whose distinct values are counted',
    ]);
    assert.deepEqual(meter({ op: 'unique', field: '' }), ['events["tokens"].field: must be a non-empty metadata key (got "")']);
    assert.deepEqual(meter({ op: 'sum', field: 'userId' }), [
      'events["tokens"].field: is only for op "unique" (this meter\'s op is "sum")',
    ]);
  });

  it('bounds maxGroupsPerHour', () => {
    assert.deepEqual(problemsOf({ maxGroupsPerHour: 0 }), ['maxGroupsPerHour: must be an integer from 1 to 100000 (got 0)']);
    assert.deepEqual(problemsOf({ maxGroupsPerHour: 1.5 }), ['maxGroupsPerHour: must be an integer from 1 to 100000 (got 1.5)']);
    assert.deepEqual(problemsOf({ maxGroupsPerHour: 100_001 }), ['maxGroupsPerHour: must be an integer from 1 to 100000 (got 100001)']);
  });
});
