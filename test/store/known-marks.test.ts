// The marks a PostgreSQL process remembers: known only at the generation they were learned at, a
// newer generation forgets the older ones of that instance, an older one teaches nothing, and the
// memory stays under its byte bound by forgetting the instances learned first.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KnownMarks } from '../../src/store/postgres/pg-close-generations.js';

const gens = (entries: Array<[string, number, number]>) => new Map(entries.map(([p, s, g]) => [`${p}\u0000${s}`, g]));

describe('KnownMarks', () => {
  it('knows a mark only at the generation it was learned at', () => {
    const k = new KnownMarks();
    k.learn({ generations: gens([['hourly', 0, 3]]), marks: [{ period: 'hourly', periodStart: 0, customerId: 'a' }] });
    assert.equal(k.knows('hourly', 0, 'a', gens([['hourly', 0, 3]])), true);
    assert.equal(k.knows('hourly', 0, 'a', gens([['hourly', 0, 4]])), false, 'a close moved the generation');
    assert.equal(k.knows('hourly', 0, 'b', gens([['hourly', 0, 3]])), false, 'another customer');
    assert.equal(k.knows('daily', 0, 'a', gens([['daily', 0, 3]])), false, 'another instance');
    // A newer generation replaces the instance's marks; an older one is ignored.
    k.learn({ generations: gens([['hourly', 0, 4]]), marks: [{ period: 'hourly', periodStart: 0, customerId: 'b' }] });
    assert.equal(k.knows('hourly', 0, 'a', gens([['hourly', 0, 4]])), false);
    assert.equal(k.knows('hourly', 0, 'b', gens([['hourly', 0, 4]])), true);
    k.learn({ generations: gens([['hourly', 0, 3]]), marks: [{ period: 'hourly', periodStart: 0, customerId: 'c' }] });
    assert.equal(k.knows('hourly', 0, 'c', gens([['hourly', 0, 3]])), false);
    assert.equal(k.marks, 1);
  });

  it('stays under its byte bound, forgetting the instances learned first', () => {
    const k = new KnownMarks(10_000);
    for (let h = 0; h < 50; h++) {
      const marks = Array.from({ length: 20 }, (_, i) => ({ period: 'hourly', periodStart: h, customerId: `customer-${i}` }));
      k.learn({ generations: gens([['hourly', h, 0]]), marks });
    }
    // 20 marks of 11-character ids are about 1,400 bytes an instance: at most 7 instances fit.
    assert.ok(k.marks <= 7 * 20 && k.marks >= 20, `${k.marks} marks kept`);
    assert.equal(k.knows('hourly', 49, 'customer-0', gens([['hourly', 49, 0]])), true, 'the newest is kept');
    assert.equal(k.knows('hourly', 0, 'customer-0', gens([['hourly', 0, 0]])), false, 'the first is forgotten');
  });
});
