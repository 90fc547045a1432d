// The store merges a customer's hour states per event type (current usage reads only that merge).
// It must equal merging the hour rows one by one, first/last ties broken by arrival, on both stores.
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { mergeInto, type RollupState } from '../../src/domain/rollup-state.js';
import type { RollupRow } from '../../src/domain/records.js';
import { buildTestApp } from '../helpers/app.js';

const HOUR = 3_600_000;
const FROM = Date.UTC(2026, 0, 1);

function mergeByType(rows: RollupRow[]): Map<string, RollupState> {
  const out = new Map<string, RollupState>();
  for (const r of rows) {
    const { eventType, hour: _hour, ...state } = r;
    const cur = out.get(eventType);
    if (cur) mergeInto(cur, state);
    else out.set(eventType, { ...state });
  }
  return out;
}

test('mergedRollups equals the merge of readRollups for any events, including equal timestamps', async () => {
  const t = await buildTestApp({ now: '2026-03-01T00:00:00Z' });
  let run = 0;
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            type: fc.constantFrom('api.calls', 'storage.bytes', 'response.time.ms'),
            // Few distinct instants, so ties on event time are common.
            hour: fc.integer({ min: 0, max: 40 }),
            minute: fc.constantFrom(0, 30),
            value: fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true }),
          }),
          { minLength: 1, maxLength: 60 },
        ),
        fc.integer({ min: 0, max: 20 }),
        fc.integer({ min: 21, max: 41 }),
        async (events, fromHour, toHour) => {
          const customerId = `merge-${run++}`;
          const units = events.map((e, i) => ({
            receivedAt: FROM,
            events: [
              {
                customerId,
                eventType: e.type,
                value: e.value,
                metadata: null,
                tsExplicit: true,
                id: `e${i}`,
                ts: FROM + e.hour * HOUR + e.minute * 60_000,
              },
            ],
          }));
          await t.ctx.store.appendEvents(units, ['hourly', 'daily']);
          const from = FROM + fromHour * HOUR;
          const to = FROM + toHour * HOUR;
          const rows = await t.ctx.store.readRollups(customerId, from, to);
          const want = mergeByType(rows);
          const merged = await t.ctx.store.mergedRollups(customerId, from, to);
          assert.deepEqual(new Set(merged.map((m) => m.eventType)), new Set(want.keys()));
          for (const m of merged) {
            const { eventType, hour, ...state } = m;
            assert.equal(hour, from);
            const w = want.get(eventType)!;
            assert.equal(state.count, w.count);
            // Sums are exact decimals: the database's merge and the row-by-row merge agree to the digit.
            assert.deepEqual(state, w);
          }
        },
      ),
      { numRuns: 40 },
    );
  } finally {
    await t.close();
  }
});
