// closeDuePeriods and late data: an event for a period already closed revises it, and every later one again.
// store-contract: sqlite, postgres
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { closeDuePeriods } from '../../src/aggregate/close-due-periods.js';
import { aggregationId } from '../../src/domain/aggregation.js';
import { T, withApp, post, onlyAgg, ev } from '../helpers/close-due-periods.js';

describe('closeDuePeriods: late data', () => {
  const lateEventTitle =
    'a late event after the close gives revision 2 with aggregation.updated and the previous numbers; a duplicate re-send gives nothing';
  it(lateEventTitle, async () => {
    await withApp({ now: '2026-02-10T12:00:00Z' }, async (t) => {
      const january = [
        ev('api.calls', 'a', 10, '2026-01-10T08:00:00Z', 'j1'),
        ev('api.calls', 'a', 5.5, '2026-01-31T23:59:59.999Z', 'j2'),
        ev('storage.bytes', 'a', 100, '2026-01-15T00:00:00Z', 'j3'),
        ev('test.first', 'a', 7, '2026-01-20T00:00:00Z', 'j4'),
      ];
      await post(t, january);
      const r1 = await closeDuePeriods(t.ctx);
      assert.ok(r1.finalized > 0);
      const monthId = aggregationId('a', 'monthly', T('2026-01-01T00:00:00Z'));
      const rev1 = await onlyAgg(t, { customerId: 'a', period: 'monthly' });
      assert.equal(rev1.periodKey, '202601');
      assert.equal(rev1.revision, 1);
      assert.equal(rev1.final, true);
      assert.deepEqual(rev1.events, { 'api.calls': 15.5, 'storage.bytes': 100, 'test.first': 7 });
      assert.deepEqual(rev1.eventCounts, { 'api.calls': 2, 'storage.bytes': 1, 'test.first': 1 });

      // One more late event for January, earlier than the previous "first" and bigger than the max.
      t.clock.set('2026-02-11T12:00:00Z');
      await post(t, [
        ev('test.first', 'a', -3, '2026-01-08T12:00:00Z', 'late1'),
        ev('storage.bytes', 'a', 250, '2026-01-08T12:00:00Z', 'late2'),
      ]);
      // Not yet closed again: the final document still shows revision 1.
      assert.equal((await onlyAgg(t, { customerId: 'a', period: 'monthly' })).revision, 1);
      const r2 = await closeDuePeriods(t.ctx);
      // Reopened exactly: hourly 2026010812 and daily 20260108 (new), weekly 202602 and monthly 202601 (revised).
      assert.equal(r2.finalized, 4);
      assert.equal(r2.created, 2);
      assert.equal(r2.updated, 2);

      const rev2 = await onlyAgg(t, { customerId: 'a', period: 'monthly' });
      assert.equal(rev2.revision, 2);
      assert.equal(rev2.final, true);
      assert.equal(rev2.timestamp, '2026-02-11T12:00:00.000Z');
      assert.deepEqual(rev2.events, { 'api.calls': 15.5, 'storage.bytes': 250, 'test.first': -3 });
      assert.deepEqual(rev2.eventCounts, { 'api.calls': 2, 'storage.bytes': 2, 'test.first': 2 });

      const msgs = await t.store.listMessages(monthId);
      assert.deepEqual(
        msgs.map((m) => [m.revision, m.type]),
        [
          [1, 'aggregation.completed'],
          [2, 'aggregation.updated'],
        ],
      );
      assert.notEqual(msgs[0]!.id, msgs[1]!.id);
      const body = JSON.parse(msgs[1]!.body) as Record<string, unknown>;
      assert.equal(body.type, 'aggregation.updated');
      assert.equal(body.revision, 2);
      assert.equal(body.final, true);
      assert.deepEqual((body.data as { events: unknown }).events, rev2.events);
      assert.deepEqual((body.data as { eventCounts: unknown }).eventCounts, rev2.eventCounts);
      assert.deepEqual(body.previous, {
        events: rev1.events,
        eventCounts: rev1.eventCounts,
        eventsDecimal: rev1.eventsDecimal,
        revision: 1,
      });
      assert.deepEqual((body.data as { eventsDecimal: unknown }).eventsDecimal, rev2.eventsDecimal);
      assert.deepEqual(Object.keys(body).slice(0, 5), ['type', 'customerId', 'period', 'data', 'created']);

      // The day of the late events had nothing before: its first document is revision 1, a completed message.
      const day = await onlyAgg(t, { customerId: 'a', period: 'daily', periodKey: '20260108' });
      assert.equal(day.revision, 1);
      assert.deepEqual(day.eventCounts, { 'storage.bytes': 1, 'test.first': 1 });
      assert.deepEqual(
        (await t.store.listMessages(day.id)).map((m) => m.type),
        ['aggregation.completed'],
      );
      // Week 202602 (5–11 Jan) already held j1: it is revised, with the new events added.
      const week = await onlyAgg(t, { customerId: 'a', period: 'weekly', periodKey: '202602' });
      assert.equal(week.revision, 2);
      assert.deepEqual(week.events, { 'api.calls': 10, 'storage.bytes': 250, 'test.first': -3 });
      assert.deepEqual(
        (await t.store.listMessages(week.id)).map((m) => m.type),
        ['aggregation.completed', 'aggregation.updated'],
      );

      // A re-send of already-stored ids (same content, another batch) changes nothing.
      t.clock.set('2026-02-12T12:00:00Z');
      const resent = await post(t, [january[0]!, ev('test.first', 'a', -3, '2026-01-08T12:00:00Z', 'late1')]);
      assert.equal(resent.inserted, 0);
      assert.equal(resent.duplicates, 2);
      const r3 = await closeDuePeriods(t.ctx);
      assert.equal(r3.finalized, 0);
      assert.equal(r3.messages, 0);
      const still = await onlyAgg(t, { customerId: 'a', period: 'monthly' });
      assert.equal(still.revision, 2);
      assert.equal(still.timestamp, '2026-02-11T12:00:00.000Z');
      assert.equal((await t.store.listMessages(monthId)).length, 2);
    });
  });

  it('every late event bumps the revision again (revision 3 carries revision 2 as previous)', async () => {
    await withApp({ now: '2026-02-10T12:00:00Z' }, async (t) => {
      await post(t, [ev('test.count', 'a', 1, '2026-01-20T10:00:00Z')]);
      await closeDuePeriods(t.ctx);
      await post(t, [ev('test.count', 'a', 1, '2026-01-21T10:00:00Z')]);
      await closeDuePeriods(t.ctx);
      await post(t, [ev('test.count', 'a', 1, '2026-01-22T10:00:00Z')]);
      await closeDuePeriods(t.ctx);
      const m = await onlyAgg(t, { customerId: 'a', period: 'monthly' });
      assert.equal(m.revision, 3);
      assert.deepEqual(m.events, { 'test.count': 3 });
      const msgs = await t.store.listMessages(m.id);
      assert.deepEqual(
        msgs.map((x) => x.revision),
        [1, 2, 3],
      );
      const body = JSON.parse(msgs[2]!.body) as { previous: unknown };
      assert.deepEqual(body.previous, {
        events: { 'test.count': 2 },
        eventCounts: { 'test.count': 2 },
        eventsDecimal: { 'test.count': '2' },
        revision: 2,
      });
    });
  });
});
