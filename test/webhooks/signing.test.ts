// Signing: the Standard Webhooks key rules, rotation, the legacy scheme, and that the standard
// `standardwebhooks` package (not our own code) accepts what we produce and rejects tampering.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';

import { signedHeaders, signLegacy, signStandard, standardKey, standardSecretForm } from '../../src/webhooks/signing.js';

const nowSec = (): number => Math.floor(Date.now() / 1000);
const WHSEC_32 = `whsec_${randomBytes(32).toString('base64')}`;
const WHSEC_16 = `whsec_${Buffer.alloc(16, 7).toString('base64')}`;
const WHSEC_SHORT = `whsec_${Buffer.from('only-15-bytes!!').toString('base64')}`; // 15 bytes decoded
const PLAIN = 'my-plain-shared-secret';
const BODY = JSON.stringify({ type: 'aggregation.completed', customerId: 'cust_1', data: { events: { 'api.calls': 3 } } });
const MSG_ID = 'msg_01JTESTSIGNING';

function stdHeaders(id: string, ts: number, signature: string): Record<string, string> {
  return { 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': signature };
}

/** Independent legacy reference: hex HMAC-SHA256 keyed by utf8(secret) over "<ts>.<body>". */
function legacyReference(secret: string, ts: number, body: string | Buffer): string {
  const h = createHmac('sha256', Buffer.from(secret, 'utf8'));
  h.update(Buffer.from(`${ts}.`, 'utf8'));
  h.update(typeof body === 'string' ? Buffer.from(body, 'utf8') : body);
  return `v1=${h.digest('hex')}`;
}

describe('standardKey / standardSecretForm', () => {
  it('uses the decoded bytes of a whsec_ secret that decodes to at least 16 bytes', () => {
    assert.deepEqual(standardKey(WHSEC_32), Buffer.from(WHSEC_32.slice('whsec_'.length), 'base64'));
    assert.equal(standardKey(WHSEC_32).length, 32);
    assert.deepEqual(standardKey(WHSEC_16), Buffer.alloc(16, 7));
  });

  it('uses the UTF-8 bytes of the whole string for plain, short-whsec and malformed-whsec secrets', () => {
    assert.deepEqual(standardKey(PLAIN), Buffer.from(PLAIN, 'utf8'));
    assert.deepEqual(standardKey(WHSEC_SHORT), Buffer.from(WHSEC_SHORT, 'utf8'));
    assert.deepEqual(standardKey('whsec_not*base64*at*all!'), Buffer.from('whsec_not*base64*at*all!', 'utf8'));
    assert.deepEqual(standardKey('geheim-äöü-日本'), Buffer.from('geheim-äöü-日本', 'utf8'));
  });

  it('standardSecretForm is the secret itself for a long whsec_ secret and whsec_<base64(utf8)> otherwise', () => {
    assert.equal(standardSecretForm(WHSEC_32), WHSEC_32);
    assert.equal(standardSecretForm(PLAIN), `whsec_${Buffer.from(PLAIN, 'utf8').toString('base64')}`);
    assert.equal(standardSecretForm(WHSEC_SHORT), `whsec_${Buffer.from(WHSEC_SHORT, 'utf8').toString('base64')}`);
    // The receiver-side key derived from the shown form is exactly the key we sign with.
    for (const s of [WHSEC_32, PLAIN, WHSEC_SHORT, 'geheim-äöü-日本']) {
      const shown = standardSecretForm(s);
      assert.deepEqual(Buffer.from(shown.slice('whsec_'.length), 'base64'), standardKey(s), s);
    }
  });
});

describe('signStandard', () => {
  for (const [name, secret] of [
    ['a whsec_ secret', WHSEC_32],
    ['a plain secret (verified via its whsec_ form)', PLAIN],
    ['a whsec_ secret that decodes to < 16 bytes', WHSEC_SHORT],
    ['a non-ASCII plain secret', 'geheim-äöü-日本'],
  ] as const) {
    it(`verifies with standardwebhooks for ${name}`, () => {
      const ts = nowSec();
      const sig = signStandard([secret], MSG_ID, ts, BODY);
      assert.match(sig, /^v1,[A-Za-z0-9+/]+=*$/);
      const parsed = new Webhook(standardSecretForm(secret)).verify(BODY, stdHeaders(MSG_ID, ts, sig));
      assert.deepEqual(parsed, JSON.parse(BODY));
    });
  }

  it('is base64 HMAC-SHA256 over "<id>.<ts>.<body>" with the standard key', () => {
    const ts = 1_767_225_600;
    const expected = createHmac('sha256', standardKey(PLAIN)).update(`${MSG_ID}.${ts}.${BODY}`).digest('base64');
    assert.equal(signStandard([PLAIN], MSG_ID, ts, BODY), `v1,${expected}`);
  });

  it('signs with every secret during a rotation, current first, separated by single spaces', () => {
    const ts = nowSec();
    const previous = 'the-old-secret-value';
    const sig = signStandard([WHSEC_32, previous], MSG_ID, ts, BODY);
    const parts = sig.split(' ');
    assert.equal(parts.length, 2);
    assert.ok(!sig.includes('  '), 'entries are separated by exactly one space');
    assert.equal(parts[0], signStandard([WHSEC_32], MSG_ID, ts, BODY), 'current key first');
    assert.equal(parts[1], signStandard([previous], MSG_ID, ts, BODY));
    for (const p of parts) assert.match(p, /^v1,[A-Za-z0-9+/]+=*$/);
    const headers = stdHeaders(MSG_ID, ts, sig);
    assert.doesNotThrow(() => new Webhook(WHSEC_32).verify(BODY, headers));
    assert.doesNotThrow(() => new Webhook(standardSecretForm(previous)).verify(BODY, headers));
    assert.throws(() => new Webhook(`whsec_${randomBytes(32).toString('base64')}`).verify(BODY, headers), WebhookVerificationError);
  });

  it('signs the UTF-8 bytes of a non-ASCII body', () => {
    const ts = nowSec();
    const body = JSON.stringify({ customerId: 'kunde_äöü_日本', note: 'emoji 🚀 and \u2028' });
    const sig = signStandard([PLAIN], MSG_ID, ts, body);
    const raw = Buffer.from(body, 'utf8');
    assert.doesNotThrow(() => new Webhook(standardSecretForm(PLAIN)).verify(raw, stdHeaders(MSG_ID, ts, sig)));
    const independent = createHmac('sha256', standardKey(PLAIN))
      .update(Buffer.concat([Buffer.from(`${MSG_ID}.${ts}.`), raw]))
      .digest('base64');
    assert.equal(sig, `v1,${independent}`);
  });

  it('fails verification when the body, the id or the timestamp is tampered with', () => {
    const ts = nowSec();
    const sig = signStandard([WHSEC_32], MSG_ID, ts, BODY);
    const wh = new Webhook(WHSEC_32);
    assert.doesNotThrow(() => wh.verify(BODY, stdHeaders(MSG_ID, ts, sig)));
    assert.throws(() => wh.verify(BODY.replace('3', '4'), stdHeaders(MSG_ID, ts, sig)), WebhookVerificationError);
    assert.throws(() => wh.verify(`${BODY} `, stdHeaders(MSG_ID, ts, sig)), WebhookVerificationError);
    assert.throws(() => wh.verify(BODY, stdHeaders(`${MSG_ID}x`, ts, sig)), WebhookVerificationError);
    assert.throws(() => wh.verify(BODY, stdHeaders(MSG_ID, ts - 1, sig)), WebhookVerificationError);
    assert.throws(() => wh.verify(BODY, stdHeaders(MSG_ID, ts + 1, sig)), WebhookVerificationError);
  });
});

describe('signLegacy', () => {
  it('equals an independent hex HMAC over "<ts>.<body>" with a v1= prefix', () => {
    const ts = 1_767_225_600;
    for (const secret of [PLAIN, WHSEC_32, 'geheim-äöü-日本']) {
      const expected = `v1=${createHmac('sha256', secret).update(`${ts}.${BODY}`).digest('hex')}`;
      assert.equal(signLegacy(secret, ts, BODY), expected);
      assert.match(signLegacy(secret, ts, BODY), /^v1=[0-9a-f]{64}$/);
    }
  });

  it('keys a whsec_ secret by its string bytes, not its decoded bytes (reference receivers)', () => {
    const ts = 1_767_225_600;
    const decodedKeyed = `v1=${createHmac('sha256', standardKey(WHSEC_32)).update(`${ts}.${BODY}`).digest('hex')}`;
    assert.notEqual(signLegacy(WHSEC_32, ts, BODY), decodedKeyed);
    assert.equal(signLegacy(WHSEC_32, ts, BODY), legacyReference(WHSEC_32, ts, BODY));
  });

  it('signs the UTF-8 bytes of a non-ASCII body and changes when body or timestamp change', () => {
    const ts = nowSec();
    const body = JSON.stringify({ customerId: 'kunde_äöü_日本' });
    const sig = signLegacy(PLAIN, ts, body);
    assert.equal(sig, legacyReference(PLAIN, ts, Buffer.from(body, 'utf8')));
    assert.notEqual(signLegacy(PLAIN, ts, body.replace('ä', 'a')), sig);
    assert.notEqual(signLegacy(PLAIN, ts + 1, body), sig);
    // Legacy does not cover the id: the same ts and body give the same signature for any id.
    assert.doesNotMatch(sig, /,/);
  });
});

describe('signedHeaders', () => {
  const base = {
    msgId: MSG_ID,
    deliveryId: 'dlv_1',
    eventType: 'aggregation.completed',
    attempt: 3,
    body: BODY,
    userAgent: 'meterhook/1.2.3',
  };

  it('carries both schemes with the same timestamp plus the informational headers', () => {
    const ts = nowSec();
    const h = signedHeaders({ ...base, timestamp: ts, secrets: [PLAIN, 'older-secret'], legacyHeaders: true });
    assert.equal(h['content-type'], 'application/json');
    assert.equal(h['user-agent'], 'meterhook/1.2.3');
    assert.equal(h['webhook-id'], MSG_ID);
    assert.equal(h['webhook-timestamp'], String(ts));
    assert.equal(h['x-webhook-timestamp'], String(ts));
    assert.equal(h['webhook-signature'], signStandard([PLAIN, 'older-secret'], MSG_ID, ts, BODY));
    assert.equal(h['x-webhook-signature'], legacyReference(PLAIN, ts, BODY), 'legacy uses the current secret only');
    assert.equal(h['x-meterhook-event-type'], 'aggregation.completed');
    assert.equal(h['x-meterhook-delivery-id'], 'dlv_1');
    assert.equal(h['x-meterhook-attempt'], '3');
    assert.doesNotThrow(() => new Webhook(standardSecretForm(PLAIN)).verify(BODY, h));
    assert.doesNotThrow(() => new Webhook(standardSecretForm('older-secret')).verify(BODY, h));
    for (const v of Object.values(h)) {
      assert.ok(!v.includes(PLAIN) && !v.includes('older-secret'), 'no secret in any header');
    }
  });

  it('omits the X-Webhook-* headers when legacyHeaders is false', () => {
    const h = signedHeaders({ ...base, timestamp: nowSec(), secrets: [PLAIN], legacyHeaders: false });
    assert.equal(h['x-webhook-timestamp'], undefined);
    assert.equal(h['x-webhook-signature'], undefined);
    assert.ok(h['webhook-signature']);
  });
});
