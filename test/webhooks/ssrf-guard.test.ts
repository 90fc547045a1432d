// SSRF guard: schemes, userinfo, literal address forms, the DNS-checked lookup and the allowlist.
// No test here opens a connection; the only name resolved is `localhost`.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import dns from 'node:dns';

import { parseConfig } from '../../src/config/load-config.js';
import { cidrProblem } from '../../src/config/webhook-config.js';
import { createSsrfGuard, SsrfBlocked, type SsrfGuard } from '../../src/webhooks/ssrf-guard.js';

/** The guard exactly as the default configuration builds it. */
function defaultGuard(): SsrfGuard {
  const { allowHttp, allowCidrs } = parseConfig({}, { env: {} }).webhookDelivery;
  return createSsrfGuard({ allowHttp, allowCidrs });
}

function blocked(guard: SsrfGuard, url: string): SsrfBlocked {
  let caught: unknown;
  try {
    guard.checkUrl(url);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof SsrfBlocked, `${url} should be blocked, got ${String(caught)}`);
  assert.equal(caught.errorClass, 'ssrf_blocked');
  return caught;
}

type LookupResult = { err: NodeJS.ErrnoException | null; address: string | dns.LookupAddress[]; family?: number };

function lookup(guard: SsrfGuard, host: string, options: dns.LookupOptions): Promise<LookupResult> {
  return new Promise((resolve) => guard.lookup(host, options, (err, address, family) => resolve({ err, address, family })));
}

describe('checkUrl with the default policy', () => {
  const guard = defaultGuard();

  for (const url of [
    'http://127.1/',
    'http://2130706433/',
    'http://0x7f000001/',
    'http://017700000001/',
    'http://[::ffff:127.0.0.1]/',
    'http://[::ffff:7f00:1]/',
    'http://169.254.169.254/latest/meta-data/',
    'http://10.0.0.1/',
    'http://172.16.5.4/',
    'http://192.168.1.1/',
    'http://[::1]/',
    'http://100.64.0.1/',
    'http://0.0.0.0/',
    'http://0/',
    'http://[::]/',
    'http://224.0.0.1/',
    'http://[fe80::1]/',
    'http://[fd12:3456::1]/',
    'http://[::ffff:10.0.0.1]/',
    'http://[64:ff9b::7f00:1]/',
    'https://127.0.0.1:8443/hook',
    'https://[::1]/hook',
  ]) {
    it(`blocks the non-public literal ${url}`, () => {
      const e = blocked(guard, url);
      assert.match(e.message, /not public/);
    });
  }

  it('blocks userinfo in the URL without echoing it', () => {
    const e = blocked(guard, 'https://user:pw@example.com/');
    assert.match(e.message, /credentials/);
    assert.ok(!e.message.includes('pw'), e.message);
    blocked(guard, 'https://user@example.com/');
  });

  it('blocks other schemes and unparsable URLs', () => {
    assert.match(blocked(guard, 'ftp://x/').message, /scheme ftp:/);
    blocked(guard, 'file:///etc/passwd');
    blocked(guard, 'gopher://example.com/');
    blocked(guard, 'not a url');
  });

  it('passes a public literal without connecting', () => {
    assert.equal(guard.checkUrl('https://93.184.216.34/hooks').hostname, '93.184.216.34');
    assert.equal(guard.checkUrl('https://[2606:4700:4700::1111]/hooks').hostname, '[2606:4700:4700::1111]');
  });

  it('leaves hostnames to the DNS-checked lookup (checkUrl does no resolution)', () => {
    assert.equal(guard.checkUrl('https://localhost:9/hooks').hostname, 'localhost');
  });
});

describe('checkUrl schemes', () => {
  it('blocks http: when allowHttp is false, whatever the address', () => {
    const guard = createSsrfGuard({ allowHttp: false, allowCidrs: ['127.0.0.1/32'] });
    assert.match(blocked(guard, 'http://93.184.216.34/').message, /allowHttp/);
    assert.match(blocked(guard, 'http://127.0.0.1:8080/').message, /allowHttp/);
    assert.equal(guard.checkUrl('https://93.184.216.34/').protocol, 'https:');
    assert.equal(guard.checkUrl('https://127.0.0.1:8443/').hostname, '127.0.0.1');
  });

  it('allows http: when allowHttp is true', () => {
    const guard = createSsrfGuard({ allowHttp: true, allowCidrs: [] });
    assert.equal(guard.checkUrl('http://93.184.216.34/').protocol, 'http:');
  });
});

describe('allowCidrs', () => {
  it('lets exactly the allowlisted non-public addresses through', () => {
    const guard = createSsrfGuard({ allowHttp: true, allowCidrs: ['127.0.0.1/32'] });
    assert.equal(guard.checkUrl('http://127.0.0.1:1234/').hostname, '127.0.0.1');
    assert.equal(guard.checkUrl('http://127.1:1234/').hostname, '127.0.0.1');
    blocked(guard, 'http://127.0.0.2/');
    blocked(guard, 'http://[::1]/');
    blocked(guard, 'http://10.0.0.1/');
    blocked(guard, 'http://169.254.169.254/');
  });

  it('supports whole ranges and IPv6', () => {
    const guard = createSsrfGuard({ allowHttp: true, allowCidrs: ['10.1.0.0/16', '::1/128'] });
    assert.equal(guard.addressAllowed('10.1.200.3'), true);
    assert.equal(guard.addressAllowed('10.2.0.1'), false);
    assert.equal(guard.addressAllowed('::1'), true);
    assert.equal(guard.addressAllowed('127.0.0.1'), false);
  });
});

describe('addressAllowed', () => {
  const guard = defaultGuard();

  it('judges IPv4-mapped IPv6 forms as the IPv4 address they carry', () => {
    for (const a of [
      '::ffff:127.0.0.1',
      '::FFFF:127.0.0.1',
      '::ffff:7f00:1',
      '::ffff:a00:1',
      '::ffff:169.254.169.254',
      '::ffff:c0a8:101',
    ]) {
      assert.equal(guard.addressAllowed(a), false, a);
    }
    assert.equal(guard.addressAllowed('::ffff:8.8.8.8'), true);
    assert.equal(guard.addressAllowed('::ffff:808:808'), true);
  });

  it('blocks the non-public ranges and allows public addresses', () => {
    for (const a of [
      '127.0.0.1',
      '127.255.255.254',
      '10.9.9.9',
      '172.31.0.1',
      '192.168.0.1',
      '169.254.0.1',
      '100.127.255.255',
      '0.0.0.0',
      '224.0.0.251',
      '255.255.255.255',
      '::',
      '::1',
      'fe80::1',
      'fc00::1',
      'ff02::1',
      '2001:db8::1',
    ]) {
      assert.equal(guard.addressAllowed(a), false, a);
    }
    for (const a of ['93.184.216.34', '8.8.8.8', '100.128.0.1', '172.32.0.1', '2606:4700:4700::1111']) {
      assert.equal(guard.addressAllowed(a), true, a);
    }
  });

  it('with 127.0.0.1/32 allowlisted, accepts its mapped form too but not its neighbours', () => {
    const g = createSsrfGuard({ allowHttp: true, allowCidrs: ['127.0.0.1/32'] });
    assert.equal(g.addressAllowed('127.0.0.1'), true);
    assert.equal(g.addressAllowed('::ffff:127.0.0.1'), true);
    assert.equal(g.addressAllowed('127.0.0.2'), false);
    assert.equal(g.addressAllowed('::1'), false);
  });
});

describe('lookup (the connection-pinning resolver)', () => {
  it('refuses localhost by default with an SSRF error', async () => {
    const r = await lookup(defaultGuard(), 'localhost', {});
    assert.ok(r.err, 'lookup must fail');
    assert.equal((r.err as NodeJS.ErrnoException).code, 'ESSRFBLOCKED');
    assert.ok(r.err instanceof SsrfBlocked);
    assert.match(r.err.message, /localhost resolves to .* not public/);
  });

  it('refuses localhost with all: true as well', async () => {
    const r = await lookup(defaultGuard(), 'localhost', { all: true });
    assert.equal((r.err as NodeJS.ErrnoException | null)?.code, 'ESSRFBLOCKED');
  });

  it('allows localhost when its loopback addresses are allowlisted, returning only checked addresses', async () => {
    const guard = createSsrfGuard({ allowHttp: true, allowCidrs: ['127.0.0.1/32', '::1/128'] });
    const one = await lookup(guard, 'localhost', {});
    assert.equal(one.err, null);
    assert.ok(typeof one.address === 'string' && ['127.0.0.1', '::1'].includes(one.address), String(one.address));
    assert.ok(one.family === 4 || one.family === 6);

    const all = await lookup(guard, 'localhost', { all: true });
    assert.equal(all.err, null);
    assert.ok(Array.isArray(all.address) && all.address.length > 0);
    for (const a of all.address as dns.LookupAddress[]) assert.ok(['127.0.0.1', '::1'].includes(a.address), a.address);
  });

  it('refuses when any one of several answers is not public (mixed or rebinding answers)', async (t) => {
    // A stubbed resolver: no real DNS query leaves the process.
    t.mock.method(dns, 'lookup', ((host: string, _o: unknown, cb: (e: null, a: dns.LookupAddress[]) => void) => {
      assert.equal(host, 'mixed.invalid');
      cb(null, [
        { address: '93.184.216.34', family: 4 },
        { address: '10.0.0.7', family: 4 },
      ]);
    }) as unknown as typeof dns.lookup);
    const r = await lookup(defaultGuard(), 'mixed.invalid', {});
    assert.equal((r.err as NodeJS.ErrnoException | null)?.code, 'ESSRFBLOCKED');
    assert.match(r.err!.message, /10\.0\.0\.7/);
  });

  it('returns the checked public answers when every answer is public', async (t) => {
    t.mock.method(dns, 'lookup', ((_h: string, _o: unknown, cb: (e: null, a: dns.LookupAddress[]) => void) => {
      cb(null, [
        { address: '93.184.216.34', family: 4 },
        { address: '2606:2800:220:1::1', family: 6 },
      ]);
    }) as unknown as typeof dns.lookup);
    const one = await lookup(defaultGuard(), 'public.invalid', {});
    assert.deepEqual([one.err, one.address, one.family], [null, '93.184.216.34', 4]);
    const all = await lookup(defaultGuard(), 'public.invalid', { all: true });
    assert.equal(all.err, null);
    assert.deepEqual(all.address, [
      { address: '93.184.216.34', family: 4 },
      { address: '2606:2800:220:1::1', family: 6 },
    ]);
  });

  it('passes resolver errors through unchanged', async (t) => {
    t.mock.method(dns, 'lookup', ((_h: string, _o: unknown, cb: (e: NodeJS.ErrnoException, a: never[]) => void) => {
      cb(Object.assign(new Error('getaddrinfo ENOTFOUND nowhere.invalid'), { code: 'ENOTFOUND' }), []);
    }) as unknown as typeof dns.lookup);
    const r = await lookup(defaultGuard(), 'nowhere.invalid', {});
    assert.equal((r.err as NodeJS.ErrnoException | null)?.code, 'ENOTFOUND');
  });
});

describe('cidrProblem', () => {
  it('accepts IPv4 and IPv6 CIDRs and bare addresses', () => {
    for (const c of ['127.0.0.1/32', '10.0.0.0/8', '0.0.0.0/0', '::1/128', 'fd00::/8', '127.0.0.1', '::1']) {
      assert.equal(cidrProblem(c), null, c);
    }
  });

  it('names the problem for malformed CIDRs', () => {
    assert.match(cidrProblem('127.0.0.1/33')!, /prefix length must be 0–32/);
    assert.match(cidrProblem('::1/129')!, /prefix length must be 0–128/);
    assert.match(cidrProblem('10.0.0.0/x')!, /prefix length/);
    assert.match(cidrProblem('10.0.0.0/-1')!, /prefix length/);
    assert.match(cidrProblem('localhost')!, /must be a CIDR/);
    assert.match(cidrProblem('10.0.0.0/8/1')!, /must be a CIDR/);
    assert.match(cidrProblem('')!, /must be a CIDR/);
    assert.match(cidrProblem('300.1.1.1/32')!, /must be a CIDR/);
  });
});
