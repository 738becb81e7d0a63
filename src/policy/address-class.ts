/**
 * What kind of address is this? The SSRF guard refuses everything that is not
 * `public`. Addresses that carry an IPv4 address inside an IPv6 one (NAT64,
 * 6to4, Teredo, IPv4-compatible, SIIT) are judged by the IPv4 they carry,
 * because that is where the packets end up.
 */
import { cidr, cidrContains, formatCidr, type Cidr } from './cidr.js';
import { formatIp, unmapIPv4, type IpAddress } from './ip.js';

export type AddressClass =
  | 'public'
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'cgnat'
  | 'multicast'
  | 'broadcast'
  | 'reserved'
  | 'documentation'
  | 'metadata';

export interface Classification {
  readonly class: AddressClass;
  /** The special-purpose range that matched, e.g. `10.0.0.0/8`; absent for public. */
  readonly range?: string;
  /** For embedded forms: the IPv4 address that decided the class, and how it was embedded. */
  readonly embedded?: { readonly address: string; readonly via: string };
}

// Most specific first: the first match wins (metadata /32s before link-local /16).
const RANGES: ReadonlyArray<readonly [Cidr, AddressClass]> = (
  [
    // Cloud metadata services: AWS/GCP/Azure/OpenStack, AWS ECS task, AWS IPv6, Alibaba, Oracle.
    ['169.254.169.254/32', 'metadata'],
    ['169.254.170.2/32', 'metadata'],
    ['fd00:ec2::254/128', 'metadata'],
    ['100.100.100.200/32', 'metadata'],
    ['192.0.0.192/32', 'metadata'],
    ['0.0.0.0/32', 'unspecified'],
    ['::/128', 'unspecified'],
    ['255.255.255.255/32', 'broadcast'],
    ['::1/128', 'loopback'],
    ['127.0.0.0/8', 'loopback'],
    ['0.0.0.0/8', 'reserved'], // "this network": Linux dials 0.x as local
    ['10.0.0.0/8', 'private'],
    ['172.16.0.0/12', 'private'],
    ['192.168.0.0/16', 'private'],
    ['100.64.0.0/10', 'cgnat'],
    ['169.254.0.0/16', 'link-local'],
    ['192.0.0.0/24', 'reserved'], // IETF protocol assignments
    ['192.0.2.0/24', 'documentation'],
    ['198.51.100.0/24', 'documentation'],
    ['203.0.113.0/24', 'documentation'],
    ['198.18.0.0/15', 'reserved'], // benchmarking
    ['192.88.99.0/24', 'reserved'], // deprecated 6to4 relay anycast
    ['224.0.0.0/4', 'multicast'],
    ['240.0.0.0/4', 'reserved'],
    ['100::/64', 'reserved'], // discard-only
    ['2001:2::/48', 'reserved'], // benchmarking
    ['2001:10::/28', 'reserved'], // ORCHID
    ['2001:20::/28', 'reserved'], // ORCHIDv2
    ['2001:db8::/32', 'documentation'],
    ['3fff::/20', 'documentation'],
    ['fc00::/7', 'private'],
    ['fe80::/10', 'link-local'],
    ['fec0::/10', 'private'], // deprecated site-local
    ['ff00::/8', 'multicast'],
  ] as const
).map(([text, cls]) => [cidr(text), cls] as const);

// Only 2000::/3 is allocated for global unicast; anything else unlisted is reserved.
const GLOBAL_UNICAST = cidr('2000::/3');

const NAT64_WKP = cidr('64:ff9b::/96');
const NAT64_LOCAL = cidr('64:ff9b:1::/48');
const SIX_TO_FOUR = cidr('2002::/16');
const TEREDO = cidr('2001::/32');
const IPV4_COMPATIBLE = cidr('::/96');
const SIIT = cidr('::ffff:0:0:0/96');

const v4 = (value: bigint): IpAddress => ({ family: 4, value: value & 0xffffffffn });

/** The IPv4 addresses an IPv6 address carries, with the mechanism's name. */
export function embeddedIPv4(ip: IpAddress): Array<{ address: IpAddress; via: string }> {
  if (ip.family !== 6) return [];
  const x = ip.value;
  if (cidrContains(NAT64_WKP, ip)) return [{ address: v4(x), via: 'NAT64 (64:ff9b::/96)' }];
  if (cidrContains(NAT64_LOCAL, ip)) {
    // RFC 8215 local-use prefix: the operator picks the prefix length, so the
    // IPv4 may sit at any RFC 6052 position from /48 on; judge every candidate.
    const via = 'local-use NAT64 (64:ff9b:1::/48)';
    const bits = (from: number, len: number) => (x >> BigInt(128 - from - len)) & ((1n << BigInt(len)) - 1n);
    // The common /96 layout first, so its answer is the one reported.
    return [
      { address: v4(x), via }, // /96
      { address: v4(bits(72, 32)), via }, // /64 (bits 64-71 are the u octet)
      { address: v4((bits(56, 8) << 24n) | bits(72, 24)), via }, // /56
      { address: v4((bits(48, 16) << 16n) | bits(72, 16)), via }, // /48
    ];
  }
  if (cidrContains(SIX_TO_FOUR, ip)) return [{ address: v4(x >> 80n), via: '6to4 (2002::/16)' }];
  if (cidrContains(TEREDO, ip)) {
    return [
      { address: v4(x ^ 0xffffffffn), via: 'Teredo client (2001::/32)' },
      { address: v4(x >> 64n), via: 'Teredo server (2001::/32)' },
    ];
  }
  if (cidrContains(SIIT, ip)) return [{ address: v4(x), via: 'SIIT (::ffff:0:0:0/96)' }];
  if (cidrContains(IPV4_COMPATIBLE, ip) && x > 1n) return [{ address: v4(x), via: 'IPv4-compatible (::/96)' }];
  return [];
}

function classifyDirect(ip: IpAddress): Classification {
  for (const [range, cls] of RANGES) {
    if (cidrContains(range, ip)) return { class: cls, range: formatCidr(range) };
  }
  return { class: 'public' };
}

/** Classifies an address; embedded IPv4 decides for the IPv6 forms that carry one. */
export function classifyAddress(address: IpAddress): Classification {
  const ip = unmapIPv4(address);
  const direct = classifyDirect(ip);
  if (direct.class !== 'public') return direct;
  const embedded = embeddedIPv4(ip);
  for (const e of embedded) {
    const inner = classifyDirect(e.address);
    if (inner.class !== 'public') {
      return { ...inner, embedded: { address: formatIp(e.address), via: e.via } };
    }
  }
  if (ip.family === 6 && !cidrContains(GLOBAL_UNICAST, ip) && !cidrContains(NAT64_WKP, ip) && !cidrContains(NAT64_LOCAL, ip)) {
    return { class: 'reserved', range: 'outside 2000::/3' };
  }
  return direct;
}
