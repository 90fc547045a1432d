// Abuse limits: failed authentication is throttled per address (429 with Retry-After, bounded memory,
// driven by the injected clock), and on real loopback sockets a stalled client is cut: headers that
// never finish, a body that never finishes, a connection that sends nothing. Connections are capped
// per process and per address, so one client's stalled connections cannot starve another's request.
// Socket tests use short timeouts and wait only as long as a timeout requires.
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { AuthThrottle, addressKey } from '../../src/auth/auth-throttle.js';
import type { HttpLimits } from '../../src/config/server-settings.js';
import { checkIntervalMs } from '../../src/http/connection-limits.js';
import { buildTestApp, TEST_KEY, type TestApp } from '../helpers/app.js';

describe('failed-authentication throttle', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp({ authThrottle: { failures: 3, windowMs: 60_000 } });
  });
  after(() => t.close());

  const events = (remoteAddress: string, key?: string) =>
    t.app.inject({ method: 'GET', url: '/events', remoteAddress, headers: key === undefined ? {} : { 'x-apikey': key } });

  it('answers 429 with Retry-After once an address has used its failures, even for the right key, until the clock refills it', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await events('203.0.113.7', 'mh_wrong')).statusCode, 401);
    const refused = await events('203.0.113.7', TEST_KEY);
    assert.equal(refused.statusCode, 429, refused.body);
    // 3 failures per minute: one comes back every 20 s.
    assert.equal(refused.headers['retry-after'], '20');
    assert.equal(refused.json().code, 'rate_limited');
    assert.equal(typeof refused.json().requestId, 'string');
    assert.equal((await events('203.0.113.8', TEST_KEY)).statusCode, 200, 'another address is not affected');

    t.clock.advance(19_000);
    assert.equal((await events('203.0.113.7', TEST_KEY)).headers['retry-after'], '1');
    t.clock.advance(1_000);
    assert.equal((await events('203.0.113.7', TEST_KEY)).statusCode, 200, 'one failure came back');
    assert.equal((await events('203.0.113.7', 'mh_wrong')).statusCode, 401);
    assert.equal((await events('203.0.113.7', TEST_KEY)).statusCode, 429, 'and was used again');
    t.clock.advance(60_000);
  });

  it('does not count a request that sends no key, and counts an IPv6 /64 as one address', async () => {
    for (let i = 0; i < 10; i++) assert.equal((await events('203.0.113.9')).statusCode, 401);
    assert.equal((await events('203.0.113.9', TEST_KEY)).statusCode, 200);

    for (const ip of ['2001:db8:1:2::1', '2001:db8:1:2:ffff::9', '2001:0db8:0001:0002:aaaa:bbbb:cccc:dddd']) {
      assert.equal((await events(ip, 'mh_wrong')).statusCode, 401);
    }
    assert.equal((await events('2001:db8:1:2::77', TEST_KEY)).statusCode, 429, 'the same /64');
    assert.equal((await events('2001:db8:1:3::1', TEST_KEY)).statusCode, 200, 'the next /64');
    t.clock.advance(60_000);
  });

  it('throttles every route that takes a key, and no public one', async () => {
    for (let i = 0; i < 3; i++) await events('198.51.100.1', 'mh_wrong');
    for (const [method, url] of [
      ['POST', '/usagebatch'],
      ['GET', '/config'],
      ['GET', '/metrics'],
      ['POST', '/aggregations/trigger'],
    ] as const) {
      const r = await t.app.inject({ method, url, remoteAddress: '198.51.100.1', headers: { 'x-apikey': TEST_KEY } });
      assert.equal(r.statusCode, 429, `${method} ${url}`);
    }
    const health = await t.app.inject({ method: 'GET', url: '/healthz', remoteAddress: '198.51.100.1' });
    assert.equal(health.statusCode, 200);
    t.clock.advance(60_000);
  });
});

describe('AuthThrottle memory', () => {
  it('holds at most maxAddresses, forgetting the address that failed longest ago', () => {
    let now = 0;
    const th = new AuthThrottle({ failures: 1, windowMs: 60_000, maxAddresses: 100 }, () => now);
    for (let i = 0; i < 5_000; i++) {
      th.fail(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
      now += 1;
      assert.ok(th.size <= 100);
    }
    assert.equal(th.size, 100);
    assert.equal(th.retryAfterSeconds('10.0.0.0'), 0, 'the first address was forgotten');
    assert.ok(th.retryAfterSeconds(`10.0.${(4_999 >> 8) & 255}.${4_999 & 255}`) > 0, 'the latest is remembered');
    // A refilled bucket is dropped when it is next looked at.
    now += 60_000;
    assert.equal(th.retryAfterSeconds(`10.0.${(4_999 >> 8) & 255}.${4_999 & 255}`), 0);
    assert.equal(th.size, 99);
  });

  it('keys IPv4, IPv4-mapped IPv6 and IPv6 /64 prefixes', () => {
    assert.equal(addressKey('192.0.2.1'), '192.0.2.1');
    assert.equal(addressKey('::ffff:192.0.2.1'), '192.0.2.1');
    assert.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(addressKey('2001:0DB8:0000:0001:1:2:3:4'), '2001:db8:0:1::/64');
    assert.equal(addressKey('::1'), '0:0:0:0::/64');
    assert.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  });
});

const LIMITS: HttpLimits = { headersTimeoutMs: 300, requestTimeoutMs: 600, maxConnections: 12, maxConnectionsPerAddress: 4 };
/** The slack a loaded machine gets on top of a timeout and its check interval. */
const SLACK_MS = 700;

/** A socket the server has not closed after this long is closed by the test, which then fails on the time. */
const GIVE_UP_MS = 4_000;

interface Probe {
  socket: net.Socket;
  /** Resolves with the ms from connect to close (GIVE_UP_MS or more if the server never closed it), and what the server wrote. */
  closed: Promise<{ ms: number; data: string }>;
}

function open(port: number, localAddress: string, first?: string): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      data += d;
    });
    const giveUp = setTimeout(() => socket.destroy(), GIVE_UP_MS);
    const closed = new Promise<{ ms: number; data: string }>((r) =>
      socket.on('close', () => {
        clearTimeout(giveUp);
        r({ ms: Date.now() - started, data });
      }),
    );
    socket.on('error', () => undefined);
    socket.once('connect', () => {
      if (first !== undefined) socket.write(first);
      resolve({ socket, closed });
    });
    socket.once('error', reject);
  });
}

/** A complete request on its own connection; resolves with the status line. */
async function request(port: number, localAddress: string, raw: string): Promise<string> {
  const { data } = await (await open(port, localAddress, raw)).closed;
  return data.split('\r\n')[0] ?? '';
}

const HEALTH = 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
const STALLED_HEADERS = `POST /usagebatch HTTP/1.1\r\nHost: x\r\nx-apikey: ${TEST_KEY}\r\n`;
const BODY = JSON.stringify([{ eventType: 'api.calls', customerId: 'c1', value: 1 }]);
const capture = (body: string, length = Buffer.byteLength(body)) =>
  `POST /usagebatch HTTP/1.1\r\nHost: x\r\nx-apikey: ${TEST_KEY}\r\ncontent-type: application/json\r\n` +
  `content-length: ${length}\r\nConnection: close\r\n\r\n${body}`;

describe('stalled connections, on real loopback sockets', () => {
  let t: TestApp;
  let port: number;
  const probes: Probe[] = [];
  before(async () => {
    t = await buildTestApp({ http: LIMITS, now: Date.now() });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    port = (t.app.server.address() as net.AddressInfo).port;
  });
  after(async () => {
    for (const p of probes) p.socket.destroy();
    await t.close();
  });
  const cutWithin = LIMITS.headersTimeoutMs + checkIntervalMs(LIMITS) + SLACK_MS;

  it('cuts a request whose headers never finish within the headers timeout, with a 408', async () => {
    const p = await open(port, '127.0.0.2', STALLED_HEADERS);
    const { ms, data } = await p.closed;
    assert.ok(ms >= LIMITS.headersTimeoutMs - 50 && ms <= cutWithin, `cut after ${ms} ms`);
    assert.match(data, /^HTTP\/1\.1 408 /);
  });

  it('cuts a connection that sends nothing within the headers timeout', async () => {
    const p = await open(port, '127.0.0.2');
    const { ms } = await p.closed;
    assert.ok(ms <= cutWithin, `cut after ${ms} ms`);
  });

  it('cuts a body that never finishes within the request timeout, and capture answers at once after', async () => {
    const p = await open(port, '127.0.0.2', capture(BODY.slice(0, 10), BODY.length));
    const { ms } = await p.closed;
    assert.ok(
      ms >= LIMITS.requestTimeoutMs - 50 && ms <= LIMITS.requestTimeoutMs + checkIntervalMs(LIMITS) + SLACK_MS,
      `cut after ${ms} ms`,
    );
    assert.match(await request(port, '127.0.0.3', capture(BODY)), /^HTTP\/1\.1 201 /);
  });

  it("closes one address's connections beyond its cap at once, and another address is answered meanwhile", async () => {
    const held: Probe[] = [];
    for (let i = 0; i < LIMITS.maxConnectionsPerAddress; i++) held.push(await open(port, '127.0.0.4', STALLED_HEADERS));
    probes.push(...held);
    const started = Date.now();
    const extra = await open(port, '127.0.0.4', STALLED_HEADERS);
    const { ms, data } = await extra.closed;
    assert.ok(ms < LIMITS.headersTimeoutMs, `the connection beyond the cap was closed after ${ms} ms, not at once`);
    assert.equal(data, '');
    assert.match(await request(port, '127.0.0.5', HEALTH), /^HTTP\/1\.1 200 /);
    assert.ok(Date.now() - started < LIMITS.headersTimeoutMs, 'answered while the stalled connections were open');
    await Promise.all(held.map((p) => p.closed));
  });

  it('holds at most maxConnections open, and answers again once the stalled ones are cut', async () => {
    const held: Probe[] = [];
    for (const addr of ['127.0.0.6', '127.0.0.7', '127.0.0.8']) {
      for (let i = 0; i < LIMITS.maxConnectionsPerAddress; i++) held.push(await open(port, addr, STALLED_HEADERS));
    }
    probes.push(...held);
    const beyond = await open(port, '127.0.0.9', HEALTH);
    const { ms, data } = await beyond.closed;
    assert.ok(ms < LIMITS.headersTimeoutMs && data === '', `closed at once beyond the process cap (${ms} ms, ${JSON.stringify(data)})`);
    await Promise.all(held.map((p) => p.closed));
    assert.match(await request(port, '127.0.0.9', HEALTH), /^HTTP\/1\.1 200 /);
  });
});
