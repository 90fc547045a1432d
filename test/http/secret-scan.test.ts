// No secret material on any route: every GET operation of the OpenAPI document is called with real data
// behind it (events, a finalized period, deliveries with attempts), and every body, header and log line
// is scanned for each configured webhook secret (current, previous, from the environment) and each API
// key (from the environment and stored), in plain, base64, base64url and hex forms, and the key bytes
// Standard Webhooks signs with. The scanner is shown to catch the whsec_ form that would leak a secret.
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { closeDuePeriods } from '../../src/aggregate/close-due-periods.js';
import { createApiKey, hashKey } from '../../src/auth/api-keys.js';
import { createLogger } from '../../src/observability/logger.js';
import { buildTestApp, REFERENCE_CONFIG, TEST_KEY, type TestApp } from '../helpers/app.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';

const PLAIN = 'scan-plain-secret-äöü-0123456789';
const WHSEC = `whsec_${randomBytes(32).toString('base64')}`;
const ENV_SECRET = `scan-env-secret-${randomBytes(12).toString('hex')}`;
const PREVIOUS = 'scan-previous-secret-abcdefghij';
const CUSTOMER = 'scan_cust_1';

type Doc = { paths: Record<string, Record<string, unknown>> };

/** Every text form a secret could take in a response or a log line. */
function formsOf(bytes: Buffer): string[] {
  const b64 = bytes.toString('base64');
  const text = bytes.toString('utf8');
  const forms = [b64, b64.replace(/=+$/, ''), bytes.toString('base64url'), bytes.toString('hex'), bytes.toString('hex').toUpperCase()];
  // The text itself, and as JSON or a URL would escape it (only when the bytes are text).
  if (Buffer.from(text, 'utf8').equals(bytes)) {
    const asciiJson = JSON.stringify(text).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    forms.push(text, JSON.stringify(text).slice(1, -1), asciiJson.slice(1, -1), encodeURIComponent(text));
  }
  return [...new Set(forms)];
}

/** The forms of a webhook secret: its UTF-8 bytes, and for a whsec_ secret the key bytes it encodes. */
function secretForms(secret: string): string[] {
  const out = formsOf(Buffer.from(secret, 'utf8'));
  const m = /^whsec_([A-Za-z0-9+/=]+)$/.exec(secret);
  if (m) out.push(...formsOf(Buffer.from(m[1]!, 'base64')));
  return out;
}

interface Needle {
  name: string;
  forms: string[];
}

function leaks(haystack: string, needles: Needle[]): string[] {
  return needles.flatMap((n) => n.forms.filter((f) => haystack.includes(f)).map((f) => `${n.name} (${f.slice(0, 6)}…)`));
}

describe('secret scan: every GET route and every log line', () => {
  let t: TestApp;
  let receiver: Receiver;
  let storedKey: string;
  let needles: Needle[];
  const lines: string[] = [];
  const scanned: Array<{ label: string; status: number; text: string }> = [];

  before(async () => {
    // The receiver echoes what it was sent, so the stored attempts hold the signed request as a receiver saw it.
    receiver = await startReceiver((req) => ({
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ headers: req.headers, body: req.rawBody.toString('utf8') }),
    }));
    t = await buildTestApp({
      // Noon of the day before, whatever the date: the close below finds one hour due and no day.
      now: Math.floor(Date.now() / 86_400_000) * 86_400_000 - 12 * 3_600_000,
      env: { SCAN_SECRET: ENV_SECRET },
      logger: createLogger('trace', { destination: { write: (l: string) => void lines.push(l) } }),
      config: {
        ...REFERENCE_CONFIG,
        periods: ['hourly', 'daily'],
        webhooks: [
          { id: 'plain', url: receiver.url, secret: PLAIN },
          { id: 'whsec', url: receiver.url, secret: WHSEC, previousSecrets: [PREVIOUS] },
          { id: 'env', url: receiver.url, secret: 'env:SCAN_SECRET', legacyHeaders: false },
        ],
        webhookDelivery: { allowCidrs: ['127.0.0.1/32'] },
      },
    });
    storedKey = (await createApiKey(t.store, t.clock, 'scan')).key;
    await t.apiKeys.reload();
    needles = [
      { name: 'plain secret', forms: secretForms(PLAIN) },
      { name: 'whsec secret', forms: secretForms(WHSEC) },
      { name: 'env secret', forms: secretForms(ENV_SECRET) },
      { name: 'previous secret', forms: secretForms(PREVIOUS) },
      { name: 'environment API key', forms: [...formsOf(Buffer.from(TEST_KEY)), hashKey(TEST_KEY)] },
      { name: 'stored API key', forms: [...formsOf(Buffer.from(storedKey)), hashKey(storedKey)] },
    ];

    const hour = Math.floor(t.clock.now() / 3_600_000) * 3_600_000 - 2 * 3_600_000;
    const res = await t.app.inject({
      method: 'POST',
      url: '/usagebatch',
      headers: { authorization: `Bearer ${storedKey}`, 'content-type': 'application/json' },
      payload: [
        { eventType: 'api.calls', customerId: CUSTOMER, value: 2, timestamp: new Date(hour + 60_000).toISOString() },
        { eventType: 'storage.bytes', customerId: CUSTOMER, value: 9, timestamp: new Date(hour + 120_000).toISOString() },
      ],
    });
    assert.equal(res.statusCode, 201, res.body);
    await closeDuePeriods(t.ctx);
    const deliveries = await t.store.listDeliveries({ limit: 10 });
    assert.equal(deliveries.length, 3, 'one delivery per endpoint');
    for (const d of deliveries) {
      const retry = await t.app.inject({ method: 'POST', url: `/webhooks/deliveries/${d.id}/retry`, headers: t.headers });
      assert.equal(retry.statusCode, 200, retry.body);
      assert.equal((retry.json() as { attempt: { statusCode: number } }).attempt.statusCode, 200);
    }
    assert.equal(receiver.requests.length, 3);
  });
  after(async () => {
    await receiver.close();
    await t.close();
  });

  it('the scanner finds a secret in each form it looks for, including the whsec_ form of a plain secret', () => {
    const whsecOfPlain = `whsec_${Buffer.from(PLAIN, 'utf8').toString('base64')}`;
    assert.ok(leaks(`{"standardSecret":"${whsecOfPlain}"}`, needles).length > 0);
    const key = Buffer.from(WHSEC.slice('whsec_'.length), 'base64');
    for (const f of [key.toString('hex'), key.toString('base64url'), JSON.stringify(PLAIN), ENV_SECRET.toUpperCase()]) {
      const found = leaks(`x${f}x`, needles);
      if (f === ENV_SECRET.toUpperCase()) assert.deepEqual(found, [], 'an unrelated string is not a leak');
      else assert.ok(found.length > 0, `finds ${f.slice(0, 8)}…`);
    }
  });

  it('calls every GET operation of the OpenAPI document, with both ways of sending a key, and no answer holds a secret', async () => {
    const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json() as Doc;
    const [delivery] = await t.store.listDeliveries({ limit: 1 });
    const [someKey] = await t.store.listApiKeys();
    const samples: Record<string, string> = { customerId: CUSTOMER, id: delivery!.id, keyId: someKey!.id };
    const gets = Object.entries(doc.paths)
      .filter(([, ops]) => 'get' in ops)
      .map(([p]) => p);
    assert.ok(gets.length >= 14, `only ${gets.length} GET operations documented`);
    const urls = [
      '/openapi.json',
      ...gets.map((p) =>
        p.replace(/\{(\w+)\}/g, (_, name: string) => {
          const v = samples[name];
          assert.ok(v !== undefined, `no sample value for path parameter {${name}} of GET ${p}; add one to samples`);
          return encodeURIComponent(v);
        }),
      ),
    ];
    for (const url of urls) {
      for (const headers of [{ 'x-apikey': TEST_KEY }, { authorization: `Bearer ${storedKey}` }]) {
        const r = await t.app.inject({ method: 'GET', url, headers });
        assert.ok(r.statusCode < 400 || url === '/readyz', `GET ${url}: ${r.statusCode} ${r.body.slice(0, 200)}`);
        scanned.push({ label: `GET ${url}`, status: r.statusCode, text: `${JSON.stringify(r.headers)}\n${r.body}` });
      }
    }
    // The data is really there, so a leak in it would be seen.
    const detail = scanned.find((s) => s.label === `GET /webhooks/deliveries/${delivery!.id}`);
    assert.match(detail?.text ?? '', /webhook-signature/, 'the delivery detail holds the echoed, signed request');
    assert.match(scanned.find((s) => s.label === '/events' || s.label === 'GET /events')?.text ?? '', new RegExp(CUSTOMER));

    const found = scanned.flatMap((s) => leaks(s.text, needles).map((l) => `${s.label}: ${l}`));
    assert.deepEqual(found, []);
  });

  it('GET /webhooks/endpoints names each secret by its fingerprint', async () => {
    const r = await t.app.inject({ method: 'GET', url: '/webhooks/endpoints', headers: t.headers });
    const fp = (s: string) => `sha256:${createHash('sha256').update(s, 'utf8').digest('hex').slice(0, 16)}`;
    const eps = r.json() as Array<{ id: string; secretFormat: string; secretFingerprint: string; previousSecretFingerprints: string[] }>;
    assert.deepEqual(
      eps.map((e) => [e.id, e.secretFormat, e.secretFingerprint, e.previousSecretFingerprints]),
      [
        ['plain', 'plain', fp(PLAIN), []],
        ['whsec', 'whsec', fp(WHSEC), [fp(PREVIOUS)]],
        ['env', 'plain', fp(ENV_SECRET), []],
      ],
    );
  });

  it('no log line holds a secret or a key, at trace level, wrong keys included', async () => {
    await t.app.inject({ method: 'GET', url: '/events', headers: { 'x-apikey': `${storedKey}x` } });
    await t.app.inject({ method: 'GET', url: '/events', headers: { authorization: `Bearer ${TEST_KEY.slice(0, -1)}` } });
    assert.ok(lines.length >= 20, `expected log lines, got ${lines.length}`);
    assert.ok(
      lines.some((l) => l.includes('"msg":"request"')),
      'request lines are logged',
    );
    const found = lines.flatMap((l, i) => leaks(l, needles).map((x) => `line ${i}: ${x}`));
    assert.deepEqual(found, []);
  });
});
