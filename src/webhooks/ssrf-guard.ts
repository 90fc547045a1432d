// Owns the SSRF guard: which webhook URLs and resolved addresses may be contacted. Must never let a
// connection reach a non-public address unless an operator allowlisted it, including via DNS rebinding.

import dns from 'node:dns';
import net from 'node:net';

export interface SsrfPolicy {
  allowHttp: boolean;
  /** CIDRs that may be contacted even though they are not public, e.g. ["127.0.0.1/32"]. */
  allowCidrs: string[];
}

export class SsrfBlocked extends Error {
  readonly errorClass = 'ssrf_blocked';
  constructor(message: string) {
    super(message);
  }
}

const BLOCKED_V4 = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.0.2.0/24',
  '192.88.99.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '198.51.100.0/24',
  '203.0.113.0/24',
  '224.0.0.0/4',
  '240.0.0.0/4',
];
const BLOCKED_V6 = [
  '::/128',
  '::1/128',
  '64:ff9b::/96',
  '64:ff9b:1::/48',
  '100::/64',
  '2001::/23',
  '2001:db8::/32',
  '2002::/16',
  'fc00::/7',
  'fe80::/10',
  'fec0::/10',
  'ff00::/8',
];

const nonPublic = new net.BlockList();
for (const c of BLOCKED_V4) nonPublic.addSubnet(c.split('/')[0]!, Number(c.split('/')[1]), 'ipv4');
for (const c of BLOCKED_V6) nonPublic.addSubnet(c.split('/')[0]!, Number(c.split('/')[1]), 'ipv6');

function allowList(cidrs: string[]): net.BlockList {
  const list = new net.BlockList();
  for (const c of cidrs) {
    const [addr, bits] = c.split('/');
    const family = net.isIPv6(addr ?? '') ? 'ipv6' : 'ipv4';
    list.addSubnet(addr!, Number(bits ?? (family === 'ipv6' ? 128 : 32)), family);
  }
  return list;
}

/** IPv4-mapped IPv6 (::ffff:a.b.c.d or ::ffff:7f00:1) is judged as the IPv4 address it carries. */
function unmap(ip: string): { ip: string; family: 'ipv4' | 'ipv6' } {
  const lower = ip.toLowerCase();
  const dotted = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted) return { ip: dotted[1]!, family: 'ipv4' };
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (hex) {
    const hi = parseInt(hex[1]!, 16);
    const lo = parseInt(hex[2]!, 16);
    return { ip: `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`, family: 'ipv4' };
  }
  return { ip, family: net.isIPv6(ip) ? 'ipv6' : 'ipv4' };
}

export function createSsrfGuard(policy: SsrfPolicy) {
  const allowed = allowList(policy.allowCidrs);

  function addressAllowed(raw: string): boolean {
    const { ip, family } = unmap(raw);
    if (allowed.check(ip, family)) return true;
    return !nonPublic.check(ip, family);
  }

  /** Scheme, userinfo and literal-address checks; the URL parser has already normalised 127.1, 0x7f000001, … */
  function checkUrl(raw: string): URL {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new SsrfBlocked('webhook URL is not a valid URL');
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && policy.allowHttp)) {
      throw new SsrfBlocked(
        `scheme ${url.protocol} is not allowed${url.protocol === 'http:' ? ' (webhookDelivery.allowHttp is false)' : ''}`,
      );
    }
    if (url.username || url.password) throw new SsrfBlocked('webhook URL must not contain credentials');
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (net.isIP(host) !== 0 && !addressAllowed(host)) {
      throw new SsrfBlocked(`address ${host} is not public; add it to webhookDelivery.allowCidrs to allow it`);
    }
    return url;
  }

  /**
   * A net/tls `lookup` that resolves every address and refuses the connection if any of them is not
   * allowed; the socket then connects only to addresses that were checked (no rebinding window).
   */
  function lookup(
    hostname: string,
    options: dns.LookupOptions,
    callback: (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void,
  ): void {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '');
      const bad = addresses.find((a) => !addressAllowed(a.address));
      if (bad) {
        const e = new SsrfBlocked(`${hostname} resolves to ${bad.address}, which is not public`) as SsrfBlocked & { code: string };
        e.code = 'ESSRFBLOCKED';
        return callback(e, '');
      }
      if (options.all) return callback(null, addresses);
      const first = addresses[0]!;
      callback(null, first.address, first.family);
    });
  }

  return { checkUrl, lookup, addressAllowed };
}

export type SsrfGuard = ReturnType<typeof createSsrfGuard>;
