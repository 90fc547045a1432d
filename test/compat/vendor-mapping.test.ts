// The one mapping of vendor events onto capture input: valueProperty (and its configuration errors), numeric
// text, Unix seconds and RFC 3339 timestamps, metadata from the other properties, count types, and capture's
// messages in a vendor's field names. Pure functions: no store, no server.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load-config.js';
import {
  inVendorTerms,
  numericValue,
  rfc3339ToMillis,
  toCaptureInput,
  unixSecondsToMillis,
  type VendorEvent,
  type VendorFieldNames,
} from '../../src/domain/vendor-events.js';
import { problemsOf } from '../helpers/config-errors.js';

const NAMES: VendorFieldNames = {
  eventType: 'code',
  customerId: 'subject',
  id: 'transaction_id',
  timestamp: 'timestamp',
  bag: 'properties',
  property: (p) => `properties.${p}`,
};
const rules = parseConfig({ events: { calls: { op: 'sum' }, tokens: { op: 'sum', valueProperty: 'tokens' }, hits: { op: 'count' } } });
const event = (over: Partial<VendorEvent>): VendorEvent => ({
  eventType: 'calls',
  customerId: 'c1',
  id: 'e1',
  timestamp: undefined,
  timestampRule: 'must be fine',
  properties: { value: 2 },
  ...over,
});

describe('vendor event mapping', () => {
  it('reads valueProperty, defaulting to value, per event type', () => {
    assert.deepEqual(rules.valueProperties, Object.assign(Object.create(null), { calls: 'value', tokens: 'tokens', hits: 'value' }));
    const m = toCaptureInput(event({ eventType: 'tokens', properties: { tokens: '12.5', value: 3, model: 'x' } }), rules, NAMES);
    assert.deepEqual(m.errors, []);
    assert.deepEqual(m.element, { eventType: 'tokens', customerId: 'c1', value: 12.5, metadata: { value: 3, model: 'x' }, id: 'e1' });
    assert.equal(m.valueName, 'properties.tokens');
  });

  it('refuses a missing or non-numeric value, and reads none for a count type', () => {
    assert.deepEqual(toCaptureInput(event({ properties: {} }), rules, NAMES).errors, ['properties.value is required']);
    assert.deepEqual(toCaptureInput(event({ properties: { value: true } }), rules, NAMES).errors, [
      'properties.value must be a number (got true)',
    ]);
    assert.deepEqual(toCaptureInput(event({ properties: 'x' }), rules, NAMES).errors, [
      'properties must be an object',
      'properties.value is required',
    ]);
    const count = toCaptureInput(event({ eventType: 'hits', properties: { value: 'not read', route: '/a' } }), rules, NAMES);
    assert.deepEqual(count.errors, []);
    assert.equal(count.element.value, 1);
    assert.deepEqual(count.element.metadata, { value: 'not read', route: '/a' });
  });

  it('keeps identifying properties and a __proto__ key as they are', () => {
    const props = JSON.parse('{"value": 1, "stripe_customer_id": "cus", "__proto__": {"polluted": true}}') as Record<string, unknown>;
    const m = toCaptureInput(event({ properties: props, consumed: ['stripe_customer_id'] }), rules, NAMES);
    const metadata = m.element.metadata as Record<string, unknown>;
    assert.deepEqual(Object.keys(metadata), ['__proto__']);
    assert.equal(({} as { polluted?: boolean }).polluted, undefined);
  });

  it('parses numeric text, Unix seconds and RFC 3339, and names a timestamp that does not parse', () => {
    assert.equal(numericValue(' 7 '), 7);
    assert.equal(numericValue('1e3'), 1000);
    assert.ok(Number.isNaN(numericValue('7 apples')));
    assert.ok(Number.isNaN(numericValue(Number.POSITIVE_INFINITY)));
    assert.equal(unixSecondsToMillis(1768212000), Date.parse('2026-01-12T10:00:00Z'));
    assert.equal(unixSecondsToMillis('1768212000.123'), Date.parse('2026-01-12T10:00:00.123Z'));
    assert.ok(Number.isNaN(unixSecondsToMillis('-5')));
    assert.equal(rfc3339ToMillis('2026-01-12T11:00:00+01:00'), Date.parse('2026-01-12T10:00:00Z'));
    assert.equal(rfc3339ToMillis(undefined), undefined);
    assert.ok(Number.isNaN(rfc3339ToMillis(1768212000)));
    const m = toCaptureInput(event({ timestamp: Number.NaN }), rules, NAMES);
    assert.deepEqual(m.errors, ['timestamp must be fine']);
  });

  it("puts capture's messages in the vendor's field names", () => {
    assert.equal(inVendorTerms('customerId is required', NAMES, 'properties.tokens'), 'subject is required');
    assert.equal(
      inVendorTerms('id must be a string of 1 to 128 characters', NAMES, 'v'),
      'transaction_id must be a string of 1 to 128 characters',
    );
    assert.equal(inVendorTerms('value must be at most 1e15', NAMES, 'properties.tokens'), 'properties.tokens must be at most 1e15');
    assert.equal(
      inVendorTerms('metadata must be at most 8192 bytes when serialized', NAMES, 'v'),
      'properties must be at most 8192 bytes when serialized',
    );
    assert.equal(inVendorTerms('Invalid event type: x', NAMES, 'v'), 'Invalid event type: x');
  });

  it('refuses a valueProperty that is not a name, or one on a count type, naming it', () => {
    assert.deepEqual(problemsOf({ events: { calls: { op: 'sum', valueProperty: 3 } } }), [
      'events["calls"].valueProperty: must be a property name: a string of 1 to 128 characters such as "tokens" (got 3)',
    ]);
    assert.deepEqual(problemsOf({ events: { 'api.hits': { op: 'count', valueProperty: 'n' } } }), [
      'events["api.hits"].valueProperty: a count type counts events and reads no value; remove valueProperty',
    ]);
  });
});
